"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) in the modern style the MNIST demo trains.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 86(11), 1998, Sec. II.B and Fig. 2: C1 6 maps of 5x5 on a 32x32 input
(28x28 MNIST digits padded by 2), S2 2x2 subsampling, C3 16 maps of 5x5, S4 2x2 subsampling,
C5 120 units, F6 84 units, 10 outputs. 0.95% test error on MNIST without distortions.

The course's "[Conv, ReLU, Pool] x 2 -> flatten -> [FC, ReLU] x 2 -> FC" version keeps those
sizes and replaces the 1998 details with today's defaults: ReLU instead of scaled tanh, max-pool
instead of trainable subsampling, C3 connected to all six S2 maps (the paper's partial
connection table is left out), C5 as a 400 -> 120 fully connected layer (on 5x5 maps it is the
same thing), and plain logits for a softmax/cross-entropy loss instead of RBF units.
61,706 parameters with 10 classes.
"""
from __future__ import annotations

from typing import Any

from .. import nn
from ..tensor import Tensor
from ._common import check_num_classes

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """``features``: Conv(in_channels->6, 5x5, padding 2), ReLU, MaxPool 2, Conv(6->16, 5x5),
    ReLU, MaxPool 2; ``classifier``: Linear(16*5*5 -> 120), ReLU, Linear(120 -> 84), ReLU,
    Linear(84 -> num_classes).

    Input ``(N, in_channels, 28, 28)`` (MNIST) -> logits ``(N, num_classes)``. Other sizes work
    when the feature maps end at 5x5 (e.g. 32x32 with ``padding=0``, as in the paper).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, padding: int = 2) -> None:
        super().__init__()
        check_num_classes(num_classes, "LeNet5")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding),  # C1: (N, 6, 28, 28)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),                      # S2: (N, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),                            # C3: (N, 16, 10, 10)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),                      # S4: (N, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),                                 # C5
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),                                         # F6
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),                                 # output
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        if x.shape[-2:] != (5, 5):
            raise ValueError(f"LeNet5: the feature maps must end at 5x5 but are {tuple(x.shape[-2:])}; "
                             "use 28x28 inputs (padding=2) or 32x32 inputs (padding=0)")
        return self.classifier(x.flatten(1))


def lenet5(num_classes: int = 10, **kwargs: Any) -> LeNet5:
    """LeNet-5 after LeCun et al., "Gradient-Based Learning Applied to Document Recognition"
    (Proc. IEEE 1998), Fig. 2, with ReLU and max-pooling. ``kwargs``: ``in_channels`` (1),
    ``padding`` of the first conv (2, for 28x28 inputs). ``(N, 1, 28, 28)`` -> ``(N, num_classes)``.
    """
    return LeNet5(num_classes=num_classes, **kwargs)
