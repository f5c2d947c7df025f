"""A grid of runs — methods × unlabeled profiles × seeds — with mean ± std tables.

Each finished run is saved as one JSON file in ``<out>/cells/``; running the same grid again
reuses the runs whose settings match, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import re
import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from ._checks import check_float
from .algorithms import Algorithm, Recipe, build_algorithm
from .data import make_ssl_data
from .engine import TrainConfig, train

METRICS = ("accuracy", "many", "medium", "few", "pl_accuracy")
# the default grid: the baselines with and without logit adjustment, SeMi's balanced head alone,
# and one method of each paper; on mnist-LT, where unlabeled data clearly helps
BENCHMARK_METHODS = ("supervised", "supervised_la", "fixmatch", "fixmatch_la", "fixmatch_bh", "semi", "layermatch",
                     "alternate")
BENCHMARK_DATASET = "mnist"
CURVE = ("step", "accuracy", "mask", "pl_accuracy")  # kept per evaluation in each row's "curve"
BENCHMARK_STEPS = 1000  # the whole default grid (20 runs) in under 10 minutes on 2 CPU cores


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def run_grid(
    methods: Sequence[str] | Mapping[str, Callable[[], Algorithm | Recipe]] = BENCHMARK_METHODS,
    profiles: Sequence[str] = ("consistent", "uniform", "reversed"),
    seeds: Sequence[int] = (0, 1, 2),
    dataset: str = BENCHMARK_DATASET,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    device: str | None = None,
    **data_kwargs,
) -> list[dict]:
    """Train every method on every profile with every seed; return one row per run.

    ``methods``: names (``"fixmatch"``) or a mapping from a label to a function that builds the
    algorithm (for variants such as ablations). ``data_kwargs`` go to :func:`make_ssl_data`
    (``n_max``, ``imbalance_ratio`` …). The seed sets both the split and the training.

    A method that trains on the labeled set alone (``uses_unlabeled_data`` false: Supervised,
    Decoupling, LDAM-DRW …) cannot depend on the unlabeled profile — the split draws the test and
    labeled sets first — so it trains once per seed and its row stands in every profile (marked
    ``"same_run_as"``). A run stopped by Ctrl-C (or SIGTERM) is returned marked ``"interrupted"``,
    never saved as finished, and the grid stops there; a damaged cell file is trained anew.
    """
    factories = {m: (lambda m=m: build_algorithm(m)) for m in methods} if not isinstance(methods, Mapping) else dict(methods)
    config = config or TrainConfig(steps=BENCHMARK_STEPS)
    cells = Path(out) / "cells" if out is not None else None
    if cells is not None:
        cells.mkdir(parents=True, exist_ok=True)
    grid = [(p, s, label) for p in profiles for s in seeds for label in factories]
    rows: list[dict] = []
    label_only: dict[tuple[str, int], dict] = {}  # (label, seed) -> the row of its one run
    data_for = _DataCache(dataset, device, data_kwargs)
    bar = tqdm(grid, desc="grid", disable=not progress)
    for profile, seed, label in bar:
        bar.set_postfix_str(f"{label} · {profile} · seed {seed}")
        algorithm = factories[label]()
        settings = _settings(algorithm, dataset, profile, seed, data_kwargs, dataclasses.replace(config, seed=seed))
        path = cells / f"{_slug(label)}--{profile}--seed{seed}.json" if cells is not None else None
        saved = _read_cell(path)
        if saved is not None and saved.get("settings") == settings and not saved.get("interrupted"):
            rows.append(saved["row"])
            if not algorithm.uses_unlabeled_data:
                label_only.setdefault((label, seed), saved["row"])
            continue
        shared = label_only.get((label, seed))
        if shared is not None:  # the same labeled-only run, under this profile's name
            row = {**shared, "profile": profile, "same_run_as": shared.get("same_run_as", shared["profile"])}
        else:
            data = data_for(profile, seed)
            result = train(algorithm, data, config=dataclasses.replace(config, seed=seed, progress=False))
            row = {"label": label, "profile": profile, "seed": seed, **result.summary(),
                   "per_class": result.final["per_class"], "confusion": result.final["confusion"],
                   "groups": data.groups, "curve": [{k: h.get(k, float("nan")) for k in CURVE} for h in result.history]}
            row["method"] = label
            if result.interrupted:
                rows.append({**row, "interrupted": True, "step": result.final.get("step", 0), "steps": config.steps})
                break
            if not algorithm.uses_unlabeled_data:
                label_only[(label, seed)] = row
        if path is not None:
            _write_atomic(path, json.dumps({"settings": settings, "row": row}, indent=1))
        rows.append(row)
    bar.close()
    return rows


class _DataCache:
    """The split of the latest (profile, seed), made once for all the methods trained on it."""

    def __init__(self, dataset: str, device, data_kwargs: dict) -> None:
        self.dataset, self.device, self.data_kwargs = dataset, device, data_kwargs
        self.key, self.data = None, None

    def __call__(self, profile: str, seed: int):
        if self.key != (profile, seed):
            self.data = make_ssl_data(self.dataset, unlabeled_profile=profile, seed=seed, device=self.device,
                                      **self.data_kwargs)
            self.key = (profile, seed)
        return self.data


def _read_cell(path: Path | None) -> dict | None:
    """A saved cell, or None if there is none; a damaged file (cut short mid-write) is named and ignored."""
    if path is None or not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or not isinstance(saved.get("row"), dict):
            raise ValueError("not a cell: no 'row'")
        return saved
    except (ValueError, OSError) as error:  # JSONDecodeError is a ValueError
        warnings.warn(f"benchmark cell {path} is damaged ({error}); training it again", stacklevel=3)
        return None


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``: never half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# settings that do not change a run's results (or only within floating-point noise), left out when
# deciding whether a saved run matches
_NOT_RESULTS = {"root", "download", "progress", "log_every", "eval_batch_size", "channels_last", "compile",
                "checkpoint", "checkpoint_every"}


def _settings(algorithm: Algorithm, dataset: str, profile: str, seed: int, data_kwargs: dict,
              config: TrainConfig) -> dict:
    """Everything that determines a run's results, JSON-normalised (data options at their default left out)."""
    defaults = {name: p.default for name, p in inspect.signature(make_ssl_data).parameters.items()}
    data = {k: v for k, v in data_kwargs.items() if v != defaults.get(k) and k not in _NOT_RESULTS}
    loop = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_RESULTS}
    settings = {"method": algorithm.name, "hparams": algorithm.hparams(), "dataset": dataset, "profile": profile,
                "seed": seed, "data": data, "config": loop}
    return json.loads(json.dumps(settings, default=str))


