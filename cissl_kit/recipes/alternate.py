"""Alternate Sampling (Liu et al., *Semi-supervised Long-tailed Recognition using Alternate
Sampling*) and the decoupling baselines it is compared with.

The network is a feature embedding f with two linear classifiers: g′ (``head``, trained with
random sampling together with f) and g (``balanced_head``, trained with class-balanced sampling
on frozen features). Predictions come from g.

* **Initialisation = Decoupling** (cRT): train f + g′ on the labeled set D with random sampling;
  re-initialise g and train it with class-balanced sampling on frozen features.
* **Each of N loops:** (1) pseudo-label all of U with f + g (argmax, no threshold); (2) fine-tune
  f + g′ on D ∪ U′ with random sampling, loss CE + λ·KL(p^{e−1} ‖ p^e) (Eq. 2–4); (3) fine-tune g
  on D with class-balanced sampling, f frozen (Eq. 5).

:class:`AlternateRun` exposes the stages one by one, so a notebook can look in between.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..algorithms.base import Algorithm, hparam
from ..algorithms.decoupled import ClassifierTraining, EmbeddingTraining, TemporalConsistency
from ..algorithms.ldam import LDAMDRW
from ..algorithms.semi import BalancedHeadNet
from ..checkpoint import check_resumable, data_identity, fits_this_run, load_checkpoint, save_checkpoint
from ..data.samplers import SAMPLERS
from ..engine import TrainConfig, Trainer, TrainResult, eval_batch_size, stop_or_return
from ..metrics import PseudoLabelStats, classification_report
from ..models import build_model, check_model, default_model
from ..utils import seed_everything
from .base import Recipe, run_to_the_end

DATA_CHOICES = ("all", "labeled")


@dataclass
class Decoupling(Recipe):
    """Decoupling / cRT (Kang et al., 2020): f + g′ with random sampling, then a fresh g with
    class-balanced sampling on frozen features. Alternate Sampling's initialisation."""

    name = "decoupling"
    init_steps: int = hparam(600, "steps of f + g′ on the labeled set (random sampling)", low=1)
    crt_steps: int = hparam(100, "steps of the re-initialised g (class-balanced, frozen features)", low=1)
    stage_lr: float = hparam(0.1, "learning rate of every stage (cosine schedule per stage; paper 0.1)", low=0.0, low_open=True)

    @property
    def uses_unlabeled_data(self) -> bool:
        return getattr(self, "loops", 0) > 0  # Decoupling (and zero loops): the labeled set alone

    def start(self, data, config=None, model: nn.Module | None = None) -> "AlternateRun":
        """An :class:`AlternateRun` to drive stage by stage."""
        return AlternateRun(self, data, config, model)

    def fit(self, data, config=None, model: nn.Module | None = None, resume: bool = False, keep_partial: bool = False):
        run = self.start(data, config, model)
        if resume:
            run.resume(run.config.checkpoint)
        return run_to_the_end(self.name, run, run.next_stage, run.num_stages, keep_partial)


@dataclass
class AlternateSampling(Decoupling):
    """Decoupled initialisation, then ``loops`` × (label assignment, embedding, classifier).

    ``embedding_sampler`` / ``classifier_sampler``: the paper's R + C default and the R + R, C + R,
    C + C ablations (Table 3); ``embedding_data`` / ``classifier_data``: where each part is
    trained (``all`` = D ∪ U′, ``labeled`` = D).
    """

    name = "alternate"
    loops: int = hparam(5, "N, the number of alternate loops", low=0)
    embedding_steps: int = hparam(200, "steps of stage 2 (f + g′) per loop", low=1)
    classifier_steps: int = hparam(50, "steps of stage 3 (g on frozen f) per loop", low=1)
    consistency_weight: float = hparam(1.0, "λ of the temporal-consistency loss (Eq. 4)", low=0.0)
    embedding_sampler: str = hparam("random", "stage 2 sampling (paper: random)", choices=SAMPLERS)
    classifier_sampler: str = hparam("balanced", "stage 3 sampling (paper: class-balanced)", choices=SAMPLERS)
    embedding_data: str = hparam("all", "stage 2 data: all = D ∪ U′, labeled = D", choices=DATA_CHOICES)
    classifier_data: str = hparam("labeled", "stage 3 data: labeled = D, all = D ∪ U′", choices=DATA_CHOICES)


