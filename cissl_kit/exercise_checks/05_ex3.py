"""Notebook 05, exercise 3: the supervised model's embedding against FixMatch's, from the student's own runs."""
from otter.test_files import test_case

from cissl_kit.grading import answered, expect_keys, expect_number, expect_run

OK_FORMAT = False
name = "05_ex3"
points = 2
METHODS = ("supervised", "fixmatch")


@test_case(points=1)
def the_supervised_run(results, BENCHMARK_STEPS):
    assert isinstance(results, dict) and "supervised" in results, (
        "`results['supervised']` should hold the supervised run: train('supervised', data, seed=0, "
        "steps=BENCHMARK_STEPS)")
    expect_run("results['supervised']", results["supervised"], "supervised", steps=BENCHMARK_STEPS, dataset="mnist",
               unlabeled_profile="reversed")


@test_case(points=1)
def few_shot_separation(ex3_silhouette, results, data):
    answered(ex3_silhouette=ex3_silhouette)
    import torch
    from sklearn.metrics import silhouette_samples

    from cissl_kit.analysis import embed_test_images

    expect_keys("ex3_silhouette", ex3_silhouette, METHODS)
    labels = data.test_labels.cpu()
    few = torch.isin(labels, torch.tensor(data.groups["few"])).numpy()
    for method in METHODS:
        features = embed_test_images(results[method].ema_net, data)
        expected = float(silhouette_samples(features, labels.numpy())[few].mean())
        expect_number(f"ex3_silhouette[{method!r}]", ex3_silhouette[method], expected, 0.005,
                      f"the mean silhouette of the few-shot test images in {method}'s embedding")
