"""Backbones; each exposes ``features(x)`` and a linear ``head``."""

from __future__ import annotations

from .._checks import check_choice, check_int
from .base import FeatureClassifier, ModelWrapper, check_model
from .resnet import ResNet18
from .small_cnn import MLP, SmallCNN
from .wrn import WideResNet

MODELS = ("small_cnn", "wrn28_2", "resnet18", "mlp")


def build_model(name: str, num_classes: int, input_shape: tuple[int, ...]) -> FeatureClassifier:
    """Build ``small_cnn``, ``wrn28_2``, ``resnet18`` or ``mlp`` for inputs of ``input_shape`` (C×H×W or D)."""
    check_choice("model", name, MODELS)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    if name == "mlp":
        if len(input_shape) != 1:
            raise ValueError(f"model 'mlp' takes vector inputs, got input shape {input_shape}; use small_cnn")
        return MLP(num_classes, input_shape[0])
    if len(input_shape) != 3:
        raise ValueError(f"model {name!r} takes C×H×W images, got input shape {input_shape}; use mlp for vectors")
    channels = input_shape[0]
    if name == "small_cnn":
        return SmallCNN(num_classes, channels, early_pool=min(input_shape[1:]) >= 12)
    if name == "wrn28_2":
        return WideResNet(num_classes, channels, depth=28, widen=2)
    return ResNet18(num_classes, channels)


def default_model(input_shape: tuple[int, ...]) -> str:
    """``mlp`` for vectors, ``small_cnn`` for images up to 16×16, ``wrn28_2`` above."""
    if len(input_shape) == 1:
        return "mlp"
    return "small_cnn" if max(input_shape[1:]) <= 16 else "wrn28_2"


__all__ = ["MODELS", "FeatureClassifier", "ModelWrapper", "MLP", "ResNet18", "SmallCNN", "WideResNet", "build_model",
           "check_model", "default_model"]
