"""Multi-process training with ``torchrun`` (DistributedDataParallel: gloo on the CPU, nccl on CUDA).

Every rank draws the same global batch (its sampler and augmentation generators are seeded
alike) and trains on its own contiguous share of it, so no two ranks see the same sample in a
step and N ranks with ``batch_size`` B follow one process with batch size B. DDP averages the
gradients (and broadcasts rank 0's BN buffers), so the networks stay identical; the logged
losses and pseudo-label counts are reduced across ranks, evaluation is sharded and gathered,
and only rank 0 prints and writes files. Algorithm state (memory bank, adaptive thresholds) is
kept per rank, from its share of each batch.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._checks import check_float
from .utils import resolve_device


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: the process group's once it is joined, before that torchrun's ``RANK``."""
    return dist.get_rank() if initialized() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that prints and writes files."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


DEFAULT_TIMEOUT = 300  # seconds a rank waits for the others in a collective before it gives up
MAX_TIMEOUT = 7 * 24 * 3600  # a week: longer waits are a typo (and overflow the backends' timers)


class PeerLost(RuntimeError):
    """Another process of the group stalled or died: no answer within the process-group timeout."""


def init_from_env(device: str = "auto", timeout: float = DEFAULT_TIMEOUT) -> str:
    """Join the process group ``torchrun`` set up (gloo on the CPU, nccl on CUDA); the device to use.

    A rank that waits more than ``timeout`` seconds for the others in a collective (one stalled or
    died) stops with :class:`PeerLost`. Outside ``torchrun`` it changes nothing and returns ``device``.
    """
    check_float("timeout", timeout, 0.0, MAX_TIMEOUT, min_inclusive=False)
    if not launched_by_torchrun():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device).type == "cuda"  # (MPS has no process-group backend: the CPU)
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout))
        except (RuntimeError, TimeoutError) as error:  # DistStoreError and its kin: a rank never joined
            raise PeerLost(f"the {os.environ.get('WORLD_SIZE', '?')} torchrun processes did not all join within "
                           f"{timeout:g} s (one stalled or died before training: {' '.join(str(error).split())[:160]}); start "
                           "the run again (see --dist-timeout)") from error
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"


def finish() -> None:
    """Wait until every rank got here (rank 0 has written its files), so that no rank tears the
    group down while another still uses it."""
    if initialized():
        with peers_answer():
            dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_divisible(batch_size: int) -> None:
    """Each rank takes an equal share of the global batch."""
    if batch_size % world_size():
        raise ValueError(f"batch_size must be a multiple of the number of processes ({world_size()}) "
                         f"under torchrun, got {batch_size}")


def all_reduce_(tensor: Tensor, op: str = "sum") -> Tensor:
    """Sum (or ``"mean"``) ``tensor`` over ranks in place."""
    if initialized():
        with peers_answer():
            dist.all_reduce(tensor)
        if op == "mean":
            tensor /= world_size()
    return tensor


@contextlib.contextmanager
def peers_answer() -> Iterator[None]:
    """Turn a collective's failure (a stalled or dead rank, past the timeout) into :class:`PeerLost`."""
    try:
        yield
    except RuntimeError as error:  # gloo / nccl report a lost peer as a RuntimeError (DistBackendError)
        lost = re.search(r"time[d ]?out|connection|closed|peer|recv|send|broken pipe|reset", str(error), re.I)
        if not initialized() or isinstance(error, PeerLost) or not lost:
            raise
        raise PeerLost(f"rank {rank()} of {world_size()}: {lost_peer_text(error)}") from error


def lost_peer_text(error: BaseException) -> str:
    """What a rank says when a collective failed: which peer, if the backend named it, and why."""
    text = " ".join(str(error).split())
    peer = re.search(r"rank[ :=]*(\d+)", text, re.I)
    if peer and int(peer.group(1)) != rank():
        named = f"rank {peer.group(1)}"
    else:  # gloo does not say which peer went silent; with two processes it can only be the other one
        named = f"rank {1 - rank()}" if world_size() == 2 else "another rank"
    return (f"no answer from {named} within the process-group timeout (it stalled or died; "
            f"--dist-timeout sets the limit): {text[:200]}")


def gather_rows(local: Tensor, total: int) -> Tensor:
    """Concatenate every rank's rows (rank order), where rank r holds ``torch.arange(total).tensor_split(N)[r]``."""
    if not initialized():
        return local
    sizes = [len(part) for part in torch.arange(total).tensor_split(world_size())]
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    with peers_answer():
        dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def local_rows(tensor: Tensor | None) -> Tensor | None:
    """This rank's contiguous block of rows (of a global batch, or for :func:`gather_rows`); all of
    ``tensor`` in one process."""
    if tensor is None or not initialized():
        return tensor
    return tensor.tensor_split(world_size())[rank()]


class TrainingStep(nn.Module):
    """The algorithm's training step as a module, so DDP sees every use of the network's parameters
    (algorithms call ``features`` and heads directly, which DDP would not see on a wrapped network)."""

    def __init__(self, algorithm, net: nn.Module) -> None:
        super().__init__()
        self.algorithm, self.net = algorithm, net

    def forward(self, batch, ctx):
        return self.algorithm.training_step(self.net, batch, ctx)


def wrap_training_step(algorithm, net: nn.Module, device: torch.device):
    """A DDP-wrapped training step with the algorithm's signature ``(net, batch, ctx)``."""
    ddp = nn.parallel.DistributedDataParallel(
        TrainingStep(algorithm, net), device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,  # a frozen backbone, LDAM's bias-free cosine head …
    )
    return lambda _net, batch, ctx: ddp(batch, ctx)
