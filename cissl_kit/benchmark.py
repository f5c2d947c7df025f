"""A grid of runs — methods × unlabeled profiles × seeds — trained in this process or in worker
processes, and the shipped grids (reference results). The statistics of its rows are in
:mod:`cissl_kit.stats`; the plots in :mod:`cissl_kit.viz`.

Layer: above the registry, ``stats`` and ``viz``; below the CLI.

Each finished run is saved as one JSON file in ``<out>/cells/``; running the same grid again
reuses the runs whose settings match, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ._checks import check_int
from .algorithms.base import Algorithm
from .data import make_ssl_data
from .engine import TrainConfig
from .outputs import write_atomic
from .recipes import Recipe
from .registry import build_algorithm, train
from .stats import METRICS, per_class_means
from .utils import default_threads, max_threads, usable_cores

# the default grid: the baselines with and without logit adjustment, SeMi's balanced head alone,
# and one method of each paper; on mnist-LT, where unlabeled data clearly helps
BENCHMARK_METHODS = ("supervised", "supervised_la", "fixmatch", "fixmatch_la", "fixmatch_bh", "semi", "layermatch",
                     "alternate")
BENCHMARK_DATASET = "mnist"
CURVE = ("step", "accuracy", "few", "mask", "pl_accuracy", "threshold", "confidence")  # per evaluation, in "curve"
# and where a run has them: its estimate of the unlabeled class distribution, its pseudo-labels' distribution
CURVE_LISTS = ("estimate", "pl_distribution")
# and where a run measures it: the share of the few-shot classes' unlabeled images used (their pseudo-labels'
# accuracy, pl_accuracy_few, is among CURVE_STAGES)
CURVE_FEW = ("utilization_few",)
# and where a multi-stage recipe records them (one point per stage): which stage, which loop, its pseudo-labels
CURVE_STAGES = ("stage", "loop", "changed", "pl_accuracy_many", "pl_accuracy_medium", "pl_accuracy_few",
                "accuracy_random_head")
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
    jobs: int = 1,
    threads: int | None = None,
    **data_kwargs,
) -> list[dict]:
    """Train every method on every profile with every seed; return one row per run.

    ``methods``: names (``"fixmatch"``) or a mapping from a label to a function that builds the
    algorithm (for variants such as ablations). ``data_kwargs`` go to :func:`make_ssl_data`
    (``n_max``, ``imbalance_ratio`` …). The seed sets both the split and the training.

    ``jobs`` > 1 trains that many cells at a time, each in a worker process of its own with
    ``threads`` CPU threads (default: the cores shared out, at least 1). ``jobs=1`` trains them in this
    process, on ``threads`` threads for the grid's duration where given (else on torch's current count). A
    run's floats depend on its thread count, not on where it runs: the rows of ``jobs=N`` are those of
    ``jobs=1`` with the same ``threads``, bit for bit. Each row records its ``threads``.

    A method that trains on the labeled set alone (``uses_unlabeled_data`` false: Supervised,
    Decoupling, LDAM-DRW …) cannot depend on the unlabeled profile — the split draws the test and
    labeled sets first — so it trains once per seed and its row stands in every profile (marked
    ``"same_run_as"``). A run stopped by Ctrl-C (or SIGTERM) is returned marked ``"interrupted"``,
    never saved as finished, and the grid stops there (with ``jobs`` > 1, every cell then in
    training is returned so); a damaged cell file is trained anew.
    """
    jobs = check_int("jobs", jobs, 1, max(1, usable_cores()))
    if threads is not None:
        threads = check_int("threads", threads, 1, max_threads())
    factories = {m: (lambda m=m: build_algorithm(m)) for m in methods} if not isinstance(methods, Mapping) else dict(methods)
    config = config or TrainConfig(steps=BENCHMARK_STEPS)
    cells = Path(out) / "cells" if out is not None else None
    if cells is not None:
        cells.mkdir(parents=True, exist_ok=True)
    plan = _plan_cells(factories, profiles, seeds, dataset, config, data_kwargs, cells)
    tasks = [c for c in plan if c.row is None and c.owner is None]
    # the bar counts runs, as the summary line does: a labeled-only run shared by several profiles counts once
    runs = [c for c in plan if c.owner is None and not (c.row or {}).get("same_run_as")]
    bar = tqdm(total=len(runs), initial=sum(c.row is not None for c in runs), desc="grid runs", disable=not progress)
    run = (functools.partial(_train_in_process, threads=threads) if jobs == 1
           else _WorkerPool(jobs, threads or max(1, default_threads() // jobs)))
    finished_ok = True
    try:
        for cell, row in run(tasks, dataset, device, data_kwargs, bar):
            if row.get("interrupted"):
                cell.row, finished_ok = row, False
                continue
            for done in [cell] + [c for c in plan if c.owner is cell]:
                done.row = row if done is cell else {**row, "profile": done.profile, "same_run_as": row["profile"]}
                if done.path is not None:
                    write_atomic(done.path, json.dumps({"settings": done.settings, "row": done.row}, indent=1))
            bar.update(1)
    finally:
        bar.close()
    if finished_ok:
        return [c.row for c in plan]
    # interrupted: the rows in grid order up to the end of the finished ones, then the interrupted
    rows = [c.row for c in plan if c.row is not None and not c.row.get("interrupted")]
    return rows + [c.row for c in plan if c.row is not None and c.row.get("interrupted")]


@dataclasses.dataclass(eq=False)
class _Cell:
    """One (profile, seed, label) of a grid: its settings, cell file, and row once known. ``owner``:
    for a labeled-only method, the cell of the same seed whose run stands in for this one."""

    profile: str
    seed: int
    label: str
    algorithm: Algorithm | Recipe
    config: TrainConfig
    settings: dict
    path: Path | None
    row: dict | None = None
    owner: "_Cell | None" = None


def _plan_cells(factories: Mapping[str, Callable], profiles: Sequence[str], seeds: Sequence[int], dataset: str,
                config: TrainConfig, data_kwargs: dict, cells: Path | None) -> list[_Cell]:
    """The grid's cells in order (profile, seed, label), with the finished ones read from ``cells``."""
    plan, runs_of_labeled_only = [], {}  # (label, seed) -> the cell that trains it
    for profile in profiles:
        for seed in seeds:
            for label, factory in factories.items():
                algorithm = factory()
                run_config = dataclasses.replace(config, seed=seed, progress=False)
                settings = _settings(algorithm, dataset, profile, seed, data_kwargs, run_config)
                path = cells / f"{_slug(label)}--{profile}--seed{seed}.json" if cells is not None else None
                cell = _Cell(profile, seed, label, algorithm, run_config, settings, path)
                saved = _read_cell(path)
                if saved is not None and saved.get("settings") == settings and not saved.get("interrupted"):
                    cell.row = saved["row"]
                if not algorithm.uses_unlabeled_data:
                    first = runs_of_labeled_only.setdefault((label, seed), cell)
                    if first is not cell:
                        if cell.row is None and first.row is not None:  # the same labeled-only run
                            cell.row = {**first.row, "profile": profile,
                                        "same_run_as": first.row.get("same_run_as", first.row["profile"])}
                            if path is not None:
                                write_atomic(path, json.dumps({"settings": settings, "row": cell.row}, indent=1))
                        elif cell.row is None:
                            cell.owner = first
                plan.append(cell)
    return plan