def summarize(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> list[dict]:
    """Mean and standard deviation (in percent) per (profile, method) of the finished runs, in the
    order first seen; ``interrupted`` counts the runs stopped early (left out of the statistics)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["profile"], row["label"]), []).append(row)
    summary = []
    for (profile, label), runs in groups.items():
        finished = [r for r in runs if not r.get("interrupted")]
        entry = {"profile": profile, "method": label, "runs": len(finished), "interrupted": len(runs) - len(finished)}
        for metric in metrics:
            values = [100 * r[metric] for r in finished if not math.isnan(r.get(metric, float("nan")))]
            entry[metric] = statistics.mean(values) if values else float("nan")
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


def paired_differences(rows: Sequence[dict], baseline: str, metric: str = "accuracy",
                       confidence: float = 0.95) -> list[dict]:
    """Each method against ``baseline``, per profile, over the seeds both finished: the mean of the
    per-seed differences (percentage points) with a Student-t interval. ``within_noise`` is true
    where the interval covers 0 (and for a single seed, which has no interval)."""
    check_float("confidence", confidence, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    finished = [r for r in rows if not r.get("interrupted") and not math.isnan(r.get(metric, float("nan")))]
    by_key = {(r["profile"], r["label"], r["seed"]): 100 * r[metric] for r in finished}
    out = []
    for profile in dict.fromkeys(r["profile"] for r in finished):
        for label in dict.fromkeys(r["label"] for r in finished if r["profile"] == profile):
            if label == baseline:
                continue
            seeds = sorted(s for (p, m, s) in by_key if p == profile and m == label
                           and (profile, baseline, s) in by_key)
            if not seeds:
                continue
            diffs = [by_key[profile, label, s] - by_key[profile, baseline, s] for s in seeds]
            mean = statistics.mean(diffs)
            half = float("nan")
            if len(diffs) > 1:
                half = _t_quantile((1 + confidence) / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
            low, high = mean - half, mean + half
            out.append({"profile": profile, "method": label, "baseline": baseline, "metric": metric, "seeds": len(diffs),
                        "mean": mean, "low": low, "high": high, "confidence": confidence,
                        "within_noise": len(diffs) < 2 or low <= 0 <= high})
    return out


def _t_quantile(q: float, dof: int) -> float:
    from scipy.stats import t  # scikit-learn's own dependency

    return float(t.ppf(q, dof))


def per_class_means(rows: Sequence[dict]) -> dict[str, dict[str, list[float]]]:
    """Mean per-class test accuracy (fractions): ``{profile: {method: [acc of class 0, …]}}``."""
    groups: dict[str, dict[str, list[list[float]]]] = {}
    for row in rows:
        groups.setdefault(row["profile"], {}).setdefault(row["label"], []).append(row["per_class"])
    return {profile: {label: [statistics.mean(v) for v in zip(*runs)] for label, runs in methods.items()}
            for profile, methods in groups.items()}


def load_benchmark(path: str | Path) -> list[dict]:
    """The rows a benchmark wrote: ``path`` is its ``results.json`` or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {path}; run `cissl-kit benchmark --out <folder>` first")
    rows = json.loads(path.read_text())
    needed = {"label", "profile", "seed", "per_class", *METRICS}
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and needed <= set(r) for r in rows):
        raise ValueError(f"{path} is not a benchmark results file (a list of runs with {', '.join(sorted(needed))})")
    return rows


