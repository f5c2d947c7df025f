"""Layer-gradient analysis behind LayerMatch: which layers do pseudo-labels help, which do they hurt?

For a model, a labeled batch and an unlabeled batch whose true labels are known, per layer group
(each block and the classifier): the norms of ∇L_s and ∇L_u, the parts of ∇L_u that come from
correct and from wrong pseudo-labels, and the cosine between ∇L_u and the *oracle* gradient —
the same loss on the same samples with their true labels. A cosine near 1 means the
pseudo-labels push that layer the right way; near 0 or below, the wrong way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..algorithms.base import Algorithm, Batch, StepContext, StepOutput
from ..models.base import check_model

COLUMNS = ("norm_supervised", "norm_unsupervised", "norm_correct", "norm_wrong", "cosine_oracle")


def layer_gradient_report(
    model: nn.Module,
    x_lb: Tensor,
    y_lb: Tensor,
    x_weak: Tensor,
    x_strong: Tensor,
    y_true: Tensor,
    threshold: float = 0.95,
    pseudo_labels: Tensor | None = None,
    mask: Tensor | None = None,
) -> list[dict]:
    """One row per layer group of ``model.layer_groups()``, for FixMatch's losses on this batch.

    L_s is the labeled cross-entropy; L_u the cross-entropy of the strong view against the weak
    view's pseudo-label where ``max p >= threshold``, averaged over the unlabeled batch, split
    into its correct and wrong pseudo-labels (``∇L_u = ∇L_correct + ∇L_wrong``); the oracle uses
    ``y_true`` on the same samples. ``pseudo_labels`` and ``mask`` (used where > 0), when given,
    replace the weak view's argmax and the threshold: the ones a training step actually used.
    The model is copied, so its weights and BN statistics stay as they were. Each row also
    carries the batch's mask rate and pseudo-label accuracy.
    """
    check_model(model)
    model = copy.deepcopy(model).train()
    groups = model.layer_groups()
    n_lb, n_u = x_lb.shape[0], x_weak.shape[0]
    logits_lb, logits_w, logits_s = model(torch.cat([x_lb, x_weak, x_strong]).float()).split([n_lb, n_u, n_u])
    if pseudo_labels is None or mask is None:
        confidence, pseudo = torch.softmax(logits_w.detach().float(), 1).max(1)
        used = confidence >= threshold
    else:
        pseudo, used = pseudo_labels, mask > 0
    correct = (used & (pseudo == y_true)).float()
    wrong = (used & (pseudo != y_true)).float()
    per_sample = F.cross_entropy(logits_s, pseudo, reduction="none")
    losses = {
        "supervised": F.cross_entropy(logits_lb, y_lb),
        "correct": (per_sample * correct).sum() / n_u,
        "wrong": (per_sample * wrong).sum() / n_u,
        "oracle": (F.cross_entropy(logits_s, y_true, reduction="none") * used.float()).sum() / n_u,
    }
    group_params = {name: [p for p in module.parameters() if p.requires_grad] for name, module in groups.items()}
    params = [p for ps in group_params.values() for p in ps]
    flat = {}
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        by_param = {id(p): (torch.zeros_like(p) if g is None else g) for p, g in zip(params, grads)}
        flat[name] = {group: torch.cat([by_param[id(p)].flatten() for p in ps]) if ps else torch.zeros(0)
                      for group, ps in group_params.items()}
    mask_rate = used.float().mean().item()
    pl_accuracy = correct.sum().item() / max(1.0, used.sum().item())
    rows = []
    for group in groups:
        g_u = flat["correct"][group] + flat["wrong"][group]
        rows.append({
            "layer": group,
            "norm_supervised": flat["supervised"][group].norm().item(),
            "norm_unsupervised": g_u.norm().item(),
            "norm_correct": flat["correct"][group].norm().item(),
            "norm_wrong": flat["wrong"][group].norm().item(),
            "cosine_oracle": _cosine(g_u, flat["oracle"][group]),
            "mask_rate": mask_rate,
            "pl_accuracy": pl_accuracy,
        })
    return rows


def _cosine(a: Tensor, b: Tensor) -> float:
    denominator = (a.norm() * b.norm()).item()
    return (a @ b).item() / denominator if denominator > 0 else float("nan")


def format_report(rows: list[dict]) -> str:
    """A plain-text table of a report (one line per layer group)."""
    header = f"{'layer':<14}{'|∇L_s|':>10}{'|∇L_u|':>10}{'correct':>10}{'wrong':>10}{'cos(∇L_u, oracle)':>20}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['layer']:<14}{row['norm_supervised']:>10.4f}{row['norm_unsupervised']:>10.4f}"
                     f"{row['norm_correct']:>10.4f}{row['norm_wrong']:>10.4f}{row['cosine_oracle']:>20.3f}")
    return "\n".join(lines)


@dataclass
class LayerGradientTracker(Algorithm):
    """Wraps an algorithm and records a :func:`layer_gradient_report` every ``every`` steps.

    The report is computed on a copy of the network, on the training batch the step receives, with
    the pseudo-labels, mask and threshold that the wrapped algorithm's step returns (its
    :class:`StepOutput`; the threshold from its ``"threshold"`` log) — so it analyses the mask the
    model trains with, and training is bit-for-bit the same with and without the tracker.
    ``records`` holds one row per layer group and recorded step.
    """

    inner: Algorithm = None
    every: int = 50
    records: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Algorithm):
            raise TypeError(f"inner must be an Algorithm to track, got {type(self.inner).__name__}")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}")
        if "strong" not in self.inner.unlabeled_views:
            raise ValueError(f"the tracker needs weak and strong unlabeled views; {self.inner.name} does not use them")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def unlabeled_views(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inner.unlabeled_views

    @property
    def labeled_sampler(self) -> str:
        return self.inner.labeled_sampler

    def build_network(self, model: nn.Module) -> nn.Module:
        return self.inner.build_network(model)

    def setup(self, net: nn.Module, data) -> None:
        self.inner.setup(net, data)

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        out = self.inner.training_step(net, batch, ctx)
        if ctx.step % self.every == 0 and batch.y_ulb is not None and out.pseudo_labels is not None:
            # exactly the pseudo-labels and mask this step trains with (fixed or self-adaptive
            # thresholds alike); the weights are those before the optimiser's step
            threshold = out.logs.get("threshold")
            for row in layer_gradient_report(net, batch.x_lb, batch.y_lb, batch.x_ulb_w, batch.x_ulb_s, batch.y_ulb,
                                             pseudo_labels=out.pseudo_labels, mask=out.mask):
                self.records.append({"step": ctx.step, **row,
                                     "threshold": float("nan") if threshold is None else float(threshold)})
        return out

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        return self.inner.predict(net, x)

    def trainable_parameters(self, net: nn.Module):
        return self.inner.trainable_parameters(net)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def hparams(self) -> dict:
        return {**self.inner.hparams(), "tracked_every": self.every}

    def series(self, layer: str, column: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one column for one layer group."""
        rows = [r for r in self.records if r["layer"] == layer]
        return [r["step"] for r in rows], [r[column] for r in rows]
