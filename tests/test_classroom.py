"""Classroom material: every exercise has a worked solution, the hand-out copies without them are
right, and every figure the notebooks' prose quotes matches the stored output it comes from."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from handout_helpers import sliced_waits, slow_cells

from cissl_kit.classroom import (
    ANSWER_TAG,
    FOLDED,
    HANDOUT_NOTE,
    NUMBERS_VARY_TAG,
    check_quotes,
    is_solution,
    printed_figures,
    quote,
    same_but_numbers,
    solution_count,
    strip_solutions,
)
from cissl_kit.grading import answer_names, check_of

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _notebook(*cells):
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _code(printed: str, tags=()):
    return {"cell_type": "code", "source": "...", "metadata": {"tags": list(tags)}, "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]}


def _markdown(text: str, given=None, tags=()):
    metadata = {"tags": list(tags)}
    if given is not None:
        metadata["cissl_kit"] = {"given": given}
    return {"cell_type": "markdown", "source": text, "metadata": metadata}


def _check(tmp_path, *cells):
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(_notebook(*cells)))
    return check_quotes(path)


# --- the prose-number check ------------------------------------------------------------------------

def test_quote_prints_lines_that_the_check_reads(capsys):
    quote(gain=2.96, loss=-1.04, share=71.94)
    quote(cosine=0.333, digits=2)
    printed = capsys.readouterr().out
    figures = printed_figures(_notebook(_code(printed)))
    assert figures == {"gain": "3.0", "loss": "-1.0", "share": "71.9", "cosine": "0.33"}


def test_quote_refuses_what_it_could_not_print_checkably():
    with pytest.raises(ValueError, match="figure gain must be a finite number"):
        quote(gain=float("nan"))
    with pytest.raises(ValueError, match="digits must be an integer in"):
        quote(digits=9, gain=1.0)
    with pytest.raises(ValueError, match="at least one figure"):
        quote()


def test_a_marked_figure_that_matches_its_output_passes(tmp_path):
    out = _code("Figures quoted in the text:\n  · gain = 3.0\n  · loss = -1.4\n  · used = 71.9\n  · n = 2\n")
    text = ("Grad-ReLU lifts FixMatch by 3.0<!--q:gain--> points (about 3<!--q:gain-->), it loses "
            "1.4<!--q:loss--> or −1.4<!--q:loss-->, uses 72%<!--q:used--> and two<!--q:n--> more.")
    assert _check(tmp_path, out, _markdown(text)) == []


def test_a_rerun_that_changes_a_figure_fails_until_the_prose_is_updated(tmp_path):
    text = "Grad-ReLU lifts FixMatch by 3.0<!--q:gain--> points."
    problems = _check(tmp_path, _code("  · gain = 2.4\n"), _markdown(text))
    assert len(problems) == 1 and "cell 1" in problems[0] and "3.0" in problems[0] and "2.4" in problems[0]


@pytest.mark.parametrize("written, printed", [("+1.4", "-1.4"), ("3.05", "3.0"), ("72%", "71.4"), ("three", "2.0")])
def test_a_wrong_sign_extra_digits_or_a_wrong_rounding_fails(tmp_path, written, printed):
    assert _check(tmp_path, _code(f"  · x = {printed}\n"), _markdown(f"by {written}<!--q:x--> points"))


def test_a_mark_without_a_printed_figure_fails(tmp_path):
    problems = _check(tmp_path, _code("  · gain = 3.0\n"), _markdown("by 3.0<!--q:gian--> points"))
    assert len(problems) == 1 and "'gian'" in problems[0]


def test_an_unmarked_number_fails_unless_given(tmp_path):
    """Every number of the prose is quoted from an output or listed as a constant of the text: a decimal, a
    percentage, a signed gain, a count (not only the numbers that look like results)."""
    text = ("τ = 0.95 keeps 72% of them, a gain of +1.4; `0.7` in code and $0.5$ in maths are not prose; 1,000 steps; "
            "Table 5 of the paper (2023) is a reference.")
    problems = _check(tmp_path, _markdown(text))
    assert sorted(p.split(": ")[1].split(" ")[0] for p in problems) == ["+1.4", "0.95", "1,000", "72%"]
    assert _check(tmp_path, _markdown(text, given=["0.95", "72%", "+1.4", "1,000"])) == []


def test_a_figure_printed_twice_with_different_values_is_reported(tmp_path):
    problems = _check(tmp_path, _code("  · gain = 3.0\n"), _code("  · gain = 2.0\n"), _markdown("text"))
    assert len(problems) == 1 and "printed twice" in problems[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_the_prose_quotes_matches_the_stored_output(path):
    """Re-reads the stored outputs: a re-run that changes a quoted number fails here until the prose
    (and its mark) is updated; a new decimal, percentage or signed number must be marked or declared given."""
    assert check_quotes(path) == []


# --- training cells re-run on another CPU ---------------------------------------------------------

TABLE = ("method                 accuracy   few\n"
         "supervised                 85.2   74.8\n"
         "FixMatch (reversed)        95.0   93.0\n"
         "Figures quoted in the text:\n  · gain_reversed = 9.8\n  · tau = 0.75\n")


def test_a_rerun_with_other_numbers_prints_the_same_but_numbers():
    # what an Intel CPU printed for notebook 01 against the stored (AMD) output, and a digits-LT move
    moved = TABLE.replace("85.2", "85.1").replace("74.8", "75.0").replace("95.0", "95.8").replace("9.8", "10.7")
    assert same_but_numbers(TABLE, moved)
    assert same_but_numbers("few: 50.5% used, −0.3 ± 0.5", "few: 26.5% used, +0.1 ± 0.6")
    assert same_but_numbers("many:  9.8% used", "many: 10.7% used")  # a column that grew a digit


@pytest.mark.parametrize("changed", [
    ("supervised", "FixMatch"),            # other words
    ("  · tau = 0.75\n", ""),               # a number less
    ("Figures quoted", "Numbers quoted"),  # other words around the figures
])
def test_other_text_or_another_count_of_numbers_is_not_the_same_but_numbers(changed):
    assert not same_but_numbers(TABLE, TABLE.replace(*changed))
    assert not same_but_numbers("cifar10 at 9.8", "cifar100 at 9.8")  # a digit inside a word is text


def _code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


TRAINS = ("fit(", "train(", ".initialize(", "next_stage(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_cells_after_training_may_print_other_numbers_on_another_cpu(path):
    """Cells before a notebook's first training run (profiles, splits, shipped tables) print the same
    numbers on every CPU, so nbval compares them exactly: none of them is tagged numbers-vary-by-cpu."""
    cells = _code_cells(path)
    first = next(i for i, c in enumerate(cells) if any(call in "".join(c["source"]) for call in TRAINS))
    tagged = [i for i, c in enumerate(cells) if NUMBERS_VARY_TAG in c["metadata"].get("tags", [])]
    assert tagged and min(tagged) >= first
    assert all(cells[i]["outputs"] for i in tagged)


TRAINING_CELL_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": 1, "id": "a", "metadata": {"tags": ["TAG"]},
               "source": "print('supervised  accuracy  85.1  after 1000 steps')",
               "outputs": [{"output_type": "stream", "name": "stdout", "text": "STORED\n"}]}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5}


@pytest.mark.parametrize("tag, stored, exact, passes", [
    (NUMBERS_VARY_TAG, "supervised  accuracy  85.2  after 1000 steps", "0", True),
    (NUMBERS_VARY_TAG, "supervised  accuracy  85.2  after 1000 steps", "1", False),  # CISSL_KIT_NBVAL_EXACT=1
    ("not-a-training-cell", "supervised  accuracy  85.2  after 1000 steps", "0", False),
    (NUMBERS_VARY_TAG, "FixMatch  accuracy  85.1  after 1000 steps", "0", False),  # other words
])
def test_nbval_lets_a_training_cell_print_other_numbers_and_lists_it(tmp_path, tag, stored, exact, passes):
    """notebooks/conftest.py: a tagged cell that prints the stored text with other numbers passes and is
    listed at the end; other words fail it, an untagged cell must match exactly, and so must every
    cell with CISSL_KIT_NBVAL_EXACT=1."""
    notebook = json.loads(json.dumps(TRAINING_CELL_NOTEBOOK).replace("TAG", tag).replace("STORED", stored))
    (tmp_path / "run.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "conftest.py").write_text((ROOT / "notebooks" / "conftest.py").read_text())
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", "run.ipynb"],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "CISSL_KIT_NBVAL_EXACT": exact}, timeout=300)
    assert (done.returncode == 0) == passes, done.stdout[-3000:]
    listed = "matched the stored outputs but for their numbers" in done.stdout and "run.ipynb::Cell 0" in done.stdout
    assert listed == passes
    if not passes:
        assert stored in done.stdout  # the real difference is shown


# --- the worked solutions ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_folded_executed_solution(path):
    exercises, solved = solution_count(path)
    assert exercises >= 3 and solved == exercises
    cells = json.loads(path.read_text())["cells"]
    solutions = [c for c in cells if is_solution(c)]
    assert all(c["metadata"].get("jupyter") == FOLDED for c in solutions), "solutions open folded in JupyterLab"
    code = [c for c in solutions if c["cell_type"] == "code"]
    assert len(code) >= exercises and all(c["outputs"] and c["execution_count"] for c in code)
    # a folded cell still shows its first line: it names the exercise and gives nothing away
    assert all(c["source"][0].startswith("# Solution to exercise") for c in code)
    explained = [c for c in solutions if c["cell_type"] == "markdown"]
    assert [c["source"][0] for c in explained] == [f"**Solution to exercise {n}, explained.**\n"
                                                     for n in range(1, exercises + 1)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_solutions_come_last_so_the_stripped_copy_is_a_prefix_of_the_run(path):
    """Every cell that stays in the hand-out and runs code comes before the first solution (but for the exercises'
    checks): the stripped copy runs exactly the cells nbval runs first in the full notebook, in the same order."""
    cells = json.loads(path.read_text())["cells"]
    first = next(i for i, c in enumerate(cells) if is_solution(c))
    # but for the exercises' checks, which fail in a hand-out until its answers are filled in (tests/test_grading.py)
    assert not [i for i, c in enumerate(cells[first:], first)
                if c["cell_type"] == "code" and not is_solution(c) and not check_of(c)]


def test_strip_solutions_removes_solutions_and_outputs_and_keeps_the_rest(tmp_path):
    written = strip_solutions(NOTEBOOKS, tmp_path / "handout")
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for original, copy in zip(NOTEBOOKS, written):
        before, after = json.loads(original.read_text()), json.loads(copy.read_text())
        kept = [c for c in before["cells"] if not is_solution(c)]
        text = ["".join(c["source"]) for c in kept]
        # where a solution was, a cell with the answers its check reads, each set to ...
        answers = [c for c in after["cells"] if ANSWER_TAG in c["metadata"].get("tags", [])]
        checks = [check_of(c) for c in kept if check_of(c)]
        assert [c["id"] for c in answers] == [f"answer-{name}" for name in checks]
        for cell, name in zip(answers, checks):
            assert all(f"{answer} = ..." in "".join(cell["source"]) for answer in answer_names(name))
            following = after["cells"][after["cells"].index(cell) + 1]
            in_full = next(i for i, c in enumerate(before["cells"]) if check_of(c) == name)
            assert check_of(following) == name and is_solution(before["cells"][in_full - 1])
        after["cells"] = [c for c in after["cells"] if c not in answers]
        assert ["".join(c["source"]) for c in after["cells"]] == [
            re.sub(r"<!--solutions-note-->.*?<!--/solutions-note-->", HANDOUT_NOTE, t, flags=re.S) for t in text]
        assert not any("<!--solutions-note-->" in "".join(c["source"]) for c in after["cells"])
        if any("<!--solutions-note-->" in t for t in text):  # the note about folded solutions became the hand-out's
            assert any(HANDOUT_NOTE in "".join(c["source"]) for c in after["cells"])
        assert not any(is_solution(c) for c in after["cells"])
        # a hand-out promises nothing it removed, and says where its quoted numbers come from
        prose = " ".join("".join(c["source"]) for c in after["cells"] if c["cell_type"] == "markdown").lower()
        assert "folded" not in prose and "click the bar" not in prose
        if solution_count(original)[0]:
            assert HANDOUT_NOTE in " ".join("".join(c["source"]) for c in after["cells"])
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in after["cells"] if c["cell_type"] == "code")
        assert "widgets" not in after["metadata"] and after["metadata"]["kernelspec"] == before["metadata"]["kernelspec"]
        assert solution_count(copy)[0] == solution_count(original)[0]  # the exercises stay


def test_strip_solutions_never_overwrites_the_notebooks_or_earlier_copies(tmp_path):
    with pytest.raises(ValueError, match="OUT_DIR must not be the notebooks' own folder"):
        strip_solutions(NOTEBOOKS, ROOT / "notebooks")
    strip_solutions(NOTEBOOKS[:1], tmp_path)
    with pytest.raises(FileExistsError, match="--overwrite"):
        strip_solutions(NOTEBOOKS[:1], tmp_path)
    assert strip_solutions(NOTEBOOKS[:1], tmp_path, overwrite=True)


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cissl_kit", "notebooks", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_cli_strips_solutions_and_checks_quotes(tmp_path):
    done = _cli("--strip-solutions", str(tmp_path / "handout"))
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "handout").glob("*.ipynb"))) == len(NOTEBOOKS)
    assert "exercises, solutions removed, outputs cleared" in done.stdout
    again = _cli("--strip-solutions", str(tmp_path / "handout"))
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    checked = _cli("--check-quotes")
    assert checked.returncode == 0 and "every quoted figure matches its output" in checked.stdout


def test_cli_check_quotes_fails_on_a_stale_figure_and_names_it(tmp_path):
    notebook = json.loads(NOTEBOOKS[0].read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "markdown" and "<!--q:" in "".join(c["source"]))
    text = "".join(cell["source"])
    start = text.index("<!--q:")
    number_start = start
    while number_start > 0 and (text[number_start - 1].isdigit() or text[number_start - 1] in ".,"):
        number_start -= 1
    cell["source"] = text[:number_start] + "99.9" + text[start:]
    stale = tmp_path / NOTEBOOKS[0].name
    stale.write_text(json.dumps(notebook))
    done = _cli("--check-quotes", "--source", str(stale))
    assert done.returncode == 1 and "the text says 99.9" in done.stdout


def test_cli_names_a_missing_source_folder(tmp_path):
    done = _cli("--check-quotes", "--source", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "--source" in done.stderr and "Traceback" not in done.stderr


def _printed(cell) -> list[str]:
    """A code cell's printed text: streams and text/plain, in order (figures and widgets left out)."""
    texts, last_stream = [], None
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":  # a stream arrives in chunks: adjacent ones are one text
            text = "".join(output["text"])
            if last_stream == output["name"]:
                texts[-1] += text
            else:
                texts.append(text)
            last_stream = output["name"]
            continue
        last_stream = None
        if "text/plain" in output.get("data", {}) and "image/png" not in output["data"] \
                and "application/vnd.jupyter.widget-view+json" not in output["data"]:
            texts.append("".join(output["data"]["text/plain"]))
    return texts


