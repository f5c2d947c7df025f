"""Long-tailed benchmark construction, datasets, batched augmentation and samplers."""

from .augment import ImageAugmenter, VectorAugmenter
from .datasets import DATASETS, DatasetNotFoundError, RawDataset, load_dataset
from .imbalance import (
    GROUP_NAMES,
    UNLABELED_PROFILES,
    LTSplit,
    class_groups,
    long_tailed_counts,
    make_lt_split,
    step_counts,
    unlabeled_counts,
)
from .samplers import SAMPLERS, ClassBalancedSampler, RandomSampler, make_sampler
from .ssl_data import DEFAULT_SPLITS, PROFILES, SSLData, make_ssl_data

__all__ = [
    "DATASETS", "DEFAULT_SPLITS", "GROUP_NAMES", "PROFILES", "SAMPLERS", "UNLABELED_PROFILES",
    "ClassBalancedSampler", "DatasetNotFoundError", "ImageAugmenter", "LTSplit", "RandomSampler",
    "RawDataset", "SSLData", "VectorAugmenter", "class_groups", "load_dataset", "long_tailed_counts",
    "make_lt_split", "make_sampler", "make_ssl_data", "step_counts", "unlabeled_counts",
]
