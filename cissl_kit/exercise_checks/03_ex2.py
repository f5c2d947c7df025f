"""Notebook 03, exercise 2: the head's cosine with reversed unlabeled data, against the student's trackers."""
import math

from otter.test_files import test_case

from cissl_kit.grading import answered, expect_keys, expect_number, expect_tracker

OK_FORMAT = False
name = "03_ex2"
points = 2


def _lowest(watched):  # steps where no pseudo-label passed have no cosine (NaN)
    return min(c for c in watched.series("head", "cosine_oracle")[1] if not math.isnan(c))


@test_case(points=1)
def a_fixmatch_tracker(ex2_tracker, config):
    answered(ex2_tracker=ex2_tracker)
    expect_tracker("ex2_tracker", ex2_tracker, "fixmatch", config.steps)


@test_case(points=1)
def the_lowest_cosine(ex2_tracker, ex2_lowest, tracker):
    answered(ex2_tracker=ex2_tracker, ex2_lowest=ex2_lowest)
    expect_keys("ex2_lowest", ex2_lowest, ["consistent", "reversed"])
    for label, watched in (("consistent", tracker), ("reversed", ex2_tracker)):
        expect_number(f"ex2_lowest[{label!r}]", ex2_lowest[label], _lowest(watched), 0.0005,
                      f"the lowest cosine of the head's ∇L_u with the oracle gradient, {label} unlabeled data")
