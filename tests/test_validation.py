"""Bad input fails early with an error that names the parameter and what is allowed, one family at a
time (checkpoints: tests/test_checkpoint.py; CLI flags: tests/test_cli.py)."""

import dataclasses

import pytest
import torch
from torch import nn

from cissl_kit import make_ssl_data
from cissl_kit.algorithms import AlternateSampling, FixMatch, SeMi, build_algorithm
from cissl_kit.cli import main
from cissl_kit.data import make_sampler
from cissl_kit.engine import TrainConfig, Trainer, train
from cissl_kit.memory_bank import BalancedMemoryBank
from cissl_kit.models import build_model

FAMILIES = {
    "wrong type": [
        (lambda d: make_ssl_data("digits", n_max="40"), TypeError, "n_max must be an integer >= 1, got '40'"),
        (lambda d: TrainConfig(lr="0.1"), TypeError, "lr must be a number in (0, inf), got '0.1'"),
        (lambda d: TrainConfig(steps=1.5), TypeError, "steps must be an integer >= 1, got 1.5"),
        (lambda d: FixMatch(threshold="high"), TypeError, "threshold must be a number in [0, 1]"),
        (lambda d: SeMi(use_oheml="yes"), TypeError, "use_oheml must be True or False"),
        (lambda d: Trainer("fixmatch", d, config={"steps": 3}), TypeError, "config must be a TrainConfig"),
        (lambda d: Trainer("fixmatch", "digits"), TypeError, "data must be an SSLData"),
        (lambda d: Trainer(42, d), TypeError, "algorithm must be an Algorithm or a method name"),
        (lambda d: Trainer("fixmatch", d, model="resnet18"), TypeError, "set TrainConfig(model=...)"),
        (lambda d: TrainConfig(checkpoint=3), TypeError, "checkpoint must be a file path"),
    ],
    "out of range": [
        (lambda d: make_ssl_data("digits", n_max=0), ValueError, "n_max must be an integer >= 1, got 0"),
        (lambda d: make_ssl_data("digits", imbalance_ratio=0.5), ValueError, "imbalance_ratio must be a number in [1, inf)"),
        (lambda d: make_ssl_data("digits", seed=-1), ValueError, "seed must be an integer >= 0"),
        (lambda d: TrainConfig(steps=0), ValueError, "steps must be an integer >= 1, got 0"),
        (lambda d: TrainConfig(ema=1.0), ValueError, "ema must be a number in [0, 1)"),
        (lambda d: TrainConfig(lr=float("nan")), ValueError, "lr must be a number in (0, inf), got nan"),
        (lambda d: FixMatch(threshold=1.5), ValueError, "threshold must be a number in [0, 1], got 1.5"),
        (lambda d: AlternateSampling(loops=-1), ValueError, "loops must be an integer >= 0, got -1"),
        (lambda d: BalancedMemoryBank(10, slots=0, dim=8), ValueError, "slots must be an integer >= 1, got 0"),
        (lambda d: build_model("small_cnn", 1, (1, 8, 8)), ValueError, "num_classes must be an integer >= 2"),
    ],
    "unknown name": [
        (lambda d: make_ssl_data("mnist"), ValueError, "dataset must be one of 'digits'"),
        (lambda d: make_ssl_data("digits", device="tpu"), ValueError, "device must be 'auto', 'cpu'"),
        (lambda d: train("mixmatch", d), ValueError, "method must be one of 'supervised'"),
        (lambda d: build_algorithm("fixmatch", tau=0.3), ValueError, "method 'fixmatch' has no hyper-parameter tau"),
        (lambda d: Trainer("fixmatch", d, stepz=3), TypeError, "stepz is not a training-loop setting"),
        (lambda d: TrainConfig(schedule="linear"), ValueError, "schedule must be one of 'cosine', 'constant'"),
        (lambda d: make_sampler("weird", torch.arange(3), 2), ValueError, "sampler must be one of 'random', 'balanced'"),
        (lambda d: build_model("vit", 10, (1, 8, 8)), ValueError, "model must be one of 'small_cnn'"),
    ],
    "mismatched class counts": [
        (lambda d: make_ssl_data("digits", unlabeled_profile=[5, 4, 3]), ValueError,
         "explicit unlabeled counts must have num_classes=10 entries, got 3"),
        (lambda d: Trainer("fixmatch", d, model=build_model("small_cnn", 5, d.input_shape)), ValueError,
         "model.head has 5 outputs but the data has 10 classes"),
        (lambda d: make_sampler("balanced", torch.arange(4), 2, labels=torch.tensor([0, 1, 2, 7]), num_classes=3),
         ValueError, "labels must lie in [0, 2]"),
    ],
    "dataset too small for the split": [
        (lambda d: make_ssl_data("digits", n_max=10_000), ValueError, "class 0 has 178 images but the split asks for"),
        (lambda d: make_ssl_data("digits", m_max=10_000), ValueError, "lower n_max / m_max / test_per_class"),
        (lambda d: make_ssl_data("digits", test_per_class=500), ValueError, "test 500"),
        (lambda d: make_sampler("random", torch.arange(0), 2), ValueError, "indices must not be empty"),
    ],
    "model without features or head": [
        (lambda d: Trainer("fixmatch", d, model=nn.Linear(64, 10)), TypeError, "model must have a features(x) method"),
        (lambda d: Trainer("fixmatch", d, model=_NoLinearHead()), TypeError, "model must have a linear classifier 'head'"),
    ],
}


class _NoLinearHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(64, 10))

    def features(self, x):
        return x.flatten(1)


CASES = [(family, i) for family, cases in FAMILIES.items() for i in range(len(cases))]


@pytest.mark.parametrize("family,index", CASES, ids=[f"{f}-{i}" for f, i in CASES])
def test_bad_input_names_the_parameter_and_what_is_allowed(family, index, digits):
    make, error, message = FAMILIES[family][index]
    with pytest.raises(error) as raised:
        make(digits)
    assert message in str(raised.value)


def test_a_refused_resume_leaves_the_trainer_as_it_was(digits, tmp_path):
    path = tmp_path / "fixmatch.pt"
    Trainer("fixmatch", digits, config=TrainConfig(steps=3, progress=False)).fit()
    Trainer("fixmatch", digits, config=TrainConfig(steps=3, progress=False)).save_checkpoint(path)
    trainer = Trainer("fixmatch", digits, config=TrainConfig(steps=3, batch_size=32, progress=False))
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    with pytest.raises(ValueError, match="batch_size"):
        trainer.resume(path)
    assert trainer.step == 0 and all(torch.equal(before[k], v) for k, v in trainer.net.state_dict().items())


@pytest.mark.parametrize("argv,message", [
    (["--steps", "0"], "steps must be an integer >= 1, got 0"),
    (["--threshold", "2"], "threshold must be a number in [0, 1], got 2.0"),
    (["--n-max", "5000"], "lower n_max / m_max / test_per_class"),
    (["--unlabeled-profile", "1,2"], "explicit unlabeled counts must have num_classes=10 entries"),
    (["--device", "tpu"], "device must be 'auto', 'cpu'"),
])
def test_cli_flags_fail_with_the_same_messages(argv, message, tmp_path, capsys):
    assert main(["train", "--method", "fixmatch", "--no-progress", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_recipes_check_their_stage_settings(digits):
    with pytest.raises(ValueError, match="embedding_sampler must be one of 'random', 'balanced'"):
        dataclasses.replace(AlternateSampling(), embedding_sampler="uniform")