def test_the_hand_out_fixture_names_a_cell_that_stalled_or_started_late():
    import nbformat

    def cell(source, busy, reply, idle):
        c = nbformat.v4.new_code_cell(source)
        c.metadata["execution"] = {"iopub.status.busy": f"2026-12-07T02:{busy}Z", "shell.execute_reply":
                                   f"2026-12-07T02:{reply}Z", "iopub.status.idle": f"2026-12-07T02:{idle}Z"}
        return c

    cells = [cell("fast()", "00:00.0", "00:01.0", "00:01.1"), cell("stalled()", "00:02.0", "00:03.0", "05:03.5"),
             cell("late()", "07:00.0", "07:00.5", "07:00.6"), cell("fine()", "07:01.0", "07:02.0", "07:02.1")]
    slow = slow_cells(cells)
    assert len(slow) == 2
    assert slow[0].startswith("hand-out cell 'stalled()': busy 02:00:02, reply 02:00:03, idle 02:05:03")
    assert slow[1] == "hand-out cell 'late()' started 116 s after the one before it went idle"
    assert slow_cells([cells[0], cell("soon()", "00:02.0", "00:03.0", "00:03.1")]) == []


def test_sliced_waits_find_a_message_at_the_end_of_a_slice_and_keep_the_whole_timeout():
    import asyncio
    import time
    from queue import Empty

    calls = []

    async def missed_wake_up(timeout=None):  # the message shows only at the third check of the socket
        calls.append(timeout)
        if len(calls) < 3:
            raise Empty
        return "reply"

    assert asyncio.run(sliced_waits(missed_wake_up, slice_s=0.01)(timeout=300)) == "reply"
    assert len(calls) == 3 and all(t <= 0.01 for t in calls)  # found after three slices, not after 300 s

    async def silent(timeout=None):
        await asyncio.sleep(timeout)
        raise Empty

    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(sliced_waits(silent, slice_s=0.01)(timeout=0.05))
    assert 0.05 <= time.monotonic() - start < 1.0  # the caller's own timeout still ends the wait


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_stripped_copy_runs_and_prints_what_the_notebook_stored(path, handouts):
    """Each hand-out copy runs, and its cells print what the full notebook stored.

    Only the cells before the first training cell run here: every later cell of the copy is the
    same source, in the same order, with no solution before it
    (``test_the_solutions_come_last_so_the_stripped_copy_is_a_prefix_of_the_run``), so nbval already
    runs it in the full notebook; training it a second time would prove nothing more."""
    original, code, ran, _ = handouts[path]
    assert [c.source for c in original] == [c.source for c in code]  # nbval runs every one of them
    assert len(ran) >= 2
    for stored, fresh in zip(original, ran):
        errors = [o for o in fresh.outputs if o.output_type == "error"]
        assert not errors, f"{fresh.source[:80]!r} raised {errors[0]['ename']}: {errors[0]['evalue']}"
        if "nbval-ignore-output" not in stored["metadata"].get("tags", []):
            assert _printed(fresh) == _printed(stored), fresh.source[:80]


