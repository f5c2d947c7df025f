"""One-step methods: each turns a batch into a loss (:mod:`.base` is the interface), one small dataclass
per method. An algorithm may import ``losses``, ``thresholds``, ``memory_bank``, ``metrics``, ``data``,
``models`` and the helpers below them, never the engine or anything above it (the multi-stage
recipes are in :mod:`cissl_kit.recipes`; every method by name is in :mod:`cissl_kit.registry`)."""

from __future__ import annotations

from .abc import ABC
from .acr import ACR
from .base import Algorithm, Batch, StepContext, StepOutput, forward_split, hparam
from .baselines import FixMatchBalancedHead, FixMatchLA, SupervisedLA
from .cdmad import CDMAD
from .cpe import CPE, CPENet
from .darp import DARP
from .daso import DASO
from .decoupled import ClassifierTraining, EmbeddingTraining, TemporalConsistency
from .fixmatch import FixMatch
from .fixmatch_da import FixMatchDA
from .layermatch import LayerMatch
from .ldam import LDAMDRW, CosineHeadNet, ldam_margins
from .pseudo_label import PseudoLabel
from .semi import BalancedHeadNet, SeMi
from .simpro import SimPro
from .supervised import Supervised

__all__ = ["ABC", "ACR", "CDMAD", "CPE", "CPENet", "DARP", "DASO", "SimPro", "LDAMDRW", "Algorithm", "BalancedHeadNet", "Batch", "ClassifierTraining",
           "CosineHeadNet", "EmbeddingTraining", "FixMatch", "FixMatchBalancedHead", "FixMatchDA", "FixMatchLA",
           "LayerMatch", "PseudoLabel", "SeMi", "StepContext", "StepOutput", "Supervised", "SupervisedLA",
           "TemporalConsistency", "forward_split", "hparam", "ldam_margins"]
