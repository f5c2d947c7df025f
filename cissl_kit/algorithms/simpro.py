"""SimPro (Du et al., ICML 2024): a simple probabilistic framework for realistic long-tailed SSL, as in
the official code (``LeapLabTHU/SimPro``, ``SimPro/train.py``, commit aa2425d, 2024-09-30).

The model: the network's logits f(x) model p(x | y) up to a constant; the class prior of the
training data and of the unlabeled data are unknown parameters, re-estimated in closed form (the
EM algorithm's M-step) from the pseudo-labels (the E-step):

* **E-step (pseudo-labels).** ``q(y | x_u) = softmax(f(x_u^w) + τ·log π̂_u)``, soft, kept where
  ``max q ≥ threshold``; π̂_u is the current estimate of the unlabeled prior (uniform at first).
* **Losses.** The labeled loss (weak and strong labeled views) and the unlabeled loss (two strong
  views, soft targets, averaged over the whole batch) are logit-adjusted by the estimated prior
  of all training data, ``f(x) + τ·log π̂``, π̂ starting at the labeled prior. The labeled loss is
  divided by the ratio of unlabeled to labeled batches per pass (the code's ``scale_ratio``).
* **M-step, closed form, once a period** (the code's "epoch" of 500 steps, here a fraction of the
  run): ``π̂_u ← m·π̂_u + (1 − m)·s / (Σs + 1)`` with s the summed pseudo-labels that passed, and
  ``π̂ ← m·π̂ + (1 − m)·normalise(labeled counts seen + s)``; m = ``estimate_momentum``.
* **Bayes-optimal prediction.** For a test set of prior q the rule is ``argmax f(x) + log q``; the
  test sets here are balanced, so the raw logits predict (as the code evaluates them).

Defaults from the published CIFAR-10 command (``sh/SimPro.sh``): τ = 2, threshold 0.95, ``ema_u``
= 0.9; the period is 500 of its 43,000 steps. Its loop settings (lr 0.17, μ = 8) are the kit's own
here, as for every method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import mean_or_zero
from .base import Algorithm, Batch, StepContext, StepOutput, hparam


def adjustment(prior: Tensor, tau: float) -> Tensor:
    """The code's ``compute_adjustment_by_py``: ``log(π^τ + 1e-12)``."""
    return torch.log(prior**tau + 1e-12)


def em_update(estimate: Tensor, adapted: Tensor, pseudo_sum: Tensor, labeled_count: Tensor,
              momentum: float) -> tuple[Tensor, Tensor]:
    """The closed-form M-step at the end of a period: the new (unlabeled prior π̂_u, training prior π̂)."""
    unlabeled = pseudo_sum / (pseudo_sum.sum() + 1)
    estimate = estimate * momentum + unlabeled * (1 - momentum)
    seen = labeled_count + pseudo_sum
    adapted = adapted * momentum + seen / seen.sum().clamp_min(1e-12) * (1 - momentum)
    return estimate, adapted


