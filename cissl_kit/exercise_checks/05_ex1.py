"""Notebook 05, exercise 1: which method loses most from γ = 10 to γ = 50 (consistent, three seeds)."""
from otter.test_files import test_case

from cissl_kit.benchmark import exercise_results
from cissl_kit.grading import answered, expect_keys, expect_number

OK_FORMAT = False
name = "05_ex1"
points = 2


def _mean(runs, label):
    values = [100 * r["accuracy"] for r in runs if r["label"] == label]
    return sum(values) / len(values)


@test_case(points=1)
def drop_of_each_method(ex1_drop, gamma50, rows, RETRAIN):
    answered(ex1_drop=ex1_drop)
    shipped = exercise_results("mnist_lt_gamma50")
    at50 = gamma50 if RETRAIN else shipped  # a re-trained grid is checked against itself
    methods = list(dict.fromkeys(r["label"] for r in shipped))
    expect_keys("ex1_drop", ex1_drop, methods)
    seeds = {r["seed"] for r in at50}
    at10 = [r for r in rows if r["profile"] == "consistent" and r["seed"] in seeds]
    for method in methods:
        expect_number(f"ex1_drop[{method!r}]", ex1_drop[method], _mean(at10, method) - _mean(at50, method), 0.05,
                      f"{method}'s mean accuracy at γ = 10 minus its mean at γ = 50, consistent data, the same seeds, "
                      "in points")


@test_case(points=1)
def the_method_that_suffers_most(ex1_drop, ex1_most):
    answered(ex1_drop=ex1_drop, ex1_most=ex1_most)
    assert ex1_most == max(ex1_drop, key=ex1_drop.get), (
        f"`ex1_most` = {ex1_most!r} is not the method with the largest drop in `ex1_drop`")
