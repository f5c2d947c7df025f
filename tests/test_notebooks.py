"""The notebooks as teaching material: Colab-ready, widgets tagged for nbval, each ending with
take-aways and exercises. (Their execution is nbval's job; the browser test drives them.)"""

import base64
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    return "".join(cell["source"])


def test_there_are_seven_ordered_notebooks():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_", "07_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_installs_the_kit_only_on_colab(path):
    first = next(c for c in _cells(path) if c["cell_type"] == "code")
    source = _source(first)
    assert 'if "google.colab" in sys.modules:' in source
    # the one source the README explains: the repository URL of pyproject.toml
    assert re.search(r'CISSL_KIT_REPO = "([^"]+)"', source).group(1) == REPOSITORY
    assert not first["outputs"], "off Colab the cell must do nothing"


def _colab_url(name: str) -> str:
    """The Colab address of a notebook in the repository that pyproject.toml names."""
    owner_and_name = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_and_name}/blob/main/notebooks/{name}"


def test_every_colab_badge_and_install_cell_names_the_repository_of_pyproject():
    """One repository everywhere: each notebook's badge (first cell) and install cell, the README's Colab
    column and the book's Getting-started page follow ``[project.urls] Repository``."""
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "getting_started.md").read_text()
    assert REPOSITORY.startswith("https://github.com/")
    for path in NOTEBOOKS:
        cells = _cells(path)
        assert cells[0]["cell_type"] == "markdown"
        badges = re.findall(r"\[!\[Open In Colab\]\([^)]+\)\]\(([^)]+)\)", _source(cells[0]))
        assert badges == [_colab_url(path.name)], f"{path.name}: badge {badges}"
        assert f"]({_colab_url(path.name)})" in readme, f"the README's Colab link for {path.name}"
    colab_urls = set(re.findall(r"https://colab\.research\.google\.com/github/[^)\s`|]+", readme + guide))
    assert colab_urls and all(u.startswith(_colab_url("")) for u in colab_urls), colab_urls
    assert _colab_url("<notebook>.ipynb") in guide


