"""Notebook 05, exercise 2: the grid on digits-LT, reversed, five seeds."""
from otter.test_files import test_case

from cissl_kit.benchmark import exercise_results
from cissl_kit.grading import answered, expect_difference, shipped_difference

OK_FORMAT = False
name = "05_ex2"
points = 2


@test_case(points=1)
def fixmatch_against_supervised(ex2_fixmatch_vs_supervised, RETRAIN):
    answered(ex2_fixmatch_vs_supervised=ex2_fixmatch_vs_supervised)
    expect_difference("ex2_fixmatch_vs_supervised", ex2_fixmatch_vs_supervised,
                      shipped_difference(exercise_results("digits_lt_reversed"), "fixmatch", "supervised"),
                      retrained=RETRAIN)


@test_case(points=1)
def semi_against_fixmatch_la(ex2_semi_vs_la, RETRAIN):
    answered(ex2_semi_vs_la=ex2_semi_vs_la)
    expect_difference("ex2_semi_vs_la", ex2_semi_vs_la,
                      shipped_difference(exercise_results("digits_lt_reversed"), "semi", "fixmatch_la"), retrained=RETRAIN)
