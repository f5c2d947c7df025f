"""docs/results.md and the README's headline table show what the shipped files hold: every generated block is
recomputed here from the digest-checked rows and compared, and every figure the page shows exists."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def page():
    spec = importlib.util.spec_from_file_location("results_page", ROOT / "benchmarks" / "results_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_table_matches_the_shipped_files(page):
    generated = page.blocks()
    for path in page.PAGES:
        text = path.read_text()
        names = [m["name"] for m in page.BLOCK.finditer(text)]
        assert names, f"{path.name} has no generated block"
        assert page.stale_blocks(text, generated) == [], f"{path.name}: run python benchmarks/results_page.py"
    assert "intervals at once; median half-width 0.8 points" in generated["main-differences"]  # the issue-23 target


def test_a_changed_figure_in_a_table_is_caught(page):
    generated = page.blocks()
    text = page.PAGE.read_text()
    edited = text.replace("| consistent | fixmatch | 10 | 92.8 ± 1.5 |", "| consistent | fixmatch | 10 | 93.8 ± 1.5 |", 1)
    assert edited != text
    assert page.stale_blocks(edited, generated) == ["main-summary"]
    assert page.render(edited, generated) == text
    with pytest.raises(KeyError, match="'nonsense'"):
        page.render("<!-- generated: nonsense -->\n<!-- /generated -->", generated)


def test_the_pages_images_and_links_exist():
    for path in (ROOT / "docs" / "results.md", ROOT / "README.md"):
        for target in re.findall(r"\]\(((?:docs/|figures/)[^)#]+)\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links {target}, which is missing"
