"""DASO (Oh et al., CVPR 2022): distribution-aware semantics-oriented pseudo-labels, on FixMatch,
as in the official code (``ytaek-oh/daso``, ``lib/models/daso_model.py``).

* **Class-balanced queue of prototypes**: every step the EMA network's features of the labeled
  batch enter a per-class queue of ``queue_size`` (FIFO); a class's prototype is its queue's mean.
  The EMA network computes them in train mode, as in the official code (``lib/models/daso_model.py``
  calls the EMA model, which ``EMAModel.__init__`` and every evaluation leave in train mode; commit
  3541a6c) and USB's port: its BatchNorm normalises with the labeled batch's own statistics, not
  the running ones. (Its running statistics, updated by that forward, are overwritten by the
  network's at the step's EMA update, as every step.)
* **Semantic pseudo-label** of a weak view: ``q_s = softmax(cos(z_w, prototypes)/T_proto)``.
* **Distribution-aware blending** (DASO Eq. 4–5): with the class histogram of the pseudo-labels of
  the last period, ``v = (hist^{1/T_dist} normalised) / max``, a linear pseudo-label p of predicted
  class ĉ becomes ``(1 − v_ĉ)·p + v_ĉ·q_s``: the more often a class is predicted (head classes),
  the more its pseudo-labels lean on the semantic ones. The FixMatch mask and target come from the
  blended label.
* **Semantic alignment loss**: ``−Σ q_s(weak)·log softmax(cos(z_s, prototypes)/T_proto)``, mean over
  the batch, weight ``psa_loss_weight``.

The first ``pretrain`` fraction of training is plain FixMatch (the code's 5,000 of 250,000 steps),
recording the pseudo-label histogram. The histogram period is a fraction too (the code's 100 of
250,000 steps), at least one step. USB's port blends with the *previous* batch's semantic labels
(it computes them after FixMatch's step); this follows the official code, which uses the current
batch's. ``T_dist`` = 1.5 is the official CIFAR-10 value for γ_l = γ_u (its config: 0.3 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_fits_in_memory
from ..losses import Consistency, logit_adjusted_cross_entropy, masked_cross_entropy
from .base import Batch, StepContext, StepOutput, hparam
from .fixmatch import FixMatch


def blend_weights(histogram: Tensor, temperature: float) -> Tensor:
    """DASO's per-class blending weights v (Eq. 5): ``h^{1/T}`` normalised, divided by its max."""
    dist = histogram.float() ** (1.0 / temperature)
    dist = dist / dist.sum().clamp_min(1e-12)
    return dist / dist.max().clamp_min(1e-12)


class PrototypeQueue:
    """Per-class FIFO queues of ``size`` feature vectors, on the device; prototypes are their means."""

    def __init__(self, num_classes: int, size: int, dim: int, device: torch.device | str) -> None:
        self.size = size
        self.features = torch.zeros(num_classes, size, dim, device=device)
        self.filled = torch.zeros(num_classes, dtype=torch.long, device=device)
        self.pointer = torch.zeros(num_classes, dtype=torch.long, device=device)

    def push(self, features: Tensor, labels: Tensor) -> None:
        """Append each class's features in batch order, keeping its last ``size`` (no host sync)."""
        k = self.features.shape[0]
        one_hot = F.one_hot(labels, k)
        rank = (one_hot.cumsum(0) - 1).gather(1, labels.unsqueeze(1)).squeeze(1)  # order within its class
        count = one_hot.sum(0)
        keep = rank >= count[labels] - self.size  # a class with more than `size` keeps its last ones
        slot = (self.pointer[labels] + rank) % self.size
        flat = torch.where(keep, labels * self.size + slot, k * self.size)  # dropped rows go to a spare row
        buffer = torch.cat([self.features.view(k * self.size, -1), self.features.new_zeros(1, self.features.shape[2])])
        buffer.index_copy_(0, flat, features.detach().to(buffer.dtype))
        self.features = buffer[:-1].view_as(self.features)
        self.pointer = (self.pointer + count) % self.size
        self.filled = (self.filled + count).clamp_max(self.size)

    def prototypes(self) -> Tensor:
        """(K, D) means of the filled slots (zeros for a class never seen)."""
        slots = torch.arange(self.size, device=self.features.device)
        filled = (slots.unsqueeze(0) < self.filled.unsqueeze(1)).unsqueeze(2)  # slots fill from 0 up
        return (self.features * filled).sum(1) / self.filled.clamp_min(1).unsqueeze(1)

    def state_dict(self) -> dict:
        return {"features": self.features, "filled": self.filled, "pointer": self.pointer}

    def load_state_dict(self, state: dict) -> None:
        self.features, self.filled, self.pointer = state["features"], state["filled"], state["pointer"]


def cosine_logits(features: Tensor, prototypes: Tensor, temperature: float) -> Tensor:
    """``cos(z, prototype_k) / T`` for every class k (a zero prototype gives 0)."""
    return F.normalize(features, dim=1, eps=1e-8) @ F.normalize(prototypes, dim=1, eps=1e-8).T / temperature


