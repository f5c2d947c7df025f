"""Matplotlib figures used by the notebooks and the CLI. Each takes an optional ``ax`` and returns it.

Layer: above ``stats`` and the layers below it; it draws what it is given (results, rows, statistics)
and never imports the benchmark or the CLI. One colour per method everywhere: :func:`method_colour`.
Default sizes fit JupyterLab's output area (about 1,000 px wide at 100 dpi, with the file browser open).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from .._checks import check_choice

GROUP_COLOURS = {"many": "#4C72B0", "medium": "#55A868", "few": "#C44E52"}
# one colour per method, in every figure and widget: the registry's methods in a fixed order on tab20
# (seaborn's "tab20" order), and any other label (an ablation, a variant) a stable colour of its own
METHOD_ORDER = ("supervised", "supervised_la", "pseudolabel", "fixmatch", "fixmatch_la", "fixmatch_bh", "semi",
                "layermatch", "ldam_drw", "decoupling", "alternate", "pseudolabel_decoupling", "pseudolabel_ldam",
                "darp", "crest_plus", "fixmatch_da", "daso", "abc", "acr", "simpro", "cpe", "cdmad")
_PALETTE = ["#1f77b4", "#aec7e8", "#ff7f0e", "#2ca02c", "#98df8a", "#d62728", "#9467bd", "#8c564b", "#c49c94",
            "#e377c2", "#f7b6d2", "#7f7f7f", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5", "#ffbb78", "#ff9896",
            "#c5b0d5", "#393b79", "#637939", "#8c6d31"]
METHOD_COLOURS = dict(zip(METHOD_ORDER, _PALETTE))
WIDTH = 9.5  # inches: 950 px at 100 dpi, the widest figure that JupyterLab shows unscaled


_OTHER_COLOURS = ["#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#fd8d3c", "#74c476", "#9e9ac8", "#6baed6",
                  "#fdae6b", "#a1d99b", "#bcbddc"]
# distinct hues for a label whose stable colour is too close to one already in the figure
_DISTINCT = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
             "#17becf", "#393b79", "#637939"]
_TOO_CLOSE = 90  # Euclidean distance in 0-255 RGB under which two lines or bars are hard to tell apart
_SAME_HUE = 30 / 360  # two saturated colours closer in hue than this read as one (a light and a dark green)


def _method_key(label: str) -> str | None:
    """The registered method a label names (case aside, ``[interrupted …]`` suffix aside), or None."""
    key = label.split(" [")[0].strip()
    return key if key in METHOD_COLOURS else key.lower() if key.lower() in METHOD_COLOURS else None


def method_colour(label: str) -> str:
    """The colour of a method in every figure: its registered name's (``FixMatch`` is ``fixmatch``), else a
    stable one for the label (the same on every machine and in every session)."""
    import zlib

    key = _method_key(label)
    if key is not None:
        return METHOD_COLOURS[key]
    return _OTHER_COLOURS[zlib.crc32(label.split(" [")[0].strip().encode()) % len(_OTHER_COLOURS)]


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _alike(first: str, second: str) -> bool:
    """True when two colours are hard to tell apart in a legend: close in RGB, or both saturated and of one hue."""
    import colorsys

    a, b = _rgb(first), _rgb(second)
    if sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5 < _TOO_CLOSE:
        return True
    (ha, _, sa), (hb, _, sb) = (colorsys.rgb_to_hls(*(v / 255 for v in c)) for c in (a, b))
    return min(sa, sb) > 0.25 and min(abs(ha - hb), 1 - abs(ha - hb)) < _SAME_HUE


def figure_colours(labels: Sequence[str], colours: Mapping[str, str] | None = None) -> dict[str, str]:
    """The colour of each label in one figure: a method keeps :func:`method_colour`; another label takes its
    colour from ``colours`` where given, else its stable colour, unless it looks like one already used in
    the figure (close in RGB, or a saturated colour of the same hue), then the first distinct hue that does not."""
    chosen: dict[str, str] = {}
    methods = [label for label in labels if _method_key(label) is not None]
    for label in methods:
        chosen[label] = method_colour(label)
    for label in labels:
        if label in chosen:
            continue
        key = label.split(" [")[0].strip()
        if colours and key in colours:
            chosen[label] = colours[key]
            continue
        used = list(chosen.values())

        def clear(colour: str) -> bool:
            return not any(_alike(colour, other) for other in used)

        own = method_colour(label)
        chosen[label] = own if clear(own) else next((c for c in _DISTINCT if clear(c)), own)
    return {label: chosen[label] for label in labels}


def _series(values):
    """``(label suffix, history)`` of a history or a TrainResult: an interrupted run's lines say so."""
    history = getattr(values, "history", values)
    suffix = ""
    if getattr(values, "interrupted", False):
        suffix = f" [interrupted at step {values.final.get('step', '?')}]"
    return suffix, history


