"""The measurement behind the self-adaptive threshold's defaults (issue 23): where FreeMatch's SAT starts and
how fast its EMA moves, for FixMatch-SAT and LayerMatch on mnist-LT (consistent and reversed, seeds 0-2,
1,000 steps), and how LayerMatch averages L_u and L_AC.

    python benchmarks/sat_study.py [--seeds 0,1,2] [--out runs] [--jobs 2]

Prints, per setting: the mask rate and the pseudo-label accuracy over the first 10% of training (the
soundness of the start, the criterion that chose ``sat_horizon = 0.005``), the final accuracy, and the
paired differences against FixMatch τ = 0.95. Finished runs are kept under ``--out`` (bench-sat/,
bench-layermatch/), so a second call only prints. About 60 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cissl_kit.algorithms import FixMatch, LayerMatch
from cissl_kit.benchmark import run_grid
from cissl_kit.engine import TrainConfig
from cissl_kit.stats import differences_table, summarize, with_early_means

SAT = {
    "FixMatch τ=0.95": lambda: FixMatch(threshold=0.95, sat_horizon=0.0),
    "FixMatch-SAT 1/K, m=0.999": lambda: FixMatch(threshold_mode="freematch", sat_horizon=0.0),
    "LayerMatch 1/K, m=0.999": lambda: LayerMatch(sat_horizon=0.0),
    **{f"{name} 1/K, horizon {100 * h:g}%": (lambda h=h, make=make: make(h))
       for h in (0.005, 0.01, 0.05, 0.1)
       for name, make in (("FixMatch-SAT", lambda h: FixMatch(threshold_mode="freematch", sat_horizon=h)),
                          ("LayerMatch", lambda h: LayerMatch(sat_horizon=h)))},
    "FixMatch-SAT from 1, m=0.999": lambda: FixMatch(threshold_mode="freematch", sat_start="one", sat_horizon=0.0),
    "LayerMatch from 1, m=0.999": lambda: LayerMatch(sat_start="one", sat_horizon=0.0),
}
NORMALISATION = {
    "FixMatch": FixMatch,
    "FixMatch + Grad-ReLU": lambda: LayerMatch(threshold_mode="fixed", avg_clustering=False),
    "LayerMatch L_u batch, L_AC batch (kit)": LayerMatch,
    "LayerMatch L_u masked, L_AC masked (paper's)": lambda: LayerMatch(u_average="masked", ac_average="masked"),
    "LayerMatch L_u batch, L_AC masked": lambda: LayerMatch(ac_average="masked"),
}


def _report(title: str, rows: list[dict], baseline: str) -> None:
    early = with_early_means(rows, 0.1)
    print(f"\n## {title}\n")
    print("| profile | method | runs | mask, first 10% | PL acc, first 10% | overall | few |")
    print("|---|---|---|---|---|---|---|")
    for e in summarize(early, ("early_mask", "early_pl_accuracy", "accuracy", "few")):
        print(f"| {e['profile']} | {e['method']} | {e['runs']} | {e['early_mask']:.1f} ± {e['early_mask_std']:.1f} | "
              f"{e['early_pl_accuracy']:.1f} ± {e['early_pl_accuracy_std']:.1f} | {e['accuracy']:.1f} ± "
              f"{e['accuracy_std']:.1f} | {e['few']:.1f} ± {e['few_std']:.1f} |")
    print()
    print(differences_table(rows, baselines=(baseline,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="runs")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    config = TrainConfig(steps=1000)
    profiles = ("consistent", "reversed")
    out = Path(args.out)
    sat = run_grid(SAT, profiles, seeds, "mnist", config, out=out / "bench-sat", jobs=args.jobs)
    _report("Where SAT starts and how fast it moves (mnist-LT)", sat, "FixMatch τ=0.95")
    norm = run_grid(NORMALISATION, profiles, seeds, "mnist", config, out=out / "bench-layermatch", jobs=args.jobs)
    _report("How LayerMatch averages L_u and L_AC (mnist-LT)", norm, "FixMatch")


if __name__ == "__main__":
    main()
