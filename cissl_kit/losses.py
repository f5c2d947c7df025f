"""Losses shared by the algorithms, each written once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def logit_adjusted_cross_entropy(logits: Tensor, targets: Tensor, log_prior: Tensor, tau: float = 0.0) -> Tensor:
    """Cross-entropy on ``logits + τ·log π`` (Menon et al., 2021); τ = 0 is plain cross-entropy.

    Training through the adjusted logits leaves the raw logits balanced, so predictions use the
    raw logits.
    """
    if tau:
        logits = logits + tau * log_prior
    return F.cross_entropy(logits, targets)


def fixmatch_consistency_loss(
    logits_weak: Tensor, logits_strong: Tensor, threshold: float
) -> tuple[Tensor, Tensor, Tensor]:
    """FixMatch: hard pseudo-label from the weak view, kept where ``max p >= threshold``.

    Cross-entropy on the strong view, averaged over the *whole* unlabeled batch (masked samples
    count as zero), so a batch with nothing above the threshold gives exactly 0.
    Returns ``(loss, mask, pseudo_labels)``.
    """
    probs = torch.softmax(logits_weak.detach().float(), dim=1)
    confidence, pseudo_labels = probs.max(dim=1)
    mask = (confidence >= threshold).float()
    per_sample = F.cross_entropy(logits_strong, pseudo_labels, reduction="none")
    return (per_sample * mask).mean(), mask, pseudo_labels
