"""How long each notebook widget takes to redraw, kernel side, as JupyterLab's inline backend does it
(the figure rendered to PNG): the median of several redraws at the notebook's settings and at the
slow end of each control's range. The target is 1 s at the default settings; where a setting is
slower, the widget shows "computing …" while it draws (``live_output``).

    python benchmarks/widget_redraw.py [--repeats 5]

(The browser test measures the whole round trip, key press to new plot on the page, and writes it to
runs/browser-screenshots/redraw-times.json.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from cissl_kit.benchmark import comparison_results, reference_results  # noqa: E402
from cissl_kit.viz.widgets import benchmark_explorer, hardness_explorer, split_explorer, tilt_explorer  # noqa: E402


def _render_like_inline() -> None:
    """plt.show() as the inline backend does it: each open figure to a PNG, then closed."""
    for number in plt.get_fignums():
        plt.figure(number).savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close("all")


def _median_seconds(draw, kwargs: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the panels' printed summaries
            draw(**kwargs)
            _render_like_inline()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    plt.show = _render_like_inline  # the draw functions call plt.show()
    probs = torch.distributions.Dirichlet(torch.full((10,), 0.3)).sample((1304,))
    labels = torch.randint(0, 10, (1304,))
    groups = {"many": [0, 1, 2], "medium": [3, 4, 5], "few": [6, 7, 8, 9]}
    split_default = dict(n_max=1500, imbalance_ratio=100.0, m_max=3000, unlabeled_ratio=100.0, num_classes=10,
                         profile="consistent")
    cases = [
        ("01 split_explorer", split_explorer, split_default, "default (K = 10)"),
        ("01 split_explorer", split_explorer, {**split_default, "num_classes": 100}, "K = 100"),
        ("02 hardness_explorer", hardness_explorer, dict(scale=0.75, threshold=0.7), "default"),
        ("03 tilt_explorer", tilt_explorer, dict(noise_rate=0.5, threshold=0.7), "default"),
        ("03 tilt_explorer", tilt_explorer, dict(noise_rate=1.0, threshold=0.5), "all bridge labels wrong, τ = 0.5"),
        ("05 benchmark_explorer", benchmark_explorer, dict(profile="reversed", view="per-class accuracy"), "per class"),
        ("05 benchmark_explorer", benchmark_explorer, dict(profile="reversed", view="confusion: semi"), "confusion"),
        ("06 benchmark_explorer", benchmark_explorer, dict(profile="reversed", view="per-class accuracy"),
         "per class, 10 methods"),
    ]
    print(f"{'widget':<24}{'setting':<36}{'redraw (median)':>16}  target 1 s")
    for name, factory, kwargs, setting in cases:
        with contextlib.redirect_stdout(io.StringIO()):  # building a panel draws it once
            draw = _build(name, factory, probs, labels, groups)
        seconds = _median_seconds(draw, kwargs, args.repeats)
        print(f"{name:<24}{setting:<36}{seconds:15.2f}s  {'met' if seconds <= 1 else 'NOT met'}")


def _build(name, factory, probs, labels, groups):
    """The panel's drawing function (the panel itself is not shown)."""
    if factory is hardness_explorer:
        _, draw = factory(probs, labels, groups)
    elif factory is benchmark_explorer:
        _, draw = factory(comparison_results() if name.startswith("06") else reference_results(), profile="reversed")
    else:
        _, draw = factory()
    plt.close("all")
    return draw


if __name__ == "__main__":
    main()
