import numpy as np
import pytest

from cissl_kit.data import class_groups, long_tailed_counts, make_lt_split, step_counts, unlabeled_counts


def test_cifar10_lt_counts_match_the_published_split():
    # CIFAR-10-LT, N1 = 1500, γ = 100 (USB / DASO / ACR / SeMi)
    assert long_tailed_counts(1500, 100, 10) == [1500, 899, 539, 323, 193, 116, 69, 41, 25, 15]
    assert long_tailed_counts(3000, 100, 10) == [3000, 1798, 1078, 646, 387, 232, 139, 83, 50, 30]


@pytest.mark.parametrize("n_max, ratio, k", [(150, 10, 100), (500, 50, 10), (40, 20, 10), (7, 1, 4)])
def test_profile_is_exponential_with_truncation(n_max, ratio, k):
    counts = long_tailed_counts(n_max, ratio, k)
    assert len(counts) == k and counts[0] == n_max
    assert counts == [int(n_max * ratio ** (-i / (k - 1))) for i in range(k)]
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert abs(counts[-1] - n_max / ratio) <= 1


def test_ratio_one_is_uniform_and_one_class_is_n_max():
    assert long_tailed_counts(30, 1.0, 5) == [30] * 5
    assert long_tailed_counts(30, 10.0, 1) == [30]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(n_max=100, imbalance_ratio=0.5, num_classes=10), "imbalance_ratio"),
        (dict(n_max=0, imbalance_ratio=10, num_classes=10), "n_max"),
        (dict(n_max=-5, imbalance_ratio=10, num_classes=10), "n_max"),
        (dict(n_max=100, imbalance_ratio=10, num_classes=0), "num_classes"),
        (dict(n_max=5, imbalance_ratio=10, num_classes=10), "tail class"),
        (dict(n_max=100, imbalance_ratio=float("nan"), num_classes=10), "imbalance_ratio"),
    ],
)
def test_bad_profiles_name_the_parameter(kwargs, word):
    with pytest.raises(ValueError, match=word):
        long_tailed_counts(**kwargs)


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError, match="n_max"):
        long_tailed_counts(10.5, 2, 3)
    with pytest.raises(TypeError, match="imbalance_ratio"):
        long_tailed_counts(10, "2", 3)


def test_step_profile():
    assert step_counts(100, 10, 10) == [100] * 5 + [10] * 5
    assert step_counts(100, 4, 4, minority_fraction=0.25) == [100, 100, 100, 25]


def test_unlabeled_profiles():
    consistent = unlabeled_counts(300, 10, 5, "consistent")
    assert consistent == long_tailed_counts(300, 10, 5)
    assert unlabeled_counts(300, 10, 5, "uniform") == [300] * 5
    reversed_ = unlabeled_counts(300, 10, 5, "reversed")
    assert reversed_ == consistent[::-1] and reversed_[-1] == 300  # the tail gets the most
    assert unlabeled_counts(0, 10, 3, [5, 0, 7]) == [5, 0, 7]


def test_bad_unlabeled_profiles():
    with pytest.raises(ValueError, match="unlabeled_profile.*consistent.*uniform.*reversed"):
        unlabeled_counts(100, 10, 5, "upside-down")
    with pytest.raises(ValueError, match="num_classes=5"):
        unlabeled_counts(100, 10, 5, [1, 2, 3])
    with pytest.raises(ValueError, match=r"unlabeled counts\[1\]"):
        unlabeled_counts(100, 10, 3, [1, -2, 3])


def _labels(per_class=(50, 40, 30)):
    return np.repeat(np.arange(len(per_class)), per_class)


def test_split_counts_disjoint_and_reproducible():
    labels = _labels()
    split = make_lt_split(labels, [10, 5, 2], [20, 10, 4], test_per_class=8, seed=3)
    assert np.bincount(labels[split.labeled_idx], minlength=3).tolist() == [10, 5, 2]
    assert np.bincount(labels[split.unlabeled_idx], minlength=3).tolist() == [20, 10, 4]
    assert np.bincount(labels[split.test_idx], minlength=3).tolist() == [8, 8, 8]
    parts = [set(split.labeled_idx), set(split.unlabeled_idx), set(split.test_idx)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    again = make_lt_split(labels, [10, 5, 2], [20, 10, 4], test_per_class=8, seed=3)
    assert np.array_equal(split.labeled_idx, again.labeled_idx)
    other = make_lt_split(labels, [10, 5, 2], [20, 10, 4], test_per_class=8, seed=4)
    assert not np.array_equal(split.labeled_idx, other.labeled_idx)


def test_test_set_does_not_depend_on_the_imbalance_setting():
    labels = _labels((50, 50, 50))
    a = make_lt_split(labels, [10, 5, 2], [20, 10, 4], test_per_class=8, seed=1)
    b = make_lt_split(labels, [2, 5, 10], [4, 10, 20], test_per_class=8, seed=1)
    assert np.array_equal(a.test_idx, b.test_idx)


def test_reversed_split_gives_the_tail_the_most_unlabeled_data():
    labels = _labels((100, 100, 100))
    split = make_lt_split(labels, long_tailed_counts(20, 10, 3), unlabeled_counts(60, 10, 3, "reversed"))
    unl = np.bincount(labels[split.unlabeled_idx], minlength=3)
    lab = np.bincount(labels[split.labeled_idx], minlength=3)
    assert unl.tolist() == [6, 18, 60] and lab.tolist() == [20, 6, 2]


def test_too_few_images_names_class_asked_and_available():
    labels = _labels((50, 40, 30))
    with pytest.raises(ValueError, match=r"class 2 has 30 images but the split asks for 31"):
        make_lt_split(labels, [10, 10, 10], [10, 10, 11], test_per_class=10)


def test_split_rejects_non_positive_labeled_counts():
    with pytest.raises(ValueError, match=r"labeled_counts\[1\]"):
        make_lt_split(_labels(), [10, 0, 2], [1, 1, 1])


def test_groups_rank_and_threshold():
    assert class_groups(long_tailed_counts(1500, 100, 10)) == {
        "many": [0, 1, 2], "medium": [3, 4, 5], "few": [6, 7, 8, 9]}
    groups = class_groups([500, 150, 100, 50, 20, 5], scheme="threshold")
    assert groups == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}
    # rank groups follow the counts, not the class index
    assert class_groups([1, 50, 3, 20, 100, 2, 9, 8, 30, 4])["many"] == [1, 4, 8]
