"""Command line: ``cissl-kit train …``, ``cissl-kit benchmark …`` and ``cissl-kit split …``
(also ``python -m cissl_kit``).

Every training-loop setting (:class:`TrainConfig`) and every algorithm hyper-parameter (the
dataclass fields of each algorithm) becomes a flag automatically.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import distributed
from .algorithms import METHODS
from .benchmark import BENCHMARK_METHODS, run_grid, summarize, summary_table, write_figures
from .data import DATASETS, PROFILES, UNLABELED_PROFILES, make_ssl_data
from .engine import SCHEDULES, TrainConfig, TrainResult, results_table, train
from .models import MODELS

LOOP_HELP = {
    "steps": "optimisation steps (multi-stage recipes use their own stage lengths)",
    "batch_size": "labeled batch size",
    "uratio": "unlabeled batch = uratio × batch size",
    "lr": "learning rate of SGD",
    "momentum": "SGD momentum",
    "nesterov": "nesterov momentum",
    "weight_decay": "weight decay (not on biases and BN)",
    "schedule": "learning-rate schedule; cosine is FixMatch's cos(7πk/16K)",
    "ema": "decay of the EMA model that is evaluated",
    "eval_every": "evaluate every this many steps",
    "log_every": "pull logs to the host every this many steps",
    "eval_batch_size": "batch size for evaluation",
    "seed": "seed of the model, sampling and augmentation",
    "model": f"backbone: {', '.join(MODELS)}; default small_cnn for small images, wrn28_2 above",
    "amp": "mixed precision on CUDA",
    "channels_last": "channels-last memory format on CUDA",
    "compile": "torch.compile the training step",
    "progress": "progress bar",
    "checkpoint": "checkpoint file, written atomically every --checkpoint-every steps and at the end "
                  "(several methods: one file each, named <file>-<method>.pt)",
    "checkpoint_every": "steps between checkpoints; 0: only at the end",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_bool(parser: argparse.ArgumentParser, name: str, default: bool | None, help: str) -> None:
    parser.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction, default=default, help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cissl-kit", description="Class-imbalanced semi-supervised learning kit")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one or more methods on a long-tailed benchmark")
    train.add_argument("--method", default="fixmatch",
                       help=f"method, or several separated by commas; one of {', '.join(METHODS)}")
    _add_data_flags(train)
    _add_training_flags(train)
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint (same method, settings and data)")
    out = train.add_argument_group("output")
    out.add_argument("--out", default="runs", help="folder for run folders")
    out.add_argument("--name", default=None, help="run folder name (default: time-dataset-methods)")

    bench = sub.add_parser("benchmark", help="methods × unlabeled profiles × seeds, with a mean ± std table")
    bench.add_argument("--method", default=",".join(BENCHMARK_METHODS),
                       help=f"methods separated by commas; from {', '.join(METHODS)} (default {','.join(BENCHMARK_METHODS)})")
    bench.add_argument("--profiles", default="consistent,uniform,reversed",
                       help=f"unlabeled profiles separated by commas; from {', '.join(UNLABELED_PROFILES)} "
                            "(default consistent,uniform,reversed)")
    bench.add_argument("--seeds", default="0", help="seeds separated by commas, each sets split and training "
                                                   "(default 0; use 0,1,2 for a mean ± std)")
    _add_data_flags(bench, with_profile=False)
    _add_training_flags(bench, with_seed=False)  # finished runs in --out are reused instead of checkpoints
    out = bench.add_argument_group("output")
    out.add_argument("--out", default="runs/benchmark",
                     help="run folder; finished runs found there with the same settings are reused")

    split = sub.add_parser("split", help="print the per-class counts of a long-tailed split")
    _add_data_flags(split)
    split.add_argument("--seed", type=int, default=0)
    return parser


def _add_training_flags(parser: argparse.ArgumentParser, with_seed: bool = True) -> None:
    """A flag for every TrainConfig field and every algorithm hyper-parameter."""
    loop = parser.add_argument_group("training loop")
    for f in dataclasses.fields(TrainConfig):
        if not with_seed and f.name in ("seed", "checkpoint", "checkpoint_every"):
            continue
        help_text = f"{LOOP_HELP.get(f.name, f.name.replace('_', ' '))} (default {f.default})"
        if f.type in ("bool", bool):
            _add_bool(loop, f.name, None, help_text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            loop.add_argument(_flag(f.name), dest=f.name, type=kind, default=None, help=help_text,
                              choices={"model": MODELS, "schedule": SCHEDULES}.get(f.name))
    loop.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    methods = parser.add_argument_group("method hyper-parameters (each applies to the methods that have it)")
    for name, (field, users) in _algorithm_fields().items():
        meta = field.metadata
        defaults: dict = {}
        for method, default in users:
            defaults.setdefault(default, []).append(method)
        where = "; ".join(f"{', '.join(methods)}: {default}" for default, methods in defaults.items())
        help_text = f"{meta.get('help', name)} [default {where}]"
        if isinstance(field.default, bool):
            _add_bool(methods, name, None, help_text)
        else:
            methods.add_argument(_flag(name), dest=name, type=type(field.default), default=None,
                                 choices=meta.get("choices"), help=help_text)


def _add_data_flags(parser: argparse.ArgumentParser, with_profile: bool = True) -> None:
    group = parser.add_argument_group("data (unset sizes take the dataset's default split)")
    group.add_argument("--dataset", default="digits", choices=DATASETS, help="dataset (default digits)")
    group.add_argument("--n-max", type=int, default=None, help="N1: labeled images of the head class (digits: 40)")
    group.add_argument("--imbalance-ratio", type=float, default=None, help="γ_l: labeled head / tail ratio (digits: 20)")
    group.add_argument("--m-max", type=int, default=None, help="M1: largest unlabeled class count (digits: 80)")
    if with_profile:
        group.add_argument("--unlabeled-profile", default="consistent",
                           help=f"{', '.join(UNLABELED_PROFILES)}, or explicit counts separated by commas "
                                "(default consistent)")
    group.add_argument("--unlabeled-imbalance-ratio", type=float, default=None, help="γ_u (default γ_l)")
    group.add_argument("--profile", default="exponential", choices=PROFILES, help="labeled profile (default exponential)")
    group.add_argument("--test-per-class", type=int, default=None,
                       help="balanced test images per class (digits: 50; CIFAR / STL-10: the official test set)")
    group.add_argument("--root", default="data", help="dataset root for CIFAR / STL-10 files (default data)")
    group.add_argument("--download", action="store_true", help="download CIFAR / STL-10 through torchvision")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")


def _algorithm_fields() -> dict:
    """Every hyper-parameter name → (its field, [(method, its default), …])."""
    fields: dict = {}
    for method, cls in METHODS.items():
        for f in dataclasses.fields(cls):
            fields.setdefault(f.name, (f, []))[1].append((method, f.default))
    return fields


def _profile(text: str):
    if text in UNLABELED_PROFILES:
        return text
    try:
        return [int(c) for c in text.split(",")]
    except ValueError:
        raise SystemExit(f"--unlabeled-profile must be one of {', '.join(UNLABELED_PROFILES)} or counts "
                         f"separated by commas, got {text!r}") from None


def _data_kwargs(args: argparse.Namespace) -> dict:
    """The data flags as :func:`make_ssl_data` arguments (without the unlabeled profile and seed)."""
    return dict(n_max=args.n_max, imbalance_ratio=args.imbalance_ratio, m_max=args.m_max,
                unlabeled_imbalance_ratio=args.unlabeled_imbalance_ratio, profile=args.profile,
                test_per_class=args.test_per_class, root=args.root, download=args.download)


def _make_data(args: argparse.Namespace, seed: int):
    return make_ssl_data(args.dataset, unlabeled_profile=_profile(args.unlabeled_profile), seed=seed,
                         device=args.device, **_data_kwargs(args))


def _methods_and_hparams(args: argparse.Namespace) -> tuple[list[str], dict[str, dict]]:
    """The ``--method`` list and, per method, the hyper-parameter flags that apply to it."""
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise SystemExit(f"--method must name one or more of {', '.join(METHODS)}; got {args.method!r}")
    given = {name: getattr(args, name) for name in _algorithm_fields() if getattr(args, name) is not None}
    fields = {m: {f.name for f in dataclasses.fields(METHODS[m])} for m in methods}
    unused = [n for n in given if not any(n in fields[m] for m in methods)]
    if unused:
        raise SystemExit(f"{', '.join(_flag(n) for n in unused)} does not apply to {', '.join(methods)}")
    return methods, {m: {k: v for k, v in given.items() if k in fields[m]} for m in methods}


def _config(args: argparse.Namespace) -> TrainConfig:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                          if getattr(args, f.name, None) is not None})


def run_train(args: argparse.Namespace) -> list[TrainResult]:
    methods, hparams = _methods_and_hparams(args)
    config = _config(args)
    args.device = distributed.init_from_env(args.device)  # under torchrun: join the process group
    say = print if distributed.is_main() else (lambda *a, **k: None)
    data = _make_data(args, config.seed)
    say(data.summary() + (f" · {distributed.world_size()} processes" if distributed.initialized() else ""))
    say(f"labeled counts   {data.labeled_counts}\nunlabeled counts {data.unlabeled_counts}")
    if args.resume and not config.checkpoint:
        raise SystemExit("--resume needs --checkpoint, the file to continue from")
    results = [train(METHODS[m](**hparams[m]), data, config=_per_method(config, m, len(methods)), resume=args.resume)
               for m in methods]
    if not distributed.is_main():  # rank 0 prints and writes
        return results
    print()
    print(results_table(results))
    folder = write_run(results, Path(args.out), args.name or f"{time.strftime('%Y%m%d-%H%M%S')}-{args.dataset}-{'-'.join(methods)}")
    print(f"\nresults, history and figures in {folder}")
    return results


def _per_method(config: TrainConfig, method: str, count: int) -> TrainConfig:
    """With several methods, each writes its own checkpoint: <file>-<method><suffix>."""
    if not config.checkpoint or count == 1:
        return config
    path = Path(config.checkpoint)
    return dataclasses.replace(config, checkpoint=str(path.with_name(f"{path.stem}-{method}{path.suffix or '.pt'}")))


def run_benchmark(args: argparse.Namespace) -> list[dict]:
    if distributed.launched_by_torchrun():
        raise SystemExit("benchmark runs its cells one after another in one process; use torchrun with `train`")
    methods, hparams = _methods_and_hparams(args)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    for profile in profiles:
        if profile not in UNLABELED_PROFILES:
            raise SystemExit(f"--profiles must name {', '.join(UNLABELED_PROFILES)}; got {profile!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds must be integers separated by commas, got {args.seeds!r}") from None
    config = _config(args)
    factories = {m: (lambda m=m: METHODS[m](**hparams[m])) for m in methods}
    start = time.perf_counter()
    rows = run_grid(factories, profiles, seeds, args.dataset, config, args.out, device=args.device,
                    **_data_kwargs(args))
    table = summary_table(rows)
    print(table)
    folder = Path(args.out)
    (folder / "results.json").write_text(json.dumps(rows, indent=1))
    nested = ("per_class", "confusion", "groups")  # in results.json; one scalar column each in runs.csv
    _write_csv(folder / "runs.csv", [{k: v for k, v in r.items() if k not in nested} for r in rows])
    _write_csv(folder / "summary.csv", summarize(rows))
    (folder / "summary.md").write_text(table + "\n")
    write_figures(rows, folder)
    print(f"\n{len(rows)} runs in {time.perf_counter() - start:.0f} s; tables and figures in {folder}")
    return rows


def write_run(results: Sequence[TrainResult], out: Path, name: str) -> Path:
    """results.json, summary.csv, history.csv and curves.png in ``out/name``."""
    # a plain Figure, as in benchmark.write_figures: no pyplot state and no backend switch
    from matplotlib.figure import Figure

    from .viz import plot_history, plot_per_class

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps([r.to_dict() for r in results], indent=1))
    _write_csv(folder / "summary.csv", [r.summary() for r in results])
    _write_csv(folder / "history.csv", [{"method": r.method, **row} for r in results for row in r.history])
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 2)
    plot_history({r.method: r.history for r in results}, "accuracy", "Test accuracy (EMA model)", ax=axes[0])
    plot_per_class({r.method: r.final["per_class"] for r in results}, results[0].data["groups"], ax=axes[1])
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=110)
    return folder


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def run_split(args: argparse.Namespace) -> None:
    data = _make_data(args, args.seed)
    print(data.summary())
    group_of = {k: g for g, classes in data.groups.items() for k in classes}
    print(f"{'class':<12}{'labeled':>9}{'unlabeled':>11}  group")
    for k, name in enumerate(data.class_names):
        unl = data.unlabeled_counts[k] if data.unlabeled_counts else "?"
        print(f"{name:<12}{data.labeled_counts[k]:>9}{unl:>11}  {group_of[k]}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": run_train, "benchmark": run_benchmark, "split": run_split}[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"cissl-kit: error: {error}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
