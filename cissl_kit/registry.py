"""Every method by name, and the functions that take any of them: :func:`build_algorithm`,
:func:`train` and :func:`preflight`.

Layer: above the algorithms, the engine and the recipes (it imports all three); the benchmark, the
notebooks' tools and the CLI read the method list from here. A new method goes into
``algorithms/`` (one step) or ``recipes/`` (several engine runs), then into :data:`ALGORITHMS` or
:data:`RECIPES` below.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from ._checks import check_choice
from .algorithms import (
    ABC,
    ACR,
    CDMAD,
    CPE,
    DARP,
    DASO,
    LDAMDRW,
    FixMatch,
    FixMatchBalancedHead,
    FixMatchDA,
    FixMatchLA,
    LayerMatch,
    PseudoLabel,
    SeMi,
    SimPro,
    Supervised,
    SupervisedLA,
)
from .algorithms.base import Algorithm
from .data import SSLData
from .engine import TrainConfig, Trainer, TrainResult, check_step_memory, config_with
from .models import build_model, default_model
from .recipes import AlternateSampling, CReSTPlus, Decoupling, PseudoLabelDecoupling, PseudoLabelLDAM, Recipe

# single-run methods, each trained by the engine's Trainer
ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (Supervised, SupervisedLA, PseudoLabel, FixMatch, FixMatchLA, FixMatchBalancedHead, SeMi,
                              LayerMatch, LDAMDRW, FixMatchDA, DARP, ABC, DASO, ACR, SimPro, CPE, CDMAD)
}
# multi-stage methods, each a sequence of Trainer runs
RECIPES: dict[str, type[Recipe]] = {
    cls.name: cls for cls in (Decoupling, AlternateSampling, PseudoLabelDecoupling, PseudoLabelLDAM, CReSTPlus)
}
METHODS: dict[str, type[Algorithm] | type[Recipe]] = {**ALGORITHMS, **RECIPES}


def build_algorithm(name: str, **hparams: Any) -> Algorithm | Recipe:
    """Build a registered method (an algorithm or a multi-stage recipe) by name."""
    check_choice("method", name, tuple(METHODS))
    cls = METHODS[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(hparams) - known)
    if unknown:
        raise ValueError(f"method {name!r} has no hyper-parameter {', '.join(unknown)}; it takes {', '.join(sorted(known)) or 'none'}")
    return cls(**hparams)


def preflight(method: Algorithm | Recipe | str, data: SSLData, config: TrainConfig | None = None) -> None:
    """Check before training what a run would otherwise find out only on its way: the method's
    set-up on this data (on a throw-away network; nothing trains) and its batches against the
    device's memory, without building an optimiser or joining DDP. Raises the error the run would raise."""
    method = build_algorithm(method) if isinstance(method, str) else method
    config = config_with(config, {})
    net = build_model(config.model or default_model(data.input_shape), data.num_classes, data.input_shape)
    if isinstance(method, Recipe):  # its stages train labeled batches of config.batch_size
        method.check_config(config)
        check_step_memory(net.to(data.device), data, config)
        return
    algorithm = dataclasses.replace(method)  # a copy: set-up must not touch the method that will train
    net = algorithm.build_network(net).to(data.device)
    check_step_memory(net, data, config, len(algorithm.unlabeled_views), len(algorithm.labeled_views))
    algorithm.setup(net, data)  # allocates its state (SeMi's memory bank …) with the same checks


def train(
    method: Algorithm | Recipe | str,
    data: SSLData,
    model: nn.Module | None = None,
    config: TrainConfig | None = None,
    resume: bool = False,
    keep_partial: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train ``method`` (an algorithm, a multi-stage recipe, or a method name) on ``data``.

    ``resume=True`` continues from ``config.checkpoint`` (which must exist); set
    ``checkpoint_every`` to write it every k steps as well as at the end. On Ctrl-C the result so
    far is kept and :class:`~cissl_kit.engine.TrainingInterrupted` raised with it (a notebook cell
    stops there), or with ``keep_partial=True`` returned, marked ``interrupted``.
    """
    method = build_algorithm(method) if isinstance(method, str) else method
    config = config_with(config, overrides)
    if resume and not config.checkpoint:
        raise ValueError("resume=True needs config.checkpoint, the file to continue from")
    if isinstance(method, Recipe):
        return method.fit(data, config, model, resume=resume, keep_partial=keep_partial)
    trainer = Trainer(method, data, model, config)
    if resume:
        trainer.resume(config.checkpoint)
    return trainer.fit(keep_partial)
