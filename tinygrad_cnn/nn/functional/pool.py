"""Pooling, unpooling and upsampling (torch.nn.functional names, arguments and order).

Downsampling: ``max_pool1d/2d/3d``, ``avg_pool1d/2d/3d``, ``adaptive_avg_pool1d/2d/3d`` (global
average pooling is ``output_size=1``), ``adaptive_max_pool1d/2d/3d``.
Upsampling: ``max_unpool1d/2d/3d`` (put values back where the max was), ``interpolate``
(nearest, nearest-exact, linear, bilinear, trilinear, area) and ``bed_of_nails``.

Inputs are ``(N, C, *spatial)`` or, for the pools and unpools, unbatched ``(C, *spatial)``.
Every argument is checked here, before any kernel runs; errors name the argument and value.

Max pooling follows PyTorch's CPU kernels exactly: windows are scanned in row-major order, the
*first* maximum wins on ties, a NaN always wins (it propagates), and the indices are flat
positions in each (N, C) plane, so they can be fed to PyTorch's ``max_unpool`` and back.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ...kernels.pool import PoolWindows, first_out_of_range
from ...kernels.resample import Resampler
from ...ops.pool import AvgPoolNd, MaxPoolNd, MaxUnpoolNd
from ...ops.resample import ResampleNd, ResampleNdTranspose
from ...shapes import (adaptive_pool_output_size, interpolate_output_size, max_unpool_output_size,
                       ntuple, pool_output_size)
from ...tensor import Tensor

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "interpolate", "upsample", "bed_of_nails",
]

IntOrTuple = Union[int, Sequence[int]]

# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _spatial_size(input: Tensor, n: int, fname: str, batched_only: bool = False) -> Tuple[int, ...]:
    """Check ``input`` is a floating ``(N, C, *spatial)`` (or ``(C, *spatial)``) Tensor; return
    its ``n`` spatial sizes."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{fname}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{fname}: input must be a floating-point Tensor, got dtype {input.dtype}")
    ranks = (n + 2,) if batched_only else (n + 1, n + 2)
    if input.ndim not in ranks:
        want = " or ".join(f"{r}-d" for r in ranks)
        raise ValueError(f"{fname}: expected a {want} input ((N, C, *spatial) with {n} spatial "
                         f"dims{'' if batched_only else ' or unbatched (C, *spatial)'}), "
                         f"got shape {input.shape}")
    spatial = tuple(input.shape[-n:])
    if any(s < 1 for s in spatial) or (input.ndim == n + 2 and input.shape[1] < 1):
        raise ValueError(f"{fname}: expected non-empty spatial dims and channels, got input shape "
                         f"{input.shape}")
    return spatial


def _pool_args(n: int, kernel_size, stride, padding, dilation=1):
    kernel = ntuple(kernel_size, n, "kernel_size", minimum=1)
    if stride is None or (not isinstance(stride, int) and len(tuple(stride)) == 0):
        stride = kernel                           # PyTorch: stride defaults to kernel_size
    stride = ntuple(stride, n, "stride", minimum=1)
    padding = ntuple(padding, n, "padding", minimum=0)
    dilation = ntuple(dilation, n, "dilation", minimum=1)
    return kernel, stride, padding, dilation


@functools.lru_cache(maxsize=256)
def _regular_windows(in_size, kernel, stride, padding, dilation, ceil_mode,
                     count_include_pad=True, divisor_override=None) -> PoolWindows:
    out = tuple(pool_output_size(in_size[i], kernel[i], stride[i], padding[i], dilation[i],
                                 ceil_mode, i) for i in range(len(in_size)))
    return PoolWindows.regular(in_size, kernel, stride, padding, dilation, out,
                               count_include_pad, divisor_override)


@functools.lru_cache(maxsize=256)
def _adaptive_windows(in_size, out_size) -> PoolWindows:
    return PoolWindows.adaptive(in_size, out_size)


# --------------------------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------------------------


