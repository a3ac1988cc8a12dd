"""ResNet (He, Zhang, Ren, Sun 2015) for ImageNet, as torchvision builds it.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016,
arXiv:1512.03385), Table 1: a 7x7/2 conv stem and 3x3/2 max-pool, four stages of residual
blocks (basic blocks for 18/34 layers, bottlenecks for 50/101/152), global average pool and one
FC layer. Like torchvision (the "ResNet v1.5" variant), a bottleneck downsamples in its 3x3
conv, not its first 1x1 conv, and a projection shortcut (1x1 conv + BatchNorm, option B of the
paper) is used wherever the shape changes. Parameter counts with 1000 classes:
ResNet-18 11,689,512; ResNet-34 21,797,672; ResNet-50 25,557,032; ResNet-101 44,549,160;
ResNet-152 60,192,808.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Type, Union

from .. import nn
from ..nn import init
from ..tensor import Tensor
from ._common import check_num_classes, init_conv_bn_linear

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "conv3x3", "conv1x1", "resnet18", "resnet34",
           "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1,
            dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with "same" padding and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias: mixes channels, optionally subsamples by ``stride``."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _batch_norm2d(num_features: int) -> nn.Module:
    return nn.BatchNorm2d(num_features)


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``(N, inplanes, H, W)`` -> ``(N, planes, H / stride, W / stride)``; ``downsample`` maps the
    input to the output's shape when they differ (None: identity).
    """
    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = _batch_norm2d
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                             f"base_width={base_width}")
        if dilation > 1:
            raise ValueError(f"BasicBlock does not support dilation > 1, got dilation={dilation}")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 (stride here: ResNet v1.5) -> 1x1 (expand x4), each with BatchNorm,
    plus the shortcut: ``(N, inplanes, H, W)`` -> ``(N, 4 * planes, H / stride, W / stride)``.
    ``groups`` / ``base_width`` give the ResNeXt and Wide-ResNet variants."""
    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = _batch_norm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem (``conv1``, ``bn1``, ``relu``, ``maxpool``), ``layer1``..``layer4``, ``avgpool``, ``fc``.

    Input ``(N, 3, H, W)`` (224x224 in the paper; anything that survives the /32 reduction)
    -> logits ``(N, num_classes)``. Arguments as torchvision's ``ResNet``.
    """

    def __init__(self, block: Type[Union[BasicBlock, Bottleneck]], layers: List[int],
                 num_classes: int = 1000, zero_init_residual: bool = False, groups: int = 1,
                 width_per_group: int = 64,
                 replace_stride_with_dilation: Optional[List[bool]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        check_num_classes(num_classes, "ResNet")
        if norm_layer is None:
            norm_layer = _batch_norm2d
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, "
                             f"got {replace_stride_with_dilation!r}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        init_conv_bn_linear(self)  # convs kaiming-normal (fan_out), BN 1/0, fc keeps Linear's init
        # "Zero-init the last BN in each residual branch, so that each block starts as an
        # identity" (Goyal et al. 2017, arXiv:1706.02677), as torchvision's flag does.
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    init.zeros_(m.bn2.weight)

    def _make_layer(self, block: Type[Union[BasicBlock, Bottleneck]], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        previous_dilation, norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))   # (N, 64, H/4, W/4)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)                                     # (N, 512 * expansion, H/32, W/32)
        x = self.avgpool(x).flatten(1)
        return self.fc(x)


_CITE = ('He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition" '
         "(CVPR 2016, arXiv:1512.03385), Table 1")


def resnet18(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-18 (basic blocks [2, 2, 2, 2]) from {cite}; 11,689,512 parameters with 1000 classes.
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``; ``kwargs`` as :class:`ResNet`."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-34 (basic blocks [3, 4, 6, 3]) from {cite}; 21,797,672 parameters with 1000 classes.
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``; ``kwargs`` as :class:`ResNet`."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-50 (bottlenecks [3, 4, 6, 3]) from {cite}; 25,557,032 parameters with 1000 classes.
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``; ``kwargs`` as :class:`ResNet`."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, **kwargs)


def resnet101(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-101 (bottlenecks [3, 4, 23, 3]) from {cite}; 44,549,160 parameters with 1000 classes.
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``; ``kwargs`` as :class:`ResNet`."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, **kwargs)


def resnet152(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-152 (bottlenecks [3, 8, 36, 3]) from {cite}; 60,192,808 parameters with 1000 classes.
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``; ``kwargs`` as :class:`ResNet`."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, **kwargs)


def resnext50_32x4d(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNeXt-50 32x4d from Xie, Girshick, Dollar, Tu & He, "Aggregated Residual Transformations
    for Deep Neural Networks" (CVPR 2017, arXiv:1611.05431): ResNet-50 with 32-group 3x3 convs
    of 4 channels per group; 25,028,904 parameters with 1000 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, groups=32, width_per_group=4, **kwargs)


def wide_resnet50_2(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Wide ResNet-50-2 from Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016,
    arXiv:1605.07146), as torchvision: ResNet-50 with bottlenecks twice as wide;
    68,883,240 parameters with 1000 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, width_per_group=128, **kwargs)


for _fn in (resnet18, resnet34, resnet50, resnet101, resnet152):
    _fn.__doc__ = _fn.__doc__.replace("{cite}", _CITE)
del _fn
