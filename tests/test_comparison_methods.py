"""The methods the papers compare against (ACR, DASO, ABC, DARP, CReST+): each key quantity
against a from-scratch reference written from the paper or the official code in the test."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize

from cissl_kit import TrainConfig, train
from cissl_kit.algorithms import ABC, ACR, DARP, DASO, FixMatchDA
from cissl_kit.algorithms.abc import abc_keep_probabilities
from cissl_kit.algorithms.acr import adaptive_tau, anchor_divergences
from cissl_kit.algorithms.darp import darp_refine, darp_solve, estimate_pseudo
from cissl_kit.algorithms.daso import PrototypeQueue, blend_weights
from cissl_kit.recipes import CReSTPlus
from cissl_kit.recipes.crest import crest_sampling_rates, select_pseudo_labels
from cissl_kit.registry import build_algorithm

SHORT = TrainConfig(steps=30, batch_size=16, uratio=2, eval_every=15, log_every=5, progress=False)


# -- ACR ------------------------------------------------------------------------------------------
def _kl(p, q):
    return sum(a * (math.log(a) - math.log(b)) for a, b in zip(p, q) if a > 0)


def _reference_tau(estimate, prior, tau_max=2.0):
    """ACR train.py: KL_x = ½·KL(û‖a) + ½·KL(a‖û) for a = con, uni, rev; τ = τ_max·softmax(KL)[con]."""
    k = len(prior)
    anchors = [prior, [1.0 / k] * k, prior[::-1]]
    d = [0.5 * _kl(estimate, a) + 0.5 * _kl(a, estimate) for a in anchors]
    return tau_max * math.exp(d[0]) / sum(math.exp(x) for x in d)


def test_acr_tau_follows_the_estimated_distribution():
    counts = [100, 46, 21, 10, 4]
    prior = [c / sum(counts) for c in counts]
    anchors = torch.tensor([prior, [0.2] * 5, prior[::-1]], dtype=torch.float64)
    taus = {}
    for name, estimate in {"consistent": prior, "uniform": [0.2] * 5, "reversed": prior[::-1],
                           "between": [0.3, 0.25, 0.2, 0.15, 0.1]}.items():
        d = anchor_divergences(torch.tensor(estimate, dtype=torch.float64), anchors)
        taus[name] = adaptive_tau(d, 0.0, 2.0).item()
        assert taus[name] == pytest.approx(_reference_tau(estimate, prior), rel=1e-9), name
    # unlabeled data like the labeled: barely adjust; the more it departs, the more the adjustment
    assert taus["consistent"] < 0.25 < taus["between"] < taus["uniform"] < 1.0 < taus["reversed"] < 2.0


def test_acr_js_divergence_is_the_textbook_one():
    p, q = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([[0.1, 0.3, 0.6]])
    m = [(a + b) / 2 for a, b in zip(p.tolist(), q[0].tolist())]
    reference = 0.5 * _kl(p.tolist(), m) + 0.5 * _kl(q[0].tolist(), m)
    assert anchor_divergences(p, q, "js").item() == pytest.approx(reference, rel=1e-6)


def test_acr_estimates_the_unlabeled_distribution_and_adapts_tau(digits):
    result = train(ACR(estimate_after=0.1, estimate_period=0.05), digits, config=SHORT)
    taus = [row["tau"] for row in result.history]
    assert taus[0] != pytest.approx(2.0) or taus[-1] != pytest.approx(2.0), "τ never left its start"
    assert all(0.0 <= t <= 2.0 for t in taus)
    for key in ("loss_s", "loss_u", "loss_s_b", "loss_u_b", "mask_b"):
        assert key in result.history[-1]


def test_acr_predicts_with_the_balanced_head_and_trains_two_strong_views(digits):
    from cissl_kit import Trainer

    trainer = Trainer(ACR(), digits, steps=2, progress=False)
    batch = trainer.next_batch()
    assert batch.x_ulb_s2 is not None and batch.x_ulb_s2.shape == batch.x_ulb_s.shape
    assert not torch.equal(batch.x_ulb_s, batch.x_ulb_s2), "two different strong views"
    x = digits.augmenter.plain(digits.test_images[:8])
    net = trainer.net.eval()
    assert torch.equal(trainer.algorithm.predict(net, x), net.balanced_head(net.features(x)))


# -- ABC ------------------------------------------------------------------------------------------
def test_abc_mask_probabilities_follow_the_paper():
    counts = torch.tensor([200, 80, 20, 0, 5])
    labeled, start = abc_keep_probabilities(counts, 0.0)
    _, end = abc_keep_probabilities(counts, 1.0)
    _, middle = abc_keep_probabilities(counts, 0.5)
    reference = [5 / 200, 5 / 80, 5 / 20, 1.0, 1.0]  # N_min / N_k; a class with no labels is always kept
    assert labeled.tolist() == pytest.approx(reference)
    assert start.tolist() == pytest.approx([1.0] * 5)  # unlabeled: all kept at first ...
    assert end.tolist() == pytest.approx(reference)  # ... the labeled rates at the end
    assert middle.tolist() == pytest.approx([1 - 0.5 * (1 - r) for r in reference])


def test_abc_bernoulli_masks_keep_the_expected_share(digits, monkeypatch):
    kept = []
    original = torch.bernoulli
    monkeypatch.setattr(torch, "bernoulli", lambda p, *a, **k: kept.append(p.clone()) or original(p, *a, **k))
    trainer_result = train(ABC(), digits, config=TrainConfig(steps=3, batch_size=32, progress=False, eval_every=3))
    counts = torch.tensor(digits.labeled_counts, dtype=torch.float)
    probabilities = kept[0]  # the first step's labeled mask probabilities, one per labeled sample
    assert set(probabilities.tolist()) <= set((counts.min() / counts).tolist())
    assert math.isfinite(trainer_result.final["accuracy"])


# -- DARP -----------------------------------------------------------------------------------------
def _usb_estimate_pseudo(q_y, saved_q, alpha):
    pseudo_labels = torch.zeros(len(saved_q), saved_q.shape[1], dtype=saved_q.dtype)
    k_probs = torch.zeros(saved_q.shape[1], dtype=saved_q.dtype)
    for i in range(saved_q.shape[1] - 1, -1, -1):
        num_i = int(alpha * q_y[i])
        sorted_probs, idx = saved_q[:, i].sort(dim=0, descending=True)
        pseudo_labels[idx[:num_i], i] = 1
        k_probs[i] = sorted_probs[:num_i].sum()
    return pseudo_labels, (q_y + 1e-6) / (k_probs + 1e-6)


def _usb_opt_solver(probs, target_distb, num_iter, num_newton=30):
    """USB's DARPPseudoLabelingHook.opt_solver, with SciPy's newton (the secant method) per class."""
    def f(x, a, b, c, d):
        return np.sum(a * b * np.exp(-1 * x / c)) - d

    entropy = (-1 * probs * torch.log(probs + 1e-6)).sum(1)
    weights = 1 / entropy
    n, k = probs.shape
    a, w, r, c = probs.numpy(), weights.numpy(), np.ones(n), target_distb.numpy()
    a_e = a / math.e
    y = np.exp(-1 * np.ones(k).reshape(1, -1) / w.reshape(-1, 1))
    prev_y = np.zeros(k)
    y_t = y
    for _ in range(num_iter):
        x_t = r / np.sum(a_e * y_t, 1)
        y_t = np.zeros(k)
        for i in range(k):
            y_t[i] = optimize.newton(f, prev_y[i], maxiter=num_newton, args=(a_e[:, i], x_t, w, c[i]), tol=1.0e-01)
        prev_y = y_t
        y_t = np.exp(-1 * y_t.reshape(1, -1) / w.reshape(-1, 1))
    x_t = r / np.sum(a_e * y_t, 1)
    return torch.from_numpy(a_e * x_t.reshape(-1, 1) * y_t)


def _predictions(n=300, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64) * 2 + torch.linspace(2, 0, k, dtype=torch.float64)
    return torch.softmax(logits, 1)


def test_darp_iterative_normalisation_matches_the_code():
    saved, target = _predictions(), torch.tensor([20.0, 40, 60, 80, 100], dtype=torch.float64)
    votes, scale = estimate_pseudo(target, saved, alpha=2.0)
    ref_votes, ref_scale = _usb_estimate_pseudo(target, saved, 2.0)
    assert torch.equal(votes, ref_votes) and torch.allclose(scale, ref_scale)


def test_darp_refined_labels_meet_the_target_marginals_and_match_the_code():
    probs = _predictions()
    target = torch.tensor([30.0, 45, 60, 75, 90], dtype=torch.float64)  # a different class balance
    refined = darp_solve(probs, target, num_iter=10)
    assert torch.allclose(refined.sum(1), torch.ones(len(probs), dtype=torch.float64))
    assert torch.allclose(refined.sum(0), target, rtol=0.02), refined.sum(0)
    assert torch.allclose(refined, _usb_opt_solver(probs, target, 10), atol=1e-8)
    # the refinement moves the pseudo-label histogram towards the target, away from the predictions'
    before = torch.bincount(probs.argmax(1), minlength=5).double()
    after = torch.bincount(darp_refine(probs, target, 2.0, 10).argmax(1), minlength=5).double()
    assert (after - target).abs().sum() < (before - target).abs().sum()


def test_darp_refines_after_its_warmup(digits):
    algorithm = DARP(darp_warmup=0.5, darp_refine_every=5)
    result = train(algorithm, digits, config=SHORT)
    assert math.isfinite(result.final["accuracy"])
    refined = algorithm.pseudo_refine
    assert not torch.allclose(refined, torch.full_like(refined, 1 / 10)), "the table was never refined"
    assert torch.allclose(refined.sum(1), torch.ones(len(refined), dtype=refined.dtype))


# -- DASO -----------------------------------------------------------------------------------------
def test_daso_blending_weights_follow_the_code():
    histogram = torch.tensor([400.0, 200, 90, 30, 10])
    for t in (1.5, 0.3):
        dist = [h ** (1 / t) for h in histogram.tolist()]
        dist = [d / sum(dist) for d in dist]
        reference = [d / max(dist) for d in dist]
        assert blend_weights(histogram, t).tolist() == pytest.approx(reference, rel=1e-5)
    weights = blend_weights(histogram, 1.5)
    assert weights[0] == 1.0 and (weights[:-1] > weights[1:]).all()  # head classes lean on semantics most
    assert torch.equal(blend_weights(torch.zeros(5), 1.5), torch.zeros(5))  # no histogram yet: no blending


def test_daso_prototype_queue_is_a_per_class_fifo():
    queue, reference = PrototypeQueue(3, size=4, dim=2, device="cpu"), {0: [], 1: [], 2: []}
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        labels = torch.randint(0, 3, (7,), generator=g)
        labels[:6] = 0 if _ == 2 else labels[:6]  # one batch with more of a class than the queue holds
        feats = torch.randn(7, 2, generator=g)
        queue.push(feats, labels)
        for f, y in zip(feats, labels.tolist()):
            reference[y] = (reference[y] + [f])[-4:]
        for k, stored in reference.items():
            expected = torch.stack(stored).mean(0) if stored else torch.zeros(2)
            assert torch.allclose(queue.prototypes()[k], expected, atol=1e-6), (k, _)


def test_daso_blends_and_aligns_after_pretraining(digits):
    result = train(DASO(pretrain=0.3, dist_period=0.1), digits, config=SHORT)
    rows = result.history
    assert "loss_align" in rows[-1] and rows[-1]["loss_align"] > 0


# -- CReST+ ---------------------------------------------------------------------------------------
def test_crest_sampling_rates_follow_eq_2():
    counts = torch.tensor([10, 100, 3, 40, 21])  # classes in no particular order
    alpha = 1 / 3
    ordered = sorted(counts.tolist(), reverse=True)  # N_1 ≥ … ≥ N_K
    rank = {c: i for i, c in enumerate(sorted(range(5), key=lambda c: -counts[c].item()))}
    reference = [(ordered[5 - 1 - rank[c]] / ordered[0]) ** alpha for c in range(5)]  # (N_{K+1-k}/N_1)^α
    assert crest_sampling_rates(counts, alpha).tolist() == pytest.approx(reference)
    usb = [(math.pow(math.pow(0.1, 1 / 4), 4 - c)) ** (1 / 3) for c in range(5)]  # USB, class 0 the head
    geometric = torch.tensor([int(100 * 0.1 ** (c / 4)) for c in range(5)])
    assert crest_sampling_rates(geometric, alpha).tolist() == pytest.approx(usb, rel=0.03)


def test_crest_selects_the_most_confident_of_each_predicted_class():
    probs = _predictions(n=200, k=4, seed=3).float()
    rates = torch.tensor([0.25, 0.5, 1.0, 0.75])
    positions, labels = select_pseudo_labels(probs, rates)
    confidence, predicted = probs.max(1)
    for k in range(4):
        members = [i for i in range(200) if predicted[i] == k]
        members.sort(key=lambda i: -confidence[i].item())
        expected = sorted(members[: int(len(members) * rates[k].item())])
        assert sorted(positions[labels == k].tolist()) == expected, k


def test_crest_plus_generations_add_pseudo_labels_and_align_progressively(digits):
    recipe = CReSTPlus(generations=3)
    run = recipe.start(digits, SHORT)
    assert [run.alignment_t(g) for g in range(3)] == pytest.approx([1.0, 0.75, 0.5])
    assert [run.steps_of(g) for g in range(3)] == [10, 10, 10]
    assert run.next_generation() == 0 and run.records[0]["added"] > 0
    data = run.generation_data()
    assert sum(data.labeled_counts) == sum(digits.labeled_counts) + run.records[0]["added"]
    assert torch.equal(data.unlabeled_idx, digits.unlabeled_idx)  # the unlabeled set stays whole
    while run.next_generation() is not None:
        pass
    result = run.result()
    assert result.final["generations"] == 3 and result.final["step"] == 30
    assert [row["generation"] for row in result.history] == [0, 1, 2]  # each generation's last evaluation
    assert [row["step"] for row in result.history] == [10, 20, 30]


def test_distribution_alignment_follows_the_hook():
    algorithm = FixMatchDA(dist_align_t=0.5)
    prior = torch.tensor([0.6, 0.3, 0.1])
    algorithm.target = (prior ** 0.5) / (prior ** 0.5).sum()
    algorithm.p_model = None
    probs = torch.softmax(torch.randn(8, 3), 1)
    aligned = algorithm.align(probs)
    reference = probs * (algorithm.target + 1e-6) / (probs.mean(0) + 1e-6)
    assert torch.allclose(aligned, reference / reference.sum(1, keepdim=True))


# -- all five -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["acr", "abc", "darp", "daso", "crest_plus"])
def test_every_comparison_method_is_a_registered_method_with_its_flags(method, capsys):
    import dataclasses

    from cissl_kit.cli import main

    algorithm = build_algorithm(method)
    assert algorithm.name == method
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert method in help_text
    for field in dataclasses.fields(algorithm):  # every hyper-parameter is a flag
        assert f"--{field.name.replace('_', '-')}" in help_text, field.name


def test_the_comparison_methods_train_from_the_cli(tmp_path, capsys):
    from cissl_kit.cli import main

    code = main(["train", "--method", "acr,abc,darp,daso,crest_plus", "--steps", "12", "--eval-every", "6",
                 "--generations", "2", "--out", str(tmp_path), "--name", "cmp", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for method in ("acr", "abc", "darp", "daso", "crest_plus"):
        assert method in out


def test_darp_refines_at_the_first_step_past_its_warmup(digits):
    # the code would read its all-uniform refined table (argmax: class 0) until the next multiple of 10
    algorithm = DARP(darp_warmup=0.5, darp_refine_every=10)
    labels = []
    from cissl_kit import Trainer

    trainer = Trainer(algorithm, digits, steps=24, batch_size=16, uratio=2, progress=False, eval_every=24)
    original = algorithm.training_step

    def spy(net, batch, ctx):
        out = original(net, batch, ctx)
        labels.append((ctx.step, out.pseudo_labels))
        return out

    algorithm.training_step = spy
    trainer._training_step = spy
    trainer.fit()
    first = next(pseudo for step, pseudo in labels if step == 13)  # progress 13/24 > 0.5, not a multiple of 10
    assert not torch.all(first == 0), "the first step past the warm-up used an unrefined (uniform) table"