def _axes(ax: Axes | None, size: tuple[float, float] = (6, 3.5)) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def _shade_groups(ax: Axes, groups: Mapping[str, Sequence[int]] | None) -> None:
    """Light background bands behind the classes of each many / medium / few group, named at the top."""
    from matplotlib.transforms import blended_transform_factory

    top = blended_transform_factory(ax.transData, ax.transAxes)
    for name, classes in (groups or {}).items():
        colour = GROUP_COLOURS.get(name, "grey")
        for k in classes:
            ax.axvspan(k - 0.5, k + 0.5, color=colour, alpha=0.10, lw=0)
        if classes:
            ax.text((min(classes) + max(classes)) / 2, 1.01, name, transform=top, ha="center", va="bottom",
                    fontsize=8, color=colour)


def _log_counts(ax: Axes) -> None:
    """Log y-axis with plain numbers (10, 100, 1000) as labels."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _legend_below(ax: Axes, entries: int) -> None:
    """The legend under the axes: one row for up to five entries, else two (so it stays as wide as the figure)."""
    columns = entries if entries <= 5 else -(-entries // 2)
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=max(1, columns))


def plot_class_counts(
    labeled: Sequence[int],
    unlabeled: Sequence[int] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    title: str = "Class distribution",
    ax: Axes | None = None,
    log: bool = False,
) -> Axes:
    """Side-by-side bars of labeled and unlabeled counts per class, group bands behind."""
    ax = _axes(ax)
    k = np.arange(len(labeled))
    width = 0.4 if unlabeled is not None else 0.8
    ax.bar(k - (width / 2 if unlabeled is not None else 0), labeled, width, label="labeled", color="#4C72B0")
    if unlabeled is not None:
        ax.bar(k + width / 2, unlabeled, width, label="unlabeled", color="#A0A0A0")
    _shade_groups(ax, groups)
    ax.set(xlabel="class (sorted head → tail)", ylabel="images", xticks=k)
    ax.set_title(title, pad=14 if groups else 6)
    if log:
        _log_counts(ax)
    _legend_below(ax, 2)
    return ax


def plot_profiles(profiles: Mapping[str, Sequence[int]], title: str = "Class profiles", ax: Axes | None = None,
                  log: bool = True) -> Axes:
    """Lines of several class-count profiles (e.g. imbalance ratios) on one axis."""
    ax = _axes(ax)
    for name, counts in profiles.items():
        ax.plot(range(len(counts)), counts, marker="o", label=name)
    ax.set(xlabel="class index k (0 = head)", ylabel="images per class", title=title)
    if log:
        _log_counts(ax)
    ax.legend(frameon=False)
    return ax


def plot_per_class(
    values: Mapping[str, Sequence[float]],
    groups: Mapping[str, Sequence[int]] | None = None,
    title: str = "Per-class test accuracy",
    ylabel: str = "accuracy",
    ax: Axes | None = None,
    ylim: tuple[float, float] | None = (0, 1.02),
    style: str = "bars",
    colours: Mapping[str, str] | None = None,
) -> Axes:
    """One mark per method (or quantity) per class: grouped bars (``style="bars"``, for two or three series) or
    dots side by side (``"dots"``, readable with many methods). ``ylim=None`` scales to the values; ``colours``
    colours series that are not methods (:func:`figure_colours`)."""
    check_choice("style", style, ("bars", "dots"))
    ax = _axes(ax, (7, 3.5))
    names = list(values)
    num_classes = len(next(iter(values.values())))
    width = 0.8 / max(1, len(names))
    palette = figure_colours(names, colours)
    for i, name in enumerate(names):
        x = np.arange(num_classes) + (i - (len(names) - 1) / 2) * width
        colour = palette[name]
        if style == "bars":
            ax.bar(x, np.nan_to_num(values[name]), width, label=name, color=colour)
        else:
            ax.plot(x, values[name], "o", markersize=5, label=name, color=colour)
    _shade_groups(ax, groups)
    ax.set(xlabel="class (sorted head → tail)", ylabel=ylabel, xticks=range(num_classes))
    if style == "dots":
        for boundary in np.arange(num_classes - 1) + 0.5:
            ax.axvline(boundary, color="0.9", lw=0.6, zorder=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title, pad=14 if groups else 6)
    _legend_below(ax, len(names))
    return ax


def plot_per_class_differences(rows: Sequence[Mapping], baseline: str, profile: str, ax: Axes | None = None,
                               title: str | None = None) -> Axes:
    """Per class, each method's mean test accuracy minus ``baseline``'s (points), over the seeds of ``profile``:
    one dot per method and class, so many methods stay readable."""
    from ..stats import per_class_means

    means = per_class_means([r for r in rows if r["profile"] == profile and not r.get("interrupted")])[profile]
    if baseline not in means:
        raise ValueError(f"baseline {baseline!r} has no run in the {profile!r} rows")
    groups = next(r["groups"] for r in rows if r["profile"] == profile)
    base = np.array(means[baseline])
    differences = {m: (100 * (np.array(v) - base)).tolist() for m, v in means.items() if m != baseline}
    ax = _axes(ax, (WIDTH, 3.4))
    plot_per_class(differences, groups, ax=ax, ylim=None, style="dots", ylabel=f"Δ vs {baseline} (points)",
                   title=title or f"Per-class accuracy minus {baseline}'s, {profile} unlabeled data (mean over seeds)")
    ax.axhline(0, color="grey", lw=0.8, zorder=0)
    return ax


def plot_history(
    histories: Mapping[str, object],
    metric: str = "accuracy",
    title: str | None = None,
    ax: Axes | None = None,
    colours: Mapping[str, str] | None = None,
) -> Axes:
    """One line per run of ``metric`` against the training step; a value is a history (a list of rows) or a
    :class:`~cissl_kit.engine.TrainResult` (an interrupted run is labelled so, dashed). ``colours`` colours
    lines that are not methods (:func:`figure_colours`)."""
    ax = _axes(ax)
    palette = figure_colours(list(histories), colours)
    for name, values in histories.items():
        suffix, rows = _series(values)
        steps = [r["step"] for r in rows if metric in r]
        ax.plot(steps, [r[metric] for r in rows if metric in r], marker=".", label=name + suffix,
                color=palette[name], linestyle="--" if suffix else "-")
    ax.set(xlabel="training step", ylabel=metric.replace("_", " "), title=title or metric.replace("_", " "))
    ax.legend(frameon=False, fontsize=8, loc="best")
    return ax


def plot_estimates(estimates: Mapping[str, Sequence[float]], truth: Sequence[float],
                   groups: Mapping[str, Sequence[int]] | None = None, ax: Axes | None = None,
                   title: str = "Each method's belief about the unlabeled class distribution") -> Axes:
    """The true unlabeled class shares (grey bars; ``truth`` may be counts) behind one dot per method and class:
    what each method believes the unlabeled data holds (``estimates``, shares)."""
    ax = _axes(ax, (WIDTH, 3.4))
    shares = np.asarray(truth, dtype=float) / float(np.sum(truth))
    ax.bar(np.arange(len(shares)), shares, 0.9, color="0.85", zorder=0, label="true unlabeled shares")
    plot_per_class(dict(estimates), groups, ax=ax, ylim=None, style="dots", ylabel="share", title=title)
    ax.set_ylim(0, min(1.0, 1.15 * max([float(np.nanmax(shares))] + [float(np.nanmax(v)) for v in estimates.values()
                                                                        if not np.all(np.isnan(v))])))
    _legend_below(ax, len(estimates) + 1)
    return ax


def plot_distance_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], ax: Axes | None = None,
                         title: str = "Distance from the true unlabeled distribution",
                         mark_step: int | None = None) -> Axes:
    """One line per method: the total-variation distance (percent of the mass in the wrong class) between what it
    believes the unlabeled data holds and the truth, against the training step; ``mark_step`` draws a line there."""
    ax = _axes(ax)
    palette = figure_colours(list(curves))
    for label, (steps, distances) in curves.items():
        ax.plot(steps, 100 * np.asarray(distances, dtype=float), marker=".", label=label, color=palette[label])
    if mark_step is not None:
        ax.axvline(mark_step, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="training step", ylabel="% of the mass misplaced", title=title, ylim=(0, 100))
    ax.legend(frameon=False, fontsize=8, loc="best")
    return ax


def plot_benchmark(rows: Sequence[Mapping], metric: str = "accuracy", ax: Axes | None = None,
                   title: str | None = None, legend: str | None = "below") -> Axes:
    """Grouped bars of a benchmark's mean ``metric`` (percent) per setting and method, ± one std over
    seeds; ``legend``: ``"below"``, ``"right"`` or ``None``."""
    from ..stats import summarize

    ax = _axes(ax, (7, 3.5))
    summary = summarize(rows, (metric,))
    profiles = list(dict.fromkeys(e["profile"] for e in summary))
    methods = list(dict.fromkeys(e["method"] for e in summary))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        entries = {e["profile"]: e for e in summary if e["method"] == method}
        x = np.arange(len(profiles)) + (i - (len(methods) - 1) / 2) * width
        means = [entries[p][metric] if p in entries else np.nan for p in profiles]
        stds = [entries[p][f"{metric}_std"] if p in entries else 0 for p in profiles]
        runs = max(e["runs"] for e in entries.values())
        ax.bar(x, np.nan_to_num(means), width, yerr=stds if runs > 1 else None, capsize=2, label=method,
               color=method_colour(method))
    runs = max(e["runs"] for e in summary)
    name = {"accuracy": "overall accuracy", "pl_accuracy": "pseudo-label accuracy",
            "few": "few-shot accuracy"}.get(metric, f"{metric} accuracy")
    seeds = f"mean ± std over {runs} seeds" if runs > 1 else "one seed"
    ax.set(xticks=range(len(profiles)), xticklabels=profiles, xlabel="unlabeled data", ylabel=f"{name} (%)",
           title=title or f"{name[0].upper() + name[1:]}, {seeds}")
    low = np.nanmin([e[metric] for e in summary])
    ax.set_ylim(max(0, low - 15), 100)
    if legend == "below":
        _legend_below(ax, len(methods))
    elif legend == "right":
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_differences(entries: Sequence[Mapping], axes: Sequence[Axes] | None = None, title: str | None = None,
                     profiles: Sequence[str] | None = None) -> Sequence[Axes]:
    """A forest plot of :func:`cissl_kit.stats.paired_differences` entries (one baseline): one row per method,
    one panel per unlabeled profile, the mean paired difference (points) with its interval. A filled marker
    stays distinguishable after Holm's correction over every interval shown (``entry["holm"]``, computed here
    if missing), a hollow one does not; an interval that covers the line at 0 cannot tell the two apart."""
    from ..stats import holm, names_of

    entries = list(entries)
    made_here = axes is None
    if entries and "holm" not in entries[0]:
        holm(entries)
    profiles = list(profiles or dict.fromkeys(e["profile"] for e in entries))
    methods = list(dict.fromkeys(e["method"] for e in entries))
    if axes is None:
        axes = plt.subplots(1, len(profiles), figsize=(WIDTH, 0.9 + 0.3 * len(methods)), sharey=True,
                            squeeze=False)[1][0]
    found = {(e["profile"], e["method"]): e for e in entries}
    for ax, profile in zip(axes, profiles):
        for i, method in enumerate(methods):
            entry = found.get((profile, method))
            if entry is None:
                continue
            colour = method_colour(method)
            error = None if entry["seeds"] < 2 else [[entry["mean"] - entry["low"]], [entry["high"] - entry["mean"]]]
            ax.errorbar(entry["mean"], i, xerr=error, fmt="o", color=colour, capsize=2, markersize=5,
                        markerfacecolor=colour if entry.get("holm") else "white")
        ax.axvline(0, color="grey", lw=0.8, zorder=0)
        ax.set_title(profile, fontsize=10)
        ax.set_xlabel("difference (points)", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(range(len(methods)), methods)
    axes[0].set_ylim(len(methods) - 0.5, -0.5)
    if entries:
        first = entries[0]
        seeds = max(e["seeds"] for e in entries)
        text = title or (f"Paired differences in {names_of(first['metric'])} against {first['baseline']}: mean over "
                         f"{seeds} seeds, {100 * first['confidence']:g}% interval (filled: distinguishable after Holm)")
        if made_here:
            axes[0].figure.suptitle(text, fontsize=10, y=1.04)
        else:
            axes[0].set_ylabel(f"vs {first['baseline']}", fontsize=9)
    return axes


def plot_embedding(points: np.ndarray, labels: Sequence[int], groups: Mapping[str, Sequence[int]] | None = None,
                   title: str = "t-SNE of the test embeddings", ax: Axes | None = None) -> Axes:
    """A 2-D embedding (e.g. t-SNE) coloured by true class, with each class's number at its centre."""
    ax = _axes(ax, (4.5, 4.5))
    points, labels = np.asarray(points), np.asarray(labels)
    colours = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
    few = set(groups.get("few", ())) if groups else set()
    for k in np.unique(labels):
        xy = points[labels == k]
        ax.scatter(xy[:, 0], xy[:, 1], s=6, color=colours(k % colours.N), alpha=0.7)
        ax.text(*np.median(xy, 0), str(k), fontsize=11, weight="bold" if k in few else "normal", ha="center",
                va="center", bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec=colours(k % colours.N), alpha=0.85))
    ax.set(title=title, xticks=[], yticks=[])
    return ax