@pytest.mark.parametrize("path", NOTEBOOKS[:1], ids=lambda p: p.stem)
def test_colab_cell_runs_the_install_only_under_colab(path, tmp_path):
    """Executed with a fake ``google.colab`` module, the cell asks pip for the repository."""
    source = _source(next(c for c in _cells(path) if c["cell_type"] == "code"))
    script = tmp_path / "cell.py"
    script.write_text(
        "import sys, types\n"
        "calls = []\n"
        "class Shell:\n"
        "    def run_line_magic(self, name, line): calls.append((name, line))\n"
        "get_ipython = lambda: Shell()\n"
        f"exec({source!r})\n"
        "before = list(calls)\n"
        "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
        f"exec({source!r})\n"
        "print(before, calls)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                         env={**os.environ}).stdout
    assert out.strip() == f"[] [('pip', 'install -q git+{REPOSITORY}')]"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widget_cells_are_ignored_by_nbval_and_captioned(path):
    cells = _cells(path)
    widget_cells = [c for c in cells if c["cell_type"] == "code" and re.search(r"_(explorer|stepper)\(", _source(c))]
    assert widget_cells, f"{path.name} has no live widget"
    for cell in widget_cells:
        # a live widget's output differs from run to run: nbval must not compare it
        assert "nbval-ignore-output" in cell["metadata"].get("tags", [])


def _outputs(path):
    for index, cell in enumerate(_cells(path)):
        for output in cell.get("outputs", []):
            yield index, output


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_figures_fit_jupyterlabs_output_area(path):
    # with the file browser open, JupyterLab's output area is about 1,000 px wide: a wider PNG is shrunk
    # (and its small print becomes unreadable); the stored width is the PNG's own, at its stored DPI
    widths = [(i, struct.unpack(">II", base64.b64decode(o["data"]["image/png"])[16:24])[0])
              for i, o in _outputs(path) if "image/png" in o.get("data", {})]
    assert widths, f"{path.name} stores no figure"
    assert [(i, w) for i, w in widths if w > 1000] == [], "cells whose figures are wider than 1,000 px"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_results_tables_are_shown_rendered_not_printed_as_raw_markdown(path):
    printed = [i for i, o in _outputs(path) if o.get("output_type") == "stream" and "|---|" in "".join(o["text"])]
    assert printed == [], "cells that print a |-table as raw text (display(classroom.Table(...)) renders it)"
    for i, output in _outputs(path):
        if "|---|" in output.get("data", {}).get("text/markdown", ""):  # rendered, and the same text for nbval
            assert "".join(output["data"]["text/markdown"]) == "".join(output["data"]["text/plain"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_ends_with_takeaways_and_exercises(path):
    markdown = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
    assert "## What you should take away" in markdown
    exercises = markdown.split("## Exercises", 1)
    assert len(exercises) == 2, f"{path.name} has no exercises"
    assert len(re.findall(r"^\*\*Exercise \d+\.\*\* ", exercises[1], re.M)) >= 3  # one cell each (tests/test_classroom.py)
    assert re.search(r"\*\*Time:\*\* about", markdown), f"{path.name} does not say how long it takes"


def test_a_fit_in_a_notebook_kernel_sends_few_progress_messages():
    # nbval reads a kernel's messages only after a cell ends; a kernel that sends thousands in
    # one cell (a progress bar redrawn ten times a second) drops some, the cell's last among
    # them, and nbval fails the cell after waiting (CI: notebook 02's five-run cell).
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute("import time, torch; torch.set_num_threads(1)\n"
                   "from cissl_kit import make_ssl_data, Trainer, TrainConfig, FixMatch\n"
                   "data = make_ssl_data('digits', seed=0)\n"
                   "start = time.perf_counter()\n"
                   "Trainer(FixMatch(), data, config=TrainConfig(steps=300, eval_every=100, seed=0)).fit()\n"
                   "print(f'SECONDS {time.perf_counter() - start:.3f}')")
        assert kc.get_shell_msg(timeout=600)["content"]["status"] == "ok"
        updates, seconds = 0, None
        while True:
            message = kc.get_iopub_msg(timeout=10)
            if message["msg_type"] == "comm_msg":
                updates += 1
            if message["msg_type"] == "stream" and "SECONDS" in message["content"]["text"]:
                seconds = float(message["content"]["text"].split()[-1])
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert seconds is not None and updates > 0, "the fit showed no widget progress bar"
    assert updates / seconds <= 6, f"{updates} widget messages in {seconds:.1f} s"


def test_a_training_cell_cut_short_by_nbvals_timeout_fails_and_the_run_cannot_pass(tmp_path):
    """A cell that nbval interrupts at its --nbval-cell-timeout raises TrainingInterrupted (its run is not
    turned into a result), and the cells after it, marked as expected failures, fail the run when they
    pass (xfail_strict): pytest --nbval never exits 0 with a cut-short notebook."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    slow = nbformat.v4.new_code_cell("from cissl_kit import make_ssl_data, train\n"
                                     "result = train('fixmatch', make_ssl_data('digits'), steps=10**6, progress=False)")
    after = nbformat.v4.new_code_cell("print('after')")
    slow.execution_count, after.execution_count = 1, 2
    after.outputs = [nbformat.v4.new_output("stream", name="stdout", text="after\n")]
    notebook.cells = [slow, after]
    path = tmp_path / "cut_short.ipynb"
    nbformat.write(notebook, path)
    done = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
                           "--nbval", str(path), "--nbval-cell-timeout", "15", "-p", "no:randomly"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "TrainingInterrupted" in output and "was interrupted at step" in output, output[-3000:]
    assert "XPASS(strict)" in output and "2 failed" in output, output[-3000:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shipped_results_are_read_unless_the_set_up_cell_asks_to_retrain(path):
    """A lab does not wait on training (the UvA pattern): each notebook's set-up cell has one ``RETRAIN`` flag,
    off in the stored notebook, and every shipped grid it reads follows that flag, not a flag of its own."""
    code = [_source(c) for c in _cells(path) if c["cell_type"] == "code"]
    setup = next(source for source in code if "DEVICE = " in source)
    assert re.search(r"^RETRAIN = False\b", setup, re.M), f"{path.name}: no RETRAIN = False in its set-up cell"
    calls = [m for source in code for m in re.findall(r"course_results\(([^)]*)\)", source)]
    assert all(re.search(r"retrain=RETRAIN\b", call) for call in calls), calls
    for source in code:
        if "exercise_results(" in source or "reference_results()" in source and "run_grid(" in source:
            assert re.search(r"if RETRAIN\s+else", source), source[:200]
    assert "REGENERATE" not in "\n".join(code)  # the flag 05 and 06 had before they shared RETRAIN
