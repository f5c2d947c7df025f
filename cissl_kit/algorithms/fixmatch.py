"""FixMatch (Sohn et al., 2020), the base of SeMi and LayerMatch; optional logit adjustment and
FreeMatch's self-adaptive threshold."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..losses import fixmatch_consistency_loss, logit_adjusted_cross_entropy, mean_or_zero
from ..thresholds import THRESHOLD_MODES, SelfAdaptiveThreshold
from .base import Algorithm, Batch, StepContext, StepOutput, forward_split, hparam


@dataclass
class FixMatch(Algorithm):
    """Weak-view pseudo-labels above a threshold supervise the strong view.

    ``threshold_mode="freematch"`` replaces the fixed ``threshold`` by FreeMatch's self-adaptive
    per-class thresholds; ``logit_adjust_tau`` > 0 trains the labeled loss through
    ``logits + τ·log π`` (FixMatch + LA).
    """

    name = "fixmatch"
    unlabeled_views = ("weak", "strong")
    threshold: float = hparam(0.95, "confidence threshold τ for using a pseudo-label", low=0.0, high=1.0)
    threshold_mode: str = hparam("fixed", "fixed τ, or FreeMatch's self-adaptive thresholds", choices=THRESHOLD_MODES)
    sat_momentum: float = hparam(0.999, "EMA momentum λ of the self-adaptive threshold", low=0.0, high=1.0)
    lambda_u: float = hparam(1.0, "weight of the unlabeled loss", low=0.0)
    logit_adjust_tau: float = hparam(0.0, "τ of the logit-adjusted labeled loss (0: plain CE)", low=0.0)
    adaptive = None  # the SelfAdaptiveThreshold, made in setup (not a hyper-parameter)

    def setup(self, net: nn.Module, data) -> None:
        if self.threshold_mode == "freematch":
            self.adaptive = SelfAdaptiveThreshold(net.head.out_features, self.sat_momentum, data.device)

    def _threshold(self):
        """The fixed threshold, or the self-adaptive masking function."""
        return self.threshold if self.adaptive is None else self.adaptive.mask

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits_lb, logits_w, logits_s = forward_split(net, batch.x_lb, batch.x_ulb_w, batch.x_ulb_s)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        u = fixmatch_consistency_loss(logits_w, logits_s, self._threshold())
        return self._output(loss_s, u)

    def _output(self, loss_s: Tensor, u, **extra: Tensor) -> StepOutput:
        loss = loss_s + self.lambda_u * u.loss + sum(extra.values(), torch.zeros((), device=loss_s.device))
        logs = {"loss_s": loss_s.detach(), "loss_u": u.loss.detach(), "mask": mean_or_zero(u.mask),
                **{k: v.detach() for k, v in extra.items()}}
        if self.adaptive is not None:
            logs["threshold"] = self.adaptive.global_confidence.clone()
        return StepOutput(loss, logs, u.pseudo_labels, u.mask, u.probs)

    def state_dict(self) -> dict:
        return {} if self.adaptive is None else {"adaptive_threshold": self.adaptive.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.adaptive is not None:
            self.adaptive.load_state_dict(state["adaptive_threshold"])
        else:
            super().load_state_dict(state)
