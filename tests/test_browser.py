"""The notebooks as a student meets them: JupyterLab in headless Chromium.

For each notebook, as handed out to students (``cissl-kit notebooks --strip-solutions``: the copies
without the worked solutions, outputs cleared): open it in JupyterLab, run the cells up to its main
widget, check that no cell shows an error, move the widget (a key press on a slider handle, a click
on a button) and check that the plot it drives was redrawn. The time from the key press or click to
the new plot on the page is measured, with the kernel's own "redrawn in" time, printed and written
to ``runs/browser-screenshots/redraw-times.json``. Screenshots go to the same folder for humans.

The cells after the widget (the long training runs) are the same cells, in the same order, that
nbval runs in the notebooks with their solutions (``test_classroom.py`` checks that the solutions
come last), so by default they are not run a second time here; ``CISSL_KIT_BROWSER_ALL_CELLS=1``
runs them too (about 14 min more on a 2-core CPU).

Needs Debian's Chromium (``apt-get install chromium``: ``/usr/bin/chromium``) and the Python
``playwright`` package (in the ``dev`` extra); never ``playwright install``. JupyterLab runs on
127.0.0.1 only, without a token, with temporary config / runtime / data folders, on copies of the
notebooks (so autosave cannot touch the stored outputs), and is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cissl_kit.classroom import strip_solutions

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = Path(os.environ.get("CISSL_KIT_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "runs" / "browser-screenshots"
RUN_TIMEOUT_MS = 15 * 60 * 1000  # one run of cells, on a busy 2-core CPU
ALL_CELLS = os.environ.get("CISSL_KIT_BROWSER_ALL_CELLS", "0") not in ("", "0")

# each notebook's main widget: the code that makes it, and how a student moves it. The cells up to
# the widget's run first, then the widget is moved (notebook 04's stepper has stages left to run only
# before the cells below it finish the run), then, with CISSL_KIT_BROWSER_ALL_CELLS=1, the rest.
MAIN_WIDGET = {
    "01_imbalance_construction": ("split_explorer(", "slider", "N1 (labeled, head)"),
    "02_entropy_hard_example_weighting": ("hardness_explorer(", "slider", "s (entropy scale)"),
    "03_layer_gradient_analysis": ("tilt_explorer(", "slider", "wrong-label rate (bridge)"),
    "04_alternate_sampling": ("alternate_stepper(", "button", "Run the next stage"),
    "05_benchmark_comparison": ("benchmark_explorer(", "toggle", "consistent"),
    "06_comparison_methods": ("benchmark_explorer(", "toggle", "consistent"),
    "07_estimating_the_unlabeled_distribution": ("prior_explorer(", "toggle", "reversed"),
}

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _requirements_or_skip():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` "
                    "(or set CISSL_KIT_CHROMIUM to a Chromium binary)")
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright (part of the dev extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving copies of the notebooks; yields its base URL."""
    _requirements_or_skip()
    tmp = tmp_path_factory.mktemp("jupyterlab")
    work = tmp / "notebooks"
    work.mkdir()
    strip_solutions(NOTEBOOKS, work)  # the students' copies
    # no "official Jupyter news?" toast over the screenshots
    (tmp / "config" / "labconfig").mkdir(parents=True)
    (tmp / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "IPYTHONDIR": str(tmp / "ipython"), "JUPYTER_PLATFORM_DIRS": "1"}
    port = _free_port()
    log = open(tmp / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True", "--allow-root",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--ContentsManager.allow_hidden=False"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited: {(tmp / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not answer within 60 s")
        yield url
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)  # stop the server we started, by its PID
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(jupyter_lab):
    sync_api = _requirements_or_skip()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# JavaScript run in the page; ``window.jupyterapp`` is exposed by --LabApp.expose_app_in_browser
OPEN_NOTEBOOK = """async (path) => {
    const app = window.jupyterapp;
    const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
    await panel.context.ready;
    await panel.sessionContext.ready;
    return true;
}"""
RUN_CELLS = """async ([first, last]) => {
    const app = window.jupyterapp;
    const notebook = app.shell.currentWidget.content;
    if (first === 0) await app.commands.execute('notebook:clear-all-cell-outputs');
    notebook.activeCellIndex = first;
    notebook.deselectAll();
    notebook.extendContiguousSelectionTo(last);
    await app.commands.execute('notebook:run-cell');
    return true;
}"""
CELL_STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = panel.content.widgets.map((cell, index) => {
        const code = cell.model.type === 'code';
        const outputs = code ? cell.model.outputs.toJSON() : [];
        return {index, code, source: cell.model.sharedModel.getSource(), count: code ? cell.model.executionCount : 0,
                errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)};
    });
    return {status: kernel ? kernel.status : 'none', cells};
}"""
SHUT_DOWN_KERNEL = """async () => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (panel && panel.sessionContext) await panel.sessionContext.shutdown();
    return true;
}"""
WIDGET_IMAGES = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jupyter-widgets-output-area img, '
    + '.jp-NotebookPanel:not(.lm-mod-hidden) .widget-output img')).map(img => img.src)"""


