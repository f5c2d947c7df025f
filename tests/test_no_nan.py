"""Edge cases that must train with finite losses: empty masks, classes absent from a batch, classes
without labeled images or pseudo-labels (log π), empty memory-bank classes, no unlabeled data.
(A loss that does become non-finite stops the engine naming it: tests/test_engine.py.)"""

import dataclasses
import math

import pytest
import torch

from cissl_kit import make_ssl_data
from cissl_kit.algorithms import DARP, StepContext
from cissl_kit.algorithms.ldam import class_balanced_weights, ldam_margins
from cissl_kit.engine import TrainConfig
from cissl_kit.losses import certainty_enhanced_labels, logit_adjusted_cross_entropy, semantic_labels
from cissl_kit.memory_bank import BalancedMemoryBank
from cissl_kit.recipes import AlternateSampling, CReSTPlus, PseudoLabelLDAM
from cissl_kit.registry import build_algorithm, train

SHORT = TrainConfig(steps=12, batch_size=16, eval_every=6, log_every=3, progress=False)
LOSS_KEYS = ("loss", "loss_s", "loss_u", "loss_ea", "loss_ac", "loss_s_b", "loss_u_b", "loss_consistency", "loss_abc",
             "loss_align", "tau")


def _assert_finite(result) -> None:
    for row in result.history:
        for key in LOSS_KEYS:
            if key in row:
                assert math.isfinite(row[key]), (result.method, row["step"], key, row[key])
    assert math.isfinite(result.final["accuracy"])
    for tensor in result.net.state_dict().values():
        assert torch.isfinite(tensor.float()).all(), result.method


@pytest.mark.parametrize("method", ["fixmatch", "layermatch"])
def test_empty_masks_give_a_zero_unlabeled_loss_not_nan(method, digits):
    algorithm = build_algorithm(method, threshold=1.0, threshold_mode="fixed")  # nothing reaches p = 1
    result = train(algorithm, digits, config=SHORT)
    _assert_finite(result)
    assert all(row["mask"] == 0.0 for row in result.history)


def test_semi_with_an_empty_mask_aligns_every_embedding(digits):
    result = train(build_algorithm("semi", threshold=1.0), digits, config=SHORT)
    _assert_finite(result)
    assert all(row["mask"] == 0.0 and row["loss_ea"] > 0 for row in result.history)


@pytest.mark.parametrize("method", ["fixmatch", "semi", "layermatch", "ldam_drw", "acr", "abc", "darp", "daso",
                                    "fixmatch_da", "simpro", "cpe", "cdmad"])
def test_batches_missing_most_classes_train(method, digits):
    _assert_finite(train(method, digits, config=dataclasses.replace(SHORT, batch_size=2, uratio=1)))


def _without_class(data, k: int):
    """``data`` with no labeled image of class ``k`` (its prior π_k is 0)."""
    keep = data.labeled_idx[data.targets[data.labeled_idx] != k]
    counts = list(data.labeled_counts)
    counts[k] = 0
    return dataclasses.replace(data, labeled_idx=keep, labeled_counts=counts)


@pytest.mark.parametrize("method", ["supervised", "fixmatch", "semi", "layermatch", "ldam_drw", "acr", "abc", "darp",
                                    "daso", "fixmatch_da", "crest_plus", "simpro", "cpe", "cdmad"])
def test_a_class_without_labeled_images_trains(method, digits):
    data = _without_class(digits, 9)
    hparams = {"logit_adjust_tau": 1.0} if method == "fixmatch" else {}
    _assert_finite(train(build_algorithm(method, **hparams), data, config=SHORT))


def test_log_prior_and_ldam_terms_stay_finite_for_a_zero_count():
    counts = torch.tensor([40, 10, 0])
    prior = counts / counts.sum()
    ctx = StepContext(0, 10, 3, prior)
    assert torch.isfinite(ctx.log_prior).all()
    logits = torch.randn(4, 3, requires_grad=True)
    loss = logit_adjusted_cross_entropy(logits, torch.tensor([0, 1, 2, 2]), ctx.log_prior, tau=1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.isfinite(ldam_margins(counts)).all() and torch.isfinite(class_balanced_weights(counts)).all()


def test_no_pseudo_labels_and_empty_bank_classes_keep_labels_finite():
    bank = BalancedMemoryBank(num_classes=3, slots=4, dim=5)
    prototypes, available = bank.prototypes()  # nothing pushed yet
    probs = torch.softmax(torch.randn(6, 3), 1)
    semantic = semantic_labels(torch.randn(6, 5), prototypes, available)
    assert torch.isfinite(semantic).all() and semantic.sum() == 0
    bank.push(torch.randn(3, 5), torch.tensor([0, 0, 0]), torch.tensor([0.9, 0.8, 0.99]), torch.ones(3))
    prototypes, available = bank.prototypes()  # classes 1 and 2 still empty
    assert available.tolist() == [True, False, False]
    semantic = semantic_labels(torch.randn(6, 5), prototypes, available)
    assert torch.isfinite(semantic).all() and torch.allclose(semantic[:, 0], torch.ones(6))
    zero_counts = torch.zeros(3)  # no confident pseudo-label of any class yet
    weights = zero_counts / zero_counts.sum().clamp_min(1.0)
    mixed = certainty_enhanced_labels(probs, semantic, weights, strength=1.0)
    assert torch.isfinite(mixed).all() and torch.allclose(mixed.sum(1), torch.ones(6))


@pytest.mark.parametrize("method", ["pseudolabel", "fixmatch", "semi", "layermatch", "alternate", "pseudolabel_ldam",
                                    "acr", "abc", "darp", "daso", "fixmatch_da", "crest_plus", "simpro", "cpe", "cdmad"])
def test_an_empty_unlabeled_set_trains_on_the_labeled_data(method):
    data = make_ssl_data("digits", unlabeled_profile=[0] * 10, device="cpu")
    assert data.unlabeled_idx.numel() == 0
    spec = {"alternate": AlternateSampling(init_steps=8, crt_steps=4, loops=1, embedding_steps=6, classifier_steps=4),
            "pseudolabel_ldam": PseudoLabelLDAM(init_steps=8, finetune_steps=6),
            "darp": DARP(darp_warmup=0.0, darp_refine_every=2), "crest_plus": CReSTPlus(generations=2)}.get(method, method)
    result = train(spec, data, config=SHORT)
    _assert_finite(result)
    assert math.isnan(result.final.get("pl_accuracy", float("nan")))  # no pseudo-labels to measure
