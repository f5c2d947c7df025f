"""Classroom tools for the notebooks: worked solutions that can be stripped for a hand-out, and
figures quoted in the prose that a test checks against the outputs they come from.

**Solutions.** Each exercise is a markdown cell; its worked solution follows it in cells tagged
``solution`` and folded (``"jupyter": {"source_hidden": true, "outputs_hidden": true}``), so they open
closed in JupyterLab. :func:`strip_solutions` writes copies without them, outputs cleared.

**Quoted figures.** A code cell prints the figures that the markdown quotes with :func:`quote`
(lines ``  · name = value``). The markdown marks each such figure with an HTML comment, invisible
once rendered: ``lifts FixMatch by 3.0<!--q:grad_relu_gain--> points``. :func:`check_quotes` re-reads
a notebook's stored outputs and reports every marked figure that is not a rounding of the printed
value, every mark with no printed value, and every decimal number, percentage or signed number in
the prose that is neither marked nor declared *given* (a setting, or a figure from a paper or from
the README) in the cell's metadata, ``{"cissl_kit": {"given": ["0.95", "+8.5", ...]}}``.

**Hand-outs.** The first cell's sentence about the folded solutions sits between
``<!--solutions-note-->`` and ``<!--/solutions-note-->``; a hand-out copy says instead that it holds
no solutions and where the numbers its prose quotes come from.

**Checks.** After each exercise's solution a cell runs its otter-grader check, ``grader.check("02_ex1")``
(:mod:`cissl_kit.grading`); in a hand-out, :func:`answer_cell` takes the solution's place: each answer the check
reads, set to ``...``.

**Tables.** :class:`Table` shows a results table rendered in JupyterLab and on GitHub (Markdown), and
the same text as its plain-text form, which is what ``pytest --nbval`` compares.

**Outputs on another CPU.** A seeded run repeats bit for bit on one machine, but another CPU's float
kernels round the last bits differently, and a few hundred steps later the run is another draw of
the same experiment: on digits-LT a few-shot accuracy moved by 24 points, on mnist-LT by 2. A code
cell whose printed numbers come from training is tagged ``numbers-vary-by-cpu``; where its re-run
does not match the stored output exactly, the notebook test accepts it if it is
:func:`same_but_numbers` (``notebooks/conftest.py``), and says so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path

from ._checks import check_int
from .grading import answer_names, check_of

SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"  # a hand-out's cell for an exercise's answers (strip_solutions writes it)
NUMBERS_VARY_TAG = "numbers-vary-by-cpu"
FOLDED = {"source_hidden": True, "outputs_hidden": True}
QUOTE_PREFIX = "  · "
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUMBER = r"[+−-]?\d+(?:,\d{3})*(?:\.\d+)?"
_MARK = re.compile(rf"(?P<number>{_NUMBER}|\b(?:{'|'.join(_WORDS)})\b)\s*(?P<percent>%)?\s*<!--\s*q:(?P<name>\w+)\s*-->",
                   re.IGNORECASE)
_PRINTED = re.compile(rf"^{re.escape(QUOTE_PREFIX)}(?P<name>\w+) = (?P<value>{_NUMBER})%?\s*$", re.M)
# what the prose must not quote unmarked: every number (a result unless it is marked, or listed as a constant of
# the text in the cell's metadata), but for the numbers of names and references: CIFAR-10, WRN-28-2, Eq. 3,
# Table 1, Fig. 5, §5.1, notebook 02, exercise 2, section 4, a heading's "## 3 ·", a year
_UNMARKED = re.compile(r"(?<![\w.\-/×])[+−]?\d+(?:,\d{3})*(?:\.\d+)?(?:\s?%)?(?![\w.]*\d)(?![^\W\d_])"
                       r"(?!\s?[×x]\s?\d)")
_REFERENCE = re.compile(r"(?:Eq(?:s)?\.|Eqs?\b|Table|Tables|Fig\.|Figure|§|[Nn]otebooks?|[Ee]xercises?|[Ss]ections?|"
                        r"[Cc]ells?|[Ss]tep|Alg\.|Appendix|[Ll]oop|[Gg]eneration|[Ss]tage|[Pp]age|[Cc]hapter|"
                        r"[Dd]igits?|[Cc]lass(?:es)?|[Ss]eeds?|[Ee]xpert)"
                        r"\s*(?:\d+(?:[.–-]\d+)?\s*(?:,|and|or|to|–|-)\s*)*$")
_HEADING = re.compile(r"^#+\s*\d+\s*·|^\s*\d+\.\s", re.M)  # a heading's number, an ordered list's
# left out of the prose check: code, maths, links' targets, HTML comments
_NOT_PROSE = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\]\([^)]*\)|<!--.*?-->", re.S)


def quote(digits: int = 1, **figures: float) -> None:
    """Print the figures that the markdown below quotes, one ``  · name = value`` line each
    (``digits`` decimals; percentages as percent), so that :func:`check_quotes` can compare the
    prose with them. The prose may round a figure further (``3`` for ``3.0``), never add digits."""
    check_int("digits", digits, minimum=0, maximum=6)
    if not figures:
        raise ValueError("quote() needs at least one figure, e.g. quote(gain=2.4)")
    for name, value in figures.items():
        if not math.isfinite(float(value)):
            raise ValueError(f"figure {name} must be a finite number to be quoted, got {value}")
    print("Figures quoted in the text:")
    for name, value in figures.items():
        print(f"{QUOTE_PREFIX}{name} = {float(value):.{digits}f}")


_PRINTED_NUMBER = re.compile(r"(?<![\w.])[+−-]?\d+(?:\.\d+)?(?![\w.]*\d)")


def same_but_numbers(reference: str, test: str) -> bool:
    """Whether ``test`` prints what ``reference`` prints but for the numbers: the same text between
    numbers (runs of spaces count as one, since a number may grow a digit) and as many numbers
    (n numbers split a text into n + 1 parts, so equal parts mean equal counts)."""
    def words(text: str) -> list[str]:
        return [" ".join(part.split()) for part in _PRINTED_NUMBER.split(text)]
    return words(reference) == words(test)


def is_solution(cell: dict) -> bool:
    """Whether a notebook cell belongs to a worked solution (tagged ``solution``)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _number(text: str) -> tuple[float, int, bool]:
    """(value, decimals, has a sign) of a figure as written in prose or printed."""
    word = _WORDS.get(text.lower())
    if word is not None:
        return float(word), 0, False
    text = text.replace("−", "-").replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(text), decimals, text[0] in "+-"


