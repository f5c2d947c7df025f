import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cissl_kit import FixMatch, train
from cissl_kit.algorithms import Batch, LayerMatch, StepContext
from cissl_kit.algorithms.layermatch import avg_clustering_loss
from cissl_kit.analysis import LayerGradientTracker, layer_gradient_report, pseudo_label_tilt
from cissl_kit.models import SmallCNN
from cissl_kit.models.base import FeatureClassifier
from cissl_kit.thresholds import SelfAdaptiveThreshold, fairness_loss, momentum_for


def _batch(seed=0, n_lb=8, n_u=16):
    torch.manual_seed(seed)
    x = torch.randn(n_lb + 2 * n_u, 1, 8, 8)
    return Batch(x[:n_lb], torch.arange(n_lb) % 10, torch.arange(n_lb), x[n_lb:n_lb + n_u], x[n_lb + n_u:],
                 torch.arange(n_u), torch.arange(n_u) % 10)


def _setup(algorithm, net):
    class _Data:
        device = torch.device("cpu")

    algorithm.setup(net, _Data())
    return net


def _ctx(step=0, total=1000):
    return StepContext(step, total, 10, torch.full((10,), 0.1))


def _supervised_grads(net, batch):
    """Gradients of L_s alone, through the same concatenated forward the step uses."""
    n_lb = batch.x_lb.shape[0]
    feats = net.features(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
    loss_s = F.cross_entropy(net.head(feats[:n_lb]), batch.y_lb)
    return torch.autograd.grad(loss_s, [net.head.weight, net.head.bias, net.block1[0].weight])


@pytest.mark.parametrize("avg_clustering", [False, True])
def test_grad_relu_classifier_learns_from_the_supervised_loss_only(avg_clustering):
    batch = _batch()
    torch.manual_seed(1)
    net = SmallCNN(10)
    head_w, head_b, conv = _supervised_grads(net, batch)
    algo = LayerMatch(threshold_mode="fixed", threshold=0.0, avg_clustering=avg_clustering)
    out = algo.training_step(_setup(algo, net), batch, _ctx())
    assert out.mask.sum() > 0 and out.logs["loss_u"] > 0
    out.loss.backward()
    assert torch.equal(net.head.weight.grad, head_w) and torch.equal(net.head.bias.grad, head_b)  # exactly
    assert not torch.allclose(net.block1[0].weight.grad, conv)  # the feature layers also learn from L_u


def test_without_grad_relu_pseudo_labels_reach_the_classifier():
    batch = _batch()
    torch.manual_seed(1)
    net = SmallCNN(10)
    head_w, _, _ = _supervised_grads(net, batch)
    algo = LayerMatch(threshold_mode="fixed", threshold=0.0, grad_relu=False, avg_clustering=False)
    algo.training_step(_setup(algo, net), batch, _ctx()).loss.backward()
    assert not torch.allclose(net.head.weight.grad, head_w)


def test_layermatch_without_its_parts_is_fixmatch():
    batch = _batch()
    torch.manual_seed(1)
    net = SmallCNN(10)
    plain = LayerMatch(threshold_mode="fixed", threshold=0.5, grad_relu=False, avg_clustering=False)
    a = plain.training_step(_setup(plain, net), batch, _ctx()).loss
    b = FixMatch(threshold=0.5).training_step(net, batch, _ctx()).loss
    assert torch.allclose(a, b)


def test_avg_clustering_follows_eq_8_step_by_step():
    batch = _batch()
    torch.manual_seed(1)
    net = SmallCNN(10)
    m, alpha, period = 0.9, 0.5, 3
    algo = LayerMatch(threshold_mode="fixed", threshold=0.0, ac_period=period, ac_momentum=m, ac_lr=alpha)
    _setup(algo, net)
    n_lb, n_u = 8, 16

    def expected_update(w_bar, b_bar):
        """β̃ = β̄ − α∇L_AC; β̄ ← m·β̄ + (1 − m)·β̃, with L_AC through (w_bar, b_bar)."""
        w_bar, b_bar = w_bar.clone().requires_grad_(True), b_bar.clone().requires_grad_(True)
        with torch.no_grad():
            feats = net.features(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        pseudo = net.head(feats[n_lb:n_lb + n_u]).argmax(1)
        loss = F.cross_entropy(F.linear(feats[n_lb + n_u:], w_bar, b_bar), pseudo)  # all pass at τ = 0
        gw, gb = torch.autograd.grad(loss, [w_bar, b_bar])
        return m * w_bar.detach() + (1 - m) * (w_bar.detach() - alpha * gw), m * b_bar.detach() + (1 - m) * (b_bar.detach() - alpha * gb)

    w_bar, b_bar = net.head.weight.detach().clone(), net.head.bias.detach().clone()  # step 0: reset to β
    for step in range(5):
        if step % period == 0:
            w_bar, b_bar = net.head.weight.detach().clone(), net.head.bias.detach().clone()
        w_bar, b_bar = expected_update(w_bar, b_bar)
        algo.training_step(net, batch, _ctx(step))
        assert torch.allclose(algo.avg_weight, w_bar, atol=1e-6) and torch.allclose(algo.avg_bias, b_bar, atol=1e-6)
        with torch.no_grad():  # the classifier moves, so a reset is visible
            net.head.weight.add_(0.05)
    assert algo.reset_period(1000) == 3 and LayerMatch().reset_period(1500) == 15


def test_avg_clustering_loss_reaches_the_feature_layers():
    batch = _batch()
    conv_grads = []
    for avg_clustering in (True, False):
        torch.manual_seed(1)
        net = SmallCNN(10)
        algo = LayerMatch(threshold_mode="fixed", threshold=0.0, avg_clustering=avg_clustering)
        out = algo.training_step(_setup(algo, net), batch, _ctx())
        out.loss.backward()
        conv_grads.append(net.block1[0].weight.grad)
    assert out.logs.get("loss_ac") is None
    assert not torch.allclose(*conv_grads)  # L_AC changes what the features learn


def test_self_adaptive_threshold_known_values():
    sat = SelfAdaptiveThreshold(2, momentum=0.5)
    assert torch.allclose(sat.thresholds(), torch.tensor([0.5, 0.5]))
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    mask = sat.mask(probs)  # updates first: global 0.75, classes [0.75, 0.25]
    assert sat.global_confidence.item() == pytest.approx(0.75)
    assert torch.allclose(sat.thresholds(), torch.tensor([0.75, 0.25]))
    assert mask.tolist() == [1.0, 1.0]
    assert sat.mask(torch.tensor([[0.3, 0.7], [0.6, 0.4]])).tolist() == [1.0, 0.0]


def test_sat_momentum_scales_with_the_run_and_the_start_at_one_opens_slowly():
    assert momentum_for(1000, 0.01) == pytest.approx(0.9) and momentum_for(2**20, 1000 / 2**20) == pytest.approx(0.999)
    assert momentum_for(50, 0.01) == 0.0  # a time constant under one step: no memory
    one = SelfAdaptiveThreshold(4, momentum=0.9, start="one")
    assert torch.equal(one.thresholds(), torch.ones(4))
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.1]] * 3)
    assert one.mask(probs).sum() == 0  # nothing passes at first: τ comes down from 1
    freematch = SelfAdaptiveThreshold(4, momentum=0.9)  # FreeMatch's paper and code: 1/K
    assert torch.allclose(freematch.thresholds(), torch.full((4,), 0.25))
    assert freematch.mask(probs).sum() == 3  # from 1/K almost everything passes
    assert FixMatch().sat_start == LayerMatch().sat_start == "freematch"
    # FixMatch sets the momentum from sat_horizon and the run length at every step
    algo = FixMatch(threshold_mode="freematch", sat_horizon=0.05)
    net = _setup(algo, SmallCNN(10))
    algo.training_step(net, _batch(), _ctx(total=400))
    assert algo.adaptive.momentum == pytest.approx(1 - 1 / 20)
    with pytest.raises(ValueError, match="sat_start must be one of 'freematch', 'one'"):
        FixMatch(sat_start="code")


