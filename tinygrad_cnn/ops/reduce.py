"""Reductions and the softmax family. Backward re-expands the gradient to the input's shape."""
import numpy as np

from ..engine import Function
from ..tensor import Tensor


def _keep(g: Tensor, shape, dims, keepdim: bool) -> Tensor:
    """Reshape a reduced gradient so it broadcasts against the input (dims kept as size 1)."""
    if keepdim:
        return g
    return g.reshape(tuple(1 if i in dims else s for i, s in enumerate(shape)))


def sum_dims(a: np.ndarray, dims, keepdim: bool) -> np.ndarray:
    """``np.sum(a, axis=dims, keepdims=keepdim)``, faster for a C-contiguous array summed over
    several dims: neighbouring dims of the same kind are merged, and the innermost summed run
    goes first (a contiguous reduction). A conv's bias gradient, the sum of (256, 6, 28, 28)
    over (0, 2, 3), 330 -> 186 us."""
    dims = tuple(dims)
    if a.ndim < 3 or len(dims) < 2 or not a.flags.c_contiguous or a.size == 0:
        return np.sum(a, axis=dims, keepdims=keepdim)
    runs = []          # [size, summed] of each run of neighbouring dims
    for i, size in enumerate(a.shape):
        if runs and runs[-1][1] == (i in dims):
            runs[-1][0] *= size
        else:
            runs.append([size, i in dims])
    m = a.reshape([size for size, _ in runs])
    for axis in reversed(range(len(runs))):
        if runs[axis][1]:
            m = m.sum(axis=axis)
    keep = [1 if i in dims else size for i, size in enumerate(a.shape)] if keepdim else \
        [size for i, size in enumerate(a.shape) if i not in dims]
    return m.reshape(keep)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return sum_dims(x.data, dims, keepdim)

    @staticmethod
    def backward(ctx, g):
        return _keep(g, ctx.shape, ctx.dims, ctx.keepdim).expand(*ctx.shape), None, None


class AMax(Function):
    """max/min over dims (values only); ties share the gradient equally (as torch.amax)."""
    @staticmethod
    def forward(ctx, x, dims, keepdim, is_max):
        out = (np.max if is_max else np.min)(x.data, axis=dims, keepdims=True)
        ctx.mask = x.data == out
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return out if keepdim else out.reshape([s for i, s in enumerate(x.shape) if i not in dims])

    @staticmethod
    def backward(ctx, g):
        mask = ctx.mask.astype(g.dtype)
        weight = Tensor(mask / mask.sum(axis=ctx.dims, keepdims=True))
        return _keep(g, ctx.shape, ctx.dims, ctx.keepdim) * weight, None, None, None


class MaxDim(Function):
    """max/min along one dim: (values, indices); the gradient goes to the index (scatter)."""
    @staticmethod
    def forward(ctx, x, dim, keepdim, is_max):
        if x.shape[dim] == 0:
            raise IndexError(f"max()/min(): dimension {dim} has size 0")
        idx = (np.argmax if is_max else np.argmin)(x.data, axis=dim, keepdims=True)
        values = np.take_along_axis(x.data, idx, axis=dim)
        ctx.shape, ctx.dim, ctx.keepdim, ctx.idx = x.shape, dim, keepdim, idx
        if not keepdim:
            values, idx = values.squeeze(dim), idx.squeeze(dim)
        return values, idx.astype(np.int64)

    @staticmethod
    def backward(ctx, g, _g_indices=None):
        from .movement import ScatterAdd
        g = g if ctx.keepdim else g.unsqueeze(ctx.dim)
        return ScatterAdd.apply(g, ctx.dim, ctx.idx, ctx.shape), None, None, None


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        m = np.max(x.data, axis=dims, keepdims=True) if x.size else np.zeros((1,) * x.ndim, x.dtype)
        m = np.where(np.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(x.data - m), axis=dims, keepdims=True)) + m
        ctx.save_for_backward(x)
        ctx.dims, ctx.keepdim, ctx.out = dims, keepdim, out
        return out if keepdim else out.reshape([s for i, s in enumerate(x.shape) if i not in dims])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # d/dx logsumexp = softmax(x); written as exp(x - lse) so it stays differentiable
        lse = x.logsumexp(ctx.dims, keepdim=True)
        return _keep(g, x.shape, ctx.dims, ctx.keepdim) * (x - lse).exp(), None, None


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        e = np.exp(x.data - np.max(x.data, axis=dim, keepdims=True))
        out = e / np.sum(e, axis=dim, keepdims=True)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum(ctx.dim, keepdim=True)), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, dim):
        shifted = x.data - np.max(x.data, axis=dim, keepdims=True)
        out = shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g - out.exp() * g.sum(ctx.dim, keepdim=True), None
