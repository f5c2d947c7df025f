"""CReST and CReST+ (Wei et al., CVPR 2021): class-rebalancing self-training, as in USB
(``semilearn/imb_algorithms/crest``).

Training runs in generations. Each trains a fresh network with FixMatch on the labeled set D plus
the pseudo-labeled samples the previous generation selected (the unlabeled set stays whole). After a
generation, every unlabeled image is predicted by its EMA network; of the images predicted as class
k, the most confident ``floor(n̂_k · μ_k)`` join D with that label, where for the class of rank k by
labeled count (1 = the largest) ``μ_k = (N_{K+1−k} / N_1)^α`` (CReST Eq. 2): the rarest class
keeps all of its predictions, the most frequent the fewest. USB's ``crest_alpha`` = 3 is 1/α.

CReST+ adds *progressive distribution alignment*: FixMatch's weak-view probabilities are aligned,
``p · (π^t / Σπ^t) / p̄`` (p̄ an EMA of the batch means, momentum 0.999), towards the labeled
distribution π sharpened less and less: t goes from 1 in the first generation to ``t_min`` in the
last (``t_g = 1 − g/(G−1)·(1 − t_min)``). ``progressive_alignment=False`` is CReST.

Each generation starts from a fresh network, and the generations share the run's ``config.steps``,
as in the DASO code (``fm_crest.py``: 5 generations × 50,000 steps = its 250,000), whose runs are the
CReST+ rows of DASO's and SeMi's tables; USB instead trains 6 generations of the full schedule
(6× FixMatch's compute).
:class:`CReSTRun` exposes the generations one by one.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..algorithms.base import hparam
from ..algorithms.fixmatch import FixMatch
from ..algorithms.fixmatch_da import FixMatchDA
from ..checkpoint import check_resumable, data_identity, load_checkpoint, save_checkpoint
from ..engine import TrainConfig, Trainer, TrainResult
from ..metrics import PseudoLabelStats
from .base import Recipe, run_to_the_end


def crest_sampling_rates(labeled_counts: Tensor, alpha: float) -> Tensor:
    """μ per class (CReST Eq. 2): the class of rank k by count gets ``(N_{K+1−k}/N_1)^α``."""
    counts = labeled_counts.float()
    order = counts.argsort(descending=True, stable=True)
    sorted_counts = counts[order]
    rates = torch.empty_like(counts)
    rates[order] = (sorted_counts.flip(0) / sorted_counts[0].clamp_min(1e-12)) ** alpha
    return rates


def select_pseudo_labels(probs: Tensor, rates: Tensor) -> tuple[Tensor, Tensor]:
    """(positions, labels): per predicted class k, its ``floor(n̂_k·μ_k)`` most confident predictions."""
    confidence, predicted = probs.max(1)
    k = probs.shape[1]
    by_confidence = torch.argsort(confidence, descending=True, stable=True)
    order = by_confidence[torch.argsort(predicted[by_confidence], stable=True)]  # class up, confidence down
    counts = torch.bincount(predicted, minlength=k)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device) - starts[predicted[order]]
    # floor(n̂_k·μ_k) in float64 on the host (once a generation; MPS has no float64)
    take = (counts.cpu().double() * rates.cpu().double()).floor().long().to(counts.device)
    chosen = rank < take[predicted]
    positions = chosen.nonzero().squeeze(1)
    return positions, predicted[positions]


@dataclass
class CReSTPlus(Recipe):
    """CReST+ (or CReST with ``progressive_alignment=False``): generations of FixMatch self-training."""

    name = "crest_plus"
    generations: int = hparam(5, "G, the number of generations, sharing the steps (DASO code: 5; USB: 6)", low=1)
    sampling_alpha: float = hparam(1 / 3, "α of the sampling rates μ_k = (N_{K+1−k}/N_1)^α (USB crest_alpha 3 = 1/α)", low=0.0)
    t_min: float = hparam(0.5, "t of the last generation's distribution alignment (USB: 0.5)", low=0.0, high=1.0)
    progressive_alignment: bool = hparam(True, "CReST+'s progressive distribution alignment (False: CReST)")
    threshold: float = hparam(0.95, "FixMatch's confidence threshold", low=0.0, high=1.0)

    def check_config(self, config) -> None:
        if config.steps < self.generations:
            raise ValueError(f"{self.name} shares steps ({config.steps}) among generations ({self.generations}): "
                             f"generations must be at most steps (CLI: --generations, --steps)")

    def start(self, data, config=None, model: nn.Module | None = None) -> "CReSTRun":
        """A :class:`CReSTRun` to drive generation by generation."""
        run = CReSTRun(self, data, config, model)
        self.check_config(run.config)
        return run

    def fit(self, data, config=None, model: nn.Module | None = None, resume: bool = False, keep_partial: bool = False):
        run = self.start(data, config, model)
        if resume:
            run.resume(run.config.checkpoint)

        def advance() -> str | None:
            generation = run.next_generation()
            return None if generation is None else f"generation {generation}"
        return run_to_the_end(self.name, run, advance, self.generations, keep_partial)


class CReSTRun:
    """CReST+ generation by generation: ``next_generation()`` trains one and selects the pseudo-labels
    the next one adds; ``records`` holds a row per finished generation, ``history`` every evaluation."""

    def __init__(self, recipe: CReSTPlus, data, config=None, model: nn.Module | None = None) -> None:
        self.recipe, self.data, self.model = recipe, data, model
        self.config = config or TrainConfig()
        self.prior = data.class_prior()
        self.rates = crest_sampling_rates(torch.tensor(data.labeled_counts, device=data.device), recipe.sampling_alpha)
        self.added_idx = data.unlabeled_idx[:0]
        self.added_labels = data.targets[:0]
        self.records: list[dict] = []
        self.history: list[dict] = []
        self.seconds = 0.0
        self.last_trainer, self.last_final = None, {}
        self._unfinished: dict | None = None

    @property
    def generation(self) -> int:
        return len(self.records)

    def steps_of(self, generation: int) -> int:
        """The steps of a generation: ``config.steps`` split evenly, the remainder to the last."""
        share = self.config.steps // self.recipe.generations
        return share + (self.config.steps - share * self.recipe.generations if generation == self.recipe.generations - 1 else 0)

    def steps_before(self, generation: int) -> int:
        """The steps of the generations before ``generation``."""
        return sum(self.steps_of(g) for g in range(generation))

    def alignment_t(self, generation: int) -> float:
        g, last = generation, self.recipe.generations - 1
        return 1.0 if last == 0 else 1.0 - g / last * (1.0 - self.recipe.t_min)

    def generation_data(self):
        """D plus the pseudo-labeled samples selected so far (the unlabeled set stays whole)."""
        if self.added_idx.numel() == 0:
            return self.data
        return self.data.with_extra_labels(self.added_idx, self.added_labels)

    def next_generation(self) -> int | None:
        """Train the next generation and select its pseudo-labels; its number, or None when all have run."""
        g = self.generation
        if g >= self.recipe.generations:
            return None
        start = time.perf_counter()
        if self.recipe.progressive_alignment:
            algorithm = FixMatchDA(threshold=self.recipe.threshold, dist_align_t=self.alignment_t(g))
            algorithm.target_prior = self.prior
        else:
            algorithm = FixMatch(threshold=self.recipe.threshold)
        steps = self.steps_of(g)
        offset = self.steps_before(g)
        config = dataclasses.replace(self.config, steps=steps, seed=self.config.seed + g, progress=False, checkpoint=None)
        model = None if self.model is None else _fresh_copy(self.model)
        trainer = Trainer(algorithm, self.generation_data(), model, config)
        if self._unfinished is not None:
            trainer.load_state_dict(self._unfinished, "the checkpoint's unfinished generation")
            self._unfinished = None
        if self.config.checkpoint:
            trainer.checkpoint_writer = lambda t: self.save_checkpoint(self.config.checkpoint, t)
        try:
            result = trainer.fit(keep_partial=True)
        finally:
            self.seconds += time.perf_counter() - start
        if result.interrupted:
            raise KeyboardInterrupt
        self.last_trainer, self.last_final = trainer, result.final
        self.history += [{**row, "step": row["step"] + offset, "generation": g} for row in result.history]
        report = self.select(trainer) if g < self.recipe.generations - 1 else {}
        self.records.append({"generation": g, "step": offset + steps, "dist_align_t": self.alignment_t(g),
                             **{k: v for k, v in result.final.items() if k not in ("per_class", "confusion")},
                             **report})
        if self.config.checkpoint:
            self.save_checkpoint(self.config.checkpoint)
        return g

    def select(self, trainer) -> dict:
        """Predict every unlabeled image with the generation's EMA network; keep the class-rebalanced
        most confident ones for the next generation. Returns how many and how right they are."""
        pool = self.data.unlabeled_idx
        probs = torch.softmax(trainer.predict(self.data.images[pool]), dim=1)
        positions, labels = select_pseudo_labels(probs, self.rates)
        self.added_idx, self.added_labels = pool[positions], labels
        stats = PseudoLabelStats(self.data.num_classes, self.data.device)
        stats.update(self.data.true_labels[self.added_idx], labels)
        report = stats.report(self.data.groups)
        return {"added": int(positions.numel()), "added_accuracy": report.get("pl_accuracy", float("nan")),
                "added_per_class": torch.bincount(labels, minlength=self.data.num_classes).tolist()}

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self, trainer=None) -> dict:
        return {"kind": self.recipe.name, "hparams": self.recipe.hparams(), "config": dataclasses.asdict(self.config),
                "data": data_identity(self.data), "records": list(self.records), "history": list(self.history),
                "added_idx": self.added_idx, "added_labels": self.added_labels, "seconds": self.seconds,
                "trainer": None if trainer is None else trainer.state_dict()}

    def save_checkpoint(self, path, trainer=None) -> None:
        save_checkpoint(self.state_dict(trainer), path)

    def resume(self, path) -> "CReSTRun":
        """Continue from a checkpoint of the same recipe, settings and data."""
        state = load_checkpoint(path, self.recipe.name, self.data.device)
        check_resumable(f"checkpoint {path}", state, self.recipe.hparams(), self.data, dataclasses.asdict(self.config))
        if self.records:
            raise RuntimeError("resume() continues a fresh run; this one has already run generations")
        self.records, self.history = list(state["records"]), list(state["history"])
        self.added_idx, self.added_labels = state["added_idx"], state["added_labels"]
        self.seconds, self._unfinished = float(state["seconds"]), state["trainer"]
        return self

    def result(self, interrupted: bool = False):
        trainer, data = self.last_trainer, self.data
        last = self.last_final or (self.records[-1] if self.records else {})  # a resumed, finished run: its record
        final = {**last, "step": self.steps_before(self.generation), "generations": self.generation}
        return TrainResult(
            method=self.recipe.name, hparams=self.recipe.hparams(), config=dataclasses.asdict(self.config),
            data={**data.settings, "labeled_counts": data.labeled_counts, "unlabeled_counts": data.unlabeled_counts,
                  "groups": data.groups},
            history=list(self.history), final=final, seconds=self.seconds, interrupted=interrupted,
            net=None if trainer is None else trainer.net, ema_net=None if trainer is None else trainer.ema_net)


def _fresh_copy(model: nn.Module) -> nn.Module:
    """A re-initialised copy of a user-given model (each generation starts from scratch)."""
    fresh = copy.deepcopy(model)
    for module in fresh.modules():
        if hasattr(module, "reset_parameters") and module is not fresh:
            module.reset_parameters()
    return fresh