@dataclass
class PseudoLabelDecoupling(AlternateSampling):
    """Pseudo-Label + Decoupling: one round of label assignment, cross-entropy fine-tuning of
    f + g′ on D ∪ U′, and class-balanced training of g on D ∪ U′."""

    name = "pseudolabel_decoupling"
    loops: int = hparam(1, "rounds of pseudo-labelling", low=0)
    embedding_steps: int = hparam(1000, "steps of f + g′ on D ∪ U′", low=1)
    classifier_steps: int = hparam(100, "steps of g on D ∪ U′ (class-balanced)", low=1)
    consistency_weight: float = hparam(0.0, "λ of the temporal-consistency loss (none for Pseudo-Label)", low=0.0)
    classifier_data: str = hparam("all", "data of g: all = D ∪ U′", choices=DATA_CHOICES)


class AlternateRun:
    """One network trained stage by stage; ``records`` holds one row per finished stage.

    ``next_stage()`` runs the next stage of the recipe (and returns its name, or ``None`` when all
    are done); ``initialize()``, ``assign_labels()``, ``train_embedding()``,
    ``train_classifier()`` and ``loop()`` run them by hand.
    """

    def __init__(self, recipe: Decoupling, data, config=None, model: nn.Module | None = None) -> None:

        self.recipe, self.data = recipe, data
        self.config = config or TrainConfig()
        seed_everything(self.config.seed)
        if model is None:
            model = build_model(self.config.model or default_model(data.input_shape), data.num_classes, data.input_shape)
        check_model(model)
        self.net = BalancedHeadNet(model).to(data.device)
        self.memory = TemporalConsistency(data.images.shape[0], data.num_classes, data.device)
        self.records: list[dict] = []
        self.pseudo_labels: Tensor | None = None
        self.pseudo_label_report: dict = {}
        self.loop_index = 0
        self.steps_done = 0
        self.seconds = 0.0
        self._stages = iter(self._plan())
        self.num_stages = 2 + 3 * getattr(recipe, "loops", 0)
        self._unfinished_stage: dict | None = None  # a resumed stage trainer's state, loaded by _train

    # -- the plan ------------------------------------------------------------------------------
    def _plan(self):
        """(loop number, stage name, function) for every stage; loop 0 is the initialisation."""
        yield 0, "initialize embedding", self.train_initial_embedding
        yield 0, "initialize classifier", lambda: self.train_classifier(reinitialize=True)
        for loop in range(1, getattr(self.recipe, "loops", 0) + 1):
            yield loop, "assign labels", self.assign_labels
            yield loop, "train embedding", self.train_embedding
            yield loop, "train classifier", self.train_classifier

    def next_stage(self) -> str | None:
        """Run the next stage; its name (``"loop 2: train embedding"``), or ``None`` when the recipe is done."""
        stage = next(self._stages, None)
        if stage is None:
            return None
        self.loop_index, name, run = stage
        start = time.perf_counter()
        try:
            run()
        except KeyboardInterrupt:  # the stage is not done: the next call runs it again
            self._stages = itertools.chain([stage], self._stages)
            raise
        finally:
            self.seconds += time.perf_counter() - start
        self.records.append({"stage": name, "loop": self.loop_index, "step": self.steps_done, **self._snapshot()})
        if self.config.checkpoint:
            self.save_checkpoint(self.config.checkpoint)
        return f"loop {self.loop_index}: {name}" if self.loop_index else name

    def initialize(self) -> None:
        """Both initialisation stages (Decoupling)."""
        for _ in range(2):
            self.next_stage()

    def loop(self) -> None:
        """One full alternate loop: assign labels, train the embedding, train the classifier."""
        for _ in range(3):
            if self.next_stage() is None:
                raise RuntimeError(f"all {getattr(self.recipe, 'loops', 0)} loops have run")

    # -- the stages ----------------------------------------------------------------------------
    def _train(self, algorithm: Algorithm, data, steps: int):
        stage_seed = self.config.seed * 1000 + len(self.records)
        config = dataclasses.replace(self.config, steps=steps, lr=self.recipe.stage_lr, ema=0.0, eval_every=steps,
                                     seed=stage_seed, progress=False, checkpoint=None)
        trainer = Trainer(algorithm, data, model=self.net, config=config)
        if self._unfinished_stage is not None:
            trainer.load_state_dict(self._unfinished_stage, "the checkpoint's unfinished stage")
            self._unfinished_stage = None
        if self.config.checkpoint:  # the whole run, with this stage's trainer, every checkpoint_every steps
            trainer.checkpoint_writer = lambda stage_trainer: self.save_checkpoint(self.config.checkpoint, stage_trainer)
        result = trainer.fit(keep_partial=True)
        if result.interrupted:
            raise KeyboardInterrupt
        self.steps_done += steps
        return result

    def train_initial_embedding(self):
        """Initialisation: f + g′ on D with random sampling, cross-entropy."""
        return self._train(EmbeddingTraining(sampler="random", consistency_weight=0.0), self.data, self.recipe.init_steps)

    def assign_labels(self) -> dict:
        """Stage 1: pseudo-label every unlabeled image with f + g (argmax); report their accuracy."""
        pool = self.data.unlabeled_idx
        previous = self.pseudo_labels
        self.pseudo_labels = self.predict(self.data.images[pool]).argmax(1)
        stats = PseudoLabelStats(self.data.num_classes, self.data.device)
        stats.update(self.data.true_labels[pool], self.pseudo_labels)
        self.pseudo_label_report = stats.report(self.data.groups)
        # share of pseudo-labels that differ from the previous assignment (NaN at the first)
        changed = float("nan") if previous is None else (self.pseudo_labels != previous).float().mean().item()
        self.pseudo_label_report["changed"] = changed
        return self.pseudo_label_report

    def _with_pseudo_labels(self, which: str):
        if which == "labeled" or self.pseudo_labels is None:
            return self.data
        return self.data.with_extra_labels(self.data.unlabeled_idx, self.pseudo_labels)

    def train_embedding(self):
        """Stage 2: f + g′ on D ∪ U′ (or D), random sampling, CE + λ·temporal consistency."""
        recipe = self.recipe
        algorithm = EmbeddingTraining(sampler=recipe.embedding_sampler, consistency_weight=recipe.consistency_weight)
        algorithm.memory = self.memory
        return self._train(algorithm, self._with_pseudo_labels(recipe.embedding_data), recipe.embedding_steps)

    def train_classifier(self, reinitialize: bool = False):
        """Stage 3 (or cRT when ``reinitialize``): g on frozen features, class-balanced sampling."""
        if reinitialize:
            self.net.balanced_head.reset_parameters()
            return self._train(ClassifierTraining(sampler="balanced"), self.data, self.recipe.crt_steps)
        recipe = self.recipe
        return self._train(ClassifierTraining(sampler=recipe.classifier_sampler),
                           self._with_pseudo_labels(recipe.classifier_data), recipe.classifier_steps)

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self, stage_trainer=None) -> dict:
        """The run after its finished stages, plus ``stage_trainer``'s state when a stage is under way."""
        return {
            "kind": self.recipe.name, "hparams": self.recipe.hparams(), "config": dataclasses.asdict(self.config),
            "data": data_identity(self.data), "net": self.net.state_dict(),
            "memory": {"probs": self.memory.probs, "seen": self.memory.seen}, "records": list(self.records),
            "pseudo_labels": self.pseudo_labels, "pseudo_label_report": dict(self.pseudo_label_report),
            "loop_index": self.loop_index, "steps_done": self.steps_done, "seconds": self.seconds,
            "torch_rng": torch.get_rng_state(),
            "stage_trainer": None if stage_trainer is None else stage_trainer.state_dict(),
        }

    def save_checkpoint(self, path, stage_trainer=None) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        save_checkpoint(self.state_dict(stage_trainer), path)

    def resume(self, path) -> "AlternateRun":
        """Continue from a checkpoint of the same recipe, settings and data: the finished stages are
        skipped and an unfinished one continues from its last step."""
        state = load_checkpoint(path, self.recipe.name, self.data.device)
        source = f"checkpoint {path}"
        check_resumable(source, state, self.recipe.hparams(), self.data, dataclasses.asdict(self.config))
        if self.records:
            raise RuntimeError("resume() continues a fresh run; this one has already run stages")
        with fits_this_run(source):
            self.net.load_state_dict(state["net"])
            self.memory.probs, self.memory.seen = state["memory"]["probs"], state["memory"]["seen"]
            self.records, self.pseudo_labels = list(state["records"]), state["pseudo_labels"]
            self.pseudo_label_report = dict(state["pseudo_label_report"])
            self.loop_index, self.steps_done = int(state["loop_index"]), int(state["steps_done"])
            self.seconds = float(state["seconds"])
            torch.set_rng_state(state["torch_rng"].cpu())
            self._unfinished_stage = state["stage_trainer"]
        for _ in self.records:  # skip the finished stages
            next(self._stages)
        return self

    # -- looking ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: Tensor, head: str = "balanced") -> Tensor:
        """Logits of g (``balanced``) or g′ (``random``) for raw images."""
        self.net.eval()
        classifier = self.net.balanced_head if head == "balanced" else self.net.head
        outputs = [classifier(self.net.features(self.data.augmenter.plain(chunk)))
                   for chunk in images.split(eval_batch_size(self.config, self.data.device))]
        return torch.cat(outputs).float()

    def evaluate(self, head: str = "balanced") -> dict:
        """Test metrics of g (or g′)."""
        predictions = self.predict(self.data.test_images, head).argmax(1)
        return classification_report(predictions, self.data.test_labels, self.data.num_classes, self.data.groups)

    def _snapshot(self) -> dict:
        report = self.evaluate()
        row = {k: v for k, v in report.items() if k not in ("per_class", "confusion")}
        row["accuracy_random_head"] = self.evaluate("random")["accuracy"]
        row.update({k: v for k, v in self.pseudo_label_report.items() if not k.endswith("per_class")})
        return row

    def result(self, interrupted: bool = False):
        final = {**self.evaluate(), **self.pseudo_label_report, "step": self.steps_done}
        data = self.data
        return TrainResult(
            method=self.recipe.name, hparams=self.recipe.hparams(), config=dataclasses.asdict(self.config),
            data={**data.settings, "labeled_counts": data.labeled_counts, "unlabeled_counts": data.unlabeled_counts,
                  "groups": data.groups},
            history=list(self.records), final=final, seconds=self.seconds, interrupted=interrupted,
            net=self.net, ema_net=self.net,
        )


