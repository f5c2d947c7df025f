"""Accuracy overall, per class and per many / medium / few group; pseudo-label quality."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor


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
    per_class = (confusion.diag().double() / support.clamp_min(1)).tolist()
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


class PseudoLabelStats:
    """Accumulates pseudo-label quality on the device, without host synchronisation.

    Per true class k: how many unlabeled samples were seen, how many were used (mask > 0, the
    utilization) and how many of the used ones had a correct pseudo-label. Samples whose true
    label is unknown (-1) are skipped.
    """

    def __init__(self, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.counts = torch.zeros(3, num_classes, device=device)  # seen, used, correct

    def reset(self) -> None:
        self.counts.zero_()

    @torch.no_grad()
    def update(self, true_labels: Tensor, pseudo_labels: Tensor, mask: Tensor | None = None) -> None:
        known = (true_labels >= 0).float()
        used = known if mask is None else known * (mask > 0).float()
        correct = used * (pseudo_labels == true_labels).float()
        index = true_labels.clamp_min(0)
        self.counts.index_add_(1, index, torch.stack([known, used, correct]))

    def report(self, groups: Mapping[str, Sequence[int]] | None = None) -> dict:
        """Overall / per-class / per-group pseudo-label accuracy (of used samples) and utilization."""
        seen, used, correct = self.counts.double().cpu()
        report = {
            "pl_accuracy": _ratio(correct.sum(), used.sum()),
            "utilization": _ratio(used.sum(), seen.sum()),
            "pl_accuracy_per_class": [_ratio(c, u) for c, u in zip(correct, used)],
            "utilization_per_class": [_ratio(u, s) for u, s in zip(used, seen)],
        }
        for name, classes in (groups or {}).items():
            idx = list(classes)
            report[f"pl_accuracy_{name}"] = _ratio(correct[idx].sum(), used[idx].sum())
            report[f"utilization_{name}"] = _ratio(used[idx].sum(), seen[idx].sum())
        return report


def _ratio(numerator: Tensor, denominator: Tensor) -> float:
    d = float(denominator)
    return float(numerator) / d if d > 0 else float("nan")
