"""Notebook 06, exercise 2: ACR with the Jensen-Shannon divergence against the code's symmetric KL (own runs)."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_keys, expect_number, expect_run

OK_FORMAT = False
name = "06_ex2"
points = 2


@test_case(points=1)
def acr_with_js(ex2_run, BENCHMARK_STEPS):
    answered(ex2_run=ex2_run)
    expect_run("ex2_run", ex2_run, "acr", steps=BENCHMARK_STEPS, hparams={"divergence": "js"}, dataset="mnist",
               unlabeled_profile="reversed", seed=0)


@test_case(points=1)
def final_tau_of_both(ex2_run, ex2_tau, acr_runs):
    answered(ex2_run=ex2_run, ex2_tau=ex2_tau)
    expect_keys("ex2_tau", ex2_tau, ["js", "kl"])
    for key, run in (("js", ex2_run), ("kl", acr_runs["reversed"][2])):
        expect_number(f"ex2_tau[{key!r}]", ex2_tau[key], run.history[-1]["tau"], 0.0005,
                      f"the final τ (its last evaluation) of the {key} run, reversed unlabeled data")
