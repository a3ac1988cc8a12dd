"""The model zoo: the course's ImageNet families with torchvision's names, plus the CIFAR/MNIST nets.

Every constructor takes ``num_classes`` and builds the same architecture, module names and
``state_dict`` keys as torchvision, so torchvision's pretrained weights (converted once to
safetensors, see ``docs/models.md``) load with :func:`load_weights` and give the same outputs::

    from tinygrad_cnn import models
    net = models.resnet18()                         # 11,689,512 parameters
    models.load_weights(net, "resnet18.safetensors")
    net.eval(); logits = net(x)                     # x: (N, 3, 224, 224)

ImageNet: ``alexnet``, ``zfnet``, ``vgg11/13/16/19`` (+ ``_bn``), ``googlenet``,
``resnet18/34/50/101/152`` (+ ``resnext50_32x4d``, ``wide_resnet50_2``), ``mobilenet_v2``.
Small images: ``lenet5`` (MNIST, (N, 1, 28, 28)), ``resnet20/32/44/56/110`` (CIFAR, (N, 3, 32, 32)).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from .alexnet import AlexNet, alexnet
from .googlenet import BasicConv2d, GoogLeNet, GoogLeNetOutputs, Inception, InceptionAux, googlenet
from .lenet import LeNet5, lenet5
from .mobilenet import InvertedResidual, MobileNetV2, mobilenet_v2
from .resnet import (BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet101, resnet152,
                     resnext50_32x4d, wide_resnet50_2)
from .resnet_cifar import (CifarBasicBlock, CifarResNet, ZeroPadShortcut, resnet20, resnet32, resnet44,
                           resnet56, resnet110)
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from .weights import LoadReport, check_state_dict, first_conv, load_weights, read_state_dict
from .zfnet import LocalResponseNorm, ZFNet, zfnet
from ._common import Conv2dNormActivation

_MODELS: Dict[str, Callable[..., Any]] = {fn.__name__: fn for fn in [
    lenet5, alexnet, zfnet, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn,
    googlenet, resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, wide_resnet50_2,
    mobilenet_v2, resnet20, resnet32, resnet44, resnet56, resnet110]}


def list_models() -> List[str]:
    """Names accepted by :func:`get_model`, sorted."""
    return sorted(_MODELS)


def get_model(name: str, **kwargs: Any) -> Any:
    """Build a model by name: ``get_model("resnet20", num_classes=10)`` (as torchvision's)."""
    try:
        builder = _MODELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return builder(**kwargs)


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    """Number of scalars in ``model.parameters()`` (buffers such as BatchNorm statistics excluded),
    the figure torchvision's documentation quotes."""
    return sum(int(p.numel()) for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["AlexNet", "alexnet", "ZFNet", "zfnet", "LocalResponseNorm", "VGG", "vgg11", "vgg11_bn",
           "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "GoogLeNet", "GoogLeNetOutputs",
           "Inception", "InceptionAux", "BasicConv2d", "googlenet", "ResNet", "BasicBlock", "Bottleneck",
           "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
           "wide_resnet50_2", "MobileNetV2", "InvertedResidual", "mobilenet_v2", "Conv2dNormActivation",
           "LeNet5", "lenet5", "CifarResNet", "CifarBasicBlock", "ZeroPadShortcut", "resnet20", "resnet32",
           "resnet44", "resnet56", "resnet110", "LoadReport", "read_state_dict", "check_state_dict",
           "load_weights", "first_conv", "list_models", "get_model", "count_parameters"]
