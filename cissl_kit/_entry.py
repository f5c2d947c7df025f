"""The ``cissl-kit`` command's entry point: reports a typo before PyTorch is imported
(:mod:`cissl_kit._quick_usage`), then imports the command line inside a guard, so that Ctrl-C in the
first seconds ends with one line and exit code 130, not a traceback."""

from __future__ import annotations

import signal
import sys


def main(argv: list[str] | None = None) -> int:
    from ._quick_usage import quick_usage_error

    # a typo is reported before PyTorch loads (seconds on a busy machine); the rest is the full parser's
    mistake = quick_usage_error(sys.argv[1:] if argv is None else argv)
    if mistake is not None:
        print(f"cissl-kit: error: {mistake}", file=sys.stderr)
        return 2
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        print("cissl-kit: interrupted while starting; nothing ran", file=sys.stderr)
        return 128 + signal.SIGINT
    return run(argv)
