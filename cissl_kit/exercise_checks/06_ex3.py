"""Notebook 06, exercise 3: DASO with the official T_dist = 0.3 for γ_u ≠ γ_l, from the student's own run."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_change_from_shipped, expect_run

OK_FORMAT = False
name = "06_ex3"
points = 2


@test_case(points=1)
def daso_with_t_dist_03(ex3_run, BENCHMARK_STEPS):
    answered(ex3_run=ex3_run)
    expect_run("ex3_run", ex3_run, "daso", steps=BENCHMARK_STEPS, hparams={"dist_temperature": 0.3}, dataset="mnist",
               unlabeled_profile="reversed", seed=0)


@test_case(points=1)
def change_from_the_shipped_run(ex3_run, ex3_change, rows):
    answered(ex3_run=ex3_run, ex3_change=ex3_change)
    expect_change_from_shipped(
        "ex3_change", ex3_change, ex3_run, rows, "daso", "reversed", 0,
        "the T_dist = 0.3 run's test accuracy minus the shipped DASO run's (T_dist = 1.5, reversed, seed 0), "
        "in points")
