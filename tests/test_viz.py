"""Figures a student can read: one colour per method in every figure, interrupted runs marked, forest plots of
the paired differences with Holm's correction, and default sizes that JupyterLab shows unscaled."""

import math

import numpy as np

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from cissl_kit.engine import TrainResult, results_table  # noqa: E402
from cissl_kit.stats import differences_table, holm, interval_summary, paired_differences  # noqa: E402
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


def test_a_comparison_read_from_both_sides_is_one_hypothesis_with_one_verdict():
    # A − B and B − A (a table with both A and B as baselines) have one p-value: Holm must count it once and
    # give both cells the same verdict. Counted twice, the first copy faced 0.05/5 and the second 0.05/4.
    made = [dict(profile="x", metric="accuracy", method=m, baseline=b, p_value=p, seeds=10, low=0.1, high=0.5,
                 within_noise=False) for m, b, p in (("a", "b", 0.011), ("b", "a", 0.011), ("c", "b", 0.001),
                                                      ("d", "b", 0.3), ("e", "b", 0.4))]
    holm(made)
    assert made[0]["holm"] is made[1]["holm"] is True  # 0.011 <= 0.05/3 as the second of four comparisons
    assert interval_summary(made)["intervals"] == 4 and interval_summary(made)["holm"] == 2
    table = differences_table(_rows(methods=("fixmatch", "fixmatch_la", "semi")), baselines=("fixmatch", "fixmatch_la"))
    # per profile: semi − fixmatch, semi − fixmatch_la, and fixmatch_la − fixmatch (shown in two cells)
    assert table.splitlines()[-1].startswith("6 intervals at once"), table
    cells = {c[1]: c for c in ([x.strip() for x in line.strip("|").split("|")] for line in table.splitlines()
                                if line.startswith("| consistent |"))}
    assert {cells["fixmatch"][-1], cells["fixmatch_la"][-2]} in ({"n.d."}, {"gain", "loss"})


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


def test_series_that_are_not_methods_take_the_colours_given_and_methods_keep_theirs():
    ax = plot_per_class({"labeled π": [0.5] * 4, "acr": [0.4] * 4}, colours={"labeled π": "#4c72b0", "acr": "#000000"})
    assert _bar_colour(ax, "labeled π") == "#4c72b0" and _bar_colour(ax, "acr") == METHOD_COLOURS["acr"]
    lines = plot_history({"consistent": [{"step": 1, "accuracy": 0.1}]}, colours={"consistent": "#c44e52"})
    assert to_hex(lines.get_lines()[0].get_color()) == "#c44e52"
    plt.close("all")


def test_a_legend_below_many_methods_stays_within_the_figure(tmp_path):
    names = ["fixmatch", "fixmatch_la", "fixmatch_bh", "semi", "layermatch", "alternate", "supervised", "supervised_la"]
    ax = plot_per_class({n: [0.5] * 10 for n in names}, style="dots")
    path = tmp_path / "f.png"
    ax.figure.savefig(path, dpi=100, bbox_inches="tight")  # as the inline backend stores it
    from PIL import Image

    assert Image.open(path).size[0] <= 1000
    plt.close("all")


def test_labels_in_one_figure_never_look_alike_and_a_method_keeps_its_colour_whatever_its_case():
    from cissl_kit.viz import figure_colours

    assert method_colour("FixMatch") == METHOD_COLOURS["fixmatch"] and method_colour("SeMi") == METHOD_COLOURS["semi"]
    # the label sets of notebooks 03 and 02, whose hashed colours gave two oranges and two purples
    for labels in (["FixMatch", "FixMatch + Grad-ReLU", "LayerMatch (kit)", "LayerMatch, SAT from 1"],
                   ["FixMatch τ=0.95", "FixMatch τ=0.7", "FixMatch + LA", "FixMatch + balanced head", "SeMi τ=0.7"]):
        _assert_distinct(figure_colours(labels), labels)
    assert figure_colours(["FixMatch", "x"])["FixMatch"] == METHOD_COLOURS["fixmatch"]
    labels = ["FixMatch τ=0.95", "FixMatch τ=0.7"]
    chosen = figure_colours(labels)
    assert figure_colours(labels) == chosen  # the same figure, the same colours
    assert figure_colours(["x"], colours={"x": "#123456"}) == {"x": "#123456"}


