"""First contact and failure: every help page prints; bad input is refused in one line with exit
code 2 before any work starts; an interrupted run never passes for a finished one (exit 128 +
the signal); damaged files are named; a stalled torchrun rank stops the others in bounded time.

Signals and exit codes are tested in subprocesses: a small driver patches ``Trainer.train_step``
to send the signal to its own process at a chosen step, so the interruption lands inside training
every time.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from cissl_kit import __version__
from cissl_kit import benchmark as bench
from cissl_kit.cli import main
from cissl_kit.engine import TrainConfig, Trainer
from cissl_kit.registry import build_algorithm, train
from cissl_kit.stats import summary_table

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "6", "--eval-every", "3", "--no-progress"]


# -- help pages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["benchmark", "--help"], ["split", "--help"],
                                  ["notebooks", "--help"]])
def test_every_help_page_prints(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage: cissl-kit")
    if argv[0] == "notebooks":
        assert "--strip-solutions OUT_DIR" in out and "--check-quotes" in out and "--overwrite" in out
    if argv[0] == "train":  # every hyper-parameter is there, and a help text with a % sign prints whole
        assert "--ac-period" in out and "1% of training" in out and "--dist-timeout" in out and "--debug" in out


def test_version_and_help_from_a_fresh_process():
    done = subprocess.run([sys.executable, "-m", "cissl_kit", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == f"cissl-kit {__version__}"
    for sub in ("train", "benchmark"):
        done = subprocess.run([sys.executable, "-m", "cissl_kit", sub, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0 and "usage:" in done.stdout and not done.stderr


# -- bad input: one line, exit 2, nothing trained ------------------------------------------------
BAD_INPUT = {
    "method with capitals": (["train", "--method", "SeMi"], "unknown name 'SeMi' (did you mean 'semi'?)"),
    "profile misspelt": (["train", "--unlabeled-profile", "reverse"], "did you mean 'reversed'?"),
    "misspelt flag": (["train", "--tresholt", "0.9"], "unrecognized arguments: --tresholt (did you mean '--threshold'?)"),
    "dataset with capitals": (["train", "--dataset", "Digits"], "invalid choice: 'Digits'"),
    "seeds not numbers": (["benchmark", "--seeds", "x"], "--seeds must be integers >= 0 separated by commas"),
    "negative seed": (["benchmark", "--seeds", "0,-1"], "--seeds must be integers in [0, 9223372036854775807], got -1"),
    "a seed twice": (["benchmark", "--seeds", "0,0"], "--seeds names seed 0 more than once"),
    "no profiles": (["benchmark", "--profiles", ""], "--profiles needs at least one of consistent"),
    "a profile twice": (["benchmark", "--profiles", "uniform,uniform"], "--profiles names uniform more than once"),
    "resume without checkpoint": (["train", "--resume"], "--resume needs --checkpoint"),
    "threshold of the second method": (["train", "--method", "supervised,fixmatch", "--threshold", "5"],
                                       "--method fixmatch: threshold must be a number in [0, 1], got 5.0"),
    "threads -1": (["train", "--threads", "-1"], "--threads must be an integer in [1, "),
    "threads 10^12": (["train", "--threads", str(10**12)], "(the cores this process may use), got 1000000000000"),
    "empty checkpoint path": (["train", "--checkpoint", ""], "checkpoint must be a file path"),
    "no mps here": (["train", "--device", "mps"], "Apple MPS is not available here"),
    "meta device": (["train", "--device", "meta"], "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got 'meta'"),
    "bank of 10^12 slots": (["train", "--method", "semi", "--bank-slots", str(10**12)],
                            "a memory bank of 10 classes × 1,000,000,000,000 slots"),
    "batch 10^8": (["train", "--batch-size", str(10**8)], "lower batch_size (CLI: --batch-size)"),
    "batch 10^12": (["train", "--batch-size", str(10**12)], "more than the"),
    "zero steps": (["train", "--steps", "0"], "steps must be an integer >= 1, got 0"),
    "zero timeout": (["train", "--dist-timeout", "0"], "--dist-timeout must be a number of seconds in (0, 604800], got 0"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_exit_2_before_any_work(case, tmp_path, capsys, monkeypatch):
    argv, message = BAD_INPUT[case]

    def no_training(self, *args, **kwargs):
        raise AssertionError("training started before the bad input was found")

    monkeypatch.setattr(Trainer, "train_step", no_training)
    assert main([argv[0], *FAST, *argv[1:], "--out", str(tmp_path / "out")]) == 2  # the case's flags win
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cissl-kit: error: "), err
    assert message in err, err
    assert not list((tmp_path / "out").rglob("*.json")), "a refused run wrote results"


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["train", "--steps", "0", "--out", str(tmp_path), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("cissl-kit: error: --steps must be")


@pytest.mark.parametrize("flag,make,message", [
    ("--out", lambda p: p.write_text("x"), "is a file, not a folder"),
    ("--out", None, "cannot write there"),  # under /proc
    ("--checkpoint", lambda p: p.mkdir(), "is a folder; give a file in it"),
    ("--checkpoint", None, "cannot write there"),
])
def test_unusable_output_paths_are_refused_before_training(flag, make, message, tmp_path, capsys, monkeypatch):
    target = tmp_path / "target"
    if make is not None:
        make(target)
    else:
        target = Path("/proc/cissl-kit-test/x.pt")
    monkeypatch.setattr(Trainer, "train_step", lambda *a, **k: pytest.fail("trained before the path check"))
    argv = ["train", *FAST, "--out", str(tmp_path / "runs"), flag, str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_fresh_run_never_overwrites_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "ck.pt"
    assert main(["train", "--method", "fixmatch", *FAST, "--checkpoint", str(path), "--out", str(tmp_path)]) == 0
    before = path.read_bytes()
    assert main(["train", "--method", "supervised", *FAST, "--checkpoint", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run (fixmatch, step 6 of 6); add --resume to continue it or --overwrite" in err
    assert path.read_bytes() == before
    assert main(["train", "--method", "supervised", *FAST, "--checkpoint", str(path), "--out", str(tmp_path),
                 "--overwrite"]) == 0
    assert torch.load(path, weights_only=True)["method"] == "supervised"
    assert main(["train", "--method", "fixmatch", *FAST, "--checkpoint", str(path), "--resume",
                 "--out", str(tmp_path)]) == 2
    assert "ck.pt holds a supervised run; it cannot continue as fixmatch" in capsys.readouterr().err


def test_a_run_folder_with_results_is_not_overwritten(tmp_path, capsys):
    argv = ["train", "--method", "supervised", *FAST, "--out", str(tmp_path), "--name", "run"]
    assert main(argv) == 0
    before = (tmp_path / "run" / "results.json").read_text()
    assert main(argv) == 2
    assert "already holds a finished run's results; choose another --name or add --overwrite" in capsys.readouterr().err
    assert (tmp_path / "run" / "results.json").read_text() == before
    assert main(argv + ["--overwrite"]) == 0


def test_a_diverging_run_fails_in_one_line_with_exit_1(tmp_path, capsys):
    assert main(["train", "--lr", "1e30", *FAST, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "became non-finite within steps" in err and "lower lr" in err


# -- interruptions: real signals, real exit codes ------------------------------------------------
DRIVER = textwrap.dedent("""
    import os, signal, sys
    from cissl_kit import engine
    from cissl_kit.cli import main
    at, signum = int(os.environ["STOP_AT_CALL"]), int(os.environ["STOP_SIGNAL"])
    original, calls = engine.Trainer.train_step, [0]
    def train_step(self, batch=None):
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signum)
        return original(self, batch)
    engine.Trainer.train_step = train_step
    sys.exit(main(sys.argv[1:]))