REFERENCE_RESULTS = Path(__file__).parent / "reference_results" / "mnist_lt.json"
# SeMi Tables 1–2 style: FixMatch, its LA baseline, the methods the papers compare against, and one
# method of each paper; the rows not in REFERENCE_RESULTS are in COMPARISON_RESULTS
COMPARISON_METHODS = ("fixmatch", "fixmatch_la", "darp", "crest_plus", "daso", "abc", "acr", "semi", "layermatch",
                      "alternate")
COMPARISON_RESULTS = Path(__file__).parent / "reference_results" / "mnist_lt_comparison.json"
EXERCISE_RESULTS = Path(__file__).parent / "reference_results" / "exercises"


def reference_results() -> list[dict]:
    """The default benchmark on mnist-LT with seeds 0, 1, 2, as shipped with the kit (made by
    ``cissl-kit benchmark --seeds 0,1,2`` on a 2-core CPU with the kernels pinned as in the tests;
    ``run_grid()`` with its defaults remakes it)."""
    return load_benchmark(REFERENCE_RESULTS)


def comparison_results() -> list[dict]:
    """:data:`COMPARISON_METHODS` on mnist-LT with seeds 0, 1, 2, in that order: the shipped reference
    rows of the methods the default grid shares, plus the comparison methods' rows (made like the
    reference file; ``run_grid(COMPARISON_METHODS)`` remakes all of them)."""
    rows = [r for r in reference_results() if r["label"] in COMPARISON_METHODS] + load_benchmark(COMPARISON_RESULTS)
    order = {label: i for i, label in enumerate(COMPARISON_METHODS)}
    return sorted(rows, key=lambda r: (r["profile"] != "consistent", r["profile"] != "uniform", r["seed"], order[r["label"]]))


def exercise_results(name: str) -> list[dict]:
    """A grid that a notebook exercise asks for, shipped so that its worked solution can show it without
    the training: ``name`` is one of the files in ``reference_results/exercises`` (written by
    ``benchmarks/exercise_grids.py``; the ``run_grid`` call of the exercise remakes it)."""
    names = sorted(p.stem for p in EXERCISE_RESULTS.glob("*.json"))
    if name not in names:
        raise ValueError(f"name must be one of {', '.join(names)}; got {name!r}")
    return load_benchmark(EXERCISE_RESULTS / f"{name}.json")


