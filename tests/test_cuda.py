"""CUDA correctness: every method trains on the GPU, checkpoints move between GPU and CPU, AMP on and
off and torch.compile give finite losses, no step waits for the host, and two processes train with
nccl. Marked ``cuda``; skipped, saying why, where no GPU is present (``pytest -m cuda`` runs them)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cissl_kit import make_ssl_data, train
from cissl_kit.engine import Trainer
from cissl_kit.registry import ALGORITHMS, METHODS, build_algorithm

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")]
ROOT = Path(__file__).resolve().parents[1]
QUICK = dict(steps=12, eval_every=6, log_every=3, progress=False)


@pytest.fixture(scope="module")
def gpu_digits():
    return make_ssl_data("digits", device="cuda")


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_on_the_gpu(method, gpu_digits):
    result = train(method, gpu_digits, **QUICK)
    assert 0.0 <= result.final["accuracy"] <= 1.0
    assert all(math.isfinite(v) for row in result.history for k, v in row.items()
               if k.startswith("loss") and isinstance(v, float))
    assert next(result.net.parameters()).is_cuda


@pytest.mark.parametrize("amp", [True, False])
def test_amp_on_and_off_give_finite_losses(amp, gpu_digits):
    trainer = Trainer(build_algorithm("semi"), gpu_digits, amp=amp, **QUICK)
    assert trainer.use_amp == amp
    result = trainer.fit()
    assert math.isfinite(result.history[-1]["loss"])


def test_compiled_step_trains(gpu_digits):
    result = train("fixmatch", gpu_digits, compile=True, **QUICK)
    assert math.isfinite(result.history[-1]["loss"])


@pytest.mark.parametrize("method", list(ALGORITHMS))
def test_no_step_waits_for_the_host(method, gpu_digits):
    trainer = Trainer(build_algorithm(method), gpu_digits, **QUICK)
    batch = trainer.next_batch()
    trainer.train_step(batch)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_checkpoint_written_on_the_gpu_resumes_on_the_cpu_and_back(tmp_path, gpu_digits):
    on_gpu = Trainer(build_algorithm("semi"), gpu_digits, **QUICK)
    for _ in range(6):
        on_gpu.train_step()
    on_gpu.save_checkpoint(tmp_path / "gpu.pt")
    on_cpu = Trainer(build_algorithm("semi"), make_ssl_data("digits", device="cpu"), **QUICK)
    with pytest.warns(UserWarning, match="another device type"):  # the sampling stream restarts
        on_cpu.resume(tmp_path / "gpu.pt")
    assert on_cpu.step == 6 and not next(on_cpu.net.parameters()).is_cuda
    for _ in range(3):
        on_cpu.train_step()
    on_cpu.save_checkpoint(tmp_path / "cpu.pt")
    back = Trainer(build_algorithm("semi"), gpu_digits, **QUICK)
    with pytest.warns(UserWarning, match="another device type"):
        back.resume(tmp_path / "cpu.pt")
    assert back.step == 9 and next(back.net.parameters()).is_cuda
    result = back.fit()
    assert result.final["step"] == 12 and math.isfinite(result.history[-1]["loss"])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_processes_train_with_nccl(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cissl_kit",
               "train", "--method", "fixmatch", "--steps", "20", "--eval-every", "10", "--device", "cuda",
               "--no-progress", "--out", str(tmp_path), "--name", "nccl"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stdout and (tmp_path / "nccl" / "results.json").is_file()
