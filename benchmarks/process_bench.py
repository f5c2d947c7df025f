"""What a training process costs around its steps, before and after the kit's process settings.

    python benchmarks/process_bench.py [--rounds 3] [--steps 200]

Two measurements, each a fresh ``cissl-kit train --dataset mnist`` process per variant, rounds
interleaved, medians:

1. **Allocator churn**: minor page faults per step and the kernel's share of the process's CPU
   time over the steps after a warm-up of 20, from ``getrusage``. *before*: glibc's default
   thresholds (``CISSL_KIT_PROCESS_TUNING=0``; the kit's OpenMP wait policy kept, so only the
   allocator differs); *after*: the kit's ``mallopt`` (``cissl_kit._runtime``). Targets: ≤ 100
   faults a step, kernel ≤ 2% of the CPU. *after, 1 thread* (``--threads 1``) splits the rest: what
   the kernel still does with one thread is the allocator's and the run's own; the difference to
   *after* is the cost of keeping two threads in step (futex sleeps and wake-ups under the passive
   OpenMP wait policy; ``benchmarks/wait_policy_bench.py`` weighs it against spinning).
2. **Start-up**: CPU seconds from the process's start to its first training step, and the peak
   RSS of the whole run. *before*: ``torch.optim.SGD`` (whose first call imports ``torch._dynamo``
   and sympy), the classroom tools the CLI imported at its top (and with them the analysis tools)
   and no process settings; *before, kit at COMMIT* (``--before-commit``, default a6fbb50: the kit
   when issue 25 was filed, its package extracted with ``git archive`` and run in place of this
   one): every start-up cost as it was, nothing simulated; *after*: the kit as it is. Targets: peak
   RSS ≤ 720 MiB, ≥ 1 s less CPU before the first step (against the commit where it ran).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from cissl_kit._runtime import SPIN_COUNT

CHILD = r"""
import json, resource, sys, time
variant, steps = sys.argv[1], int(sys.argv[2])
import cissl_kit
from cissl_kit import cli, engine
import torch
if variant == "before-start":
    engine.SGD = torch.optim.SGD  # torch's own optimiser: its first call imports torch._dynamo
    import cissl_kit.classroom, cissl_kit.grading  # the CLI imported these at its top (until 2026-12-07)
seen = {}
original = engine.Trainer.train_step
def train_step(self, batch=None):
    step = self.step
    if step == 0:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        seen["cpu_before_first_step"] = usage.ru_utime + usage.ru_stime
    if step == 20:
        seen["start"] = resource.getrusage(resource.RUSAGE_SELF)
    original(self, batch)
    if step == steps - 1:
        seen["end"] = resource.getrusage(resource.RUSAGE_SELF)
engine.Trainer.train_step = train_step
threads = ["--threads", "1"] if variant == "after-1thread" else []
code = cli.main(["train", "--dataset", "mnist", "--steps", str(steps), "--eval-every", str(steps // 2),
                 "--no-progress", "--out", sys.argv[3], "--name", variant, "--overwrite", *threads])
a, b = seen["start"], seen["end"]
n = steps - 1 - 20
user, system = b.ru_utime - a.ru_utime, b.ru_stime - a.ru_stime
print("RESULT " + json.dumps({"faults_per_step": (b.ru_minflt - a.ru_minflt) / n, "kernel_share": system / (user + system),
       "cpu_before_first_step": seen["cpu_before_first_step"],
       "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
       "dynamo": "torch._dynamo" in sys.modules, "package": cissl_kit.__file__}))
"""


def run(variant: str, steps: int, out: str, old_kit: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if variant.startswith("before"):
        env["CISSL_KIT_PROCESS_TUNING"] = "0"
        if variant == "before-malloc":  # the kit's wait policy, so that only the allocator differs from "after"
            env.update(OMP_WAIT_POLICY="PASSIVE", GOMP_SPINCOUNT=SPIN_COUNT)
    # the old kit: run from its folder ("python -c" puts the working directory first on the path,
    # ahead of the installed package)
    text = subprocess.run([sys.executable, "-c", CHILD, variant, str(steps), os.path.abspath(out)], env=env,
                          cwd=old_kit if variant == "before-commit" else None, capture_output=True, text=True,
                          check=True).stdout
    found = json.loads(text.split("RESULT ", 1)[1])
    if variant == "before-commit" and not found["package"].startswith(old_kit):
        raise RuntimeError(f"the old kit was not the one imported: {found['package']}")
    return found


def extract_kit(commit: str, folder: str) -> bool:
    """The ``cissl_kit`` package as it was at ``commit``, written under ``folder`` (False: no git or no such commit)."""
    try:
        archive = subprocess.run(["git", "archive", commit, "cissl_kit"], capture_output=True, check=True,
                                 cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"(no 'before, kit at {commit}' row: {error})")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="runs/process_bench")
    parser.add_argument("--before-commit", default="a6fbb50",
                        help="the kit's start-up to compare with (default: when issue 25 was filed); '' to skip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as old_kit:
        variants = ("before-malloc", "before-start", "after", "after-1thread")
        if args.before_commit and extract_kit(args.before_commit, old_kit):
            variants += ("before-commit",)
        found = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                found[variant].append(run(variant, args.steps, args.out, old_kit))
    med = {v: {k: statistics.median(r[k] for r in rows) for k in rows[0] if k not in ("dynamo", "package")}
           for v, rows in found.items()}
    print(f"mnist, FixMatch, {args.steps} steps, medians of {args.rounds} interleaved rounds\n")
    print(f"{'allocator':<34}{'faults/step':>12}{'kernel share':>14}")
    for name, v in (("before (glibc defaults)", "before-malloc"), ("after (kit's mallopt)", "after"),
                    ("after, 1 thread", "after-1thread")):
        print(f"{name:<34}{med[v]['faults_per_step']:>12.0f}{med[v]['kernel_share']:>13.1%}")
    print(f"\n{'start-up':<34}{'CPU s before step 1':>20}{'peak RSS MiB':>14}{'dynamo':>8}")
    rows = [("before (torch SGD, no tuning)", "before-start"), ("after", "after")]
    if "before-commit" in found:
        rows.insert(0, (f"before (the kit at {args.before_commit})", "before-commit"))
    for name, v in rows:
        print(f"{name:<34}{med[v]['cpu_before_first_step']:>20.2f}{med[v]['peak_rss_mib']:>14.0f}"
              f"{str(found[v][0]['dynamo']):>8}")
    a, b = med["after"], med[rows[0][1]]
    print(f"\nfaults per step after = {a['faults_per_step']:.0f} (target <= 100: {'met' if a['faults_per_step'] <= 100 else 'NOT met'}); "
          f"kernel share after = {a['kernel_share']:.1%} (target <= 2%: {'met' if a['kernel_share'] <= 0.02 else 'NOT met'})")
    saved = b["cpu_before_first_step"] - a["cpu_before_first_step"]
    print(f"CPU saved before the first step = {saved:.2f} s against '{rows[0][0]}' (target >= 1 s: {'met' if saved >= 1 else 'NOT met'}); "
          f"peak RSS after = {a['peak_rss_mib']:.0f} MiB (target <= 720: {'met' if a['peak_rss_mib'] <= 720 else 'NOT met'})")


if __name__ == "__main__":
    main()
