"""Notebook 03, exercise 1: the layer-gradient analysis while LayerMatch trains, against the student's trackers."""
from otter.test_files import test_case

from cissl_kit.analysis import LayerGradientTracker
from cissl_kit.grading import answered, expect_keys, expect_number

OK_FORMAT = False
name = "03_ex1"
points = 2


def _head_cosine(watched):  # the head's mean cos(∇L_u, oracle) over the last ten records (the last 500 steps)
    values = watched.series("head", "cosine_oracle")[1][-10:]
    return sum(values) / len(values)


@test_case(points=1)
def a_tracker_around_layermatch(ex1_tracker, config):
    answered(ex1_tracker=ex1_tracker)
    assert isinstance(ex1_tracker, LayerGradientTracker), (
        f"`ex1_tracker` should be the LayerGradientTracker you trained; got {type(ex1_tracker).__name__}")
    assert ex1_tracker.name == "layermatch", f"`ex1_tracker` tracks {ex1_tracker.name!r}; the exercise asks for LayerMatch()"
    assert ex1_tracker.every == 50, "track every 50 steps, as section 2 does"
    last = max((r["step"] for r in ex1_tracker.records), default=-1)
    assert last >= config.steps - ex1_tracker.every, (
        f"`ex1_tracker`'s last record is at step {last}: train it with section 2's config to the end")


@test_case(points=1)
def the_heads_cosine(ex1_tracker, ex1_head_cosine, tracker):
    answered(ex1_tracker=ex1_tracker, ex1_head_cosine=ex1_head_cosine)
    expect_keys("ex1_head_cosine", ex1_head_cosine, ["FixMatch", "LayerMatch"])
    for label, watched in (("FixMatch", tracker), ("LayerMatch", ex1_tracker)):
        expect_number(f"ex1_head_cosine[{label!r}]", ex1_head_cosine[label], _head_cosine(watched), 0.005,
                      f"the mean cosine of the head's ∇L_u with the oracle gradient over {label}'s last ten records")
