"""``torchrun --nproc_per_node 2 -m cissl_kit train …`` with gloo on the CPU against one process.

Tolerances: with a network without BatchNorm (the MLP on toy2d) every rank's share of the same
global batch and DDP's gradient average reproduce the single process up to float summation order,
so every logged loss agrees to 1e-4 (relative) and accuracy to one test point in a hundred. With
BatchNorm (the small CNN on digits) each rank normalises its half-batch, so the runs differ a
little: overall accuracy within 4 points.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(tmp_path, name: str, processes: int, *flags: str) -> tuple[list[dict], str]:
    command = ["-m", "cissl_kit", "train", *flags, "--device", "cpu", "--no-progress", "--out", str(tmp_path),
               "--name", name]
    if processes > 1:
        command = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *command]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // processes))}
    for _ in range(2):  # once more if the free port torchrun picked was taken before it bound it
        done = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=900)
        if done.returncode == 0 or not any(s in done.stderr for s in ("EADDRINUSE", "address already in use")):
            break
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / name / "results.json").read_text()), done.stdout


def test_two_gloo_processes_match_one_process_without_batchnorm(tmp_path):
    processes = 2
    flags = ("--dataset", "toy2d", "--method", "supervised,fixmatch", "--steps", "100", "--eval-every", "50",
             "--checkpoint", str(tmp_path / "ck.pt"))
    many, out = _train(tmp_path, "many", processes, *flags)
    one, _ = _train(tmp_path, "one", 1, *flags[:-2])
    assert f"{processes} processes" in out and out.count("results, history and figures") == 1  # rank 0 prints
    assert sorted(p.name for p in tmp_path.glob("ck-*.pt")) == ["ck-fixmatch.pt", "ck-supervised.pt"]
    for a, b in zip(many, one, strict=True):
        assert [r["step"] for r in a["history"]] == [r["step"] for r in b["history"]]
        for row_a, row_b in zip(a["history"], b["history"]):
            for key in ("loss", "loss_s", "loss_u"):
                if key in row_b:
                    assert row_a[key] == pytest.approx(row_b[key], rel=1e-4, abs=1e-6), (a["method"], key)
        assert abs(a["final"]["accuracy"] - b["final"]["accuracy"]) <= 0.01
        if "utilization" in b["final"]:  # pseudo-label counts are summed over the ranks
            assert a["final"]["utilization"] == pytest.approx(b["final"]["utilization"], abs=0.01)


def test_two_gloo_processes_match_one_process_on_digits(tmp_path):
    flags = ("--method", "supervised,fixmatch", "--steps", "200", "--eval-every", "100")
    many, _ = _train(tmp_path, "many", 2, *flags)
    one, _ = _train(tmp_path, "one", 1, *flags)
    for a, b in zip(many, one, strict=True):
        assert abs(a["final"]["accuracy"] - b["final"]["accuracy"]) <= 0.04, a["method"]


def test_torchrun_needs_a_batch_size_the_processes_can_share(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cissl_kit",
               "train", "--dataset", "toy2d", "--steps", "4", "--batch-size", "15", "--device", "cpu", "--no-progress",
               "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    assert "batch_size must be a multiple of the number of processes (2)" in done.stderr
