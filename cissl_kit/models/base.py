"""The model contract: ``features(x)`` gives embeddings, ``head`` is the linear classifier."""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn


class FeatureClassifier(nn.Module):
    """Base class: ``forward(x) = head(features(x))``.

    Subclasses set ``self.head`` (an ``nn.Linear``) and implement :meth:`features`, and list their
    blocks in :meth:`layer_groups` (used by the layer-gradient analysis).
    """

    head: nn.Linear

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.feature_map(x))

    def feature_map(self, x: Tensor) -> Tensor:
        """The last activations before global pooling (N×C×H×W for images, N×D for vectors)."""
        raise NotImplementedError

    def pool(self, feature_map: Tensor) -> Tensor:
        """Global average pooling to N×D embeddings (vectors pass through)."""
        return F.adaptive_avg_pool2d(feature_map, 1).flatten(1) if feature_map.dim() == 4 else feature_map

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        """Named blocks from input to output; the last is always ``head``."""
        raise NotImplementedError


class ModelWrapper(nn.Module):
    """Wraps a backbone and passes ``features``, ``head`` and ``layer_groups`` through; methods
    that change the classifier (a second head, cosine scores) subclass it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def head(self) -> nn.Linear:
        return self.model.head

    def features(self, x: Tensor) -> Tensor:
        return self.model.features(x)

    def feature_map(self, x: Tensor) -> Tensor:
        return self.model.feature_map(x)

    def pool(self, feature_map: Tensor) -> Tensor:
        return self.model.pool(feature_map)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        return self.model.layer_groups()


def check_model(model: nn.Module) -> None:
    """Raise a clear error unless ``model`` has ``features(x)`` and a linear ``head``."""
    if not callable(getattr(model, "features", None)):
        raise TypeError(
            f"model must have a features(x) method returning N×D embeddings (got {type(model).__name__}); "
            "subclass cissl_kit.models.FeatureClassifier"
        )
    if not isinstance(getattr(model, "head", None), nn.Linear):
        raise TypeError(
            f"model must have a linear classifier 'head' (nn.Linear) after features(x) (got {type(model).__name__})"
        )
