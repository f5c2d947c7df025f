"""Notebook 07, exercise 1: CPE against FixMatch + balanced head, few-shot, head-tail, from the shipped seeds."""
from otter.test_files import test_case

from cissl_kit.benchmark import prior_results
from cissl_kit.grading import answered, expect_difference, expect_verdict, shipped_difference

OK_FORMAT = False
name = "07_ex1"
points = 2


def _shipped():
    rows = [r for r in prior_results() if r["profile"] == "head-tail" and r["label"] in ("cpe", "fixmatch_bh")]
    return shipped_difference(rows, "cpe", "fixmatch_bh", "few")


@test_case(points=1)
def few_shot_difference(ex1_cpe_few, RETRAIN):
    answered(ex1_cpe_few=ex1_cpe_few)
    expect_difference("ex1_cpe_few", ex1_cpe_few, _shipped(), retrained=RETRAIN)


@test_case(points=1)
def verdict_from_the_interval(ex1_cpe_few, ex1_verdict):
    answered(ex1_cpe_few=ex1_cpe_few, ex1_verdict=ex1_verdict)
    expect_verdict("ex1_verdict", ex1_verdict, ex1_cpe_few)
