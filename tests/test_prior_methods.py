"""SimPro, CPE and CDMAD against references written here from their official code, the middle and
head-tail profiles against SimPro's ``make_imb_data``, and the comparison-method audit's fixes."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cissl_kit import TrainConfig, Trainer, make_ssl_data
from cissl_kit.algorithms import ACR, CDMAD, CPE, DARP, DASO, SimPro
from cissl_kit.algorithms.cdmad import classifier_bias
from cissl_kit.algorithms.cpe import CPENet, expert_unlabeled_loss
from cissl_kit.algorithms.simpro import adjustment, em_update
from cissl_kit.cli import main
from cissl_kit.data import unlabeled_counts
from cissl_kit.models import SmallCNN
from cissl_kit.registry import train

SHORT = TrainConfig(steps=16, batch_size=16, uratio=2, eval_every=8, log_every=4, progress=False)


# -- the profiles ---------------------------------------------------------------------------------
def _simpro_make_imb_data(max_num, class_num, gamma, flag_lt):
    """SimPro/dataset/cifar.py (commit aa2425d), for the unlabeled set (flag = 0)."""
    mu = np.power(1 / gamma, 1 / (class_num - 1))
    class_num_list = []
    for i in range(class_num):
        if i == (class_num - 1):
            class_num_list.append(int(max_num / gamma))
        else:
            class_num_list.append(int(max_num * np.power(mu, i)))
    if flag_lt == 1:
        class_num_list = list(reversed(class_num_list))
    if flag_lt == 3:
        idx_centric = list(range(0, class_num, 2))[::-1] + list(range(1, class_num, 2))
        class_num_list = np.array(class_num_list)[idx_centric].tolist()
    if flag_lt == 4:
        idx_off_centric = list(range(1, class_num, 2)) + list(range(0, class_num, 2))[::-1]
        class_num_list = np.array(class_num_list)[idx_off_centric].tolist()
    return list(class_num_list)


@pytest.mark.parametrize("classes,m_max,gamma", [(10, 4000, 100), (10, 320, 10), (7, 90, 5), (100, 400, 20)])
def test_middle_and_head_tail_are_simpros_profiles(classes, m_max, gamma):
    for profile, flag in (("consistent", 0), ("reversed", 1), ("middle", 3), ("head-tail", 4)):
        assert unlabeled_counts(m_max, gamma, classes, profile) == _simpro_make_imb_data(m_max, classes, gamma, flag)
    middle, ends = (unlabeled_counts(m_max, gamma, classes, p) for p in ("middle", "head-tail"))
    centre = (classes + 1) // 2 - 1
    assert int(np.argmax(middle)) == centre and max(middle) == m_max  # the largest class in the middle
    assert int(np.argmin(ends)) == centre and ends[-1] == m_max  # the smallest there, the largest at an end


def test_the_new_profiles_make_splits_and_are_cli_choices(capsys):
    for profile in ("middle", "head-tail"):
        data = make_ssl_data("mnist", unlabeled_profile=profile, device="cpu")
        assert data.unlabeled_counts == unlabeled_counts(320, 10.0, 10, profile)
        assert main(["split", "--dataset", "mnist", "--unlabeled-profile", profile]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert [int(line.split()[2]) for line in printed[2:12]] == data.unlabeled_counts  # the unlabeled column
    assert main(["split", "--unlabeled-profile", "headtail"]) == 2
    assert "did you mean 'head-tail'" in capsys.readouterr().err


# -- SimPro -----------------------------------------------------------------------------------------
def test_simpro_m_step_is_the_codes_closed_form():
    """SimPro/train.py, at the end of an epoch."""
    torch.manual_seed(0)
    k = 5
    estimated_dis, adapt_dis = torch.softmax(torch.randn(k), 0), torch.softmax(torch.randn(k), 0)
    dis_unlabeled, count_labeled = torch.rand(k) * 40, torch.randint(0, 30, (k,)).float()
    ema_u = 0.9
    estimated = dis_unlabeled / (dis_unlabeled.sum() + 1)
    ref_estimated = estimated_dis * ema_u + estimated * (1 - ema_u)
    count_forward = count_labeled + dis_unlabeled
    ref_adapt = adapt_dis * ema_u + (count_forward / count_forward.sum()) * (1 - ema_u)
    ours = em_update(estimated_dis, adapt_dis, dis_unlabeled, count_labeled, ema_u)
    assert torch.allclose(ours[0], ref_estimated) and torch.allclose(ours[1], ref_adapt)
    assert torch.allclose(adjustment(adapt_dis, 2.0), torch.log(adapt_dis**2.0 + 1e-12))


def test_simpro_step_uses_the_adjusted_soft_pseudo_labels_and_updates_each_period(digits):
    algorithm = SimPro(estimate_period=0.25)
    trainer = Trainer(algorithm, digits, steps=16, batch_size=16, uratio=2, progress=False)
    assert torch.allclose(algorithm.adapted, digits.class_prior())  # π̂ starts at the labeled prior
    assert torch.allclose(algorithm.estimate, torch.full((10,), 0.1))  # π̂_u uniform
    batch = trainer.next_batch()
    assert batch.x_lb_s is not None and batch.x_lb_s.shape == batch.x_lb.shape  # the labeled strong view
    sums = []
    for step in range(8):
        before = (algorithm.estimate.clone(), algorithm.adapted.clone(), algorithm.pseudo_sum.clone(),
                  algorithm.labeled_count.clone())
        trainer.train_step()
        sums.append(before)
    # at step 4 (the period's end) the M-step ran on the sums of steps 0..3
    estimate0, adapted0, _, _ = sums[0]
    _, _, pseudo_sum, labeled_count = sums[4]
    expected = em_update(estimate0, adapted0, pseudo_sum, labeled_count, 0.9)
    assert not torch.equal(sums[4][0], sums[5][0])
    assert torch.allclose(sums[5][0], expected[0]) and torch.allclose(sums[5][1], expected[1])
    assert labeled_count.sum() == 4 * 16  # each step's labeled batch counted once


def test_simpro_scales_the_labeled_loss_as_the_code(digits):
    algorithm = SimPro()
    trainer = Trainer(algorithm, digits, steps=4, batch_size=16, uratio=2, progress=False)
    trainer.train_step()
    n_lb, n_ulb = len(digits.labeled_idx), len(digits.unlabeled_idx)
    assert algorithm.scale == pytest.approx((n_ulb // 32) / (n_lb // 16))


# -- CPE --------------------------------------------------------------------------------------------
def test_cpe_class_wise_bn_is_the_codes_bn2d_then_pooling():
    """wrn_cbn.py: BNH / BNM / BNT (nn.BatchNorm2d) on the last map, then average pooling; in train mode
    (batch statistics, running averages updated) and in eval mode (running averages)."""
    torch.manual_seed(0)
    net = CPENet(SmallCNN(10, early_pool=True)).train()
    with torch.no_grad():
        net.branch_norm.weight.uniform_(0.5, 1.5)
        net.branch_norm.bias.uniform_(-0.5, 0.5)
    codes = [nn.BatchNorm2d(net.head.in_features) for _ in range(3)]
    for b, bn in enumerate(codes):
        bn.weight.data.copy_(net.branch_norm.weight[b]), bn.bias.data.copy_(net.branch_norm.bias[b])
    for mode in ("train", "train", "eval"):
        net.train(mode == "train"), [bn.train(mode == "train") for bn in codes]
        x = torch.randn(12, 1, 14, 14)
        fmap = net.model.feature_map(x)
        reference = torch.stack([F.adaptive_avg_pool2d(bn(fmap), 1).flatten(1) for bn in codes])
        assert torch.allclose(net.branch_features(x), reference, atol=1e-5), mode
    for bn in codes:  # the running averages, as each BatchNorm2d keeps them
        assert torch.allclose(net.branch_norm.running_mean, bn.running_mean, atol=1e-6)
        assert torch.allclose(net.branch_norm.running_var, bn.running_var, atol=1e-5)
    net.train()
    experts = net.expert_logits(x)
    assert [e.shape for e in experts] == [torch.Size([3, 12, 10])] * 3
    assert torch.allclose(net(x), experts[1].mean(0), atol=1e-6)  # expert 2 (τ = 2) predicts


def test_cpe_unlabeled_loss_is_the_codes_branch_selection():
    torch.manual_seed(1)
    n, k, cut1, cut2 = 9, 10, 2, 4
    strong = torch.randn(3, n, k)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 9, 2, 7])
    mask = torch.tensor([1.0, 1, 1, 0, 1, 1, 1, 0, 1])
    # cpe.py: pseudo_label{H,M,T} from one-hot sums over classes [:], [cut1:], [cut2:]
    one_hot = F.one_hot(labels, k)
    h, m, t = one_hot.sum(1) * mask, one_hot[:, cut1:].sum(1) * mask, one_hot[:, cut2:].sum(1) * mask
    ce = [F.cross_entropy(strong[b], labels, reduction="none") for b in range(3)]
    reference = ((ce[0] * h).sum() + (ce[1] * m).sum() + (ce[2] * t).sum()) / (h.sum() + m.sum() + t.sum() + 1e-12)
    assert expert_unlabeled_loss(strong, labels, mask, cut1, cut2).item() == pytest.approx(reference.item(), rel=1e-6)
    assert expert_unlabeled_loss(strong, labels, torch.zeros(n), cut1, cut2).item() == 0.0


def test_cpe_step_is_the_codes_three_experts(digits):
    """cpe.py's train_step, expert by expert: CE(z̄_lb + τ_e·log π) and the expert's own hard pseudo-labels."""
    algorithm = CPE()
    trainer = Trainer(algorithm, digits, steps=4, batch_size=16, uratio=2, progress=False)
    batch, net = trainer.next_batch(), trainer.net
    n, u = batch.x_lb.shape[0], batch.x_ulb_w.shape[0]
    with torch.no_grad():  # a threshold at expert 2's median confidence: about half pass
        first = net.expert_logits(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
        algorithm.threshold = torch.softmax(first[1, :, n:n + u].mean(0), -1).amax(-1).median().item()
    torch.manual_seed(0)
    out = algorithm.training_step(net, batch, _context(digits))
    torch.manual_seed(0)
    logits = net.expert_logits(torch.cat([batch.x_lb, batch.x_ulb_w, batch.x_ulb_s]))
    log_prior = torch.log(digits.class_prior())
    total = 0.0
    for e, tau in enumerate((0.0, 2.0, 4.0)):
        sup = F.cross_entropy(logits[e, :, :n].mean(0) + tau * log_prior, batch.y_lb)
        probs = torch.softmax(logits[e, :, n:n + u].mean(0).detach(), -1)
        mask = probs.amax(-1).ge(algorithm.threshold).float()
        labels = probs.argmax(-1)
        total = total + sup + expert_unlabeled_loss(logits[e, :, n + u:], labels, mask, 2, 4)
        if e == 1:
            assert torch.equal(out.pseudo_labels, labels) and torch.equal(out.mask, mask)  # expert 2's
    assert 0 < out.mask.mean() < 1
    assert out.loss.item() == pytest.approx(total.item(), rel=1e-5)


def _context(data):
    from cissl_kit.algorithms import StepContext

    return StepContext(0, 4, data.num_classes, data.class_prior())


def test_cpe_experts_learn_with_their_own_logit_adjustment(digits):
    result = train(CPE(), digits, config=SHORT)
    row = result.history[-1]
    assert all(math.isfinite(row[f"mask_{e}"]) for e in (1, 2, 3)) and math.isfinite(row["loss"])
    with pytest.raises(ValueError, match="cut1 and cut2 must satisfy"):
        train(CPE(cut1=5, cut2=3), digits, config=SHORT)


# -- CDMAD ------------------------------------------------------------------------------------------
def test_cdmad_refined_logits_are_the_logits_minus_a_solid_images():
    torch.manual_seed(2)
    net = SmallCNN(10).eval()
    x = torch.randn(5, 1, 8, 8)
    algorithm = CDMAD()
    with torch.no_grad():
        reference = net(x) - net(torch.ones(1, 1, 8, 8))  # fixmatchcdmad.py, validate(): outputs - biaseddegree
        assert torch.allclose(algorithm.predict(net, x), reference, atol=1e-6)


def test_cdmad_solid_image_enters_batchnorm_in_train_mode_as_the_code():
    torch.manual_seed(3)
    net = SmallCNN(10).train()
    before = net.block1[1].running_mean.clone()
    classifier_bias(net, (1, 8, 8), "cpu", "eval")
    assert torch.equal(net.block1[1].running_mean, before) and net.training
    classifier_bias(net, (1, 8, 8), "cpu", "train")
    assert not torch.equal(net.block1[1].running_mean, before) and net.training


def test_cdmad_debiases_pseudo_labels_after_its_start(digits):
    algorithm = CDMAD(debias_start=0.5)
    trainer = Trainer(algorithm, digits, steps=8, batch_size=16, uratio=2, progress=False)
    seen = {}
    original = algorithm.training_step

    def spy(net, batch, ctx):
        out = original(net, batch, ctx)
        seen[ctx.step] = out.probs
        return out

    trainer._training_step = spy
    for step in range(6):
        batch = trainer.next_batch()
        if step in (3, 4):
            net = trainer.net
            with torch.no_grad():
                bias = net(torch.ones(1, *digits.input_shape))  # train mode, as the step does it
                logits = net(batch.x_ulb_w)
        trainer.train_step(batch)
        if step == 3:
            assert torch.allclose(seen[3], torch.softmax(logits, 1), atol=1e-5)  # before the start: raw
        if step == 4:
            assert torch.allclose(seen[4], torch.softmax(logits - bias, 1), atol=1e-5)  # debiased
    assert CDMAD().threshold == 0.0  # the code's --tau default: every pseudo-label counts


# -- the audit of the comparison methods -------------------------------------------------------------
def test_acr_estimate_momentum_is_the_published_commands():
    assert ACR().estimate_momentum == 0.99


def test_daso_queue_features_come_from_the_ema_network_in_train_mode(digits, monkeypatch):
    algorithm = DASO(pretrain=0.0)
    trainer = Trainer(algorithm, digits, steps=4, batch_size=16, uratio=2, progress=False)
    modes = []
    original = trainer.ema_net.features

    def features(x):
        modes.append(trainer.ema_net.training)
        return original(x)

    monkeypatch.setattr(trainer.ema_net, "features", features)
    trainer.ema_net.eval()
    trainer.train_step()
    assert modes == [True] and not trainer.ema_net.training  # train mode for the queue, then as it was


def test_darp_refines_from_the_first_step_past_a_fractional_warmup(digits):
    """warm-up 0.29 of 100 steps, refinement every 7: steps 30..34 are past the warm-up; the old float
    comparison left them reading the all-uniform table (every pseudo-label class 0)."""
    algorithm = DARP(darp_warmup=0.29, darp_refine_every=7)
    assert algorithm.first_refinement(100) == 30
    trainer = Trainer(algorithm, digits, steps=100, batch_size=16, uratio=2, progress=False)
    uniform = torch.full_like(algorithm.pseudo_refine, 0.1)
    for step in range(35):
        trainer.train_step()
        refined = not torch.allclose(algorithm.pseudo_refine, uniform)
        assert refined == (step >= 30), step


@pytest.mark.parametrize("method", ["simpro", "cpe", "cdmad"])
def test_every_new_method_is_a_cli_method_with_its_flags(method, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert method in help_text
    flags = {"simpro": "--estimate-period", "cpe": "--cut1", "cdmad": "--blank-bn"}[method]
    assert flags in help_text


def test_the_new_methods_train_from_the_cli_in_a_new_profile(tmp_path, capsys):
    code = main(["train", "--method", "simpro,cpe,cdmad", "--steps", "8", "--eval-every", "4", "--dataset", "mnist",
                 "--unlabeled-profile", "head-tail", "--out", str(tmp_path), "--name", "new", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert all(m in out for m in ("simpro", "cpe", "cdmad"))
