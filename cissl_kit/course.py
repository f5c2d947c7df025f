"""The notebooks' evidence: every comparison a notebook interprets rests on a grid of seeds, shipped with the
kit, so that a lab does not wait on training.

A notebook calls :func:`course_results` with ``retrain=RETRAIN`` (the flag in its set-up cell):

* ``RETRAIN = False`` (the default): the grid's rows from ``reference_results/``, checked against the
  SHA-256 digest recorded in ``reference_results/MANIFEST.json`` (a file that does not match is refused);
* ``RETRAIN = True``: the same grid trained here with :func:`~cissl_kit.benchmark.run_grid` (finished cells
  kept under ``runs/course/``, so an interrupted grid resumes), which is how the shipped file was made
  (``benchmarks/course_grids.py``, the CPU kernels pinned as in the tests).

Each notebook also trains one seed live, so that its training cells run under ``pytest --nbval``.

Layer: beside ``benchmark`` (it runs grids), below the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._checks import check_choice
from .algorithms import LDAMDRW, FixMatch, FixMatchBalancedHead, FixMatchLA, LayerMatch, SeMi
from .benchmark import run_grid, shipped
from .engine import TrainConfig, TrainResult
from .recipes import AlternateSampling, Decoupling, PseudoLabelDecoupling, PseudoLabelLDAM
from .registry import build_algorithm
from .utils import max_threads, usable_cores

SEEDS_DIGITS = (0, 1, 2, 3, 4)  # five seeds on the small digits-LT grids
# the mnist-LT reference files (mnist_lt.json, mnist_lt_comparison.json) hold ten seeds: at 0.8 points the
# median half-width of their paired differences is what lets a 1-2 point effect be seen (issue 23)
SEEDS_MNIST = tuple(range(10))
# notebook 05's γ = 50 exercise grid holds three (the prior-estimation file, mnist_lt_prior.json, holds ten)
SEEDS_MNIST_EXTRA = (0, 1, 2)


@dataclass(frozen=True)
class CourseGrid:
    """A grid a notebook reads: its methods (label → factory), profiles, seeds, data and loop settings."""

    notebook: str
    methods: dict[str, Callable]
    profiles: tuple[str, ...]
    seeds: tuple[int, ...]
    dataset: str = "digits"
    steps: int = 1000
    eval_every: int = 100
    lr: float = 0.03
    data: dict = field(default_factory=dict)
    shipped_in: str | None = None  # a reference file that holds these runs among others (its rows are filtered)
    threads: int = 1  # the CPU threads of each shipped run (a run's floats depend on it): RETRAIN trains so too
    curve: tuple[str, ...] | None = None  # the curve columns the shipped file keeps (None: all)

    def config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, eval_every=self.eval_every, lr=self.lr)


SEMI_BASELINES = {
    "FixMatch τ=0.95": lambda: FixMatch(threshold=0.95),
    "FixMatch τ=0.7": lambda: FixMatch(threshold=0.7),
    "FixMatch + LA": FixMatchLA,
    "FixMatch + balanced head": FixMatchBalancedHead,
    "SeMi": SeMi,
}
SEMI_ABLATIONS = {
    "w/o bank (FIFO queue)": lambda: SeMi(bank_policy="fifo"),
    "w/o OHEML (τ = 0.95, no weights)": lambda: SeMi(use_oheml=False, threshold=0.95),
    "w/o entropy weights (τ = 0.7 kept)": lambda: SeMi(use_oheml=False),
    "w/o EA": lambda: SeMi(use_alignment=False),
    "w/o PLCE": lambda: SeMi(use_plce=False),
    "w/o balanced head": lambda: SeMi(use_balanced_head=False),
}
SEMI_SETTINGS = {  # exercises 2 and 3: OHEML's floor, and the public code's threshold
    "SeMi s = 1 (no floor)": lambda: SeMi(entropy_scale=1.0),
    "SeMi τ = 0.95 (public code)": lambda: SeMi(threshold=0.95),
}
LAYERMATCH_VARIANTS = {
    "FixMatch": FixMatch,
    "FixMatch + Grad-ReLU": lambda: LayerMatch(threshold_mode="fixed", avg_clustering=False),
    "SAT + Grad-ReLU": lambda: LayerMatch(avg_clustering=False),
    "LayerMatch (kit)": LayerMatch,
    "LayerMatch, the paper's normalisation": lambda: LayerMatch(u_average="masked", ac_average="masked"),
    "LayerMatch, momentum 0.999 (not scaled to the run)": lambda: LayerMatch(sat_horizon=0.0),
    "LayerMatch, SAT from 1": lambda: LayerMatch(sat_start="one", sat_horizon=0.0),
    "FixMatch + SAT": lambda: FixMatch(threshold_mode="freematch"),
}
LAYERMATCH_SETTINGS = {  # exercises 3 and 4: how often Avg-Clustering resets, a start at 1 with the scaled momentum
    "ac_period=1": lambda: LayerMatch(ac_period=1),
    "ac_period=1000 (one reset)": lambda: LayerMatch(ac_period=1000),
    "LayerMatch, SAT from 1, horizon 0.5%": lambda: LayerMatch(sat_start="one"),
}
LAYERMATCH_STARTS = {  # exercise 4 with reversed unlabeled data: the two starts of the threshold
    "LayerMatch (kit)": LayerMatch,
    "LayerMatch, SAT from 1, horizon 0.5%": lambda: LayerMatch(sat_start="one"),
}
ALTERNATE_TABLE = {
    "Decoupling": Decoupling,
    "Pseudo-Label + Decoupling": PseudoLabelDecoupling,
    "LDAM-DRW": LDAMDRW,
    "Pseudo-Label + LDAM-DRW": PseudoLabelLDAM,
    "Alternate Sampling": AlternateSampling,
}
ALTERNATE_ABLATIONS = {
    "R + C (Alternate Sampling)": AlternateSampling,
    "R + R": lambda: AlternateSampling(classifier_sampler="random"),
    "C + R": lambda: AlternateSampling(embedding_sampler="balanced", classifier_sampler="random"),
    "C + C": lambda: AlternateSampling(embedding_sampler="balanced"),
    "classifier on D ∪ U′": lambda: AlternateSampling(classifier_data="all"),
    "… and embedding on D only": lambda: AlternateSampling(classifier_data="all", embedding_data="labeled"),
}
ALTERNATE_SETTINGS = {  # exercises 2 and 3: the temporal-consistency loss, a shorter embedding stage
    "λ = 0 (no consistency loss)": lambda: AlternateSampling(consistency_weight=0.0),
    "embedding stage of 50 steps": lambda: AlternateSampling(embedding_steps=50),
}

# what notebook 03 plots of a run's curve (the threshold figure, the first 10% of training)
THRESHOLD_CURVE = ("step", "accuracy", "few", "mask", "pl_accuracy", "threshold", "confidence")

GRIDS: dict[str, CourseGrid] = {
    # 01, 05 and 06 read the mnist-LT reference files (SEEDS_MNIST); 01 needs two of their methods
    "01_mnist": CourseGrid("01", {"supervised": lambda: build_algorithm("supervised"),
                                  "fixmatch": lambda: build_algorithm("fixmatch")},
                           ("consistent", "uniform", "reversed"), SEEDS_MNIST, dataset="mnist",
                           shipped_in="mnist_lt.json"),
    # 02: SeMi on digits-LT, reversed (and its baselines with consistent data, exercise 1)
    "02_semi": CourseGrid("02", {**SEMI_BASELINES, **SEMI_ABLATIONS, **SEMI_SETTINGS}, ("reversed",), SEEDS_DIGITS,
                          steps=800),
    "02_semi_consistent": CourseGrid("02", SEMI_BASELINES, ("consistent",), SEEDS_DIGITS, steps=800),
    # 02 §3: the draw at seed 0, the same runs as 02_semi's at seed 0 with the curve its figures plot besides
    # (the share of few-shot images used, which 02_semi's file predates)
    "02_semi_draw": CourseGrid("02", SEMI_BASELINES, ("reversed",), SEEDS_DIGITS[:1], steps=800),
    # 03: LayerMatch's parts on digits-LT, consistent; curves every 25 steps for the threshold figure
    "03_layermatch": CourseGrid("03", LAYERMATCH_VARIANTS, ("consistent",), SEEDS_DIGITS, eval_every=25, threads=2,
                                curve=THRESHOLD_CURVE),
    "03_layermatch_settings": CourseGrid("03", LAYERMATCH_SETTINGS, ("consistent",), SEEDS_DIGITS, eval_every=25,
                                         curve=THRESHOLD_CURVE),
    "03_layermatch_reversed": CourseGrid("03", LAYERMATCH_STARTS, ("reversed",), SEEDS_DIGITS, eval_every=25,
                                         curve=THRESHOLD_CURVE),
    # 04: Alternate Sampling and its baselines at γ = 50 and γ = 10 (N1 = 50, M1 = 70), and the sampling ablation
    "04_alternate_gamma50": CourseGrid("04", {**ALTERNATE_TABLE, **{k: v for k, v in ALTERNATE_ABLATIONS.items()
                                                                  if k != "R + C (Alternate Sampling)"},
                                        **ALTERNATE_SETTINGS},
                                       ("consistent",), SEEDS_DIGITS, steps=1500, lr=0.1,
                                       data=dict(n_max=50, imbalance_ratio=50, m_max=70)),
    "04_alternate_gamma10": CourseGrid("04", ALTERNATE_TABLE, ("consistent",), SEEDS_DIGITS, steps=1500, lr=0.1,
                                       data=dict(n_max=50, imbalance_ratio=10, m_max=70)),
}


def course_results(name: str, retrain: bool = False, progress: bool = True, jobs: int | None = None) -> list[dict]:
    """The rows of the course grid ``name``: shipped and digest-checked, or (``retrain``) trained here as the shipped
    ones were, each run on ``grid.threads`` threads, ``jobs`` runs at a time (default: as many as the usable cores
    allow), so that on the CPU that made the file the rows are the file's."""
    check_choice("name", name, tuple(GRIDS))
    grid = GRIDS[name]
    if retrain:
        threads = min(grid.threads, max_threads())  # a machine with fewer cores trains other draws
        jobs = max(1, usable_cores() // threads) if jobs is None else jobs
        return run_grid(grid.methods, grid.profiles, grid.seeds, grid.dataset, grid.config(),
                        out=Path("runs") / "course" / name, progress=progress, jobs=jobs, threads=threads, **grid.data)
    if grid.shipped_in:
        return [r for r in shipped(grid.shipped_in) if r["label"] in grid.methods and r["profile"] in grid.profiles]
    try:
        return shipped(f"course/{name}.json")
    except FileNotFoundError:
        raise FileNotFoundError(f"the course grid {name!r} is not shipped with this version of the kit; "
                                f"course_results({name!r}, retrain=True) trains it ({len(grid.methods)} methods × "
                                f"{len(grid.seeds)} seeds), or benchmarks/course_grids.py --only {name}") from None


def runs_at(rows: list[dict], seed: int, profile: str | None = None) -> dict[str, TrainResult]:
    """The runs of a grid at one ``seed`` (and ``profile``, needed where the rows hold several), label →
    :class:`~cissl_kit.engine.TrainResult`: each row's evaluation curve as the history, its final metrics (and
    the last evaluation's other columns), no networks. What a notebook's one-draw figures and tables take, from
    a shipped or retrained grid."""
    profiles = sorted({r["profile"] for r in rows})
    if profile is None and len(profiles) > 1:
        raise ValueError(f"profile must be one of {profiles}: the rows hold several")
    chosen = [r for r in rows if r["seed"] == seed and profile in (None, r["profile"])]
    if not chosen:
        raise ValueError(f"seed must be one of {sorted({r['seed'] for r in rows})}, got {seed!r}")
    final_keys = ("accuracy", "balanced_accuracy", "many", "medium", "few", "pl_accuracy", "utilization",
                  "per_class", "confusion")
    return {r["label"]: TrainResult(method=r["label"], hparams={}, config={}, data={"groups": r["groups"]},
                                    history=[dict(point) for point in r["curve"]],
                                    final={**(r["curve"][-1] if r["curve"] else {}),
                                           **{k: r[k] for k in final_keys if k in r}}, seconds=r["seconds"],
                                    interrupted=bool(r.get("interrupted")))
            for r in chosen}


__all__ = ["GRIDS", "CourseGrid", "course_results", "runs_at"]
