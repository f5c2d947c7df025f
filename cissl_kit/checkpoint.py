"""Checkpoint files: atomic writes and safe, checked reads.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, written with
``torch.save`` to a temporary file next to the target and renamed over it (a kill mid-write
leaves the previous checkpoint intact). It is read with ``torch.load(weights_only=True)``, which
refuses anything that could execute code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .distributed import is_main
from .outputs import is_regular_file, remove_orphans

FORMAT = "cissl_kit-checkpoint"
# 3: a SHA-256 digest of every tensor and one of the whole state (every number, string and list too);
# 2 had the tensor digests only, 1 none: neither can be verified, so neither is read
VERSION = 3

# training-loop settings that may differ between the interrupted and the resumed run
RESUME_MAY_CHANGE = ("progress", "checkpoint", "checkpoint_every", "log_every", "eval_batch_size", "compile")


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``state`` (tagged with the format and version) to ``path`` atomically; only rank 0
    writes under torchrun."""
    path = Path(path)
    if not is_main():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        remove_orphans(path)
        torch.save({"format": FORMAT, "version": VERSION, **state, "digests": tensor_digests(state),
                    "state_digest": state_digest(state)}, temporary)
        os.replace(temporary, path)  # atomic on POSIX and Windows
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, kind: str, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` for ``kind`` (``"trainer"`` or a recipe's name).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for one that
    is corrupt, truncated, not a checkpoint, from a newer version, or of another kind.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; to start afresh leave out --resume")
    if not is_regular_file(path):
        raise ValueError(f"checkpoint {path} is not a regular file (a folder, device, FIFO or socket)")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as error:
        raise ValueError(f"checkpoint {path} cannot be read safely (corrupt, truncated, or holding objects other "
                         f"than tensors and plain data): {_first_line(error)}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} was not written by cissl_kit (it has no 'format': {FORMAT!r} entry)")
    version = state.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise ValueError(f"checkpoint {path} has version {version!r}; this cissl_kit reads version {VERSION} "
                         "(upgrade cissl_kit)")
    if version < VERSION:
        raise ValueError(f"checkpoint {path} has version {version}, written by an older cissl_kit without a digest of "
                         "every field; it cannot be verified: start afresh")
    if state.get("kind") != kind:
        raise ValueError(f"checkpoint {path} holds a {state.get('kind')!r} run; this run needs a {kind!r} checkpoint")
    check_digests(path, state)
    check_fields(path, state)
    return state


def tensor_digests(state: Mapping[str, Any]) -> dict[str, str]:
    """SHA-256 of every tensor in ``state`` (its dtype, shape and bytes), keyed by its path ``a/b/c``."""
    return {name: _digest(tensor) for name, tensor in _tensors(state)}


def state_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 of the whole state: its structure and every value, each tensor by its own digest."""
    def canonical(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return {"tensor": _digest(value)}
        if isinstance(value, Mapping):
            return {"dict": [[repr(k), canonical(v)] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return {type(value).__name__: [canonical(v) for v in value]}
        return repr(value)  # numbers (NaN included), strings, None, booleans: exactly, with their type

    return hashlib.sha256(json.dumps(canonical(state)).encode()).hexdigest()


def check_digests(path: str | Path, state: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose tensors or other fields were altered after it was written, and one whose
    network weights hold NaN or infinite values."""
    saved = state.get("digests")
    if not isinstance(saved, dict):
        raise ValueError(f"checkpoint {path} has no tensor digests; it was altered or written by another program")
    body = {k: v for k, v in state.items() if k not in ("format", "version", "digests", "state_digest")}
    current = tensor_digests(body)
    for name in sorted(set(saved) | set(current)):
        if saved.get(name) != current.get(name):
            what = "is missing" if name not in current else "was added" if name not in saved else \
                "does not match the digest written with it"
            raise ValueError(f"checkpoint {path} is corrupted: tensor {name!r} {what}; "
                             "resume from an intact copy or start afresh")
    if state.get("state_digest") != state_digest(body):
        raise ValueError(f"checkpoint {path} is corrupted or was edited: its fields do not match the digest written "
                         "with them; resume from an intact copy or start afresh")
    for name, tensor in _tensors(state):
        if name.split("/")[0] in ("net", "ema_net") and tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ValueError(f"checkpoint {path}: tensor {name!r} holds NaN or infinite values; "
                             "resume from an earlier checkpoint or start afresh")


def check_fields(path: str | Path, state: Mapping[str, Any]) -> None:
    """Refuse fields of the wrong type, counters out of range, and a final result that is not the last
    evaluation's (what an edit with recomputed digests would still leave)."""
    def bad(what: str) -> ValueError:
        return ValueError(f"checkpoint {path} is malformed: {what}; resume from an intact copy or start afresh")

    for name in ("hparams", "config", "data", "final"):
        if name in state and not isinstance(state[name], dict):
            raise bad(f"{name!r} must be a dict, not a {type(state[name]).__name__}")
    if "history" in state and not (isinstance(state["history"], list)
                                   and all(isinstance(row, dict) for row in state["history"])):
        raise bad("'history' must be a list of dicts")
    total = (state.get("config") or {}).get("steps")
    for name in ("step", "log_steps", "steps_done"):
        if name in state:
            value = state[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or \
                    (name == "step" and isinstance(total, int) and value > total):
                limit = f"0..{total}" if name == "step" and isinstance(total, int) else ">= 0"
                raise bad(f"{name!r} must be an integer {limit}, got {value!r}")
    seconds = state.get("seconds", 0.0)
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise bad(f"'seconds' must be a finite number >= 0, got {seconds!r}")
    history, final = state.get("history") or [], state.get("final") or {}
    if history and final:
        last = history[-1]
        differ = [k for k in ("accuracy", "balanced_accuracy", "step") if k in last and k in final
                  and _normalised(last[k]) != _normalised(final[k])]
        if differ:
            raise bad(f"its final {', '.join(differ)} differ from its last evaluation's")


def _tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensors(item, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}/{i}")


def _digest(tensor: torch.Tensor) -> str:
    data = tensor.detach().cpu().contiguous()
    hasher = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    if data.numel():
        hasher.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def peek_checkpoint(path: str | Path) -> dict:
    """``kind``, ``method`` and ``step`` of a checkpoint file, for messages (``{}`` if unreadable or not a
    regular file: a FIFO is never opened)."""
    if not is_regular_file(Path(path)):
        return {}
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file: nothing to say about it
        return {}
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return {}
    step = state.get("step")
    if step is None and isinstance(state.get("records"), list):  # a recipe: finished stages
        step = state.get("steps_done")
    return {"kind": state.get("kind"), "method": state.get("method", state.get("kind")), "step": step,
            "total": (state.get("config") or {}).get("steps")}


def data_identity(data: Any) -> dict:
    """What a checkpoint records of its :class:`~cissl_kit.data.SSLData`, to refuse resuming on other data."""
    return {**data.settings, "num_classes": data.num_classes, "labeled_counts": list(data.labeled_counts),
            "num_images": int(data.images.shape[0])}


def check_resumable(source: str, state: Mapping[str, Any], hparams: Mapping[str, Any], data: Any,
                    config: Mapping[str, Any] | None = None) -> None:
    """Refuse ``state`` unless it was made with these hyper-parameters, this data and (when given)
    these training-loop settings, apart from ``RESUME_MAY_CHANGE``."""
    for name in ("hparams", "config", "data"):
        if not isinstance(state.get(name) or {}, Mapping):
            raise ValueError(f"{source} is malformed: {name!r} must be a dict, not a {type(state[name]).__name__}")
    check_same(source, "hyper-parameters", state.get("hparams") or {}, hparams)
    if config is not None:
        check_same(source, "training-loop settings", state.get("config") or {}, config, ignore=RESUME_MAY_CHANGE)
    check_same(source, "data", state.get("data") or {}, data_identity(data))


@contextmanager
def fits_this_run(source: str) -> Iterator[None]:
    """Turn a missing entry or a mismatched tensor while loading ``source`` into a ValueError naming it."""
    try:
        yield
    except (KeyError, RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"{source} does not fit this run ({type(error).__name__}: {_first_line(error)})") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_same(path: str | Path, what: str, saved: Mapping[str, Any], current: Mapping[str, Any],
               ignore: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` listing the entries of ``what`` in which the checkpoint and this run differ."""
    keys = sorted((set(saved) | set(current)) - set(ignore))
    differ = [f"{k}: checkpoint {saved.get(k)!r}, this run {current.get(k)!r}" for k in keys
              if _normalised(saved.get(k)) != _normalised(current.get(k))]
    if differ:
        raise ValueError(f"checkpoint {path} was written with other {what}; resume with the same ones or start "
                         f"afresh. Differences: " + "; ".join(differ))


def _normalised(value: Any) -> Any:
    """Tuples as lists, so settings compare equal after a save / load round trip."""
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    return value