def write_figures(rows: Sequence[dict], folder: str | Path) -> list[Path]:
    """``summary.png`` (mean ± std per setting) and ``per_class.png`` (one panel per setting) in ``folder``."""
    # plain Figure objects: no pyplot state and no backend switch (callable from a notebook)
    from matplotlib.figure import Figure

    from .viz import plot_benchmark, plot_per_class

    folder = Path(folder)
    paths = [folder / "summary.png", folder / "per_class.png"]
    fig = Figure(figsize=(14, 4))
    axes = fig.subplots(1, 2)
    plot_benchmark(rows, "accuracy", ax=axes[0], legend=None)
    plot_benchmark(rows, "few", ax=axes[1], legend="right")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    means = per_class_means(rows)
    fig = Figure(figsize=(10, 3.6 * len(means)))
    axes = fig.subplots(len(means), 1, squeeze=False)
    for ax, (profile, values) in zip(axes[:, 0], means.items()):
        groups = next(r.get("groups") for r in rows if r["profile"] == profile)
        plot_per_class(values, groups, title=f"Per-class test accuracy · {profile} unlabeled data", ax=ax)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    return paths


def summary_table(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    """A markdown table of mean ± std (percent) per profile and method (the mean alone for one run),
    with a note for labeled-only runs shared across profiles and for runs that were interrupted."""
    names = {"accuracy": "overall", "pl_accuracy": "PL acc"}
    header = "| profile | method | runs | " + " | ".join(names.get(m, m) for m in metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    for entry in summarize(rows, metrics):
        spread = (lambda m: f" ± {entry[f'{m}_std']:.1f}") if entry["runs"] > 1 else (lambda m: "")
        cells = ["–" if math.isnan(entry[m]) else f"{entry[m]:.1f}{spread(m)}" for m in metrics]
        runs = f"{entry['runs']}" + (f" (+{entry['interrupted']} interrupted)" if entry["interrupted"] else "")
        lines.append(f"| {entry['profile']} | {entry['method']} | {runs} | " + " | ".join(cells) + " |")
    shared = list(dict.fromkeys(r["label"] for r in rows if r.get("same_run_as")))
    if shared:
        lines.append(f"\n{', '.join(shared)}: trained on the labeled set alone, once per seed; the same run stands "
                     "in every profile.")
    return "\n".join(lines)


def differences_table(rows: Sequence[dict], baselines: Sequence[str] = ("fixmatch", "fixmatch_la"),
                      metric: str = "accuracy", confidence: float = 0.95) -> str:
    """A markdown table of :func:`paired_differences`: one row per setting and method, one column per
    baseline present in ``rows`` — the mean per-seed difference in points, its interval, and the
    verdict ("within noise" where the interval covers 0)."""
    present = [b for b in baselines if b in {r["label"] for r in rows}]
    if not present:
        return ""
    found = {(e["profile"], e["method"], b): e for b in present for e in paired_differences(rows, b, metric, confidence)}
    keys = [(e["profile"], e["method"]) for e in summarize(rows)  # the order of the summary table
            if any((e["profile"], e["method"], b) in found for b in present)]
    if not keys:
        return ""
    lines = [f"| profile | method | seeds | " + " | ".join(f"Δ vs {b}" for b in present) + " |",
             "|" + "---|" * (3 + len(present))]
    for profile, method in keys:
        entries = [found.get((profile, method, b)) for b in present]
        seeds = max(e["seeds"] for e in entries if e)
        lines.append(f"| {profile} | {method} | {seeds} | " + " | ".join(_difference_cell(e) for e in entries) + " |")
    return "\n".join(lines)


def _difference_cell(entry: dict | None) -> str:
    if entry is None:
        return "–"
    if entry["seeds"] < 2:
        return f"{entry['mean']:+.1f} (one seed)"
    verdict = "within noise" if entry["within_noise"] else "gain" if entry["mean"] > 0 else "loss"
    return f"{entry['mean']:+.1f} [{entry['low']:+.1f}, {entry['high']:+.1f}] {verdict}"


def difference_caption(metric: str = "accuracy", confidence: float = 0.95) -> str:
    """The sentence that introduces :func:`differences_table`."""
    return (f"Paired differences in {names_of(metric)} (points): the mean over seeds of (method − baseline) on the "
            f"same split and seed, with a {100 * confidence:g}% Student-t interval; \"within noise\" where it covers 0.")


def names_of(metric: str) -> str:
    return {"accuracy": "overall accuracy", "pl_accuracy": "pseudo-label accuracy"}.get(metric, f"{metric} accuracy")
