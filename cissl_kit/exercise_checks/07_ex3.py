"""Notebook 07, exercise 3: CDMAD with its bias measured in eval mode, from the student's own run."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_change_from_shipped, expect_run

OK_FORMAT = False
name = "07_ex3"
points = 2


@test_case(points=1)
def cdmad_in_eval_mode(ex3_run, BENCHMARK_STEPS):
    answered(ex3_run=ex3_run)
    expect_run("ex3_run", ex3_run, "cdmad", steps=BENCHMARK_STEPS, hparams={"blank_bn": "eval"}, dataset="mnist",
               unlabeled_profile="reversed", seed=0)


@test_case(points=1)
def change_from_the_shipped_run(ex3_run, ex3_change, rows):
    answered(ex3_run=ex3_run, ex3_change=ex3_change)
    expect_change_from_shipped(
        "ex3_change", ex3_change, ex3_run, rows, "cdmad", "reversed", 0,
        "the eval-mode run's test accuracy minus the shipped CDMAD run's (train mode, reversed, seed 0), "
        "in points")
