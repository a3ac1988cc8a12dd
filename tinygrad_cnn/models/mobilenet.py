"""MobileNetV2 (Sandler et al. 2018), as torchvision builds it.

M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks" (CVPR 2018, arXiv:1801.04381), Table 2: a 3x3/2 conv stem, 17 inverted
residual blocks (1x1 expand -> 3x3 depthwise -> 1x1 linear projection, with a skip when the
shape allows) and a 1x1 conv to 1280 channels, global average pool, dropout, FC.
The depthwise-separable idea and its 1/N + 1/Dk^2 cost ratio are from MobileNet v1
(Howard et al. 2017, arXiv:1704.04861). 3,504,872 parameters with 1000 classes.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

from .. import nn
from ..nn import functional as F
from ..tensor import Tensor
from ._common import Conv2dNormActivation, check_num_classes, init_conv_bn_linear, make_divisible, relu6_layer

__all__ = ["MobileNetV2", "InvertedResidual", "mobilenet_v2"]


def _batch_norm2d(num_features: int) -> nn.Module:
    return nn.BatchNorm2d(num_features)


class InvertedResidual(nn.Module):
    """One inverted residual block, ``conv`` being a Sequential of
    [1x1 expand + BN + ReLU6 (skipped when ``expand_ratio == 1``)], 3x3 depthwise (``groups`` =
    channels) + BN + ReLU6, 1x1 linear projection + BN (no activation: the "linear bottleneck").

    ``(N, inp, H, W)`` -> ``(N, oup, H / stride, W / stride)``; the input is added back when
    ``stride == 1 and inp == oup``.
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm_layer: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride should be 1 or 2, got {stride!r}")
        if norm_layer is None:
            norm_layer = _batch_norm2d
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=relu6_layer))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim,
                                 norm_layer=norm_layer, activation_layer=relu6_layer),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """``features`` (stem, 17 inverted residual blocks, 1x1 conv to ``last_channel``) and
    ``classifier`` (Dropout, Linear). Arguments as torchvision's ``MobileNetV2``.

    Input ``(N, 3, H, W)`` (224x224 in the paper) -> logits ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: Optional[List[List[int]]] = None, round_nearest: int = 8,
                 block: Optional[Callable[..., nn.Module]] = None,
                 norm_layer: Optional[Callable[..., nn.Module]] = None, dropout: float = 0.2) -> None:
        super().__init__()
        check_num_classes(num_classes, "MobileNetV2")
        if block is None:
            block = InvertedResidual
        if norm_layer is None:
            norm_layer = _batch_norm2d
        input_channel, last_channel = 32, 1280
        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t (expansion), c (channels), n (repeats), s (first stride): Table 2 of the paper
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
        if len(inverted_residual_setting) == 0 or any(len(row) != 4 for row in inverted_residual_setting):
            raise ValueError("inverted_residual_setting should be a non-empty list of [t, c, n, s] rows, "
                             f"got {inverted_residual_setting!r}")

        input_channel = make_divisible(input_channel * width_mult, round_nearest)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: List[nn.Module] = [
            Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer, activation_layer=relu6_layer)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(block(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t,
                                      norm_layer=norm_layer))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                             norm_layer=norm_layer, activation_layer=relu6_layer))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))

        init_conv_bn_linear(self, linear_std=0.01)   # convs kaiming-normal (fan_out), as torchvision

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)                          # (N, 1280, H/32, W/32)
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return self.classifier(x)


def mobilenet_v2(num_classes: int = 1000, **kwargs: Any) -> MobileNetV2:
    """MobileNetV2 from Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
    (CVPR 2018, arXiv:1801.04381), as torchvision; 3,504,872 parameters with 1000 classes.

    ``kwargs`` as :class:`MobileNetV2` (``width_mult``, ``dropout``, ...).
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``.
    """
    return MobileNetV2(num_classes=num_classes, **kwargs)
