"""Notebook 02, exercise 3: SeMi with the public code's threshold 0.95 against the paper's 0.7, five seeds."""
from otter.test_files import test_case

from cissl_kit.course import course_results
from cissl_kit.grading import answered, expect_difference, expect_keys, expect_number, shipped_difference

OK_FORMAT = False
name = "02_ex3"
points = 2


@test_case(points=1)
def code_against_paper(ex3_code_vs_paper, RETRAIN):
    answered(ex3_code_vs_paper=ex3_code_vs_paper)
    expect_difference("ex3_code_vs_paper", ex3_code_vs_paper,
                      shipped_difference(course_results("02_semi"), "SeMi τ = 0.95 (public code)", "SeMi"), retrained=RETRAIN)


@test_case(points=1)
def share_of_the_batch_used(ex3_used, RETRAIN):
    answered(ex3_used=ex3_used)
    expect_keys("ex3_used", ex3_used, [0.7, 0.95])
    for threshold, label in ((0.7, "SeMi"), (0.95, "SeMi τ = 0.95 (public code)")):
        used = [100 * r["curve"][-1]["mask"] for r in course_results("02_semi") if r["label"] == label]
        tolerance = (max(used) - min(used)) / 2 if RETRAIN else 0.05
        expect_number(f"ex3_used[{threshold}]", ex3_used[threshold], sum(used) / len(used), tolerance,
                      f"the share (%) of the unlabeled batch that passes τ = {threshold} in the last evaluation, "
                      "the mean over the five seeds")
