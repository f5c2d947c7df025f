"""CPE (Ma et al., AAAI 2024, *Three Heads Are Better Than One: Complementary Experts for Long-Tailed
Semi-Supervised Learning*), as in the official code (``machengcheng2016/CPE-LTSSL``, a USB fork:
``semilearn/imb_algorithms/cpe/cpe.py`` and ``semilearn/nets/wrn/wrn_cbn.py``, commit dedd598, 2024-03-19).

* **Three experts** on shared features: linear heads trained with logit-adjusted labeled losses
  ``CE(z + τ_e·log π)``, τ = 0, 2, 4 (``la_tau_lb1..3``). Expert 1 (τ = 0) fits the labeled
  (head-heavy) distribution, expert 3 (τ = 4) over-corrects towards the tail, expert 2 (τ = 2) is in
  between.
* **Class-wise batch normalisation** (the code's ``wrn_28_2_cbn``): the backbone's last feature map
  goes through three BatchNorms, head / medium / tail (``BNH``, ``BNM``, ``BNT``), then pooling; each
  expert's logits are the mean of its logits on the three branches.
* **Pseudo-labels:** each expert labels the weak view with its own branch-averaged prediction (hard,
  ``max p ≥ 0.95``) and learns it on the strong view: on the head branch for every confident
  sample, on the medium branch as well when the pseudo-label is class ``cut1`` or later, on the tail
  branch when it is class ``cut2`` or later (classes are indexed head first); averaged over the
  branch-samples used. Total: the three experts' ``L_s + λ_u·L_u``.
* **Prediction:** expert 2 (τ = 2), the code's ``evaluate(out_key='logits_2')``.

``cut1`` / ``cut2`` are class indices: 2 and 4 in the code's CIFAR-10 configs (35 and 70 for CIFAR-100).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import ModelWrapper
from .base import Algorithm, Batch, StepContext, StepOutput, hparam

BRANCHES = ("head", "medium", "tail")


class ClasswiseBatchNorm(nn.Module):
    """The code's ``BNH``, ``BNM`` and ``BNT`` (``nn.BatchNorm2d`` each, momentum 0.1, eps 1e-5) on one
    feature map, each followed by global average pooling: ``branches × N × C``.

    The three see the same input, so their batch statistics, and their running statistics, are the same;
    only their affine parameters differ. And ``pool(BN(x)) = (pool(x) − μ) / σ · γ + β``, with μ and σ² the
    mean and variance of x over N, H and W, which the per-image means of x and of x² give. So this computes
    the map's statistics once, from those two N×C means, and then three affine maps: the same numbers as
    the three BatchNorms (up to float rounding), the running averages updated as BatchNorm updates them
    (the unbiased variance), at a fraction of the cost. N×D vectors are normalised over N alone."""

    def __init__(self, channels: int, branches: int = 3, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(branches, channels))
        self.bias = nn.Parameter(torch.zeros(branches, channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, fmap: Tensor) -> Tensor:
        if fmap.dim() == 4:
            pooled, squares, count = fmap.mean((2, 3)), (fmap * fmap).mean((2, 3)), fmap.shape[0] * fmap[0, 0].numel()
        else:
            pooled, squares, count = fmap, fmap * fmap, fmap.shape[0]
        if self.training:
            mean = pooled.mean(0)
            var = (squares.mean(0) - mean * mean).clamp_min(0.0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * count / max(1, count - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        normalised = (pooled - mean) / torch.sqrt(var + self.eps)
        return normalised.unsqueeze(0) * self.weight[:, None] + self.bias[:, None]


class CPENet(ModelWrapper):
    """A backbone with class-wise BN (three BatchNorms of its last feature map) and three expert heads;
    ``forward`` predicts with expert 2."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        dim, classes = model.head.in_features, model.head.out_features
        self.branch_norm = ClasswiseBatchNorm(dim, len(BRANCHES))  # head, medium, tail
        self.head2 = nn.Linear(dim, classes)  # τ = 2: the code's classifier2
        self.head3 = nn.Linear(dim, classes)  # τ = 4: classifier3

    def experts(self) -> list[nn.Linear]:
        return [self.model.head, self.head2, self.head3]

    def branch_features(self, x: Tensor) -> Tensor:
        """3×N×D: the pooled features of the head, medium and tail BN branches."""
        return self.branch_norm(self.model.feature_map(x))

    def expert_logits(self, x: Tensor) -> Tensor:
        """Every expert's logits on every branch: 3 (experts τ = 0, 2, 4) × 3 (branches) × N × K, in one
        matrix product."""
        feats = self.branch_features(x)
        heads = self.experts()
        weight, bias = torch.cat([h.weight for h in heads]), torch.cat([h.bias for h in heads])
        logits = F.linear(feats, weight, bias)  # 3 branches × N × 3K
        return logits.view(*logits.shape[:2], len(heads), -1).permute(2, 0, 1, 3)

    def features(self, x: Tensor) -> Tensor:
        return self.branch_features(x).mean(0)

    def forward(self, x: Tensor) -> Tensor:
        return self.head2(self.branch_features(x)).mean(0)


