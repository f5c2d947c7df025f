"""A long-tailed semi-supervised benchmark held as tensors on the training device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_float, check_int
from ..utils import resolve_device
from .augment import Augmenter, ImageAugmenter, VectorAugmenter
from .datasets import DEFAULT_ROOT, RawDataset, load_dataset
from .imbalance import (
    UNLABELED_PROFILES,
    LTSplit,
    class_groups,
    long_tailed_counts,
    make_lt_split,
    step_counts,
    unlabeled_counts,
)

PROFILES = ("exponential", "step")

# Defaults per dataset: the field's CIFAR-10-LT setting (SeMi / ACR / DASO), and a digits-LT
# setting that fits in digits' ~174 images per class (50 kept per class for a balanced test set).
DEFAULT_SPLITS = {
    "digits": dict(n_max=40, imbalance_ratio=20.0, m_max=80, test_per_class=50),
    "mnist": dict(n_max=40, imbalance_ratio=10.0, m_max=320, test_per_class=100),
    "mnist28": dict(n_max=40, imbalance_ratio=10.0, m_max=320, test_per_class=100),
    "toy2d": dict(n_max=100, imbalance_ratio=20.0, m_max=400, test_per_class=200),
    "cifar10": dict(n_max=1500, imbalance_ratio=100.0, m_max=3000, test_per_class=None),
    "synthetic-cifar10": dict(n_max=1500, imbalance_ratio=100.0, m_max=3000, test_per_class=None),
    "cifar100": dict(n_max=150, imbalance_ratio=10.0, m_max=300, test_per_class=None),
    "stl10": dict(n_max=450, imbalance_ratio=10.0, m_max=None, test_per_class=None),
}


@dataclass
class SSLData:
    """Labeled, unlabeled and test data on one device.

    ``images`` holds the labeled images first, then the unlabeled ones. ``targets`` are the labels
    training may see: the true label on labeled indices, ``-1`` on unlabeled ones. ``true_labels``
    are for measuring pseudo-labels only (``-1`` where unknown, as in STL-10's extra split).
    """

    name: str
    class_names: list[str]
    images: Tensor
    targets: Tensor
    true_labels: Tensor
    labeled_idx: Tensor
    unlabeled_idx: Tensor
    test_images: Tensor
    test_labels: Tensor
    labeled_counts: list[int]
    unlabeled_counts: list[int]
    groups: dict[str, list[int]]
    augmenter: Augmenter
    settings: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def class_prior(self) -> Tensor:
        """Labeled class frequencies π (sums to 1), on the data's device."""
        counts = torch.tensor(self.labeled_counts, dtype=torch.float32, device=self.device)
        return counts / counts.sum()

    def to(self, device: str | torch.device) -> SSLData:
        device = torch.device(device)
        moved = {k: getattr(self, k).to(device) for k in ("images", "targets", "true_labels", "labeled_idx",
                                                          "unlabeled_idx", "test_images", "test_labels")}
        return replace(self, **moved)

    def with_extra_labels(self, indices: Tensor, labels: Tensor) -> SSLData:
        """A copy whose labeled set also holds ``indices`` (unlabeled ones) with the given ``labels``.

        Used to fine-tune on D ∪ U' with pseudo-labels; ``true_labels`` stay untouched.
        """
        targets = self.targets.clone()
        targets[indices] = labels.to(targets.dtype)
        labeled_idx = torch.cat([self.labeled_idx, indices])
        counts = torch.bincount(targets[labeled_idx], minlength=self.num_classes).tolist()
        return replace(self, targets=targets, labeled_idx=labeled_idx, labeled_counts=counts)

    def summary(self) -> str:
        u = "?" if not self.unlabeled_counts else sum(self.unlabeled_counts)
        return (
            f"{self.name}: {self.num_classes} classes, labeled {sum(self.labeled_counts)} "
            f"(max {max(self.labeled_counts)}, min {min(self.labeled_counts)}), unlabeled {u}, "
            f"test {self.test_labels.numel()}, on {self.device}"
            + (" (random images: for speed and smoke tests only, accuracy is meaningless)"
               if self.name.startswith("synthetic") else "")
        )


def make_ssl_data(
    dataset: str | RawDataset = "digits",
    n_max: int | None = None,
    imbalance_ratio: float | None = None,
    m_max: int | None = None,
    unlabeled_profile: str | Sequence[int] = "consistent",
    unlabeled_imbalance_ratio: float | None = None,
    profile: str = "exponential",
    test_per_class: int | None = None,
    seed: int = 0,
    root: str | Path = DEFAULT_ROOT,
    download: bool = False,
    device: str | torch.device | None = None,
) -> SSLData:
    """Build a long-tailed SSL benchmark.

    Labeled counts follow ``profile`` from ``n_max`` (N1) with ratio ``imbalance_ratio`` (γ_l);
    unlabeled counts follow ``unlabeled_profile`` from ``m_max`` (M1) with
    ``unlabeled_imbalance_ratio`` (γ_u, default γ_l). ``None`` takes the dataset's default
    (:data:`DEFAULT_SPLITS`). Test data: the dataset's own test set, or ``test_per_class`` images
    per class carved from the pool when it has none (digits, toy2d).
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path (str or Path), got {root!r}")
    if not isinstance(unlabeled_profile, (str, Sequence, np.ndarray)):
        raise TypeError(f"unlabeled_profile must be one of {', '.join(map(repr, UNLABELED_PROFILES))} or a sequence "
                        f"of per-class counts, got {unlabeled_profile!r}")
    if not isinstance(dataset, (str, RawDataset)):
        raise TypeError(f"dataset must be a dataset name or a RawDataset, got {type(dataset).__name__}")
    raw = dataset if isinstance(dataset, RawDataset) else load_dataset(dataset, root, download)
    defaults = DEFAULT_SPLITS.get(raw.name, DEFAULT_SPLITS["digits"])
    n_max = defaults["n_max"] if n_max is None else n_max
    imbalance_ratio = defaults["imbalance_ratio"] if imbalance_ratio is None else imbalance_ratio
    m_max = defaults["m_max"] if m_max is None else m_max
    check_choice("profile", profile, PROFILES)
    k = raw.num_classes
    labeled = (long_tailed_counts if profile == "exponential" else step_counts)(n_max, imbalance_ratio, k)
    extra = raw.extra_unlabeled_x is not None
    if extra:  # STL-10: the unlabeled set is the extra split as a whole, its labels unknown
        unlabeled = [0] * k
    else:
        if m_max is None:
            raise ValueError(f"m_max must be a positive integer for {raw.name}")
        gamma_u = imbalance_ratio if unlabeled_imbalance_ratio is None else unlabeled_imbalance_ratio
        gamma_u = check_float("unlabeled_imbalance_ratio", gamma_u, minimum=1.0)
        unlabeled = unlabeled_counts(m_max, gamma_u, k, unlabeled_profile)

    own_test = raw.test_x is not None
    if test_per_class is None:
        test_per_class = 0 if own_test else defaults["test_per_class"] or 0
    test_per_class = check_int("test_per_class", test_per_class, minimum=0)
    if not own_test and test_per_class == 0:
        raise ValueError(f"test_per_class must be >= 1 for {raw.name}, which has no test set of its own")
    split = make_lt_split(raw.train_y, labeled, unlabeled, 0 if own_test else test_per_class, seed)

    if own_test:
        test_x, test_y = raw.test_x, raw.test_y
        if test_per_class:  # optionally a smaller balanced subset of the official test set
            test_x, test_y = _balanced_subset(test_x, test_y, k, test_per_class, seed)
    else:
        test_x, test_y = raw.train_x[split.test_idx], raw.train_y[split.test_idx]

    pool = np.concatenate([split.labeled_idx, split.unlabeled_idx])
    images = raw.train_x[pool]
    true = raw.train_y[pool]
    if extra:
        images = np.concatenate([images, raw.extra_unlabeled_x])
        true = np.concatenate([true, np.full(len(raw.extra_unlabeled_x), -1, dtype=np.int64)])
    n_lab = len(split.labeled_idx)
    targets = true.copy()
    targets[n_lab:] = -1

    device = resolve_device(device)
    as_tensor = (lambda a: torch.as_tensor(a, device=device))
    augmenter: Augmenter = (
        ImageAugmenter(raw.mean, raw.std, flip=raw.flip, fill=raw.fill) if raw.is_image else VectorAugmenter()
    )
    return SSLData(
        name=raw.name,
        class_names=list(raw.class_names),
        images=as_tensor(images),
        targets=as_tensor(targets),
        true_labels=as_tensor(true),
        labeled_idx=torch.arange(n_lab, device=device),
        unlabeled_idx=torch.arange(n_lab, len(images), device=device),
        test_images=as_tensor(test_x),
        test_labels=as_tensor(test_y),
        labeled_counts=list(labeled),
        unlabeled_counts=[] if extra else list(unlabeled),
        groups=class_groups(labeled),
        augmenter=augmenter,
        settings=dict(
            dataset=raw.name, n_max=n_max, imbalance_ratio=imbalance_ratio, m_max=m_max,
            unlabeled_profile=unlabeled_profile if isinstance(unlabeled_profile, str) else list(unlabeled_profile),
            unlabeled_imbalance_ratio=unlabeled_imbalance_ratio, profile=profile,
            test_per_class=test_per_class, seed=seed,
        ),
    )


def _balanced_subset(x: np.ndarray, y: np.ndarray, num_classes: int, per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    keep = []
    for k in range(num_classes):
        idx = np.flatnonzero(y == k)
        if idx.size < per_class:
            raise ValueError(f"test set class {k} has {idx.size} images, test_per_class asks for {per_class}")
        keep.append(rng.permutation(idx)[:per_class])
    keep = np.concatenate(keep)
    return x[keep], y[keep]


__all__ = ["SSLData", "make_ssl_data", "DEFAULT_SPLITS", "PROFILES", "LTSplit"]
