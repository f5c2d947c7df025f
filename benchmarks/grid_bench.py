"""The README's main job (``cissl-kit benchmark``), serial and with ``--jobs``, in one run.

    python benchmarks/grid_bench.py [--seeds 0] [--skip-serial]

Runs the default grid (mnist-LT, 8 methods × 3 profiles) twice into fresh folders: ``--jobs 1``
(one process, the default threads) and the default ``--jobs`` (one single-thread worker per core),
and prints the wall time of each, start-up included, and the ratio. Then checks on a small digits
grid that ``--jobs 2`` gives bit for bit the rows of ``--jobs 1 --threads 1``. Target: the main job
≤ 5 min on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cissl_kit", *argv], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def rows(folder: Path) -> str:
    found = json.loads((folder / "results.json").read_text())
    return json.dumps([{k: v for k, v in r.items() if k != "seconds"} for r in found], sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--skip-serial", action="store_true", help="time only the parallel main job")
    args = parser.parse_args()
    from cissl_kit.utils import usable_cores

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        times = {}
        if not args.skip_serial:
            times["--jobs 1"] = timed(["benchmark", "--seeds", args.seeds, "--jobs", "1", "--no-progress",
                                       "--out", str(tmp / "serial")])
        times[f"--jobs {usable_cores()} (default)"] = timed(["benchmark", "--seeds", args.seeds, "--no-progress",
                                                            "--out", str(tmp / "parallel")])
        print(f"main job (mnist-LT, 8 methods × 3 profiles, seeds {args.seeds}), wall time with start-up:")
        for name, seconds in times.items():
            print(f"  {name:<22}{seconds:8.0f} s  ({seconds / 60:.1f} min)")
        if len(times) == 2:
            serial, parallel = times.values()
            print(f"  speed-up               {serial / parallel:8.2f}×")
        parallel = list(times.values())[-1]
        print(f"target <= 300 s: {'met' if parallel <= 300 else 'NOT met'}")
        small = ["benchmark", "--dataset", "digits", "--steps", "40", "--method", "supervised,fixmatch,semi",
                 "--profiles", "consistent,reversed", "--seeds", "0,1", "--no-progress"]
        timed(small + ["--jobs", "1", "--threads", "1", "--out", str(tmp / "small1")])
        timed(small + ["--jobs", "2", "--out", str(tmp / "small2")])
        same = rows(tmp / "small1") == rows(tmp / "small2")
        print(f"--jobs 2 rows == --jobs 1 --threads 1 rows (digits, 12 cells): {same}")


if __name__ == "__main__":
    main()
