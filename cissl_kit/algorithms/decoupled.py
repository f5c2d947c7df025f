"""The one-step algorithms that decoupled training's stages run (Decoupling, Alternate Sampling; the
recipes that drive them are in :mod:`cissl_kit.recipes.alternate`):

* :class:`EmbeddingTraining` trains the feature embedding f and the random-sampling classifier g′
  with cross-entropy plus λ · temporal consistency (Alternate Sampling Eq. 2–4);
* :class:`ClassifierTraining` trains the class-balanced classifier g on frozen features (Eq. 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.samplers import SAMPLERS
from .base import Algorithm, Batch, StepContext, StepOutput, hparam
from .semi import BalancedHeadNet


class TemporalConsistency:
    """Each sample's class probabilities from when it was last seen (the previous epoch's, under
    random sampling), and the KL term of Eq. 3 against the current ones."""

    def __init__(self, num_samples: int, num_classes: int, device: torch.device | str = "cpu") -> None:
        self.probs = torch.zeros(num_samples, num_classes, device=device)
        self.seen = torch.zeros(num_samples, dtype=torch.bool, device=device)

    def loss(self, indices: Tensor, logits: Tensor) -> Tensor:
        """Mean over the batch of KL(p^{e−1} ‖ p^e) for samples seen before (0 for new ones); then remember p^e."""
        log_p = F.log_softmax(logits.float(), dim=1)
        previous = self.probs[indices]
        kl = F.kl_div(log_p, previous, reduction="none").sum(1) * self.seen[indices].float()  # Eq. 3
        with torch.no_grad():
            self.probs[indices] = log_p.exp()
            self.seen[indices] = True
        return kl.mean()


@dataclass
class EmbeddingTraining(Algorithm):
    """Train f + g′ (``head``) with cross-entropy plus λ · temporal consistency (Eq. 2–4)."""

    name = "embedding"
    sampler: str = hparam("random", "sampling of the training set", choices=SAMPLERS)
    consistency_weight: float = hparam(1.0, "λ of the temporal-consistency loss", low=0.0)
    memory = None  # a TemporalConsistency shared across stages (set by AlternateRun)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        logits = net(batch.x_lb)
        loss_ce = F.cross_entropy(logits, batch.y_lb)  # Eq. 2
        logs = {"loss_s": loss_ce.detach()}
        loss = loss_ce
        if self.consistency_weight and self.memory is not None:
            loss_consist = self.memory.loss(batch.idx_lb, logits)
            loss = loss + self.consistency_weight * loss_consist  # Eq. 4
            logs["loss_consistency"] = loss_consist.detach()
        return StepOutput(loss, logs)

    def trainable_parameters(self, net: nn.Module):
        return net.model.parameters() if isinstance(net, BalancedHeadNet) else net.parameters()


@dataclass
class ClassifierTraining(Algorithm):
    """Train g (``balanced_head``) on frozen features: the backbone runs in eval mode without
    gradients, so every feature parameter and BN statistic stays bit-identical (Eq. 5)."""

    name = "classifier"
    sampler: str = hparam("balanced", "sampling of the training set", choices=SAMPLERS)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        with torch.no_grad():
            net.eval()
            features = net.features(batch.x_lb)
            net.train()
        loss = F.cross_entropy(net.balanced_head(features), batch.y_lb)  # Eq. 5
        return StepOutput(loss, {"loss_s": loss.detach()})

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return net.balanced_head(net.features(x))

    def trainable_parameters(self, net: nn.Module):
        return net.balanced_head.parameters()
