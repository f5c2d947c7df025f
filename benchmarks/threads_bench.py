"""The default CPU thread count against every ``--threads`` value, on a quiet machine and under load.

    python benchmarks/threads_bench.py [--dataset mnist] [--method fixmatch] [--rounds 3] [--steps 20]

Each variant trains in a fresh process (the OpenMP wait policy is read once, when torch loads):

* **kit default**: what ``cissl-kit train`` does without ``--threads`` (``utils.default_threads``,
  with the OpenMP wait policy the kit sets at import: passive after a short spin, ``cissl_kit._runtime``);
* **--threads N** for every N up to the usable cores (the kit's wait policy, as the kit runs them);
* **before**: torch's own thread count with OpenMP's default, spinning wait policy
  (``CISSL_KIT_PROCESS_TUNING=0``), as the kit ran before it chose its threads.

"Loaded" runs the same with 2× the usable cores in busy-loop processes that stop on their own.
Rounds are interleaved (a busy machine slows every variant alike) and the median step time is
taken. Targets: the default within 1.1× of the best ``--threads`` when quiet, 1.2× when loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import sys, time, statistics
import cissl_kit
from cissl_kit import TrainConfig, Trainer, build_algorithm, make_ssl_data
from cissl_kit.models import default_model
from cissl_kit.utils import set_threads
import torch
dataset, method, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = make_ssl_data(dataset, seed=0)
if threads == "kit":
    set_threads(None, default_model(data.input_shape))
elif threads != "torch":
    set_threads(int(threads))
trainer = Trainer(build_algorithm(method), data, config=TrainConfig(steps=10 * steps, progress=False))
for _ in range(5):
    trainer.train_step()
times = []
for _ in range(steps):
    start = time.perf_counter()
    trainer.train_step()
    times.append(time.perf_counter() - start)
print(torch.get_num_threads(), statistics.median(times))
"""


def busy_loops(count: int, seconds: float) -> list[subprocess.Popen]:
    """``count`` processes that spin for ``seconds`` and then stop on their own."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def run_variant(args, threads: str, tuned: bool) -> tuple[int, float]:
    env = dict(os.environ)
    if not tuned:
        env["CISSL_KIT_PROCESS_TUNING"] = "0"
        env.pop("OMP_WAIT_POLICY", None)
        env.pop("GOMP_SPINCOUNT", None)
    out = subprocess.run([sys.executable, "-c", CHILD, args.dataset, args.method, str(args.steps), threads],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--method", default="fixmatch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process (after 5 warm-up steps)")
    args = parser.parse_args()
    from cissl_kit.utils import usable_cores

    cores = usable_cores()
    variants = [("kit default", "kit", True)] + [(f"--threads {n}", str(n), True) for n in range(1, cores + 1)] \
        + [("before: torch's threads, spinning", "torch", False)]
    print(f"{args.method} on {args.dataset}: median step time, {args.rounds} interleaved rounds × {args.steps} steps; "
          f"{cores} usable cores; loaded = {2 * cores} busy-loop processes")
    results = {}
    for condition in ("quiet", "loaded"):
        times = {name: [] for name, _, _ in variants}
        counts = {}
        load = []
        if condition == "loaded":
            load = busy_loops(2 * cores, seconds=60 * args.rounds * len(variants))
            time.sleep(1.0)
        try:
            for _ in range(args.rounds):
                for name, threads, tuned in variants:
                    counts[name], t = run_variant(args, threads, tuned)
                    times[name].append(t)
        finally:
            for proc in load:
                proc.kill()
                proc.wait()
        results[condition] = ({name: statistics.median(v) for name, v in times.items()}, counts)
    print(f"{'variant':<36}{'threads':>8}{'quiet ms':>10}{'loaded ms':>11}{'quiet ×best':>13}{'loaded ×best':>14}")
    best = {c: min(t for name, t in results[c][0].items() if name.startswith("--threads")) for c in results}
    for name, _, _ in variants:
        q, l = results["quiet"][0][name], results["loaded"][0][name]
        print(f"{name:<36}{results['quiet'][1][name]:>8}{1000 * q:>10.1f}{1000 * l:>11.1f}{q / best['quiet']:>13.2f}"
              f"{l / best['loaded']:>14.2f}")
    quiet = results["quiet"][0]["kit default"] / best["quiet"]
    loaded = results["loaded"][0]["kit default"] / best["loaded"]
    print(f"\nkit default / best --threads, quiet  = {quiet:.2f}  (target <= 1.1: {'met' if quiet <= 1.1 else 'NOT met'})")
    print(f"kit default / best --threads, loaded = {loaded:.2f}  (target <= 1.2: {'met' if loaded <= 1.2 else 'NOT met'})")
    before = results["loaded"][0]["before: torch's threads, spinning"] / results["loaded"][0]["kit default"]
    print(f"before / kit default, loaded         = {before:.2f}")


if __name__ == "__main__":
    main()
