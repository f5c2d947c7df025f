"""Supervised baseline on the labeled set only: random or class-balanced sampling, optional LA."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..data.samplers import SAMPLERS
from ..losses import logit_adjusted_cross_entropy
from .base import Algorithm, Batch, StepContext, StepOutput, hparam


@dataclass
class Supervised(Algorithm):
    """Cross-entropy on labeled data; ``logit_adjust_tau`` > 0 trains with the logit-adjusted loss."""

    name = "supervised"
    sampler: str = hparam("random", "labeled-batch sampling: random or class-balanced", choices=SAMPLERS)
    logit_adjust_tau: float = hparam(0.0, "τ of the logit-adjusted loss, logits + τ·log π (0: plain CE)", low=0.0)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        loss = logit_adjusted_cross_entropy(net(batch.x_lb), batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        return StepOutput(loss, {"loss_s": loss.detach()})
