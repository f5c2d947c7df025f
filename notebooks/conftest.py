"""pytest settings for the notebooks (collected by nbval).

**Output wait.** nbval waits only 5 s for each output message once a cell has finished; on a busy
shared CPU the kernel's output can lag longer than that (many progress-bar updates), which fails a
cell that ran fine. Allow a minute. Cells themselves keep nbval's own --nbval-cell-timeout.

**Training numbers on another CPU.** nbval compares every output exactly, and on the CPU that
stored the outputs every cell matches bit for bit. On another CPU the float kernels round the last
bits differently and a training run becomes another draw of the same experiment (on digits-LT a
few-shot accuracy moved by 24 points). So a cell tagged ``numbers-vary-by-cpu`` (its printed numbers
come from training) that does not match exactly passes if it prints the same text with as many
numbers (:func:`cissl_kit.classroom.same_but_numbers`), and the run ends by listing those cells.
Every other cell (data, splits, shipped results, figures computed without training) must match
exactly. ``CISSL_KIT_NBVAL_EXACT=1`` compares every cell exactly, for the machine that stored them.
"""

from __future__ import annotations

import os
import platform

import nbformat
import nbval.plugin

from cissl_kit.classroom import NUMBERS_VARY_TAG, same_but_numbers

OUTPUT_TIMEOUT_SECONDS = 60
EXACT = os.environ.get("CISSL_KIT_NBVAL_EXACT", "0") not in ("", "0")
_exact_compare = nbval.plugin.IPyNbCell.compare_outputs
_matched_but_numbers: list[str] = []


def _texts(output: dict) -> dict:
    """The text fields of one output: a stream's text, a result's text MIME types."""
    if "text" in output:
        return {("text",): output["text"]}
    return {("data", key): value for key, value in output.get("data", {}).items()
            if key.startswith("text/") and isinstance(value, str)}


def _with_stored_text_where_same_but_numbers(cell, test: list, ref: list) -> list:
    """``test`` with each text that prints what the stored one prints but for its numbers replaced by
    the stored text (after nbval's sanitisers, so progress bars do not count)."""
    aligned = []
    for new, old in zip(test, ref):
        new = {**new, "data": dict(new["data"])} if "data" in new else dict(new)
        if new.get("output_type") == old.get("output_type") and new.get("name") == old.get("name"):
            old_texts = _texts(old)
            for where, text in _texts(new).items():
                stored = old_texts.get(where)
                if stored is not None and same_but_numbers(cell.sanitize(stored), cell.sanitize(text)):
                    if where == ("text",):
                        new["text"] = stored
                    else:
                        new["data"][where[1]] = stored
        aligned.append(nbformat.from_dict(new))
    return aligned + list(test[len(ref):])


def _compare_outputs(self, test, ref, skip_compare=None):
    """nbval's exact comparison; failing that, for a training cell, the same comparison but for the numbers."""
    if _exact_compare(self, test, ref, skip_compare):
        return True
    if EXACT or NUMBERS_VARY_TAG not in self.cell.metadata.get("tags", []):
        return False
    exact_traceback = self.comparison_traceback
    if _exact_compare(self, _with_stored_text_where_same_but_numbers(self, test, ref), ref, skip_compare):
        _matched_but_numbers.append(f"{self.fspath.basename}::Cell {self.cell_num}")
        return True
    self.comparison_traceback = exact_traceback  # report the real difference
    return False


def pytest_configure(config):
    nbval.plugin.IPyNbCell.compare_outputs = _compare_outputs


def pytest_unconfigure(config):
    nbval.plugin.IPyNbCell.compare_outputs = _exact_compare


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = OUTPUT_TIMEOUT_SECONDS


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _kernels() -> str:
    names = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")
    return ", ".join(f"{name}={os.environ[name]}" for name in names if name in os.environ) or "kernels not pinned"


def pytest_terminal_summary(terminalreporter):
    if _matched_but_numbers:
        terminalreporter.write_sep("-", "training cells that matched the stored outputs but for their numbers")
        terminalreporter.write_line(
            f"{len(_matched_but_numbers)} cells tagged {NUMBERS_VARY_TAG} printed the stored text with other numbers: "
            f"the float kernels here ({_cpu()}; {_kernels()}) round differently from those that stored the outputs, "
            "and a training run becomes another draw (see the spread over seeds in notebook 05). On the machine "
            "that stored the outputs this is a real change: CISSL_KIT_NBVAL_EXACT=1 compares exactly.")
        for name in _matched_but_numbers:
            terminalreporter.write_line(f"  {name}")