""")


def _run_with_signal(tmp_path, argv, at_call, signum):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "STOP_AT_CALL": str(at_call), "STOP_SIGNAL": str(int(signum)), "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, str(driver), *argv], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=600)


GRID = ["benchmark", "--method", "supervised,fixmatch", "--profiles", "consistent", "--seeds", "0",
        "--steps", "20", "--eval-every", "10", "--no-progress", "--out", "grid", "--jobs", "1"]


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_benchmark_cell_is_never_stored_as_finished(signum, code, tmp_path):
    done = _run_with_signal(tmp_path, GRID, at_call=20 + 7, signum=signum)  # supervised has 20 steps: fixmatch's 7th
    assert done.returncode == code, done.stderr[-2000:]
    assert "cissl-kit: interrupted: fixmatch · consistent · seed 0 stopped at step 6 of 20" in done.stderr
    assert "| consistent | fixmatch | 0 (+1 interrupted) |" in done.stdout
    cells = sorted(p.name for p in (tmp_path / "grid" / "cells").glob("*.json"))
    assert cells == ["supervised--consistent--seed0.json"]  # the finished cell only
    rows = json.loads((tmp_path / "grid" / "results.json").read_text())
    assert [(r["label"], bool(r.get("interrupted"))) for r in rows] == [("supervised", False), ("fixmatch", True)]
    # running the same command again trains the interrupted cell anew and reuses the finished one
    again = subprocess.run([sys.executable, "-m", "cissl_kit", *GRID], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(list((tmp_path / "grid" / "cells").glob("*.json"))) == 2
    assert "| consistent | fixmatch | 1 |" in again.stdout


def test_an_interrupted_train_marks_its_result_and_trains_nothing_after_it(tmp_path):
    argv = ["train", "--method", "supervised,fixmatch", "--steps", "20", "--eval-every", "10", "--no-progress",
            "--out", "runs", "--name", "r", "--checkpoint", "ck.pt", "--checkpoint-every", "5"]
    done = _run_with_signal(tmp_path, argv, at_call=13, signum=signal.SIGINT)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "supervised [interrupted at step 12]" in done.stdout
    assert "cissl-kit: interrupted: supervised stopped at step 12 of 20" in done.stderr
    assert "not trained: fixmatch" in done.stderr
    results = json.loads((tmp_path / "runs" / "r" / "results.json").read_text())
    assert [(r["method"], r["interrupted"]) for r in results] == [("supervised", True)]
    saved = torch.load(tmp_path / "ck-supervised.pt", weights_only=True)  # the checkpoint of step 10
    assert saved["step"] == 10 and saved["seconds"] > 0  # a mid-run checkpoint records the time spent so far


def test_a_damaged_cell_file_is_named_and_trained_again(tmp_path):
    config = TrainConfig(steps=6, eval_every=3, progress=False)
    first = bench.run_grid(["supervised"], ["consistent"], [0], config=config, out=tmp_path, progress=False)
    path = next((tmp_path / "cells").glob("*.json"))
    path.write_text(path.read_text()[:100])  # cut short, as by a kill mid-write
    with pytest.warns(UserWarning, match=f"benchmark cell {path} is damaged .*; training it again"):
        again = bench.run_grid(["supervised"], ["consistent"], [0], config=config, out=tmp_path, progress=False)
    same = ("accuracy", "per_class", "confusion")
    assert [{k: r[k] for k in same} for r in again] == [{k: r[k] for k in same} for r in first]
    assert json.loads(path.read_text())["row"]["per_class"] == first[0]["per_class"]  # stored whole again


def test_labeled_only_methods_train_once_per_seed_and_stand_in_every_profile(tmp_path, monkeypatch):
    config = TrainConfig(steps=6, eval_every=3, progress=False)
    fits = []
    original = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self, *a: fits.append(self.algorithm.name) or original(self, *a))
    rows = bench.run_grid(["supervised", "fixmatch"], ["consistent", "reversed"], [0], config=config, out=tmp_path,
                          progress=False)
    assert fits == ["supervised", "fixmatch", "fixmatch"]
    sup = [r for r in rows if r["label"] == "supervised"]
    assert [r["profile"] for r in sup] == ["consistent", "reversed"] and sup[1]["same_run_as"] == "consistent"
    assert sup[0]["per_class"] == sup[1]["per_class"]
    alone = bench.run_grid(["supervised"], ["reversed"], [0], config=config, progress=False)[0]
    assert alone["per_class"] == sup[1]["per_class"] and alone["accuracy"] == sup[1]["accuracy"]  # bit-identical
    assert "supervised: trained on the labeled set alone, once per seed" in summary_table(rows)


# -- checkpoints carry digests ------------------------------------------------------------------
def test_altered_or_nan_checkpoint_weights_are_refused_naming_the_entry(digits, tmp_path):
    from cissl_kit.checkpoint import state_digest, tensor_digests

    path = tmp_path / "ck.pt"
    train("fixmatch", digits, steps=4, progress=False, checkpoint=str(path))
    state = torch.load(path, weights_only=True)
    state["net"]["head.weight"][0, 0] += 1e-4
    torch.save(state, tmp_path / "altered.pt")
    trainer = Trainer(build_algorithm("fixmatch"), digits, steps=8, progress=False)
    with pytest.raises(ValueError, match=r"is corrupted: tensor 'net/head.weight' does not match the digest"):
        trainer.resume(tmp_path / "altered.pt")
    state["net"]["head.weight"][0, 0] = float("nan")
    body = {k: v for k, v in state.items() if k not in ("format", "version", "digests", "state_digest")}
    state["digests"], state["state_digest"] = tensor_digests(body), state_digest(body)  # digests made to match
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"tensor 'net/head.weight' holds NaN or infinite values"):
        trainer.resume(tmp_path / "nan.pt")
    assert trainer.step == 0


# -- torchrun: a stalled rank ---------------------------------------------------------------------
STALL = textwrap.dedent("""
    import os, signal, sys
    from cissl_kit import engine
    from cissl_kit.cli import main
    original, calls = engine.Trainer.train_step, [0]
    def train_step(self, batch=None):
        calls[0] += 1
        if calls[0] == 5 and os.environ["RANK"] == "1":
            os.kill(os.getpid(), signal.SIGSTOP)  # this rank stalls: alive, but it never answers again
        return original(self, batch)
    engine.Trainer.train_step = train_step
    sys.exit(main(sys.argv[1:]))
""")


def test_a_stalled_torchrun_rank_stops_the_others_in_bounded_time(tmp_path):
    driver = tmp_path / "stall.py"
    driver.write_text(STALL)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(driver),
               "train", "--dataset", "toy2d", "--steps", "40", "--eval-every", "20", "--device", "cpu",
               "--no-progress", "--out", str(tmp_path), "--dist-timeout", "8"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    try:
        _, err = process.communicate(timeout=240)
    finally:  # the stopped rank: continue it so that it can die, then end the whole group
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
    assert process.returncode != 0
    assert "cissl-kit: error: rank 0 of 2: no answer from rank 1 within the process-group timeout" in err and "--dist-timeout sets the limit" in err, err[-3000:]
    assert time.perf_counter() - start < 240


def test_interrupt_outside_training_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the split is made (before any cell trains): exit 130, no cell file."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "make_ssl_data", interrupted)
    assert main(["benchmark", "--method", "supervised", "--profiles", "consistent", *FAST, "--jobs", "1",
                 "--out", str(tmp_path)]) == 130
    assert "interrupted before any result was complete" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))