def _assert_distinct(chosen, labels):
    import colorsys

    rgb = {label: np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) for label, c in chosen.items()}
    hls = {label: colorsys.rgb_to_hls(*(v / 255 for v in value)) for label, value in rgb.items()}
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if _method_or_variant_of_one(a) and _method_or_variant_of_one(b):
                continue  # two registered methods keep their own colours (a pair like fixmatch / fixmatch_la)
            hue_gap = abs(hls[a][0] - hls[b][0])
            same_hue = min(hls[a][2], hls[b][2]) > 0.25 and min(hue_gap, 1 - hue_gap) < 30 / 360
            assert np.linalg.norm(rgb[a] - rgb[b]) >= 90 and not same_hue, (a, b, chosen[a], chosen[b])


def _method_or_variant_of_one(label):
    return label.lower() in METHOD_COLOURS


def test_stage_means_average_one_stage_per_loop_over_the_seeds_and_skip_nan():
    from cissl_kit.stats import stage_means

    def run(seed, changed):
        curve = [{"stage": "initialize classifier", "loop": 0, "accuracy": 0.5}]
        for loop, c in enumerate(changed, start=1):
            curve += [{"stage": "assign labels", "loop": loop, "changed": c},
                      {"stage": "train classifier", "loop": loop, "accuracy": 0.6 + 0.1 * seed}]
        return {"label": "AS", "profile": "consistent", "seed": seed, "curve": curve}

    rows = [run(0, [float("nan"), 0.1, 0.0]), run(1, [float("nan"), 0.3, 0.2]),
            {**run(2, [0.9, 0.9, 0.9]), "interrupted": True}]
    changed = stage_means(rows, "AS", "assign labels", "changed")
    assert list(changed) == [1, 2, 3] and math.isnan(changed[1])
    assert changed[2] == pytest.approx(0.2) and changed[3] == pytest.approx(0.1)
    assert stage_means(rows, "AS", "train classifier", "accuracy") == pytest.approx({1: 0.65, 2: 0.65, 3: 0.65})
    with pytest.raises(ValueError, match=r"stage must be one of \['assign labels', 'initialize classifier', "
                                         r"'train classifier'\], got 'assign'"):
        stage_means(rows, "AS", "assign", "changed")
    with pytest.raises(ValueError, match="label 'R \\+ R' has no finished run"):
        stage_means(rows, "R + R", "assign labels", "changed")


def _belief_rows():
    """Two seeds of a method with an explicit estimate and of one without, in one profile; 3 classes."""
    def run(label, seed, beliefs, key, seconds):
        curve = [{"step": 100 * (i + 1), key: b} for i, b in enumerate(beliefs)]
        if key == "estimate":  # such a run also records its pseudo-label shares, which are not its estimate
            curve = [{**point, "pl_distribution": [1.0, 0.0, 0.0]} for point in curve]
        return {"label": label, "profile": "middle", "seed": seed, "curve": curve, "seconds": seconds,
                "groups": {"many": [0], "medium": [1], "few": [2]}}

    nan = float("nan")
    return [run("simpro", 0, [[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]], "estimate", 15.0),
            run("simpro", 1, [[0.4, 0.3, 0.3], [0.0, 2.0, 2.0]], "estimate", 18.0),
            run("fixmatch", 0, [[nan] * 3, [2.0, 1.0, 1.0]], "pl_distribution", 10.0),
            run("fixmatch", 1, [[0.0, 0.0, 0.0], [1.0, 1.0, 2.0]], "pl_distribution", 12.0)]


