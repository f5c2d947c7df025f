"""Devices and seeds."""

from __future__ import annotations

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
