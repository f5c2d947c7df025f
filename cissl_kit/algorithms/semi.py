"""SeMi (Wang et al.): entropy-weighted hard examples, embedding alignment, a confidence-decay
memory bank, pseudo-label certainty enhancement and a logit-adjusted balanced head, on FixMatch.

Where the paper and its public code (``pywin/SeMi``) differ, this follows the paper and
``DESIGN.md``: τ = 0.7; one strong view; prototypes from filled slots only; the centre of the
alignment target is an EMA of the weak embeddings (the code averages softmax outputs).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import (
    balanced_branch_losses,
    certainty_enhanced_labels,
    embedding_alignment_loss,
    entropy_weight,
    masked_cross_entropy,
    mean_or_zero,
    semantic_labels,
)
from ..memory_bank import BANK_POLICIES, BalancedMemoryBank
from ..models.base import ModelWrapper
from .base import Algorithm, Batch, StepContext, StepOutput, hparam


class BalancedHeadNet(ModelWrapper):
    """A backbone (``features`` + ``head``) with a second linear head for balanced predictions."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.balanced_head = nn.Linear(model.head.in_features, model.head.out_features)

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(**self.model.layer_groups(), balanced_head=self.balanced_head)


@dataclass
class SeMi(Algorithm):
    """FixMatch + SeMi; every component can be switched off for ablations (paper Table 5).

    Total loss (Eq. 12): ``L_s + λ_u·L_u + w_EA·L_EA + L_s^b + L_u^b``. For the first ``warmup``
    fraction of training it is FixMatch (plus the balanced branch, and the bank filling up); then
    OHEML, embedding alignment and certainty enhancement switch on.
    """

    name = "semi"
    unlabeled_views = ("weak", "strong")
    threshold: float = hparam(0.7, "confidence threshold τ (paper 0.7; its public code keeps 0.95)", low=0.0, high=1.0)
    lambda_u: float = hparam(1.0, "weight of the unlabeled loss", low=0.0)
    warmup: float = hparam(0.1, "fraction of training that is plain FixMatch before SeMi switches on", low=0.0, high=1.0)
    use_oheml: bool = hparam(True, "entropy-based hard-example weighting (OHEML, Eq. 3–5)")
    entropy_scale: float = hparam(0.75, "s of the OHEML weight s·H/log K + (1 − s)", low=0.0, high=1.0)
    use_alignment: bool = hparam(True, "embedding alignment of ultra-hard samples (EA, Eq. 6)")
    alignment_weight: float = hparam(0.15, "weight of the embedding-alignment loss", low=0.0)
    alignment_temperature: float = hparam(0.1, "T_e of the embedding alignment (target at T_e / 5)", low=0.0, low_open=True)
    center_momentum: float = hparam(0.9, "EMA momentum of the weak-embedding centre", low=0.0, high=1.0)
    bank_policy: str = hparam("confidence", "memory bank: confidence-ranked with decay, or a plain FIFO queue",
                              choices=BANK_POLICIES)
    bank_slots: int = hparam(128, "memory-bank slots per class (B)", low=1)
    bank_decay: float = hparam(0.99, "confidence decay β of the memory bank (Eq. 7)", low=0.0, high=1.0)
    decay_every: int = hparam(50, "apply the bank decay every this many steps (n)", low=1)
    use_plce: bool = hparam(True, "pseudo-label certainty enhancement with prototypes (PLCE, Eq. 8–9)")
    plce_alpha: float = hparam(0.4, "α of the dynamic mixing weight v = α · progress", low=0.0, high=1.0)
    proto_temperature: float = hparam(0.1, "T_p of the prototype softmax", low=0.0, low_open=True)
    use_balanced_head: bool = hparam(True, "logit-adjusted balanced head that gives predictions (BC, Eq. 10–11)")
    balanced_tau: float = hparam(2.0, "τ_b of the balanced head's logit adjustment", low=0.0)

    def build_network(self, model: nn.Module) -> nn.Module:
        return BalancedHeadNet(model) if self.use_balanced_head else model

    def setup(self, net: nn.Module, data) -> None:
        k, device = net.head.out_features, data.device
        self.bank = BalancedMemoryBank(k, self.bank_slots, net.head.in_features, self.bank_decay, self.bank_policy, device)
        self.center = torch.zeros(1, net.head.in_features, device=device)
        self.pseudo_label_counts = torch.zeros(k, device=device)

    def class_weights(self) -> Tensor:
        """w_k of Eq. 8: the accumulated, normalised distribution of confident pseudo-labels."""
        return self.pseudo_label_counts / self.pseudo_label_counts.sum().clamp_min(1.0)

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        if self.use_balanced_head:
            return net.balanced_head(net.features(x))
        return net(x)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        n_lb, n_u = batch.x_lb.shape[0], batch.x_ulb_w.shape[0]
        feats = net.features(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        logits_lb, logits_w, logits_s = net.head(feats).split([n_lb, n_u, n_u])
        _, emb_w, emb_s = feats.split([n_lb, n_u, n_u])
        semi_on = ctx.step >= self.warmup * ctx.total_steps

        loss_s = F.cross_entropy(logits_lb, batch.y_lb)
        probs = torch.softmax(logits_w.detach().float(), dim=1)  # q̂
        mask = (probs.max(1).values >= self.threshold).float()  # M(x): the classifier's confidence
        targets = probs
        if self.use_plce and semi_on:
            prototypes, available = self.bank.prototypes()
            semantic = semantic_labels(emb_s.detach(), prototypes, available, self.proto_temperature)
            class_weights = self.class_weights() * available.any()  # no mixing before the bank holds anything
            targets = certainty_enhanced_labels(probs, semantic, class_weights, self.plce_alpha * ctx.progress)  # Eq. 8
        confidence, pseudo_labels = targets.max(1)
        weights = mask * entropy_weight(targets, self.entropy_scale) if self.use_oheml and semi_on else mask  # Eq. 3–4
        loss_u = masked_cross_entropy(logits_s, pseudo_labels, weights)  # Eq. 5 / 9
        loss = loss_s + self.lambda_u * loss_u
        logs = {"loss_s": loss_s.detach(), "loss_u": loss_u.detach(), "mask": mean_or_zero(mask)}

        if self.use_alignment and semi_on and emb_w.shape[0]:  # (no unlabeled images: nothing to align)
            loss_ea = embedding_alignment_loss(emb_w, emb_s, self.center, 1 - mask, self.alignment_temperature)  # Eq. 6
            loss = loss + self.alignment_weight * loss_ea
            logs["loss_ea"] = loss_ea.detach()
            with torch.no_grad():
                self.center.lerp_(emb_w.detach().float().mean(0, keepdim=True), 1 - self.center_momentum)

        with torch.no_grad():
            self.bank.push(emb_s, pseudo_labels, confidence, mask)
            self.pseudo_label_counts.index_add_(0, pseudo_labels, mask)
            if (ctx.step + 1) % self.decay_every == 0:
                self.bank.decay()  # Eq. 7

        if self.use_balanced_head:
            logits_b_lb, _, logits_b_s = net.balanced_head(feats).split([n_lb, n_u, n_u])
            loss_sb, loss_ub = balanced_branch_losses(logits_b_lb, batch.y_lb, logits_w, logits_b_s, ctx.log_prior,
                                                      self.balanced_tau, self.threshold)  # Eq. 10–11
            loss = loss + loss_sb + loss_ub  # Eq. 12
            logs.update(loss_s_b=loss_sb.detach(), loss_u_b=loss_ub.detach())
        return StepOutput(loss, logs, pseudo_labels, mask, probs)

    def state_dict(self) -> dict:
        return {"bank": self.bank.state_dict(), "center": self.center, "pseudo_label_counts": self.pseudo_label_counts}

    def load_state_dict(self, state: dict) -> None:
        self.bank.load_state_dict(state["bank"])
        self.center = state["center"].to(self.center.device)
        self.pseudo_label_counts = state["pseudo_label_counts"].to(self.pseudo_label_counts.device)
