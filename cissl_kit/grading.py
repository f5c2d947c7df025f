"""Autograded exercises, with otter-grader: one check file per exercise, its public checks run in the
notebook (``grader.check("02_ex1")``) and by otter's autograder on a submitted notebook.

**Answers.** Each exercise names, in its last line, the variables that hold its answer (``ex1_…``: an
``ex`` and the exercise's number). Its check file in :data:`CHECKS_DIR` (``02_ex1.py``: notebook 02,
exercise 1) is an otter exception-based test file: each test case is a function whose parameters are
answer names and notebook variables, looked up in the notebook's namespace. A hand-out holds, instead of
the worked solution, a cell that sets each answer name to ``...`` (:func:`answer_names`).

**Checks that hold on any CPU.** A check compares an answer with the run that the student trained (the
same numbers, read from the student's own :class:`~cissl_kit.engine.TrainResult`), with the shipped grids
(digest-checked files, the same on every machine), or, where the student re-trained a grid
(``RETRAIN = True``: another CPU's runs are other draws), with the shipped grid's interval. No check
compares a freshly trained number with a stored digit.

The helpers below raise ``AssertionError`` with a message that says what is wrong and what the answer
should hold, without giving the number.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .analysis import LayerGradientTracker
from .engine import TrainResult
from .stats import paired_differences

CHECKS_DIR = Path(__file__).resolve().parent / "exercise_checks"
ANSWER_NAME = re.compile(r"^ex\d+_\w+$")
_CHECK_CELL = re.compile(r"^grader\.check\((?P<quote>[\"'])(?P<name>\w+)(?P=quote)\)\s*$")
VERDICTS = ("gain", "loss", "not distinguishable")
_SYNONYMS = {"within noise": "not distinguishable"}


def check_names() -> list[str]:
    """The exercises that have a check file, ``"01_ex1"``, … in order."""
    return sorted(p.stem for p in CHECKS_DIR.glob("[0-9][0-9]_ex*.py"))


def check_path(name: str) -> Path:
    """The check file of exercise ``name`` (``"02_ex1"``); ``ValueError`` names the known ones."""
    if name not in check_names():
        raise ValueError(f"name must be one of {', '.join(check_names())}; got {name!r}")
    return CHECKS_DIR / f"{name}.py"


def answer_names(name: str) -> list[str]:
    """The answer variables that exercise ``name``'s checks read (parameters named ``ex<k>_…``), in order."""
    names: list[str] = []
    for node in ast.parse(check_path(name).read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            names += [a.arg for a in node.args.args if ANSWER_NAME.match(a.arg) and a.arg not in names]
    return names


def check_of(cell: dict) -> str | None:
    """The exercise a notebook cell checks (``grader.check("02_ex1")`` gives ``"02_ex1"``), or None."""
    match = _CHECK_CELL.match("".join(cell["source"])) if cell["cell_type"] == "code" else None
    return match["name"] if match else None


def checks_of(notebook: str | Path) -> list[str]:
    """The checks that notebook ``notebook`` runs, in order."""
    return [name for cell in json.loads(Path(notebook).read_text())["cells"] if (name := check_of(cell))]


def write_autograder(notebook: str | Path, out_dir: str | Path, requirement: str = "cissl_kit") -> Path:
    """Write otter's autograder for ``notebook``, ``out_dir/<notebook's stem>.zip``: its checks (only its own,
    so that a submission is graded on its exercises) and a ``requirements.txt`` with ``requirement``.

    Grade a student's notebook with it: ``otter run -a out_dir/02_….zip submission.ipynb`` (otter executes the
    notebook, then runs each check on what it left: one score per exercise, in ``results.json``)."""
    import shutil
    import tempfile

    from otter.generate import main as otter_generate

    names = checks_of(notebook)
    if not names:
        raise ValueError(f"{notebook} has no check cells (grader.check(...)): nothing to grade")
    out = Path(out_dir) / f"{Path(notebook).stem}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        tests = Path(staging) / "tests"
        tests.mkdir()
        for name in names:
            shutil.copy(check_path(name), tests / f"{name}.py")
        requirements = Path(staging) / "requirements.txt"
        requirements.write_text(requirement + "\n")
        otter_generate(tests_dir=str(tests), output_path=str(out), no_config=True, requirements=str(requirements),
                       no_environment=True)
    return out


# -- the helpers the check files use ------------------------------------------------------------------------------

def answered(**answers: Any) -> None:
    """Each answer is set: not ``...`` (the hand-out's placeholder) and not missing."""
    for name, value in answers.items():
        assert value is not None and value is not ..., (
            f"`{name}` is not set: assign your answer to it (the exercise's last line says what it holds), "
            "then run this check again")


def expect_number(name: str, value: Any, expected: float, tolerance: float, what: str) -> None:
    """``value`` is a finite number within ``tolerance`` of ``expected``; ``what`` says what it should be."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), (
        f"`{name}` should be a number ({what}); got {value!r}")
    assert abs(value - expected) <= tolerance, f"`{name}` = {value:.2f} is not {what} (checked to ±{tolerance:g})"


def expect_keys(name: str, value: Any, keys: Sequence) -> None:
    """``value`` is a mapping with exactly ``keys``."""
    assert isinstance(value, Mapping), f"`{name}` should be a dict with the keys {list(keys)}; got {type(value).__name__}"
    assert set(value) == set(keys), f"`{name}` should have the keys {list(keys)}; it has {list(value)}"


def _is_difference(answer: Any) -> bool:
    """``answer`` has the shape of a paired difference: three finite numbers."""
    return (isinstance(answer, (tuple, list)) and len(answer) == 3
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in answer))


def expect_difference(name: str, answer: Any, expected: Mapping, retrained: bool = False) -> None:
    """``answer`` is a paired difference ``(mean, low, high)`` in points, as :func:`paired_differences` gives it.

    Read from the shipped grid (``retrained`` false) it is that grid's to 0.05; from a grid re-trained on this
    machine its mean lies within the shipped grid's interval."""
    assert _is_difference(answer), (
        f"`{name}` should be (mean, low, high): a paired difference in points and its 95% interval, as "
        f"paired_differences gives them; got {answer!r}")
    mean, low, high = answer
    assert low <= mean <= high, f"`{name}` = {tuple(answer)}: the mean should lie between low and high"
    what = (f"{expected['method']} − {expected['baseline']} ({expected['metric']}, {expected['profile']} unlabeled "
            f"data, {expected['seeds']} seeds)")
    if retrained:
        assert expected["low"] - 0.05 <= mean <= expected["high"] + 0.05, (
            f"`{name}`'s mean {mean:.2f} is outside the shipped grid's interval of {what}: is it that difference?")
    else:
        for part, value in zip(("mean", "low", "high"), answer):
            assert abs(value - expected[part]) <= 0.05, f"`{name}`'s {part} is not that of the paired difference {what}"


def verdict_of(difference: Sequence[float]) -> str:
    """``"gain"``, ``"loss"`` or ``"not distinguishable"`` (the interval covers 0) of ``(mean, low, high)``."""
    _, low, high = difference
    return "not distinguishable" if low <= 0 <= high else ("gain" if low > 0 else "loss")


def expect_verdict(name: str, verdict: Any, difference: Sequence[float]) -> None:
    """``verdict`` is one of :data:`VERDICTS` and the one that ``difference``'s interval gives."""
    assert _is_difference(difference), (
        f"`{name}` is read from a paired difference (mean, low, high); set that first")
    verdict = _SYNONYMS.get(verdict, verdict) if isinstance(verdict, str) else verdict
    assert verdict in VERDICTS, f"`{name}` should be one of {', '.join(map(repr, VERDICTS))}; got {verdict!r}"
    assert verdict == verdict_of(difference), (
        f"`{name}` = {verdict!r} does not match the interval: a gain or loss needs an interval that excludes 0; "
        "an interval that covers 0 is not distinguishable at this scale (which is not 'no effect')")


def expect_run(name: str, run: Any, method: str, steps: int | None = None, hparams: Mapping | None = None,
               **data: Any) -> None:
    """``run`` is a finished :class:`TrainResult` of ``method`` with these hyper-parameters, ``steps`` and data
    settings (keys of ``run.data``: ``dataset``, ``unlabeled_profile``, …)."""
    assert isinstance(run, TrainResult), f"`{name}` should be the TrainResult that Trainer(...).fit() returns; got {run!r}"
    assert run.method == method, f"`{name}` trained {run.method!r}; the exercise asks for {method!r}"
    assert not run.interrupted, f"`{name}` was interrupted: train it to the end"
    if steps is not None:
        assert run.config["steps"] == steps, f"`{name}` trained {run.config['steps']} steps; train {steps} as above"
    for key, value in (hparams or {}).items():
        assert run.hparams.get(key) == value, f"`{name}` has {key}={run.hparams.get(key)!r}; the exercise asks for {value!r}"
    for key, value in data.items():
        assert run.data.get(key) == value, f"`{name}`'s data has {key}={run.data.get(key)!r}; the exercise asks for {value!r}"


def expect_change_from_shipped(name: str, change: Any, run: Any, rows: Sequence[dict], label: str, profile: str,
                               seed: int, what: str) -> None:
    """``change`` is ``run``'s test accuracy minus that of the shipped run of ``label`` (``profile``, ``seed``) in
    ``rows``, in points, to 0.05; ``what`` says which difference, for the message."""
    shipped = next(r for r in rows if r["label"] == label and r["profile"] == profile and r["seed"] == seed)
    expect_number(name, change, 100 * (run.final["accuracy"] - shipped["accuracy"]), 0.05, what)


def expect_tracker(name: str, tracker: Any, method: str, steps: int, every: int | None = None) -> None:
    """``tracker`` is a :class:`~cissl_kit.analysis.LayerGradientTracker` around ``method`` (recording ``every``
    steps, if given) that was trained ``steps`` steps to the end."""
    assert isinstance(tracker, LayerGradientTracker), (
        f"`{name}` should be the LayerGradientTracker you trained; got {type(tracker).__name__}")
    assert tracker.name == method, f"`{name}` tracks {tracker.name!r}; the exercise asks for {method!r}"
    if every is not None:
        assert tracker.every == every, f"`{name}` records every {tracker.every} steps; track every {every}"
    last = max((r["step"] for r in tracker.records), default=-1)
    assert last >= steps - tracker.every, f"`{name}`'s last record is at step {last}: train it for {steps} steps"


def grade_submission(archive: str | Path, submission: str | Path, out_dir: str | Path) -> dict[str, tuple]:
    """Run otter's autograder (``otter run``) on one submitted notebook; results in ``out_dir/results.json``.
    Returns ``{exercise: (score, max_score, output)}``; ``RuntimeError`` if otter itself fails."""
    import subprocess
    import sys

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(archive), "-o", str(out_dir), "--no-logo",
                           str(submission)], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"otter run failed on {submission}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    tests = json.loads((Path(out_dir) / "results.json").read_text())["tests"]
    return {t["name"]: (t["score"], t["max_score"], t.get("output", "")) for t in tests if "score" in t}


def shipped_difference(rows: Sequence[dict], method: str, baseline: str, metric: str = "accuracy",
                       profile: str | None = None) -> dict:
    """The paired difference ``method − baseline`` in ``rows`` (one profile: ``profile`` or the only one)."""
    found = [d for d in paired_differences(rows, baseline, metric)
             if d["method"] == method and (profile is None or d["profile"] == profile)]
    if len(found) != 1:
        raise ValueError(f"expected one {method} − {baseline} difference for profile {profile}; found {len(found)}")
    return found[0]


__all__ = ["CHECKS_DIR", "VERDICTS", "check_names", "check_path", "answer_names", "check_of", "checks_of",
           "write_autograder", "grade_submission", "answered", "expect_number", "expect_keys", "expect_difference", "verdict_of",
           "expect_verdict", "expect_run", "expect_change_from_shipped", "expect_tracker", "shipped_difference"]
