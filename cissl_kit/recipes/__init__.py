"""Multi-stage methods (recipes), above the engine: each drives :class:`~cissl_kit.engine.Trainer` stage
by stage or generation by generation. A recipe may import the engine, the algorithms and everything
below them, never the registry, the benchmark, viz or the CLI."""

from __future__ import annotations

from .alternate import AlternateRun, AlternateSampling, Decoupling, PseudoLabelDecoupling, PseudoLabelLDAM
from .base import Recipe, run_to_the_end
from .crest import CReSTPlus, CReSTRun, crest_sampling_rates, select_pseudo_labels

__all__ = ["AlternateRun", "AlternateSampling", "CReSTPlus", "CReSTRun", "Decoupling", "PseudoLabelDecoupling",
           "PseudoLabelLDAM", "Recipe", "crest_sampling_rates", "run_to_the_end", "select_pseudo_labels"]
