"""The grids that notebook 05's exercises ask for, written to ``cissl_kit/reference_results/exercises/``
so that their worked solutions can show the answer without 10 minutes of training:

    python benchmarks/exercise_grids.py            # both grids, about 8 minutes on 2 CPU cores

* ``mnist_lt_gamma50.json``: exercise 1, the default methods at γ = 50 (N1 = 50), consistent, seed 0;
* ``digits_lt_reversed.json``: exercise 2, the default methods on digits-LT, reversed, seeds 0-2.

Each solution also re-trains one run of its grid live and compares it with the file. Made with the
CPU kernels pinned as in the tests (``conftest.py``), like ``mnist_lt.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cissl_kit.benchmark import EXERCISE_RESULTS, run_grid

GRIDS = {
    "mnist_lt_gamma50": dict(profiles=["consistent"], seeds=[0], imbalance_ratio=50, n_max=50),
    "digits_lt_reversed": dict(dataset="digits", profiles=["reversed"], seeds=[0, 1, 2]),
}


def main() -> None:
    for name, value in {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}.items():
        if os.environ.get(name) != value:
            raise SystemExit(f"set {name}={value} (and the other two of conftest.py) before running, so the files "
                             "match the notebooks' pinned kernels")
    import torch

    torch.set_num_threads(2)
    EXERCISE_RESULTS.mkdir(parents=True, exist_ok=True)
    for name, grid in GRIDS.items():
        rows = run_grid(out=Path("runs") / "exercises" / name, **grid)
        (EXERCISE_RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
