"""Nothing lost, nothing overwritten that is not the kit's own (issue 24): output paths claimed and checked
before any work, one process per run folder and checkpoint, atomic results files, checkpoints covered by
a digest of every field, dataset files read without running their code, and the small faults."""

import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cissl_kit import FixMatch, cli, distributed, outputs
from cissl_kit.cli import build_parser, main
from cissl_kit.data import load_dataset
from cissl_kit.engine import Trainer
from cissl_kit.registry import train

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "6", "--eval-every", "3", "--no-progress"]


def _no_training(monkeypatch):
    monkeypatch.setattr(Trainer, "train_step", lambda *a, **k: pytest.fail("training started before the check"))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cissl-kit: error: "), err
    return err


# -- 1. --overwrite replaces only the kit's own files and folders ---------------------------------------
def test_overwrite_never_replaces_a_device_a_fifo_or_a_text_file(tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    fifo = tmp_path / "f.pt"
    os.mkfifo(fifo)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    for path, message in ((Path("/dev/null"), "is not a regular file"), (fifo, "is not a regular file"),
                          (notes, "is not a cissl-kit checkpoint; it is never replaced")):
        assert main(["train", *FAST, "--checkpoint", str(path), "--overwrite", "--out", str(tmp_path / "o")]) == 2
        assert message in _one_error_line(capsys)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert notes.read_text() == "my notes"


@pytest.mark.parametrize("name,message", [("..", "must be one folder name"), ("a/b", "must be one folder name"),
                                          (".", "must be one folder name"), ("x" * 256, "at most 255 bytes")])
def test_a_run_name_is_one_plain_folder_name(name, message, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    assert main(["train", *FAST, "--out", str(tmp_path / "out"), "--name", name]) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_folder_the_kit_did_not_make_is_never_written_into(tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    mine = tmp_path / "out" / "thesis"
    mine.mkdir(parents=True)
    (mine / "results.json").write_text("my own results")
    for extra in ([], ["--overwrite"]):
        assert main(["train", *FAST, "--out", str(tmp_path / "out"), "--name", "thesis", *extra]) == 2
        assert "already holds files that cissl-kit did not write" in _one_error_line(capsys)
    assert (mine / "results.json").read_text() == "my own results"
    grid = tmp_path / "grid"
    grid.mkdir()
    (grid / "summary.md").write_text("mine")
    assert main(["benchmark", *FAST, "--method", "supervised", "--profiles", "consistent", "--out", str(grid)]) == 2
    assert "already holds files that cissl-kit did not write" in _one_error_line(capsys)


# -- 2. one process per run folder, grid folder and checkpoint ----------------------------------------
SLOW = textwrap.dedent("""
    import sys, time
    from cissl_kit import engine
    from cissl_kit.cli import main
    original = engine.Trainer.train_step
    def train_step(self, batch=None):
        time.sleep(0.05)
        return original(self, batch)
    engine.Trainer.train_step = train_step
    sys.exit(main(sys.argv[1:]))
""")


def _start_slow(tmp_path, argv):
    driver = tmp_path / "slow.py"
    driver.write_text(SLOW)
    return subprocess.Popen([sys.executable, str(driver), *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_for(condition, seconds=120):
    end = time.time() + seconds
    while time.time() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize("kind", ["name", "checkpoint", "grid"])
def test_a_second_process_is_refused_at_once_and_the_first_loses_nothing(kind, tmp_path, capsys, monkeypatch):
    if kind == "grid":
        argv = ["benchmark", "--method", "supervised", "--profiles", "consistent", "--steps", "60", "--jobs", "1",
                "--no-progress", "--out", "grid"]
        marker = tmp_path / "grid" / outputs.MARKER
    else:
        argv = ["train", "--method", "supervised", "--steps", "60", "--eval-every", "30", "--no-progress",
                "--out", "runs", "--name", "r", "--checkpoint", "ck.pt"]
        marker = tmp_path / "runs" / "r" / outputs.MARKER
    first = _start_slow(tmp_path, argv)
    try:
        _wait_for(lambda: marker.exists() and json.loads(marker.read_text())["status"] == "running")
        second = list(argv)
        if kind == "checkpoint":
            second[second.index("r")] = "other-name"  # another run folder, the same checkpoint
        monkeypatch.chdir(tmp_path)
        _no_training(monkeypatch)
        started = time.perf_counter()
        assert main(second + ["--overwrite"] * (kind != "grid")) == 2
        assert time.perf_counter() - started < 10
        assert "is in use by another cissl-kit process (pid" in _one_error_line(capsys)
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    if kind == "grid":
        assert len(json.loads((tmp_path / "grid" / "results.json").read_text())) == 1
    else:
        assert json.loads((tmp_path / "runs" / "r" / "results.json").read_text())[0]["final"]["step"] == 60
        assert torch.load(tmp_path / "ck.pt", weights_only=True)["step"] == 60


# -- 3. results written whole, and output faults before training --------------------------------------
def test_a_full_disk_at_the_end_fails_in_one_line_and_leaves_no_half_file(tmp_path, capsys, monkeypatch):
    argv = ["train", "--method", "supervised", *FAST, "--out", str(tmp_path), "--name", "r"]
    assert main(argv) == 0
    before = (tmp_path / "r" / "results.json").read_text()
    real = outputs.write_atomic

    def full_disk(path, data):
        if Path(path).name == "history.csv":
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(outputs, "write_atomic", full_disk)
    assert main(argv + ["--overwrite", "--checkpoint", str(tmp_path / "c.pt")]) == 1
    err = _one_error_line(capsys)
    assert "could not be written" in err and "No space left on device" in err and "c.pt holds the trained" in err
    json.loads((tmp_path / "r" / "results.json").read_text())  # whole: the new file, written before the fault
    assert (tmp_path / "r" / "results.json").read_text() != before
    assert not list((tmp_path / "r").glob(".*.tmp"))


# -- 5. dataset files are read without running their code, and checked before training -------------------
class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _cifar10(root: Path, *, data=None, labels=None, meta=None, payload=False):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {b"data": np.zeros((20, 3072), np.uint8) if data is None else data,
                 b"labels": list(range(10)) * 2 if labels is None else labels}
        if payload:
            entry[b"batch_label"] = _Payload()
        with open(base / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{k}".encode() for k in range(10)] if meta is None else meta}, f)


@pytest.mark.parametrize("kind,message", [
    ("payload", "refers to posix.system"),
    ("label 10", "labels must lie in 0..9, found 0..10"),
    ("negative label", "labels must lie in 0..9, found -1..9"),
    ("float labels", "labels must be a list of integers"),
    ("too few labels", "it has 19 labels for 20 images"),
    ("meta of 9 classes", "it names 9 classes, not 10"),
    ("images not 3x32x32", "images must be uint8 rows of 3×32×32 bytes"),
])
def test_a_bad_cifar_file_is_refused_before_anything_runs(kind, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels = {"label 10": [10] + list(range(1, 10)) * 2 + [0], "negative label": [-1] + list(range(1, 10)) + list(range(10)),
              "float labels": [float(i % 10) for i in range(20)], "too few labels": list(range(10)) + list(range(9))}.get(kind)
    _cifar10(tmp_path, labels=labels, payload=kind == "payload",
             meta=[b"x"] * 9 if kind == "meta of 9 classes" else None,
             data=np.zeros((20, 100), np.uint8) if kind == "images not 3x32x32" else None)
    with pytest.raises(ValueError, match="is not a readable cifar10 file") as raised:
        load_dataset("cifar10", root=tmp_path)
    assert message in str(raised.value)
    assert not (tmp_path / "PWNED").exists()


# -- 6. SIGTERM in a CReST+ generation ----------------------------------------------------------------
def test_an_interrupt_in_the_first_crest_generation_writes_its_results(tmp_path, capsys, monkeypatch):
    original, calls = Trainer.train_step, [0]

    def train_step(self, batch=None):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    assert main(["train", "--method", "crest_plus", *FAST, "--generations", "2", "--out", str(tmp_path),
                 "--name", "c"]) == 130
    err = capsys.readouterr().err
    assert "crest_plus stopped in its generation 1, after 0 finished generations" in err
    assert json.loads((tmp_path / "c" / "results.json").read_text())[0]["interrupted"] is True


# -- 7. checkpoints: every field under the digest, counters in range, regular files only ------------------
@pytest.fixture
def checkpoint(digits, tmp_path):
    path = tmp_path / "ck.pt"
    train("fixmatch", digits, steps=6, eval_every=3, progress=False, checkpoint=str(path))
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda s: s["final"].update(accuracy=0.999), "its fields do not match the digest"),
    (lambda s: s.update(step=5), "its fields do not match the digest"),
    (lambda s: s.update(version=1), "written by an older cissl_kit"),
    (lambda s: s.update(version=2), "written by an older cissl_kit"),
])
def test_an_edited_checkpoint_is_refused(edit, message, checkpoint, digits):
    state = torch.load(checkpoint, weights_only=True)
    edit(state)
    torch.save(state, checkpoint)
    with pytest.raises(ValueError, match=message):
        Trainer(FixMatch(), digits, steps=8, progress=False).resume(checkpoint)


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.update(step=-3), "'step' must be an integer 0..6, got -3"),
    (lambda s: s.update(step=10**9), "'step' must be an integer 0..6"),
    (lambda s: s.update(hparams=[1, 2]), "'hparams' must be a dict, not a list"),
    (lambda s: s["final"].update(accuracy=0.999), "its final accuracy differ from its last evaluation's"),
])
def test_an_edited_checkpoint_with_digests_made_to_match_is_refused(edit, message, checkpoint, digits):
    from cissl_kit.checkpoint import state_digest, tensor_digests

    state = torch.load(checkpoint, weights_only=True)
    edit(state)
    body = {k: v for k, v in state.items() if k not in ("format", "version", "digests", "state_digest")}
    state["digests"], state["state_digest"] = tensor_digests(body), state_digest(body)
    torch.save(state, checkpoint)
    with pytest.raises(ValueError, match="is malformed") as raised:
        Trainer(FixMatch(), digits, steps=8, progress=False).resume(checkpoint)
    assert message in str(raised.value)


def test_a_text_file_or_a_fifo_as_checkpoint_gives_one_line(tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    text = tmp_path / "t.pt"
    text.write_text("hello")
    fifo = tmp_path / "f.pt"
    os.mkfifo(fifo)
    for path in (text, fifo):
        started = time.perf_counter()
        assert main(["train", *FAST, "--checkpoint", str(path), "--resume", "--out", str(tmp_path / "o")]) == 2
        assert time.perf_counter() - started < 30  # a FIFO is never opened
        _one_error_line(capsys)


def test_an_orphaned_temporary_checkpoint_is_removed(tmp_path, digits):
    path = tmp_path / "ck.pt"
    orphan = tmp_path / ".ck.pt.999999.tmp"  # a process that died mid-write (no such pid)
    orphan.write_bytes(b"half")
    train("supervised", digits, steps=3, progress=False, checkpoint=str(path))
    assert path.is_file() and not orphan.exists()


# -- 8. every generated flag takes a valid value -----------------------------------------------------
def test_every_flag_takes_a_valid_value():
    parser = build_parser()
    for command in ("train", "benchmark"):
        sub = parser.subcommands[command]
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or action.dest in ("help",):
                continue
            flag = action.option_strings[-1]
            if action.choices:
                value = str(list(action.choices)[0])
            elif action.type is int:
                value = "256"
            elif action.type is float:
                value = "0.5"
            else:
                value = "x"
            args, extra = parser.parse_known_args([command, flag, value])
            assert not extra and getattr(args, action.dest) is not None, flag
    args = parser.parse_args(["train", "--eval-batch-size", "256"])
    assert args.eval_batch_size == 256


# -- 9. an interrupted run's own folder takes its resume -----------------------------------------------
def test_an_interrupted_run_resumes_under_its_own_name(tmp_path, capsys, monkeypatch):
    argv = ["train", "--method", "fixmatch", "--steps", "12", "--eval-every", "6", "--no-progress",
            "--out", str(tmp_path), "--name", "r", "--checkpoint", str(tmp_path / "ck.pt"), "--checkpoint-every", "4"]
    original, calls = Trainer.train_step, [0]

    def train_step(self, batch=None):
        calls[0] += 1
        if calls[0] == 7:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    assert main(argv) == 130
    monkeypatch.setattr(Trainer, "train_step", original)
    capsys.readouterr()
    assert main(argv) == 2
    assert "add --resume to continue it" in _one_error_line(capsys)  # (the checkpoint is checked first)
    assert main(argv + ["--resume"]) == 0
    assert json.loads((tmp_path / "r" / "results.json").read_text())[0]["final"]["step"] == 12


# -- 10. the smaller ones ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,message", [
    (["train", "--dist-timeout", "1e300"], "--dist-timeout must be a number of seconds in (0, 604800]"),
    (["train", "--method", "daso", "--queue-size", str(10**12)], "lower queue_size (CLI: --queue-size)"),
    (["train", "--seed", str(2**64)], "--seed must be an integer in [0, 9223372036854775807]"),
    (["train", "--method", "crest_plus", "--generations", "1000"], "generations must be at most steps"),
    (["train", "--threads", "999"], "(the cores this process may use), got 999"),
])
def test_the_smaller_bad_inputs_name_their_flag(argv, message, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    assert main([argv[0], *FAST, *argv[1:], "--out", str(tmp_path)]) == 2
    assert message in _one_error_line(capsys)


def test_memory_checks_use_the_memory_available_now():
    from cissl_kit._checks import memory_bytes

    available = memory_bytes("cpu")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert available is not None and 0 < available <= total


def test_a_group_that_never_forms_is_one_line(monkeypatch):
    import torch.distributed as dist

    def never(*args, **kwargs):
        store_error = getattr(dist, "DistStoreError", RuntimeError)  # torch < 2.3: a plain RuntimeError
        raise store_error("Timed out after 5 seconds waiting for clients. 1/2 clients joined.")

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(dist, "init_process_group", never)
    with pytest.raises(distributed.PeerLost, match="did not all join within 5 s"):
        distributed.init_from_env("cpu", 5)


def test_ctrl_c_while_importing_is_one_line_and_exit_130(tmp_path):
    driver = tmp_path / "d.py"
    driver.write_text(textwrap.dedent("""
        import sys
        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, Interrupt())
        from cissl_kit._entry import main
        sys.exit(main())
    """))
    done = subprocess.run([sys.executable, str(driver), "train"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 130 and done.stderr == "cissl-kit: interrupted while starting; nothing ran\n"


def test_ctrl_c_after_the_results_were_written_says_so(tmp_path, capsys, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "finish", interrupted)
    assert main(["train", "--method", "supervised", *FAST, "--out", str(tmp_path), "--name", "r"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted after its results were written to {tmp_path / 'r'}" in err
    assert "nothing was saved" not in err


def test_an_edited_cell_row_is_trained_again(tmp_path):
    from cissl_kit import TrainConfig
    from cissl_kit import benchmark as bench

    config = TrainConfig(steps=4, eval_every=2, progress=False)
    bench.run_grid(["supervised"], ["consistent"], [0], config=config, out=tmp_path, progress=False)
    path = next((tmp_path / "cells").glob("*.json"))
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "row": {}}))
    with pytest.warns(UserWarning, match="its row has no label, profile"):
        rows = bench.run_grid(["supervised"], ["consistent"], [0], config=config, out=tmp_path, progress=False)
    assert rows[0]["label"] == "supervised"


def test_messages_say_what_they_mean(tmp_path, capsys):
    from cissl_kit.engine import TrainResult

    alternate = TrainResult("alternate", {}, {"steps": 1500}, {}, [{"stage": "init"}], {"step": 40}, 1.0, True)
    assert cli._interrupted_text(alternate) == "alternate stopped in its stage 2, after 1 finished stage"
    fixmatch = TrainResult("fixmatch", {}, {"steps": 20}, {}, [], {"step": 6}, 1.0, True)
    assert cli._interrupted_text(fixmatch) == "fixmatch stopped at step 6 of 20"