# --- widgets that never look frozen, and the shipped exercise grids ---------------------------------

def test_live_output_says_computing_while_it_draws_and_then_how_long_it_took():
    ipywidgets = pytest.importorskip("ipywidgets")
    from cissl_kit.viz.widgets import live_output

    seen = []
    controls = {"k": ipywidgets.IntSlider(10, 3, 100)}
    out, status = None, None

    def draw(k):
        seen.append((k, status.value if status is not None else "first draw"))

    out, status = live_output(draw, controls)
    assert seen == [(10, "first draw")] and status.value.startswith("<small>redrawn in ")
    controls["k"].value = 100
    assert seen[-1] == (100, "<i>computing …</i>")  # shown while the slow setting draws
    assert "redrawn in" in status.value and "cissl-redraw-status" in status._dom_classes

    def fails_at_100(k):
        if k == 100:
            raise ValueError("no such split")

    slider = ipywidgets.IntSlider(10, 3, 100)
    _, status = live_output(fails_at_100, {"k": slider})
    with pytest.raises(ValueError, match="no such split"):  # outside a kernel the error propagates
        slider.value = 100
    assert status.value == "<small>the redraw failed (the error is below)</small>"  # never stuck at "computing"


def test_stage_stepper_reports_each_stage_and_recovers_from_a_failed_one():
    pytest.importorskip("ipywidgets")
    from cissl_kit.viz.widgets import alternate_stepper

    class Run:  # the part of AlternateRun the stepper uses; its second stage fails once
        def __init__(self):
            self.num_stages, self.records, self.calls = 2, [], 0

        def next_stage(self):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("interrupted")
            self.records.append({"stage": "initialize embedding", "loop": 0, "accuracy": 0.5, "accuracy_random_head": 0.4})

    run = Run()
    panel = alternate_stepper(run)
    button, status = panel.children[1].children
    button.click()
    assert "1 of 2 stages done" in status.value and "stage and redraw:" in status.value and not button.disabled
    button.click()  # ipywidgets reports a click handler's error and carries on
    assert "did not finish" in status.value and not button.disabled  # never a dead button
    button.click()
    assert "2 of 2 stages done" in status.value and button.disabled