def _usb_entropy_loss(mask, logits_s, prob_model, label_hist):
    """FreeMatch's fairness loss as USB writes it (semilearn/algorithms/freematch/freematch.py)."""
    mask = mask.bool()
    logits_s = logits_s[mask]
    prob_s = logits_s.softmax(dim=-1)
    _, pred_label_s = torch.max(prob_s, dim=-1)
    hist_s = torch.bincount(pred_label_s, minlength=logits_s.shape[1]).to(logits_s.dtype)
    hist_s = hist_s / hist_s.sum()
    prob_model, label_hist = prob_model.reshape(1, -1), label_hist.reshape(1, -1)
    scaler = 1 / label_hist
    scaler[scaler == float("inf")] = 0.0
    mod_prob_model = prob_model * scaler
    mod_prob_model = mod_prob_model / mod_prob_model.sum(dim=-1, keepdim=True)
    scaler_s = 1 / hist_s
    scaler_s[scaler_s == float("inf")] = 0.0
    mod_mean_prob_s = prob_s.mean(dim=0, keepdim=True) * scaler_s
    mod_mean_prob_s = mod_mean_prob_s / mod_mean_prob_s.sum(dim=-1, keepdim=True)
    return (mod_prob_model * torch.log(mod_mean_prob_s + 1e-12)).sum(dim=1).mean()