def printed_figures(notebook: dict) -> dict[str, str]:
    """``{name: value}`` of every figure printed with :func:`quote` in the stored outputs."""
    figures: dict[str, str] = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = output.get("text", "")
            for match in _PRINTED.finditer("".join(text) if isinstance(text, list) else text):
                name, value = match["name"], match["value"]
                if figures.get(name, value) != value:
                    raise ValueError(f"figure {name!r} is printed twice with different values: {figures[name]} and {value}")
                figures[name] = value
    return figures


def check_quotes(path: str | Path) -> list[str]:
    """Every mismatch between a notebook's prose and its stored outputs (an empty list: none)."""
    notebook = json.loads(Path(path).read_text())
    try:
        figures = printed_figures(notebook)
    except ValueError as error:
        return [f"{Path(path).name}: {error}"]
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        where = f"{Path(path).name}, cell {index}"
        text = _text(cell)
        for mark in _MARK.finditer(text):
            name, written = mark["name"], mark["number"]
            if name not in figures:
                problems.append(f"{where}: {written} is marked q:{name}, but no code cell prints {name!r} with quote()")
                continue
            value, decimals, signed = _number(written)
            printed, printed_decimals, _ = _number(figures[name])
            reference = printed if signed else abs(printed)
            if decimals > printed_decimals or abs(reference - value) > 0.5 * 10 ** -decimals + 1e-9:
                problems.append(f"{where}: the text says {written}{mark['percent'] or ''} for {name}, "
                                f"the output says {figures[name]}")
        given = set(cell.get("metadata", {}).get("cissl_kit", {}).get("given", []))
        for token in unmarked_numbers(text):
            if token not in given:
                problems.append(f"{where}: {token} is neither marked with <!--q:name--> nor listed as a constant "
                                "of the text in the cell's metadata (cissl_kit.given)")
    return problems


def unmarked_numbers(text: str) -> list[str]:
    """The numbers of a markdown text that are neither marked with ``<!--q:name-->`` nor part of a name or a
    reference (see ``_UNMARKED``), as written (spaces removed)."""
    prose = _HEADING.sub(" ", _NOT_PROSE.sub(" ", _MARK.sub(" ", text)))
    tokens = []
    for match in _UNMARKED.finditer(prose):
        before = prose[max(0, match.start() - 40):match.start()]
        token = match.group().replace(" ", "")
        if _REFERENCE.search(before) or re.fullmatch(r"(19|20)\d\d|0\d", token):  # a reference, a year, "05"
            continue
        tokens.append(token)
    return tokens


