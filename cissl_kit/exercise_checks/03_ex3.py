"""Notebook 03, exercise 3: how often Avg-Clustering resets (ac_period 1 and 1000 against the kit's), five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, shipped_difference

OK_FORMAT = False
name = "03_ex3"
points = 2


def _rows():
    return course_results("03_layermatch") + course_results("03_layermatch_settings")


@test_case(points=1)
def a_reset_every_step(ex3_period_1, RETRAIN):
    answered(ex3_period_1=ex3_period_1)
    expect_difference("ex3_period_1", ex3_period_1, shipped_difference(_rows(), "ac_period=1", "LayerMatch (kit)"),
                      retrained=RETRAIN)


@test_case(points=1)
def one_reset(ex3_period_1000, RETRAIN):
    answered(ex3_period_1000=ex3_period_1000)
    expect_difference("ex3_period_1000", ex3_period_1000,
                      shipped_difference(_rows(), "ac_period=1000 (one reset)", "LayerMatch (kit)"), retrained=RETRAIN)
