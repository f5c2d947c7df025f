"""Long-tailed class profiles, labeled / unlabeled / test splits, and many / medium / few groups.

Class 0 is the head: profiles are non-increasing in the class index (``reversed`` unlabeled
profiles are the exception, by design).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_choice, check_float, check_int

UNLABELED_PROFILES = ("consistent", "uniform", "reversed", "middle", "head-tail")
GROUP_NAMES = ("many", "medium", "few")
MAX_CLASSES = 100_000  # a bound that keeps every profile a list that fits in memory


def long_tailed_counts(n_max: int, imbalance_ratio: float, num_classes: int) -> list[int]:
    """Exponential profile of USB, DASO, ACR and SeMi: ``n_k = int(n_max * ratio ** (-k / (K - 1)))``.

    Truncation, not rounding, so the counts match the published CIFAR-10-LT splits
    (n_max = 1500, ratio = 100 gives 1500, 899, ..., 25, 15).
    """
    return _exponential(n_max, imbalance_ratio, num_classes, "n_max", "imbalance_ratio")


def _exponential(n_max: int, ratio: float, num_classes: int, n_name: str, ratio_name: str) -> list[int]:
    n_max = check_int(n_name, n_max, minimum=1)
    ratio = check_float(ratio_name, ratio, minimum=1.0)
    num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
    if num_classes == 1:
        return [n_max]
    counts = [int(n_max * ratio ** (-k / (num_classes - 1))) for k in range(num_classes)]
    if counts[-1] < 1:
        raise ValueError(
            f"{n_name}={n_max} with {ratio_name}={ratio:g} leaves the tail class with 0 "
            f"samples; {n_name} must be >= {ratio_name} (or lower {ratio_name})"
        )
    return counts


def step_counts(
    n_max: int, imbalance_ratio: float, num_classes: int, minority_fraction: float = 0.5
) -> list[int]:
    """Step profile: the first classes get ``n_max``, the last ``minority_fraction`` of them ``n_max / ratio``."""
    n_max = check_int("n_max", n_max, minimum=1)
    imbalance_ratio = check_float("imbalance_ratio", imbalance_ratio, minimum=1.0)
    num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
    minority_fraction = check_float("minority_fraction", minority_fraction, 0.0, 1.0)
    n_min = int(n_max / imbalance_ratio)
    if n_min < 1:
        raise ValueError(
            f"n_max={n_max} with imbalance_ratio={imbalance_ratio:g} leaves minority classes with 0 "
            f"samples; n_max must be >= imbalance_ratio"
        )
    num_minority = int(round(num_classes * minority_fraction))
    return [n_max] * (num_classes - num_minority) + [n_min] * num_minority


def unlabeled_counts(
    m_max: int,
    imbalance_ratio: float,
    num_classes: int,
    profile: str | Sequence[int] = "consistent",
) -> list[int]:
    """Unlabeled class counts for a profile.

    ``consistent``: the labeled profile's shape (γ_u = γ_l); ``uniform``: ``m_max`` for every
    class (γ_u = 1); ``reversed``: the consistent counts in reverse, so the tail classes get the
    most unlabeled data (γ_u = 1/γ_l); ``middle`` and ``head-tail``: the consistent counts
    rearranged as SimPro's code does (``make_imb_data``, ``flag_LT`` 3 and 4), the largest in the
    middle classes, or at both ends with the smallest in the middle; a sequence: explicit counts,
    one per class. ``imbalance_ratio`` is γ_u for every shape but uniform.
    """
    num_classes = check_int("num_classes", num_classes, 1, MAX_CLASSES)
    if not isinstance(profile, str):
        if not isinstance(profile, (Sequence, np.ndarray)):
            raise TypeError(f"unlabeled_profile must be one of {', '.join(map(repr, UNLABELED_PROFILES))} or a "
                            f"sequence of {num_classes} counts, got {profile!r}")
        counts = [check_int(f"unlabeled counts[{k}]", c, minimum=0) for k, c in enumerate(profile)]
        if len(counts) != num_classes:
            raise ValueError(
                f"explicit unlabeled counts must have num_classes={num_classes} entries, got {len(counts)}"
            )
        return counts
    check_choice("unlabeled_profile", profile, UNLABELED_PROFILES)
    check_float("unlabeled_imbalance_ratio", imbalance_ratio, minimum=1.0)  # checked for every shape
    if profile == "uniform":
        return [check_int("m_max", m_max, minimum=1)] * num_classes
    counts = _exponential(m_max, imbalance_ratio, num_classes, "m_max", "unlabeled_imbalance_ratio")
    if profile == "reversed":
        return counts[::-1]
    return [counts[i] for i in profile_order(profile, num_classes)]


def profile_order(profile: str, num_classes: int) -> list[int]:
    """Which of the descending counts each class gets (SimPro's ``idx_centric`` / ``idx_off_centric``):
    ``middle`` gives the largest to the middle classes, ``head-tail`` to both ends."""
    evens, odds = list(range(0, num_classes, 2)), list(range(1, num_classes, 2))
    if profile == "middle":
        return evens[::-1] + odds
    if profile == "head-tail":
        return odds + evens[::-1]
    return list(range(num_classes))


@dataclass(frozen=True)
class LTSplit:
    """Indices into one labeled pool: labeled, unlabeled and (optionally) test, never overlapping."""

    labeled_idx: np.ndarray
    unlabeled_idx: np.ndarray
    test_idx: np.ndarray
    labeled_counts: list[int]
    unlabeled_counts: list[int]
    seed: int = 0
    groups: dict[str, list[int]] = field(default_factory=dict)


def make_lt_split(
    labels: Sequence[int] | np.ndarray,
    labeled_counts: Sequence[int],
    unlabeled_counts: Sequence[int],
    test_per_class: int = 0,
    seed: int = 0,
) -> LTSplit:
    """Draw, per class, a balanced test part first, then the labeled, then the unlabeled part.

    Drawing the test part first keeps the test set identical across imbalance settings for the
    same seed. Raises if a class has fewer images than asked, naming the class and both numbers.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array of class ids, got shape {labels.shape}")
    num_classes = len(labeled_counts)
    if len(unlabeled_counts) != num_classes:
        raise ValueError(
            f"labeled_counts has {num_classes} classes but unlabeled_counts has {len(unlabeled_counts)}"
        )
    labeled_counts = [check_int(f"labeled_counts[{k}]", c, minimum=1) for k, c in enumerate(labeled_counts)]
    unlabeled_counts = [check_int(f"unlabeled_counts[{k}]", c, minimum=0) for k, c in enumerate(unlabeled_counts)]
    test_per_class = check_int("test_per_class", test_per_class, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"test": [], "labeled": [], "unlabeled": []}
    for k in range(num_classes):
        pool = np.flatnonzero(labels == k)
        asked = test_per_class + labeled_counts[k] + unlabeled_counts[k]
        if asked > pool.size:
            raise ValueError(
                f"class {k} has {pool.size} images but the split asks for {asked} "
                f"(test {test_per_class} + labeled {labeled_counts[k]} + unlabeled {unlabeled_counts[k]}); "
                f"lower n_max / m_max / test_per_class"
            )
        pool = rng.permutation(pool)
        edges = np.cumsum([test_per_class, labeled_counts[k], unlabeled_counts[k]])
        parts["test"].append(pool[: edges[0]])
        parts["labeled"].append(pool[edges[0] : edges[1]])
        parts["unlabeled"].append(pool[edges[1] : edges[2]])
    joined = {name: np.concatenate(p).astype(np.int64) for name, p in parts.items()}
    return LTSplit(
        labeled_idx=joined["labeled"],
        unlabeled_idx=joined["unlabeled"],
        test_idx=joined["test"],
        labeled_counts=list(labeled_counts),
        unlabeled_counts=list(unlabeled_counts),
        seed=seed,
        groups=class_groups(labeled_counts),
    )


def class_groups(
    labeled_counts: Sequence[int],
    scheme: str = "rank",
    many_above: int = 100,
    few_at_most: int = 20,
) -> dict[str, list[int]]:
    """Split classes into many / medium / few shot groups.

    ``rank`` (default): the 30% most populated classes are *many*, the next 30% *medium*, the
    rest *few* (CIFAR-10-SSLT: 3 / 3 / 4 classes, Alternate Sampling Sec. 4.1). ``threshold``:
    *many* if n > ``many_above``, *few* if n <= ``few_at_most``, else *medium* (the ImageNet-LT
    convention, with 100 and 20).
    """
    check_choice("scheme", scheme, ("rank", "threshold"))
    counts = np.asarray(labeled_counts)
    num_classes = counts.size
    if scheme == "threshold":
        return {
            "many": [k for k in range(num_classes) if counts[k] > many_above],
            "medium": [k for k in range(num_classes) if few_at_most < counts[k] <= many_above],
            "few": [k for k in range(num_classes) if counts[k] <= few_at_most],
        }
    order = np.argsort(-counts, kind="stable")
    n_many = max(1, int(round(0.3 * num_classes))) if num_classes >= 3 else 1
    n_medium = max(1, int(round(0.3 * num_classes))) if num_classes >= 3 else 0
    n_many = min(n_many, num_classes)
    n_medium = min(n_medium, num_classes - n_many)
    return {
        "many": sorted(order[:n_many].tolist()),
        "medium": sorted(order[n_many : n_many + n_medium].tolist()),
        "few": sorted(order[n_many + n_medium :].tolist()),
    }
