"""Algorithms: small dataclasses with one interface (see :mod:`.base`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._checks import check_choice
from .alternate import (
    AlternateRun,
    AlternateSampling,
    ClassifierTraining,
    Decoupling,
    EmbeddingTraining,
    PseudoLabelDecoupling,
    PseudoLabelLDAM,
    TemporalConsistency,
)
from .abc import ABC
from .acr import ACR
from .baselines import FixMatchBalancedHead, FixMatchLA, SupervisedLA
from .base import Algorithm, Batch, Recipe, StepContext, StepOutput, forward_split, hparam
from .crest import CReSTPlus, CReSTRun, FixMatchDA
from .darp import DARP
from .daso import DASO
from .fixmatch import FixMatch
from .layermatch import LayerMatch
from .ldam import LDAMDRW, CosineHeadNet, ldam_margins
from .pseudo_label import PseudoLabel
from .semi import BalancedHeadNet, SeMi
from .supervised import Supervised

# single-run methods, each trained by the engine's Trainer
ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (Supervised, SupervisedLA, PseudoLabel, FixMatch, FixMatchLA, FixMatchBalancedHead, SeMi,
                              LayerMatch, LDAMDRW,
                              FixMatchDA, DARP, ABC, DASO, ACR)
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


__all__ = ["ABC", "ACR", "CReSTPlus", "CReSTRun", "DARP", "DASO", "FixMatchDA", "METHODS", "RECIPES", "AlternateRun", "AlternateSampling", "ClassifierTraining", "CosineHeadNet",
           "Decoupling", "EmbeddingTraining", "LDAMDRW", "PseudoLabelDecoupling", "PseudoLabelLDAM", "Recipe",
           "TemporalConsistency", "ldam_margins",
           "ALGORITHMS", "Algorithm", "BalancedHeadNet", "Batch", "FixMatch", "FixMatchBalancedHead", "FixMatchLA", "LayerMatch", "PseudoLabel", "SeMi", "StepContext",
           "StepOutput", "Supervised", "SupervisedLA", "build_algorithm", "forward_split", "hparam"]
