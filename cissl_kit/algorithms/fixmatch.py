"""FixMatch (Sohn et al., 2020), the base of SeMi and LayerMatch; optional logit adjustment and
FreeMatch's self-adaptive threshold."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..losses import fixmatch_consistency_loss, logit_adjusted_cross_entropy, mean_or_zero
from ..thresholds import SAT_HORIZON, SAT_STARTS, THRESHOLD_MODES, SelfAdaptiveThreshold, fairness_loss, momentum_for
from .base import Algorithm, Batch, StepContext, StepOutput, forward_split, hparam


@dataclass
class FixMatch(Algorithm):
    """Weak-view pseudo-labels above a threshold supervise the strong view.

    ``threshold_mode="freematch"`` replaces the fixed ``threshold`` by FreeMatch's self-adaptive
    per-class thresholds (``sat_*``; with ``fairness_weight`` = 0.01 it is FreeMatch in full). They
    start at 1/K, as FreeMatch's paper and code do (``sat_start``; see :mod:`cissl_kit.thresholds`), and
    their EMA's time constant is a fraction of the run, ``sat_horizon`` = 0.5%: FreeMatch's momentum
    0.999 is a time constant of 1,000 steps, 0.5% of LayerMatch's 204,800, and a schedule scales with
    the run. Measured on mnist-LT, 1,000 steps, 3 seeds (``benchmarks/paper_tables.py sat``), that is
    the soundest start from 1/K, and still not a sound one: over the first 10% of training the
    pseudo-labels are 74% / 32% right at a mask rate of 81% / 66% (consistent / reversed unlabeled
    data), against 64% / 22% right with everything passing at momentum 0.999, and 99.7% / 97.5% right
    (23% / 6% passing) from a start at 1 (``sat_start="one"``, the remedy for short runs).
    ``logit_adjust_tau`` > 0 trains the labeled loss through ``logits + τ·log π`` (FixMatch + LA).
    """

    name = "fixmatch"
    unlabeled_views = ("weak", "strong")
    threshold: float = hparam(0.95, "confidence threshold τ for using a pseudo-label", low=0.0, high=1.0)
    threshold_mode: str = hparam("fixed", "fixed τ, or FreeMatch's self-adaptive thresholds", choices=THRESHOLD_MODES)
    sat_momentum: float = hparam(0.999, "EMA momentum λ of the self-adaptive threshold (FreeMatch: 0.999, a time "
                                        "constant of 1,000 steps); used when sat_horizon is 0", low=0.0, high=1.0)
    sat_horizon: float = hparam(SAT_HORIZON, "the self-adaptive threshold's EMA time constant as a fraction of "
                                             "training (momentum 1 − 1/(horizon·steps)); default 0.005: FreeMatch's "
                                             "1,000 steps of LayerMatch's 204,800; 0: use sat_momentum",
                                low=0.0, high=1.0)
    sat_start: str = hparam("freematch", "where the self-adaptive estimates start: freematch (1/K, as FreeMatch's "
                                         "paper, Eq. 6, and its code do: at first almost everything passes) or one "
                                         "(1: nothing passes until the threshold has come down; a remedy for short "
                                         "runs, not FreeMatch's code)", choices=SAT_STARTS)
    fairness_weight: float = hparam(0.0, "λ_f of FreeMatch's self-adaptive fairness loss (FreeMatch: 0.01)", low=0.0)
    lambda_u: float = hparam(1.0, "weight of the unlabeled loss", low=0.0)
    logit_adjust_tau: float = hparam(0.0, "τ of the logit-adjusted labeled loss (0: plain CE)", low=0.0)
    adaptive = None  # the SelfAdaptiveThreshold, made in setup (not a hyper-parameter)

    def setup(self, net: nn.Module, data) -> None:
        if self.threshold_mode == "freematch":
            self.adaptive = SelfAdaptiveThreshold(net.head.out_features, self.sat_momentum, data.device,
                                                  self.sat_start)

    def _threshold(self, ctx: StepContext):
        """The fixed threshold, or the self-adaptive masking function (its momentum set for this run)."""
        if self.adaptive is None:
            return self.threshold
        if self.sat_horizon:
            self.adaptive.momentum = momentum_for(ctx.total_steps, self.sat_horizon)
        return self.adaptive.mask

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits_lb, logits_w, logits_s = forward_split(net, batch.x_lb, batch.x_ulb_w, batch.x_ulb_s)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        u = fixmatch_consistency_loss(logits_w, logits_s, self._threshold(ctx))
        return self._output(loss_s, u, **self._fairness(logits_s, u.mask))

    def _mask(self, probs: Tensor, ctx: StepContext) -> Tensor:
        """1 where ``probs`` (a method's own pseudo-label distribution) is confident enough: max p ≥ τ,
        or FreeMatch's self-adaptive masking function."""
        threshold = self._threshold(ctx)
        return threshold(probs) if callable(threshold) else (probs.max(1).values >= threshold).float()

    def _shared_forward(self, net: nn.Module, batch: Batch, ctx: StepContext):
        """FixMatch's losses from ``net.head`` on one forward of the three parts, plus that forward's
        features and part sizes (for a second head on the same features)."""
        sizes = [batch.x_lb.shape[0], batch.x_ulb_w.shape[0], batch.x_ulb_s.shape[0]]
        feats = net.features(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        logits_lb, logits_w, logits_s = net.head(feats).split(sizes)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        return feats, sizes, logits_w, logits_s, loss_s, fixmatch_consistency_loss(logits_w, logits_s, self._threshold(ctx))

    def _fairness(self, logits_strong: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """``{"loss_f": λ_f·L_f}`` (FreeMatch Eq. 11) when it is switched on, else nothing."""
        if self.adaptive is None or not self.fairness_weight:
            return {}
        a = self.adaptive
        return {"loss_f": self.fairness_weight * fairness_loss(logits_strong, mask, a.class_confidence, a.label_histogram)}

    def _output(self, loss_s: Tensor, u, **extra: Tensor) -> StepOutput:
        loss = loss_s + self.lambda_u * u.loss + sum(extra.values(), torch.zeros((), device=loss_s.device))
        logs = {"loss_s": loss_s.detach(), "loss_u": u.loss.detach(), "mask": mean_or_zero(u.mask),
                "confidence": mean_or_zero(u.probs.max(1).values),  # the weak views' mean max p
                **{k: v.detach() for k, v in extra.items()}}
        # the threshold this step used: τ, or the self-adaptive τ_t (the highest per-class threshold)
        logs["threshold"] = (self.adaptive.global_confidence.clone() if self.adaptive is not None
                             else torch.full((), self.threshold, device=loss_s.device))
        return StepOutput(loss, logs, u.pseudo_labels, u.mask, u.probs)

    def state_dict(self) -> dict:
        return {} if self.adaptive is None else {"adaptive_threshold": self.adaptive.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.adaptive is not None:
            self.adaptive.load_state_dict(state["adaptive_threshold"])
        else:
            super().load_state_dict(state)
