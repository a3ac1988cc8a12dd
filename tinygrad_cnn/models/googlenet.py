"""GoogLeNet / Inception v1 (Szegedy et al. 2014), as torchvision builds it.

C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke,
A. Rabinovich, "Going Deeper with Convolutions" (CVPR 2015, arXiv:1409.4842), Table 1 and Fig. 3:
nine Inception modules, each with parallel 1x1, 1x1->3x3, 1x1->"5x5" and 3x3-pool->1x1 branches
concatenated along channels, and two auxiliary classifiers on inception4a / inception4d that
only run in training mode.

torchvision's version (kept here so its weights load): every conv is followed by BatchNorm
(eps 0.001) and ReLU (``BasicConv2d``); the "5x5" branch really uses a 3x3 kernel (a known quirk
of the TensorFlow port the weights come from, pytorch/vision issue #906); max-pools round up
(``ceil_mode=True``). 6,624,904 parameters without the auxiliary classifiers, 13,004,888 with.
"""
from __future__ import annotations

import warnings
from collections import namedtuple
from typing import Any, Callable, List, Optional, Union

from .. import nn
from ..nn import functional as F
from ..nn import init
from ..functions import cat
from ..tensor import Tensor
from ._common import check_num_classes

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux", "BasicConv2d", "googlenet"]

