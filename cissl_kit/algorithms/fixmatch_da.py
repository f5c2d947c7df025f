"""FixMatch with distribution alignment towards the labeled distribution to the power t: CReST+'s
per-generation algorithm (the recipe that runs the generations is :mod:`cissl_kit.recipes.crest`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..losses import Consistency, logit_adjusted_cross_entropy, masked_cross_entropy
from .base import Batch, StepContext, StepOutput, forward_split, hparam
from .fixmatch import FixMatch


@dataclass
class FixMatchDA(FixMatch):
    """FixMatch with distribution alignment towards the labeled distribution to the power t
    (CReST+'s per-generation algorithm; t = 1 aligns to π itself)."""

    name = "fixmatch_da"
    dist_align_t: float = hparam(1.0, "t: align the pseudo-labels to π^t normalised (1: π)", low=0.0, high=1.0)
    da_momentum: float = hparam(0.999, "EMA momentum of the model's mean prediction p̄ (USB: 0.999)", low=0.0, high=1.0)
    target_prior = None  # π; set by the recipe to the original labeled distribution, else from the data

    def setup(self, net: nn.Module, data) -> None:
        super().setup(net, data)
        prior = self.target_prior.to(data.device) if self.target_prior is not None else data.class_prior()
        target = prior ** self.dist_align_t
        self.target = target / target.sum()
        self.p_model = None  # the first batch's mean, then an EMA (USB's DistAlignEMAHook)

    def align(self, probs: Tensor) -> Tensor:
        mean = probs.mean(0)
        self.p_model = mean if self.p_model is None else self.p_model * self.da_momentum + mean * (1 - self.da_momentum)
        aligned = probs * (self.target + 1e-6) / (self.p_model + 1e-6)
        return aligned / aligned.sum(1, keepdim=True)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits_lb, logits_w, logits_s = forward_split(net, batch.x_lb, batch.x_ulb_w, batch.x_ulb_s)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)
        probs = torch.softmax(logits_w.detach().float(), dim=1)
        aligned = self.align(probs) if probs.shape[0] else probs
        mask = self._mask(aligned, ctx)
        pseudo_labels = aligned.argmax(1)
        u = Consistency(masked_cross_entropy(logits_s, pseudo_labels, mask), mask, pseudo_labels, probs)
        return self._output(loss_s, u, **self._fairness(logits_s, mask))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "p_model": self.p_model}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.p_model = state.pop("p_model")
        super().load_state_dict(state)
