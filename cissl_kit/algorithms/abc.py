"""ABC (Lee et al., NeurIPS 2021): an auxiliary balanced classifier on FixMatch, as in USB
(``semilearn/imb_algorithms/abc/abc.py``), whose ABC rows (and their USB re-runs) this kit compares with.

A second linear head on the shared features is trained, next to FixMatch, on samples kept by
class-balanced Bernoulli masks, and gives the predictions:

* labeled: a sample of class k is kept with probability ``N_min / N_k`` (every class is then seen
  as often as the rarest);
* unlabeled: the auxiliary head's own weak-view pseudo-label ŷ is kept when it is confident
  (``max p ≥ abc_p_cutoff``) and with probability ``1 − progress·(1 − N_min/N_ŷ)``, which goes from
  1 to ``N_min/N_ŷ`` over training (USB: epoch/epochs).

Its loss, ``abc_loss_ratio · (L_lb + L_ulb)``, is added to FixMatch's; the gradients reach the
shared features, as in USB. A class without labeled images (N_k = 0) is kept with probability 1
and N_min is the smallest non-zero count.

The other two codes differ from USB's, and so from this kit:

* the original ``LeeHyuck/ABC`` (``ABCcode0920/ABCfix.py``, commit 89fdfd1) trains the auxiliary head
  on *soft* pseudo-labels (its own weak-view softmax) with *two* strong views, keeps a sample with
  probability ``N_last/N_k`` (the last class's count), and eases the unlabeled masks in over a fixed
  500-epoch schedule (``epoch/500``);
* DASO's ``lib/algorithm/fm_abc.py`` (commit 3541a6c) also uses soft pseudo-labels, ``N_last/N_k`` and
  ``iter/500`` of 500 epochs, with one strong view.

USB's hard labels above ``abc_p_cutoff``, ``N_min/N_k`` and ``progress`` over the run's own length
are what this kit follows. On an exponential profile the last class is the smallest, so
``N_last = N_min`` there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import mean_or_zero
from .base import Batch, StepContext, StepOutput, hparam
from .fixmatch import FixMatch
from .semi import BalancedHeadNet


def abc_keep_probabilities(labeled_counts: Tensor, progress: float) -> tuple[Tensor, Tensor]:
    """(labeled, unlabeled) per-class probabilities that ABC's Bernoulli masks keep a sample."""
    counts = labeled_counts.float()
    smallest = counts[counts > 0].min() if (counts > 0).any() else counts.new_tensor(1.0)
    labeled = torch.where(counts > 0, smallest / counts.clamp_min(1e-12), torch.ones_like(counts))
    unlabeled = 1 - progress * (1 - labeled)
    return labeled, unlabeled


@dataclass
class ABC(FixMatch):
    """FixMatch + an auxiliary balanced classifier (``net.balanced_head``), which predicts."""

    name = "abc"
    abc_p_cutoff: float = hparam(0.95, "confidence cutoff of the auxiliary head's pseudo-labels (USB: 0.95)",
                                 low=0.0, high=1.0)
    abc_loss_ratio: float = hparam(1.0, "weight of the auxiliary classifier's loss (USB: 1.0)", low=0.0)

    def build_network(self, model: nn.Module) -> nn.Module:
        return BalancedHeadNet(model)

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return net.balanced_head(net.features(x))

    def setup(self, net: nn.Module, data) -> None:
        super().setup(net, data)
        # the labeled keep probabilities N_min/N_k, computed once (the min over non-zero counts syncs)
        self.keep_labeled = abc_keep_probabilities(torch.tensor(data.labeled_counts, device=data.device), 0.0)[0]

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        feats, sizes, _, logits_s, loss_s, u = self._shared_forward(net, batch, ctx)

        aux_lb, aux_w, aux_s = net.balanced_head(feats).split(sizes)
        keep_ulb = 1 - ctx.progress * (1 - self.keep_labeled)
        mask_lb = torch.bernoulli(self.keep_labeled[batch.y_lb])
        loss_abc_lb = mean_or_zero(F.cross_entropy(aux_lb, batch.y_lb, reduction="none") * mask_lb)
        aux_probs = torch.softmax(aux_w.detach().float(), dim=1)
        aux_confidence, aux_labels = aux_probs.max(1)
        mask_ulb = (aux_confidence >= self.abc_p_cutoff).float() * torch.bernoulli(keep_ulb[aux_labels])
        loss_abc_ulb = mean_or_zero(F.cross_entropy(aux_s, aux_labels, reduction="none") * mask_ulb)
        loss_abc = self.abc_loss_ratio * (loss_abc_lb + loss_abc_ulb)
        out = self._output(loss_s, u, loss_abc=loss_abc, **self._fairness(logits_s, u.mask))
        out.logs["mask_abc"] = mean_or_zero(mask_ulb)
        return out
