"""The CIFAR-10 ResNets of He et al. 2016 (ResNet-20/32/44/56/110).

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016,
arXiv:1512.03385), Sec. 4.2: a 3x3 conv with 16 filters on the 32x32 input, then three stages
of n basic blocks (2n layers each) with 16, 32, 64 filters on 32x32, 16x16, 8x8 maps (the first
conv of stages 2 and 3 has stride 2), global average pooling and a 10-way FC layer: 6n + 2
weight layers. Shortcuts are identities; where the shape changes, option A subsamples the
input by 2 and zero-pads the new channels, which adds no parameters (ResNet-20 has 0.27M:
269,722 here). Table 6 of the paper: 8.75 / 7.51 / 7.17 / 6.97% test error for
n = 3 / 5 / 7 / 9. ``shortcut="B"`` uses 1x1 conv + BatchNorm projections instead, as in
torchvision's ImageNet ResNets.
"""
from __future__ import annotations

from typing import Any, List

from .. import nn
from ..tensor import Tensor
from ._common import check_num_classes, init_conv_bn_linear

__all__ = ["CifarResNet", "CifarBasicBlock", "ZeroPadShortcut", "resnet20", "resnet32", "resnet44",
           "resnet56", "resnet110"]


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut, no parameters: keep every ``stride``-th pixel and zero-pad the channel
    axis from ``in_planes`` to ``out_planes`` (half the extra channels before, half after).
    ``(N, in_planes, H, W)`` -> ``(N, out_planes, ceil(H / stride), ceil(W / stride))``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"ZeroPadShortcut: out_planes ({out_planes}) must be >= in_planes ({in_planes})")
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_planes - self.in_planes
        if extra:
            x = x.pad([0, 0, 0, 0, extra // 2, extra - extra // 2])
        return x

    def extra_repr(self) -> str:
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}"


class CifarBasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and the shortcut ``downsample`` (None when shapes match):
    ``(N, in_planes, H, W)`` -> ``(N, planes, H / stride, W / stride)``."""
    expansion: int = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.downsample = ZeroPadShortcut(in_planes, planes, stride)
            else:
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """``conv1``, ``bn1``, ``relu``, ``layer1``..``layer3``, ``avgpool``, ``fc`` (torchvision's names).

    Input ``(N, 3, 32, 32)`` -> logits ``(N, num_classes)``; any H, W >= 4 works (the average
    pool is adaptive). ``n`` blocks per stage gives depth 6n + 2; ``width`` (16) the first
    stage's channels (stages use width, 2 width, 4 width).
    """

    def __init__(self, n: int, num_classes: int = 10, shortcut: str = "A", width: int = 16) -> None:
        super().__init__()
        check_num_classes(num_classes, "CifarResNet")
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' (zero-padding identity) or 'B' "
                             f"(1x1 conv projection), got {shortcut!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"CifarResNet: n (blocks per stage) must be a positive int, got {n!r}")
        self.shortcut = shortcut
        self.in_planes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(width, n, stride=1)
        self.layer2 = self._make_layer(2 * width, n, stride=2)
        self.layer3 = self._make_layer(4 * width, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4 * width, num_classes)
        # "We initialize the weights as in [He et al. 2015]" (Sec. 4.2): He-normal convs
        init_conv_bn_linear(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers: List[nn.Module] = []
        for i in range(blocks):
            layers.append(CifarBasicBlock(self.in_planes, planes, stride if i == 0 else 1, self.shortcut))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))   # (N, 16, 32, 32)
        x = self.layer1(x)                       # (N, 16, 32, 32)
        x = self.layer2(x)                       # (N, 32, 16, 16)
        x = self.layer3(x)                       # (N, 64, 8, 8)
        x = self.avgpool(x).flatten(1)           # (N, 64)
        return self.fc(x)


_CITE = ('He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016, '
         "arXiv:1512.03385), Sec. 4.2")


def resnet20(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-20 for CIFAR-10 (n = 3) from {cite}: 269,722 parameters with option-A shortcuts,
    8.75% test error in Table 6. ``kwargs``: ``shortcut`` ("A"), ``width`` (16).
    ``(N, 3, 32, 32)`` -> ``(N, num_classes)``."""
    return CifarResNet(3, num_classes=num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-32 for CIFAR-10 (n = 5) from {cite}: 0.46M parameters, 7.51% test error in Table 6.
    ``(N, 3, 32, 32)`` -> ``(N, num_classes)``."""
    return CifarResNet(5, num_classes=num_classes, **kwargs)


def resnet44(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-44 for CIFAR-10 (n = 7) from {cite}: 0.66M parameters, 7.17% test error in Table 6.
    ``(N, 3, 32, 32)`` -> ``(N, num_classes)``."""
    return CifarResNet(7, num_classes=num_classes, **kwargs)


def resnet56(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-56 for CIFAR-10 (n = 9) from {cite}: 0.85M parameters, 6.97% test error in Table 6.
    ``(N, 3, 32, 32)`` -> ``(N, num_classes)``."""
    return CifarResNet(9, num_classes=num_classes, **kwargs)


def resnet110(num_classes: int = 10, **kwargs: Any) -> CifarResNet:
    """ResNet-110 for CIFAR-10 (n = 18) from {cite}: 1.7M parameters, 6.43% test error in Table 6.
    ``(N, 3, 32, 32)`` -> ``(N, num_classes)``."""
    return CifarResNet(18, num_classes=num_classes, **kwargs)


for _fn in (resnet20, resnet32, resnet44, resnet56, resnet110):
    _fn.__doc__ = _fn.__doc__.replace("{cite}", _CITE)
del _fn
