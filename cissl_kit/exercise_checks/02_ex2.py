"""Notebook 02, exercise 2: the 1 - s floor of SeMi's weight (s = 1 and s = 0 against s = 0.75), five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, shipped_difference

OK_FORMAT = False
name = "02_ex2"
points = 2


@test_case(points=1)
def no_floor(ex2_no_floor, RETRAIN):
    answered(ex2_no_floor=ex2_no_floor)
    expect_difference("ex2_no_floor", ex2_no_floor,
                      shipped_difference(course_results("02_semi"), "SeMi s = 1 (no floor)", "SeMi"), retrained=RETRAIN)


@test_case(points=1)
def every_weight_one(ex2_all_one, RETRAIN):
    answered(ex2_all_one=ex2_all_one)
    expect_difference("ex2_all_one", ex2_all_one,
                      shipped_difference(course_results("02_semi"), "w/o entropy weights (τ = 0.7 kept)", "SeMi"),
                      retrained=RETRAIN)
