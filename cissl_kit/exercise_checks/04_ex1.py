"""Notebook 04, exercise 1: Alternate Sampling's lead over Decoupling at γ = 10 and γ = 50, five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, expect_keys, shipped_difference

OK_FORMAT = False
name = "04_ex1"
points = 2


@test_case(points=2)
def lead_at_both_imbalances(ex1_lead, RETRAIN):
    answered(ex1_lead=ex1_lead)
    expect_keys("ex1_lead", ex1_lead, [10, 50])
    for gamma in (10, 50):
        expected = shipped_difference(course_results(f"04_alternate_gamma{gamma}"), "Alternate Sampling", "Decoupling")
        expect_difference(f"ex1_lead[{gamma}]", ex1_lead[gamma], expected, retrained=RETRAIN)