@dataclass
class SimPro(Algorithm):
    """FixMatch with SimPro's EM-estimated priors: logit-adjusted soft pseudo-labels and losses.

    ``self.estimate`` is π̂_u (recorded at every evaluation) and ``self.adapted`` π̂."""

    name = "simpro"
    unlabeled_views = ("weak", "strong", "strong2")
    labeled_views = ("weak", "strong")
    tau: float = hparam(2.0, "τ of the prior adjustments (code, CIFAR-10: 2; CIFAR-100: 1)", low=0.0)
    threshold: float = hparam(0.95, "confidence threshold of the pseudo-labels (code, CIFAR-10: 0.95)", low=0.0, high=1.0)
    estimate_momentum: float = hparam(0.9, "EMA momentum of the priors, per period (code --ema-u: 0.9)",
                                      low=0.0, high=1.0)
    estimate_period: float = hparam(500 / 43000, "fraction of training between M-steps (code: an epoch of 500 of "
                                                 "43,000 steps)", low=0.0, high=1.0, low_open=True)
    scale_labeled_loss: bool = hparam(True, "divide the labeled loss by unlabeled / labeled batches per pass (code)")

    def setup(self, net: nn.Module, data) -> None:
        k, device = data.num_classes, data.device
        self.estimate = torch.full((k,), 1.0 / k, device=device)  # π̂_u (code: uniform)
        self.adapted = data.class_prior().clone()  # π̂ (code: the labeled prior)
        self.pseudo_sum = torch.zeros(k, device=device)
        self.labeled_count = torch.zeros(k, device=device)
        self.set_sizes = (len(data.labeled_idx), len(data.unlabeled_idx))  # for the code's scale_ratio
        self.scale = None  # (it needs the batch sizes: set at the first step)

    def period(self, total_steps: int) -> int:
        return max(1, round(self.estimate_period * total_steps))

    def _m_step(self, ctx: StepContext) -> None:
        if ctx.step > 0 and ctx.step % self.period(ctx.total_steps) == 0:  # the code: at each epoch's end
            self.estimate, self.adapted = em_update(self.estimate, self.adapted, self.pseudo_sum, self.labeled_count,
                                                    self.estimate_momentum)
            self.pseudo_sum = torch.zeros_like(self.pseudo_sum)
            self.labeled_count = torch.zeros_like(self.labeled_count)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        self._m_step(ctx)
        b, u = batch.x_lb.shape[0], batch.x_ulb_w.shape[0]
        if self.scale is None:  # the code's scale_ratio: unlabeled over labeled batches in one pass (drop_last)
            n_lb, n_ulb = self.set_sizes
            self.scale = max(1, n_ulb // max(1, u)) / max(1, n_lb // max(1, b)) if self.scale_labeled_loss else 1.0
        parts = [batch.x_lb, batch.x_lb_s, batch.x_ulb_w, batch.x_ulb_s, batch.x_ulb_s2]
        logits = net(torch.cat(parts))
        logits_l, logits_w, logits_s = logits.split([2 * b, u, 2 * u])
        adjust, adjust_u = adjustment(self.adapted, self.tau), adjustment(self.estimate, self.tau)
        pseudo = torch.softmax(logits_w.detach().float() + adjust_u, dim=-1)  # E-step
        confidence, labels = pseudo.max(1)
        mask = (confidence >= self.threshold).float()
        self.labeled_count = self.labeled_count + F.one_hot(batch.y_lb, pseudo.shape[1]).sum(0)  # (no host sync)
        self.pseudo_sum = self.pseudo_sum + (pseudo * mask[:, None]).sum(0)
        loss_x = F.cross_entropy(logits_l + adjust, torch.cat([batch.y_lb, batch.y_lb])) / self.scale
        loss_u = mean_or_zero(F.cross_entropy(logits_s + adjust, torch.cat([pseudo, pseudo]), reduction="none")
                              * torch.cat([mask, mask]))
        probs = torch.softmax(logits_w.detach().float(), dim=-1)
        logs = {"loss_s": loss_x.detach(), "loss_u": loss_u.detach(), "mask": mean_or_zero(mask),
                "confidence": mean_or_zero(probs.max(1).values)}
        return StepOutput(loss_x + loss_u, logs, labels, mask, probs)

    def unlabeled_estimate(self) -> Tensor:
        return self.estimate

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return net(x)  # balanced test set: the Bayes-optimal rule is argmax f(x) + log(1/K)

    def state_dict(self) -> dict:
        return {"estimate": self.estimate, "adapted": self.adapted, "pseudo_sum": self.pseudo_sum,
                "labeled_count": self.labeled_count}

    def load_state_dict(self, state: dict) -> None:
        self.estimate, self.adapted = state["estimate"], state["adapted"]
        self.pseudo_sum, self.labeled_count = state["pseudo_sum"], state["labeled_count"]
