"""Notebook 07, exercise 2: SimPro with one M-step every tenth of training, from the student's own run."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_change_from_shipped, expect_run

OK_FORMAT = False
name = "07_ex2"
points = 2


@test_case(points=1)
def simpro_with_a_longer_period(ex2_run, BENCHMARK_STEPS):
    answered(ex2_run=ex2_run)
    expect_run("ex2_run", ex2_run, "simpro", steps=BENCHMARK_STEPS, hparams={"estimate_period": 0.1}, dataset="mnist",
               unlabeled_profile="middle", seed=0)


@test_case(points=1)
def change_from_the_shipped_run(ex2_run, ex2_change, rows):
    answered(ex2_run=ex2_run, ex2_change=ex2_change)
    expect_change_from_shipped(
        "ex2_change", ex2_change, ex2_run, rows, "simpro", "middle", 0,
        "the longer period's test accuracy minus the shipped SimPro run's (middle, seed 0), in points")
