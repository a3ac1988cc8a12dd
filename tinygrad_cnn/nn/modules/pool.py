"""Pooling, unpooling and upsampling layers (torch.nn's classes, arguments and reprs).

They hold no parameters: each forwards to the function of the same name in
:mod:`tinygrad_cnn.nn.functional` (see there for shapes, ties, NaN and errors).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

from ...tensor import Tensor
from .. import functional as F
from .module import Module

__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "BedOfNails",
]

IntOrTuple = Union[int, Sequence[int]]


def _ntuple(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


# --------------------------------------------------------------------------------------------


class _MaxPoolNd(Module):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling of ``(N, C, L)`` -> ``(N, C, L_out)`` (and indices with
    ``return_indices=True``, for :class:`MaxUnpool1d`)."""

    def forward(self, input: Tensor):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool2d(_MaxPoolNd):
    """Max pooling of ``(N, C, H, W)`` -> ``(N, C, H_out, W_out)`` (and flat indices
    ``h * W + w`` with ``return_indices=True``, for :class:`MaxUnpool2d`)."""

    def forward(self, input: Tensor):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool3d(_MaxPoolNd):
    """Max pooling of ``(N, C, D, H, W)`` -> ``(N, C, D_out, H_out, W_out)``."""

    def forward(self, input: Tensor):
        return F.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


# --------------------------------------------------------------------------------------------


class AvgPool1d(Module):
    """Average pooling of ``(N, C, L)`` -> ``(N, C, L_out)``."""

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class _AvgPoolNd(Module):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """Average pooling of ``(N, C, H, W)`` -> ``(N, C, H_out, W_out)``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AvgPool3d(_AvgPoolNd):
    """Average pooling of ``(N, C, D, H, W)`` -> ``(N, C, D_out, H_out, W_out)``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


# --------------------------------------------------------------------------------------------


class _AdaptivePoolNd(Module):
    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """``(N, C, L)`` -> ``(N, C, output_size)`` by averaging; ``output_size=1`` is global
    average pooling."""

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """``(N, C, H, W)`` -> ``(N, C, *output_size)`` by averaging; ``AdaptiveAvgPool2d(1)`` is
    global average pooling."""

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """``(N, C, D, H, W)`` -> ``(N, C, *output_size)`` by averaging."""

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool3d(input, self.output_size)


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """``(N, C, L)`` -> ``(N, C, output_size)`` maxima (and indices)."""

    def forward(self, input: Tensor):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """``(N, C, H, W)`` -> ``(N, C, *output_size)`` maxima (and indices)."""

    def forward(self, input: Tensor):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """``(N, C, D, H, W)`` -> ``(N, C, *output_size)`` maxima (and indices)."""

    def forward(self, input: Tensor):
        return F.adaptive_max_pool3d(input, self.output_size, self.return_indices)


# --------------------------------------------------------------------------------------------


class _MaxUnpoolNd(Module):
    _n = 0

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, self._n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, self._n)
        self.padding = _ntuple(padding, self._n)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Put ``(N, C, L)`` values back at the ``indices`` of a :class:`MaxPool1d`, zeros elsewhere."""
    _n = 1

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool2d(_MaxUnpoolNd):
    """Put ``(N, C, H, W)`` values back where :class:`MaxPool2d` found them, zeros elsewhere;
    ``output_size`` undoes the floor of odd input sizes."""
    _n = 2

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool3d(_MaxUnpoolNd):
    """Put ``(N, C, D, H, W)`` values back where :class:`MaxPool3d` found them."""
    _n = 3

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.max_unpool3d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


# --------------------------------------------------------------------------------------------


class Upsample(Module):
    """Upsampling of ``(N, C, *spatial)`` by :func:`~tinygrad_cnn.nn.functional.interpolate`:
    ``Upsample(scale_factor=2, mode='nearest')`` turns ``[[1, 2], [3, 4]]`` into the 4x4 of
    repeated 2x2 blocks."""

    def __init__(self, size: Optional[IntOrTuple] = None,
                 scale_factor: Optional[Union[float, Sequence[float]]] = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(s) for s in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` for ``(N, C, H, W)``."""

    def __init__(self, size: Optional[IntOrTuple] = None,
                 scale_factor: Optional[Union[float, Sequence[float]]] = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)`` for ``(N, C, H, W)``."""

    def __init__(self, size: Optional[IntOrTuple] = None,
                 scale_factor: Optional[Union[float, Sequence[float]]] = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class BedOfNails(Module):
    """Bed-of-nails unpooling (:func:`~tinygrad_cnn.nn.functional.bed_of_nails`): each value of
    ``(N, C, *spatial)`` in the top-left corner of its ``scale_factor`` block, zeros elsewhere,
    so ``[[1, 2], [3, 4]]`` becomes ``[[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]``.
    PyTorch has no such layer."""

    def __init__(self, scale_factor: IntOrTuple = 2) -> None:
        super().__init__()
        self.scale_factor = scale_factor

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"

    def forward(self, input: Tensor) -> Tensor:
        return F.bed_of_nails(input, self.scale_factor)
