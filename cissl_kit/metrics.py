"""Accuracy overall, per class and per many / medium / few group; pseudo-label quality."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .losses import normalized_entropy


def confusion_matrix(predictions: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """``C[t, p]`` = number of samples of true class t predicted as p (rows: truth)."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat.cpu(), minlength=num_classes * num_classes).view(num_classes, num_classes)


def classification_report(
    predictions: Tensor,
    targets: Tensor,
    num_classes: int,
    groups: Mapping[str, Sequence[int]] | None = None,
) -> dict:
    """Overall and balanced accuracy, per-class accuracy (recall), group means, confusion matrix.

    A group's accuracy is the mean of its classes' accuracies (equal to the group's sample
    accuracy on a balanced test set). Values are fractions in [0, 1].
    """
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions and targets must have the same shape: {tuple(predictions.shape)} vs {tuple(targets.shape)}")
    confusion = confusion_matrix(predictions, targets, num_classes)
    support = confusion.sum(1)
    per_class = (confusion.diag().cpu().double() / support.cpu().clamp_min(1)).tolist()  # float64 on the host (MPS has none)
    present = [k for k in range(num_classes) if support[k] > 0]
    report = {
        "accuracy": float(confusion.diag().sum()) / max(1, int(support.sum())),
        "balanced_accuracy": sum(per_class[k] for k in present) / max(1, len(present)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
    for name, classes in (groups or {}).items():
        members = [k for k in classes if support[k] > 0]
        report[name] = sum(per_class[k] for k in members) / len(members) if members else float("nan")
    return report


HARDNESS = ("easy", "hard", "ultra_hard")


class PseudoLabelStats:
    """Accumulates pseudo-label quality and hardness on the device, without host synchronisation.

    Per true class k: how many unlabeled samples were seen, how many were used (mask > 0, the
    utilization) and how many of the used ones had a correct pseudo-label. With the classifier's
    probabilities also: the mean normalised entropy, and SeMi's hardness categories — *easy*
    (max p >= ``easy_threshold``), *hard* (``threshold`` <= max p < ``easy_threshold``) and
    *ultra-hard* (max p < ``threshold``). Samples whose true label is unknown (-1) are skipped.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", threshold: float = 0.95,
                 easy_threshold: float = 0.95) -> None:
        self.num_classes = num_classes
        self.threshold, self.easy_threshold = threshold, max(threshold, easy_threshold)
        # rows, per true class: seen, used, correct, with-probs, entropy sum, easy, hard, ultra-hard;
        # and per pseudo-label class: used (the class distribution the method gives the unlabeled data)
        self.counts = torch.zeros(9, num_classes, device=device)

    def reset(self) -> None:
        self.counts.zero_()

    @torch.no_grad()
    def update(self, true_labels: Tensor, pseudo_labels: Tensor, mask: Tensor | None = None,
               probs: Tensor | None = None) -> None:
        known = (true_labels >= 0).float()
        used = known if mask is None else known * (mask > 0).float()
        correct = used * (pseudo_labels == true_labels).float()
        rows = [known, used, correct]
        if probs is None:
            rows += [torch.zeros_like(known)] * 5
        else:
            confidence = probs.max(1).values
            easy = (confidence >= self.easy_threshold).float()
            ultra = (confidence < self.threshold).float()
            rows += [known, known * normalized_entropy(probs.float()), known * easy,
                     known * (1 - easy - ultra), known * ultra]
        self.counts[:8].index_add_(1, true_labels.clamp_min(0), torch.stack(rows))
        self.counts[8].index_add_(0, pseudo_labels, used)

    def report(self, groups: Mapping[str, Sequence[int]] | None = None) -> dict:
        """Pseudo-label accuracy (of used samples), utilization, entropy and hardness: overall, per class, per group."""
        seen, used, correct, with_probs, entropy, *hardness, assigned = self.counts.cpu().double()
        report = {
            "pl_accuracy": _ratio(correct.sum(), used.sum()),
            "utilization": _ratio(used.sum(), seen.sum()),
            # the class distribution of the used pseudo-labels (what the method says the unlabeled data holds)
            "pl_distribution": [round(_ratio(a, assigned.sum()), 6) for a in assigned],
            "pl_accuracy_per_class": [_ratio(c, u) for c, u in zip(correct, used)],
            "utilization_per_class": [_ratio(u, s) for u, s in zip(used, seen)],
        }
        if with_probs.sum() > 0:
            report["entropy"] = _ratio(entropy.sum(), with_probs.sum())
            report["entropy_per_class"] = [_ratio(e, n) for e, n in zip(entropy, with_probs)]
            for name, counts in zip(HARDNESS, hardness):
                report[name] = _ratio(counts.sum(), with_probs.sum())
        for name, classes in (groups or {}).items():
            idx = list(classes)
            report[f"pl_accuracy_{name}"] = _ratio(correct[idx].sum(), used[idx].sum())
            report[f"utilization_{name}"] = _ratio(used[idx].sum(), seen[idx].sum())
            if with_probs.sum() > 0:
                for category, counts in zip(HARDNESS, hardness):
                    report[f"{category}_{name}"] = _ratio(counts[idx].sum(), with_probs[idx].sum())
        return report


def _ratio(numerator: Tensor, denominator: Tensor) -> float:
    d = float(denominator)
    return float(numerator) / d if d > 0 else float("nan")


def stability(history: Sequence[Mapping[str, float]], key: str = "accuracy", last_fraction: float = 0.5) -> dict:
    """How much a metric oscillates over the last ``last_fraction`` of the evaluations.

    Returns the mean, the standard deviation and the mean absolute change between consecutive
    evaluations (all in the metric's units).
    """
    values = [row[key] for row in history if key in row]
    values = values[-max(2, round(len(values) * last_fraction)):]
    if len(values) < 2:
        raise ValueError(f"stability needs at least 2 evaluations of {key!r}, got {len(values)}")
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    jumps = [abs(b - a) for a, b in zip(values, values[1:])]
    return {"mean": mean, "std": std, "mean_abs_change": sum(jumps) / len(jumps)}
