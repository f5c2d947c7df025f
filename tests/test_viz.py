"""Figures a student can read: one colour per method in every figure, interrupted runs marked, forest plots of
the paired differences with Holm's correction, and default sizes that JupyterLab shows unscaled."""

import math

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from cissl_kit.engine import TrainResult, results_table  # noqa: E402
from cissl_kit.stats import differences_table, holm, paired_differences  # noqa: E402
from cissl_kit.viz import METHOD_COLOURS, method_colour, plot_benchmark, plot_differences, plot_history, plot_per_class  # noqa: E402
from cissl_kit.viz import plot_per_class_differences  # noqa: E402


def _rows(methods=("fixmatch", "semi", "darp"), seeds=(0, 1, 2, 3), profiles=("consistent", "reversed")):
    rows = []
    for p, profile in enumerate(profiles):
        for seed in seeds:
            for m, method in enumerate(methods):
                accuracy = 0.8 + 0.02 * m + 0.01 * ((seed * 7 + m * 3 + p) % 4)
                rows.append({"label": method, "profile": profile, "seed": seed, "accuracy": accuracy, "many": accuracy,
                             "medium": accuracy, "few": accuracy, "pl_accuracy": 0.9, "per_class": [accuracy] * 4})
    return rows


def _bar_colour(ax, label):
    for container in ax.containers:
        if container.get_label() == label:
            return to_hex(container.patches[0].get_facecolor())
    raise AssertionError(label)


def test_a_method_has_one_colour_in_every_figure():
    per_class = plot_per_class({"semi": [0.5] * 4, "fixmatch": [0.4] * 4})
    bars = plot_benchmark(_rows())
    lines = plot_history({"fixmatch": [{"step": 1, "accuracy": 0.1}], "semi": [{"step": 1, "accuracy": 0.2}]})
    forest = plot_differences(paired_differences(_rows(), "darp"))
    for method in ("fixmatch", "semi"):
        colour = METHOD_COLOURS[method]
        assert _bar_colour(per_class, method) == _bar_colour(bars, method) == colour
        assert to_hex(next(line for line in lines.get_lines() if line.get_label() == method).get_color()) == colour
        assert any(to_hex(line.get_color()) == colour for line in forest[0].get_lines())
    assert method_colour("SeMi w/o EA") == method_colour("SeMi w/o EA") != method_colour("SeMi w/o PLCE")
    assert len(set(METHOD_COLOURS.values())) == len(METHOD_COLOURS)
    plt.close("all")


def test_an_interrupted_run_is_marked_in_tables_and_figures():
    done = TrainResult("fixmatch", {}, {"steps": 120}, {}, [{"step": 120, "accuracy": 0.9}], {"step": 120, "accuracy": 0.9},
                       1.0, False)
    cut = TrainResult("supervised", {}, {"steps": 120}, {}, [{"step": 36, "accuracy": 0.47}],
                      {"step": 36, "accuracy": 0.47}, 1.0, True)
    table = results_table({"FixMatch": done, "supervised": cut})
    assert "supervised [interrupted at step 36]" in table and "FixMatch [interrupted" not in table
    ax = plot_history({"FixMatch": done, "supervised": cut})
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["FixMatch", "supervised [interrupted at step 36]"]
    assert ax.get_lines()[1].get_linestyle() == "--"
    plt.close("all")


def test_paired_p_values_and_holm_follow_their_definitions():
    from scipy.stats import ttest_rel

    rows = _rows()
    entries = paired_differences(rows, "fixmatch")
    for entry in entries:
        ours = [100 * r["accuracy"] for r in rows if r["label"] == entry["method"] and r["profile"] == entry["profile"]]
        base = [100 * r["accuracy"] for r in rows if r["label"] == "fixmatch" and r["profile"] == entry["profile"]]
        assert entry["p_value"] == pytest.approx(ttest_rel(ours, base).pvalue, rel=1e-6)
    # Holm by hand: sorted p 0.005, 0.01, 0.03, 0.04 against 0.05/4, 0.05/3, 0.05/2, 0.05/1: the first two stay
    made = [{"p_value": p, "seeds": 5} for p in (0.04, 0.005, 0.03, 0.01)]
    assert [e["holm"] for e in holm(made)] == [False, True, False, True]
    single = [{"p_value": float("nan"), "seeds": 1}]
    assert holm(single)[0]["holm"] is False


def test_the_differences_table_counts_its_intervals_and_corrects_for_them():
    table = differences_table(_rows(), baselines=("fixmatch",))
    assert "| Holm vs fixmatch |" in table
    last = table.splitlines()[-1]
    assert last.startswith("4 intervals at once; median half-width") and "after Holm's correction" in last


def test_default_figures_fit_jupyterlabs_output_area():
    for ax in (plot_per_class({"semi": [0.5] * 10}), plot_benchmark(_rows()), plot_history({"a": []})):
        assert ax.figure.get_size_inches()[0] * 100 <= 1000
    axes = plot_differences(paired_differences(_rows(), "fixmatch"))
    assert axes[0].figure.get_size_inches()[0] * 100 <= 1000
    assert all(not math.isnan(e["mean"]) for e in paired_differences(_rows(), "fixmatch"))
    plt.close("all")


def test_per_class_differences_put_one_dot_per_method_and_class_at_the_mean_gap():
    rows = _rows(methods=("fixmatch", "semi"), seeds=(0, 1))
    for r in rows:  # semi beats fixmatch by 10 points on class 3 only, in every seed
        r["per_class"] = [0.5, 0.6, 0.7, 0.9 if r["label"] == "semi" else 0.8]
        r["groups"] = {"many": [0], "medium": [1, 2], "few": [3]}
    ax = plot_per_class_differences(rows, "fixmatch", "consistent")
    dots = [line for line in ax.get_lines() if line.get_label() == "semi"]
    assert len(dots) == 1 and list(dots[0].get_ydata()) == pytest.approx([0, 0, 0, 10])
    assert [line.get_label() for line in ax.get_lines() if line.get_marker() == "o"] == ["semi"]  # no baseline dot
    with pytest.raises(ValueError, match="baseline 'abc' has no run in the 'consistent' rows"):
        plot_per_class_differences(rows, "abc", "consistent")
    with pytest.raises(ValueError, match="style must be one of"):
        plot_per_class({"semi": [0.5] * 4}, style="lines")
    plt.close("all")