def _train_cell(cell: _Cell, data) -> dict:
    """Train one cell on its split; its row (marked ``interrupted`` if Ctrl-C stopped it)."""
    result = train(cell.algorithm, data, config=cell.config, keep_partial=True)
    row = {"label": cell.label, "profile": cell.profile, "seed": cell.seed, **result.summary(),
           "per_class": result.final["per_class"], "confusion": result.final["confusion"],
           "groups": data.groups,
           "curve": [{**{k: h.get(k, float("nan")) for k in CURVE},
                      **{k: h[k] for k in CURVE_LISTS + CURVE_FEW + CURVE_STAGES if k in h}} for h in result.history],
           "threads": torch.get_num_threads()}
    row["method"] = cell.label
    if result.interrupted:
        row.update(interrupted=True, step=result.final.get("step", 0), steps=cell.config.steps)
    return row


def _train_in_process(tasks: list[_Cell], dataset: str, device, data_kwargs: dict, bar, threads: int | None = None):
    """Train the cells one after another in this process (on ``threads`` threads, then back); yields (cell, row)."""
    data_for = _DataCache(dataset, device, data_kwargs)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for cell in tasks:
            bar.set_postfix_str(f"{cell.label} · {cell.profile} · seed {cell.seed}")
            row = _train_cell(cell, data_for(cell.profile, cell.seed))
            yield cell, row
            if row.get("interrupted"):
                return
    finally:
        torch.set_num_threads(previous)


