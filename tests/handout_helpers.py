"""Helpers of the hand-out run (the ``handouts`` fixture of ``tests/conftest.py``), importable by the tests
(``conftest`` itself is not: ``notebooks/conftest.py`` has the same module name)."""

import re
from datetime import datetime
from queue import Empty
from time import monotonic


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


def sliced_waits(get_msg, slice_s: float = 1.0):
    """``get_msg(timeout)`` (a kernel channel's) as waits of at most ``slice_s`` seconds until ``timeout``
    (None: until a message comes): each slice ends by checking the socket (see :func:`run_in_sliced_waits`)."""
    async def get(timeout=None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            step = slice_s if deadline is None else max(0.0, min(slice_s, deadline - monotonic()))
            try:
                return await get_msg(timeout=step)
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise
    return get


def run_in_sliced_waits(notebook, **options) -> None:
    """Execute ``notebook`` with nbclient, its waits for the kernel's messages cut into 1 s slices.

    A zmq.asyncio socket can miss the wake-up of a message that has arrived (pyzmq's edge-triggered
    file descriptor; zeromq/pyzmq#1558, #2173); the wait then lasts until its timeout, whose last check
    finds the message. In the hand-out run that was a ~300 s idle (nbclient's cell timeout) in several
    CI runs; caught on 2026-12-07: notebook 03's ``panel`` cell went idle, and the next cell started
    298 s later, without a timeout error. Short slices end in that same check every second, so a
    missed wake-up costs ≤ 1 s."""
    import nbclient

    class Client(nbclient.NotebookClient):
        async def async_start_new_kernel_client(self):
            client = await super().async_start_new_kernel_client()
            for channel in (client.shell_channel, client.iopub_channel):
                channel.get_msg = sliced_waits(channel.get_msg)
            return client

    Client(notebook, **options).execute()
