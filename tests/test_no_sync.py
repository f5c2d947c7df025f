"""A training step must not pull device tensors to the host (a CUDA step would wait on it).

The step runs with the Tensor methods that synchronise (``item``, ``tolist``, ``cpu``,
``numpy``, and the implicit ``bool`` / ``float`` / ``int`` conversions) patched to raise.
"""

import contextlib

import pytest
import torch

from cissl_kit import Trainer, utils
from cissl_kit.algorithms import (
    BalancedHeadNet,
    ClassifierTraining,
    EmbeddingTraining,
    TemporalConsistency,
)
from cissl_kit.models import build_model
from cissl_kit.registry import ALGORITHMS, build_algorithm

SYNCING = ("item", "tolist", "cpu", "numpy", "nonzero", "__bool__", "__float__", "__int__")


@pytest.fixture(autouse=True)
def accelerator_path(monkeypatch):
    """Run the code path an accelerator takes: no CPU shortcuts (which sync, for free, on the CPU)."""
    monkeypatch.setattr(utils, "CPU_SHORTCUTS", False)


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


def _stage(name, data):
    """Alternate Sampling's embedding and classifier stages, on a two-headed network."""
    net = BalancedHeadNet(build_model("small_cnn", data.num_classes, data.input_shape))
    algorithm = EmbeddingTraining() if name == "embedding" else ClassifierTraining()
    if name == "embedding":
        algorithm.memory = TemporalConsistency(data.images.shape[0], data.num_classes)
    return algorithm, net


# Every periodic branch forced into the first few steps of a 200-step run, so that a dozen guarded
# steps reach them all: SeMi's switch-on and bank decay, DARP's solver, DASO's histogram swap, ACR's
# and SimPro's estimates, CDMAD's debiasing, LDAM's re-weighting and LayerMatch's classifier reset.
EARLY = {
    "semi": {"warmup": 0.02, "decay_every": 5},
    "darp": {"darp_warmup": 0.02, "darp_refine_every": 3},
    "daso": {"pretrain": 0.0, "dist_period": 0.02},
    "acr": {"estimate_after": 0.0, "estimate_period": 0.02},
    "simpro": {"estimate_period": 0.02},
    "cdmad": {"debias_start": 0.02},
    "ldam_drw": {"drw_start": 0.02},
    "layermatch": {"ac_period": 3},
}
GUARDED_STEPS = 12


def test_every_periodic_branch_is_forced_early():
    """The overrides name real parameters (a renamed one would silently test the slow default)."""
    for method, overrides in EARLY.items():
        assert method in ALGORITHMS, method
        algorithm = build_algorithm(method, **overrides)
        assert all(getattr(algorithm, key) == value for key, value in overrides.items())


@pytest.mark.parametrize("method", sorted(ALGORITHMS) + ["embedding", "classifier"])
def test_training_steps_do_not_synchronise(method, digits, monkeypatch):
    if method in ("embedding", "classifier"):
        algorithm, net = _stage(method, digits)
    else:
        algorithm, net = build_algorithm(method, **EARLY.get(method, {})), None
    trainer = Trainer(algorithm, digits, net, steps=200, progress=False, log_every=1000, eval_every=1000)
    trainer.train_step()  # first step outside: lazy initialisation may inspect tensors
    with no_host_sync(monkeypatch):
        for _ in range(GUARDED_STEPS):
            trainer.train_step()
    assert trainer.step == GUARDED_STEPS + 1


@pytest.mark.parametrize("method", ["fixmatch", "semi"])
def test_fit_pulls_to_the_host_only_at_log_and_evaluation_steps(method, digits, monkeypatch):
    trainer = Trainer(build_algorithm(method), digits, steps=40, log_every=10, eval_every=20, progress=False)
    trainer.train_step()  # lazy initialisation outside
    pulled_at = set()
    for name in SYNCING:
        def spy(self, *args, _original=getattr(torch.Tensor, name), **kwargs):
            pulled_at.add(trainer.step)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, spy)
    trainer.fit()
    assert pulled_at and pulled_at <= {10, 20, 30, 40}


def test_the_guard_catches_a_sync(monkeypatch):
    with no_host_sync(monkeypatch), pytest.raises(AssertionError, match="item"):
        torch.ones(1).item()