class Table:
    """A table shown rendered (Markdown) in JupyterLab, on GitHub and in the book, whose plain-text form is
    the same text, so that ``pytest --nbval`` compares every number in it."""

    def __init__(self, markdown: str) -> None:
        self.markdown = markdown

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.markdown


HANDOUT_NOTE = ("This is a hand-out: it holds the exercises without their worked solutions, and no outputs. The "
                "numbers the text quotes come from the full notebook, run on a 2-core CPU with the seeds set in the "
                "set-up cell; run the cells to see your own (on another CPU the last digits may differ).")
_SOLUTIONS_NOTE = re.compile(r"<!--solutions-note-->.*?<!--/solutions-note-->", re.S)


def repository_url() -> str:
    """The kit's repository, as ``pyproject.toml`` names it (``[project.urls] Repository``): the one source
    of every Colab link and install cell."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        for entry in metadata("cissl_kit").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "repository":
                return url.strip()
    except PackageNotFoundError:
        pass
    return "https://github.com/cissl-kit/cissl_kit"


def strip_solutions(paths: Iterable[str | Path], out_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Write copies of the notebooks without their solution cells, outputs cleared, into ``out_dir``.

    Refuses (``ValueError``) to write into the notebooks' own folder or over an existing file unless
    ``overwrite``, so that no worked solution is lost."""
    paths = [Path(p) for p in paths]
    out_dir = Path(out_dir)
    if not paths:
        raise FileNotFoundError("no notebooks to strip (expected .ipynb files)")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no notebook at {path}")
        if out_dir.exists() and out_dir.resolve() == path.parent.resolve():
            raise ValueError(f"OUT_DIR must not be the notebooks' own folder ({out_dir}): the copies would "
                             "replace the notebooks with their solutions")
    targets = [out_dir / path.name for path in paths]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace the copies in {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, target in zip(paths, targets):
        notebook = json.loads(path.read_text())
        cells = []
        for cell in notebook["cells"]:
            if is_solution(cell):
                continue
            check = check_of(cell)
            if check:  # where the solution was: the answers the check reads, to be filled in
                cells.append(answer_cell(check))
            cell = {**cell, "metadata": {k: v for k, v in cell.get("metadata", {}).items() if k != "execution"}}
            if cell["cell_type"] == "markdown":  # the note about folded solutions becomes the hand-out's own
                cell["source"] = _SOLUTIONS_NOTE.sub(HANDOUT_NOTE, _text(cell))
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
            cells.append(cell)
        notebook["cells"] = cells
        notebook["metadata"] = {k: v for k, v in notebook.get("metadata", {}).items() if k != "widgets"}
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return targets


def answer_cell(check: str) -> dict:
    """The hand-out's cell for exercise ``check``'s answers: each name its check reads, set to ``...``."""
    number = check.rpartition("_ex")[2]
    lines = [f"# Your answers to exercise {number}: replace each ... (the exercise's last line says what it holds)"]
    lines += [f"{name} = ..." for name in answer_names(check)]
    return {"cell_type": "code", "execution_count": None, "id": f"answer-{check}", "metadata": {"tags": [ANSWER_TAG]},
            "outputs": [], "source": "\n".join(lines)}


def solution_count(path: str | Path) -> tuple[int, int]:
    """(exercises, exercises with a solution) of a notebook: an exercise is a markdown cell that
    starts with ``**Exercise``; it has a solution if solution cells follow it."""
    cells = json.loads(Path(path).read_text())["cells"]
    exercises = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and _text(c).lstrip().startswith("**Exercise")]
    solved = sum(1 for i in exercises if i + 1 < len(cells) and is_solution(cells[i + 1]))
    return len(exercises), solved


__all__ = ["SOLUTION_TAG", "ANSWER_TAG", "NUMBERS_VARY_TAG", "FOLDED", "HANDOUT_NOTE", "Table", "quote",
           "same_but_numbers", "is_solution", "answer_cell", "printed_figures", "check_quotes", "unmarked_numbers",
           "repository_url", "strip_solutions", "solution_count"]
