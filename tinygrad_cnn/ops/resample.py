"""Resampling ops: nearest / linear interpolation and bed-of-nails unpooling.

All of them are one separable linear map (see :mod:`tinygrad_cnn.kernels.resample`), described
by a :class:`~tinygrad_cnn.kernels.resample.Resampler` passed through as a plain argument:

* ``ResampleNd``: the map itself (a weighted gather): nearest and (bi/tri)linear upsampling,
  and the strided slice that is bed-of-nails' gradient.
* ``ResampleNdTranspose``: its transpose (a weighted scatter-add): the gradient of every
  upsampling (block sums for integer nearest), and bed-of-nails unpooling itself.

Each is the other's gradient, so gradients of any order stay inside this pair.
"""
from __future__ import annotations

from ..engine import Function
from ..kernels.resample import Resampler
from ..tensor import Tensor


class ResampleNd(Function):
    """``x (N, C, *in_size)`` -> ``(N, C, *out_size)`` with the resampler's tables."""

    @staticmethod
    def forward(ctx, x: Tensor, resampler: Resampler):
        ctx.resampler = resampler
        return resampler.apply(x.data)

    @staticmethod
    def backward(ctx, grad):
        return ResampleNdTranspose.apply(grad, ctx.resampler), None


class ResampleNdTranspose(Function):
    """Transpose of :class:`ResampleNd`: ``(N, C, *out_size)`` -> ``(N, C, *in_size)``."""

    @staticmethod
    def forward(ctx, grad: Tensor, resampler: Resampler):
        ctx.resampler = resampler
        return resampler.adjoint(grad.data)

    @staticmethod
    def backward(ctx, grad_grad):
        return ResampleNd.apply(grad_grad, ctx.resampler), None
