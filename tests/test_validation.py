"""Bad input fails early with an error that names the parameter and what is allowed, one family at a
time (checkpoints: tests/test_checkpoint.py; CLI flags: tests/test_cli.py)."""

import dataclasses

import pytest
import torch
from torch import nn

from cissl_kit import make_ssl_data
from cissl_kit.algorithms import FixMatch, SeMi
from cissl_kit.cli import main
from cissl_kit.data import long_tailed_counts, make_sampler, unlabeled_counts
from cissl_kit.engine import TrainConfig, Trainer
from cissl_kit.memory_bank import BalancedMemoryBank
from cissl_kit.models import build_model
from cissl_kit.recipes import AlternateSampling
from cissl_kit.registry import build_algorithm, train

FAMILIES = {
    "wrong type": [
        (lambda d: make_ssl_data("digits", n_max="40"), TypeError, "n_max must be an integer >= 1, got '40'"),
        (lambda d: TrainConfig(lr="0.1"), TypeError, "lr must be a number in (0, inf), got '0.1'"),
        (lambda d: TrainConfig(steps=1.5), TypeError, "steps must be an integer >= 1, got 1.5"),
        (lambda d: FixMatch(threshold="high"), TypeError, "threshold must be a number in [0, 1]"),
        (lambda d: SeMi(use_oheml="yes"), TypeError, "use_oheml must be True or False"),
        (lambda d: Trainer(build_algorithm("fixmatch"), d, config={"steps": 3}), TypeError, "config must be a TrainConfig"),
        (lambda d: Trainer(build_algorithm("fixmatch"), "digits"), TypeError, "data must be an SSLData"),
        (lambda d: Trainer(42, d), TypeError, "algorithm must be a one-step Algorithm, got 42: build one by name"),
        (lambda d: Trainer("fixmatch", d), TypeError, "build one by name with cissl_kit.build_algorithm(name)"),
        (lambda d: Trainer(AlternateSampling(), d), TypeError, "a multi-stage recipe (decoupling, alternate"),
        (lambda d: Trainer(build_algorithm("fixmatch"), d, model="resnet18"), TypeError, "set TrainConfig(model=...)"),
        (lambda d: TrainConfig(checkpoint=3), TypeError, "checkpoint must be a file path"),
        (lambda d: TrainConfig(amp="yes"), TypeError, "amp must be True or False, got 'yes'"),
        (lambda d: TrainConfig(nesterov=2), TypeError, "nesterov must be True or False, got 2"),
        (lambda d: TrainConfig(progress=None), TypeError, "progress must be True or False, got None"),
        (lambda d: make_ssl_data("cifar10", root=None), TypeError, "root must be a folder path"),
        (lambda d: make_ssl_data("digits", unlabeled_profile=5), TypeError,
         "unlabeled_profile must be one of 'consistent', 'uniform', 'reversed', 'middle', 'head-tail' or a sequence"),
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
        (lambda d: unlabeled_counts(80, float("nan"), 10, "uniform"), ValueError,
         "unlabeled_imbalance_ratio must be a number in [1, inf), got nan"),
        (lambda d: long_tailed_counts(40, 20, 10**12), ValueError, "num_classes must be an integer in [1, 100000]"),
    ],
    "sizes that cannot fit in memory (no hang, no allocator error)": [
        (lambda d: make_sampler("random", torch.arange(10), 10**12), ValueError,
         "a batch of 1,000,000,000,000 indices needs at least"),
        (lambda d: BalancedMemoryBank(10, slots=10**12, dim=128), ValueError, "lower slots (CLI: --bank-slots)"),
        (lambda d: Trainer(build_algorithm("fixmatch"), d, batch_size=10**9), ValueError,
         "a training step on 5,000,000,000 images (batch_size 1,000,000,000, uratio 2, 2 unlabeled view(s))"),
        (lambda d: Trainer(build_algorithm("supervised"), d, batch_size=10**9), ValueError,
         "a training step on 1,000,000,000 images (batch_size 1,000,000,000, uratio 2, 0 unlabeled view(s))"),
    ],
    "unknown name": [
        (lambda d: make_ssl_data("Mnist"), ValueError, "dataset must be one of 'digits', 'mnist'"),
        (lambda d: make_ssl_data("MNIST"), ValueError, "(did you mean 'mnist'?)"),
        (lambda d: make_ssl_data("digits", device="tpu"), ValueError, "device must be 'auto', 'cpu'"),
        (lambda d: make_ssl_data("digits", device="meta"), ValueError, "device must be 'auto', 'cpu'"),
        (lambda d: make_ssl_data("digits", device="mps"), ValueError, "Apple MPS is not available here"),
        (lambda d: build_algorithm("SeMi"), ValueError, "got 'SeMi' (did you mean 'semi'?)"),
        (lambda d: train("mixmatch", d), ValueError, "method must be one of 'supervised'"),
        (lambda d: build_algorithm("fixmatch", tau=0.3), ValueError, "method 'fixmatch' has no hyper-parameter tau"),
        (lambda d: Trainer(build_algorithm("fixmatch"), d, stepz=3), TypeError, "stepz is not a training-loop setting"),
        (lambda d: TrainConfig(schedule="linear"), ValueError, "schedule must be one of 'cosine', 'constant'"),
        (lambda d: make_sampler("weird", torch.arange(3), 2), ValueError, "sampler must be one of 'random', 'balanced'"),
        (lambda d: build_model("vit", 10, (1, 8, 8)), ValueError, "model must be one of 'small_cnn'"),
    ],
    "mismatched class counts": [
        (lambda d: make_ssl_data("digits", unlabeled_profile=[5, 4, 3]), ValueError,
         "explicit unlabeled counts must have num_classes=10 entries, got 3"),
        (lambda d: Trainer(build_algorithm("fixmatch"), d, model=build_model("small_cnn", 5, d.input_shape)), ValueError,
         "model.head has 5 outputs but the data has 10 classes"),
        (lambda d: make_sampler("balanced", torch.arange(4), 2, labels=torch.tensor([0, 1, 2, 7]), num_classes=3),
         ValueError, "labels must lie in [0, 2]"),
    ],
    "dataset too small for the split": [
        (lambda d: make_ssl_data("digits", n_max=10_000), ValueError, "class 0 has 178 images but the split asks for"),
        (lambda d: make_ssl_data("digits", m_max=10_000), ValueError, "lower n_max / m_max / test_per_class"),
        (lambda d: make_ssl_data("digits", test_per_class=500), ValueError, "test 500"),
        (lambda d: make_sampler("random", torch.arange(0), 2), ValueError, "indices must not be empty"),
        (lambda d: make_ssl_data("cifar10", root=_empty_cifar_files()), ValueError,
         "data_batch_1 is not a readable cifar10 file (Ran out of input)"),
    ],
    "model without features or head": [
        (lambda d: Trainer(build_algorithm("fixmatch"), d, model=nn.Linear(64, 10)), TypeError, "model must have a features(x) method"),
        (lambda d: Trainer(build_algorithm("fixmatch"), d, model=_NoLinearHead()), TypeError, "model must have a linear classifier 'head'"),
    ],
}


def _empty_cifar_files() -> str:
    """A CIFAR-10 folder whose batch files exist but are empty (an interrupted extraction)."""
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).touch()
    return str(root)


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
    Trainer(build_algorithm("fixmatch"), digits, config=TrainConfig(steps=3, progress=False)).fit()
    Trainer(build_algorithm("fixmatch"), digits, config=TrainConfig(steps=3, progress=False)).save_checkpoint(path)
    trainer = Trainer(build_algorithm("fixmatch"), digits, config=TrainConfig(steps=3, batch_size=32, progress=False))
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
