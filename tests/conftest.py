import warnings
from pathlib import Path
from typing import NamedTuple

import pytest
from handout_helpers import run_in_sliced_waits, slow_cells, trains  # tests/handout_helpers.py (on sys.path)

from cissl_kit.utils import set_threads

set_threads()  # the kit's default rule (2 threads for the small models on a machine with 2 cores or more)

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="session")
def digits():
    """The default digits-LT benchmark on the CPU."""
    from cissl_kit.data import make_ssl_data

    return make_ssl_data("digits", device="cpu")


class Handout(NamedTuple):
    stored: list  # the notebook's stored code cells, solutions left out
    code: list    # the hand-out's code cells, answer cells left out
    ran: list     # the hand-out's cells before its first training cell, as run
    checks: list  # the hand-out's check cells, run after its (unanswered) answer cells


@pytest.fixture(scope="session")
def handouts(tmp_path_factory) -> dict:
    """Every hand-out as a student first meets it, all in one kernel (``%reset -f`` between notebooks, so no
    name leaks from one into the next): its cells up to the first training cell (every later cell is the
    notebook's own, which nbval runs), then its answer cells, still ``...``, and its checks. Notebook → Handout."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from cissl_kit.classroom import ANSWER_TAG, is_solution, strip_solutions
    from cissl_kit.grading import check_of

    copies = strip_solutions(NOTEBOOKS, tmp_path_factory.mktemp("handouts"))
    checks_dir = tmp_path_factory.mktemp("checks")  # where otter writes its log, not notebooks/
    combined = nbformat.v4.new_notebook(metadata=nbformat.read(copies[0], as_version=4).metadata)
    spans = {}

    def chdir(folder):  # leaves no name behind in the hand-out's namespace
        return f"__import__('os').chdir({str(folder)!r})"

    def add(cells):
        start = len(combined.cells)
        combined.cells.extend(nbformat.v4.new_code_cell(c.source, metadata=c.metadata) for c in cells)
        return start, len(cells)

    for path, copy in zip(NOTEBOOKS, copies):
        cells = [c for c in nbformat.read(copy, as_version=4).cells if c.cell_type == "code"]
        code = [c for c in cells if ANSWER_TAG not in c.metadata.get("tags", [])]
        stored = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and not is_solution(c)]
        first_training = next(i for i, c in enumerate(stored) if trains(c))
        combined.cells.append(nbformat.v4.new_code_cell(f"%reset -f\n{chdir(path.parent)}"))
        prefix = add(code[:first_training])
        combined.cells.append(nbformat.v4.new_code_cell(chdir(checks_dir)))
        answers_and_checks = add([c for c in cells if ANSWER_TAG in c.metadata.get("tags", []) or check_of(c)])
        spans[path] = stored, code, prefix, answers_and_checks
    run_in_sliced_waits(combined, timeout=300, kernel_name="python3", allow_errors=True,
                        resources={"metadata": {"path": str(NOTEBOOKS[0].parent)}})
    for slow in slow_cells(combined.cells):  # a cell that stalled anyway: where, with nbclient's timestamps
        warnings.warn(slow)

    def ran(span):
        return combined.cells[span[0]:span[0] + span[1]]

    return {path: Handout(stored, code, ran(prefix), [c for c in ran(rest) if check_of(c)])
            for path, (stored, code, prefix, rest) in spans.items()}
