"""Every results file the kit ships, trained with the CPU kernels pinned as in the tests (``conftest.py``),
one thread a run, two runs at a time:

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2,STRICT \\
        python benchmarks/course_grids.py [--only NAME] [--cells runs/reference]

* ``mnist_lt.json``: the default benchmark (``cissl-kit benchmark``), the seeds of ``course.SEEDS_MNIST`` (0-9);
* ``mnist_lt_comparison.json``: DARP, CReST+, DASO, ABC and ACR, the same seeds;
* ``mnist_lt_prior.json``: SimPro, CPE and CDMAD in the five unlabeled profiles, and FixMatch, its LA and
  balanced-head baselines and ACR in the middle and head-tail profiles, the same seeds (seeds 0-2 trained
  2026-12-05 on an AMD EPYC, 3-9 on 2026-12-07 on an Intel Xeon, both with the pinned kernels below);
* ``course/*.json``: the notebooks' digits-LT grids (``cissl_kit.course.GRIDS``), seeds 0-4, without the fields no
  notebook reads (:func:`compact`);
* ``exercises/*.json``: the grids notebook 05's exercises read;

then ``MANIFEST.json``, the digest of each. Finished cells are kept under ``--cells`` (one folder for all,
so a grid that shares a run with another trains it once) and an interrupted run resumes. On 2 cores the
two ten-seed mnist-LT files took 1 h 40 min (``--jobs 2``, one thread a run), the course grids about 45 minutes.

``cells/mnist_lt_ten_seeds.tar.xz`` holds the finished cells of ``mnist_lt`` and ``mnist_lt_comparison`` at
seeds 0-9 (390 cells, trained 2026-12-05 at commit de574d9, one thread a cell, pinned kernels):
``tar xJf benchmarks/cells/mnist_lt_ten_seeds.tar.xz -C runs/reference``, then ``--only mnist_lt`` and
``--only mnist_lt_comparison`` write both files without training. ``cells/mnist_lt_prior_ten_seeds.tar.xz`` does
the same for ``mnist_lt_prior`` (230 cells: seeds 0-2 as shipped on 2026-12-05, 3-9 trained 2026-12-07 at commit
58289d5 on an Intel Xeon, one thread a cell, pinned kernels).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from cissl_kit.benchmark import (
    BENCHMARK_METHODS,
    BENCHMARK_STEPS,
    CURVE_LISTS,
    EXERCISE_RESULTS,
    PRIOR_PROFILES,
    RESULTS,
    run_grid,
    write_manifest,
)
from cissl_kit.cli import UsageError
from cissl_kit.cli import _seeds as cli_seeds
from cissl_kit.course import GRIDS, SEEDS_MNIST, SEEDS_MNIST_EXTRA
from cissl_kit.engine import TrainConfig

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}
COMPARISON = ("darp", "crest_plus", "daso", "abc", "acr")
REFERENCE = {
    "mnist_lt": [dict(methods=BENCHMARK_METHODS, profiles=("consistent", "uniform", "reversed"))],
    "mnist_lt_comparison": [dict(methods=COMPARISON, profiles=("consistent", "uniform", "reversed"))],
    "mnist_lt_prior": [dict(methods=("simpro", "cpe", "cdmad"), profiles=PRIOR_PROFILES),
                       dict(methods=("fixmatch", "fixmatch_la", "fixmatch_bh", "acr"), profiles=("middle", "head-tail"))],
}
# reference files written as the course grids are (:func:`compact`: no confusion matrices, six decimals, one run a
# line), keeping these curve columns: notebook 07 reads the beliefs and the mask (230 runs in 562 KB)
COMPACT_CURVE = {"mnist_lt_prior": ("step", "accuracy", "few", "mask", "pl_accuracy", "estimate", "pl_distribution")}
EXERCISES = {
    "mnist_lt_gamma50": dict(profiles=["consistent"], seeds=list(SEEDS_MNIST_EXTRA), imbalance_ratio=50, n_max=50),
    "digits_lt_reversed": dict(dataset="digits", profiles=["reversed"], seeds=[0, 1, 2, 3, 4]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="one file's name (mnist_lt, 02_semi, …)")
    parser.add_argument("--cells", default="runs/reference", help="the folder of finished cells")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", default=None, type=_seeds,
                        help="the seeds of mnist_lt and mnist_lt_comparison, as 0,1,2 (default course.SEEDS_MNIST, 0-9)")
    args = parser.parse_args()
    seeds = args.seeds or SEEDS_MNIST
    wrong = [f"{k}={v}" for k, v in PINNED.items() if os.environ.get(k) != v]
    if wrong:
        raise SystemExit(f"set {' '.join(wrong)} before running, so the files match the tests' pinned kernels")
    cells = Path(args.cells)
    for name, grids in REFERENCE.items():
        if args.only in (None, name):
            rows = []
            for grid in grids:
                rows += run_grid(grid["methods"], grid["profiles"], grid.get("seeds", seeds), config=TrainConfig(steps=BENCHMARK_STEPS),
                                 out=cells, jobs=args.jobs)
            if name in COMPACT_CURVE:
                _write(RESULTS / f"{name}.json", compact(rows, COMPACT_CURVE[name]), one_row_a_line=True)
            else:
                _write(RESULTS / f"{name}.json", rows)
    for name, grid in GRIDS.items():
        if args.only in (None, name) and not grid.shipped_in:
            jobs = max(1, args.jobs // grid.threads)  # each run on the grid's thread count
            rows = run_grid(grid.methods, grid.profiles, grid.seeds, grid.dataset, grid.config(), out=cells / "course",
                            jobs=jobs, threads=grid.threads, **grid.data)
            _write(RESULTS / "course" / f"{name}.json", compact(rows, grid.curve), one_row_a_line=True)
    for name, grid in EXERCISES.items():
        if args.only in (None, name):
            _write(EXERCISE_RESULTS / f"{name}.json", run_grid(out=cells / "exercises", jobs=args.jobs, **grid))
    write_manifest()


def _seeds(text: str) -> list[int]:
    """``--seeds`` read and checked as ``cissl-kit benchmark --seeds`` reads it, its message kept."""
    try:
        return cli_seeds(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def compact(rows: list[dict], curve: tuple[str, ...] | None = None) -> list[dict]:
    """A course grid's rows without what no notebook reads from them, so that each notebook's files stay at a few
    hundred KB: the confusion matrix, the per-class lists of each curve point (``CURVE_LISTS``) or every column but
    ``curve`` (the grid's ``curve``), and the float digits past the sixth decimal (a test accuracy is a multiple of
    1/500; no figure prints more than three)."""
    def kept(key: str) -> bool:
        return key in curve if curve is not None else key not in CURVE_LISTS

    return [_rounded({**{k: v for k, v in row.items() if k != "confusion"},
                      "curve": [{k: v for k, v in point.items() if kept(k)} for point in row["curve"]]})
            for row in rows]


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _write(path: Path, rows: list[dict], one_row_a_line: bool = False) -> None:
    if any(r.get("interrupted") for r in rows):
        raise SystemExit(f"{path.name}: a run was interrupted; run again to finish it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if one_row_a_line:  # compact, and still one diff line per run
        path.write_text("[\n" + ",\n".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in rows) + "\n]\n")
    else:
        path.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{path.relative_to(RESULTS)}: {len(rows)} rows")


if __name__ == "__main__":
    main()