# Field names and order as torchvision. Note torchvision's naming quirk, kept for compatibility:
# position 1 (``aux_logits2``) holds the output of ``aux1`` and position 2 (``aux_logits1``) the
# output of ``aux2``.
GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d(eps=0.001) -> ReLU; ``kwargs`` go to the Conv2d."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """The Inception module: four branches run on the same input, outputs concatenated.

    ``(N, in_channels, H, W)`` -> ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.
    ``branch1``: 1x1; ``branch2``: 1x1 (``ch3x3red``) -> 3x3; ``branch3``: 1x1 (``ch5x5red``)
    -> 3x3 (5x5 in the paper, see the module docstring); ``branch4``: 3x3 max-pool -> 1x1.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, conv_block: Optional[Callable[..., nn.Module]] = None) -> None:
        super().__init__()
        if conv_block is None:
            conv_block = BasicConv2d
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(conv_block(in_channels, ch3x3red, kernel_size=1),
                                     conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(conv_block(in_channels, ch5x5red, kernel_size=1),
                                     conv_block(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     conv_block(in_channels, pool_proj, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: adaptive avg-pool to 4x4 -> 1x1 conv (128) -> FC 1024 -> ReLU ->
    dropout -> FC ``num_classes``. ``(N, in_channels, H, W)`` -> ``(N, num_classes)``."""

    def __init__(self, in_channels: int, num_classes: int,
                 conv_block: Optional[Callable[..., nn.Module]] = None, dropout: float = 0.7) -> None:
        super().__init__()
        if conv_block is None:
            conv_block = BasicConv2d
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(x, (4, 4))     # (N, C, 4, 4)
        x = self.conv(x).flatten(1)              # (N, 2048)
        x = F.relu(self.fc1(x), inplace=True)    # (N, 1024)
        x = self.dropout(x)
        return self.fc2(x)                       # (N, num_classes)


class GoogLeNet(nn.Module):
    """GoogLeNet with torchvision's module names and arguments.

    Input ``(N, 3, H, W)`` (224x224 in the paper; at least 15x15) -> logits ``(N, num_classes)``;
    in training mode with ``aux_logits=True`` the result is ``GoogLeNetOutputs(logits,
    aux_logits2, aux_logits1)`` (see the note on field names above) and the auxiliary heads
    need H, W large enough to reach inception4a/4d (any size works thanks to adaptive pooling).

    ``transform_input=True`` maps inputs normalised with ImageNet's mean/std to the
    ``(x - 0.5) / 0.5`` normalisation the ported TensorFlow weights expect (use it with
    torchvision's pretrained weights, as torchvision does). ``init_weights`` (default True,
    with a FutureWarning when left unset, as torchvision): truncated N(0, 0.01) in [-2, 2] for
    convs and Linear layers, BatchNorm 1 / 0.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 init_weights: Optional[bool] = None, blocks: Optional[List[Callable[..., nn.Module]]] = None,
                 dropout: float = 0.2, dropout_aux: float = 0.7) -> None:
        super().__init__()
        check_num_classes(num_classes, "GoogLeNet")
        if blocks is None:
            blocks = [BasicConv2d, Inception, InceptionAux]
        if init_weights is None:
            warnings.warn("The default weight initialization of GoogLeNet will change in future releases of "
                          "torchvision; tinygrad_cnn follows torchvision. Pass init_weights=True to keep "
                          "the truncated-normal init (or False for the layers' defaults) and silence this.",
                          FutureWarning, stacklevel=2)
            init_weights = True
        if len(blocks) != 3:
            raise ValueError(f"blocks' length should be 3 instead of {len(blocks)}")
        conv_block, inception_block, inception_aux_block = blocks

        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.conv1 = conv_block(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = conv_block(64, 64, kernel_size=1)
        self.conv3 = conv_block(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        # (in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) from Table 1 of the paper
        self.inception3a = inception_block(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = inception_block(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception_block(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = inception_block(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = inception_block(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = inception_block(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = inception_block(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = inception_block(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = inception_block(832, 384, 192, 384, 48, 128, 128)

        if aux_logits:
            self.aux1 = inception_aux_block(512, num_classes, dropout=dropout_aux)
            self.aux2 = inception_aux_block(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    init.constant_(m.weight, 1)
                    init.constant_(m.bias, 0)

    def _transform_input(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        # undo ImageNet mean/std, apply (x - 0.5) / 0.5, per channel
        x_ch0 = x[:, 0].unsqueeze(1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x_ch1 = x[:, 1].unsqueeze(1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x_ch2 = x[:, 2].unsqueeze(1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return cat([x_ch0, x_ch1, x_ch2], 1)

    def forward(self, x: Tensor) -> Union[Tensor, GoogLeNetOutputs]:
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))            # (N, 64, 56, 56) at 224
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (N, 192, 28, 28)
        x = self.inception3a(x)                     # (N, 256, 28, 28)
        x = self.inception3b(x)                     # (N, 480, 28, 28)
        x = self.maxpool3(x)                        # (N, 480, 14, 14)
        x = self.inception4a(x)                     # (N, 512, 14, 14)
        use_aux = self.training and self.aux_logits and self.aux1 is not None
        aux1 = self.aux1(x) if use_aux else None
        x = self.inception4b(x)
        x = self.inception4c(x)
        x = self.inception4d(x)                     # (N, 528, 14, 14)
        aux2 = self.aux2(x) if use_aux else None
        x = self.inception4e(x)                     # (N, 832, 14, 14)
        x = self.maxpool4(x)                        # (N, 832, 7, 7)
        x = self.inception5a(x)
        x = self.inception5b(x)                     # (N, 1024, 7, 7)
        x = self.avgpool(x).flatten(1)              # (N, 1024)
        x = self.fc(self.dropout(x))                # (N, num_classes)
        if use_aux:
            return GoogLeNetOutputs(x, aux1, aux2)
        return x


def googlenet(num_classes: int = 1000, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Inception v1) from Szegedy et al., "Going Deeper with Convolutions"
    (CVPR 2015, arXiv:1409.4842), in torchvision's form.

    ``kwargs`` as :class:`GoogLeNet`: ``aux_logits`` (True), ``transform_input`` (False),
    ``init_weights``, ``dropout`` (0.2), ``dropout_aux`` (0.7).
    For torchvision's pretrained weights use ``googlenet(aux_logits=False, transform_input=True,
    init_weights=False)``: torchvision drops the (untrained) auxiliary heads from that state dict.
    Input ``(N, 3, 224, 224)`` -> ``(N, num_classes)``.
    """
    return GoogLeNet(num_classes=num_classes, **kwargs)