def _max_pool(n, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    fname = f"max_pool{n}d"
    in_size = _spatial_size(input, n, fname)
    kernel, stride, padding, dilation = _pool_args(n, kernel_size, stride, padding, dilation)
    windows = _regular_windows(in_size, kernel, stride, padding, dilation, bool(ceil_mode))
    values, indices = MaxPoolNd.apply(input, windows)
    return (values, indices) if return_indices else values


def max_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over sliding windows of ``input (N, C, L)`` -> ``(N, C, L_out)``, and with
    ``return_indices`` the int64 positions of the maxima in ``[0, L)``.

    ``L_out = floor((L + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1`` (ceil with
    ``ceil_mode``, but a window must start inside the input or left padding).  Ties: the first
    maximum wins; NaN propagates.  ``padding`` is at most ``kernel_size // 2``.
    """
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling of ``input (N, C, H, W)`` -> ``(N, C, H_out, W_out)``; with ``return_indices``
    also the int64 flat positions ``h * W + w`` of the maxima (PyTorch's convention, usable by
    :func:`max_unpool2d`).  See :func:`max_pool1d` for sizes, ties and NaN."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max pooling of ``input (N, C, D, H, W)`` -> ``(N, C, D_out, H_out, W_out)``; indices are
    flat positions ``(d * H + h) * W + w``.  See :func:`max_pool1d`."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# --------------------------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------------------------


def _avg_pool(n, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    fname = f"avg_pool{n}d"
    in_size = _spatial_size(input, n, fname)
    kernel, stride, padding, _ = _pool_args(n, kernel_size, stride, padding)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)) \
                or divisor_override == 0:
            raise ValueError(f"{fname}: divisor_override must be a non-zero int or None, "
                             f"got {divisor_override!r}")
        divisor_override = int(divisor_override)
    windows = _regular_windows(in_size, kernel, stride, padding, (1,) * n, bool(ceil_mode),
                               bool(count_include_pad), divisor_override)
    return AvgPoolNd.apply(input, windows)


def avg_pool1d(input: Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over sliding windows of ``input (N, C, L)`` -> ``(N, C, L_out)``.

    The divisor is the window length clipped to the padded input when ``count_include_pad``
    (zeros of the padding count), else the number of real input pixels in the window.
    """
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """Mean pooling of ``input (N, C, H, W)`` -> ``(N, C, H_out, W_out)``; ``divisor_override``
    replaces every window's divisor.  See :func:`avg_pool1d`."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input: Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """Mean pooling of ``input (N, C, D, H, W)`` -> ``(N, C, D_out, H_out, W_out)``.
    See :func:`avg_pool2d`."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# --------------------------------------------------------------------------------------------
# adaptive pooling
# --------------------------------------------------------------------------------------------


def _adaptive(n, input, output_size, fname):
    in_size = _spatial_size(input, n, fname)
    out_size = adaptive_pool_output_size(in_size, output_size)
    return _adaptive_windows(in_size, out_size)


def adaptive_avg_pool1d(input: Tensor, output_size: IntOrTuple) -> Tensor:
    """Average pooling of ``input (N, C, L)`` to exactly ``(N, C, output_size)``: output ``o``
    averages ``[floor(o*L/out), ceil((o+1)*L/out))``.  ``output_size=1`` is global average
    pooling."""
    return AvgPoolNd.apply(input, _adaptive(1, input, output_size, "adaptive_avg_pool1d"))


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, C, *output_size)`` (an int means square; ``None`` keeps that
    input size).  ``output_size=1`` is global average pooling."""
    return AvgPoolNd.apply(input, _adaptive(2, input, output_size, "adaptive_avg_pool2d"))


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """``(N, C, D, H, W)`` -> ``(N, C, *output_size)``; see :func:`adaptive_avg_pool2d`."""
    return AvgPoolNd.apply(input, _adaptive(3, input, output_size, "adaptive_avg_pool3d"))


def _adaptive_max(n, input, output_size, return_indices):
    values, indices = MaxPoolNd.apply(input, _adaptive(n, input, output_size, f"adaptive_max_pool{n}d"))
    return (values, indices) if return_indices else values


def adaptive_max_pool1d(input: Tensor, output_size: IntOrTuple, return_indices: bool = False):
    """Max pooling of ``input (N, C, L)`` to exactly ``(N, C, output_size)`` (windows as in
    :func:`adaptive_avg_pool1d`); indices as in :func:`max_pool1d`."""
    return _adaptive_max(1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """``(N, C, H, W)`` -> ``(N, C, *output_size)`` maxima (and flat indices ``h * W + w``)."""
    return _adaptive_max(2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    """``(N, C, D, H, W)`` -> ``(N, C, *output_size)`` maxima (and flat indices)."""
    return _adaptive_max(3, input, output_size, return_indices)


# --------------------------------------------------------------------------------------------
# max unpooling
# --------------------------------------------------------------------------------------------


def _max_unpool(n, input, indices, kernel_size, stride, padding, output_size):
    fname = f"max_unpool{n}d"
    in_size = _spatial_size(input, n, fname)
    if isinstance(indices, np.ndarray):
        indices = Tensor(indices)
    if not isinstance(indices, Tensor):
        raise TypeError(f"{fname}: indices must be an integer Tensor, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{fname}: indices must be an integer Tensor (as returned by "
                        f"max_pool{n}d(..., return_indices=True)), got dtype {indices.dtype}")
    if indices.shape != input.shape:
        raise ValueError(f"{fname}: indices must have the shape of the input {input.shape}, "
                         f"got {indices.shape}")
    kernel, stride, padding, _ = _pool_args(n, kernel_size, stride, padding)
    out_size = max_unpool_output_size(in_size, kernel, stride, padding, output_size)
    plane = int(np.prod(out_size))
    flat = np.ascontiguousarray(indices.data).reshape(-1)
    bad_at = first_out_of_range(flat, plane)
    if bad_at >= 0:
        bad = flat[bad_at]
        raise ValueError(f"{fname}: found an invalid max index {int(bad)}: indices must lie in "
                         f"[0, {plane}) for an output of spatial size {out_size}")
    if indices.dtype != np.int64:
        indices = Tensor(indices.data.astype(np.int64))
    return MaxUnpoolNd.apply(input, indices, out_size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[Sequence[int]] = None) -> Tensor:
    """Partial inverse of :func:`max_pool1d`: ``input (N, C, L)`` values go to the positions
    ``indices (N, C, L)`` of an all-zero ``(N, C, L_out)``.

    ``L_out = (L - 1) * stride - 2 * padding + kernel_size``, or ``output_size`` to undo the
    floor of an odd input (it must lie strictly within ``stride`` of that value).  The values
    of duplicate indices (only possible with overlapping windows) are *added*: this makes
    max-unpool the exact gradient of max-pool (PyTorch keeps just one of them instead).
    """
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[Sequence[int]] = None) -> Tensor:
    """Partial inverse of :func:`max_pool2d`: ``(N, C, H, W)`` -> ``(N, C, H_out, W_out)``, each
    value put back where its maximum came from, zeros elsewhere.  See :func:`max_unpool1d`."""
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[Sequence[int]] = None) -> Tensor:
    """Partial inverse of :func:`max_pool3d`: ``(N, C, D, H, W)`` -> ``(N, C, D_out, H_out, W_out)``.
    See :func:`max_unpool1d`."""
    return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


# --------------------------------------------------------------------------------------------
# interpolation and bed of nails
# --------------------------------------------------------------------------------------------

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")


@functools.lru_cache(maxsize=256)
def _resampler(mode, in_size, out_size, scales, align_corners, dtype) -> Resampler:
    if mode in _LINEAR_MODES:
        return Resampler.linear(in_size, out_size, scales, align_corners, np.dtype(dtype))
    return Resampler.nearest(in_size, out_size, scales, exact=(mode == "nearest-exact"))


def interpolate(input: Tensor, size: Optional[IntOrTuple] = None,
                scale_factor: Optional[Union[float, Sequence[float]]] = None, mode: str = "nearest",
                align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None) -> Tensor:
    """Resize ``input (N, C, *spatial)`` (1 to 3 spatial dims) to ``size``, or to
    ``floor(spatial * scale_factor)``.

    Modes: ``'nearest'`` (output ``o`` copies input ``floor(o * in/out)``: for an integer scale,
    each pixel becomes an ``s x s`` block), ``'nearest-exact'`` (``floor((o + 0.5) * in/out)``,
    symmetric), ``'linear'`` / ``'bilinear'`` / ``'trilinear'`` for 1 / 2 / 3 spatial dims
    (``align_corners=True`` maps the corner pixels onto each other; default ``False`` treats
    pixels as areas), and ``'area'`` (adaptive average pooling).  With ``scale_factor`` the
    kernels use ``1/scale_factor`` as the step unless ``recompute_scale_factor`` is true, as in
    PyTorch.  The gradient of every mode is its transpose (block sums for integer nearest).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input must be a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-d, 4-d or 5-d input (N, C, *spatial), "
                         f"got shape {input.shape}")
    n = input.ndim - 2
    if mode in _LINEAR_MODES and _LINEAR_MODES[mode] != n:
        raise ValueError(f"interpolate: got {input.ndim}-d input, but {mode} mode needs "
                         f"{_LINEAR_MODES[mode] + 2}-d input")
    if mode not in _LINEAR_MODES and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the interpolating modes "
                         f"linear | bilinear | trilinear, not with mode={mode!r}")
    in_size = _spatial_size(input, n, "interpolate", batched_only=True)
    out_size, scales = interpolate_output_size(in_size, size, scale_factor)
    if mode == "area":
        return AvgPoolNd.apply(input, _adaptive_windows(in_size, out_size))
    if recompute_scale_factor:
        scales = (None,) * n
    return ResampleNd.apply(input, _resampler(mode, in_size, out_size, scales, bool(align_corners),
                                              input.dtype.str))