def test_total_variation_is_the_share_of_mass_in_the_wrong_class_of_two_normalised_distributions():
    from cissl_kit.stats import total_variation

    assert total_variation([1, 0, 0], [0, 1, 0]) == pytest.approx(1.0)
    assert total_variation([2, 2], [10, 10]) == pytest.approx(0.0)  # counts are normalised first
    assert total_variation([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)
    assert math.isnan(total_variation([0, 0], [1, 1]))  # nothing passed: no distribution to compare
    with pytest.raises(ValueError, match="p and q must have as many classes, got 2 and 3"):
        total_variation([1, 1], [1, 1, 1])


def test_a_runs_belief_is_its_estimate_where_it_records_one_else_its_pseudo_label_shares_averaged_over_seeds():
    from cissl_kit.stats import distance_curve, distribution_key, mean_distribution_curve

    rows = _belief_rows()
    assert distribution_key(rows, "simpro") == "estimate" and distribution_key(rows, "fixmatch") == "pl_distribution"
    steps, means = mean_distribution_curve(rows, "simpro", "middle")
    assert steps == [100, 200]
    assert means[0] == pytest.approx([0.3, 0.3, 0.4]) and means[1] == pytest.approx([0.0, 0.75, 0.25])
    steps, means = mean_distribution_curve(rows, "fixmatch", "middle")
    assert all(math.isnan(v) for v in means[0])  # no seed passed a pseudo-label in the first interval
    assert means[1] == pytest.approx([0.375, 0.25, 0.375])
    _, distances = distance_curve(rows, "simpro", "middle", [1, 1, 2])
    # seed 0 at step 200: (0, 1, 0) against (.25, .25, .5) is 0.75 misplaced; seed 1: (0, .5, .5) is 0.25
    assert distances[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="label 'acr' has no finished run"):
        distance_curve(rows, "acr", "middle", [1, 1, 2])


def test_the_final_distance_is_a_metric_and_every_profile_needs_its_truth():
    from cissl_kit.stats import summarize, with_estimate_distance

    rows = _belief_rows()
    measured = with_estimate_distance(rows, {"middle": [1, 1, 2]})
    assert [r["estimate_distance"] for r in measured] == pytest.approx([0.75, 0.25, 0.25, 0.0])
    assert "estimate_distance" not in rows[0]  # copies
    summary = {s["method"]: s["estimate_distance"] for s in summarize(measured, metrics=("estimate_distance",))}
    assert summary == pytest.approx({"simpro": 50.0, "fixmatch": 12.5})
    with pytest.raises(ValueError, match=r"truths must give the unlabeled class counts of every profile; missing "
                                         r"\['middle'\]"):
        with_estimate_distance(rows, {"reversed": [1, 1, 1]})


def test_time_ratios_pair_each_run_with_the_baselines_on_the_same_split_and_seed():
    from cissl_kit.stats import time_ratios

    rows = _belief_rows()
    assert time_ratios(rows, "fixmatch") == {"simpro": pytest.approx((1.5, 1.5, 1.5))}
    rows[1]["seconds"] = 24.0
    assert time_ratios(rows, "fixmatch")["simpro"] == pytest.approx((1.75, 1.5, 2.0))
    with pytest.raises(ValueError, match="baseline 'acr' shares no profile and seed"):
        time_ratios(rows, "acr")


def test_the_prior_explorer_draws_the_truth_behind_each_belief_and_marks_the_step():
    from cissl_kit.viz.widgets import prior_explorer

    rows = _belief_rows()
    panel, draw = prior_explorer(rows, {"middle": [1, 1, 2]})
    draw("middle", 100)
    left, right = plt.gcf().axes
    truth = next(c for c in left.containers if c.get_label() == "true unlabeled shares")
    assert [round(bar.get_height(), 3) for bar in truth] == [0.25, 0.25, 0.5]  # the truth, as shares
    simpro = next(line for line in left.lines if line.get_label() == "simpro")
    assert list(simpro.get_ydata()) == pytest.approx([0.3, 0.3, 0.4])
    assert [line.get_xdata()[0] for line in right.lines if line.get_linestyle() == ":"] == [100]
    fixmatch = next(line for line in right.lines if line.get_label() == "fixmatch")
    assert math.isnan(fixmatch.get_ydata()[0]) and fixmatch.get_ydata()[1] == pytest.approx(12.5)
    plt.close("all")
    with pytest.raises(ValueError, match=r"missing \['middle'\]"):
        prior_explorer(rows, {"uniform": [1, 1, 1]})
    # a method trained in one setting only is drawn there and left out elsewhere
    extra = [{**r, "label": "acr", "profile": "uniform"} for r in rows if r["label"] == "simpro"]
    panel, draw = prior_explorer(rows + extra, {"middle": [1, 1, 2], "uniform": [1, 1, 1]})
    draw("middle", 200)
    assert sorted(line.get_label() for line in plt.gcf().axes[1].lines if line.get_linestyle() != ":") == [
        "fixmatch", "simpro"]
    plt.close("all")
