import pytest
import torch

from cissl_kit import TrainConfig, train
from cissl_kit.algorithms import ClassifierTraining, EmbeddingTraining, TemporalConsistency, ldam_margins
from cissl_kit.algorithms.ldam import class_balanced_weights, ldam_loss
from cissl_kit.cli import main
from cissl_kit.recipes import AlternateSampling, Decoupling

FAST = TrainConfig(progress=False)
TINY = dict(init_steps=20, crt_steps=5, loops=2, embedding_steps=10, classifier_steps=5)


def test_temporal_consistency_is_zero_when_predictions_did_not_change():
    memory = TemporalConsistency(10, 3)
    logits = torch.randn(4, 3)
    idx = torch.tensor([1, 3, 5, 7])
    assert memory.loss(idx, logits).item() == 0.0  # nothing seen yet
    assert memory.loss(idx, logits).item() == pytest.approx(0.0, abs=1e-7)  # same predictions: KL = 0
    changed = memory.loss(idx, logits + torch.tensor([3.0, 0.0, 0.0]))
    previous = torch.softmax(logits, 1)
    current = torch.log_softmax(logits + torch.tensor([3.0, 0.0, 0.0]), 1)
    expected = (previous * (previous.log() - current)).sum(1).mean()  # Eq. 3
    assert changed.item() == pytest.approx(expected.item(), rel=1e-5)


def test_stage_three_leaves_every_feature_parameter_bit_identical(digits):
    run = AlternateSampling(**TINY).start(digits, FAST)
    run.initialize()
    run.assign_labels()
    run.train_embedding()
    before = {k: v.clone() for k, v in run.net.model.state_dict().items()}  # f and g′, with BN statistics
    head_before = run.net.balanced_head.weight.clone()
    run.train_classifier()
    after = run.net.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(head_before, run.net.balanced_head.weight)  # g did learn


def test_stage_one_labels_with_g_not_g_prime(digits):
    run = Decoupling(init_steps=5, crt_steps=5).start(digits, FAST)
    run.initialize()
    with torch.no_grad():  # g′ says class 0 for everything, g says class 7
        run.net.head.weight.zero_()
        run.net.head.bias.copy_(torch.eye(10)[0] * 100)
        run.net.balanced_head.weight.zero_()
        run.net.balanced_head.bias.copy_(torch.eye(10)[7] * 100)
    run.assign_labels()
    assert (run.pseudo_labels == 7).all()
    assert run.pseudo_label_report["pl_accuracy_per_class"][7] == 1.0


def test_embedding_stage_trains_f_and_g_prime_but_not_g(digits):
    run = AlternateSampling(**TINY).start(digits, FAST)
    run.initialize()
    run.assign_labels()
    g_before, g_prime_before = run.net.balanced_head.weight.clone(), run.net.head.weight.clone()
    run.train_embedding()
    assert torch.equal(g_before, run.net.balanced_head.weight)
    assert not torch.equal(g_prime_before, run.net.head.weight)


def test_stage_plan_and_records(digits):
    run = AlternateSampling(**TINY).start(digits, FAST)
    names = []
    while (name := run.next_stage()) is not None:
        names.append(name)
    assert names == ["initialize embedding", "initialize classifier",
                     "loop 1: assign labels", "loop 1: train embedding", "loop 1: train classifier",
                     "loop 2: assign labels", "loop 2: train embedding", "loop 2: train classifier"]
    assert [r["loop"] for r in run.records] == [0, 0, 1, 1, 1, 2, 2, 2]
    assert run.steps_done == 20 + 5 + 2 * (10 + 5) and run.num_stages == 8
    assert "pl_accuracy_few" in run.records[-1] and "accuracy_random_head" in run.records[0]
    with pytest.raises(RuntimeError, match="all 2 loops have run"):
        run.loop()


def test_samplers_of_the_stages():
    assert ClassifierTraining().labeled_sampler == "balanced" and EmbeddingTraining().labeled_sampler == "random"
    ablation = AlternateSampling(embedding_sampler="balanced", classifier_sampler="random")
    assert (ablation.embedding_sampler, ablation.classifier_sampler) == ("balanced", "random")
    with pytest.raises(ValueError, match="embedding_data must be one of 'all', 'labeled'"):
        AlternateSampling(embedding_data="unlabeled")


def test_decoupling_reinitializes_g_with_class_balanced_training(digits):
    run = Decoupling(init_steps=30, crt_steps=30).start(digits, FAST)
    run.next_stage()
    g_random_init = run.net.balanced_head.weight.clone()
    run.next_stage()
    assert not torch.equal(g_random_init, run.net.balanced_head.weight)
    assert run.records[-1]["few"] >= 0 and run.next_stage() is None


def test_ldam_margins_follow_c_over_n_to_the_quarter():
    counts = torch.tensor([625, 81, 16, 1])
    margins = ldam_margins(counts, max_margin=0.5)
    assert torch.allclose(margins, 0.5 * torch.tensor([1 / 5, 1 / 3, 1 / 2, 1.0]))  # n^{-1/4} = 1/5, 1/3, 1/2, 1
    logits = torch.zeros(2, 4)
    targets = torch.tensor([0, 3])
    loss = ldam_loss(logits, targets, margins, scale=1.0)
    expected = torch.nn.functional.cross_entropy(
        torch.tensor([[-0.1, 0, 0, 0], [0, 0, 0, -0.5]]), targets)
    assert torch.allclose(loss, expected)
    weights = class_balanced_weights(counts, beta=0.99)
    assert weights.sum().item() == pytest.approx(4.0) and weights[3] > weights[0]


@pytest.mark.parametrize("method", ["decoupling", "alternate", "pseudolabel_decoupling", "ldam_drw", "pseudolabel_ldam"])
def test_recipes_and_baselines_run_end_to_end(method, digits):
    small = {"decoupling": dict(init_steps=20, crt_steps=5), "alternate": TINY,
             "pseudolabel_decoupling": dict(init_steps=20, crt_steps=5, embedding_steps=10, classifier_steps=5),
             "ldam_drw": {}, "pseudolabel_ldam": dict(init_steps=20, finetune_steps=10)}[method]
    from cissl_kit.registry import build_algorithm

    result = train(build_algorithm(method, **small), digits, steps=20, eval_every=20, progress=False)
    assert result.method == method and 0 <= result.final["accuracy"] <= 1 and len(result.final["per_class"]) == 10
    assert result.history


def test_cli_runs_alternate_with_its_flags(tmp_path):
    assert main(["train", "--method", "alternate,decoupling", "--loops", "1", "--init-steps", "10", "--crt-steps", "5",
                 "--embedding-steps", "5", "--classifier-steps", "5", "--classifier-sampler", "random",
                 "--no-progress", "--out", str(tmp_path), "--name", "a"]) == 0
    import json

    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results[0]["hparams"]["classifier_sampler"] == "random" and results[0]["hparams"]["loops"] == 1
    assert results[1]["method"] == "decoupling" and results[1]["hparams"]["init_steps"] == 10
