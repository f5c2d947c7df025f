import math

import torch

from cissl_kit.metrics import PseudoLabelStats, classification_report, confusion_matrix


def test_classification_report_known_answer():
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    preds = torch.tensor([0, 0, 1, 0, 2, 2, 0, 0])
    r = classification_report(preds, targets, 3, {"many": [0], "medium": [1], "few": [2]})
    assert r["accuracy"] == 5 / 8
    assert r["per_class"] == [1.0, 0.5, 0.5]
    assert math.isclose(r["balanced_accuracy"], 2 / 3)
    assert (r["many"], r["medium"], r["few"]) == (1.0, 0.5, 0.5)
    assert r["confusion"] == [[2, 0, 0], [1, 1, 0], [2, 0, 2]]
    assert confusion_matrix(preds, targets, 3).sum() == 8


def test_pseudo_label_stats_per_class_and_group():
    stats = PseudoLabelStats(3)
    true = torch.tensor([0, 0, 0, 1, 1, 2, -1])
    pseudo = torch.tensor([0, 0, 1, 1, 0, 0, 2])
    mask = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    stats.update(true, pseudo, mask)
    r = stats.report({"many": [0], "few": [1, 2]})
    assert r["utilization_per_class"] == [1.0, 0.5, 0.0]
    assert r["pl_accuracy_per_class"][:2] == [2 / 3, 1.0] and math.isnan(r["pl_accuracy_per_class"][2])
    assert r["pl_accuracy"] == 3 / 4 and r["utilization"] == 4 / 6  # the unknown label (-1) is skipped
    assert r["utilization_few"] == 1 / 3 and r["pl_accuracy_few"] == 1.0
    stats.reset()
    assert math.isnan(stats.report()["pl_accuracy"])


def test_stability_of_a_history():
    from cissl_kit.metrics import stability

    history = [{"step": s, "accuracy": a} for s, a in enumerate([0.1, 0.2, 0.8, 0.6, 0.8, 0.6])]
    s = stability(history, last_fraction=0.5)  # the last three: 0.6, 0.8, 0.6
    assert math.isclose(s["mean"], 2 / 3) and math.isclose(s["mean_abs_change"], 0.2)
    assert math.isclose(s["std"], ((2 * (1 / 15) ** 2 + (2 / 15) ** 2) / 2) ** 0.5)
    import pytest

    with pytest.raises(ValueError, match="at least 2"):
        stability(history[:1])
