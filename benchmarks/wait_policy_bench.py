"""Where a two-thread run's kernel time goes, and what spinning would buy: OpenMP wait policies compared.

    python benchmarks/wait_policy_bench.py [--rounds 4] [--steps 30]

With the kit's allocator settings a 1-thread run spends ~0% of its CPU in the kernel, a 2-thread run
~5%: the passive wait policy puts a thread to sleep (futex) at the end of every parallel region and
wakes it at the next. libgomp's ``GOMP_SPINCOUNT`` (which overrides ``OMP_WAIT_POLICY``) lets a thread
spin that many times first. Each variant trains FixMatch on mnist in a fresh process; the step time,
the kernel's share of the process's CPU and the CPU per step are medians over interleaved rounds,
quiet and with 2× the usable cores in busy-loop processes that stop on their own.

Measured here (2026-12-07, 2-core Xeon, three runs): spinning 3,000 times made the quiet step 13–15%
faster and cut the kernel share from ~5.5% to ~2.3%; under load it was 0.78–1.29× the passive step
(noisy: the 1-thread run moved as much). 10,000 and 30,000 spins gained a little more quiet and lost up
to 1.34× and 2.0× under load. The kit spins 3,000 times (``cissl_kit._runtime.SPIN_COUNT``);
``benchmarks/threads_bench.py`` checks its default against every thread count, quiet and loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from threads_bench import busy_loops  # (this folder is on sys.path when a script here runs)

from cissl_kit._runtime import SPIN_COUNT

CHILD = r"""
import resource, statistics, sys, time
import cissl_kit
from cissl_kit import TrainConfig, Trainer, build_algorithm, make_ssl_data
from cissl_kit.utils import set_threads
threads, steps = int(sys.argv[1]), int(sys.argv[2])
set_threads(threads)
trainer = Trainer(build_algorithm("fixmatch"), make_ssl_data("mnist", seed=0),
                  config=TrainConfig(steps=10 * steps, progress=False))
for _ in range(5):
    trainer.train_step()
a = resource.getrusage(resource.RUSAGE_SELF)
times = []
for _ in range(steps):
    start = time.perf_counter()
    trainer.train_step()
    times.append(time.perf_counter() - start)
b = resource.getrusage(resource.RUSAGE_SELF)
user, kernel = b.ru_utime - a.ru_utime, b.ru_stime - a.ru_stime
print(statistics.median(times), kernel / (user + kernel), (user + kernel) / steps)
"""

# name -> (threads, GOMP_SPINCOUNT or None); every variant has OMP_WAIT_POLICY=PASSIVE, as the kit sets it
PASSIVE = "2 threads, passive"
VARIANTS = {
    "1 thread, passive": (1, None),
    PASSIVE: (2, None),
    "2 threads, spin 3,000 (kit)": (2, SPIN_COUNT),
    "2 threads, spin 10,000": (2, "10000"),
    "2 threads, spin 30,000": (2, "30000"),
}


def run(threads: int, spincount: str | None, steps: int) -> list[float]:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.pop("GOMP_SPINCOUNT", None)
    if spincount is not None:
        env["GOMP_SPINCOUNT"] = spincount
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(steps)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process (after 5 warm-up steps)")
    args = parser.parse_args()
    from cissl_kit.utils import usable_cores

    cores = usable_cores()
    print(f"FixMatch on mnist, {args.rounds} interleaved rounds × {args.steps} steps; loaded = {2 * cores} busy loops")
    medians = {}
    for condition in ("quiet", "loaded"):
        load = []
        if condition == "loaded":
            load = busy_loops(2 * cores, seconds=120 * args.rounds * len(VARIANTS))
            time.sleep(1.0)
        rows = {name: [] for name in VARIANTS}
        try:
            for _ in range(args.rounds):
                for name, (threads, spincount) in VARIANTS.items():
                    rows[name].append(run(threads, spincount, args.steps))
        finally:
            for proc in load:
                proc.kill()
                proc.wait()
        medians[condition] = {name: [statistics.median(column) for column in zip(*r)] for name, r in rows.items()}
    print(f"{'variant':<26}{'quiet ms':>9}{'kernel':>8}{'CPU ms':>8}{'loaded ms':>11}{'kernel':>8}{'CPU ms':>8}"
          f"{'quiet ×passive':>16}{'loaded ×passive':>17}")
    for name in VARIANTS:
        (qs, qk, qc), (ls, lk, lc) = medians["quiet"][name], medians["loaded"][name]
        print(f"{name:<26}{1000 * qs:>9.1f}{100 * qk:>7.1f}%{1000 * qc:>8.1f}{1000 * ls:>11.1f}{100 * lk:>7.1f}%"
              f"{1000 * lc:>8.1f}{qs / medians['quiet'][PASSIVE][0]:>16.2f}{ls / medians['loaded'][PASSIVE][0]:>17.2f}")


if __name__ == "__main__":
    main()
