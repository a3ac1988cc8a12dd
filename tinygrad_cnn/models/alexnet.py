"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), as torchvision builds it.

torchvision follows the single-GPU variant of "One weird trick for parallelizing convolutional
neural networks" (Krizhevsky 2014): 64 first-layer filters of 3x11x11 at stride 4, no local
response normalisation, and an adaptive average pool to 6x6 so any input of at least 63x63
works. 61,100,840 parameters with 1000 classes.
"""
from __future__ import annotations

from typing import Any

from .. import nn
from ..tensor import Tensor
from ._common import check_num_classes

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """Five conv layers (``features``), ``avgpool`` to 6x6, three FC layers (``classifier``).

    Input ``(N, 3, H, W)`` with H, W >= 63 (224 in the paper) -> logits ``(N, num_classes)``.
    Module names and state-dict keys equal torchvision's (``features.0.weight`` ...
    ``classifier.6.bias``); weights keep ``Conv2d``/``Linear``'s default init, as torchvision's.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        check_num_classes(num_classes, "AlexNet")
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),    # (N, 64, 55, 55) at 224
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 27x27
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 13x13
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),                    # (N, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


def alexnet(num_classes: int = 1000, **kwargs: Any) -> AlexNet:
    """AlexNet from Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks" (NeurIPS 2012), in torchvision's single-GPU form
    (Krizhevsky 2014, "One weird trick ...", arXiv:1404.5997).

    ``kwargs``: ``dropout`` (0.5). Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``.
    Load torchvision's pretrained weights with :func:`tinygrad_cnn.models.load_weights`.
    """
    return AlexNet(num_classes=num_classes, **kwargs)
