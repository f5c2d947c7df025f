"""The three-seed mnist-LT tables of docs/results.md (Variants from the papers), one grid per paper.

    python benchmarks/paper_tables.py sat         # where the self-adaptive threshold starts, and its EMA's horizon
    python benchmarks/paper_tables.py layermatch  # FixMatch, + Grad-ReLU, LayerMatch with L_u / L_AC averaged each way
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

from cissl_kit import FixMatch, TrainConfig
from cissl_kit.algorithms import LDAMDRW, LayerMatch
from cissl_kit.benchmark import BENCHMARK_STEPS, run_grid
from cissl_kit.recipes import AlternateSampling, Decoupling, PseudoLabelDecoupling, PseudoLabelLDAM
from cissl_kit.stats import difference_caption, differences_table, summary_table
from cissl_kit.utils import set_threads


def _layermatch_variants() -> dict:
    """LayerMatch with each way of averaging L_u and L_AC (the paper's Eq. 2 and Eq. 8 divide both by the
    masked count), against FixMatch and FixMatch + Grad-ReLU."""
    variants = {"FixMatch": FixMatch,
                "FixMatch + Grad-ReLU": lambda: LayerMatch(threshold_mode="fixed", avg_clustering=False)}
    for name, u, ac in (("L_u batch, L_AC batch (kit)", "batch", "batch"),
                        ("L_u masked, L_AC masked (paper's)", "masked", "masked"),
                        ("L_u batch, L_AC masked", "batch", "masked")):
        variants[f"LayerMatch {name}"] = lambda u=u, ac=ac: LayerMatch(u_average=u, ac_average=ac)
    return variants


SAT_SETTINGS = {  # where the self-adaptive threshold starts, and its EMA's time constant
    "1/K, m=0.999": dict(sat_start="freematch", sat_momentum=0.999),  # FreeMatch's paper and code
    "1/K, horizon 0.5%": dict(sat_start="freematch", sat_horizon=0.005),  # 1,000 of LayerMatch's 204,800 steps
    "1/K, horizon 1%": dict(sat_start="freematch", sat_horizon=0.01),
    "1/K, horizon 5%": dict(sat_start="freematch", sat_horizon=0.05),
    "1/K, horizon 10%": dict(sat_start="freematch", sat_horizon=0.1),
    "from 1, m=0.999": dict(sat_start="one", sat_momentum=0.999),  # nothing passes at first
}


def _sat_variants() -> dict:
    """FixMatch with a fixed τ = 0.95, and FixMatch-SAT and LayerMatch with each threshold start and horizon."""
    variants = {"FixMatch τ=0.95": FixMatch}
    for name, options in SAT_SETTINGS.items():
        variants[f"FixMatch-SAT {name}"] = lambda o=options: FixMatch(**{"threshold_mode": "freematch",
                                                                          "sat_horizon": 0.0, **o})
        variants[f"LayerMatch {name}"] = lambda o=options: LayerMatch(**{"sat_horizon": 0.0, **o})
    return variants


GRIDS = {
    "layermatch": dict(methods=_layermatch_variants(), profiles=("consistent", "reversed"), baseline="FixMatch",
                       out="runs/bench-layermatch"),
    "sat": dict(methods=_sat_variants(), profiles=("consistent", "reversed"), baseline="FixMatch τ=0.95",
                out="runs/bench-sat"),
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
    parser.add_argument("--threads", type=int, default=None, help="threads of each run (default: the kit's rule)")
    parser.add_argument("--jobs", type=int, default=1, help="cells trained at a time (worker processes)")
    parser.add_argument("--only", default=None, help="methods of the grid to run, separated by '|'")
    args = parser.parse_args()
    if args.jobs == 1:
        set_threads(args.threads)
    grid = GRIDS[args.grid]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = grid["methods"]
    if args.only:
        methods = {name: methods[name] for name in args.only.split("|")}
    for name, data_kwargs in grid.get("settings", {"": {}}).items():  # one grid per data setting
        config = TrainConfig(**{"steps": BENCHMARK_STEPS, **grid.get("config", {})})
        rows = run_grid(methods, grid["profiles"], seeds, config=config, jobs=args.jobs,
                        threads=args.threads if args.jobs > 1 else None,
                        out=f"{grid['out']}/{name}" if name else grid["out"], **data_kwargs)
        print(f"\n{name or args.grid}: {data_kwargs or 'default mnist-LT split'}")
        print(summary_table(rows))
        print(f"\n{difference_caption()}\n\n{differences_table(rows, baselines=(grid['baseline'],))}")
        if any(r.get("curve") and not math.isnan(r["curve"][0].get("pl_accuracy", float("nan"))) for r in rows):
            print("\n" + early_table(rows))


if __name__ == "__main__":
    main()