def plot_confusion(confusion: Sequence[Sequence[int]], title: str = "Confusion matrix", ax: Axes | None = None,
                   class_names: Sequence[str] | None = None, colorbar: bool = True, annotate: bool = True) -> Axes:
    """Row-normalised confusion matrix (rows: true class, each summing to 1) on a fixed 0-1 colour scale,
    with a colour bar and, by default, each cell's share written in it (blank where it is 0)."""
    import seaborn as sns

    ax = _axes(ax, (4.5, 4))
    matrix = np.asarray(confusion, dtype=float)
    matrix = matrix / np.clip(matrix.sum(1, keepdims=True), 1, None)
    labels = np.where(matrix >= 0.005, np.vectorize(lambda v: f"{v:.2f}".lstrip("0"))(matrix), "") if annotate else False
    sns.heatmap(matrix, ax=ax, vmin=0, vmax=1, cmap="Blues", square=True, cbar=colorbar, annot=labels, fmt="",
                annot_kws={"fontsize": 6}, cbar_kws={"shrink": 0.8, "label": "share of the true class"},
                xticklabels=class_names or "auto", yticklabels=class_names or "auto")
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return ax


def show_images(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 10, scale: float = 0.9,
                suptitle: str | None = None):
    """A grid of images (N×C×H×W, uint8 or float in [0, 1]); returns the figure."""
    images = np.asarray(images)
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].astype(float) / (255.0 if images.dtype == np.uint8 else 1.0)
        img = img.transpose(1, 2, 0)
        ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_class_examples(images: np.ndarray, labels: np.ndarray, num_classes: int, per_class: int = 8,
                        scale: float = 0.7, title: str | None = None):
    """One row per class with up to ``per_class`` of its images; empty cells show how few there are."""
    images, labels = np.asarray(images), np.asarray(labels)
    fig, axes = plt.subplots(num_classes, per_class, figsize=(per_class * scale, num_classes * scale), squeeze=False)
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        for j, ax in enumerate(axes[k]):
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if j == 0:
                ax.set_ylabel(f"{k} (n={members.size})", rotation=0, ha="right", va="center", fontsize=8)
            if j < members.size:
                img = images[members[j]].astype(float) / (255.0 if images.dtype == np.uint8 else 1.0)
                img = img.transpose(1, 2, 0)
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_memory_bank(bank, ax: Axes | None = None, title: str = "Memory bank", value: str = "confidence",
                     class_names: Sequence[str] | None = None, vmin: float | None = None, vmax: float | None = None,
                     colorbar: bool = True) -> Axes:
    """Heatmap of a :class:`~cissl_kit.memory_bank.BalancedMemoryBank`: one row per class, slots
    sorted by ``value`` (``confidence`` or ``age``, in pushes since entry); empty slots are blank.
    Give several panels the same ``vmin`` / ``vmax`` to compare them on one colour scale."""
    ax = _axes(ax, (7, 3))
    filled = bank.filled.cpu().numpy()
    if value == "confidence":
        values = bank.confidences.cpu().numpy()
        label, cmap = "stored confidence", "viridis"
    else:
        values = (bank.pushes - 1 - bank.stamps).cpu().numpy().astype(float)
        label, cmap = "age (pushes since entry)", "magma_r"
    values = np.where(filled, values, np.nan)
    order = np.argsort(np.where(filled, -values if value == "confidence" else values, np.inf), axis=1, kind="stable")
    image = ax.imshow(np.take_along_axis(values, order, 1), aspect="auto", cmap=cmap, interpolation="nearest",
                      vmin=vmin, vmax=vmax)
    if colorbar:
        plt.colorbar(image, ax=ax, label=label, fraction=0.04)
    ax.set(xlabel="slot (sorted)", ylabel="class", title=title, yticks=range(values.shape[0]))
    if class_names is not None:
        ax.set_yticklabels(class_names)
    return ax


