"""The interface every algorithm implements, and the batch / output types it exchanges.

The engine owns iteration, devices, AMP, EMA, logging and evaluation. An algorithm turns a
batch into a loss (plus named 0-d tensors to log), and may hook ``setup``, ``build_network``,
``predict`` and ``trainable_parameters``. Hyper-parameters are dataclass fields declared with
:func:`hparam`; their ranges are checked on construction and the CLI makes a flag of each.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_float, check_int


def hparam(
    default: Any,
    help: str,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    low_open: bool = False,
) -> Any:
    """A hyper-parameter field: default, one-line help, and the allowed range or choices."""
    return field(default=default, metadata=dict(help=help, low=low, high=high, choices=choices, low_open=low_open))


def check_hparams(obj: Any) -> None:
    """Check every :func:`hparam` field of a dataclass against its type and range or choices."""
    for f in dataclasses.fields(obj):
        meta, value = f.metadata, getattr(obj, f.name)
        if meta.get("choices"):
            check_choice(f.name, value, meta["choices"])
        elif isinstance(f.default, bool):
            if not isinstance(value, bool):
                raise TypeError(f"{f.name} must be True or False, got {value!r}")
        elif isinstance(f.default, int):
            check_int(f.name, value, _int_or_none(meta.get("low")), _int_or_none(meta.get("high")))
        elif isinstance(f.default, float):
            check_float(f.name, value, meta.get("low"), meta.get("high"), min_inclusive=not meta.get("low_open"))


@dataclass
class Batch:
    """One training batch, already augmented and on the device.

    ``y_ulb`` holds the true labels of the unlabeled batch for *measuring* pseudo-labels only;
    losses must never read it.
    """

    x_lb: Tensor
    y_lb: Tensor
    idx_lb: Tensor
    x_ulb_w: Tensor | None = None
    x_ulb_s: Tensor | None = None
    idx_ulb: Tensor | None = None
    x_ulb_s2: Tensor | None = None  # a second strong view (ACR), when the algorithm asks for "strong2"
    y_ulb: Tensor | None = None
    x_lb_s: Tensor | None = None  # a strong view of the labeled batch, when labeled_views holds "strong"


@dataclass
class StepOutput:
    """What a training step returns: the loss to minimise and 0-d tensors to log.

    ``pseudo_labels``, ``mask`` (weights > 0 mean "used") and ``probs`` (the classifier's
    weak-view probabilities) feed the pseudo-label and hardness statistics.
    """

    loss: Tensor
    logs: dict[str, Tensor]
    pseudo_labels: Tensor | None = None
    mask: Tensor | None = None
    probs: Tensor | None = None


@dataclass
class StepContext:
    """Where training is: the step (0-based), the total, the labeled class prior, and the EMA
    network (for methods that read it, such as DASO's prototype queue; None outside the engine)."""

    step: int
    total_steps: int
    num_classes: int
    class_prior: Tensor
    ema_net: nn.Module | None = None

    @property
    def progress(self) -> float:
        """Fraction of training done, in [0, 1)."""
        return self.step / max(1, self.total_steps)

    @property
    def log_prior(self) -> Tensor:
        return torch.log(self.class_prior.clamp_min(1e-12))


@dataclass
class Algorithm:
    """Base class. Subclasses are dataclasses whose fields are their hyper-parameters."""

    name: ClassVar[str] = "algorithm"
    # unlabeled views the step needs: () labeled only, ("weak",), ("weak", "strong"), or
    # ("weak", "strong", "strong2") for two strong views
    unlabeled_views: ClassVar[tuple[str, ...]] = ()
    # labeled views: ("weak",), or ("weak", "strong") for a strong view of the labeled batch too (SimPro)
    labeled_views: ClassVar[tuple[str, ...]] = ("weak",)

    def __post_init__(self) -> None:
        check_hparams(self)

    # -- hooks -----------------------------------------------------------------------------
    @property
    def labeled_sampler(self) -> str:
        """``random`` or ``balanced`` sampling of labeled batches."""
        return getattr(self, "sampler", "random")

    @property
    def uses_unlabeled_data(self) -> bool:
        """False for a method that trains on the labeled set alone (its run cannot depend on the unlabeled data)."""
        return bool(self.unlabeled_views)

    def build_network(self, model: nn.Module) -> nn.Module:
        """The module to train (and to keep an EMA of); override to add heads."""
        return model

    def setup(self, net: nn.Module, data: Any) -> None:
        """Called once before training, with the network on its device and the :class:`SSLData`."""

    def training_step(self, net: nn.Module, batch: Batch, ctx: StepContext) -> StepOutput:
        raise NotImplementedError

    def predict(self, net: nn.Module, x: Tensor) -> Tensor:
        """Logits used for evaluation."""
        return net(x)

    def trainable_parameters(self, net: nn.Module) -> Iterable[nn.Parameter]:
        return net.parameters()

    def unlabeled_estimate(self) -> Tensor | None:
        """The method's own estimate of the unlabeled class distribution (ACR's û, SimPro's π̂_u), or None;
        the engine records it at every evaluation."""
        return None

    def state_dict(self) -> dict:
        """Algorithm state beyond the network (memory banks, running statistics …)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{self.name} keeps no state, but the checkpoint has {sorted(state)}")

    def hparams(self) -> dict:
        return dataclasses.asdict(self)


def _int_or_none(value: float | None) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isinf(value)) else int(value)


def forward_split(net: nn.Module, *parts: Tensor) -> list[Tensor]:
    """One forward pass over the concatenated parts (shared BN statistics), split back."""
    logits = net(torch.cat(parts))
    return list(logits.split([p.shape[0] for p in parts]))
