"""VGG (Simonyan & Zisserman 2014), as torchvision builds it.

Configurations A, B, D, E of Table 1 of K. Simonyan, A. Zisserman, "Very Deep Convolutional
Networks for Large-Scale Image Recognition" (ICLR 2015, arXiv:1409.1556): stacks of 3x3
convolutions (padding 1) separated by 2x2 max-pools, then three FC layers. torchvision adds an
adaptive average pool to 7x7 before the classifier and the ``_bn`` variants (a BatchNorm after
every conv). Parameter counts with 1000 classes: VGG-11 132,863,336; VGG-13 133,047,848;
VGG-16 138,357,544; VGG-19 143,667,240 (the ``_bn`` variants add 2 x channels per conv).
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

from .. import nn
from ..tensor import Tensor
from ._common import check_num_classes, init_conv_bn_linear

__all__ = ["VGG", "make_layers", "cfgs", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
           "vgg19", "vgg19_bn"]

# Table 1 of the paper: numbers are conv output channels, "M" a 2x2 max-pool at stride 2.
cfgs: Dict[str, List[Union[int, str]]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                       # VGG-11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],              # VGG-13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # VGG-16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],                                                              # VGG-19
}


def make_layers(cfg: List[Union[int, str]], batch_norm: bool = False) -> nn.Sequential:
    """The ``features`` Sequential for one configuration: Conv2d(3x3, padding 1) [-> BatchNorm2d]
    -> ReLU for each number, MaxPool2d(2, 2) for each "M". Input ``(N, 3, H, W)`` ->
    ``(N, 512, H / 32, W / 32)``."""
    layers: List[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` (from :func:`make_layers`), ``avgpool`` to 7x7, ``classifier`` (3 FC layers).

    Input ``(N, 3, H, W)`` with H, W >= 32 -> logits ``(N, num_classes)``. Init as torchvision:
    convs kaiming-normal (fan_out, relu), BatchNorm 1 / 0, Linear N(0, 0.01), biases 0.
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        check_num_classes(num_classes, "VGG")
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            init_conv_bn_linear(self, linear_std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


def _vgg(cfg: str, batch_norm: bool, num_classes: int, **kwargs: Any) -> VGG:
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), num_classes=num_classes, **kwargs)


_DOC = """VGG-{depth}{bn} (configuration "{cfg}") from Simonyan & Zisserman, "Very Deep Convolutional
    Networks for Large-Scale Image Recognition" (ICLR 2015, arXiv:1409.1556){bn_cite}.

    ``kwargs``: ``init_weights`` (True), ``dropout`` (0.5).
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``; {params} parameters with 1000 classes.
    """


def vgg11(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("A", False, num_classes, **kwargs)


def vgg11_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("A", True, num_classes, **kwargs)


def vgg13(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("B", False, num_classes, **kwargs)


def vgg13_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("B", True, num_classes, **kwargs)


def vgg16(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("D", False, num_classes, **kwargs)


def vgg16_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("D", True, num_classes, **kwargs)


def vgg19(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("E", False, num_classes, **kwargs)


def vgg19_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    return _vgg("E", True, num_classes, **kwargs)


_BN_CITE = (", with a BatchNorm2d after every conv (Ioffe & Szegedy 2015, arXiv:1502.03167) "
            "as in torchvision")
for _fn, _depth, _cfg, _params in [
        (vgg11, 11, "A", "132,863,336"), (vgg11_bn, 11, "A", "132,868,840"),
        (vgg13, 13, "B", "133,047,848"), (vgg13_bn, 13, "B", "133,053,736"),
        (vgg16, 16, "D", "138,357,544"), (vgg16_bn, 16, "D", "138,365,992"),
        (vgg19, 19, "E", "143,667,240"), (vgg19_bn, 19, "E", "143,678,248")]:
    _bn = _fn.__name__.endswith("_bn")
    _fn.__doc__ = _DOC.format(depth=_depth, bn=" with batch norm" if _bn else "", cfg=_cfg,
                              bn_cite=_BN_CITE if _bn else "", params=_params)
del _fn, _depth, _cfg, _params, _bn
