"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d (torch.nn's classes).

Same constructor arguments, attributes, weight layouts, default initialisation and ``repr`` as
PyTorch:

* ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
  bias=True, padding_mode='zeros')``: weight (out_channels, in_channels/groups, kH, kW).
  ``padding_mode`` 'zeros' | 'reflect' | 'replicate' | 'circular'; ``padding`` may be
  'valid' or 'same' (with stride > 1, TensorFlow's convention: see nn.functional.conv).
* ``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
  output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros')``:
  weight (in_channels, out_channels/groups, kH, kW); ``forward(input, output_size=None)``
  picks the output_padding that yields ``output_size`` (a strided conv maps several input
  sizes to one output size, so its transpose must be told which to produce).

Initialisation (PyTorch's): weight ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = weight.shape[1] * prod(kernel_size).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ... import shapes
from ...tensor import Tensor
from .. import init
from ..functional import conv as F
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

IntOrTuple = Union[int, Sequence[int]]
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared constructor, parameters, initialisation and repr of every conv layer."""

    _nd: int = 2
    transposed: bool = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                 stride: IntOrTuple, padding: Union[str, IntOrTuple], dilation: IntOrTuple,
                 output_padding: IntOrTuple, groups: int, bias: bool, padding_mode: str,
                 dtype: Any = None) -> None:
        super().__init__()
        name, nd = type(self).__name__, self._nd
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
            self.padding: Union[str, Tuple[int, ...]] = padding
        else:
            self.padding = shapes.ntuple(padding, nd, "padding", minimum=0)
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = shapes.ntuple(kernel_size, nd, "kernel_size", minimum=1)
        self.stride = shapes.ntuple(stride, nd, "stride", minimum=1)
        self.dilation = shapes.ntuple(dilation, nd, "dilation", minimum=1)
        self.output_padding = shapes.ntuple(output_padding, nd, "output_padding", minimum=0)
        self.padding_mode = padding_mode
        dt = np.dtype(dtype or np.float32)
        if self.transposed:
            w_shape = (self.in_channels, self.out_channels // groups) + self.kernel_size
        else:
            w_shape = (self.out_channels, self.in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(w_shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_channels,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        nd = self._nd
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                 stride: IntOrTuple = 1, padding: Union[str, IntOrTuple] = 0,
                 dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0,
                         groups, bias, padding_mode, dtype)

    def _explicit_pads(self, in_size: Sequence[int]) -> list:
        """Pads for F.pad (last dim first, (before, after) each) for a non-zeros padding_mode."""
        pairs = []
        for d, (i, k, s, dil) in enumerate(zip(in_size, self.kernel_size, self.stride, self.dilation)):
            if self.padding == "same":
                pairs.append(shapes.same_padding(i, k, s, dil))
            elif self.padding == "valid":
                pairs.append((0, 0))
            else:
                pairs.append((self.padding[d], self.padding[d]))
        flat = []
        for before, after in reversed(pairs):
            flat += [before, after]
        return flat

    def forward(self, input: Tensor) -> Tensor:
        fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self._nd]
        if self.padding_mode == "zeros":
            return fn(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if not isinstance(input, Tensor) or input.ndim not in (self._nd + 1, self._nd + 2):
            return fn(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)   # let the functional layer report the bad input
        padded = input.pad(self._explicit_pads(input.shape[-self._nd:]), self.padding_mode)
        return fn(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                 stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                 groups: int = 1, bias: bool = True, dilation: IntOrTuple = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding_mode is supported, got {padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a tuple of ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, dtype)

    def _output_padding(self, input: Tensor, output_size: Optional[Sequence[int]]) -> Tuple[int, ...]:
        if output_size is None:
            return self.output_padding
        nd = self._nd
        sizes = [int(v) for v in (output_size.shape if isinstance(output_size, Tensor) else output_size)]
        non_spatial = input.ndim - nd
        if len(sizes) == non_spatial + nd:
            sizes = sizes[non_spatial:]
        if len(sizes) != nd:
            raise ValueError(f"{type(self).__name__}: for {nd}D input, output_size must have {nd} or "
                             f"{non_spatial + nd} elements (got {len(sizes)})")
        return shapes.conv_transpose_output_padding(input.shape[-nd:], sizes, self.kernel_size,
                                                    self.stride, self.padding, self.dilation)

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[self._nd]
        if output_size is not None and (not isinstance(input, Tensor) or
                                        input.ndim not in (self._nd + 1, self._nd + 2)):
            raise ValueError(f"{type(self).__name__}: expected a {self._nd + 1}D or {self._nd + 2}D "
                             f"input Tensor, got {getattr(input, 'shape', type(input).__name__)}")
        output_padding = self._output_padding(input, output_size)
        return fn(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                  self.groups, self.dilation)


class Conv1d(_Conv):
    """1-D convolution layer: (N, C_in, L) -> (N, C_out, L_out); weight (C_out, C_in/groups, k)."""
    _nd = 1


class Conv2d(_Conv):
    """2-D convolution layer: (N, C_in, H, W) -> (N, C_out, H_out, W_out);
    weight (C_out, C_in/groups, kH, kW)."""
    _nd = 2


class Conv3d(_Conv):
    """3-D convolution layer: (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out);
    weight (C_out, C_in/groups, kD, kH, kW)."""
    _nd = 3


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution layer: (N, C_in, L) -> (N, C_out, L_out);
    weight (C_in, C_out/groups, k)."""
    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution layer: (N, C_in, H, W) -> (N, C_out, H_out, W_out);
    weight (C_in, C_out/groups, kH, kW)."""
    _nd = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution layer: (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out);
    weight (C_in, C_out/groups, kD, kH, kW)."""
    _nd = 3
