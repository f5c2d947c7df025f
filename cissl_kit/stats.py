"""Statistics of a grid's rows: mean ± std per setting, per-class means, paired differences against a
baseline with Student-t intervals, and the markdown tables that show them.

Layer: below ``viz`` and ``benchmark`` (both use it); it imports nothing of the kit but its checks.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ._checks import check_float

METRICS = ("accuracy", "many", "medium", "few", "pl_accuracy")


def summarize(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> list[dict]:
    """Mean and standard deviation (in percent) per (profile, method) of the finished runs, in the
    order first seen; ``interrupted`` counts the runs stopped early (left out of the statistics)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["profile"], row["label"]), []).append(row)
    summary = []
    for (profile, label), runs in groups.items():
        finished = [r for r in runs if not r.get("interrupted")]
        entry = {"profile": profile, "method": label, "runs": len(finished), "interrupted": len(runs) - len(finished)}
        for metric in metrics:
            values = [100 * r[metric] for r in finished if not math.isnan(r.get(metric, float("nan")))]
            entry[metric] = statistics.mean(values) if values else float("nan")
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


def paired_differences(rows: Sequence[dict], baseline: str, metric: str = "accuracy",
                       confidence: float = 0.95) -> list[dict]:
    """Each method against ``baseline``, per profile, over the seeds both finished: the mean of the
    per-seed differences (percentage points) with a Student-t interval and the paired t-test's
    two-sided ``p_value``. ``within_noise`` is true where the interval covers 0 (and for a single
    seed, which has no interval): the difference is not distinguishable at this scale, which is not
    evidence that there is none."""
    check_float("confidence", confidence, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    finished = [r for r in rows if not r.get("interrupted") and not math.isnan(r.get(metric, float("nan")))]
    by_key = {(r["profile"], r["label"], r["seed"]): 100 * r[metric] for r in finished}
    out = []
    for profile in dict.fromkeys(r["profile"] for r in finished):
        for label in dict.fromkeys(r["label"] for r in finished if r["profile"] == profile):
            if label == baseline:
                continue
            seeds = sorted(s for (p, m, s) in by_key if p == profile and m == label
                           and (profile, baseline, s) in by_key)
            if not seeds:
                continue
            diffs = [by_key[profile, label, s] - by_key[profile, baseline, s] for s in seeds]
            mean = statistics.mean(diffs)
            half, p_value = float("nan"), float("nan")
            if len(diffs) > 1:
                error = statistics.stdev(diffs) / math.sqrt(len(diffs))
                half = _t_quantile((1 + confidence) / 2, len(diffs) - 1) * error
                p_value = _t_p_value(mean, error, len(diffs) - 1)
            low, high = mean - half, mean + half
            out.append({"profile": profile, "method": label, "baseline": baseline, "metric": metric, "seeds": len(diffs),
                        "mean": mean, "low": low, "high": high, "confidence": confidence, "p_value": p_value,
                        "within_noise": len(diffs) < 2 or low <= 0 <= high})
    return out


def _t_quantile(q: float, dof: int) -> float:
    from scipy.stats import t  # scikit-learn's own dependency

    return float(t.ppf(q, dof))


def _t_p_value(mean: float, error: float, dof: int) -> float:
    """Two-sided p-value of the paired t-test of ``mean`` with standard error ``error``."""
    from scipy.stats import t

    if error == 0:
        return 0.0 if mean else 1.0
    return float(2 * t.sf(abs(mean / error), dof))


def holm(entries: Sequence[dict], alpha: float = 0.05) -> list[dict]:
    """Holm's step-down correction over all ``entries`` at once (each a :func:`paired_differences` entry):
    sets ``entry["holm"]`` True where the difference stays distinguishable with a family-wise error rate
    of ``alpha`` over every interval shown together. Entries without a p-value (one seed) are not counted;
    A against B and B against A (a table with both as baselines) are one comparison, counted once."""
    check_float("alpha", alpha, 0.0, 1.0, min_inclusive=False, max_inclusive=False)
    comparisons: dict[tuple, list[dict]] = {}
    for entry in entries:
        if not math.isnan(entry.get("p_value", float("nan"))):
            comparisons.setdefault(_comparison(entry), []).append(entry)
    tested = sorted(comparisons.values(), key=lambda same: same[0]["p_value"])
    rejecting = True
    for rank, same in enumerate(tested):
        rejecting = rejecting and same[0]["p_value"] <= alpha / (len(tested) - rank)
        for entry in same:
            entry["holm"] = rejecting
    for entry in entries:
        entry.setdefault("holm", False)
    return list(entries)


def _comparison(entry: dict) -> tuple:
    """What an entry compares, whichever of the two is the baseline (an entry that names neither is its own)."""
    if "method" not in entry or "baseline" not in entry:
        return (id(entry),)
    return entry.get("profile"), entry.get("metric"), frozenset((entry["method"], entry["baseline"]))


def interval_summary(entries: Sequence[dict]) -> dict:
    """How many intervals, their median half-width (points), and how many stay distinguishable after Holm
    (A against B and B against A counted once)."""
    unique = list({_comparison(e): e for e in entries if e["seeds"] > 1}.values())
    halves = [(e["high"] - e["low"]) / 2 for e in unique]
    return {"intervals": len(halves), "median_half_width": statistics.median(halves) if halves else float("nan"),
            "distinguishable": sum(not e["within_noise"] for e in unique),
            "holm": sum(bool(e.get("holm")) for e in unique)}


def per_class_means(rows: Sequence[dict]) -> dict[str, dict[str, list[float]]]:
    """Mean per-class test accuracy (fractions): ``{profile: {method: [acc of class 0, …]}}``."""
    groups: dict[str, dict[str, list[list[float]]]] = {}
    for row in rows:
        groups.setdefault(row["profile"], {}).setdefault(row["label"], []).append(row["per_class"])
    return {profile: {label: [statistics.mean(v) for v in zip(*runs)] for label, runs in methods.items()}
            for profile, methods in groups.items()}


def summary_table(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    """A markdown table of mean ± std (percent) per profile and method (the mean alone for one run),
    with a note for labeled-only runs shared across profiles and for runs that were interrupted."""
    names = {"accuracy": "overall", "pl_accuracy": "PL acc"}
    header = "| profile | method | runs | " + " | ".join(names.get(m, m) for m in metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    for entry in summarize(rows, metrics):
        spread = (lambda m: f" ± {entry[f'{m}_std']:.1f}") if entry["runs"] > 1 else (lambda m: "")
        cells = ["–" if math.isnan(entry[m]) else f"{entry[m]:.1f}{spread(m)}" for m in metrics]
        runs = f"{entry['runs']}" + (f" (+{entry['interrupted']} interrupted)" if entry["interrupted"] else "")
        lines.append(f"| {entry['profile']} | {entry['method']} | {runs} | " + " | ".join(cells) + " |")
    shared = list(dict.fromkeys(r["label"] for r in rows if r.get("same_run_as")))
    if shared:
        lines.append(f"\n{', '.join(shared)}: trained on the labeled set alone, once per seed; the same run stands "
                     "in every profile.")
    return "\n".join(lines)


def differences_table(rows: Sequence[dict], baselines: Sequence[str] = ("fixmatch", "fixmatch_la"),
                      metric: str = "accuracy", confidence: float = 0.95) -> str:
    """A markdown table of :func:`paired_differences`: one row per setting and method, one column per
    baseline present in ``rows`` — the mean per-seed difference in points, its interval, and the
    verdict ("not distinguishable" where the interval covers 0), and Holm's correction over the whole table."""
    present = [b for b in baselines if b in {r["label"] for r in rows}]
    if not present:
        return ""
    found = {(e["profile"], e["method"], b): e for b in present for e in paired_differences(rows, b, metric, confidence)}
    keys = [(e["profile"], e["method"]) for e in summarize(rows)  # the order of the summary table
            if any((e["profile"], e["method"], b) in found for b in present)]
    if not keys:
        return ""
    holm(list(found.values()))  # one family: every interval of the table
    lines = ["| profile | method | seeds | " + " | ".join(f"Δ vs {b}" for b in present) + " | "
             + " | ".join(f"Holm vs {b}" for b in present) + " |", "|" + "---|" * (3 + 2 * len(present))]
    for profile, method in keys:
        entries = [found.get((profile, method, b)) for b in present]
        seeds = max(e["seeds"] for e in entries if e)
        lines.append(f"| {profile} | {method} | {seeds} | " + " | ".join(_difference_cell(e) for e in entries) + " | "
                     + " | ".join(_holm_cell(e) for e in entries) + " |")
    counts = interval_summary(list(found.values()))
    if counts["intervals"]:
        lines.append(f"\n{counts['intervals']} intervals at once; median half-width {counts['median_half_width']:.1f} "
                     f"points; {counts['distinguishable']} exclude 0 on their own, {counts['holm']} after Holm's "
                     f"correction (family-wise error 5% over all {counts['intervals']}; n.d.: not distinguishable "
                     "after it).")
    return "\n".join(lines)


def _holm_cell(entry: dict | None) -> str:
    if entry is None or entry["seeds"] < 2:
        return "–"
    return ("gain" if entry["mean"] > 0 else "loss") if entry["holm"] else "n.d."


def _difference_cell(entry: dict | None) -> str:
    if entry is None:
        return "–"
    if entry["seeds"] < 2:
        return f"{entry['mean']:+.1f} (one seed)"
    verdict = "not distinguishable" if entry["within_noise"] else "gain" if entry["mean"] > 0 else "loss"
    return f"{entry['mean']:+.1f} [{entry['low']:+.1f}, {entry['high']:+.1f}] {verdict}"


def difference_caption(metric: str = "accuracy", confidence: float = 0.95) -> str:
    """The sentence that introduces :func:`differences_table`."""
    return (f"Paired differences in {names_of(metric)} (points): the mean over seeds of (method − baseline) on the "
            f"same split and seed, with a {100 * confidence:g}% Student-t interval; \"not distinguishable\" where it "
            f"covers 0: no difference can be told at this scale, which is not evidence that there is none. With many "
            f"intervals at once some exclude 0 by chance: the Holm columns correct for all of them together.")


def names_of(metric: str) -> str:
    known = {"accuracy": "overall accuracy", "pl_accuracy": "pseudo-label accuracy", "early_mask": "early mask rate",
             "early_pl_accuracy": "early pseudo-label accuracy"}
    return known.get(metric, f"{metric} accuracy")


def _finished_curves(rows: Sequence[dict], label: str, profile: str | None) -> list[list[dict]]:
    """The curves of the finished runs of ``label`` (and ``profile``); an error naming the label if there is none."""
    runs = [r["curve"] for r in rows if r["label"] == label and profile in (None, r["profile"])
            and not r.get("interrupted")]
    if not runs:
        raise ValueError(f"label {label!r} has no finished run in these rows")
    return runs


def mean_curve(rows: Sequence[dict], label: str, key: str, profile: str | None = None) -> tuple[list[int], list[float]]:
    """The mean over seeds of one column of the runs' curves (``row["curve"]``, one point per evaluation) for
    the method ``label`` (and ``profile``): the steps and the means, NaN points (no pseudo-label passed) skipped."""
    return _per_evaluation(rows, label, profile, lambda point: None if math.isnan(point[key]) else point[key])


def _per_evaluation(rows: Sequence[dict], label: str, profile: str | None, value, empty=lambda point: float("nan")):
    """The steps of ``label``'s runs (in ``profile``) and, per evaluation, the mean over seeds of ``value(point)``
    (a number, or a list averaged element by element), leaving out the runs whose ``value`` is None;
    ``empty(the first run's point)`` where none has one."""
    runs = _finished_curves(rows, label, profile)
    steps = [point["step"] for point in runs[0]]
    means = []
    for i in range(len(steps)):
        found = [v for curve in runs if i < len(curve) and (v := value(curve[i])) is not None]
        if not found:
            means.append(empty(runs[0][i]))
        elif isinstance(found[0], list):
            means.append([statistics.mean(column) for column in zip(*found)])
        else:
            means.append(statistics.mean(found))
    return steps, means


def stage_means(rows: Sequence[dict], label: str, stage: str, key: str, profile: str | None = None) -> dict[int, float]:
    """The records of one ``stage`` of a multi-stage recipe (Alternate Sampling's ``"assign labels"``, …) in the
    runs of ``label`` (and ``profile``): loop → the mean of ``key`` over the seeds, NaN values skipped (a loop
    where no seed has a value is NaN)."""
    runs = _finished_curves(rows, label, profile)
    by_loop: dict[int, list[float]] = {}
    for curve in runs:
        for point in curve:
            if point.get("stage") == stage:
                by_loop.setdefault(point["loop"], [])
                if key in point and not math.isnan(point[key]):
                    by_loop[point["loop"]].append(point[key])
    if not by_loop:
        stages = sorted({point["stage"] for curve in runs for point in curve if "stage" in point})
        raise ValueError(f"stage must be one of {stages}, got {stage!r}")
    return {loop: statistics.mean(values) if values else float("nan") for loop, values in sorted(by_loop.items())}


def with_early_means(rows: Sequence[dict], fraction: float = 0.1, keys: Sequence[str] = ("mask", "pl_accuracy"),
                     ) -> list[dict]:
    """Copies of ``rows`` with ``early_<key>``: the mean of each curve column over the evaluations in the first
    ``fraction`` of training (each evaluation averages the steps since the one before), NaN points skipped.
    The new columns are metrics like any other: :func:`summarize` and :func:`paired_differences` take them."""
    check_float("fraction", fraction, 0.0, 1.0, min_inclusive=False)
    out = []
    for row in rows:
        steps = [point["step"] for point in row["curve"]]
        last = max(steps) if steps else 0
        early = [point for point in row["curve"] if point["step"] <= fraction * last]
        extra = {}
        for key in keys:
            values = [point[key] for point in early if not math.isnan(point[key])]
            extra[f"early_{key}"] = statistics.mean(values) if values else float("nan")
        out.append({**row, **extra})
    return out


def distribution_key(rows: Sequence[dict], label: str) -> str:
    """``"estimate"`` where the runs of ``label`` record an estimate of the unlabeled class distribution (ACR,
    SimPro), else ``"pl_distribution"``: the class shares of the pseudo-labels that passed its mask."""
    runs = _finished_curves(rows, label, None)
    return "estimate" if any("estimate" in point for curve in runs for point in curve) else "pl_distribution"


def total_variation(p: Sequence[float], q: Sequence[float]) -> float:
    """Half the L1 distance between two class distributions, each normalised first (counts are fine): the share
    of the probability mass that sits in the wrong class, from 0 (equal) to 1. NaN when either is all zero."""
    if len(p) != len(q):
        raise ValueError(f"p and q must have as many classes, got {len(p)} and {len(q)}")
    total_p, total_q = sum(p), sum(q)
    if not total_p > 0 or not total_q > 0:
        return float("nan")
    return 0.5 * sum(abs(a / total_p - b / total_q) for a, b in zip(p, q))


def _distribution(point: dict, key: str) -> list[float] | None:
    values = point.get(key)
    if values is None or any(math.isnan(v) for v in values) or not sum(values) > 0:
        return None  # not recorded, or no pseudo-label passed in that interval
    return [v / sum(values) for v in values]


def mean_distribution_curve(rows: Sequence[dict], label: str, profile: str) -> tuple[list[int], list[list[float]]]:
    """The runs of ``label`` in ``profile``: the steps and, per evaluation, the mean over seeds of the recorded
    distribution (:func:`distribution_key`), each normalised; an evaluation where no seed has one is all NaN."""
    key = distribution_key(rows, label)
    return _per_evaluation(rows, label, profile, lambda point: _distribution(point, key),
                           lambda point: [float("nan")] * len(point[key]))


def distance_curve(rows: Sequence[dict], label: str, profile: str, truth: Sequence[float]
                   ) -> tuple[list[int], list[float]]:
    """The mean over seeds of :func:`total_variation` between what ``label``'s runs in ``profile`` record
    (:func:`distribution_key`) and ``truth`` (the unlabeled class counts or shares), per evaluation."""
    key = distribution_key(rows, label)

    def distance(point):
        found = _distribution(point, key)
        return None if found is None else total_variation(found, truth)

    return _per_evaluation(rows, label, profile, distance)


def with_estimate_distance(rows: Sequence[dict], truths: dict[str, Sequence[float]]) -> list[dict]:
    """Copies of ``rows`` with ``estimate_distance``: the :func:`total_variation` between the distribution the run
    recorded at its last evaluation (:func:`distribution_key`) and ``truths[profile]``, the unlabeled class counts
    of its profile. A metric like any other (×100 in tables: the percent of the mass in the wrong class)."""
    missing = sorted({r["profile"] for r in rows} - set(truths))
    if missing:
        raise ValueError(f"truths must give the unlabeled class counts of every profile; missing {missing}")
    keys = {label: distribution_key(rows, label) for label in dict.fromkeys(r["label"] for r in rows)}
    out = []
    for row in rows:
        last = _distribution(row["curve"][-1], keys[row["label"]]) if row["curve"] else None
        distance = total_variation(last, truths[row["profile"]]) if last is not None else float("nan")
        out.append({**row, "estimate_distance": distance})
    return out


def time_ratios(rows: Sequence[dict], baseline: str = "fixmatch") -> dict[str, tuple[float, float, float]]:
    """Each method's run time (``seconds``) over ``baseline``'s in the same profile and seed: ``{method: (median,
    lowest, highest)}`` of those per-run ratios. Compare only runs trained alike (one grid, one machine)."""
    seconds = {(r["profile"], r["seed"], r["label"]): r["seconds"] for r in rows
               if not r.get("interrupted") and r.get("seconds", 0) > 0}
    ratios: dict[str, list[float]] = {}
    for (profile, seed, label), value in seconds.items():
        base = seconds.get((profile, seed, baseline))
        if label != baseline and base:
            ratios.setdefault(label, []).append(value / base)
    if not ratios:
        raise ValueError(f"baseline {baseline!r} shares no profile and seed with another method in these rows")
    return {label: (statistics.median(v), min(v), max(v)) for label, v in ratios.items()}
