"""Pieces shared by the model files: a Conv-Norm-Activation block, ReLU6, weight-init loops.

Everything here is built from the public ``tinygrad_cnn.nn`` layers, so the models read like
their torchvision counterparts and produce the same module names and ``state_dict`` keys.
"""
from __future__ import annotations

from typing import Callable, Optional

from .. import nn
from ..nn import init
from ..tensor import Tensor

__all__ = ["ReLU6", "relu6_layer", "Conv2dNormActivation", "make_divisible", "init_conv_bn_linear",
           "check_num_classes"]


class ReLU6(nn.Module):
    """min(max(x, 0), 6), element-wise (torch.nn.ReLU6). Any shape in, same shape out.

    Used only when ``tinygrad_cnn.nn`` does not provide its own ``ReLU6``.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return input.clamp(0.0, 6.0)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


def relu6_layer(inplace: bool = True) -> nn.Module:
    """``nn.ReLU6(inplace)`` if the library has it, else the local :class:`ReLU6`."""
    cls = getattr(nn, "ReLU6", None) or ReLU6
    return cls(inplace=inplace)


def _relu(inplace: bool = True) -> nn.Module:
    return nn.ReLU(inplace=inplace)


def _batch_norm2d(num_features: int) -> nn.Module:
    return nn.BatchNorm2d(num_features)


class Conv2dNormActivation(nn.Sequential):
    """Conv2d -> norm -> activation as one ``Sequential`` (torchvision.ops.Conv2dNormActivation).

    Children are named ``0`` (conv), ``1`` (norm), ``2`` (activation), so state-dict keys read
    ``features.0.0.weight`` / ``features.0.1.running_mean`` exactly as torchvision's.
    ``norm_layer=None`` / ``activation_layer=None`` leave that layer out.
    ``padding=None`` means "same" for odd kernels: ``(kernel_size - 1) // 2 * dilation``.
    The conv has no bias when a norm layer follows (the norm's shift plays that role).
    Input ``(N, in_channels, H, W)`` -> output ``(N, out_channels, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: Optional[int] = None, groups: int = 1,
                 norm_layer: Optional[Callable[..., nn.Module]] = _batch_norm2d,
                 activation_layer: Optional[Callable[..., nn.Module]] = _relu,
                 dilation: int = 1, inplace: Optional[bool] = True, bias: Optional[bool] = None) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation,
                            groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer() if inplace is None else activation_layer(inplace=inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


def make_divisible(v: float, divisor: int, min_value: Optional[int] = None) -> int:
    """Round a channel count ``v`` to the nearest multiple of ``divisor`` without going more than
    10% below ``v`` (the rule of the MobileNet papers' reference code, as torchvision's)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def init_conv_bn_linear(model: nn.Module, linear_std: Optional[float] = None,
                        conv_mode: str = "fan_out") -> None:
    """The init torchvision uses for VGG / ResNet / MobileNet-V2:

    Conv2d: ``kaiming_normal_(mode=conv_mode, nonlinearity="relu")``, bias 0;
    BatchNorm / GroupNorm: weight 1, bias 0;
    Linear: ``normal_(0, linear_std)`` and bias 0 when ``linear_std`` is given, else left at
    Linear's own default (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), as torchvision's ResNet does.
    """
    norm_types = tuple(getattr(nn, name) for name in ("BatchNorm2d", "GroupNorm") if hasattr(nn, name))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity="relu")
            if m.bias is not None:
                init.zeros_(m.bias)
        elif norm_types and isinstance(m, norm_types):
            if getattr(m, "weight", None) is not None:
                init.ones_(m.weight)
                init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            init.normal_(m.weight, 0.0, linear_std)
            if m.bias is not None:
                init.zeros_(m.bias)


def check_num_classes(num_classes: int, where: str) -> int:
    """``num_classes`` must be a positive int; raise a ValueError naming the model otherwise."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{where}: num_classes must be a positive int, got {num_classes!r}")
    return num_classes
