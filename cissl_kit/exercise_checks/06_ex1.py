"""Notebook 06, exercise 1: DARP aligned to the true unlabeled distribution, from the student's own run."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_change_from_shipped, expect_run

OK_FORMAT = False
name = "06_ex1"
points = 2


@test_case(points=1)
def the_oracle_run(ex1_oracle, BENCHMARK_STEPS):
    answered(ex1_oracle=ex1_oracle)
    expect_run("ex1_oracle", ex1_oracle, "darp", steps=BENCHMARK_STEPS, dataset="mnist", unlabeled_profile="reversed",
               seed=0)


@test_case(points=1)
def what_the_oracle_recovers(ex1_oracle, ex1_recovered, rows):
    answered(ex1_oracle=ex1_oracle, ex1_recovered=ex1_recovered)
    expect_change_from_shipped(
        "ex1_recovered", ex1_recovered, ex1_oracle, rows, "darp", "reversed", 0,
        "the oracle run's test accuracy minus the shipped DARP run's (reversed, seed 0), in points")