def upsample(input: Tensor, size: Optional[IntOrTuple] = None,
             scale_factor: Optional[Union[float, Sequence[float]]] = None, mode: str = "nearest",
             align_corners: Optional[bool] = None) -> Tensor:
    """Deprecated PyTorch alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


@functools.lru_cache(maxsize=256)
def _strided_slice(small_size, scale) -> Resampler:
    return Resampler.strided_slice(small_size, scale)


def bed_of_nails(input: Tensor, scale_factor: IntOrTuple = 2) -> Tensor:
    """Bed-of-nails unpooling: each value goes to the top-left corner of its
    ``scale_factor``-sized block, every other position is zero.

    ``input (N, C, *spatial)`` with 1 to 3 spatial dims -> ``(N, C, *(spatial * scale_factor))``.
    The slide's example, ``scale_factor=2``::

        [[1, 2],        [[1, 0, 2, 0],
         [3, 4]]   ->    [0, 0, 0, 0],
                         [3, 0, 4, 0],
                         [0, 0, 0, 0]]

    (nearest upsampling would fill each block with its value instead).  It is the transpose of
    the strided slice ``y[..., ::s, ::s]``, which is therefore its gradient.  PyTorch has no
    such op; a ``ConvTranspose`` with a one-hot kernel and ``stride = kernel_size`` computes
    the same thing.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"bed_of_nails: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"bed_of_nails: expected a 3-d, 4-d or 5-d input (N, C, *spatial), "
                         f"got shape {input.shape}")
    n = input.ndim - 2
    in_size = _spatial_size(input, n, "bed_of_nails", batched_only=True)
    scale = ntuple(scale_factor, n, "scale_factor", minimum=1)
    return ResampleNdTranspose.apply(input, _strided_slice(in_size, scale))
