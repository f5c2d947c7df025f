"""LDAM-DRW (Cao et al., 2019): label-distribution-aware margins with deferred re-weighting, the
long-tailed baseline of the Alternate Sampling paper, alone and after Pseudo-Label."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.base import ModelWrapper
from .base import Algorithm, Batch, StepContext, StepOutput, hparam


def ldam_margins(class_counts: Tensor, max_margin: float = 0.5) -> Tensor:
    """Δ_j = C / n_j^{1/4}, with C such that the rarest class gets ``max_margin`` (LDAM Eq. 13)."""
    margins = 1.0 / class_counts.float().clamp_min(1).pow(0.25)
    return margins * (max_margin / margins.max())


def class_balanced_weights(class_counts: Tensor, beta: float = 0.9999) -> Tensor:
    """Effective-number weights (1 − β) / (1 − β^{n_j}), normalised to sum to K (DRW's weights)."""
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, class_counts.float().clamp_min(1)))
    return weights / weights.sum() * class_counts.numel()


def ldam_loss(logits: Tensor, targets: Tensor, margins: Tensor, scale: float, weights: Tensor | None = None) -> Tensor:
    """Cross-entropy of ``scale · (z − Δ_y·onehot(y))``: the true class must win by its margin."""
    adjusted = logits - F.one_hot(targets, logits.shape[1]) * margins[targets].unsqueeze(1)
    return F.cross_entropy(scale * adjusted, targets, weight=weights)


class CosineHeadNet(ModelWrapper):
    """A backbone whose classifier scores are cosines between normalised features and weights
    (LDAM's ``NormedLinear``); the backbone's ``head`` holds the weights."""

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.normalize(self.features(x), dim=1), F.normalize(self.head.weight, dim=1))


@dataclass
class LDAMDRW(Algorithm):
    """Supervised LDAM loss on a cosine classifier; after ``drw_start`` of training the loss is
    re-weighted per class by effective numbers (deferred re-weighting)."""

    name = "ldam_drw"
    max_margin: float = hparam(0.5, "largest LDAM margin (the rarest class's)", low=0.0)
    scale: float = hparam(30.0, "s, the scale of the cosine logits", low=0.0, low_open=True)
    drw_start: float = hparam(0.8, "fraction of training after which the loss is re-weighted (DRW)", low=0.0, high=1.0)
    drw_beta: float = hparam(0.9999, "β of the effective-number class weights", low=0.0, high=1.0, )

    def build_network(self, model: nn.Module) -> nn.Module:
        return model if isinstance(model, CosineHeadNet) else CosineHeadNet(model)

    def setup(self, net: nn.Module, data) -> None:
        counts = torch.tensor(data.labeled_counts, device=data.device)
        self.margins = ldam_margins(counts, self.max_margin)
        self.drw_weights = class_balanced_weights(counts, self.drw_beta)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        weights = self.drw_weights if ctx.progress >= self.drw_start else None
        loss = ldam_loss(net(batch.x_lb), batch.y_lb, self.margins, self.scale, weights)
        return StepOutput(loss, {"loss_s": loss.detach()})
