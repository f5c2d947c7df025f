"""The book: the notebooks with their stored outputs (never re-executed: nbval executes them) and the pages of
docs/. Built from the repository root, offline, warnings as errors:

    python -m sphinx -W -b html -c docs . docs/_build/html

Sphinx with myst-nb rather than Jupyter Book 2 (a Node.js application that fetches its theme on first use):
both read MyST, and this one builds offline, in one process, from pip packages alone. MathJax is served from
the book itself (sphinx-mathjax-offline), so equations render without a network.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)

project = "cissl_kit"
author = "the cissl_kit developers"
copyright = "2026, " + author
root_doc = "docs/index"
extensions = ["myst_nb", "sphinx-mathjax-offline"]

# the book's sources: these pages, the six notebooks and the two READMEs they link to
include_patterns = ["docs/**.md", "docs/figures/**", "notebooks/[0-9][0-9]_*.ipynb", "notebooks/README.md",
                    "data/README.md"]
exclude_patterns = ["docs/_build", ".venv", "runs", "handout", "docs/_extra", "**/.ipynb_checkpoints"]

nb_execution_mode = "off"  # the stored outputs are the ones nbval compares
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# a widget needs a running kernel: the book loads no widget JavaScript (it would come from a CDN) and shows the
# widget's stored fallback; the plots it drew are stored outputs of their own
nb_ipywidgets_js = {}

html_theme = "alabaster"
html_title = "cissl_kit"
html_theme_options = {"description": "a teaching kit for class-imbalanced semi-supervised learning",
                      "github_button": False, "extra_nav_links": {"Repository": REPOSITORY}}
html_show_sourcelink = False
html_copy_source = False
html_extra_path = ["_extra"]  # index.html at the top: a redirect to docs/index.html
