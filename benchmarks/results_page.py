"""The tables and figures of ``docs/results.md`` (and the README's headline table), written from the shipped
ten-seed mnist-LT files (the reference, comparison and prior-estimation files):

    python benchmarks/results_page.py           # rewrite the generated blocks and the two figures
    python benchmarks/results_page.py --check   # exit 1 if a block differs from the shipped files

Each block sits between ``<!-- generated: NAME -->`` and ``<!-- /generated -->``; the text around the blocks
is written by hand and quotes them. ``tests/test_results_page.py`` runs ``--check``'s comparison, so a table
cannot drift from the files it claims to show.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cissl_kit.benchmark import comparison_results, prior_results, reference_results, write_figures
from cissl_kit.stats import differences_table, holm, interval_summary, paired_differences, summarize, summary_table

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"
PAGES = (PAGE, ROOT / "README.md")
FIGURES = PAGE.parent / "figures"
HEADLINE = ("fixmatch", "fixmatch_bh", "semi", "layermatch", "alternate", "acr", "abc", "daso", "darp", "crest_plus")
NAMES = {"fixmatch": "FixMatch", "fixmatch_la": "FixMatch + LA", "fixmatch_bh": "FixMatch + balanced head",
         "semi": "SeMi", "layermatch": "LayerMatch", "alternate": "Alternate Sampling", "acr": "ACR", "abc": "ABC",
         "daso": "DASO", "darp": "DARP", "crest_plus": "CReST+"}
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def headline_table(rows: list[dict]) -> str:
    """One row per method of :data:`HEADLINE`, one column per setting: the paired difference in overall accuracy
    from FixMatch + LA (points, 95% interval), marked ✓ where it stays distinguishable after Holm's correction
    over the whole table."""
    profiles = ("consistent", "uniform", "reversed")
    entries = [e for e in paired_differences(rows, "fixmatch_la") if e["method"] in HEADLINE]
    holm(entries)
    found = {(e["method"], e["profile"]): e for e in entries}
    base = {s["profile"]: s for s in summarize(rows) if s["method"] == "fixmatch_la"}
    lines = ["| Δ vs FixMatch + LA | " + " | ".join(profiles) + " |", "|---|---|---|---|",
             "| *FixMatch + LA itself* | " + " | ".join(f"*{base[p]['accuracy']:.1f} ± {base[p]['accuracy_std']:.1f}*"
                                                        for p in profiles) + " |"]
    for method in HEADLINE:
        cells = []
        for profile in profiles:
            e = found[method, profile]
            mark = " ✓" if e["holm"] else ""
            cells.append(f"{e['mean']:+.1f} [{e['low']:+.1f}, {e['high']:+.1f}]{mark}".replace("-", "−"))
        lines.append(f"| {NAMES[method]} | " + " | ".join(cells) + " |")
    counts = interval_summary(entries)
    seeds = sorted({e["seeds"] for e in entries})
    lines.append(f"\n{counts['intervals']} intervals, {'–'.join(map(str, seeds))} seeds each; median half-width "
                 f"{counts['median_half_width']:.1f} points; ✓: {counts['holm']} stay distinguishable after Holm's "
                 f"correction over all {counts['intervals']}.")
    return "\n".join(lines)


def blocks(main: list[dict] | None = None, comparison: list[dict] | None = None,
           prior: list[dict] | None = None) -> dict[str, str]:
    """Every generated block of the pages, by name: markdown computed from the shipped rows (or the rows given)."""
    main = reference_results() if main is None else main
    comparison = comparison_results() if comparison is None else comparison
    prior = prior_results() if prior is None else prior
    baselines = ("fixmatch_la", "fixmatch_bh")
    every = comparison + [r for r in main if r["label"] == "fixmatch_bh"]
    others = [r for r in comparison if r["label"] not in ("semi", "layermatch", "alternate")]
    return {
        "headline": headline_table(every),
        "main-summary": summary_table(main),
        "main-differences": differences_table(main),
        "main-differences-few": differences_table(main, metric="few"),
        "comparison-summary": summary_table(others, metrics=("accuracy", "few")),
        "comparison-differences": differences_table(others),
        "comparison-differences-few": differences_table(others, metric="few"),
        "prior-summary": summary_table(prior, metrics=("accuracy", "few")),
        "prior-differences": differences_table(prior, baselines=baselines),
        "prior-differences-few": differences_table(prior, baselines=baselines, metric="few"),
    }


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with each generated block replaced; a block the page names but ``generated`` lacks is an error."""
    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in generated:
            raise KeyError(f"a page names a block {name!r} that results_page.py does not make")
        return f"{match[1]}{generated[name]}\n{match[4]}"
    return BLOCK.sub(replace, text)


def stale_blocks(text: str, generated: dict[str, str]) -> list[str]:
    """The names of the page's blocks whose text is not what the shipped files give."""
    return [m["name"] for m in BLOCK.finditer(text) if m["body"] != generated.get(m["name"], "") + "\n"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a block is stale")
    args = parser.parse_args()
    main_rows, comparison, prior = reference_results(), comparison_results(), prior_results()
    generated = blocks(main_rows, comparison, prior)
    stale = [f"{page.name}: {name}" for page in PAGES for name in stale_blocks(page.read_text(), generated)]
    if args.check:
        print("stale blocks: " + ", ".join(stale) if stale else "every block matches the shipped files")
        return 1 if stale else 0
    for page in PAGES:
        page.write_text(render(page.read_text(), generated))
    for name, rows, baselines in (("mnist_lt", main_rows, ("fixmatch", "fixmatch_la")),
                                  ("mnist_lt_comparison", comparison, ("fixmatch", "fixmatch_la")),
                                  ("mnist_lt_prior", prior, ("fixmatch_la", "fixmatch_bh"))):
        folder = FIGURES / name
        folder.mkdir(parents=True, exist_ok=True)
        write_figures(rows, folder, baselines)
    print(f"{len(generated)} blocks ({', '.join(stale) or 'none'} changed); figures in {FIGURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
