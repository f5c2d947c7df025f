"""The command line's typo check that runs before PyTorch is imported (2–15 s on a busy machine).

``cli_spec.json`` lists each command's flags, the choices of the flags that have them, and the names
that ``--method`` and ``--profiles`` accept; it is written from the real parser by
:func:`cissl_kit.cli.write_cli_spec` and a test keeps the two equal. :func:`quick_usage_error`
reports a mistyped command, an unknown flag, or an unknown choice or name in one line, as the full
parser would; anything else (and every range check) is left to the full parser.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import takewhile
from pathlib import Path

from ._checks import check_names, did_you_mean

SPEC_PATH = Path(__file__).with_name("cli_spec.json")


def load_spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def quick_usage_error(argv: Sequence[str], spec: dict | None = None) -> str | None:
    """The one-line error for a mistyped command, flag, choice or name in ``argv``, or None where it has none
    of these (the full parser then checks everything). Never an error that the full parser would accept."""
    try:
        spec = spec or load_spec()
    except (OSError, ValueError):  # no spec: the full parser checks everything
        return None
    if not argv or argv[0].startswith("-"):
        return None
    command, rest = argv[0], list(argv[1:])
    commands = spec["commands"]
    if command not in commands:
        listed = ", ".join(map(repr, commands))
        return (f"argument command: invalid choice: {command!r} (choose from {listed})"
                f"{did_you_mean(command, commands)} (see cissl-kit --help)")
    if "-h" in rest or "--help" in rest:
        return None
    options, choices, names = spec["options"][command], spec["choices"][command], spec["names"][command]
    unknown = []
    for i, token in enumerate(rest):
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        flag, equals, value = token.partition("=")
        if not any(option.startswith(flag) for option in options):  # argparse takes unique prefixes too
            # as argparse lists them: the token, then the values that followed it (no flag takes them)
            following = [] if equals else list(takewhile(lambda t: not t.startswith("-"), rest[i + 1:]))
            unknown.append(" ".join([f"{token}{did_you_mean(flag, options)}", *following]))
            continue
        if not equals:
            value = rest[i + 1] if i + 1 < len(rest) and not rest[i + 1].startswith("-") else None
        if value is None or flag not in options:
            continue
        if flag in choices and value not in choices[flag]:
            listed = ", ".join(map(repr, choices[flag]))
            return (f"argument {flag}: invalid choice: {value!r} (choose from {listed})"
                    f"{did_you_mean(value, choices[flag])} (see cissl-kit {command} --help)")
        if flag in names:
            try:
                check_names(value, flag, names[flag])
            except ValueError as error:
                return str(error)
    if unknown:
        return f"unrecognized arguments: {' '.join(unknown)} (see cissl-kit {command} --help)"
    return None
