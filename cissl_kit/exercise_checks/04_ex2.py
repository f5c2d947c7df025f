"""Notebook 04, exercise 2: Alternate Sampling without its temporal-consistency loss, five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, expect_verdict, shipped_difference

OK_FORMAT = False
name = "04_ex2"
points = 2


@test_case(points=1)
def without_the_consistency_loss(ex2_no_consistency, RETRAIN):
    answered(ex2_no_consistency=ex2_no_consistency)
    expect_difference("ex2_no_consistency", ex2_no_consistency,
                      shipped_difference(course_results("04_alternate_gamma50"), "λ = 0 (no consistency loss)",
                                         "Alternate Sampling"), retrained=RETRAIN)


@test_case(points=1)
def verdict_of_the_interval(ex2_no_consistency, ex2_verdict):
    answered(ex2_no_consistency=ex2_no_consistency, ex2_verdict=ex2_verdict)
    expect_verdict("ex2_verdict", ex2_verdict, ex2_no_consistency)
