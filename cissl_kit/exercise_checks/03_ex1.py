"""Notebook 03, exercise 1: the layer-gradient analysis while LayerMatch trains, against the student's trackers."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_keys, expect_number, expect_tracker

OK_FORMAT = False
name = "03_ex1"
points = 2


def _head_cosine(watched):  # the head's mean cos(∇L_u, oracle) over the last ten records (the last 500 steps)
    values = watched.series("head", "cosine_oracle")[1][-10:]
    return sum(values) / len(values)


@test_case(points=1)
def a_tracker_around_layermatch(ex1_tracker, config):
    answered(ex1_tracker=ex1_tracker)
    expect_tracker("ex1_tracker", ex1_tracker, "layermatch", config.steps, every=50)


@test_case(points=1)
def the_heads_cosine(ex1_tracker, ex1_head_cosine, tracker):
    answered(ex1_tracker=ex1_tracker, ex1_head_cosine=ex1_head_cosine)
    expect_keys("ex1_head_cosine", ex1_head_cosine, ["FixMatch", "LayerMatch"])
    for label, watched in (("FixMatch", tracker), ("LayerMatch", ex1_tracker)):
        expect_number(f"ex1_head_cosine[{label!r}]", ex1_head_cosine[label], _head_cosine(watched), 0.005,
                      f"the mean cosine of the head's ∇L_u with the oracle gradient over {label}'s last ten records")
