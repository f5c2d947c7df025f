"""Notebook 02, exercise 4: SeMi against FixMatch + balanced head on mnist-LT, the ten shipped seeds."""
from otter.test_files import test_case

from cissl_kit.benchmark import reference_results
from cissl_kit.grading import answered, expect_difference, expect_keys, expect_verdict, shipped_difference

OK_FORMAT = False
name = "02_ex4"
points = 2
PROFILES = ("consistent", "uniform", "reversed")


@test_case(points=1)
def semi_against_balanced_head(ex4_semi_vs_bh):
    answered(ex4_semi_vs_bh=ex4_semi_vs_bh)
    expect_keys("ex4_semi_vs_bh", ex4_semi_vs_bh, PROFILES)
    rows = [r for r in reference_results() if r["label"] in ("fixmatch_bh", "semi")]
    for profile in PROFILES:
        expect_difference(f"ex4_semi_vs_bh[{profile!r}]", ex4_semi_vs_bh[profile],
                          shipped_difference(rows, "semi", "fixmatch_bh", profile=profile))


@test_case(points=1)
def verdicts(ex4_semi_vs_bh, ex4_verdicts):
    answered(ex4_semi_vs_bh=ex4_semi_vs_bh, ex4_verdicts=ex4_verdicts)
    expect_keys("ex4_verdicts", ex4_verdicts, PROFILES)
    for profile in PROFILES:
        expect_verdict(f"ex4_verdicts[{profile!r}]", ex4_verdicts[profile], ex4_semi_vs_bh[profile])
