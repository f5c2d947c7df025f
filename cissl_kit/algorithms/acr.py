"""ACR (Wei & Gan, CVPR 2023): adaptive consistency regularisation with a dual-branch head, as in
the official code (``Gank0078/ACR``, ``train.py``).

* Two linear heads on one feature: the standard head (plain CE on labeled data) and the balanced
  head (logit-adjusted CE, ``logits + τ2·log π``), which gives the predictions.
* **Adaptive consistent logit adjustment.** The standard head learns the pseudo-labels
  ``softmax(z_w − τ·log π)`` of its own weak view. τ is chosen from how far the estimated
  unlabeled distribution û lies from three anchors, consistent (π), uniform and reversed (π
  flipped): ``τ = τ_max · softmax(d)[consistent]`` with ``d`` the period's mean divergences, so
  û ≈ π (consistent) gives a small τ and û far from π a large one. û is an EMA (``estimate_momentum``)
  of the class histogram of the balanced head's confident weak-view predictions.
* **Consistency on both branches**, on two strong views. The standard head's targets are its
  τ-adjusted pseudo-labels, kept where either they or the unadjusted ones are confident; the balanced
  head's targets are the standard head's pseudo-labels adjusted by τ12, kept where either they or the
  balanced head's own prediction are confident. Total ``L_x + L_u + L_x^b + L_u^b``.

The estimate's EMA momentum is 0.99, the value behind the published numbers: all three CIFAR-10
commands in ACR's README (``--ema-u 0.99``, commit 9a8f421, 2023-05-19) pass it, while ``train.py``'s
argparse default is 0.9.

Choices where the code and the paper's text part ways, documented:

* The divergence: the code computes ``½·KL(û‖a) + ½·KL(a‖û)`` for each anchor a (the symmetric KL
  its published numbers used), ``divergence="symmetric_kl"``; ``"js"`` is the Jensen–Shannon
  divergence the text names.
* The histogram: the code writes ``now_mask[targets] += mask``, which with repeated classes keeps
  one sample per class (a 0/1 indicator, not counts); this kit counts the confident predictions, as
  the paper describes the estimate.
* Schedule: the code starts estimating after 6 of its 500 "epochs" of 500 steps (3,000 of 250,000)
  and re-chooses τ once an epoch; here both are fractions of training (``estimate_after`` = 0.012,
  ``estimate_period`` = 0.002), so a short run makes as many τ updates as the published one. The
  code's first update sees no accumulated divergence and sets τ = τ_max/3; so does this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import logit_adjusted_cross_entropy, mean_or_zero
from .base import Algorithm, Batch, StepContext, StepOutput, hparam
from .semi import BalancedHeadNet

DIVERGENCES = ("symmetric_kl", "js")


def kl_divergence(p: Tensor, q: Tensor) -> Tensor:
    """KL(p‖q) = Σ p·(log p − log q), with 0·log 0 = 0 (``nn.KLDivLoss(reduction="sum")(q.log(), p)``)."""
    return (torch.xlogy(p, p) - p * q.clamp_min(1e-12).log()).sum(-1)


def anchor_divergences(estimate: Tensor, anchors: Tensor, kind: str = "symmetric_kl") -> Tensor:
    """The divergence of ``estimate`` (K,) from each row of ``anchors`` (A, K): symmetric KL as
    ACR's code, or Jensen–Shannon."""
    if kind == "symmetric_kl":
        return 0.5 * kl_divergence(estimate, anchors) + 0.5 * kl_divergence(anchors, estimate)
    middle = 0.5 * (estimate + anchors)
    return 0.5 * kl_divergence(estimate, middle) + 0.5 * kl_divergence(anchors, middle)


def adaptive_tau(mean_divergences: Tensor, tau_min: float, tau_max: float) -> Tensor:
    """ACR's τ: ``τ_min + (τ_max − τ_min)·softmax(d)[0]``, d = (consistent, uniform, reversed)."""
    return tau_min + (tau_max - tau_min) * torch.softmax(mean_divergences, dim=0)[0]