def _open_notebook(page, name: str, attempts: int = 3) -> None:
    """Open a notebook once JupyterLab has started. JupyterLab may still replace the page while it
    resets the workspace (``?reset``), which ends a script running in it ("Execution context was
    destroyed", "Resulting promise was garbage collected"): then wait for the new page and open again."""
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        try:
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=120_000)
            page.evaluate("() => window.jupyterapp.restored")
            page.evaluate(OPEN_NOTEBOOK, name)
            return
        except PlaywrightError as error:
            replaced = "garbage collected" in str(error) or "context was destroyed" in str(error)
            if not replaced or attempt == attempts - 1:
                raise
            page.wait_for_timeout(2000)


def _run_cells(page, first: int, last: int) -> dict:
    """Run cells ``first..last`` (indices among all cells) and wait until each code cell among them ran."""
    page.evaluate(RUN_CELLS, [first, last])
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        state = page.evaluate(CELL_STATE)
        ran = all(c["count"] is not None for c in state["cells"][first:last + 1] if c["code"])
        if state["status"] == "idle" and ran:
            return state
    raise AssertionError(f"cells {first}..{last} did not finish within {RUN_TIMEOUT_MS // 60000} min")


def _errors(state: dict) -> list:
    return [(c["index"], e) for c in state["cells"] for e in c["errors"]]


def _redrawn(page, before: list, timeout_ms: int) -> bool:
    """Wait until the widget's images differ from ``before``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"(before) => {{ const now = ({WIDGET_IMAGES})(); "
            "return now.length > 0 && JSON.stringify(now) !== JSON.stringify(before); }",
            arg=before, timeout=timeout_ms)
        return True
    except PlaywrightTimeout:
        return False


def _move_main_widget(page, kind: str, label: str) -> float | None:
    """Move the widget as a student would; the seconds from the move to the redrawn plot on the
    page, or None if it was not redrawn."""
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    before = page.evaluate(WIDGET_IMAGES)
    if kind == "slider":
        slider = panel.locator(".widget-slider").filter(has=page.get_by_text(label, exact=True)).first
        slider.scroll_into_view_if_needed()
        handle = slider.locator(".noUi-handle").first
        handle.focus()
        # a coarse toy may look the same one step further: keep moving, as a student would
        for _ in range(8):
            start = time.perf_counter()
            handle.press("ArrowRight")
            if _redrawn(page, before, 20_000):
                return time.perf_counter() - start
        return None
    if kind == "button":
        control = panel.get_by_role("button", name=label).first
        control.scroll_into_view_if_needed()
        start = time.perf_counter()
        control.click()
        return time.perf_counter() - start if _redrawn(page, before, 180_000) else None
    # a ToggleButtons option: click until the view shows it selected (a click on a busy page can
    # land before the view listens), then wait for the plot
    control = panel.locator(".widget-toggle-button").filter(has_text=label).first
    start = time.perf_counter()
    for _ in range(3):
        control.scroll_into_view_if_needed()
        control.click()
        try:
            page.wait_for_function("(el) => el.classList.contains('mod-active')", arg=control.element_handle(),
                                   timeout=15_000)
            break
        except Exception:  # not selected yet: click again
            continue
    return time.perf_counter() - start if _redrawn(page, before, 180_000) else None


KERNEL_REDRAW = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .cissl-redraw-status')).map(s => s.innerText).join(' ')"""