def test_fairness_loss_matches_freematchs_code_and_is_zero_without_a_mask():
    torch.manual_seed(0)
    logits = torch.randn(12, 5, requires_grad=True)
    mask = (torch.rand(12) > 0.4).float()
    p_model = torch.softmax(torch.randn(5), 0)
    hist = torch.tensor([0.3, 0.3, 0.2, 0.2, 0.0])  # a class never predicted: its scale is 0, as in the code
    ours = fairness_loss(logits, mask, p_model, hist)
    theirs = _usb_entropy_loss(mask, logits, p_model, hist)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    g_ours, = torch.autograd.grad(ours, logits)
    g_theirs, = torch.autograd.grad(theirs, logits)
    assert torch.allclose(g_ours, g_theirs, atol=1e-6)
    nothing = fairness_loss(logits, torch.zeros(12), p_model, hist)
    assert nothing.item() == 0.0 and torch.isfinite(torch.autograd.grad(nothing, logits)[0]).all()


def test_freematch_in_full_trains_with_the_fairness_loss(digits):
    result = train(FixMatch(threshold_mode="freematch", fairness_weight=0.01, sat_start="one", sat_horizon=0.05),
                   digits, steps=30, eval_every=30, log_every=10, progress=False)
    assert math.isfinite(result.history[-1]["loss_f"]) and result.history[-1]["loss_f"] != 0


def test_avg_clustering_averages_over_the_mask_or_the_batch():
    torch.manual_seed(0)
    feats, weight, bias = torch.randn(8, 4), torch.randn(3, 4), torch.randn(3)
    labels, mask = torch.randint(0, 3, (8,)), torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0])
    per_sample = F.cross_entropy(feats @ weight.T + bias, labels, reduction="none")
    masked = avg_clustering_loss(feats, weight, bias, labels, mask, "masked")
    batch = avg_clustering_loss(feats, weight, bias, labels, mask, "batch")
    assert masked.item() == pytest.approx((per_sample[0] + per_sample[3]).item() / 2)
    assert batch.item() == pytest.approx((per_sample[0] + per_sample[3]).item() / 8)  # like L_u: over the batch
    assert masked.item() == pytest.approx(4 * batch.item())  # a pseudo-label weighs 1/mask-rate times more


def test_the_papers_normalisation_divides_l_u_by_the_masked_count_too():
    """Eq. 2 and Eq. 8 both divide by the number of samples that pass; u_average="masked" does so for L_u."""
    batch = _batch()
    torch.manual_seed(1)
    with torch.no_grad():  # a threshold at the median confidence: half the weak views pass
        threshold = torch.softmax(SmallCNN(10)(batch.x_ulb_w), 1).max(1).values.median().item()
    losses = {}
    for average in ("batch", "masked"):
        torch.manual_seed(1)
        net = SmallCNN(10)
        algo = LayerMatch(threshold_mode="fixed", threshold=threshold, avg_clustering=False, u_average=average)
        out = algo.training_step(_setup(algo, net), batch, _ctx())
        losses[average], mask = out.logs["loss_u"].item(), out.mask
    used = int(mask.sum())
    assert 0 < used < mask.numel()  # some pass, some do not
    assert losses["masked"] == pytest.approx(losses["batch"] * mask.numel() / used, rel=1e-5)


def test_fixmatch_and_layermatch_train_with_self_adaptive_thresholds(digits):
    for algorithm in (FixMatch(threshold_mode="freematch"), LayerMatch()):
        result = train(algorithm, digits, steps=40, eval_every=20, log_every=10, progress=False)
        row = result.history[-1]
        assert 0.1 <= row["threshold"] < 1 and math.isfinite(row["loss"])
    assert "loss_ac" in row


# -- the layer-gradient analysis ------------------------------------------------------------------
class _Tiny(FeatureClassifier):
    """features(x) = x (identity), head = linear: small enough to compute by hand."""

    def __init__(self, weight):
        super().__init__()
        self.block = nn.Identity()
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(weight)

    def features(self, x):
        return self.block(x)

    def layer_groups(self):
        return {"block": self.block, "head": self.head}


