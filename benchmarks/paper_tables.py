"""The three-seed mnist-LT tables reported in the README, one grid per paper.

    python benchmarks/paper_tables.py layermatch  # FixMatch, + Grad-ReLU, LayerMatch's threshold and L_AC variants
    python benchmarks/paper_tables.py alternate   # Alternate Sampling and its baselines, γ = 10 and γ = 50 (N1 = 50)

Each table gives mean ± std over the seeds, the paired difference against the grid's baseline
with its 95% interval, and — for the pseudo-label methods — the pseudo-label accuracy and mask
rate over the first 10% of training (the first evaluation). Finished runs are kept under
runs/ and reused, so an interrupted grid resumes.
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from cissl_kit import FixMatch, TrainConfig
from cissl_kit.algorithms import (LDAMDRW, AlternateSampling, Decoupling, LayerMatch, PseudoLabelDecoupling,
                                  PseudoLabelLDAM)
from cissl_kit.benchmark import BENCHMARK_STEPS, difference_caption, differences_table, run_grid, summary_table


def _layermatch_variants() -> dict:
    """LayerMatch with each threshold schedule, and L_AC averaged both ways (issue: SAT at short runs)."""
    thresholds = {
        "SAT m=0.999": dict(sat_momentum=0.999),  # FreeMatch's / LayerMatch's paper setting, start 1/K
        "SAT 1% horizon": dict(sat_horizon=0.01),  # the EMA's time constant scaled to the run, like N
        "SAT code start": dict(sat_start="code"),  # m = 0.999, starting at 1 as FreeMatch's code does
        "fixed τ=0.95": dict(threshold_mode="fixed", threshold=0.95),
    }
    variants = {"FixMatch": FixMatch,
                "FixMatch + Grad-ReLU": lambda: LayerMatch(threshold_mode="fixed", avg_clustering=False)}
    for average in ("masked", "batch"):
        for name, options in thresholds.items():
            variants[f"LayerMatch {name}, L_AC {average}"] = \
                lambda options=options, average=average: LayerMatch(**{"threshold_mode": "freematch", **options,
                                                                        "ac_average": average})
    return variants


GRIDS = {
    "layermatch": dict(methods=_layermatch_variants(), profiles=("consistent", "reversed"), baseline="FixMatch",
                       out="runs/bench-layermatch"),
    # the Alternate Sampling paper trains everything at lr 0.1; the recipes carry it as stage_lr
    "alternate": dict(
        methods={"Decoupling": Decoupling, "Pseudo-Label + Decoupling": PseudoLabelDecoupling,
                 "LDAM-DRW": LDAMDRW, "Pseudo-Label + LDAM-DRW": PseudoLabelLDAM,
                 "Alternate Sampling": AlternateSampling},
        profiles=("consistent",), baseline="Decoupling", out="runs/bench-alternate", config=dict(lr=0.1),
        settings={"gamma10": {}, "gamma50": dict(n_max=50, imbalance_ratio=50)}),
}


def early_table(rows: list[dict]) -> str:
    """Pseudo-label accuracy and mask rate over the first evaluation interval (10% of training by default)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row.get("curve"):
            groups.setdefault((row["profile"], row["label"]), []).append(row["curve"][0])
    lines = ["| profile | method | first steps | PL acc | mask rate |", "|---|---|---|---|---|"]
    for (profile, label), firsts in groups.items():
        cells = []
        for key in ("pl_accuracy", "mask"):
            values = [100 * f[key] for f in firsts if not math.isnan(f.get(key, float("nan")))]
            spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.1f}{spread}" if values else "–")
        lines.append(f"| {profile} | {label} | 1–{firsts[0]['step']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grid", choices=sorted(GRIDS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="methods of the grid to run, separated by '|'")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    grid = GRIDS[args.grid]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = grid["methods"]
    if args.only:
        methods = {name: methods[name] for name in args.only.split("|")}
    for name, data_kwargs in grid.get("settings", {"": {}}).items():  # one grid per data setting
        config = TrainConfig(**{"steps": BENCHMARK_STEPS, **grid.get("config", {})})
        rows = run_grid(methods, grid["profiles"], seeds, config=config,
                        out=f"{grid['out']}/{name}" if name else grid["out"], **data_kwargs)
        print(f"\n{name or args.grid}: {data_kwargs or 'default mnist-LT split'}")
        print(summary_table(rows))
        print(f"\n{difference_caption()}\n\n{differences_table(rows, baselines=(grid['baseline'],))}")
        if any(r.get("curve") and not math.isnan(r["curve"][0].get("pl_accuracy", float("nan"))) for r in rows):
            print("\n" + early_table(rows))


if __name__ == "__main__":
    main()
