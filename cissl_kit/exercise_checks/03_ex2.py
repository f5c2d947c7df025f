"""Notebook 03, exercise 2: the head's cosine with reversed unlabeled data, against the student's trackers."""
import math

from otter.test_files import test_case

from cissl_kit.analysis import LayerGradientTracker
from cissl_kit.grading import answered, expect_keys, expect_number

OK_FORMAT = False
name = "03_ex2"
points = 2


def _lowest(watched):  # steps where no pseudo-label passed have no cosine (NaN)
    return min(c for c in watched.series("head", "cosine_oracle")[1] if not math.isnan(c))


@test_case(points=1)
def a_fixmatch_tracker(ex2_tracker, config):
    answered(ex2_tracker=ex2_tracker)
    assert isinstance(ex2_tracker, LayerGradientTracker), (
        f"`ex2_tracker` should be the LayerGradientTracker you trained; got {type(ex2_tracker).__name__}")
    assert ex2_tracker.name == "fixmatch", f"`ex2_tracker` tracks {ex2_tracker.name!r}; redo section 2 with FixMatch()"
    last = max((r["step"] for r in ex2_tracker.records), default=-1)
    assert last >= config.steps - ex2_tracker.every, (
        f"`ex2_tracker`'s last record is at step {last}: train it with section 2's config to the end")


@test_case(points=1)
def the_lowest_cosine(ex2_tracker, ex2_lowest, tracker):
    answered(ex2_tracker=ex2_tracker, ex2_lowest=ex2_lowest)
    expect_keys("ex2_lowest", ex2_lowest, ["consistent", "reversed"])
    for label, watched in (("consistent", tracker), ("reversed", ex2_tracker)):
        expect_number(f"ex2_lowest[{label!r}]", ex2_lowest[label], _lowest(watched), 0.0005,
                      f"the lowest cosine of the head's ∇L_u with the oracle gradient, {label} unlabeled data")