def test_layer_gradients_known_answer():
    model = _Tiny(torch.zeros(2, 2))  # every prediction is uniform: p = (0.5, 0.5)
    x_lb, y_lb = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    x_u = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    rows = layer_gradient_report(model, x_lb, y_lb, x_u, x_u, torch.tensor([1, 1]), threshold=0.5)
    head = rows[-1]
    # ∇_W CE for uniform p: (p − onehot) xᵀ. L_s: ((0.5, −0.5) ⊗ (1, 0)) → norm √0.5
    assert head["norm_supervised"] == pytest.approx(math.sqrt(0.5))
    # pseudo-label = argmax of (0.5, 0.5) = class 0; true class 1: both used, both wrong
    assert head["mask_rate"] == 1.0 and head["pl_accuracy"] == 0.0 and head["norm_correct"] == 0.0
    # ∇L_u = ½ Σ (p − e0) xᵀ = ½ (−0.5, 0.5)ᵀ (3, 2) → norm ½·√0.5·√13
    assert head["norm_unsupervised"] == pytest.approx(0.5 * math.sqrt(0.5) * math.sqrt(13))
    assert head["cosine_oracle"] == pytest.approx(-1.0)  # the oracle (class 1) points the opposite way
    assert rows[0]["layer"] == "block" and math.isnan(rows[0]["cosine_oracle"])  # no parameters there
    assert torch.equal(model.head.weight, torch.zeros(2, 2))  # the model itself is untouched


def test_tracker_records_without_changing_training(digits):
    plain = train(FixMatch(), digits, steps=30, eval_every=30, progress=False)
    tracker = LayerGradientTracker(FixMatch(), every=10)
    tracked = train(tracker, digits, steps=30, eval_every=30, progress=False)
    for a, b in zip(plain.net.parameters(), tracked.net.parameters()):
        assert torch.equal(a, b)
    assert sorted({r["step"] for r in tracker.records}) == [0, 10, 20]
    assert [r["layer"] for r in tracker.records[:4]] == ["block1", "block2", "block3", "head"]
    steps, values = tracker.series("head", "cosine_oracle")
    assert steps == [0, 10, 20] and len(values) == 3
    with pytest.raises(ValueError, match="every must be"):
        LayerGradientTracker(FixMatch(), every=0)


def test_tracker_reports_the_mask_the_model_trains_with(digits):
    """For every threshold mode the report's mask rate is the training step's, exactly."""
    for inner in (LayerMatch(sat_start="one"), FixMatch(threshold=0.95), LayerMatch(), LayerMatch(sat_horizon=0.05)):
        masks = {}
        step_of_inner = inner.training_step

        def recording(net, batch, ctx, step_of_inner=step_of_inner, masks=masks):
            out = step_of_inner(net, batch, ctx)
            masks[ctx.step] = (out.mask > 0).float().mean().item()
            return out

        inner.training_step = recording
        tracker = LayerGradientTracker(inner, every=10)
        train(tracker, digits, steps=30, eval_every=30, progress=False)
        recorded = {r["step"]: r["mask_rate"] for r in tracker.records if r["layer"] == "head"}
        assert recorded == {step: masks[step] for step in (0, 10, 20)}, inner.name
        assert all(math.isfinite(r["threshold"]) for r in tracker.records)
        if inner.threshold_mode == "freematch" and inner.sat_start == "freematch" and inner.sat_horizon == 0:
            assert recorded[0] == 1.0  # SAT starts at 1/K (momentum 0.999): every pseudo-label is used at step 0
        if inner.threshold_mode == "fixed":
            assert all(r["threshold"] == pytest.approx(0.95) for r in tracker.records)


def test_toy_wrong_pseudo_labels_tilt_the_boundary():
    clean = pseudo_label_tilt(noise_rate=0.0, threshold=0.7)
    noisy = pseudo_label_tilt(noise_rate=1.0, threshold=0.7)
    assert abs(noisy.tilt_degrees("noisy pseudo-labels")) > abs(clean.tilt_degrees("noisy pseudo-labels")) + 10
    assert noisy.bridge_accuracy["noisy pseudo-labels"] < noisy.bridge_accuracy["clean pseudo-labels"] - 0.1
    strict = pseudo_label_tilt(noise_rate=1.0, threshold=0.95)  # a high threshold keeps the bridge out
    assert strict.wrong.sum() == 0
    with pytest.raises(ValueError, match="noise_rate"):
        pseudo_label_tilt(noise_rate=1.5)
