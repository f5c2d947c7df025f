"""A grid of runs — methods × unlabeled profiles × seeds — with mean ± std tables.

Each finished run is saved as one JSON file in ``<out>/cells/``; running the same grid again
reuses the runs whose settings match, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .algorithms import Algorithm, Recipe, build_algorithm
from .data import make_ssl_data
from .engine import TrainConfig, train

METRICS = ("accuracy", "many", "medium", "few", "pl_accuracy")
# the default grid: the baselines and one method of each paper
BENCHMARK_METHODS = ("supervised", "fixmatch", "semi", "layermatch", "alternate")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def run_grid(
    methods: Sequence[str] | Mapping[str, Callable[[], Algorithm | Recipe]] = BENCHMARK_METHODS,
    profiles: Sequence[str] = ("consistent", "uniform", "reversed"),
    seeds: Sequence[int] = (0, 1, 2),
    dataset: str = "digits",
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
    """
    factories = {m: (lambda m=m: build_algorithm(m)) for m in methods} if not isinstance(methods, Mapping) else dict(methods)
    config = config or TrainConfig()
    cells = Path(out) / "cells" if out is not None else None
    if cells is not None:
        cells.mkdir(parents=True, exist_ok=True)
    grid = [(p, s, label) for p in profiles for s in seeds for label in factories]
    rows = []
    bar = tqdm(grid, desc="grid", disable=not progress)
    for profile, seed, label in bar:
        bar.set_postfix_str(f"{label} · {profile} · seed {seed}")
        algorithm = factories[label]()
        settings = _settings(algorithm, dataset, profile, seed, data_kwargs, dataclasses.replace(config, seed=seed))
        path = cells / f"{_slug(label)}--{profile}--seed{seed}.json" if cells is not None else None
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            if saved.get("settings") == settings:
                rows.append(saved["row"])
                continue
        data = make_ssl_data(dataset, unlabeled_profile=profile, seed=seed, device=device, **data_kwargs)
        result = train(algorithm, data, config=dataclasses.replace(config, seed=seed, progress=False))
        row = {"label": label, "profile": profile, "seed": seed, **result.summary(),
               "per_class": result.final["per_class"], "confusion": result.final["confusion"],
               "groups": data.groups}
        row["method"] = label
        if path is not None:
            path.write_text(json.dumps({"settings": settings, "row": row}, indent=1))
        rows.append(row)
    return rows


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
    """Mean and standard deviation (in percent) per (profile, method), in the order first seen."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["profile"], row["label"]), []).append(row)
    summary = []
    for (profile, label), runs in groups.items():
        entry = {"profile": profile, "method": label, "runs": len(runs)}
        for metric in metrics:
            values = [100 * r[metric] for r in runs if not math.isnan(r.get(metric, float("nan")))]
            entry[metric] = statistics.mean(values) if values else float("nan")
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


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


REFERENCE_RESULTS = Path(__file__).parent / "reference_results" / "digits_lt.json"


def reference_results() -> list[dict]:
    """The default benchmark on digits-LT with seeds 0, 1, 2, as shipped with the kit (made by
    ``cissl-kit benchmark --seeds 0,1,2`` on a 2-core CPU; ``run_grid()`` with its defaults remakes it)."""
    return load_benchmark(REFERENCE_RESULTS)


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
    """A markdown table of mean ± std (percent) per profile and method (the mean alone for one run)."""
    names = {"accuracy": "overall", "pl_accuracy": "PL acc"}
    header = "| profile | method | runs | " + " | ".join(names.get(m, m) for m in metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    for entry in summarize(rows, metrics):
        spread = (lambda m: f" ± {entry[f'{m}_std']:.1f}") if entry["runs"] > 1 else (lambda m: "")
        cells = ["–" if math.isnan(entry[m]) else f"{entry[m]:.1f}{spread(m)}" for m in metrics]
        lines.append(f"| {entry['profile']} | {entry['method']} | {entry['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
