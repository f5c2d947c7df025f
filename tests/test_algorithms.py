import pytest
import torch
import torch.nn.functional as F

from cissl_kit.algorithms import Batch, FixMatch, PseudoLabel, StepContext, Supervised
from cissl_kit.losses import fixmatch_consistency_loss, logit_adjusted_cross_entropy
from cissl_kit.registry import ALGORITHMS, build_algorithm


def test_fixmatch_loss_is_zero_when_nothing_passes_the_threshold():
    logits_w = torch.zeros(16, 10)  # uniform: max p = 0.1 < 0.95
    logits_s = torch.randn(16, 10, requires_grad=True)
    loss, mask, _, _ = fixmatch_consistency_loss(logits_w, logits_s, 0.95)
    assert loss.item() == 0.0 and mask.sum() == 0
    loss.backward()
    assert torch.isfinite(logits_s.grad).all() and logits_s.grad.abs().sum() == 0


def test_fixmatch_loss_averages_over_the_whole_batch():
    logits_w = torch.zeros(4, 3)
    logits_w[:2, 1] = 20.0  # two confident samples, pseudo-label 1
    logits_s = torch.randn(4, 3)
    loss, mask, pseudo, probs = fixmatch_consistency_loss(logits_w, logits_s, 0.95)
    assert torch.allclose(probs.sum(1), torch.ones(4))
    assert mask.tolist() == [1, 1, 0, 0] and pseudo[:2].tolist() == [1, 1]
    expected = F.cross_entropy(logits_s[:2], pseudo[:2], reduction="sum") / 4
    assert torch.allclose(loss, expected)


def test_fixmatch_loss_never_nan_on_extreme_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [0.0, 0.0, 0.0]])
    loss, mask, _, _ = fixmatch_consistency_loss(logits, logits * -1, 0.95)
    assert torch.isfinite(loss) and mask.tolist() == [1, 0, 0]


def test_logit_adjusted_cross_entropy():
    logits, targets = torch.randn(8, 4), torch.randint(0, 4, (8,))
    log_prior = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.equal(logit_adjusted_cross_entropy(logits, targets, log_prior, 0.0), F.cross_entropy(logits, targets))
    assert torch.allclose(logit_adjusted_cross_entropy(logits, targets, log_prior, 2.0),
                          F.cross_entropy(logits + 2.0 * log_prior, targets))


class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(4, 3)

    def features(self, x):
        return x.flatten(1)

    def forward(self, x):
        return self.head(self.features(x))


def _ctx(step=0, total=100):
    return StepContext(step, total, 3, torch.tensor([0.6, 0.3, 0.1]))


def test_fixmatch_step_combines_supervised_and_unsupervised_losses():
    torch.manual_seed(0)
    net = _Linear()
    batch = Batch(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), torch.arange(5),
                  torch.randn(15, 4), torch.randn(15, 4), torch.arange(15), torch.zeros(15, dtype=torch.long))
    out = FixMatch(threshold=0.0).training_step(net, batch, _ctx())
    expected_s = F.cross_entropy(net(batch.x_lb), batch.y_lb)
    pseudo = net(batch.x_ulb_w).argmax(1)
    expected_u = F.cross_entropy(net(batch.x_ulb_s), pseudo)
    assert torch.allclose(out.loss, expected_s + expected_u, atol=1e-6)
    assert out.mask.sum() == 15 and torch.equal(out.pseudo_labels, pseudo)


def test_pseudo_label_weight_ramps_up():
    torch.manual_seed(0)
    net = _Linear()
    batch = Batch(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), torch.arange(5),
                  torch.randn(15, 4), None, torch.arange(15), torch.zeros(15, dtype=torch.long))
    algo = PseudoLabel(threshold=0.0, unsup_warmup=0.5)
    start = algo.training_step(net, batch, _ctx(0))
    assert torch.allclose(start.loss, start.logs["loss_s"])  # ramp = 0 at step 0
    half = algo.training_step(net, batch, _ctx(25))
    assert torch.allclose(half.loss, half.logs["loss_s"] + 0.5 * half.logs["loss_u"])


def test_supervised_uses_logit_adjustment():
    torch.manual_seed(0)
    net = _Linear()
    batch = Batch(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]), torch.arange(6))
    ctx = _ctx()
    out = Supervised(logit_adjust_tau=1.0).training_step(net, batch, ctx)
    assert torch.allclose(out.loss, F.cross_entropy(net(batch.x_lb) + ctx.log_prior, batch.y_lb))
    assert Supervised(sampler="balanced").labeled_sampler == "balanced"


@pytest.mark.parametrize("kwargs, word", [
    (dict(threshold=1.5), r"threshold must be a number in \[0, 1\]"),
    (dict(lambda_u=-1.0), "lambda_u"),
    (dict(threshold="high"), "threshold"),
])
def test_bad_hyper_parameters_name_the_parameter(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        FixMatch(**kwargs)


def test_build_algorithm_errors():
    with pytest.raises(ValueError, match="method must be one of 'supervised', 'supervised_la', 'pseudolabel', 'fixmatch'"):
        build_algorithm("mixmatch")
    with pytest.raises(ValueError, match="has no hyper-parameter sampler"):
        build_algorithm("fixmatch", sampler="balanced")
    with pytest.raises(ValueError, match="sampler must be one of"):
        Supervised(sampler="stratified")
    assert set(ALGORITHMS) >= {"supervised", "pseudolabel", "fixmatch"}
