"""The exercises' autograding (otter-grader): every exercise has a check that its worked solution passes and
that its hand-out fails with a message saying what to fill in; the checks' helpers say what is wrong; the
instructor's autograder grades a submitted notebook."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cissl_kit.classroom import ANSWER_TAG, is_solution, strip_solutions
from cissl_kit.engine import TrainResult
from cissl_kit.grading import (
    CHECKS_DIR,
    answer_names,
    answered,
    check_names,
    check_of,
    check_path,
    checks_of,
    expect_change_from_shipped,
    expect_difference,
    expect_keys,
    expect_number,
    expect_run,
    expect_tracker,
    expect_verdict,
    grade_submission,
    shipped_difference,
    verdict_of,
    write_autograder,
)

pytest.importorskip("otter")
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
PASSED = "results: All test cases passed!"


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _text(cell) -> str:
    return "".join(cell["source"])


def _printed(cell) -> str:
    return "".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", ""))
                   for o in cell.get("outputs", []))


# --- the notebooks and their check files ------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_exercise_names_its_answers_and_is_checked_after_its_solution(path):
    cells = _cells(path)
    setup = next(c for c in cells if c["cell_type"] == "code" and "RETRAIN = False" in _text(c))
    assert "grader = otter.Notebook(tests_dir=str(CHECKS_DIR))" in _text(setup)
    exercises = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and _text(c).startswith("**Exercise")]
    assert exercises
    for number, start in enumerate(exercises, 1):
        name = f"{path.stem[:2]}_ex{number}"
        end = start + 1
        while is_solution(cells[end]):
            end += 1
        assert end > start + 1 and check_of(cells[end]) == name, f"exercise {number}: no check after its solution"
        prose = _text(cells[start])
        assert f'`grader.check("{name}")`' in prose
        for answer in answer_names(name):  # the exercise says what each answer holds
            assert f"`{answer}`" in prose.partition("*Your answer:*")[2], f"{name}: {answer} is not named"
    assert checks_of(path) == [f"{path.stem[:2]}_ex{n}" for n in range(1, len(exercises) + 1)]


def test_every_check_file_belongs_to_one_exercise_and_reads_named_answers():
    used = [name for path in NOTEBOOKS for name in checks_of(path)]
    assert sorted(used) == check_names() and len(used) == len(set(used)) >= 20
    for name in check_names():
        source = check_path(name).read_text()
        assert f'name = "{name}"' in source and "OK_FORMAT = False" in source
        assert answer_names(name) and all(re.match(rf"ex{name.rpartition('_ex')[2]}_\w+$", a)
                                          for a in answer_names(name))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_check_passed_on_the_worked_solutions(path):
    """The stored outputs; nbval re-runs each check after its solution and compares (tests/test_notebooks.py)."""
    checks = [c for c in _cells(path) if check_of(c)]
    assert checks and all(_printed(c).strip() == f"{check_of(c)} {PASSED}" for c in checks), \
        [_printed(c) for c in checks if PASSED not in _printed(c)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_hand_out_fails_every_check_until_answered_and_says_what_to_fill_in(path, handouts):
    checks = handouts[path].checks
    assert [check_of(c) for c in checks] == checks_of(path)
    for cell in checks:
        printed = _printed(cell)
        assert not [o for o in cell.outputs if o.output_type == "error"], printed
        assert PASSED not in printed and "Test case failed" in printed, printed
        messages = re.findall(r"AssertionError: (.*)", printed)
        assert messages, f"{check_of(cell)}: a failure that is not a check's message:\n{printed}"
        # the first thing a student reads names an answer to fill in (or the run the exercise asks for)
        assert "is not set" in messages[0] or "should hold" in messages[0], messages[0]


def test_the_autograder_grades_a_submission_full_marks_for_the_solutions_none_for_the_hand_out(tmp_path):
    """otter's own autograder (``otter run``), as the instructor runs it on a submitted notebook: notebook 04 (the
    fastest to execute) with its worked solutions, and its hand-out's set-up, answer and check cells."""
    notebook = ROOT / "notebooks" / "04_alternate_sampling.ipynb"
    archive = write_autograder(notebook, tmp_path / "autograder")
    handout = strip_solutions([notebook], tmp_path / "handout")[0]
    reduced = json.loads(handout.read_text())
    reduced["cells"] = [c for c in reduced["cells"] if c["cell_type"] == "code"
                        and ("RETRAIN = False" in _text(c) or ANSWER_TAG in c["metadata"].get("tags", []) or check_of(c))]
    unanswered = tmp_path / "unanswered.ipynb"
    unanswered.write_text(json.dumps(reduced))
    scores = {label: grade_submission(archive, submission, tmp_path / label)
              for label, submission in (("solutions", notebook), ("hand-out", unanswered))}
    assert json.loads((tmp_path / "solutions" / "results.json").read_text())["tests"]  # otter's own report
    assert sorted(scores["solutions"]) == checks_of(notebook) == sorted(scores["hand-out"])
    assert all(score == top > 0 for score, top, _ in scores["solutions"].values())
    assert all(score == 0 and "is not set" in output for score, top, output in scores["hand-out"].values())


