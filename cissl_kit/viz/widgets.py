"""ipywidgets panels for the notebooks (inline backend + ``interactive_output``: JupyterLab and Colab)."""

from __future__ import annotations

import time

import matplotlib.pyplot as plt

from ..data.imbalance import UNLABELED_PROFILES, class_groups, long_tailed_counts, unlabeled_counts
from .plots import WIDTH, plot_class_counts


def live_output(draw, controls: dict):
    """What ``ipywidgets.interactive_output`` does, plus a status line: ``draw(**values)`` runs now and
    whenever a control changes; meanwhile the status says "computing …" (a slow setting never looks
    like a frozen plot), then how long the redraw took. Returns ``(output, status)``."""
    import ipywidgets as w

    out, status = w.Output(), w.HTML(layout=w.Layout(min_height="1.5em"))
    status.add_class("cissl-redraw-status")

    def redraw(_change=None) -> None:
        status.value = "<i>computing …</i>"
        start, done = time.perf_counter(), False
        try:
            with out:  # in a kernel an error is shown in the output, below the status
                out.clear_output(wait=True)
                draw(**{name: control.value for name, control in controls.items()})
                done = True
        finally:
            status.value = (f"<small>redrawn in {time.perf_counter() - start:.2f} s</small>" if done
                            else "<small>the redraw failed (the error is below)</small>")

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return out, status


