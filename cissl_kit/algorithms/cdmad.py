"""CDMAD (Lee & Kim, CVPR 2024): class-distribution-mismatch-aware debiasing, on FixMatch, as in the
official code (``LeeHyuck/CDMAD``, ``fixmatchcdmad.py``, commit 6df032d, 2024-03-13).

A classifier trained on imbalanced data leans towards the classes it saw most, and an image that
holds no class at all shows that lean: CDMAD feeds one solid image (all ones in the network's input
space, the code's ``torch.ones((1, 3, 32, 32))``) and subtracts its logits, the *bias*, from

* the weak-view logits before the pseudo-labels are made (after ``debias_start`` of training: the
  code's ``epoch > debiasstart``, 100 of 500 epochs), and
* the test logits (always: the code reports both and its tables the debiased one).

As in the code, the step makes five separate forwards, so each gets its own BatchNorm statistics:
the solid image alone and the weak views, without gradients, then the labeled batch and two strong
views. The network is in train mode for all of them, so the solid image's statistics also enter
BatchNorm's running averages (``blank_bn="train"``, the code); ``"eval"`` computes the bias with the
running statistics and leaves them alone. Pseudo-labels are soft (the weak view's softmax) and kept
where ``max p ≥ threshold``: 0 in the code (its ``--tau`` default, which the published commands keep),
so every unlabeled image counts. Losses: ``L_x + L_u``, L_u averaged over both strong views.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import mean_or_zero
from .base import Algorithm, Batch, StepContext, StepOutput, hparam

BLANK_BN = ("train", "eval")


def classifier_bias(net: nn.Module, input_shape: tuple[int, ...], device, batchnorm: str = "train") -> Tensor:
    """The logits (1×K) of one solid image, all ones in the input space, as CDMAD measures the bias:
    ``batchnorm="train"`` in train mode (its statistics enter BN's running averages), else eval mode."""
    was_training = net.training
    net.train(batchnorm == "train")
    try:
        with torch.no_grad():
            return net(torch.ones(1, *input_shape, device=device))
    finally:
        net.train(was_training)


def debiased(logits: Tensor, bias: Tensor) -> Tensor:
    """CDMAD's refined logits: ``logits − bias`` (the solid image's logits)."""
    return logits - bias


@dataclass
class CDMAD(Algorithm):
    """FixMatch whose pseudo-labels and test predictions are debiased by a solid image's logits."""

    name = "cdmad"
    unlabeled_views = ("weak", "strong", "strong2")
    threshold: float = hparam(0.0, "confidence threshold of the soft pseudo-labels (code --tau: 0, all pass)",
                              low=0.0, high=1.0)
    debias_start: float = hparam(0.2, "fraction of training before the pseudo-labels are debiased (code: after "
                                      "epoch 100 of 500)", low=0.0, high=1.0)
    blank_bn: str = hparam("train", "BatchNorm mode of the solid image's forward: train (the code; its statistics "
                                    "enter the running averages) or eval", choices=BLANK_BN)
    lambda_u: float = hparam(1.0, "weight of the unlabeled loss", low=0.0)

    def setup(self, net: nn.Module, data) -> None:
        self.input_shape = tuple(data.input_shape)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        device = batch.x_lb.device
        bias = classifier_bias(net, self.input_shape, device, self.blank_bn)
        loss_x = F.cross_entropy(net(batch.x_lb), batch.y_lb)
        if batch.x_ulb_w.shape[0] == 0:  # no unlabeled data: the labeled loss alone (BN takes no empty batch)
            zero = loss_x.new_zeros(())
            return StepOutput(loss_x, {"loss_s": loss_x.detach(), "loss_u": zero, "mask": zero, "confidence": zero,
                                       "bias_spread": bias.max() - bias.min()})
        with torch.no_grad():
            logits_w = net(batch.x_ulb_w).float()
        if ctx.step >= round(self.debias_start * ctx.total_steps):
            logits_w = debiased(logits_w, bias.float())
        targets = torch.softmax(logits_w, dim=-1)
        confidence, labels = targets.max(1)
        mask = (confidence >= self.threshold).float()
        logits_s = torch.cat([net(batch.x_ulb_s), net(batch.x_ulb_s2)])
        loss_u = mean_or_zero(F.cross_entropy(logits_s, torch.cat([targets, targets]), reduction="none")
                              * torch.cat([mask, mask]))
        logs = {"loss_s": loss_x.detach(), "loss_u": loss_u.detach(), "mask": mean_or_zero(mask),
                "confidence": mean_or_zero(confidence), "bias_spread": bias.max() - bias.min()}
        return StepOutput(loss_x + self.lambda_u * loss_u, logs, labels, mask, targets)

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        # the engine evaluates in eval mode: the bias with the same running statistics
        return debiased(net(x), classifier_bias(net, tuple(x.shape[1:]), x.device, "eval"))