def _report_redraw(notebook: str, kind: str, label: str, seconds: float, kernel: str) -> None:
    """Print the redraw time and keep it in ``redraw-times.json`` (one entry per notebook)."""
    path = SCREENSHOTS / "redraw-times.json"
    times = json.loads(path.read_text()) if path.exists() else {}
    times[notebook] = {"widget": f"{kind} '{label}'", "page_seconds": round(seconds, 2), "kernel_status": kernel}
    path.write_text(json.dumps(times, indent=1, ensure_ascii=False) + "\n")
    print(f"{notebook}: {kind} '{label}' redrawn on the page {seconds:.2f} s after the move; kernel: {kernel}")


WIDGET_DIAGNOSIS = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    const active = Array.from(panel.querySelectorAll('.widget-toggle-button.mod-active')).map(b => b.textContent);
    const outputs = Array.from(panel.querySelectorAll('.widget-output, .jupyter-widgets-output-area'))
        .map(o => o.innerText.slice(0, 500));
    return {active, outputs, images: panel.querySelectorAll('.widget-output img').length};
}"""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_its_widget_redraws(notebook, jupyter_lab, browser):
    assert notebook.stem in MAIN_WIDGET, f"say which widget of {notebook.name} the browser test should move"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{jupyter_lab}/lab?reset", wait_until="domcontentloaded")  # no tabs restored from the last page
        _open_notebook(page, notebook.name)
        marker, kind, label = MAIN_WIDGET[notebook.stem]
        cells = page.evaluate(CELL_STATE)["cells"]
        widget_cell = next(c["index"] for c in cells if c["code"] and marker in c["source"])
        state = _run_cells(page, 0, widget_cell)
        assert not _errors(state), f"{notebook.name}: cells with errors (cell index, error): {_errors(state)}"

        page.wait_for_function(f"() => ({WIDGET_IMAGES})().length > 0", timeout=60_000)
        seconds = _move_main_widget(page, kind, label)
        if seconds is None:
            page.screenshot(path=str(SCREENSHOTS / f"{notebook.stem}-not-redrawn.png"))
            raise AssertionError(f"{notebook.name}: moving the {kind} '{label}' did not redraw its plot; "
                                 f"kernel {page.evaluate(CELL_STATE)['status']}, page {page.evaluate(WIDGET_DIAGNOSIS)}")
        page.wait_for_timeout(1000)
        _report_redraw(notebook.stem, kind, label, seconds, page.evaluate(KERNEL_REDRAW))
        page.screenshot(path=str(SCREENSHOTS / f"{notebook.stem}-widget.png"))

        if ALL_CELLS:
            if widget_cell + 1 < len(cells):
                state = _run_cells(page, widget_cell + 1, len(cells) - 1)
            assert not _errors(state), f"{notebook.name}: cells with errors (cell index, error): {_errors(state)}"
            assert all(c["count"] is not None for c in state["cells"] if c["code"])
            page.screenshot(path=str(SCREENSHOTS / f"{notebook.stem}-end.png"))
    finally:
        try:
            page.evaluate(SHUT_DOWN_KERNEL)  # free the CPU and memory for the next notebook
        finally:
            page.close()
