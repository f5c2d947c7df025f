"""ResNet-18 in its CIFAR form (3×3 stem, no max-pool), as used by the LT literature."""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from .base import FeatureClassifier


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(FeatureClassifier):
    """ResNet-18 (11 M parameters), 512-d features."""

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        widths, c_in, stages = [64, 128, 256, 512], 64, []
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(_Block(c_in, width, stride), _Block(width, width, 1)))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = nn.Linear(512, num_classes)

    def feature_map(self, x: Tensor) -> Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(stem=self.stem, layer1=self.layer1, layer2=self.layer2, layer3=self.layer3,
                           layer4=self.layer4, head=self.head)