def expert_unlabeled_loss(strong: Tensor, pseudo_labels: Tensor, mask: Tensor, cut1: int, cut2: int) -> Tensor:
    """CPE's L_u: ``strong`` (… × 3 × N × K: per expert, the head / medium / tail branches) learns the
    pseudo-labels (… × N) on the head branch where ``mask``, on the medium branch also where the label is
    ``>= cut1``, on the tail branch where it is ``>= cut2``; the mean over the branch-samples used (0 when
    none), per expert (a leading dimension, if any)."""
    weights = torch.stack([mask, mask * (pseudo_labels >= cut1).float(), mask * (pseudo_labels >= cut2).float()], -2)
    labels = pseudo_labels.unsqueeze(-2).expand_as(weights)
    per_sample = F.cross_entropy(strong.flatten(0, -2), labels.flatten(), reduction="none").view_as(weights)
    return (per_sample * weights).sum((-1, -2)) / (weights.sum((-1, -2)) + 1e-12)


@dataclass
class CPE(Algorithm):
    """FixMatch with CPE's three logit-adjusted experts and class-wise BN; expert 2 predicts."""

    name = "cpe"
    unlabeled_views = ("weak", "strong")
    threshold: float = hparam(0.95, "confidence threshold of every expert's pseudo-labels (code: 0.95)",
                              low=0.0, high=1.0)
    tau1: float = hparam(0.0, "τ of expert 1's logit-adjusted labeled loss (code la_tau_lb1: 0)", low=0.0)
    tau2: float = hparam(2.0, "τ of expert 2, which predicts (code la_tau_lb2: 2)", low=0.0)
    tau3: float = hparam(4.0, "τ of expert 3 (code la_tau_lb3: 4)", low=0.0)
    cut1: int = hparam(2, "first class (index, head first) the medium branch learns (code, CIFAR-10: 2)", low=0)
    cut2: int = hparam(4, "first class the tail branch learns (code, CIFAR-10: 4)", low=0)
    lambda_u: float = hparam(1.0, "weight of each expert's unlabeled loss", low=0.0)

    def build_network(self, model: nn.Module) -> nn.Module:
        return CPENet(model)

    def setup(self, net: nn.Module, data) -> None:
        k = data.num_classes
        if not self.cut1 <= self.cut2 <= k:
            raise ValueError(f"cut1 and cut2 must satisfy 0 <= cut1 <= cut2 <= {k} (the classes), got cut1="
                             f"{self.cut1}, cut2={self.cut2}")

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        sizes = [batch.x_lb.shape[0], batch.x_ulb_w.shape[0], batch.x_ulb_s.shape[0]]
        # experts × branches × images × classes, the three experts at once
        logits_lb, logits_w, logits_s = net.expert_logits(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s])).split(
            sizes, dim=2)
        taus = torch.tensor([self.tau1, self.tau2, self.tau3], device=logits_lb.device)
        adjusted = logits_lb.mean(1) + taus[:, None, None] * ctx.log_prior  # experts × N × K
        loss_s = F.cross_entropy(adjusted.flatten(0, 1), batch.y_lb.repeat(3), reduction="none").view(3, -1).mean(1)
        probs = torch.softmax(logits_w.mean(1).detach().float(), dim=-1)  # each expert's own pseudo-labels
        confidence, pseudo_labels = probs.max(-1)
        mask = (confidence >= self.threshold).float()
        loss_u = expert_unlabeled_loss(logits_s, pseudo_labels, mask, self.cut1, self.cut2)  # per expert
        loss = (loss_s + self.lambda_u * loss_u).sum()  # the three experts' L_s + λ_u·L_u
        means = mask.mean(1) if mask.shape[1] else mask.sum(1)
        logs = {f"mask_{e}": means[e - 1] for e in (1, 2, 3)}
        # the predicting expert's (2), as the code logs them
        logs.update(loss_s=loss_s[1].detach(), loss_u=loss_u[1].detach(), mask=means[1],
                    confidence=confidence[1].mean() if confidence.shape[1] else confidence[1].sum())
        return StepOutput(loss, logs, pseudo_labels[1], mask[1], probs[1])

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return net(x)  # expert 2, averaged over the three BN branches
