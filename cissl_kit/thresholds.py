"""Confidence thresholds for pseudo-labels: fixed (FixMatch) or self-adaptive (FreeMatch)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_choice, check_float, check_int

THRESHOLD_MODES = ("fixed", "freematch")
# where the self-adaptive estimates start:
# * "freematch": 1/K, as FreeMatch's paper (Eq. 6), TorchSSL and USB's FreeMatchThresholingHook do
#   (USB: semilearn/algorithms/freematch/utils.py, 1/K since commit 9a24e00 of 2023-04-16; it started
#   at 1 only from c9709aa, 2023-02-09, until then; LayerMatch, built on USB, appeared in 2024);
# * "one": 1, so nothing passes until τ_t has come down to the network's confidence: a remedy for
#   runs too short for the EMA to leave its start, not what FreeMatch's code does.
SAT_STARTS = ("freematch", "one")
# the EMA's time constant as a fraction of the run: FreeMatch's momentum 0.999 (1,000 steps) over
# LayerMatch's 204,800 steps; measured as the soundest start from 1/K on mnist-LT (FixMatch docstring)
SAT_HORIZON = 0.005


def momentum_for(steps: int, horizon: float) -> float:
    """The EMA momentum whose time constant is ``horizon`` of a run of ``steps``: ``1 − 1/(horizon·steps)``
    (0 when that is at most one step). FreeMatch's 0.999 is a time constant of 1,000 steps."""
    return 1.0 - 1.0 / max(1.0, horizon * steps)


class SelfAdaptiveThreshold:
    """FreeMatch's self-adaptive threshold (Wang et al., 2023, Eq. 6–9).

    A global confidence ``τ_t`` (EMA of the batch's mean max-probability, Eq. 6) is scaled per class
    by the EMA of the mean predicted distribution ``p̃_t`` (Eq. 7), max-normalised (Eq. 8–9):
    ``τ_t(c) = p̃_t(c) / max p̃_t · τ_t``. ``start="freematch"``: both start at 1/K, as in FreeMatch's
    paper and code, so early in training almost every pseudo-label passes until the EMA has caught
    up (about ``1 / (1 − momentum)`` steps); ``start="one"``: they start at 1, so none passes until
    τ_t has come down. ``label_histogram`` (the EMA of the hard-label histogram) feeds the fairness loss.
    """

    def __init__(self, num_classes: int, momentum: float = 0.999, device: torch.device | str = "cpu",
                 start: str = "freematch") -> None:
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.momentum = check_float("momentum", momentum, 0.0, 1.0, max_inclusive=False)
        value = 1.0 / num_classes if check_choice("start", start, SAT_STARTS) == "freematch" else 1.0
        self.global_confidence = torch.full((), value, device=device)
        self.class_confidence = torch.full((num_classes,), value, device=device)
        self.label_histogram = torch.full((num_classes,), value, device=device)

    @torch.no_grad()
    def update(self, probs: Tensor) -> None:
        """Move the estimates towards this batch of weak-view probabilities."""
        weight = 1.0 - self.momentum
        if probs.shape[0] == 0:  # an empty unlabeled batch says nothing
            return
        confidence, labels = probs.max(1)
        self.global_confidence.lerp_(confidence.mean(), weight)  # Eq. 6
        self.class_confidence.lerp_(probs.mean(0), weight)  # Eq. 7
        histogram = torch.bincount(labels, minlength=self.num_classes).to(probs.dtype) / labels.numel()
        self.label_histogram.lerp_(histogram, weight)

    def thresholds(self) -> Tensor:
        """The per-class thresholds τ_t(c), a ``K`` vector (Eq. 8–9); the largest is τ_t."""
        return self.class_confidence / self.class_confidence.max() * self.global_confidence

    def mask(self, probs: Tensor) -> Tensor:
        """Update with ``probs``, then 1 where the confidence reaches its predicted class's threshold."""
        self.update(probs)
        confidence, labels = probs.max(1)
        return (confidence >= self.thresholds()[labels]).float()

    def state_dict(self) -> dict:
        return {"global_confidence": self.global_confidence, "class_confidence": self.class_confidence,
                "label_histogram": self.label_histogram}

    def load_state_dict(self, state: dict) -> None:
        device = self.global_confidence.device
        self.global_confidence = state["global_confidence"].to(device)
        self.class_confidence = state["class_confidence"].to(device)
        if "label_histogram" in state:  # (checkpoints written before the fairness loss have none)
            self.label_histogram = state["label_histogram"].to(device)


def fairness_loss(logits_strong: Tensor, mask: Tensor, class_confidence: Tensor, label_histogram: Tensor) -> Tensor:
    """FreeMatch's self-adaptive fairness loss (Eq. 11), as in its code (USB ``entropy_loss``):
    ``L_f = Σ_c a_c · log b_c`` with ``a = SumNorm(p̃_t / h̃_t)`` from the threshold's estimates and
    ``b = SumNorm(p̄ / h̄)`` over the strong views that pass the mask: their mean probability
    divided by the histogram of their predictions. 0 when no sample passes (no host sync)."""
    weights = (mask > 0).float()
    probs = torch.softmax(logits_strong.float(), dim=1)
    used = weights.sum()
    histogram = torch.bincount(probs.argmax(1), weights=weights, minlength=probs.shape[1])
    histogram = histogram / used.clamp_min(1.0)
    mean = (probs * weights[:, None]).sum(0) / used.clamp_min(1.0)
    mean = mean * torch.nan_to_num(1.0 / histogram, posinf=0.0).detach()
    mean = mean / mean.sum().clamp_min(1e-12)
    target = class_confidence * torch.nan_to_num(1.0 / label_histogram, posinf=0.0)
    target = (target / target.sum().clamp_min(1e-12)).detach()
    loss = (target * torch.log(mean + 1e-12)).sum()
    return torch.where(used > 0, loss, torch.zeros_like(loss))