@dataclass
class DASO(FixMatch):
    """FixMatch with DASO's blended pseudo-labels and semantic alignment loss."""

    name = "daso"
    queue_size: int = hparam(256, "features per class in the prototype queue (code: 256)", low=1)
    proto_temperature: float = hparam(0.05, "T_proto of the similarity softmax (code: 0.05)", low=0.0, low_open=True)
    dist_temperature: float = hparam(1.5, "T_dist of the blending weights (code, CIFAR-10 γ_l = γ_u: 1.5; else 0.3)",
                                     low=0.0, low_open=True)
    dist_aware: bool = hparam(True, "distribution-aware blending weights (False: the fixed interp_alpha)")
    interp_alpha: float = hparam(0.5, "fixed blending weight when dist_aware is off (code: 0.5)", low=0.0, high=1.0)
    psa_loss_weight: float = hparam(1.0, "weight of the semantic alignment loss (code: 1.0)", low=0.0)
    pretrain: float = hparam(0.02, "fraction of plain FixMatch first (code: 5,000 of 250k steps)", low=0.0, high=1.0)
    dist_period: float = hparam(0.0004, "fraction of training between pseudo-label histograms (code: 100 of 250k)",
                                low=0.0, high=1.0, low_open=True)

    def setup(self, net: nn.Module, data) -> None:
        super().setup(net, data)
        k, dim = data.num_classes, net.head.in_features
        check_fits_in_memory(f"DASO's prototype queue of {k} classes × {self.queue_size:,} features × {dim} dimensions",
                             4 * k * self.queue_size * dim, data.device, "lower queue_size (CLI: --queue-size)")
        self.queue = PrototypeQueue(k, self.queue_size, dim, data.device)
        self.histogram = torch.zeros(k, device=data.device)  # the last finished period's
        self.counting = torch.zeros(k, device=data.device)  # the period under way

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        with torch.no_grad():  # the EMA network's labeled features, in train mode, enter the queue (the code)
            teacher = ctx.ema_net if ctx.ema_net is not None else net
            was_training = teacher.training
            teacher.train()
            self.queue.push(teacher.features(batch.x_lb).float(), batch.y_lb)
            teacher.train(was_training)
        sizes = [batch.x_lb.shape[0], batch.x_ulb_w.shape[0], batch.x_ulb_s.shape[0]]
        feats = net.features(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        logits_lb, logits_w, logits_s = net.head(feats).split(sizes)
        _, feats_w, feats_s = feats.split(sizes)
        loss_s = logit_adjusted_cross_entropy(logits_lb, batch.y_lb, ctx.log_prior, self.logit_adjust_tau)

        probs = torch.softmax(logits_w.detach().float(), dim=1)
        blended, extra = probs, {}
        if ctx.step >= round(self.pretrain * ctx.total_steps):
            prototypes = self.queue.prototypes()
            semantic = torch.softmax(cosine_logits(feats_w.detach().float(), prototypes, self.proto_temperature), 1)
            weight = (blend_weights(self.histogram, self.dist_temperature)[probs.argmax(1)].unsqueeze(1)
                      if self.dist_aware else torch.full_like(probs[:, :1], self.interp_alpha))
            blended = (1 - weight) * probs + weight * semantic  # DASO Eq. 4
            if self.psa_loss_weight:
                strong = cosine_logits(feats_s.float(), prototypes, self.proto_temperature)
                alignment = -(semantic * F.log_softmax(strong, dim=1)).sum(1).sum() / max(1, semantic.shape[0])
                extra["loss_align"] = self.psa_loss_weight * alignment
        pseudo_labels = blended.argmax(1)
        mask = self._mask(blended, ctx)  # on the blended label, as the code's mask
        self._count(pseudo_labels, ctx)
        u = Consistency(masked_cross_entropy(logits_s, pseudo_labels, mask), mask, pseudo_labels, probs)
        return self._output(loss_s, u, **extra)

    def _count(self, pseudo_labels: Tensor, ctx: StepContext) -> None:
        """Add the pseudo-labels to the period's histogram; at a period's end it becomes the one used."""
        self.counting = self.counting.scatter_add(0, pseudo_labels, torch.ones_like(pseudo_labels, dtype=torch.float))
        period = max(1, round(self.dist_period * ctx.total_steps))
        if (ctx.step + 1) % period == 0 and ctx.step + 1 < ctx.total_steps:
            self.histogram, self.counting = self.counting, torch.zeros_like(self.counting)

    def state_dict(self) -> dict:
        return {"queue": self.queue.state_dict(), "histogram": self.histogram, "counting": self.counting}

    def load_state_dict(self, state: dict) -> None:
        self.queue.load_state_dict(state["queue"])
        self.histogram, self.counting = state["histogram"], state["counting"]