@dataclass
class ACR(Algorithm):
    """FixMatch + ACR: dual-branch head, adaptive consistent logit adjustment, two strong views.

    Logged each step: ``tau`` and the divergences ``div_consistent`` / ``div_uniform`` /
    ``div_reversed`` of the estimate from the anchors; the estimate û itself is ``self.estimate``.
    """

    name = "acr"
    unlabeled_views = ("weak", "strong", "strong2")
    threshold: float = hparam(0.95, "confidence threshold of both branches (ACR code: 0.95)", low=0.0, high=1.0)
    temperature: float = hparam(1.0, "temperature T of the pseudo-labels (ACR code: 1)", low=0.0, low_open=True)
    tau1: float = hparam(2.0, "τ_max, the largest adjustment of the standard head's pseudo-labels (code: 2)", low=0.0)
    tau12: float = hparam(2.0, "τ12, the adjustment of the balanced head's pseudo-labels (code: 2)", low=0.0)
    tau2: float = hparam(2.0, "τ2 of the balanced head's logit-adjusted labeled loss (code: 2)", low=0.0)
    estimate_momentum: float = hparam(0.99, "EMA momentum of the unlabeled distribution estimate, per step (the "
                                            "published CIFAR-10 commands: --ema-u 0.99; train.py's default is 0.9)",
                                      low=0.0, high=1.0)
    estimate_after: float = hparam(0.012, "fraction of training before the estimate starts (code: 3,000 of 250k steps)",
                                   low=0.0, high=1.0)
    estimate_period: float = hparam(0.002, "fraction of training between τ updates (code: 500 of 250k steps)",
                                    low=0.0, high=1.0, low_open=True)
    divergence: str = hparam("symmetric_kl", "divergence from the anchors: symmetric_kl (code) or js", choices=DIVERGENCES)

    def build_network(self, model: nn.Module) -> nn.Module:
        return BalancedHeadNet(model)

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return net.balanced_head(net.features(x))  # the code reports the balanced head

    def setup(self, net: nn.Module, data) -> None:
        device, k = data.device, data.num_classes
        prior = data.class_prior()
        self.anchors = torch.stack([prior, torch.full_like(prior, 1.0 / k), prior.flip(0)])  # con, uni, rev
        self.estimate = torch.full((k,), 1.0 / k, device=device)  # û, uniform at first (code)
        self.divergence_sum = torch.zeros(3, device=device)
        self.tau = torch.tensor(self.tau1, device=device)  # the code starts with τ = τ1

    def schedule(self, total_steps: int) -> tuple[int, int]:
        """(first estimating step, steps per τ update) for a run of ``total_steps``."""
        return round(self.estimate_after * total_steps), max(1, round(self.estimate_period * total_steps))

    def _update_tau(self, ctx: StepContext) -> None:
        start, period = self.schedule(ctx.total_steps)
        if ctx.step >= start and (ctx.step - start) % period == 0:  # start of a code "epoch" > est_epoch
            tau = adaptive_tau(self.divergence_sum / period, 0.0, self.tau1)
            self.tau = torch.where(torch.isnan(tau), self.tau, tau)
            self.divergence_sum = torch.zeros_like(self.divergence_sum)

    def _update_estimate(self, predictions: Tensor, confident: Tensor) -> Tensor:
        """EMA of the confident predictions' class histogram; returns the new estimate's divergences."""
        counts = torch.zeros_like(self.estimate).scatter_add_(0, predictions, confident.float())
        total = counts.sum()
        current = counts / total.clamp_min(1.0)
        updated = self.estimate_momentum * self.estimate + (1 - self.estimate_momentum) * current
        seen = total > 0  # the code skips batches without a confident prediction
        self.estimate = torch.where(seen, updated, self.estimate)
        divergences = anchor_divergences(self.estimate, self.anchors, self.divergence)
        self.divergence_sum = self.divergence_sum + torch.where(seen, divergences, torch.zeros_like(divergences))
        return divergences

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        self._update_tau(ctx)
        parts = [batch.x_lb, batch.x_ulb_w, batch.x_ulb_s, batch.x_ulb_s2]
        sizes = [p.shape[0] for p in parts]
        feats = net.features(torch.cat(parts))
        logits_lb, logits_w, logits_s, logits_s2 = net.head(feats).split(sizes)
        logits_b_lb, logits_b_w, logits_b_s, logits_b_s2 = net.balanced_head(feats).split(sizes)
        log_prior = ctx.log_prior

        loss_x = F.cross_entropy(logits_lb, batch.y_lb)
        loss_x_b = logit_adjusted_cross_entropy(logits_b_lb, batch.y_lb, log_prior, self.tau2)

        weak, weak_b, t = logits_w.detach().float(), logits_b_w.detach().float(), self.temperature
        probs = torch.softmax((weak - self.tau * log_prior) / t, dim=1)  # adaptive adjustment
        probs_h2 = torch.softmax((weak - self.tau12 * log_prior) / t, dim=1)
        probs_b = torch.softmax(weak_b / t, dim=1)
        probs_t = torch.softmax(weak / t, dim=1)
        confidence, targets = probs.max(1)
        confidence_h2, targets_h2 = probs_h2.max(1)
        confidence_b, predictions_b = probs_b.max(1)
        confident_b = confidence_b >= self.threshold
        mask = ((confidence >= self.threshold) | (probs_t.max(1).values >= self.threshold)).float()
        mask_b = (confident_b | (confidence_h2 >= self.threshold)).float()

        loss_u = mean_or_zero(torch.cat([F.cross_entropy(logits_s, targets, reduction="none") * mask,
                                         F.cross_entropy(logits_s2, targets, reduction="none") * mask]))
        loss_u_b = mean_or_zero(torch.cat([F.cross_entropy(logits_b_s, targets_h2, reduction="none") * mask_b,
                                           F.cross_entropy(logits_b_s2, targets_h2, reduction="none") * mask_b]))
        if ctx.step >= self.schedule(ctx.total_steps)[0]:
            divergences = self._update_estimate(predictions_b, confident_b)
        else:  # (logged: what τ will be chosen from)
            divergences = anchor_divergences(self.estimate, self.anchors, self.divergence)
        logs = {"div_consistent": divergences[0], "div_uniform": divergences[1], "div_reversed": divergences[2],
                "loss_s": loss_x.detach(), "loss_u": loss_u.detach(), "loss_s_b": loss_x_b.detach(),
                "loss_u_b": loss_u_b.detach(), "mask": mean_or_zero(mask), "mask_b": mean_or_zero(mask_b),
                "confidence": mean_or_zero(probs_t.max(1).values), "tau": self.tau.detach().clone(),
                "threshold": torch.full((), self.threshold, device=loss_x.device)}
        return StepOutput(loss_x + loss_u + loss_x_b + loss_u_b, logs, targets, mask, probs_t)

    def unlabeled_estimate(self) -> Tensor:
        return self.estimate

    def state_dict(self) -> dict:
        return {"estimate": self.estimate, "divergence_sum": self.divergence_sum, "tau": self.tau}

    def load_state_dict(self, state: dict) -> None:
        self.estimate, self.divergence_sum, self.tau = state["estimate"], state["divergence_sum"], state["tau"]
