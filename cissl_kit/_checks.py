"""Argument checks that name the parameter and the allowed range in every error."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any


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


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


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
