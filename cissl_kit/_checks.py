"""Argument checks that name the parameter and the allowed range in every error."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

GIB = 1024**3


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name`` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer{_range_text(minimum, maximum)}, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{_range_text(minimum, maximum)}, got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float, or raise naming ``name`` and the allowed interval."""
    interval = _interval_text(minimum, maximum, min_inclusive, max_inclusive)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number {interval}, got {value!r}")
    value = float(value)
    too_low = minimum is not None and (value < minimum or (not min_inclusive and value == minimum))
    too_high = maximum is not None and (value > maximum or (not max_inclusive and value == maximum))
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"{name} must be a number {interval}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False, else raise naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_names(text: str, flag: str, allowed: Iterable[str]) -> list[str]:
    """The names of a comma-separated list: at least one, each one of ``allowed``, none twice; else raise
    ``ValueError`` naming ``flag`` (and the closest allowed name)."""
    allowed = tuple(allowed)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"{flag} needs at least one of {', '.join(allowed)}; got {text!r}")
    for name in names:
        if name not in allowed:
            raise ValueError(f"{flag}: unknown name {name!r}{did_you_mean(name, allowed)}; choose from {', '.join(allowed)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{flag} names {', '.join(twice)} more than once")
    return names


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them (and the closest one)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}{did_you_mean(value, choices)}")
    return value


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` (case-insensitive), or ``""``."""
    if not isinstance(value, str):
        return ""
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    if value.lower() in lower:
        return f" (did you mean {lower[value.lower()]!r}?)"
    close = difflib.get_close_matches(value.lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def memory_bytes(device: Any = "cpu") -> int | None:
    """Memory of ``device`` available now, in bytes (on the CPU: what Linux calls MemAvailable, else the
    free pages; on CUDA: the device's free memory), or ``None`` where unknown."""
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return None


def check_fits_in_memory(what: str, needed: float, device: Any, advice: str) -> None:
    """Raise ``ValueError`` when ``needed`` bytes exceed the memory available on ``device``."""
    available = memory_bytes(device)
    if available is not None and needed > available:
        raise ValueError(f"{what} needs at least {format_bytes(needed)}, more than the {format_bytes(available)} of "
                         f"memory available on {device}; {advice}")


def format_bytes(count: float) -> str:
    for unit, size in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", GIB), ("MiB", 1024**2)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count / 1024:.1f} KiB"


def _range_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _interval_text(minimum, maximum, min_inclusive: bool, max_inclusive: bool) -> str:
    low = "(-inf" if minimum is None else ("[" if min_inclusive else "(") + f"{minimum:g}"
    high = "inf)" if maximum is None else f"{maximum:g}" + ("]" if max_inclusive else ")")
    return f"in {low}, {high}"