def plot_tilt_demo(demo, ax: Axes | None = None, title: str | None = None) -> Axes:
    """The 2-D pseudo-label tilt (:func:`~cissl_kit.analysis.toy.pseudo_label_tilt`): points and boundaries."""
    ax = _axes(ax, (6, 5))
    colours = np.array(["#4C72B0", "#C44E52"])
    u, used = demo.unlabeled_x, demo.used
    ax.scatter(*u[~used].T, s=8, c="lightgrey", label="unlabeled, below threshold")
    ax.scatter(*u[used & ~demo.wrong].T, s=10, c=colours[demo.pseudo_labels[used & ~demo.wrong]], alpha=0.5)
    ax.scatter(*u[demo.wrong].T, s=45, marker="x", c="black", label="wrong pseudo-label")
    ax.scatter(*demo.labeled_x.T, s=90, c=colours[demo.labeled_y], edgecolors="black", label="labeled")
    ys = np.array([-4.0, 4.0])
    for (name, (w, b)), style in zip(demo.boundaries.items(), ("--", "-", "-")):
        colour = {"labeled only": "grey", "clean pseudo-labels": "#55A868", "noisy pseudo-labels": "black"}.get(name, "k")
        xs = -(w[1] * ys + b) / w[0] if abs(w[0]) > 1e-9 else np.zeros(2)
        ax.plot(xs, ys, style, c=colour, lw=2, label=f"{name} ({demo.tilt_degrees(name):+.0f}°)")
    ax.set(xlim=(-5, 5), ylim=(-4, 4), xlabel="x₁", ylabel="x₂",
           title=title or "Head (blue, left) and tail (red, right) with a sparse bridge")
    ax.legend(frameon=True, fontsize=8, loc="lower left")
    return ax


