"""A small CNN that trains in seconds on 8×8 digits on a CPU; and an MLP for 2-D toy data."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from .base import FeatureClassifier


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(FeatureClassifier):
    """conv(w) → conv(2w) → pool → conv(4w) → global average pool → linear head (w = ``width``).

    ``early_pool`` adds a 2×2 max-pool after the first conv, for inputs of 12 pixels and more
    (MNIST at 14×14): the last two convs then run on 7×7 and 3×3 maps, about 4× less compute.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 24, early_pool: bool = False) -> None:
        super().__init__()
        self.block1 = _conv_bn(in_channels, width)
        if early_pool:
            self.block1.append(nn.MaxPool2d(2))
        self.block2 = nn.Sequential(_conv_bn(width, 2 * width), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(_conv_bn(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.block3(self.block2(self.block1(x)))

    def feature_map(self, x: Tensor) -> Tensor:
        return self.block3[0](self.block2(self.block1(x)))  # block3 is conv-BN-ReLU, then the pooling

    def pool(self, feature_map: Tensor) -> Tensor:
        return self.block3[2](self.block3[1](feature_map))

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(block1=self.block1, block2=self.block2, block3=self.block3, head=self.head)


class MLP(FeatureClassifier):
    """Two hidden layers for vector data (the 2-D toy)."""

    def __init__(self, num_classes: int, in_features: int = 2, width: int = 64) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Linear(in_features, width), nn.ReLU())
        self.block2 = nn.Sequential(nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.block2(self.block1(x))

    def feature_map(self, x: Tensor) -> Tensor:
        return self.features(x)

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(block1=self.block1, block2=self.block2, head=self.head)
