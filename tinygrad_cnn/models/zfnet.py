"""ZFNet (Zeiler & Fergus 2013), AlexNet with a finer first layer. No torchvision counterpart.

From Fig. 2 of M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks"
(ECCV 2014, arXiv:1311.2901): a 224x224x3 crop; layer 1: 96 filters of 7x7 at stride 2 (->110x110),
ReLU, 3x3 max-pool at stride 2 (->55x55), contrast normalisation across feature maps; layer 2:
256 filters of 5x5 at stride 2 (->26x26), ReLU, 3x3 max-pool stride 2 (->13x13), normalisation;
layers 3, 4, 5: 384, 384, 256 filters of 3x3 (13x13), then a 3x3 max-pool stride 2 (->6x6);
two fully connected layers of 4096 and a C-way softmax.

The paper's sizes need padding 1 in layer 1 and the pools rounding up (``ceil_mode=True``):
(224 + 2 - 7) // 2 + 1 = 110, ceil((110 - 3) / 2) + 1 = 55, (55 - 5) // 2 + 1 = 26,
ceil((26 - 3) / 2) + 1 = 13, ceil((13 - 3) / 2) + 1 = 6.
Like torchvision's AlexNet, this version leaves out the contrast normalisation by default
(``local_response_norm=True`` puts it back, with AlexNet's constants) and ends the features
with an adaptive average pool to 6x6, so other input sizes work.
"""
from __future__ import annotations

from typing import Any

from .. import nn
from ..tensor import Tensor
from ._common import check_num_classes

__all__ = ["ZFNet", "zfnet", "LocalResponseNorm"]


class LocalResponseNorm(nn.Module):
    """Normalisation across channels (torch.nn.LocalResponseNorm, Krizhevsky et al. 2012, Sec. 3.3):

    b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta,

    the window being ``size`` neighbouring channels centred on c (zero-padded at the ends).
    Input ``(N, C, *)``, output the same shape. Written with Tensor ops, so it differentiates.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got {size!r}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 3:
            raise ValueError(f"LocalResponseNorm: expected input (N, C, *) with 3 or more dims, "
                             f"got shape {tuple(input.shape)}")
        channels = input.shape[1]
        squares = input * input
        # pad the channel axis by size//2 before and (size-1)//2 after, as torch does
        pad = [0, 0] * (input.ndim - 2) + [self.size // 2, (self.size - 1) // 2]
        padded = squares.pad(pad)
        window_sum = padded[:, 0:channels]
        for offset in range(1, self.size):
            window_sum = window_sum + padded[:, offset:offset + channels]
        return input / (window_sum * (self.alpha / self.size) + self.k) ** self.beta

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class ZFNet(nn.Module):
    """``features`` (5 conv layers), ``avgpool`` to 6x6, ``classifier`` (3 FC layers).

    Input ``(N, 3, 224, 224)`` (any H, W >= 47 works) -> logits ``(N, num_classes)``.
    With 1000 classes: 62,357,608 parameters.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5,
                 local_response_norm: bool = False) -> None:
        super().__init__()
        check_num_classes(num_classes, "ZFNet")

        def norm() -> list:
            return [LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)] if local_response_norm else []

        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),     # (N, 96, 110, 110)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # 55x55
            *norm(),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),              # 26x26
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # 13x13
            *norm(),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),   # (N, 256, 6, 6)
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


def zfnet(num_classes: int = 1000, **kwargs: Any) -> ZFNet:
    """ZFNet from Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks"
    (ECCV 2014, arXiv:1311.2901), Fig. 2: AlexNet with 96 first-layer filters of 7x7 at stride 2.

    ``kwargs``: ``dropout`` (0.5), ``local_response_norm`` (False).
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``.
    """
    return ZFNet(num_classes=num_classes, **kwargs)
