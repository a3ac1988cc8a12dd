"""Convolutions, as torch.nn.functional: conv1d/2d/3d and conv_transpose1d/2d/3d.

Same names, argument names and order, weight layouts and output sizes as PyTorch:

* ``conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)``
  with input (N, C_in, H, W) (or unbatched (C_in, H, W)), weight (C_out, C_in/groups, kH, kW),
  bias (C_out,), output (N, C_out, H_out, W_out) where, per spatial dim,
  ``out = floor((in + 2*padding - dilation*(k-1) - 1) / stride) + 1``.
* ``conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
  groups=1, dilation=1)`` with input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW),
  output (N, C_out, H_out, W_out) where
  ``out = (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1``.

``padding`` of a convolution may also be a string:

* ``'valid'``: no padding (same as 0).
* ``'same'``: pad so that ``out = ceil(in / stride)``. With stride 1 the output has the input's
  size, as in PyTorch; when the total padding is odd the extra pixel goes at the END (right /
  bottom), as in PyTorch and TensorFlow. Beyond PyTorch (which refuses ``'same'`` with
  stride > 1), strides > 1 are accepted with TensorFlow's convention: total padding
  ``max((out-1)*stride + dilation*(k-1) + 1 - in, 0)``, split with the extra pixel at the end.

Every impossible configuration raises ValueError / TypeError naming the argument and the
numbers before any kernel runs. A transposed convolution is computed as the input-gradient of
the convolution it transposes (``tinygrad_cnn.ops.conv``), not by a separate algorithm.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ... import shapes
from ...ops.conv import ConvNd, ConvTransposeNd
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

IntOrTuple = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], str]


# ----------------------------------------------------------------------------- argument checks

def _check_tensor(value, name: str, fn: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{fn}: {name} must be a Tensor, got {type(value).__name__}")
    if value.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: {name} must be a floating-point (float32 or float64) tensor, "
                        f"got dtype {value.dtype}")


def _check_groups(groups, fn: str) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{fn}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{fn}: groups must be a positive integer, got {groups}")
    return int(groups)


def _check_common(input: Tensor, weight: Tensor, bias: Optional[Tensor], nd: int, fn: str) -> bool:
    """Types, ranks and dtypes shared by conv and conv_transpose. Returns True if unbatched."""
    _check_tensor(input, "input", fn)
    _check_tensor(weight, "weight", fn)
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{fn}: expected input of {nd + 1} dims (unbatched, (C, *spatial)) or "
                         f"{nd + 2} dims (batched, (N, C, *spatial)), got shape {tuple(input.shape)}")
    if weight.ndim != nd + 2:
        raise ValueError(f"{fn}: expected weight of {nd + 2} dims (out/in channels and {nd} kernel "
                         f"sizes), got shape {tuple(weight.shape)}")
    if any(k < 1 for k in weight.shape):
        raise ValueError(f"{fn}: weight has an empty dimension: shape {tuple(weight.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"{fn}: input and weight must have the same dtype, got input {input.dtype} "
                        f"and weight {weight.dtype}")
    if bias is not None:
        _check_tensor(bias, "bias", fn)
        if bias.dtype != input.dtype:
            raise TypeError(f"{fn}: bias must have the input's dtype {input.dtype}, got {bias.dtype}")
    unbatched = input.ndim == nd + 1
    if any(s < 1 for s in input.shape[-nd - 1:]):     # an empty batch is fine, as in PyTorch
        raise ValueError(f"{fn}: input has an empty channel or spatial dimension: shape {tuple(input.shape)}")
    return unbatched


def _check_bias(bias: Optional[Tensor], channels: int, fn: str) -> None:
    if bias is not None and tuple(bias.shape) != (channels,):
        raise ValueError(f"{fn}: bias must have shape ({channels},) (one value per output "
                         f"channel), got shape {tuple(bias.shape)}")


def conv_geometry(in_size: Sequence[int], kernel: Sequence[int], stride: IntOrTuple,
                  padding: Padding, dilation: IntOrTuple, fn: str = "conv"
                  ) -> Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]:
    """Validate conv arguments for spatial ``in_size`` / ``kernel``.

    Returns ``(stride, pad_before, dilation, out_size)`` tuples; ``pad_before`` is the padding
    before each dim (the padding after it is implied by ``out_size``: equal to it except for
    the odd totals of ``'same'``).
    """
    nd = len(kernel)
    stride = shapes.ntuple(stride, nd, "stride", minimum=1)
    dilation = shapes.ntuple(dilation, nd, "dilation", minimum=1)
    if isinstance(padding, str):
        if padding == "valid":
            pad_before, out = (0,) * nd, None
        elif padding == "same":
            pairs = [shapes.same_padding(i, k, s, d) for i, k, s, d in zip(in_size, kernel, stride, dilation)]
            pad_before = tuple(p[0] for p in pairs)
            out = tuple(-(-i // s) for i, s in zip(in_size, stride))
        else:
            raise ValueError(f"{fn}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
        if out is not None:
            return stride, pad_before, dilation, out
        padding = 0
    pad_before = shapes.ntuple(padding, nd, "padding", minimum=0)
    out = tuple(shapes.conv_output_size(i, k, s, p, d, dim=dim)
                for dim, (i, k, s, p, d) in enumerate(zip(in_size, kernel, stride, pad_before, dilation)))
    return stride, pad_before, dilation, out


def _conv(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntOrTuple,
          padding: Padding, dilation: IntOrTuple, groups: int, nd: int) -> Tensor:
    fn = f"conv{nd}d"
    unbatched = _check_common(input, weight, bias, nd, fn)
    groups = _check_groups(groups, fn)
    if unbatched:
        input = input.unsqueeze(0)
    c_in, c_out = input.shape[1], weight.shape[0]
    if c_out % groups != 0:
        raise ValueError(f"{fn}: out_channels (weight.shape[0] = {c_out}) must be divisible by "
                         f"groups ({groups}); weight shape {tuple(weight.shape)}")
    if c_in % groups != 0:
        raise ValueError(f"{fn}: input channels ({c_in}) must be divisible by groups ({groups}); "
                         f"input shape {tuple(input.shape)}")
    if weight.shape[1] * groups != c_in:
        raise ValueError(f"{fn}: given groups={groups} and weight of shape {tuple(weight.shape)}, "
                         f"expected input with {weight.shape[1] * groups} channels "
                         f"(weight.shape[1] * groups), but got {c_in} channels "
                         f"(input shape {tuple(input.shape)})")
    _check_bias(bias, c_out, fn)
    stride, pad, dilation, out = conv_geometry(input.shape[2:], weight.shape[2:], stride, padding,
                                               dilation, fn)
    y = ConvNd.apply(input, weight, bias, stride, pad, dilation, groups, out)
    return y.squeeze(0) if unbatched else y


def conv_transpose_geometry(in_size: Sequence[int], kernel: Sequence[int], stride: IntOrTuple,
                            padding: IntOrTuple, output_padding: IntOrTuple, dilation: IntOrTuple,
                            fn: str = "conv_transpose"
                            ) -> Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]:
    """Validate conv_transpose arguments; returns ``(stride, padding, dilation, out_size)``."""
    nd = len(kernel)
    if isinstance(padding, str):
        raise ValueError(f"{fn}: padding must be an int or a tuple of {nd} ints (string padding "
                         f"is only defined for convolutions), got {padding!r}")
    stride = shapes.ntuple(stride, nd, "stride", minimum=1)
    dilation = shapes.ntuple(dilation, nd, "dilation", minimum=1)
    padding = shapes.ntuple(padding, nd, "padding", minimum=0)
    output_padding = shapes.ntuple(output_padding, nd, "output_padding", minimum=0)
    out = tuple(shapes.conv_transpose_output_size(i, k, s, p, op, d, dim=dim)
                for dim, (i, k, s, p, op, d) in enumerate(zip(in_size, kernel, stride, padding,
                                                               output_padding, dilation)))
    return stride, padding, dilation, out


def _conv_transpose(input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntOrTuple,
                    padding: IntOrTuple, output_padding: IntOrTuple, groups: int,
                    dilation: IntOrTuple, nd: int) -> Tensor:
    fn = f"conv_transpose{nd}d"
    unbatched = _check_common(input, weight, bias, nd, fn)
    groups = _check_groups(groups, fn)
    if unbatched:
        input = input.unsqueeze(0)
    c_in = input.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(f"{fn}: weight of shape {tuple(weight.shape)} expects input with "
                         f"{weight.shape[0]} channels (weight.shape[0]), but got {c_in} channels "
                         f"(input shape {tuple(input.shape)})")
    if c_in % groups != 0:
        raise ValueError(f"{fn}: input channels ({c_in}) must be divisible by groups ({groups})")
    c_out = weight.shape[1] * groups
    _check_bias(bias, c_out, fn)
    stride, pad, dilation, out = conv_transpose_geometry(input.shape[2:], weight.shape[2:], stride,
                                                         padding, output_padding, dilation, fn)
    z = ConvTransposeNd.apply(input, weight, bias, stride, pad, dilation, groups, out)
    return z.squeeze(0) if unbatched else z


# ----------------------------------------------------------------------------- public functions

def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1) -> Tensor:
    """1-D convolution: input (N, C_in, L), weight (C_out, C_in/groups, k) -> (N, C_out, L_out)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1) -> Tensor:
    """2-D convolution: input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW)
    -> (N, C_out, H_out, W_out)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1) -> Tensor:
    """3-D convolution: input (N, C_in, D, H, W), weight (C_out, C_in/groups, kD, kH, kW)
    -> (N, C_out, D_out, H_out, W_out)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> Tensor:
    """1-D transposed convolution: input (N, C_in, L), weight (C_in, C_out/groups, k)
    -> (N, C_out, L_out)."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> Tensor:
    """2-D transposed convolution: input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW)
    -> (N, C_out, H_out, W_out)."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> Tensor:
    """3-D transposed convolution: input (N, C_in, D, H, W), weight (C_in, C_out/groups, kD, kH, kW)
    -> (N, C_out, D_out, H_out, W_out)."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, 3)