def split_explorer(n_max: int = 1500, imbalance_ratio: float = 100.0, m_max: int = 3000,
                   unlabeled_ratio: float = 100.0, num_classes: int = 10, profile: str = "consistent"):
    """Sliders for N1, γ_l, M1, γ_u, K and the unlabeled profile, redrawing the class counts.

    Returns ``(panel, draw)``: the widget to display and the drawing function it calls.
    """
    import ipywidgets as w

    style = {"description_width": "150px"}
    layout = w.Layout(width="420px")
    controls = dict(
        n_max=w.IntSlider(n_max, 10, 5000, 10, description="N1 (labeled, head)", style=style, layout=layout),
        imbalance_ratio=w.FloatLogSlider(imbalance_ratio, base=10, min=0, max=3, step=0.05,
                                         description="γ_l (labeled ratio)", style=style, layout=layout),
        m_max=w.IntSlider(m_max, 10, 10000, 10, description="M1 (unlabeled, max)", style=style, layout=layout),
        unlabeled_ratio=w.FloatLogSlider(unlabeled_ratio, base=10, min=0, max=3, step=0.05,
                                         description="γ_u (unlabeled ratio)", style=style, layout=layout),
        num_classes=w.IntSlider(num_classes, 3, 100, 1, description="classes K", style=style, layout=layout),
        profile=w.ToggleButtons(options=list(UNLABELED_PROFILES), value=profile,
                                description="unlabeled profile", style=style),
    )

    def draw(n_max, imbalance_ratio, m_max, unlabeled_ratio, num_classes, profile):
        try:
            labeled = long_tailed_counts(n_max, imbalance_ratio, num_classes)
            unlabeled = unlabeled_counts(m_max, unlabeled_ratio, num_classes, profile)
        except ValueError as error:  # e.g. the tail would get zero images: say so instead of crashing
            print(f"Not a valid split: {error}")
            return
        groups = class_groups(labeled)
        fig, ax = plt.subplots(figsize=(8, 3.4))
        # γ_u as the text defines it: head over tail of the unlabeled counts (1/γ for reversed, 1 for uniform)
        shape = {"uniform": "γ_u = 1", "reversed": f"γ_u = 1/{unlabeled_ratio:.0f}"}.get(
            profile, f"head / tail {unlabeled_ratio:.0f}" if profile in ("middle", "head-tail") else
            f"γ_u = {unlabeled_ratio:.0f}")
        plot_class_counts(labeled, unlabeled, groups, ax=ax, log=True,
                          title=f"labeled γ_l = {imbalance_ratio:.0f}, unlabeled {profile} ({shape})")
        if num_classes > 20:
            ax.set_xticks(range(0, num_classes, max(1, num_classes // 10)))
        plt.show()
        sizes = {g: len(c) for g, c in groups.items()}
        print(f"labeled {sum(labeled)} (head {labeled[0]}, tail {labeled[-1]}), unlabeled {sum(unlabeled)} "
              f"(head {unlabeled[0]}, tail {unlabeled[-1]}); groups many/medium/few = "
              f"{sizes['many']}/{sizes['medium']}/{sizes['few']} classes")

    out, status = live_output(draw, controls)
    caption = w.HTML("<b>Move a slider</b>: the bars show images per class, labeled (blue) and unlabeled (grey), "
                     "on a log scale; shaded bands mark the many / medium / few groups.")
    panel = w.VBox([caption, w.HBox([w.VBox(list(controls.values())[:3]), w.VBox(list(controls.values())[3:])]), status, out])
    return panel, draw


def hardness_explorer(probs, true_labels, groups, scale: float = 0.75, threshold: float = 0.7):
    """Sliders for SeMi's s and τ over a model's predictions on unlabeled data.

    Left: the OHEML weight ``s·H/log K + (1 − s)`` against the normalised entropy. Right: the
    entropy histogram of the many-shot and few-shot classes' images, with the share of easy,
    hard and ultra-hard images per group printed below. Returns ``(panel, draw)``.
    """
    import ipywidgets as w
    import numpy as np
    import torch

    from ..analysis.hardness import EASY, HARD, ULTRA_HARD, hardness_categories
    from ..losses import entropy_weight, normalized_entropy

    probs = torch.as_tensor(probs).float().cpu()
    true_labels = torch.as_tensor(true_labels).cpu()
    entropy = normalized_entropy(probs).numpy()
    confidence = probs.max(1).values
    members = {name: np.isin(true_labels.numpy(), list(classes)) for name, classes in groups.items()}

    def draw(scale, threshold):
        categories = hardness_categories(confidence, threshold).numpy()
        weights = entropy_weight(probs, scale).numpy()
        fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.4))
        h = np.linspace(0, 1, 50)
        left.plot(h, scale * h + (1 - scale), lw=2)
        left.set(xlabel="normalised entropy H(p) / log K", ylabel="weight w", ylim=(0, 1.05),
                 title=f"OHEML weight, s = {scale:.2f}: w in [{1 - scale:.2f}, 1]")
        for name, colour in (("many", "#4C72B0"), ("few", "#C44E52")):
            right.hist(entropy[members[name]], bins=np.linspace(0, 1, 26), alpha=0.6, density=True,
                       color=colour, label=f"{name}-shot classes")
        right.set(xlabel="normalised entropy of the prediction", ylabel="density",
                  title="Which unlabeled images are uncertain?")
        right.legend(frameon=False)
        fig.tight_layout()
        plt.show()
        for name, inside in members.items():
            share = [100 * np.mean(categories[inside] == c) for c in (EASY, HARD, ULTRA_HARD)]
            used = inside & (categories != ULTRA_HARD)
            mean_w = weights[used].mean() if used.any() else float("nan")
            print(f"{name:>6}: easy {share[0]:5.1f}%  hard {share[1]:5.1f}%  ultra-hard {share[2]:5.1f}%   "
                  f"mean weight of the used ones {mean_w:.2f}")

    style = {"description_width": "170px"}
    controls = dict(
        scale=w.FloatSlider(scale, min=0.0, max=1.0, step=0.05, description="s (entropy scale)", style=style),
        threshold=w.FloatSlider(threshold, min=0.5, max=0.99, step=0.01, description="τ (threshold)", style=style),
    )
    out, status = live_output(draw, controls)
    caption = w.HTML("<b>s</b> sets how much more an uncertain image weighs than a confident one; "
                     "<b>τ</b> decides which images are used at all (hard) and which are left to the "
                     "embedding alignment (ultra-hard).")
    return w.VBox([caption, w.HBox(list(controls.values())), status, out]), draw


def tilt_explorer(noise_rate: float = 0.5, threshold: float = 0.7, seed: int = 0):
    """Sliders for the wrong-label rate in the low-density bridge and the pseudo-label threshold,
    redrawing the 2-D tilt demo. Returns ``(panel, draw)``."""
    import ipywidgets as w

    from ..analysis.toy import pseudo_label_tilt
    from .plots import plot_tilt_demo

    def draw(noise_rate, threshold):
        demo = pseudo_label_tilt(noise_rate, threshold, seed)
        fig, ax = plt.subplots(figsize=(7, 5.5))
        plot_tilt_demo(demo, ax=ax)
        plt.show()
        print(f"used {demo.used.sum()} of {len(demo.used)} unlabeled points, {demo.wrong.sum()} with a wrong pseudo-label")
        for name in demo.boundaries:
            print(f"{name:<20} tilt {demo.tilt_degrees(name):+6.1f}°   accuracy: both classes "
                  f"{100 * demo.accuracy[name]:5.1f}%, bridge {100 * demo.bridge_accuracy[name]:5.1f}%")

    style = {"description_width": "170px"}
    layout = w.Layout(width="440px")
    controls = dict(
        noise_rate=w.FloatSlider(noise_rate, min=0.0, max=1.0, step=0.05, description="wrong-label rate (bridge)",
                                 style=style, layout=layout),
        threshold=w.FloatSlider(threshold, min=0.5, max=0.99, step=0.01, description="threshold τ", style=style,
                                layout=layout),
    )
    out, status = live_output(draw, controls)
    caption = w.HTML("<b>Wrong-label rate</b>: the share of the bridge's upper tail points whose pseudo-label "
                     "goes to the head class; <b>τ</b>: the confidence a pseudo-label needs to be used.")
    return w.VBox([caption, w.HBox(list(controls.values())), status, out]), draw


def alternate_stepper(run):
    """A button that runs the next stage of an :class:`~cissl_kit.algorithms.AlternateRun` and
    redraws its progress. Returns the panel."""
    import ipywidgets as w

    from .plots import plot_alternate_progress

    button = w.Button(description="Run the next stage", button_style="primary", icon="play")
    status = w.HTML()
    status.add_class("cissl-redraw-status")
    out = w.Output()

    def redraw() -> None:
        out.clear_output(wait=True)
        with out:
            if run.records:
                plot_alternate_progress(run.records)
                plt.tight_layout()
                plt.show()
        done = len(run.records)
        status.value = (f"{done} of {run.num_stages} stages done"
                        + (f"; last: <b>{run.records[-1]['stage']}</b> (loop {run.records[-1]['loop']}), "
                           f"test accuracy of g {run.records[-1]['accuracy']:.3f}" if done else ""))
        button.disabled = done >= run.num_stages

    def on_click(_) -> None:
        button.disabled = True
        status.value = "<i>running the stage …</i>"
        start, done = time.perf_counter(), False
        try:
            with out:  # in a kernel an error (or an interrupt) is shown in the output
                run.next_stage()
                done = True
        finally:
            if done:
                redraw()
                status.value += f" <small>(stage and redraw: {time.perf_counter() - start:.2f} s)</small>"
            else:  # never stuck at "running" with a dead button
                status.value = "<small>the stage did not finish (see below); click to run it again</small>"
                button.disabled = False

    button.on_click(on_click)
    redraw()
    caption = w.HTML("<b>Each click runs one stage</b> — label assignment (f + g), embedding training "
                     "(f + g′ on D ∪ U′) or classifier training (g on D) — and redraws the curves.")
    return w.VBox([caption, w.HBox([button, status]), out])


def benchmark_explorer(rows, profile: str | None = None, metric: str = "per-class accuracy"):
    """Pick a setting and what to look at; redraws per-class accuracy (seed means) or a method's
    confusion matrix (first seed). ``rows``: a benchmark's results. Returns ``(panel, draw)``."""
    import ipywidgets as w

    from ..stats import per_class_means
    from .plots import plot_confusion, plot_per_class

    means = per_class_means(rows)
    profiles = list(means)
    methods = list(dict.fromkeys(r["label"] for r in rows))
    views = ["per-class accuracy"] + [f"confusion: {m}" for m in methods]
    controls = dict(
        profile=w.ToggleButtons(options=profiles, value=profile or profiles[-1], description="unlabeled data"),
        view=w.Dropdown(options=views, value=metric, description="show"),
    )

    def draw(profile, view):
        if view == "per-class accuracy":
            groups = next(r["groups"] for r in rows if r["profile"] == profile)
            fig, ax = plt.subplots(figsize=(9, 3.4))
            plot_per_class(means[profile], groups, ax=ax, style="dots" if len(means[profile]) > 3 else "bars",
                           title=f"Per-class test accuracy, {profile} unlabeled data (mean over seeds)")
        else:
            method = view.removeprefix("confusion: ")
            row = next(r for r in rows if r["profile"] == profile and r["label"] == method)
            fig, ax = plt.subplots(figsize=(4.2, 4))
            plot_confusion(row["confusion"], ax=ax,
                           title=f"{method}, {profile}, seed {row['seed']}: {100 * row['accuracy']:.1f} %")
        plt.show()

    out, status = live_output(draw, controls)
    caption = w.HTML("<b>Pick the unlabeled setting and what to show</b>: per-class accuracy of every method, "
                     "or one method's row-normalised confusion matrix (rows: true class).")
    return w.VBox([caption, w.HBox(list(controls.values())), status, out]), draw


def prior_explorer(rows, truths, profile: str | None = None):
    """Pick the unlabeled setting and a training step; redraws what each method believes the unlabeled class
    distribution is at that step (ACR's and SimPro's estimate, every other method's pseudo-label shares; the mean
    over seeds) against the truth, and each belief's distance from the truth over training.

    ``rows``: shipped or trained runs (``benchmark.prior_results()``); ``truths``: each profile's unlabeled class
    counts. Returns ``(panel, draw)``."""
    import ipywidgets as w

    from ..stats import distance_curve, mean_distribution_curve
    from .plots import plot_distance_curves, plot_estimates

    profiles = list(dict.fromkeys(r["profile"] for r in rows))
    missing = [p for p in profiles if p not in truths]
    if missing:
        raise ValueError(f"truths must give the unlabeled class counts of every profile in rows; missing {missing}")
    methods = list(dict.fromkeys(r["label"] for r in rows))
    steps = [point["step"] for point in next(r["curve"] for r in rows)]
    controls = dict(
        profile=w.ToggleButtons(options=profiles, value=profile or profiles[-1], description="unlabeled data"),
        step=w.SelectionSlider(options=steps, value=steps[-1], description="step", continuous_update=False),
    )

    def draw(profile, step):
        groups = next(r["groups"] for r in rows if r["profile"] == profile)
        fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.6), gridspec_kw={"width_ratios": [3, 2]})
        at = steps.index(step)
        here = [m for m in methods if any(r["label"] == m and r["profile"] == profile for r in rows)]
        beliefs = {m: mean_distribution_curve(rows, m, profile)[1][at] for m in here}
        plot_estimates(beliefs, truths[profile], groups, ax=left, title=f"{profile}, step {step} (mean over seeds)")
        plot_distance_curves({m: distance_curve(rows, m, profile, truths[profile]) for m in here}, ax=right,
                             title="distance from the truth", mark_step=step)
        right.get_legend().remove()
        fig.tight_layout()
        plt.show()

    out, status = live_output(draw, controls)
    caption = w.HTML("<b>Pick the unlabeled setting and a step</b>: grey bars are the true unlabeled class shares, "
                     "dots what each method believes them to be; right, the share of the mass each belief puts in "
                     "the wrong class.")
    return w.VBox([caption, w.HBox(list(controls.values())), status, out]), draw
