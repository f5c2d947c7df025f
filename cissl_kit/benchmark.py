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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def run_grid(
    methods: Sequence[str] | Mapping[str, Callable[[], Algorithm | Recipe]],
    profiles: Sequence[str] = ("consistent", "reversed"),
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
               "per_class": result.final["per_class"]}
        row["method"] = label
        if path is not None:
            path.write_text(json.dumps({"settings": settings, "row": row}, indent=1))
        rows.append(row)
    return rows


# settings that do not change a run's results, left out when deciding whether a saved run matches
_NOT_RESULTS = {"root", "download", "progress", "log_every", "eval_batch_size"}


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


def summary_table(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    """A markdown table of mean ± std (percent) per profile and method."""
    names = {"accuracy": "overall", "pl_accuracy": "PL acc"}
    header = "| profile | method | runs | " + " | ".join(names.get(m, m) for m in metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    for entry in summarize(rows, metrics):
        cells = ["–" if math.isnan(entry[m]) else f"{entry[m]:.1f} ± {entry[f'{m}_std']:.1f}" for m in metrics]
        lines.append(f"| {entry['profile']} | {entry['method']} | {entry['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
