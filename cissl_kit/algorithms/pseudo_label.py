"""Pseudo-Label (Lee, 2013): confident predictions on unlabeled data become hard targets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import masked_cross_entropy, mean_or_zero
from .base import Algorithm, Batch, StepContext, StepOutput, forward_split, hparam


@dataclass
class PseudoLabel(Algorithm):
    """Hard pseudo-labels from the weak view, trained on the same view where ``max p >= threshold``.

    The unlabeled weight ramps linearly from 0 to ``lambda_u`` over the first ``unsup_warmup``
    fraction of training (as in USB).
    """

    name = "pseudolabel"
    unlabeled_views = ("weak",)
    threshold: float = hparam(0.95, "confidence threshold τ for using a pseudo-label", low=0.0, high=1.0)
    lambda_u: float = hparam(1.0, "weight of the unlabeled loss", low=0.0)
    unsup_warmup: float = hparam(0.4, "fraction of training over which the unlabeled weight ramps up", low=0.0, high=1.0)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits_lb, logits_w = forward_split(net, batch.x_lb, batch.x_ulb_w)
        loss_s = F.cross_entropy(logits_lb, batch.y_lb)
        probs = torch.softmax(logits_w.detach().float(), 1)
        confidence, pseudo_labels = probs.max(1)
        mask = (confidence >= self.threshold).float()
        loss_u = masked_cross_entropy(logits_w, pseudo_labels, mask)
        ramp = min(1.0, ctx.progress / self.unsup_warmup) if self.unsup_warmup > 0 else 1.0
        loss = loss_s + self.lambda_u * ramp * loss_u
        logs = {"loss_s": loss_s.detach(), "loss_u": loss_u.detach(), "mask": mean_or_zero(mask)}
        return StepOutput(loss, logs, pseudo_labels, mask, probs)