class _WorkerPool:
    """Cells trained by ``jobs`` worker processes, each a fresh interpreter running
    ``python -m cissl_kit._grid_worker`` (never a fork of a process whose OpenMP threads have run,
    and never a re-import of the caller's script). Tasks and rows travel as pickles over the
    workers' stdin and stdout; a worker takes its next cell when it sends a row. Workers ignore
    SIGINT; on Ctrl-C (or SIGTERM) here each gets SIGTERM, which stops its run as Ctrl-C would, and
    sends that run back marked interrupted."""

    def __init__(self, jobs: int, threads: int) -> None:
        self.jobs, self.threads = jobs, threads

    def __call__(self, tasks: list[_Cell], dataset: str, device, data_kwargs: dict, bar):
        if not tasks:
            return
        import queue as queue_module
        import subprocess
        import sys
        import threading

        for cell in tasks:
            _check_picklable(cell)
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        inbox: queue_module.Queue = queue_module.Queue()
        workers = []
        for w in range(min(self.jobs, len(tasks))):
            proc = subprocess.Popen([sys.executable, "-m", "cissl_kit._grid_worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)
            _send(proc.stdin, (dataset, device, data_kwargs, self.threads))
            threading.Thread(target=_read_messages, args=(proc.stdout, w, inbox), daemon=True).start()
            workers.append(proc)
        # the longest cells first (fewer idle workers at the end); the rows keep the grid's order
        pending = sorted(range(len(tasks)), key=lambda i: -_expected_cost(tasks[i].algorithm))
        running: dict[int, int] = {}  # worker -> task

        def hand_out(w: int) -> None:
            if pending:
                i = pending.pop(0)
                running[w] = i
                cell = tasks[i]
                _send(workers[w].stdin, (i, cell.label, cell.profile, cell.seed, cell.algorithm, cell.config))
                bar.set_postfix_str(" | ".join(f"{tasks[j].label} · {tasks[j].profile} · seed {tasks[j].seed}"
                                               for j in running.values()))
            else:
                running.pop(w, None)
                _send(workers[w].stdin, None)  # stop sign

        try:
            for w in range(len(workers)):
                hand_out(w)
            while running:
                try:
                    w, message = inbox.get(timeout=1.0)
                except queue_module.Empty:
                    continue
                if message is None:  # the worker's output ended: it died
                    if w in running:
                        cell = tasks[running[w]]
                        raise RuntimeError(f"the benchmark's worker process training {cell.label} · {cell.profile} · "
                                           f"seed {cell.seed} ended (exit code {workers[w].wait()}: killed, or out "
                                           "of memory?); run the same command again to train the cells left")
                    continue
                kind, i, payload = message
                if kind == "error":
                    raise payload
                yield tasks[i], payload
                if payload.get("interrupted"):
                    return
                hand_out(w)
        except KeyboardInterrupt:
            for w in list(running):  # each stops its run as Ctrl-C would, and sends it back
                workers[w].terminate()
            while running:
                try:
                    w, message = inbox.get(timeout=30.0)
                except queue_module.Empty:
                    break
                i = running.pop(w, None)
                if message is not None and message[0] == "done" and message[2].get("interrupted"):
                    yield tasks[message[1]], message[2]
                elif message is None and i is None:
                    continue
        finally:
            for proc in workers:
                if proc.poll() is None and running:  # stopped early: end the runs still training
                    proc.terminate()
            for proc in workers:  # (after their stop sign, the others end on their own)
                try:
                    proc.wait(timeout=30.0)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                try:
                    proc.wait(timeout=10.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                for stream in (proc.stdin, proc.stdout):
                    try:
                        stream.close()
                    except OSError:
                        pass


def _expected_cost(method: Algorithm | Recipe) -> int:
    """A rough rank of a run's cost: a step's images (labeled, plus each unlabeled view); a
    multi-stage recipe between the two (its stages are mostly labeled-only)."""
    if isinstance(method, Recipe):
        return 2
    return 1 + len(method.unlabeled_views) if method.uses_unlabeled_data else 1


def _check_picklable(cell: _Cell) -> None:
    import pickle

    try:
        pickle.dumps(cell.algorithm)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise ValueError(f"jobs > 1 sends each method to a worker process, but {cell.label!r} "
                         f"({type(cell.algorithm).__name__}) cannot be sent ({error}); define it in a module, "
                         "or use jobs=1") from error


def _send(stream, message) -> None:
    """One length-prefixed pickle on ``stream``."""
    import pickle

    data = pickle.dumps(message)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream):
    """The next message :func:`_send` wrote, or raise EOFError when the stream ended."""
    import pickle

    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _read_messages(stream, w: int, inbox) -> None:
    """A worker's messages into ``inbox`` as ``(w, message)``, then ``(w, None)`` when its output ends."""
    try:
        while True:
            inbox.put((w, _receive(stream)))
    except (EOFError, OSError, ValueError):
        inbox.put((w, None))


def serve_worker(inbox, outbox) -> None:
    """A worker process's loop (``python -m cissl_kit._grid_worker``): set up, then train the cells
    it receives until a stop sign, sending back ``("done", i, row)`` or ``("error", i, exception)``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    stopping = []

    def stop(_signum, _frame):  # the parent's stop: the run in training ends as on Ctrl-C
        stopping.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    _end_with_parent()
    try:
        dataset, device, data_kwargs, threads = _receive(inbox)
        torch.set_num_threads(threads)
        data_for = _DataCache(dataset, device, data_kwargs)
        while (task := _receive(inbox)) is not None:
            i, label, profile, seed, algorithm, config = task
            cell = _Cell(profile, seed, label, algorithm, config, {}, None)
            try:
                row = _train_cell(cell, data_for(profile, seed))
            except KeyboardInterrupt:
                raise
            except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it
                _send(outbox, ("error", i, _sendable(error)))
                return
            _send(outbox, ("done", i, row))
            if stopping:
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:  # a SIGTERM from now on (the parent tidying up) ends the process without a traceback
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sendable(error: Exception) -> Exception:
    """``error`` if it survives pickling (to be raised in the parent), else a RuntimeError saying it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")


def _end_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (no orphaned training)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass


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


CELL_ROW_KEYS = ("label", "profile", "seed", "per_class", *METRICS)


def _read_cell(path: Path | None) -> dict | None:
    """A saved cell, or None if there is none; a damaged file (cut short mid-write, or edited so that its
    row lacks what a row holds) is named and ignored."""
    if path is None or not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or not isinstance(saved.get("row"), dict):
            raise ValueError("not a cell: no 'row'")
        missing = [k for k in CELL_ROW_KEYS if k not in saved["row"]]
        if missing:
            raise ValueError(f"its row has no {', '.join(missing)}")
        return saved
    except (ValueError, OSError) as error:  # JSONDecodeError is a ValueError
        warnings.warn(f"benchmark cell {path} is damaged ({error}); training it again", stacklevel=3)
        return None


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


RESULTS = Path(__file__).parent / "reference_results"
MANIFEST = RESULTS / "MANIFEST.json"


def shipped(relative: str) -> list[dict]:
    """A results file the kit ships (a path under ``reference_results/``), refused unless its SHA-256 digest is
    the one ``MANIFEST.json`` records for it."""
    path = RESULTS / relative
    expected = json.loads(MANIFEST.read_text()).get(relative) if MANIFEST.is_file() else None
    if expected is None:
        raise FileNotFoundError(f"{relative} is not in {MANIFEST.name}: the kit ships no such results file")
    if file_digest(path) != expected:
        raise ValueError(f"{path} does not match the digest {MANIFEST.name} records for it (it was changed or "
                         "damaged); reinstall the kit, or train the results afresh (RETRAIN = True in a notebook)")
    return load_benchmark(path)


def file_digest(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest() -> dict[str, str]:
    """Record the digest of every shipped results file (``benchmarks/course_grids.py`` calls it)."""
    files = sorted(p for p in RESULTS.rglob("*.json") if p.name != MANIFEST.name)
    manifest = {p.relative_to(RESULTS).as_posix(): file_digest(p) for p in files}
    write_atomic(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


REFERENCE_RESULTS = RESULTS / "mnist_lt.json"
# SeMi Tables 1–2 style: FixMatch, its LA baseline, the methods the papers compare against, and one
# method of each paper; the rows not in REFERENCE_RESULTS are in COMPARISON_RESULTS
COMPARISON_METHODS = ("fixmatch", "fixmatch_la", "darp", "crest_plus", "daso", "abc", "acr", "semi", "layermatch",
                      "alternate")
COMPARISON_RESULTS = RESULTS / "mnist_lt_comparison.json"
# the methods that estimate the unlabeled class distribution, against the logit-adjusted baselines, in all
# five unlabeled profiles; the rows not in the files above are in PRIOR_RESULTS
PRIOR_METHODS = ("fixmatch", "fixmatch_la", "fixmatch_bh", "acr", "simpro", "cpe", "cdmad")
PRIOR_PROFILES = ("consistent", "uniform", "reversed", "middle", "head-tail")
PRIOR_RESULTS = RESULTS / "mnist_lt_prior.json"
EXERCISE_RESULTS = RESULTS / "exercises"


def reference_results() -> list[dict]:
    """The default benchmark on mnist-LT with seeds 0-9, as shipped with the kit (made by
    ``benchmarks/course_grids.py`` on a 2-core CPU, one thread a run, the kernels pinned as in the tests;
    ``run_grid(seeds=range(10), jobs=2)`` remakes it). Digest-checked."""
    return shipped("mnist_lt.json")


def _ordered(rows: list[dict], methods: Sequence[str], profiles: Sequence[str]) -> list[dict]:
    method, profile = {m: i for i, m in enumerate(methods)}, {p: i for i, p in enumerate(profiles)}
    return sorted(rows, key=lambda r: (profile[r["profile"]], r["seed"], method[r["label"]]))


def comparison_results() -> list[dict]:
    """:data:`COMPARISON_METHODS` on mnist-LT with seeds 0-9, in that order: the shipped reference rows of
    the methods the default grid shares, plus the comparison methods' rows (made like the reference file)."""
    rows = [r for r in reference_results() if r["label"] in COMPARISON_METHODS] + shipped(COMPARISON_RESULTS.name)
    return _ordered(rows, COMPARISON_METHODS, ("consistent", "uniform", "reversed"))


def prior_results() -> list[dict]:
    """:data:`PRIOR_METHODS` on mnist-LT in the five :data:`PRIOR_PROFILES`, with the seeds of the prior file
    (0-9): SimPro, CPE, CDMAD everywhere and the others in the middle and head-tail profiles (made like the
    reference file), plus the reference and comparison files' rows of those seeds."""
    prior = shipped(PRIOR_RESULTS.name)
    seeds = {r["seed"] for r in prior}
    rows = [r for r in comparison_results() + reference_results() if r["label"] in PRIOR_METHODS and r["seed"] in seeds]
    rows = list({(r["label"], r["profile"], r["seed"]): r for r in rows + prior}.values())
    return _ordered(rows, PRIOR_METHODS, PRIOR_PROFILES)


def exercise_results(name: str) -> list[dict]:
    """A grid that a notebook exercise asks for, shipped so that its worked solution can show it without
    the training: ``name`` is one of the files in ``reference_results/exercises`` (written by
    ``benchmarks/course_grids.py``; the ``run_grid`` call of the exercise remakes it)."""
    names = sorted(p.stem for p in EXERCISE_RESULTS.glob("*.json"))
    if name not in names:
        raise ValueError(f"name must be one of {', '.join(names)}; got {name!r}")
    return shipped(f"exercises/{name}.json")


def write_figures(rows: Sequence[dict], folder: str | Path, baselines: Sequence[str] = ("fixmatch", "fixmatch_la")
                  ) -> list[Path]:
    """``summary.png`` (a forest plot of the paired differences against each baseline present, one panel per
    setting; without a baseline, mean ± std bars) and ``per_class.png`` (one panel per setting) in ``folder``."""
    # plain Figure objects: no pyplot state and no backend switch (callable from a notebook)
    from matplotlib.figure import Figure

    from .stats import holm, paired_differences
    from .viz import WIDTH, plot_benchmark, plot_differences, plot_per_class

    folder = Path(folder)
    paths = [folder / "summary.png", folder / "per_class.png"]
    present = [b for b in baselines if b in {r["label"] for r in rows}]
    entries = {b: paired_differences(rows, b) for b in present}
    holm([e for found in entries.values() for e in found])  # one family: every interval in the figure
    present = [b for b in present if entries[b]]
    profiles = list(dict.fromkeys(r["profile"] for r in rows))
    if present:
        methods = len({e["method"] for found in entries.values() for e in found})
        fig = Figure(figsize=(WIDTH, len(present) * (0.9 + 0.3 * methods)))
        grid = fig.subplots(len(present), len(profiles), squeeze=False, sharey="row")
        for axes, baseline in zip(grid, present):
            plot_differences(entries[baseline], axes=axes, profiles=profiles)
        fig.suptitle("Paired differences in overall accuracy (points): mean over seeds with its 95% interval; filled "
                     "where distinguishable after Holm's correction", fontsize=10)
    else:
        fig = Figure(figsize=(WIDTH, 3.6))
        axes = fig.subplots(1, 2)
        plot_benchmark(rows, "accuracy", ax=axes[0], legend=None)
        plot_benchmark(rows, "few", ax=axes[1], legend="right")
    fig.tight_layout()
    write_atomic(paths[0], lambda path: fig.savefig(path, dpi=100, format="png"))
    means = per_class_means(rows)
    fig = Figure(figsize=(WIDTH, 3.6 * len(means)))
    axes = fig.subplots(len(means), 1, squeeze=False)
    for ax, (profile, values) in zip(axes[:, 0], means.items()):
        groups = next(r.get("groups") for r in rows if r["profile"] == profile)
        plot_per_class(values, groups, title=f"Per-class test accuracy · {profile} unlabeled data", ax=ax)
    fig.tight_layout()
    write_atomic(paths[1], lambda path: fig.savefig(path, dpi=100, format="png"))
    return paths
