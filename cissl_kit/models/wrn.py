"""WRN-28-2, the field's standard backbone for CIFAR SSL (as in FixMatch and USB)."""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn

from .base import FeatureClassifier

BN_MOMENTUM = 0.001  # FixMatch / USB


class _BasicBlock(nn.Module):
    """Pre-activation block as in FixMatch / USB.

    Like those implementations, a block that changes width without ``activate_before_residual``
    convolves the raw input; their unused BN there is left out, so every parameter gets a gradient.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, activate_before_residual: bool = False) -> None:
        super().__init__()
        self.equal = c_in == c_out
        self.pre_activate = self.equal or activate_before_residual
        self.bn1 = nn.BatchNorm2d(c_in, momentum=BN_MOMENTUM) if self.pre_activate else None
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None if self.equal else nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.pre_activate:
            activated = F.leaky_relu(self.bn1(x), 0.1)
            if not self.equal:  # activate_before_residual: the shortcut sees the activated input too
                x = activated
            out = self.conv1(activated)
        else:
            out = self.conv1(x)
        out = self.conv2(F.leaky_relu(self.bn2(out), 0.1))
        return (x if self.equal else self.shortcut(x)) + out


class WideResNet(FeatureClassifier):
    """Wide ResNet depth ``depth``, widen factor ``widen`` (WRN-28-2: 1.5 M parameters)."""

    def __init__(self, num_classes: int, in_channels: int = 3, depth: int = 28, widen: int = 2) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 (e.g. 28), got {depth}")
        n = (depth - 4) // 6
        channels = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)

        def stage(c_in: int, c_out: int, stride: int, first_activates: bool) -> nn.Sequential:
            return nn.Sequential(*[
                _BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, first_activates and i == 0)
                for i in range(n)
            ])

        self.block1 = stage(channels[0], channels[1], 1, True)
        self.block2 = stage(channels[1], channels[2], 2, False)
        self.block3 = stage(channels[2], channels[3], 2, False)
        self.bn = nn.BatchNorm2d(channels[3], momentum=BN_MOMENTUM)
        self.relu = nn.LeakyReLU(0.1, inplace=True)
        self.head = nn.Linear(channels[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                m.bias.data.zero_()

    def feature_map(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.relu(self.bn(x))

    def layer_groups(self) -> "OrderedDict[str, nn.Module]":
        # the final BN belongs to the last block (a view, not a registered child)
        return OrderedDict(stem=self.stem, block1=self.block1, block2=self.block2,
                           block3=nn.ModuleList([self.block3, self.bn]), head=self.head)
