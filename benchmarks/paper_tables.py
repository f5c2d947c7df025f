"""The three-seed digits-LT tables reported in the README, one grid per paper.

    python benchmarks/paper_tables.py semi        # Supervised, FixMatch, SeMi × consistent, reversed
    python benchmarks/paper_tables.py layermatch  # FixMatch, + Grad-ReLU, LayerMatch × consistent, reversed

Finished runs are kept under runs/ and reused, so an interrupted grid resumes.
"""

from __future__ import annotations

import argparse

import torch

from cissl_kit import FixMatch, TrainConfig
from cissl_kit.algorithms import LayerMatch
from cissl_kit.benchmark import run_grid, summary_table

GRIDS = {
    "semi": dict(methods=["supervised", "fixmatch", "semi"], profiles=("consistent", "reversed"), out="runs/bench-semi"),
    "layermatch": dict(
        methods={"FixMatch": FixMatch,
                 "FixMatch + Grad-ReLU": lambda: LayerMatch(threshold_mode="fixed", avg_clustering=False),
                 "LayerMatch": LayerMatch},
        profiles=("consistent", "reversed"), out="runs/bench-layermatch"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grid", choices=sorted(GRIDS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    grid = GRIDS[args.grid]
    rows = run_grid(grid["methods"], grid["profiles"], [int(s) for s in args.seeds.split(",")],
                    config=TrainConfig(), out=grid["out"])
    print(summary_table(rows))


if __name__ == "__main__":
    main()
