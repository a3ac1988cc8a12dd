"""Pooling ops: a family that closes under differentiation.

* ``MaxPoolNd``: max over each window, plus the argmax (flat index per (N, C) plane).
  Its gradient sends each upstream value to where the max was: a scatter by index,
  which *is* ``MaxUnpoolNd``.
* ``MaxUnpoolNd``: scatter-add by index (duplicates add up).  Its gradient reads back from
  where each value was put: a gather by the same index, ``GatherByIndexNd``.
* ``GatherByIndexNd``: gather by index.  Its gradient is the scatter, ``MaxUnpoolNd``.
* ``AvgPoolNd``: windowed mean (regular or adaptive windows, any divisor rule), a linear map.
  Its gradient is its transpose ``AvgPoolNdTranspose`` (each upstream value spread evenly over
  its window), whose gradient is ``AvgPoolNd`` again.

Windows (regular, dilated, ceil-mode, adaptive) are described once by a
:class:`~tinygrad_cnn.kernels.pool.PoolWindows` passed through as a plain argument.
"""
from __future__ import annotations

from typing import Sequence

from ..engine import Function
from ..kernels.pool import PoolWindows, gather_planes, scatter_add_planes
from ..tensor import Tensor


class MaxPoolNd(Function):
    """``values, indices`` of the max over each window of ``x (N, C, *in_size)``."""

    @staticmethod
    def forward(ctx, x: Tensor, windows: PoolWindows):
        values, indices = windows.max(x.data)
        ctx.indices = Tensor(indices)
        ctx.in_size = windows.in_size
        return values, indices

    @staticmethod
    def backward(ctx, grad_values, grad_indices=None):
        # each window's gradient goes to its argmax; windows sharing an argmax add up
        return MaxUnpoolNd.apply(grad_values, ctx.indices, ctx.in_size), None


class MaxUnpoolNd(Function):
    """Scatter ``x (N, C, *S)`` into zeros ``(N, C, *out_size)`` at the flat per-plane
    ``indices (N, C, *S)``, adding values that land on the same position."""

    @staticmethod
    def forward(ctx, x: Tensor, indices: Tensor, out_size: Sequence[int]):
        ctx.indices = indices
        ctx.ndim = len(out_size)
        return scatter_add_planes(x.data, indices.data, out_size)

    @staticmethod
    def backward(ctx, grad):
        return GatherByIndexNd.apply(grad, ctx.indices, ctx.ndim), None, None


class GatherByIndexNd(Function):
    """``out[n, c, s] = src[n, c].flat[indices[n, c, s]]`` over ``ndim`` spatial dims:
    ``src (N, C, *L)``, ``indices (N, C, *S)`` -> ``(N, C, *S)``."""

    @staticmethod
    def forward(ctx, src: Tensor, indices: Tensor, ndim: int):
        ctx.indices = indices
        ctx.src_size = src.shape[src.ndim - ndim:]
        return gather_planes(src.data, indices.data, ndim)

    @staticmethod
    def backward(ctx, grad):
        return MaxUnpoolNd.apply(grad, ctx.indices, ctx.src_size), None, None


class AvgPoolNd(Function):
    """Window sums of ``x (N, C, *in_size)`` divided by each window's divisor."""

    @staticmethod
    def forward(ctx, x: Tensor, windows: PoolWindows):
        ctx.windows = windows
        return windows.mean(x.data)

    @staticmethod
    def backward(ctx, grad):
        return AvgPoolNdTranspose.apply(grad, ctx.windows), None


class AvgPoolNdTranspose(Function):
    """Transpose of :class:`AvgPoolNd`: each value of ``grad (N, C, *out_size)``, divided by its
    divisor, is added to every position of its window -> ``(N, C, *in_size)``."""

    @staticmethod
    def forward(ctx, grad: Tensor, windows: PoolWindows):
        ctx.windows = windows
        return windows.mean_adjoint(grad.data)

    @staticmethod
    def backward(ctx, grad_grad):
        return AvgPoolNd.apply(grad_grad, ctx.windows), None
