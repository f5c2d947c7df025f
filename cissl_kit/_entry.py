"""The ``cissl-kit`` command's entry point: imports the command line (and PyTorch) inside a guard, so
that Ctrl-C in the first seconds ends with one line and exit code 130, not a traceback."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        print("cissl-kit: interrupted while starting; nothing ran", file=sys.stderr)
        return 128 + signal.SIGINT
    return run()
