"""Notebook 01, exercise 3: a balanced supervised baseline, two live runs and the ten shipped seeds."""
from otter.test_files import test_case

from cissl_kit.benchmark import reference_results
from cissl_kit.grading import answered, expect_difference, expect_keys, expect_run, shipped_difference

OK_FORMAT = False
name = "01_ex3"
points = 3


@test_case(points=1)
def the_two_supervised_runs(ex3_runs, config):
    answered(ex3_runs=ex3_runs)
    expect_keys("ex3_runs", ex3_runs, ["class-balanced sampling", "logit adjustment"])
    expect_run("ex3_runs['class-balanced sampling']", ex3_runs["class-balanced sampling"], "supervised",
               steps=config.steps, hparams={"sampler": "balanced"}, dataset="mnist")
    expect_run("ex3_runs['logit adjustment']", ex3_runs["logit adjustment"], "supervised",
               steps=config.steps, hparams={"logit_adjust_tau": 1.0}, dataset="mnist")


def _shipped(group):
    rows = [r for r in reference_results() if r["profile"] == "consistent" and r["label"] in ("supervised", "supervised_la")]
    return shipped_difference(rows, "supervised_la", "supervised", group)


@test_case(points=1)
def few_shot_gain_over_ten_seeds(ex3_la_few):
    answered(ex3_la_few=ex3_la_few)
    expect_difference("ex3_la_few", ex3_la_few, _shipped("few"))


@test_case(points=1)
def many_shot_change_over_ten_seeds(ex3_la_many):
    answered(ex3_la_many=ex3_la_many)
    expect_difference("ex3_la_many", ex3_la_many, _shipped("many"))
