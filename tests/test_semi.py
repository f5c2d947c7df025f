import math

import pytest
import torch

from cissl_kit import FixMatch, train
from cissl_kit.algorithms import Batch, SeMi, StepContext
from cissl_kit.losses import (
    certainty_enhanced_labels,
    embedding_alignment_loss,
    entropy_weight,
    normalized_entropy,
    semantic_labels,
)
from cissl_kit.memory_bank import BalancedMemoryBank
from cissl_kit.metrics import PseudoLabelStats
from cissl_kit.models import SmallCNN


# -- OHEML weight (Eq. 3–4) -------------------------------------------------------------------
def test_entropy_weight_at_uniform_and_one_hot_predictions():
    uniform = torch.full((3, 10), 0.1)
    one_hot = torch.eye(10)[:3]
    assert torch.allclose(entropy_weight(uniform, 0.75), torch.ones(3))  # maximal entropy: s + (1 - s)
    assert torch.allclose(entropy_weight(one_hot, 0.75), torch.full((3,), 0.25))  # zero entropy: 1 - s
    assert torch.allclose(entropy_weight(uniform, 0.0), torch.ones(3))  # s = 0: plain FixMatch
    two_way = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    assert math.isclose(entropy_weight(two_way, 0.6).item(), 0.6 * math.log(2) / math.log(4) + 0.4, rel_tol=1e-6)
    assert torch.isfinite(normalized_entropy(one_hot)).all()


# -- the memory bank (Eq. 7) -------------------------------------------------------------------
def _bank(slots=2, classes=3, dim=4, **kwargs):
    return BalancedMemoryBank(classes, slots, dim, **kwargs)


