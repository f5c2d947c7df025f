"""Notebook 01, exercise 1: sections 5-8 on digits-LT (one seed), checked against the student's own runs."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_keys, expect_number, expect_run

OK_FORMAT = False
name = "01_ex1"
points = 3
RUNS = {"supervised": ("supervised", "consistent"), "FixMatch (consistent)": ("fixmatch", "consistent"),
        "FixMatch (reversed)": ("fixmatch", "reversed")}


@test_case(points=1)
def the_three_runs_on_digits(ex1_runs, config):
    answered(ex1_runs=ex1_runs)
    expect_keys("ex1_runs", ex1_runs, list(RUNS))
    for key, (method, profile) in RUNS.items():
        expect_run(f"ex1_runs[{key!r}]", ex1_runs[key], method, steps=config.steps, dataset="digits",
                   unlabeled_profile=profile)


@test_case(points=1)
def fixmatch_gain_of_these_runs(ex1_runs, ex1_fixmatch_gain):
    answered(ex1_runs=ex1_runs, ex1_fixmatch_gain=ex1_fixmatch_gain)
    gain = 100 * (ex1_runs["FixMatch (consistent)"].final["accuracy"] - ex1_runs["supervised"].final["accuracy"])
    expect_number("ex1_fixmatch_gain", ex1_fixmatch_gain, gain, 0.05,
                  "FixMatch (consistent)'s test accuracy minus the supervised run's, in points")


@test_case(points=1)
def few_shot_pseudo_labels_right(ex1_runs, ex1_right_few):
    answered(ex1_runs=ex1_runs, ex1_right_few=ex1_right_few)
    right = 100 * ex1_runs["FixMatch (consistent)"].final["pl_accuracy_few"]
    expect_number("ex1_right_few", ex1_right_few, right, 0.05,
                  "the share (%) of FixMatch (consistent)'s few-shot pseudo-labels that are right, at the end")