def plot_alternate_progress(records: Sequence[Mapping], axes: Sequence[Axes] | None = None):
    """Alternate Sampling stage by stage: test accuracy of g per group (left) and pseudo-label
    accuracy on the unlabeled set per group at each label assignment (right). Returns the axes."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(WIDTH, 3.8))[1]
    left, right = axes
    x = np.arange(len(records))
    trained = [i for i, r in enumerate(records) if r["stage"] != "initialize embedding"]  # g exists from cRT on
    for group in ("accuracy", "many", "medium", "few"):
        left.plot(trained, [records[i][group] for i in trained], marker="o",
                  label="overall" if group == "accuracy" else group, color=GROUP_COLOURS.get(group, "black"))
    left.plot(x, [r["accuracy_random_head"] for r in records], ls="--", color="grey", label="overall, g′")
    labels = [f"L{r['loop']}·{r['stage'].split()[-1]}" if r["loop"] else r["stage"].split()[-1] for r in records]
    left.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    left.set(ylabel="test accuracy of g", title="After each stage", ylim=(0, 1.02))
    left.legend(frameon=False, fontsize=8)
    assigned = [r for r in records if r["stage"] == "assign labels"]
    loops = [r["loop"] for r in assigned]
    for group in ("pl_accuracy", "pl_accuracy_many", "pl_accuracy_medium", "pl_accuracy_few"):
        name = group.replace("pl_accuracy_", "") if group != "pl_accuracy" else "overall"
        right.plot(loops, [r[group] for r in assigned], marker="o", label=name, color=GROUP_COLOURS.get(name, "black"))
    right.set(xlabel="loop", ylabel="pseudo-label accuracy", title="Pseudo-labels of the unlabeled set (Stage 1)",
              ylim=(0, 1.02), xticks=loops or [1])
    right.legend(frameon=False, fontsize=8)
    return axes
