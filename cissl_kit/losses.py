"""Losses shared by the algorithms, each paper equation written once (numbers in the comments)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

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


def mean_or_zero(values: Tensor) -> Tensor:
    """The mean, or 0 (not NaN) for an empty tensor, such as the batch of an empty unlabeled set."""
    return values.mean() if values.numel() else values.sum()


def masked_cross_entropy(logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Per-sample weighted cross-entropy averaged over the *whole* batch (weight 0 counts as 0)."""
    return mean_or_zero(F.cross_entropy(logits, targets, reduction="none") * weights)


class Consistency(NamedTuple):
    """FixMatch's unlabeled loss with what it was computed from."""

    loss: Tensor
    mask: Tensor  # 1 where max p >= threshold
    pseudo_labels: Tensor
    probs: Tensor  # softmax of the weak view, detached


def fixmatch_consistency_loss(
    logits_weak: Tensor, logits_strong: Tensor, threshold: float | Callable[[Tensor], Tensor]
) -> Consistency:
    """FixMatch: hard pseudo-label from the weak view, kept where ``max p >= threshold``.

    ``threshold`` may also be a function from the weak-view probabilities to the mask (e.g.
    FreeMatch's self-adaptive threshold). Cross-entropy on the strong view, averaged over the
    whole unlabeled batch, so a batch with nothing above the threshold gives exactly 0.
    """
    probs = torch.softmax(logits_weak.detach().float(), dim=1)
    confidence, pseudo_labels = probs.max(dim=1)
    mask = threshold(probs) if callable(threshold) else (confidence >= threshold).float()
    return Consistency(masked_cross_entropy(logits_strong, pseudo_labels, mask), mask, pseudo_labels, probs)


def balanced_branch_losses(
    logits_lb: Tensor, targets_lb: Tensor, logits_weak: Tensor, logits_strong: Tensor, log_prior: Tensor,
    tau: float, threshold: float,
) -> tuple[Tensor, Tensor]:
    """SeMi's balanced branch: ``(L_s^b, L_u^b)`` for a second linear head.

    L_s^b (Eq. 10): the logit-adjusted cross-entropy of the balanced head's labeled logits,
    ``logits_lb + τ·log π``. L_u^b (Eq. 11): its strong-view logits learn the main head's weak-view
    prediction made balanced, ``softmax(logits_weak − τ·log π)``, where that is above ``threshold``.
    """
    loss_lb = logit_adjusted_cross_entropy(logits_lb, targets_lb, log_prior, tau)  # Eq. 10
    balanced = torch.softmax(logits_weak.detach().float() - tau * log_prior, dim=1)
    confidence, labels = balanced.max(1)
    loss_ulb = masked_cross_entropy(logits_strong, labels, (confidence >= threshold).float())  # Eq. 11
    return loss_lb, loss_ulb


def normalized_entropy(probs: Tensor) -> Tensor:
    """H(p) / log K in [0, 1] per row (0·log 0 = 0)."""
    return torch.special.entr(probs).sum(1) / math.log(probs.shape[1])


def entropy_weight(probs: Tensor, scale: float = 0.75) -> Tensor:
    """SeMi's hard-example weight ``s·H(p)/log K + (1 − s)``, in [1 − s, 1] (Eq. 3–4)."""
    return scale * normalized_entropy(probs) + (1.0 - scale)


def embedding_alignment_loss(
    emb_weak: Tensor, emb_strong: Tensor, center: Tensor, weights: Tensor, temperature: float = 0.1, sharpen: float = 5.0
) -> Tensor:
    """SeMi's embedding alignment (Eq. 6): soft cross-entropy from the weak to the strong embedding.

    Target: softmax of the weak embedding, centred by ``center`` and sharpened (temperature
    ``temperature / sharpen``); prediction: softmax of the strong embedding at ``temperature``.
    ``weights`` select the samples (SeMi: the ultra-hard ones, below the threshold).
    """
    target = torch.softmax((emb_weak.detach().float() - center) / (temperature / sharpen), dim=1)
    per_sample = -(target * F.log_softmax(emb_strong.float() / temperature, dim=1)).sum(1)
    return mean_or_zero(per_sample * weights)


def semantic_labels(embeddings: Tensor, prototypes: Tensor, available: Tensor, temperature: float = 0.1) -> Tensor:
    """Soft labels from prototype distances, ``softmax(−‖e − c_k‖ / T_p)`` (the q_s of SeMi Eq. 8).

    Classes without a prototype (``available`` false) get probability 0; with no prototype at
    all, every row is 0 (and the caller should not mix).
    """
    logits = -torch.cdist(embeddings.float(), prototypes.float()) / temperature
    logits = logits.masked_fill(~available.view(1, -1), float("-inf"))
    safe = torch.where(available.any(), logits, torch.zeros_like(logits))
    return torch.softmax(safe, dim=1) * available.any().float()


def certainty_enhanced_labels(probs: Tensor, semantic: Tensor, class_weights: Tensor, strength: float) -> Tensor:
    """SeMi's pseudo-label certainty enhancement (Eq. 8), renormalised.

    ``q̃_k = (1 − v·w_k)·q̂_k + v·w_k·q_s,k`` with v = ``strength`` and w = ``class_weights``.
    """
    mix = strength * class_weights.view(1, -1)
    mixed = (1 - mix) * probs + mix * semantic
    return mixed / mixed.sum(1, keepdim=True).clamp_min(1e-12)
