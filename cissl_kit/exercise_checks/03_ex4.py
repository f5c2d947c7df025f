"""Notebook 03, exercise 4: the threshold started at 1 with the scaled momentum, consistent and reversed, five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, shipped_difference

OK_FORMAT = False
name = "03_ex4"
points = 2
SCALED_ONE = "LayerMatch, SAT from 1, horizon 0.5%"


@test_case(points=1)
def consistent_data(ex4_scaled_one, RETRAIN):
    answered(ex4_scaled_one=ex4_scaled_one)
    rows = course_results("03_layermatch") + course_results("03_layermatch_settings")
    expect_difference("ex4_scaled_one", ex4_scaled_one, shipped_difference(rows, SCALED_ONE, "LayerMatch (kit)"),
                      retrained=RETRAIN)


@test_case(points=1)
def reversed_data(ex4_reversed, RETRAIN):
    answered(ex4_reversed=ex4_reversed)
    expect_difference("ex4_reversed", ex4_reversed,
                      shipped_difference(course_results("03_layermatch_reversed"), SCALED_ONE, "LayerMatch (kit)"),
                      retrained=RETRAIN)
