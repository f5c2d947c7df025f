"""A training step must not pull device tensors to the host (a CUDA step would wait on it).

The step runs with the Tensor methods that synchronise (``item``, ``tolist``, ``cpu``,
``numpy``, and the implicit ``bool`` / ``float`` / ``int`` conversions) patched to raise.
"""

import contextlib

import pytest
import torch

from cissl_kit import Trainer
from cissl_kit.algorithms import ALGORITHMS

SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


@contextlib.contextmanager
def no_host_sync(monkeypatch):
    def forbid(name):
        def raiser(self, *args, **kwargs):
            raise AssertionError(f"Tensor.{name}() inside a training step synchronises with the device")
        return raiser

    with monkeypatch.context() as patch:
        for name in SYNCING:
            patch.setattr(torch.Tensor, name, forbid(name))
        yield


@pytest.mark.parametrize("method", sorted(ALGORITHMS))
def test_training_steps_do_not_synchronise(method, digits, monkeypatch):
    trainer = Trainer(method, digits, steps=200, progress=False, log_every=1000, eval_every=1000)
    trainer.train_step()  # first step outside: lazy initialisation may inspect tensors
    with no_host_sync(monkeypatch):
        for _ in range(60):  # past SeMi's warm-up (20 steps) and a bank decay (every 50)
            trainer.train_step()
    assert trainer.step == 61


def test_the_guard_catches_a_sync(monkeypatch):
    with no_host_sync(monkeypatch), pytest.raises(AssertionError, match="item"):
        torch.ones(1).item()
