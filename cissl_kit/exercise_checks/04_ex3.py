"""Notebook 04, exercise 3: a shorter embedding stage, its pseudo-label changes per loop and its accuracy, five seeds."""
import math

from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, expect_keys, expect_number, shipped_difference
from cissl_kit.stats import stage_means

OK_FORMAT = False
name = "04_ex3"
points = 2
SHORT = "embedding stage of 50 steps"


@test_case(points=1)
def most_pseudo_labels_changed(ex3_most_changed, RETRAIN):
    answered(ex3_most_changed=ex3_most_changed)
    expect_keys("ex3_most_changed", ex3_most_changed, [200, 50])
    grid = course_results("04_alternate_gamma50")
    for steps, label in ((200, "Alternate Sampling"), (50, SHORT)):
        changed = [c for c in stage_means(grid, label, "assign labels", "changed").values() if not math.isnan(c)]
        expect_number(f"ex3_most_changed[{steps}]", ex3_most_changed[steps], 100 * max(changed), 5.0 if RETRAIN else 0.05,
                      f"the largest share (%) of pseudo-labels changed from one loop to the next, embedding stage of "
                      f"{steps} steps, mean over seeds (stage_means)")


@test_case(points=1)
def shorter_stage_accuracy(ex3_shorter, RETRAIN):
    answered(ex3_shorter=ex3_shorter)
    expect_difference("ex3_shorter", ex3_shorter,
                      shipped_difference(course_results("04_alternate_gamma50"), SHORT, "Alternate Sampling"),
                      retrained=RETRAIN)
