"""Confidence thresholds for pseudo-labels: fixed (FixMatch) or self-adaptive (FreeMatch)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_float, check_int

THRESHOLD_MODES = ("fixed", "freematch")


class SelfAdaptiveThreshold:
    """FreeMatch's self-adaptive threshold (Wang et al., 2023, Eq. 6–9).

    A global confidence ``τ_t`` (EMA of the batch's mean max-probability) is scaled per class by
    the EMA of the mean predicted distribution, max-normalised: ``τ_t(c) = p̃_t(c) / max p̃_t · τ_t``.
    Both start at 1/K, so early in training almost every pseudo-label passes.
    """

    def __init__(self, num_classes: int, momentum: float = 0.999, device: torch.device | str = "cpu") -> None:
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.momentum = check_float("momentum", momentum, 0.0, 1.0, max_inclusive=False)
        self.global_confidence = torch.full((), 1.0 / num_classes, device=device)
        self.class_confidence = torch.full((num_classes,), 1.0 / num_classes, device=device)

    @torch.no_grad()
    def update(self, probs: Tensor) -> None:
        """Move both estimates towards this batch of weak-view probabilities."""
        weight = 1.0 - self.momentum
        if probs.shape[0] == 0:  # an empty unlabeled batch says nothing
            return
        self.global_confidence.lerp_(probs.max(1).values.mean(), weight)
        self.class_confidence.lerp_(probs.mean(0), weight)

    def thresholds(self) -> Tensor:
        """The per-class thresholds τ_t(c), a ``K`` vector."""
        return self.class_confidence / self.class_confidence.max() * self.global_confidence

    def mask(self, probs: Tensor) -> Tensor:
        """Update with ``probs``, then 1 where the confidence reaches its predicted class's threshold."""
        self.update(probs)
        confidence, labels = probs.max(1)
        return (confidence >= self.thresholds()[labels]).float()

    def state_dict(self) -> dict:
        return {"global_confidence": self.global_confidence, "class_confidence": self.class_confidence}

    def load_state_dict(self, state: dict) -> None:
        self.global_confidence = state["global_confidence"].to(self.global_confidence.device)
        self.class_confidence = state["class_confidence"].to(self.class_confidence.device)