def test_every_notebook_widget_has_a_redraw_status():
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt
    import torch

    from cissl_kit.viz.widgets import hardness_explorer, split_explorer, tilt_explorer

    probs = torch.softmax(torch.randn(50, 10), 1)
    panels = [split_explorer()[0], tilt_explorer()[0],
              hardness_explorer(probs, torch.randint(0, 10, (50,)), {"many": [0, 1, 2], "few": [7, 8, 9]})[0]]
    plt.close("all")
    for panel in panels:
        statuses = [c for c in panel.children if "cissl-redraw-status" in getattr(c, "_dom_classes", ())]
        assert len(statuses) == 1 and "redrawn in" in statuses[0].value


def test_exercise_grids_are_shipped_whole_and_named_in_errors():
    from cissl_kit.benchmark import BENCHMARK_METHODS, exercise_results

    gamma50 = exercise_results("mnist_lt_gamma50")
    assert sorted({r["label"] for r in gamma50}) == sorted(BENCHMARK_METHODS)
    assert {(r["profile"], r["seed"]) for r in gamma50} == {("consistent", s) for s in range(3)}
    assert gamma50[0]["groups"]["few"] and not any(r.get("interrupted") for r in gamma50)
    digits = exercise_results("digits_lt_reversed")
    assert {(r["label"], r["seed"]) for r in digits} == {(m, s) for m in BENCHMARK_METHODS for s in range(5)}
    assert {r["profile"] for r in digits} == {"reversed"}
    with pytest.raises(ValueError, match="name must be one of digits_lt_reversed, mnist_lt_gamma50"):
        exercise_results("gamma50")
