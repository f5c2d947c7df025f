"""Bad input, faults and interruptions, tried the way a newcomer or a demanding user would, each in
a fresh process; prints what the user sees, per family:

    clean      one line ``cissl-kit: error: …`` (or a Python exception naming the parameter), before any work;
               or, where recovering is right (a damaged cell file), the damage named and the work redone
    traceback  a Python traceback
    accepted   the bad input was accepted (exit 0), or an interrupted run passed for a finished one
    lost       the failure came after training had run, so that work was lost, or a file was overwritten
    hang       no answer within the time limit

    python benchmarks/failure_audit.py [--kit PATH] [--only FAMILY] [--timeout 90]

``--kit`` points at another checkout of the kit (to measure it before a change). Each case runs in
its own temporary folder; the whole audit takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat  # noqa: F401 - the check expressions of the cases use it
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "20", "--eval-every", "10", "--no-progress"]
LONG = ["--steps", "400", "--eval-every", "200", "--no-progress"]  # long enough that work before a failure shows


@dataclass
class Case:
    family: str
    name: str
    argv: list[str] | None = None  # cissl-kit arguments; or
    python: str | None = None  # a Python snippet (library checks)
    setup: str | None = None  # a Python snippet run first in the case folder
    interrupt_after: float | None = None  # seconds, then the signal
    signal_: int = signal.SIGINT
    expect_ok: bool = False  # help pages: exit 0 with a usage text
    second: list[str] | None = None  # a second cissl-kit command started while the first (argv) runs
    check: str | None = None  # Python expression over `folder`, `proc` and `err`: True when the fault corrupted results
    recovered: str | None = None  # Python expression: True when the run recovered as it should (exit 0 is right)
    notes: list[str] = field(default_factory=list)


def cases() -> list[Case]:
    c = []
    for sub in ([], ["train"], ["benchmark"], ["split"]):
        c.append(Case("help pages", f"{' '.join(sub) or 'cissl-kit'} --help", sub + ["--help"], expect_ok=True))
    c.append(Case("help pages", "--version", ["--version"], expect_ok=True))

    def flag(name, *argv):
        c.append(Case("flag values", name, ["train", *FAST, *argv]))  # the case's flags last: they win

    flag("--lr 1e30", "--lr", "1e30")
    flag("--scale 1e30", "--method", "ldam_drw", "--scale", "1e30")
    flag("--ac-weight 1e30", "--method", "layermatch", "--ac-weight", "1e30")
    flag("--stage-lr 1e30", "--method", "decoupling", "--stage-lr", "1e30", "--init-steps", "30", "--crt-steps", "5")
    flag("--threads -1", "--threads", "-1")
    flag("--threads 10^12", "--threads", str(10**12))
    flag("--checkpoint ''", "--checkpoint", "")
    flag("--device mps", "--device", "mps")
    flag("--device meta", "--device", "meta")
    flag("--device cuda:7", "--device", "cuda:7")
    flag("--bank-slots 10^12", "--method", "semi", "--bank-slots", str(10**12))
    flag("--batch-size 10^8", "--batch-size", str(10**8))
    flag("--batch-size 10^12", "--batch-size", str(10**12))
    flag("--steps 0", "--steps", "0")
    c.append(Case("flag values", "benchmark --profiles ''", ["benchmark", *FAST, "--profiles", ""]))
    c.append(Case("flag values", "benchmark --seeds 0,0", ["benchmark", "--method", "supervised", "--profiles",
                                                            "consistent", *FAST, "--seeds", "0,0"]))
    c.append(Case("flag values", "empty CIFAR file", ["train", "--dataset", "cifar10", "--root", "cifar", *FAST],
                  setup="import os; d='cifar/cifar-10-batches-py'; os.makedirs(d); "
                        "[open(f'{d}/{n}', 'wb').close() for n in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']]"))

    def exit_code(name, *argv):
        c.append(Case("names and exit codes", name, list(argv)))

    exit_code("--method SeMi", "train", *FAST, "--method", "SeMi")
    exit_code("--unlabeled-profile reverse", "train", *FAST, "--unlabeled-profile", "reverse")
    exit_code("--seeds x", "benchmark", *FAST, "--seeds", "x")
    exit_code("--resume without --checkpoint", "train", *FAST, "--resume")
    exit_code("--tresholt 0.9 (misspelt flag)", "train", *FAST, "--tresholt", "0.9")
    exit_code("--dataset MNIST", "train", *FAST, "--dataset", "MNIST")

    def late(name, argv, setup=None, check=None):
        c.append(Case("failures after the work", name, argv, setup=setup, check=check))

    late("--out is a file", ["train", "--out", "afile", *LONG], setup="open('afile', 'w').write('x')")
    late("--out under /proc", ["train", "--out", "/proc/cissl-audit", *LONG])
    late("--checkpoint is a folder", ["train", "--checkpoint", "adir", *LONG], setup="import os; os.mkdir('adir')")
    late("--checkpoint /proc/x.pt", ["train", "--checkpoint", "/proc/x.pt", *LONG])
    late("supervised,fixmatch --threshold 5", ["train", "--method", "supervised,fixmatch", "--threshold", "5", *LONG])
    late("benchmark --seeds 0,-1", ["benchmark", "--method", "supervised", "--profiles", "consistent",
                                    "--seeds", "0,-1", *LONG])
    late("a fresh run over another run's checkpoint",
         ["train", "--method", "supervised", "--checkpoint", "ck.pt", *FAST],
         setup=_python_setup("train('fixmatch', make_ssl_data('digits', device='cpu'), steps=6, progress=False, "
                             "checkpoint='ck.pt')"),
         check="_checkpoint_method(folder / 'ck.pt') != 'fixmatch'")
    late("--resume from a checkpoint with altered weights",
         ["train", "--method", "fixmatch", "--checkpoint", "ck.pt", "--resume", "--steps", "12", "--eval-every", "6",
          "--no-progress"],
         setup=_python_setup("train('fixmatch', make_ssl_data('digits', device='cpu'), steps=12, eval_every=6, "
                             "progress=False, checkpoint='ck.pt'); import torch; s = torch.load('ck.pt'); "
                             "s['net']['model.head.weight' if 'model.head.weight' in s['net'] else 'head.weight'][0, 0] "
                             "= float('nan'); torch.save(s, 'ck.pt')"))

    def interrupt(name, argv, after, sig=signal.SIGINT, check=None, setup=None):
        c.append(Case("interruptions", name, argv, interrupt_after=after, signal_=sig, check=check, setup=setup))

    bench = ["benchmark", "--method", "supervised,fixmatch", "--profiles", "consistent", "--seeds", "0",
             "--steps", "1500", "--eval-every", "500", "--no-progress", "--out", "grid"]
    interrupt("Ctrl-C during a benchmark cell", bench, 25,
              check="_finished_cells(folder / 'grid') > _completed_cells_expected(proc)")
    interrupt("SIGTERM during a benchmark cell", bench, 25, sig=signal.SIGTERM,
              check="_finished_cells(folder / 'grid') > _completed_cells_expected(proc)")
    interrupt("Ctrl-C during train supervised,fixmatch",
              ["train", "--method", "supervised,fixmatch", "--steps", "3000", "--eval-every", "500", "--no-progress",
               "--out", "runs", "--name", "r"], 12,
              check="_trained_next_after_interrupt(folder / 'runs' / 'r')")
    c.append(Case("interruptions", "a cell file cut short mid-write",
                  ["benchmark", "--method", "supervised", "--profiles", "consistent", "--seeds", "0", *FAST,
                   "--out", "grid"],
                  setup=_python_setup("from cissl_kit.cli import main; main(['benchmark', '--method', 'supervised', "
                                      "'--profiles', 'consistent', '--seeds', '0', '--steps', '20', '--eval-every', "
                                      "'10', '--no-progress', '--out', 'grid']); import glob; p = glob.glob("
                                      "'grid/cells/*.json')[0]; t = open(p).read(); open(p, 'w').write(t[:len(t)//2])"),
                  recovered="'is damaged' in err and 'training it again' in err and _finished_cells(folder / 'grid') == 1"))

    def api(name, snippet):
        c.append(Case("library calls", name, python=snippet))

    api("long_tailed_counts(40, 20, 10**12)", "from cissl_kit.data import long_tailed_counts; long_tailed_counts(40, 20, 10**12)")
    api("TrainConfig(amp='yes')", "from cissl_kit import TrainConfig; TrainConfig(amp='yes')")
    api("TrainConfig(nesterov=2)", "from cissl_kit import TrainConfig; TrainConfig(nesterov=2)")
    api("TrainConfig(progress=None)", "from cissl_kit import TrainConfig; TrainConfig(progress=None)")
    api("TrainConfig(model='vit')", "from cissl_kit import TrainConfig; TrainConfig(model='vit')")
    api("unlabeled_counts(..., NaN, 'uniform')",
        "from cissl_kit.data import unlabeled_counts; unlabeled_counts(80, float('nan'), 10, 'uniform')")
    api("make_ssl_data(root=None)", "from cissl_kit import make_ssl_data; make_ssl_data('cifar10', root=None)")
    api("make_ssl_data(unlabeled_profile=5)", "from cissl_kit import make_ssl_data; make_ssl_data(unlabeled_profile=5)")
    api("RandomSampler batch 10^12", "import torch; from cissl_kit.data import make_sampler; "
        "make_sampler('random', torch.arange(10), 10**12).next()")
    api("BalancedMemoryBank(10, 10**12, 128)", "from cissl_kit.memory_bank import BalancedMemoryBank; "
        "BalancedMemoryBank(10, 10**12, 128)")
    api("Trainer batch_size=10**9", "from cissl_kit import Trainer, build_algorithm, make_ssl_data; "
        "Trainer(build_algorithm('fixmatch'), make_ssl_data('digits', device='cpu'), batch_size=10**9).fit()")

    # -- issue 24: output paths, concurrency, checkpoints, datasets, and the smaller faults ---------------
    def out(name, argv, setup=None, check=None):
        c.append(Case("output paths", name, ["train", *FAST, *argv], setup=setup, check=check))

    out("--checkpoint /dev/null --overwrite", ["--checkpoint", "/dev/null", "--overwrite"],
        check="not stat.S_ISCHR(os.stat('/dev/null').st_mode)")
    out("--checkpoint a FIFO --overwrite", ["--checkpoint", "f.pt", "--overwrite"], setup="import os; os.mkfifo('f.pt')",
        check="not stat.S_ISFIFO(os.stat(folder / 'f.pt').st_mode)")
    out("--checkpoint notes.txt --overwrite", ["--checkpoint", "notes.txt", "--overwrite"],
        setup="open('notes.txt', 'w').write('my notes')", check="(folder / 'notes.txt').read_bytes() != b'my notes'")
    out("--name ..", ["--out", "runs", "--name", ".."], check="(folder / 'results.json').exists()")
    out("--name afile/x", ["--out", "runs", "--name", "afile/x"], setup="import os; os.makedirs('runs'); "
        "open('runs/afile', 'w').write('x')")
    out("--name of 300 bytes", ["--out", "runs", "--name", "x" * 300])
    out("--name of a folder with my files, --overwrite", ["--out", "runs", "--name", "mine", "--overwrite"],
        setup="import os; os.makedirs('runs/mine'); open('runs/mine/results.json', 'w').write('mine')",
        check="(folder / 'runs' / 'mine' / 'results.json').read_text() != 'mine'")

    slow = ["--method", "supervised", "--steps", "400", "--eval-every", "200", "--no-progress"]
    for name, first, second in (
            ("two trains, one --name", ["train", *slow, "--out", "runs", "--name", "r"],
             ["train", *slow, "--out", "runs", "--name", "r", "--overwrite"]),
            ("two trains, one --checkpoint", ["train", *slow, "--out", "runs", "--name", "a", "--checkpoint", "ck.pt"],
             ["train", *slow, "--out", "runs", "--name", "b", "--checkpoint", "ck.pt", "--overwrite"]),
            ("two benchmarks, one --out", ["benchmark", *slow, "--profiles", "consistent", "--jobs", "1", "--out", "g"],
             ["benchmark", *slow, "--profiles", "consistent", "--jobs", "1", "--out", "g"])):
        c.append(Case("concurrency", name, first, second=second))

    def ck(name, edit, argv_extra=()):
        c.append(Case("checkpoints", name, ["train", "--method", "fixmatch", "--steps", "12", "--eval-every", "6",
                                            "--no-progress", "--checkpoint", "ck.pt", "--resume", *argv_extra],
                      setup=_python_setup("train('fixmatch', make_ssl_data('digits', device='cpu'), steps=6, "
                                          "eval_every=3, progress=False, checkpoint='ck.pt'); import torch; "
                                          f"s = torch.load('ck.pt', weights_only=True); {edit}; torch.save(s, 'ck.pt')")))

    ck("final.accuracy edited to 0.999", "s['final']['accuracy'] = 0.999")
    ck("step edited to -3", "s['step'] = -3")
    ck("step edited to 10^9", "s['step'] = 10**9")
    ck("version 1, no digests", "s['version'] = 1; s.pop('digests')")
    ck("a list in hparams", "s['hparams'] = [1, 2]")
    c.append(Case("checkpoints", "a text file as checkpoint", ["train", *FAST, "--checkpoint", "t.pt", "--resume"],
                  setup="open('t.pt', 'w').write('hello')"))
    c.append(Case("checkpoints", "a FIFO as checkpoint", ["train", *FAST, "--checkpoint", "f.pt", "--resume"],
                  setup="import os; os.mkfifo('f.pt')"))

    def cifar(name, entry):
        c.append(Case("datasets", name, ["train", "--dataset", "cifar10", "--root", "c", *FAST],
                      setup="import os, pickle, numpy as np\nd = 'c/cifar-10-batches-py'\nos.makedirs(d)\n"
                            "class P:\n    def __reduce__(self):\n        return (os.system, ('touch PWNED',))\n"
                            f"for n in [f'data_batch_{{i}}' for i in range(1, 6)] + ['test_batch']:\n"
                            f"    pickle.dump({entry}, open(f'{{d}}/{{n}}', 'wb'))\n",
                      check="(folder / 'PWNED').exists()"))

    cifar("a batch file that runs code", "{b'data': P(), b'labels': [0]}")
    cifar("labels out of range", "{b'data': np.zeros((10, 3072), np.uint8), b'labels': list(range(1, 11))}")
    cifar("float labels", "{b'data': np.zeros((10, 3072), np.uint8), b'labels': [float(i) for i in range(10)]}")

    def small(name, *argv, **kw):
        c.append(Case("smaller faults", name, ["train", *FAST, *argv], **kw))

    small("--eval-batch-size 256 (valid)", "--eval-batch-size", "256", expect_ok=True)
    small("--threads 999", "--threads", "999")
    small("--dist-timeout 1e300", "--dist-timeout", "1e300")
    small("daso --queue-size 10^12", "--method", "daso", "--queue-size", str(10**12))
    small("--seed 2^64", "--seed", str(2**64))
    small("crest_plus --generations 1000", "--method", "crest_plus", "--generations", "1000")
    c.append(Case("interruptions", "SIGTERM in a CReST+ generation",
                  ["train", "--method", "crest_plus", "--steps", "3000", "--eval-every", "500", "--no-progress",
                   "--out", "runs", "--name", "c"], interrupt_after=12, signal_=signal.SIGTERM,
                  check="not (folder / 'runs' / 'c' / 'results.json').exists()"))
    c.append(Case("interruptions", "Ctrl-C while importing", ["train", *FAST], interrupt_after=0.3))
    c.append(Case("interruptions", "resume an interrupted run under its --name",
                  ["train", "--method", "fixmatch", "--steps", "12", "--eval-every", "6", "--no-progress", "--out",
                   "runs", "--name", "r", "--checkpoint", "ck.pt", "--resume"], expect_ok=True,
                  setup=_python_setup("import signal, os\nfrom cissl_kit import engine\nfrom cissl_kit.cli import main\n"
                                      "orig = engine.Trainer.train_step\ncalls = [0]\n"
                                      "def step(self, batch=None):\n    calls[0] += 1\n"
                                      "    if calls[0] == 7:\n        raise KeyboardInterrupt\n"
                                      "    return orig(self, batch)\nengine.Trainer.train_step = step\n"
                                      "main(['train', '--method', 'fixmatch', '--steps', '12', '--eval-every', '6', "
                                      "'--no-progress', '--out', 'runs', '--name', 'r', '--checkpoint', 'ck.pt', "
                                      "'--checkpoint-every', '4'])")))
    return c


def _python_setup(statement: str) -> str:
    return f"from cissl_kit import make_ssl_data, train\n{statement}"


# helpers the `check` expressions use -----------------------------------------------------------
def _checkpoint_method(path: Path) -> str | None:
    import torch

    return torch.load(path, weights_only=True).get("method") if path.is_file() else None


def _finished_cells(grid: Path) -> int:
    """Cells stored as finished (a parseable file without an 'interrupted' mark)."""
    count = 0
    for p in (grid / "cells").glob("*.json"):
        try:
            saved = json.loads(p.read_text())
        except ValueError:
            continue
        count += not saved.get("interrupted") and not saved.get("row", {}).get("interrupted")
    return count


def _completed_cells_expected(proc) -> int:
    return 1  # the grid's first cell (supervised) finishes within the first seconds; the second is interrupted


def _trained_next_after_interrupt(run: Path) -> bool:
    """True if, after Ctrl-C stopped the first method, the next one was trained anyway."""
    path = run / "results.json"
    return path.is_file() and len(json.loads(path.read_text())) > 1


def run_case(case: Case, kit: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(kit), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
        if case.setup:
            subprocess.run([sys.executable, "-c", case.setup], cwd=folder, env=env, check=True,
                           capture_output=True, timeout=timeout)
        if case.second is not None:
            return run_concurrent(case, folder, env, timeout)
        command = [sys.executable, "-m", "cissl_kit", *case.argv] if case.argv is not None else \
            [sys.executable, "-c", case.python]
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            if case.interrupt_after is not None:
                try:
                    proc.wait(case.interrupt_after)
                except subprocess.TimeoutExpired:
                    proc.send_signal(case.signal_)
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: a hung allocation can hold all the memory
            out, err = proc.communicate()
            # an interrupted run that keeps going past the limit ignored the signal: it passes for a finished one
            kind = "accepted" if case.interrupt_after is not None else "hang"
            return {"case": case, "verdict": kind, "rc": None, "seconds": timeout, "err": err.strip().splitlines()[-1:]}
        seconds = time.perf_counter() - start
        scope = {"folder": folder, "proc": proc, "err": err}
        corrupted = bool(eval(case.check, globals(), scope)) if case.check else False
        recovered = bool(eval(case.recovered, globals(), scope)) if case.recovered else False
    return {"case": case, "verdict": "clean" if recovered else verdict(case, proc.returncode, out, err, seconds, corrupted),
            "rc": proc.returncode, "seconds": seconds, "err": err.strip().splitlines()[-1:] if err.strip() else []}


def run_concurrent(case: Case, folder: Path, env: dict, timeout: float) -> dict:
    """Start ``case.argv``, and once it trains, ``case.second``: the second must be refused at once (one line,
    exit 2) and the first must finish with its own results; anything else lost a run."""
    first = subprocess.Popen([sys.executable, "-m", "cissl_kit", *case.argv], cwd=folder, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    markers = [folder / "runs" / n / ".cissl-kit" for n in ("r", "a")] + [folder / "g" / ".cissl-kit"]
    end = time.time() + timeout
    while time.time() < end and not any(m.exists() and '"running"' in m.read_text() for m in markers):
        time.sleep(0.2)
    start = time.perf_counter()
    second = subprocess.run([sys.executable, "-m", "cissl_kit", *case.second], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    out, err = first.communicate(timeout=timeout)
    lines = [line for line in second.stderr.strip().splitlines() if line.strip()]
    if second.returncode == 0 or first.returncode != 0:
        verdict_ = "lost"
    elif "Traceback" in second.stderr:
        verdict_ = "traceback"
    else:
        verdict_ = "clean" if second.returncode == 2 and len(lines) == 1 and seconds < STARTUP_BUDGET else "other"
    return {"case": case, "verdict": verdict_, "rc": second.returncode, "seconds": seconds, "err": lines[-1:]}


STARTUP_BUDGET = 8.0  # seconds a failing command may take and still count as failing before the work


def verdict(case: Case, rc: int, out: str, err: str, seconds: float, corrupted: bool) -> str:
    if case.expect_ok:  # help pages print a usage text; other valid commands just succeed
        printed = case.family != "help pages" or "usage" in out or "cissl" in out
        return "clean" if rc == 0 and printed else "traceback" if "Traceback" in err else "broken"
    if "Traceback" in err and case.python is None:
        return "traceback"
    if corrupted:  # an interrupted cell kept as finished passes for a result; elsewhere work or a file is gone
        return "accepted" if case.family == "interruptions" and case.name.endswith("benchmark cell") else "lost"
    if case.interrupt_after is not None:
        return "clean" if rc in (130, 143) else "accepted"
    if rc == 0:
        return "accepted"
    if case.python is not None:  # a library call: an exception whose last line names the parameter
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return "clean" if last.split(":")[0] in ("ValueError", "TypeError", "MemoryError") or \
            last.startswith("cissl_kit") else "traceback"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if seconds > STARTUP_BUDGET and case.family == "failures after the work":
        return "lost"
    return "clean" if len(lines) == 1 and lines[0].startswith("cissl-kit: error:") else "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kit", default=str(ROOT), help="checkout of the kit to audit (default: this one)")
    parser.add_argument("--only", default=None, help="run one family")
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    results = []
    for case in cases():
        if args.only and case.family != args.only:
            continue
        result = run_case(case, Path(args.kit), args.timeout)
        results.append(result)
        print(f"{case.family:<26}{case.name:<46}{result['verdict']:<10}rc={result['rc']!s:<5}"
              f"{result['seconds']:6.1f}s  {' '.join(result['err'])[:110]}", flush=True)
    families = list(dict.fromkeys(r["case"].family for r in results))
    # handled well: clean; poorly: accepted, other, broken; crashed: a traceback or a hang; data lost: lost
    columns = {"handled well": ("clean",), "poorly": ("accepted", "other", "broken"), "crashed": ("traceback", "hang"),
               "data lost": ("lost",)}
    print(f"\n{'family':<26}{'tried':>6}" + "".join(f"{k:>14}" for k in columns))
    for family in families + ["all"]:
        mine = [r for r in results if family in ("all", r["case"].family)]
        count = Counter(r["verdict"] for r in mine)
        print(f"{family:<26}{len(mine):>6}" + "".join(f"{sum(count[v] for v in kinds):>14}"
                                                       for kinds in columns.values()))
    if args.json:
        Path(args.json).write_text(json.dumps([{"family": r["case"].family, "case": r["case"].name,
                                                "verdict": r["verdict"], "rc": r["rc"]} for r in results], indent=1))


if __name__ == "__main__":
    main()
