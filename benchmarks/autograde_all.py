"""Run otter-grader's autograder, as an instructor would, on every notebook: once on the notebook with its worked
solutions (every exercise should score full marks) and once on its hand-out (``--strip-solutions``: every
exercise should score 0, each with a message that says what to fill in). Prints one row per notebook.

    python benchmarks/autograde_all.py [--only 04] [--out /tmp/cissl-autograde]

Not part of CI: otter executes each notebook whole (training included), about twice the notebooks' own time.
``tests/test_grading.py`` runs the same on notebook 04, and nbval runs every check after its solution.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cissl_kit.classroom import strip_solutions
from cissl_kit.grading import checks_of, grade_submission, write_autograder

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="notebooks whose name starts with this (e.g. 04)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/cissl-autograde"))
    args = parser.parse_args(argv)
    notebooks = [p for p in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")) if not args.only
                 or p.name.startswith(args.only)]
    handouts = strip_solutions(notebooks, args.out / "handout", overwrite=True)
    failures = 0
    print(f"{'notebook':<36}{'solutions':>12}{'time':>8}{'hand-out':>12}{'time':>8}  hand-out messages")
    for notebook, handout in zip(notebooks, handouts):
        archive = write_autograder(notebook, args.out / "autograder")
        start = time.perf_counter()
        solved = grade_submission(archive, notebook, args.out / "results" / notebook.stem / "solutions")
        middle = time.perf_counter()
        empty = grade_submission(archive, handout, args.out / "results" / notebook.stem / "handout")
        solved_s, empty_s = middle - start, time.perf_counter() - middle
        score = lambda rows: (sum(s for s, _, _ in rows.values()), sum(m for _, m, _ in rows.values()))
        (got, top), (left, _) = score(solved), score(empty)
        told = sum("is not set" in output or "should hold" in output for _, _, output in empty.values())
        ok = got == top and left == 0 and told == len(empty) and sorted(solved) == sorted(checks_of(notebook))
        failures += not ok
        print(f"{notebook.stem:<36}{f'{got:g}/{top:g}':>12}{solved_s:7.0f}s{f'{left:g}/{top:g}':>12}{empty_s:7.0f}s"
              f"  {told}/{len(empty)} name what to fill in{'' if ok else '  <- FAILED'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