@dataclass
class PseudoLabelLDAM(Recipe):
    """Pseudo-Label + LDAM-DRW (Yang & Xu, 2020): LDAM-DRW on D, pseudo-label all of U with it,
    then LDAM-DRW fine-tuning on D ∪ U′ (margins and weights from the pseudo-labelled counts)."""

    name = "pseudolabel_ldam"
    init_steps: int = hparam(1500, "LDAM-DRW steps on the labeled set", low=1)
    finetune_steps: int = hparam(1000, "LDAM-DRW steps on D ∪ U′", low=1)
    stage_lr: float = hparam(0.1, "learning rate of both stages", low=0.0, low_open=True)
    max_margin: float = hparam(0.5, "largest LDAM margin", low=0.0)
    scale: float = hparam(30.0, "s, the scale of the cosine logits", low=0.0, low_open=True)

    def fit(self, data, config=None, model: nn.Module | None = None, resume: bool = False, keep_partial: bool = False):
        config = config or TrainConfig()
        start = time.perf_counter()
        saved = load_checkpoint(config.checkpoint, self.name, data.device) if resume else None
        if saved is not None:  # (each stage's trainer checks its own loop settings)
            check_resumable(f"checkpoint {config.checkpoint}", saved, self.hparams(), data)

        def checkpoint_writer(first_state: dict | None):
            """Both stages' trainers in one file: stage 1 under way, or stage 1 done and stage 2 under way."""
            def write(trainer) -> None:
                first, second = (trainer.state_dict(), None) if first_state is None else (first_state, trainer.state_dict())
                save_checkpoint({"kind": self.name, "hparams": self.hparams(), "data": data_identity(data),
                                 "first": first, "second": second}, config.checkpoint)
            return write

        make = lambda: LDAMDRW(max_margin=self.max_margin, scale=self.scale)  # noqa: E731
        stage = dict(lr=self.stage_lr, checkpoint=None)
        first = Trainer(make(), data, model, dataclasses.replace(config, steps=self.init_steps, **stage))
        if saved is not None:
            first.load_state_dict(saved["first"], f"checkpoint {config.checkpoint} (stage 1)")
        if config.checkpoint:
            first.checkpoint_writer = checkpoint_writer(None)
        if first.fit(keep_partial=True).interrupted:
            return stop_or_return(dataclasses.replace(first.result(True), method=self.name, hparams=self.hparams()),
                                  keep_partial)
        pool = data.unlabeled_idx
        pseudo = first.predict(data.images[pool]).argmax(1)
        stats = PseudoLabelStats(data.num_classes, data.device)
        stats.update(data.true_labels[pool], pseudo)
        second = Trainer(make(), data.with_extra_labels(pool, pseudo), first.net,
                         dataclasses.replace(config, steps=self.finetune_steps, seed=config.seed + 1, **stage))
        if saved is not None and saved["second"] is not None:
            second.load_state_dict(saved["second"], f"checkpoint {config.checkpoint} (stage 2)")
        if config.checkpoint:
            second.checkpoint_writer = checkpoint_writer(first.state_dict())
        result = second.fit(keep_partial=True)
        history = [{**row, "stage": "LDAM-DRW on D"} for row in first.history]
        history += [{**row, "step": row["step"] + self.init_steps, "stage": "LDAM-DRW on D ∪ U′"} for row in second.history]
        final = {**second.evaluate(), **stats.report(data.groups), "step": self.init_steps + self.finetune_steps}
        return stop_or_return(dataclasses.replace(result, method=self.name, hparams=self.hparams(), history=history,
                                                  final=final if not result.interrupted else result.final,
                                                  data={**result.data, "labeled_counts": data.labeled_counts},
                                                  seconds=time.perf_counter() - start), keep_partial)
