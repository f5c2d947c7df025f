"""Helpers of the hand-out run (the ``handouts`` fixture of ``tests/conftest.py``), importable by the tests
(``conftest`` itself is not: ``notebooks/conftest.py`` has the same module name)."""

import re
from datetime import datetime


def trains(stored_cell) -> bool:
    """A cell that trains, by its stored output: a progress bar, or training's numbers (its tag)."""
    bars = [o for o in stored_cell.outputs if re.search(r"\d+%\|", "".join(o.get("data", {}).get("text/plain", "")))]
    return bool(bars) or "numbers-vary-by-cpu" in stored_cell.metadata.get("tags", [])


def slow_cells(cells, limit: float = 60.0) -> list[str]:
    """From nbclient's timing metadata: each cell that took over ``limit`` seconds from its request to the kernel's
    idle, or that waited that long after the cell before it, with its times (to locate an intermittent stall)."""
    def at(cell, key):
        stamp = cell.metadata.get("execution", {}).get(key)
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None

    found, previous_idle = [], None
    for cell in cells:
        busy, idle = at(cell, "iopub.status.busy"), at(cell, "iopub.status.idle")
        reply = at(cell, "shell.execute_reply")
        name = f"hand-out cell {cell.source[:60]!r}"
        if busy and idle and (idle - busy).total_seconds() > limit:
            found.append(f"{name}: busy {busy:%H:%M:%S}, reply {reply and f'{reply:%H:%M:%S}'}, idle {idle:%H:%M:%S}")
        if previous_idle and busy and (busy - previous_idle).total_seconds() > limit:
            found.append(f"{name} started {(busy - previous_idle).total_seconds():.0f} s after the one before it "
                         "went idle")
        previous_idle = idle or previous_idle
    return found
