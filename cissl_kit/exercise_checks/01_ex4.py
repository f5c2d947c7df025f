"""Notebook 01, exercise 4: does FixMatch + LA use more of the unlabeled images? Ten shipped seeds."""
from otter.test_files import test_case

from cissl_kit.benchmark import reference_results
from cissl_kit.grading import answered, expect_difference, expect_verdict, shipped_difference

OK_FORMAT = False
name = "01_ex4"
points = 2


@test_case(points=1)
def utilization_difference(ex4_used):
    answered(ex4_used=ex4_used)
    rows = [{**r, "accuracy": r["utilization"]} for r in reference_results()
            if r["profile"] == "consistent" and r["label"] in ("fixmatch", "fixmatch_la")]
    expect_difference("ex4_used", ex4_used, {**shipped_difference(rows, "fixmatch_la", "fixmatch"), "metric": "utilization"})


@test_case(points=1)
def verdict_of_the_interval(ex4_used, ex4_verdict):
    answered(ex4_used=ex4_used, ex4_verdict=ex4_verdict)
    expect_verdict("ex4_verdict", ex4_verdict, ex4_used)
