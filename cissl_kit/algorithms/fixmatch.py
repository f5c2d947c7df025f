"""FixMatch (Sohn et al., 2020), the base of SeMi and LayerMatch; optional logit adjustment."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..losses import fixmatch_consistency_loss, logit_adjusted_cross_entropy
from .base import Algorithm, Batch, StepContext, StepOutput, forward_split, hparam


@dataclass
class FixMatch(Algorithm):
    """Weak-view pseudo-labels above ``threshold`` supervise the strong view.

    ``logit_adjust_tau`` > 0 trains the labeled loss through ``logits + τ·log π`` (FixMatch + LA).
    """

    name = "fixmatch"
    unlabeled_views = ("weak", "strong")
    threshold: float = hparam(0.95, "confidence threshold τ for using a pseudo-label", low=0.0, high=1.0)
    lambda_u: float = hparam(1.0, "weight of the unlabeled loss", low=0.0)
    logit_adjust_tau: float = hparam(0.0, "τ of the logit-adjusted labeled loss (0: plain CE)", low=0.0)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits_lb, logits_w, logits_s = forward_split(net, batch.x_lb, batch.x_ulb_w, batch.x_ulb_s)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        loss_u, mask, pseudo_labels = fixmatch_consistency_loss(logits_w, logits_s, self.threshold)
        loss = loss_s + self.lambda_u * loss_u
        logs = {"loss_s": loss_s.detach(), "loss_u": loss_u.detach(), "mask": mask.mean()}
        return StepOutput(loss, logs, pseudo_labels, mask)