def test_the_instructors_command_writes_the_hand_outs_and_one_autograder_per_notebook(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cissl_kit", "notebooks", "--strip-solutions", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    import zipfile

    for path in NOTEBOOKS:
        archive = tmp_path / "out" / "autograder" / f"{path.stem}.zip"
        assert f"{archive}: otter's autograder for {len(checks_of(path))} exercises" in done.stdout
        names = zipfile.ZipFile(archive).namelist()
        assert sorted(n for n in names if n.startswith("tests/")) == sorted(f"tests/{c}.py" for c in checks_of(path))
    assert "otter run -a" in done.stdout


# --- the helpers' messages ---------------------------------------------------------------------------------------

def test_an_unset_answer_is_named():
    answered(ex1_gain=0.0, ex1_runs={})  # set, even if falsy
    for placeholder in (None, ...):
        with pytest.raises(AssertionError, match="`ex1_gain` is not set"):
            answered(ex1_gain=placeholder)


def test_a_number_must_be_a_finite_number_within_the_tolerance():
    expect_number("x", 2.0, 2.04, 0.05, "the gain")
    for bad in (True, "2", float("nan"), [2.0]):
        with pytest.raises(AssertionError, match="`x` should be a number"):
            expect_number("x", bad, 2.0, 0.05, "the gain")
    with pytest.raises(AssertionError, match=r"`x` = 2.20 is not the gain \(checked to ±0.05\)"):
        expect_number("x", 2.2, 2.0, 0.05, "the gain")


def test_a_dict_answer_needs_exactly_its_keys():
    expect_keys("d", {"a": 1, "b": 2}, ["a", "b"])
    with pytest.raises(AssertionError, match=r"should have the keys \['a', 'b'\]; it has \['a'\]"):
        expect_keys("d", {"a": 1}, ["a", "b"])
    with pytest.raises(AssertionError, match="should be a dict"):
        expect_keys("d", [1, 2], ["a", "b"])


def _rows(diffs, seeds=5):
    """Rows of a baseline at 50 % and a method at 50 % + diff (points) per seed."""
    return ([{"profile": "p", "label": "base", "seed": s, "accuracy": 0.5} for s in range(seeds)]
            + [{"profile": "p", "label": "new", "seed": s, "accuracy": 0.5 + d / 100} for s, d in enumerate(diffs)])


def test_a_paired_difference_must_be_the_grids_or_from_a_retrained_grid_within_its_interval():
    expected = shipped_difference(_rows([1.0, 2.0, 3.0, 4.0, 5.0]), "new", "base")
    answer = (expected["mean"], expected["low"], expected["high"])
    expect_difference("d", answer, expected)
    with pytest.raises(AssertionError, match=r"should be \(mean, low, high\)"):
        expect_difference("d", expected["mean"], expected)
    with pytest.raises(AssertionError, match="the mean should lie between low and high"):
        expect_difference("d", (5.0, 0.0, 1.0), expected)
    with pytest.raises(AssertionError, match="`d`'s mean is not that of the paired difference new − base"):
        expect_difference("d", (answer[0] + 0.2, answer[1], answer[2] + 1), expected)
    # a grid re-trained on another CPU is another draw: its mean within the shipped interval passes
    expect_difference("d", (answer[0] + 0.2, answer[1], answer[2] + 1), expected, retrained=True)
    with pytest.raises(AssertionError, match="outside the shipped grid's interval"):
        expect_difference("d", (expected["high"] + 1, expected["high"], expected["high"] + 2), expected, retrained=True)


def test_a_verdict_follows_the_interval_and_within_noise_is_not_no_effect():
    assert verdict_of((2.0, 0.5, 3.5)) == "gain" and verdict_of((-2.0, -3.5, -0.5)) == "loss"
    assert verdict_of((1.0, -0.5, 2.5)) == "not distinguishable"
    expect_verdict("v", "within noise", (1.0, -0.5, 2.5))  # the kit's own word for it
    with pytest.raises(AssertionError, match="should be one of 'gain', 'loss', 'not distinguishable'"):
        expect_verdict("v", "no effect", (1.0, -0.5, 2.5))
    with pytest.raises(AssertionError, match="needs an interval that excludes 0"):
        expect_verdict("v", "gain", (1.0, -0.5, 2.5))
    with pytest.raises(AssertionError, match="read from a paired difference"):
        expect_verdict("v", "gain", ...)


def _run(**changes) -> TrainResult:
    run = dict(method="fixmatch", hparams={"threshold": 0.95}, config={"steps": 100},
               data={"dataset": "digits", "unlabeled_profile": "reversed"}, history=[], final={}, seconds=1.0)
    run.update(changes)
    return TrainResult(**run)


def test_a_change_is_the_runs_accuracy_minus_the_shipped_run_of_that_method_setting_and_seed():
    rows = [{"label": "daso", "profile": "reversed", "seed": 0, "accuracy": 0.90},
            {"label": "daso", "profile": "reversed", "seed": 1, "accuracy": 0.50},
            {"label": "daso", "profile": "consistent", "seed": 0, "accuracy": 0.10}]
    run = _run(final={"accuracy": 0.93})
    expect_change_from_shipped("ex_change", 3.02, run, rows, "daso", "reversed", 0, "the change")
    with pytest.raises(AssertionError, match=r"`ex_change` = 43.00 is not the change \(checked to ±0.05\)"):
        expect_change_from_shipped("ex_change", 43.0, run, rows, "daso", "reversed", 0, "the change")


@pytest.mark.parametrize("changes, message", [
    ({"method": "semi"}, "trained 'semi'; the exercise asks for 'fixmatch'"),
    ({"interrupted": True}, "was interrupted"),
    ({"config": {"steps": 50}}, "trained 50 steps; train 100"),
    ({"hparams": {"threshold": 0.7}}, "has threshold=0.7; the exercise asks for 0.95"),
    ({"data": {"dataset": "mnist", "unlabeled_profile": "reversed"}}, "data has dataset='mnist'"),
])
def test_a_run_must_be_the_one_the_exercise_asks_for(changes, message):
    wanted = dict(steps=100, hparams={"threshold": 0.95}, dataset="digits", unlabeled_profile="reversed")
    expect_run("r", _run(), "fixmatch", **wanted)
    with pytest.raises(AssertionError, match=re.escape(message)):
        expect_run("r", _run(**changes), "fixmatch", **wanted)
    with pytest.raises(AssertionError, match="should be the TrainResult"):
        expect_run("r", {"method": "fixmatch"}, "fixmatch")


def test_the_check_files_are_named_and_unknown_ones_refused():
    assert CHECKS_DIR.is_dir() and check_names()[0] == "01_ex1"
    assert answer_names("01_ex1") == ["ex1_runs", "ex1_fixmatch_gain", "ex1_right_few"]
    with pytest.raises(ValueError, match="name must be one of 01_ex1, .*; got '09_ex1'"):
        check_path("09_ex1")
    assert math.isfinite(shipped_difference(_rows([1.0, 2.0]), "new", "base")["mean"])
    with pytest.raises(ValueError, match="expected one new − base difference for profile q; found 0"):
        shipped_difference(_rows([1.0, 2.0]), "new", "base", profile="q")


def test_a_notebook_without_checks_has_no_autograder(tmp_path):
    empty = tmp_path / "n.ipynb"
    empty.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}],
                                 "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(ValueError, match="has no check cells"):
        write_autograder(empty, tmp_path / "out")


def test_a_tracker_must_wrap_the_asked_method_and_reach_the_end():
    from cissl_kit.algorithms import FixMatch
    from cissl_kit.analysis import LayerGradientTracker

    tracker = LayerGradientTracker(FixMatch(), every=50)
    tracker.records = [{"step": s, "layer": "head"} for s in range(0, 1000, 50)]  # the last at 950
    expect_tracker("t", tracker, "fixmatch", 1000, every=50)
    with pytest.raises(AssertionError, match="tracks 'fixmatch'; the exercise asks for 'layermatch'"):
        expect_tracker("t", tracker, "layermatch", 1000)
    with pytest.raises(AssertionError, match="records every 50 steps; track every 25"):
        expect_tracker("t", tracker, "fixmatch", 1000, every=25)
    with pytest.raises(AssertionError, match="last record is at step 950: train it for 2000 steps"):
        expect_tracker("t", tracker, "fixmatch", 2000)
    with pytest.raises(AssertionError, match="should be the LayerGradientTracker you trained; got FixMatch"):
        expect_tracker("t", FixMatch(), "fixmatch", 1000)
