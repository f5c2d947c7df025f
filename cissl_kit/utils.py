"""Devices, CPU threads and seeds."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import torch

# On the CPU a host-device synchronisation costs nothing, so a few hot spots (SeMi's memory bank,
# the strong view's colour ops) take a shortcut there that needs one: they work on the selected
# rows only. On an accelerator they take a path without any sync. Tests set this to False to run
# that path on the CPU (tests/test_no_sync.py).
CPU_SHORTCUTS = True


def sync_is_free(device: torch.device) -> bool:
    """True where a host-device sync costs nothing: the CPU (unless ``CPU_SHORTCUTS`` is off)."""
    return CPU_SHORTCUTS and device.type == "cpu"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA, then Apple MPS, then the CPU."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be {allowed}; got {device!r}") from error
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be {allowed}; got {str(device)!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r} was asked for but CUDA is not available here; "
                             "use device='auto' or 'cpu'")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device={str(device)!r}: this machine has {count} CUDA device(s), "
                             f"cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                     and torch.backends.mps.is_available()):
        raise ValueError("device='mps' was asked for but Apple MPS is not available here; use device='auto' or 'cpu'")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A torch generator on ``device`` (sampling and augmentation draw from it)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


SMALL_MODELS = ("small_cnn", "mlp")
# the small models' default: 2 threads made a FixMatch step on mnist 1.45× faster than 1 here
# (benchmarks/threads_bench.py); more was not measured (this machine has 2 cores), and the stored
# notebook outputs and reference results were made at 2 or 1 threads, so a bigger machine
# running the kit's defaults reproduces them
SMALL_MODEL_THREADS = 2


def usable_cores() -> int:
    """CPU cores this process may use: its affinity mask, and a cgroup CPU quota where one is set
    (a container or a Colab VM limited to fewer cores than the host has)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _cgroup_cpu_quota() -> float | None:
    """cgroup v2 ``cpu.max`` (or v1 ``cfs_quota_us / cfs_period_us``) in cores, None if unlimited."""
    for path, period_path in (("/sys/fs/cgroup/cpu.max", None),
                              ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            with open(path) as f:
                fields = f.read().split()
            if period_path is not None:
                with open(period_path) as f:
                    fields.append(f.read().strip())
        except OSError:
            continue
        if len(fields) >= 2 and fields[0] not in ("max", "-1"):
            try:
                quota, period = float(fields[0]), float(fields[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    return None


def default_threads(model: str | None = None) -> int:
    """The CPU threads a training run uses unless told otherwise: every usable core, at most
    :data:`SMALL_MODEL_THREADS` for the small models (``small_cnn``, ``mlp``; ``None`` counts as
    small). Not the machine's load: a run's floats depend on its thread count, so a count that
    followed the load would make the same command print other numbers on a busy day. The passive
    OpenMP wait policy (:mod:`cissl_kit._runtime`) is what keeps the default fast under load
    (measured by ``benchmarks/threads_bench.py``: quiet, and at a load of 2× the cores)."""
    cores = usable_cores()
    return min(cores, SMALL_MODEL_THREADS) if model is None or model in SMALL_MODELS else cores


def set_threads(threads: int | None = None, model: str | None = None) -> int:
    """Set torch's CPU threads to ``threads`` (default :func:`default_threads`); returns the count."""
    from ._checks import check_int

    count = default_threads(model) if threads is None else check_int("threads", threads, 1, max_threads())
    torch.set_num_threads(count)
    return count


def max_threads() -> int:
    """The most threads a run may ask for: the usable cores (more only stall the machine)."""
    return usable_cores()
