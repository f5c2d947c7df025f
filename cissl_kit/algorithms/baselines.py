"""The logit-adjusted baselines the CISSL papers compare against (SeMi Table 1), as methods of their own.

A comparison is fair only when the baseline has the same tricks: SeMi predicts with a
logit-adjusted balanced head, so its gain over plain FixMatch mixes hard-example mining with
logit adjustment. These rows separate the two:

* ``supervised_la``: Supervised trained with the logit-adjusted loss (Menon et al., 2021);
* ``fixmatch_la``: FixMatch whose labeled loss is logit-adjusted ("FixMatch + LA");
* ``fixmatch_bh``: FixMatch plus SeMi's balanced branch alone (Eq. 10–11), predicting with it.

τ = 1 for LA, as in DASO's code (``ALGORITHM.LOGIT_ADJUST.TAU = 1.0``), whose runs are the
"+ LA" rows SeMi's Table 1 quotes, and as in Menon et al. τ_b = 2 for the balanced head, as in
SeMi's code.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..losses import balanced_branch_losses
from .base import Batch, StepContext, StepOutput, hparam
from .fixmatch import FixMatch
from .semi import BalancedHeadNet
from .supervised import Supervised

LA_TAU = 1.0  # DASO's code and Menon et al.


@dataclass
class SupervisedLA(Supervised):
    """Supervised + LA: cross-entropy through ``logits + τ·log π`` on the labeled set; predictions
    from the raw logits."""

    name = "supervised_la"
    logit_adjust_tau: float = hparam(LA_TAU, "τ of the logit-adjusted loss, logits + τ·log π (0: plain CE)", low=0.0)


@dataclass
class FixMatchLA(FixMatch):
    """FixMatch + LA: the labeled loss is logit-adjusted; pseudo-labels and predictions come from the
    raw logits, which that loss leaves balanced."""

    name = "fixmatch_la"
    logit_adjust_tau: float = hparam(LA_TAU, "τ of the logit-adjusted labeled loss (0: plain CE)", low=0.0)


@dataclass
class FixMatchBalancedHead(FixMatch):
    """FixMatch + SeMi's balanced branch alone: a second linear head on the same features, trained
    with L_s^b + L_u^b (Eq. 10–11), gives the predictions. No hard-example weighting, alignment,
    memory bank or certainty enhancement: the ablation that isolates the balanced head. Its
    unlabeled targets use the fixed ``threshold`` in every threshold mode."""

    name = "fixmatch_bh"
    balanced_tau: float = hparam(2.0, "τ_b of the balanced head's logit adjustment (SeMi's code: 2)", low=0.0)

    def build_network(self, model: nn.Module) -> nn.Module:
        return BalancedHeadNet(model)

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return net.balanced_head(net.features(x))

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        feats, sizes, logits_w, logits_s, loss_s, u = self._shared_forward(net, batch, ctx)
        logits_b_lb, _, logits_b_s = net.balanced_head(feats).split(sizes)
        loss_sb, loss_ub = balanced_branch_losses(logits_b_lb, batch.y_lb, logits_w, logits_b_s, ctx.log_prior,
                                                  self.balanced_tau, self.threshold)  # Eq. 10–11
        return self._output(loss_s, u, loss_s_b=loss_sb, loss_u_b=loss_ub, **self._fairness(logits_s, u.mask))
