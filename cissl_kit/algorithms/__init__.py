"""Algorithms: small dataclasses with one interface (see :mod:`.base`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._checks import check_choice
from .base import Algorithm, Batch, StepContext, StepOutput, forward_split, hparam
from .fixmatch import FixMatch
from .layermatch import LayerMatch
from .pseudo_label import PseudoLabel
from .semi import BalancedHeadNet, SeMi
from .supervised import Supervised

ALGORITHMS: dict[str, type[Algorithm]] = {cls.name: cls for cls in (Supervised, PseudoLabel, FixMatch, SeMi, LayerMatch)}


def build_algorithm(name: str, **hparams: Any) -> Algorithm:
    """Build a registered algorithm by name with the given hyper-parameters."""
    check_choice("method", name, tuple(ALGORITHMS))
    cls = ALGORITHMS[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(hparams) - known)
    if unknown:
        raise ValueError(f"method {name!r} has no hyper-parameter {', '.join(unknown)}; it takes {', '.join(sorted(known)) or 'none'}")
    return cls(**hparams)


__all__ = ["ALGORITHMS", "Algorithm", "BalancedHeadNet", "Batch", "FixMatch", "LayerMatch", "PseudoLabel", "SeMi", "StepContext",
           "StepOutput", "Supervised", "build_algorithm", "forward_split", "hparam"]
