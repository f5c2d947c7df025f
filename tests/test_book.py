"""The book (docs/conf.py): it builds offline with warnings as errors, every internal link and image it
holds resolves, and in Chromium its pages show their figures and typeset equations."""

import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
SCREENSHOTS = ROOT / "runs" / "book-screenshots"
# the one image a page may take from the network: the Open-in-Colab badge of each notebook's first cell
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


class _Links(HTMLParser):
    """The ids a page defines, and the links and images it points to."""

    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append((tag, attrs[key]))


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The book built once from the repository, into a temporary folder: (folder, seconds, log)."""
    pytest.importorskip("myst_nb", reason="pip install -e '.[dev]' installs the book's tools")
    out = tmp_path_factory.mktemp("book") / "html"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-c", "docs", ".",
                           str(out)], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"the book did not build with warnings as errors:\n{done.stderr[-4000:]}"
    return out, seconds, done.stdout + done.stderr


def test_the_book_builds_without_a_warning_and_holds_every_notebook_and_page(book):
    out, seconds, log = book
    assert "WARNING" not in log and "ERROR" not in log
    for stem in NOTEBOOKS:
        assert (out / "notebooks" / f"{stem}.html").is_file(), stem
    for stem in PAGES:
        assert (out / "docs" / f"{stem}.html").is_file(), stem
    index = (out / "docs" / "index.html").read_text()
    # the table of contents reaches every notebook and page
    for stem in NOTEBOOKS:
        assert f'href="../notebooks/{stem}.html"' in index, stem
    for stem in set(PAGES) - {"index"}:
        assert f'href="{stem}.html"' in index, stem
    assert 'url=docs/index.html' in (out / "index.html").read_text()
    pages = list(out.rglob("*.html"))
    print(f"\nthe book: {len(pages)} HTML pages built in {seconds:.1f} s")


def test_every_internal_link_and_image_of_the_book_resolves(book):
    out, _, _ = book
    pages = {path: _parse(path) for path in out.rglob("*.html")}
    broken, checked = [], 0
    for path, parsed in pages.items():
        for tag, ref in parsed.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("//", "mailto:")):
                if (tag == "img" and ref != COLAB_BADGE) or (tag == "script" and parts.scheme):
                    broken.append(f"{path.relative_to(out)}: {tag} from the network, {ref}")
                continue
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            checked += 1
            if not target.is_file():
                broken.append(f"{path.relative_to(out)}: {ref} (no such file)")
            elif parts.fragment and target.suffix == ".html" and target in pages:
                if unquote(parts.fragment) not in pages[target].ids:
                    broken.append(f"{path.relative_to(out)}: {ref} (no such anchor)")
    assert checked > 500
    assert not broken, "\n".join(broken[:30])


def test_every_notebook_figure_is_in_the_book(book):
    """Each stored image output of a notebook appears as an image in its page."""
    out, _, _ = book
    for stem in NOTEBOOKS:
        cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
        stored = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        shown = len(re.findall(r'<img [^>]*src="\.\./_images/', (out / "notebooks" / f"{stem}.html").read_text()))
        assert shown == stored > 0, f"{stem}: {stored} stored figures, {shown} in the book"


@pytest.mark.browser
def test_two_pages_render_their_figures_and_equations_in_chromium(book):
    """Notebook 02 (equations and figures) and the results page (figures), opened from disk in Chromium:
    every image decodes, MathJax (served by the book itself) typesets every equation, and nothing is
    fetched from the network."""
    from test_browser import CHROMIUM, CHROMIUM_ARGS, _requirements_or_skip

    sync_api = _requirements_or_skip()
    out, _, _ = book
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            remote = []
            # offline, as here: the network is refused, and any request for it but the badge's is a failure
            page.route(re.compile(r"^https?://"), lambda route: (remote.append(route.request.url)
                                                                  if route.request.url != COLAB_BADGE else None,
                                                                  route.abort()))
            for path, min_math in ((out / "notebooks" / "02_entropy_hard_example_weighting.html", 5),
                                   (out / "docs" / "results.html", 0)):
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                images = page.evaluate("""(badge) => [...document.images].filter(i => i.src !== badge)
                                           .map(i => [i.src, i.complete && i.naturalWidth > 0])""", COLAB_BADGE)
                assert images and all(ok for _, ok in images), f"{path.name}: images that did not load: " \
                    f"{[src for src, ok in images if not ok]}"
                if min_math:
                    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                    page.evaluate("() => MathJax.startup.promise")
                    typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
                    raw = page.evaluate("""() => [...document.querySelectorAll('.math')]
                                           .filter(e => !e.querySelector('mjx-container')).length""")
                    assert typeset >= min_math and raw == 0, f"{path.name}: {typeset} typeset, {raw} left as TeX"
                    page.locator("mjx-container").nth(2).scroll_into_view_if_needed()  # an equation in view
                    page.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"))
            assert not remote, f"the book fetched from the network: {remote[:5]}"
        finally:
            chromium.close()


def test_the_book_command_in_the_readme_is_the_one_tested():
    readme = (ROOT / "README.md").read_text()
    assert "python -m sphinx -W -b html -c docs . docs/_build/html" in readme
    assert "docs/_build/" in (ROOT / ".gitignore").read_text()  # the built book is never committed