def _emb(values):
    """One embedding per value, each row filled with its value (so features identify entries)."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1).repeat(1, 4)


def test_bank_inserts_only_above_the_class_minimum_and_replaces_it():
    bank = _bank()
    bank.push(_emb([0.5, 0.9, 0.7]), torch.tensor([0, 0, 0]), torch.tensor([0.5, 0.9, 0.7]))
    assert sorted(bank.confidences[0].tolist()) == pytest.approx([0.7, 0.9])
    bank.push(_emb([0.6]), torch.tensor([0]), torch.tensor([0.6]))  # below the minimum 0.7: rejected
    assert sorted(bank.confidences[0].tolist()) == pytest.approx([0.7, 0.9])
    bank.push(_emb([0.8]), torch.tensor([0]), torch.tensor([0.8]))  # replaces 0.7
    assert sorted(bank.confidences[0].tolist()) == pytest.approx([0.8, 0.9])
    # features stay aligned with their confidences (the public code's push misaligns them)
    assert torch.allclose(bank.features[0, :, 0], bank.confidences[0])
    assert not bank.filled[1:].any()  # other classes untouched


def test_bank_respects_the_mask_and_the_labels():
    bank = _bank()
    bank.push(_emb([0.9, 0.8, 0.7]), torch.tensor([1, 2, 1]), torch.tensor([0.9, 0.8, 0.7]),
              mask=torch.tensor([0.0, 1.0, 1.0]))
    assert bank.filled.sum().item() == 2
    assert bank.confidences[1][bank.filled[1]].tolist() == pytest.approx([0.7])
    assert bank.confidences[2][bank.filled[2]].tolist() == pytest.approx([0.8])


def test_batched_push_equals_one_at_a_time_insertion():
    torch.manual_seed(0)
    batched, reference = _bank(slots=5, classes=4), {k: [] for k in range(4)}
    for _ in range(6):
        conf = torch.rand(30)
        labels = torch.randint(0, 4, (30,))
        batched.push(_emb(conf.tolist()), labels, conf)
        for c, k in zip(conf.tolist(), labels.tolist()):  # the paper's rule, sample by sample
            stored = reference[k]
            if len(stored) < 5:
                stored.append(c)
            elif c > min(stored):
                stored[stored.index(min(stored))] = c
    for k in range(4):
        assert sorted(batched.confidences[k].tolist()) == pytest.approx(sorted(reference[k]))


def test_decay_lets_new_embeddings_replace_old_easy_ones():
    bank = _bank(slots=1, decay=0.9)
    bank.push(_emb([0.95]), torch.tensor([0]), torch.tensor([0.95]))
    bank.push(_emb([0.9]), torch.tensor([0]), torch.tensor([0.9]))
    assert bank.confidences[0, 0].item() == pytest.approx(0.95)  # not replaced
    bank.decay()
    assert bank.confidences[0, 0].item() == pytest.approx(0.855)  # β · a
    bank.push(_emb([0.9]), torch.tensor([0]), torch.tensor([0.9]))
    assert bank.confidences[0, 0].item() == pytest.approx(0.9)  # now it enters


def test_prototypes_use_filled_slots_only_and_flag_empty_classes():
    bank = _bank(slots=4)
    bank.push(_emb([0.2, 0.4]), torch.tensor([0, 0]), torch.tensor([0.9, 0.8]))
    protos, available = bank.prototypes()
    assert torch.allclose(protos[0], torch.full((4,), 0.3))  # (0.2 + 0.4) / 2, not / 4
    assert available.tolist() == [True, False, False]
    semantic = semantic_labels(torch.zeros(2, 4), protos, available)
    assert torch.allclose(semantic[:, 0], torch.ones(2)) and (semantic[:, 1:] == 0).all()


def test_fifo_policy_keeps_the_newest():
    bank = _bank(slots=2, policy="fifo")
    for value in (0.9, 0.1, 0.5):
        bank.push(_emb([value]), torch.tensor([0]), torch.tensor([value]))
    assert sorted(bank.features[0, :, 0].tolist()) == pytest.approx([0.1, 0.5])


def test_an_empty_bank_gives_no_semantic_labels():
    protos, available = _bank().prototypes()
    semantic = semantic_labels(torch.randn(5, 4), protos, available)
    assert (semantic == 0).all() and not available.any()


def test_certainty_enhancement_mixes_per_class():
    probs = torch.tensor([[0.6, 0.4]])
    semantic = torch.tensor([[0.0, 1.0]])
    mixed = certainty_enhanced_labels(probs, semantic, torch.tensor([1.0, 0.0]), 0.5)
    # class 0: (1 - 0.5)·0.6 + 0.5·0 = 0.3; class 1: 0.4; renormalised
    assert torch.allclose(mixed, torch.tensor([[0.3 / 0.7, 0.4 / 0.7]]))


def test_embedding_alignment_known_values():
    weak = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    strong = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    center = torch.zeros(1, 2)
    weights = torch.tensor([1.0, 0.0])
    loss = embedding_alignment_loss(weak, strong, center, weights, temperature=1.0, sharpen=2.0)
    target = torch.softmax(torch.tensor([4.0, 0.0]), 0)
    expected = -(target * torch.log_softmax(torch.tensor([1.0, 0.0]), 0)).sum() / 2
    assert torch.allclose(loss, expected)
    assert embedding_alignment_loss(weak, strong, center, torch.zeros(2)).item() == 0.0


# -- the algorithm -------------------------------------------------------------------------------
def _batch_and_net(seed=0, n_lb=8, n_u=24):
    torch.manual_seed(seed)
    net = SmallCNN(10)
    x = torch.randn(n_lb + 2 * n_u, 1, 8, 8)
    batch = Batch(x[:n_lb], torch.arange(n_lb) % 10, torch.arange(n_lb), x[n_lb:n_lb + n_u], x[n_lb + n_u:],
                  torch.arange(n_u), torch.arange(n_u) % 10)
    return batch, net


def _setup(algorithm, net):
    class _Data:
        device = torch.device("cpu")

    network = algorithm.build_network(net)
    algorithm.setup(network, _Data())
    return network


CTX = StepContext(100, 200, 10, torch.full((10,), 0.1))


def test_semi_without_its_components_is_fixmatch():
    batch, net = _batch_and_net()
    semi = SeMi(threshold=0.0, use_oheml=False, use_alignment=False, use_plce=False, use_balanced_head=False)
    out_semi = semi.training_step(_setup(semi, net), batch, CTX)
    out_fix = FixMatch(threshold=0.0).training_step(net, batch, CTX)
    assert torch.allclose(out_semi.loss, out_fix.loss)
    assert torch.equal(out_semi.pseudo_labels, out_fix.pseudo_labels)


def test_certainty_enhancement_waits_for_the_bank():
    batch, net = _batch_and_net()
    # PLCE on from step 0, but the bank is empty at the first step: the pseudo-labels are FixMatch's
    semi = SeMi(threshold=0.0, warmup=0.0, use_oheml=False, use_alignment=False, use_balanced_head=False)
    network = _setup(semi, net)
    semi.pseudo_label_counts[0] = 5.0  # non-zero class weights, so only the empty bank stops the mixing
    out_semi = semi.training_step(network, batch, CTX)
    out_fix = FixMatch(threshold=0.0).training_step(net, batch, CTX)
    assert torch.allclose(out_semi.loss, out_fix.loss)
    assert semi.bank.filled.any()  # filled after the step
    again = semi.training_step(network, batch, CTX)  # now the prototypes exist and the mixing acts
    assert not torch.allclose(again.loss, out_fix.loss)


def test_semi_step_is_finite_when_nothing_passes_the_threshold():
    batch, net = _batch_and_net()
    semi = SeMi(threshold=1.0, warmup=0.0)  # nothing passes; the bank stays empty
    network = _setup(semi, net)
    out = semi.training_step(network, batch, CTX)
    assert torch.isfinite(out.loss) and out.mask.sum() == 0 and out.logs["loss_u"].item() == 0.0
    assert out.logs["loss_ea"].item() > 0  # every sample is ultra-hard: alignment does the work
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in network.parameters() if p.grad is not None)
    assert not semi.bank.filled.any()


def test_semi_predicts_with_the_balanced_head_and_its_loss_reaches_it():
    batch, net = _batch_and_net()
    semi = SeMi(threshold=0.0)
    network = _setup(semi, net)
    out = semi.training_step(network, batch, CTX)
    out.loss.backward()
    assert network.balanced_head.weight.grad is not None and network.balanced_head.weight.grad.abs().sum() > 0
    x = batch.x_lb
    assert torch.allclose(semi.predict(network, x), network.balanced_head(network.features(x)))
    assert semi.bank.filled.any() and semi.class_weights().sum().item() == pytest.approx(1.0)


def test_bad_semi_hyper_parameters():
    with pytest.raises(ValueError, match="entropy_scale"):
        SeMi(entropy_scale=1.5)
    with pytest.raises(ValueError, match="bank_policy must be one of 'confidence', 'fifo'"):
        SeMi(bank_policy="lru")
    with pytest.raises(TypeError, match="use_plce must be True or False"):
        SeMi(use_plce="yes")


def test_semi_trains_on_digits_and_records_hardness(digits):
    result = train(SeMi(), digits, steps=60, eval_every=30, progress=False, log_every=10)
    row = result.history[-1]
    assert {"loss_ea", "loss_s_b", "loss_u_b", "easy_few", "hard_many", "ultra_hard"} <= set(row)
    assert row["easy"] + row["hard"] + row["ultra_hard"] == pytest.approx(1.0)
    assert len(result.final["entropy_per_class"]) == 10


def test_hardness_stats_known_answer():
    stats = PseudoLabelStats(2, threshold=0.7, easy_threshold=0.95)
    probs = torch.tensor([[0.99, 0.01], [0.8, 0.2], [0.6, 0.4], [0.5, 0.5]])
    stats.update(torch.tensor([0, 0, 1, 1]), probs.argmax(1), (probs.max(1).values >= 0.7).float(), probs)
    r = stats.report({"many": [0], "few": [1]})
    assert (r["easy"], r["hard"], r["ultra_hard"]) == (0.25, 0.25, 0.5)
    assert (r["easy_many"], r["hard_many"], r["ultra_hard_few"]) == (0.5, 0.5, 1.0)
    assert r["entropy_per_class"][1] == pytest.approx((normalized_entropy(probs[2:]).sum() / 2).item())


def test_bank_cpu_shortcut_and_accelerator_path_agree(monkeypatch):
    """The CPU writes only the taken candidates; the sync-free path writes the rest to a scratch row.
    Same bank contents and prototypes, and the running prototype sums equal a from-scratch mean."""
    from cissl_kit import utils

    banks = {}
    for shortcut in (True, False):
        monkeypatch.setattr(utils, "CPU_SHORTCUTS", shortcut)
        torch.manual_seed(0)
        bank = _bank(slots=6, classes=5, dim=3)
        for step in range(40):
            conf = torch.rand(25)
            bank.push(torch.randn(25, 3), torch.randint(0, 5, (25,)), conf, (torch.rand(25) < 0.6).float())
            if step % 7 == 6:
                bank.decay()
        banks[shortcut] = bank
    for k in range(5):
        assert sorted(banks[True].confidences[k].tolist()) == pytest.approx(sorted(banks[False].confidences[k].tolist()))
    protos, available = banks[True].prototypes()
    other, _ = banks[False].prototypes()
    filled = banks[True].filled.float()
    exact = (banks[True].features * filled.unsqueeze(2)).sum(1) / filled.sum(1, keepdim=True).clamp_min(1)
    assert torch.allclose(protos, other, atol=1e-5) and torch.allclose(protos, exact, atol=1e-5)


def test_bank_push_records_no_gradients():
    """The bank runs without torch.no_grad(): embeddings and confidences that carry a graph leave
    none in the bank, and its prototypes need no gradient."""
    bank = _bank(slots=2, classes=2, dim=3)
    embeddings = torch.randn(4, 3, requires_grad=True)
    confidences = torch.tensor([0.9, 0.8, 0.7, 0.95], requires_grad=True)
    bank.push(embeddings * 2, torch.tensor([0, 0, 1, 1]), confidences.sigmoid())
    bank.decay()
    protos, _ = bank.prototypes()
    assert torch.is_grad_enabled()
    assert not any(t.requires_grad for t in (protos, bank.features, bank.confidences, bank._sums, bank._counts))
    assert protos[0].tolist() == pytest.approx(embeddings[:2].detach().mul(2).mean(0).tolist())


def test_bank_counts_stay_exact_once_full_and_after_loading_a_partly_empty_state():
    """Once every slot is filled a push stops updating the per-class counts; a state with empty
    slots loaded into a full bank makes it count again."""
    torch.manual_seed(0)
    partial = _bank(slots=4, classes=3, dim=2)
    partial.push(torch.randn(3, 2), torch.tensor([0, 0, 1]), torch.tensor([0.9, 0.8, 0.7]))
    full = _bank(slots=4, classes=3, dim=2)
    for _ in range(10):
        full.push(torch.randn(30, 2), torch.randint(0, 3, (30,)), torch.rand(30))
    assert full.filled.all()
    full.load_state_dict(partial.state_dict())
    for step in range(12):
        full.push(torch.randn(2, 2), torch.tensor([step % 3, 2]), torch.rand(2))
        filled = full.filled
        assert full._counts[:-1].tolist() == filled.sum(1).float().tolist()
        exact = (full.features * filled.unsqueeze(2)).sum(1) / filled.sum(1, keepdim=True).clamp_min(1)
        assert torch.allclose(full.prototypes()[0], exact, atol=1e-6)
    assert full.filled.all()


def test_bank_decay_to_zero_keeps_empty_slots_empty():
    bank = _bank(slots=3, decay=0.0)
    bank.push(_emb([0.9]), torch.tensor([0]), torch.tensor([0.9]))
    bank.decay()
    assert bank.confidences[0].tolist() == [0.0, 0.0, 0.0] and bank.filled[0].sum() == 1
    bank.push(_emb([0.1, 0.2]), torch.tensor([0, 0]), torch.tensor([0.1, 0.2]))  # beat the decayed 0
    assert sorted(bank.confidences[0].tolist()) == pytest.approx([0.0, 0.1, 0.2]) and bank.filled[0].all()


def test_bank_push_needs_no_float64_and_keeps_the_best_of_each_class(monkeypatch):
    """Apple's MPS has no float64: the push ranks candidates with exact integer keys instead."""
    from cissl_kit import utils

    monkeypatch.setattr(utils, "CPU_SHORTCUTS", False)  # the accelerator's path
    original_to = torch.Tensor.to

    def no_float64(self, *args, **kwargs):
        if torch.float64 in args or kwargs.get("dtype") == torch.float64:
            raise AssertionError("float64 inside a bank push")
        return original_to(self, *args, **kwargs)

    def no_double(self, *args, **kwargs):
        raise AssertionError("float64 inside a bank push")

    monkeypatch.setattr(torch.Tensor, "to", no_float64)
    monkeypatch.setattr(torch.Tensor, "double", no_double)
    bank = _bank(slots=3, classes=2, dim=1)
    conf = torch.tensor([0.5, 0.9, 0.7, 0.9, 0.2, 0.8, 0.95])
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    bank.push(conf.unsqueeze(1), labels, conf)
    assert sorted(bank.confidences[0].tolist()) == pytest.approx([0.7, 0.9, 0.9])  # the best three; ties both kept
    assert sorted(bank.confidences[1].tolist()) == pytest.approx([0.0, 0.8, 0.95])
