"""Notebook 02, exercise 1: SeMi's gain over FixMatch with consistent and with reversed data, five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, expect_keys, shipped_difference

OK_FORMAT = False
name = "02_ex1"
points = 2


@test_case(points=2)
def semi_gain_in_both_settings(ex1_semi_gain, RETRAIN):
    answered(ex1_semi_gain=ex1_semi_gain)
    expect_keys("ex1_semi_gain", ex1_semi_gain, ["consistent", "reversed"])
    rows = course_results("02_semi_consistent") + course_results("02_semi")
    for profile in ("consistent", "reversed"):
        expect_difference(f"ex1_semi_gain[{profile!r}]", ex1_semi_gain[profile],
                          shipped_difference(rows, "SeMi", "FixMatch τ=0.95", profile=profile), retrained=RETRAIN)
