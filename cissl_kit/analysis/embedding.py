"""The learned embedding of the test set, and a 2-D t-SNE map of it (SeMi Fig. 4 style)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._checks import check_float, check_int


@torch.no_grad()
def embed_test_images(net: nn.Module, data, batch_size: int = 1024) -> np.ndarray:
    """``net.features`` of every (un-augmented) test image, in evaluation mode, as an N×D array."""
    check_int("batch_size", batch_size, minimum=1)
    if not callable(getattr(net, "features", None)):
        raise TypeError(f"net must have a features(x) method, got {type(net).__name__}")
    was_training = net.training
    net.eval()
    chunks = [net.features(data.augmenter.plain(x)).float().cpu() for x in data.test_images.split(batch_size)]
    net.train(was_training)
    return torch.cat(chunks).numpy()


def tsne_2d(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """scikit-learn's t-SNE of ``features`` (N×D) to N×2, after PCA to at most 50 dimensions."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < 5:
        raise ValueError(f"features must be an N×D array with N >= 5, got shape {features.shape}")
    check_float("perplexity", perplexity, 1.0, len(features) - 1.0, max_inclusive=False)
    if features.shape[1] > 50:
        features = PCA(50, random_state=seed).fit_transform(features)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
