"""Batch normalisation as one Function (Numba kernels forward, backward in Tensor ops or fused).

Training mode, per channel c over the ``M = N * d1 * d2 * ...`` values of the batch::

    mean = sum(x) / M,  var = sum((x - mean)^2) / M,  invstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * invstd,  y = xhat * weight + bias

    dL/dx = weight * invstd * (g - mean(g) - xhat * mean(g * xhat))
    dL/dweight = sum(g * xhat),  dL/dbias = sum(g)

Eval mode uses the running statistics, so the layer is a per-channel affine map.

The forward also updates the running statistics in place (as PyTorch's kernel does), so the
batch statistics are computed once. Backward has two paths with the same numbers:

* when the gradient itself is being recorded (``create_graph=True``, grad mode on inside
  backward) it is written with Tensor ops, so second derivatives (gradgradcheck) work;
* otherwise nothing is recorded anyway, so it runs one fused Numba kernel
  (``kernels/norm.py``: per channel, the two sums and then the input gradient) instead of a
  dozen small ops -- the path of every training step.

The forward is fused the same way: per channel, the statistics and then normalise + affine.

``tests/test_layers.py`` checks that both paths agree.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..engine import Function, is_grad_enabled
from ..kernels import norm as K
from ..tensor import Tensor


def channel_view(a: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector of shape (C,) reshaped to broadcast against (N, C, d1, ...)."""
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def _reduce_dims(ndim: int) -> Tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


class BatchNorm(Function):
    """y = (x - mean) * invstd * weight + bias over channel dim 1 of ``(N, C, *)``.

    ``weight`` / ``bias`` may be None (affine=False). In training the batch statistics are used
    and, when ``running_mean`` / ``running_var`` Tensors are given, they are updated in place with
    ``momentum`` (``running_var`` with the unbiased variance, as PyTorch).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xd = np.ascontiguousarray(x.data)
        dt = xd.dtype
        x3 = xd.reshape(xd.shape[0], xd.shape[1], -1)
        out = np.empty_like(xd)
        out3, c = out.reshape(x3.shape), xd.shape[1]
        if training:
            # statistics, then normalise + affine, one job per channel (kernels/norm.py)
            mean, invstd, scale, shift = (np.empty(c, dt) for _ in range(4))
            w = np.ones(c, dt) if weight is None else weight.data.astype(dt, copy=False)
            b = np.zeros(c, dt) if bias is None else bias.data.astype(dt, copy=False)
            mean64, var = K.forward_train(x3, w, b, float(eps), mean, invstd, scale, shift, out3)
            if running_mean is not None:
                m = xd.size // c
                unbiased = var * (m / (m - 1)) if m > 1 else var
                for stat, batch in ((running_mean, mean64), (running_var, unbiased)):
                    stat.data[...] = (1 - momentum) * stat.data + momentum * batch
                    stat._version += 1
        else:
            mean = running_mean.data.astype(dt, copy=False)
            invstd = (1.0 / np.sqrt(running_var.data.astype(np.float64) + eps)).astype(dt)
            scale = invstd if weight is None else invstd * weight.data
            shift = np.zeros_like(mean) if bias is None else bias.data
            K.normalize(x3, mean, scale.astype(dt, copy=False), shift.astype(dt, copy=False), out3)
        ctx.save_for_backward(x, weight)
        ctx.mean, ctx.invstd, ctx.training, ctx.eps = mean, invstd, training, eps
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if is_grad_enabled():
            gx, gw, gb = _backward_tensor_ops(g, x, weight, ctx.mean, ctx.invstd, ctx.training, ctx.eps)
        else:
            gx, gw, gb = _backward_fused(g.data, x.data, None if weight is None else weight.data,
                                         ctx.mean, ctx.invstd, ctx.training)
        return (gx if needs[0] else None, gw if needs[1] else None, gb if needs[2] else None,
                None, None, None, None, None)


def _backward_tensor_ops(g: Tensor, x: Tensor, weight: Optional[Tensor], mean: np.ndarray,
                         invstd: np.ndarray, training: bool, eps: float):
    """The gradient as a recorded graph of Tensor ops (differentiable again)."""
    dims = _reduce_dims(x.ndim)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        # recompute the statistics from x so that their dependence on x is part of the graph
        xc = x - x.mean(dims, keepdim=True)
        inv = ((xc * xc).mean(dims, keepdim=True) + eps).sqrt().reciprocal()
    else:
        xc = x - Tensor(mean.reshape(shape))
        inv = Tensor(invstd.reshape(shape))
    xhat = xc * inv
    gb = g.sum(dims)
    gw = (g * xhat).sum(dims)
    scale = inv if weight is None else inv * weight.reshape(shape)
    if training:
        gx = scale * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
    else:
        gx = g * scale
    return gx, gw, gb


def _backward_fused(g: np.ndarray, x: np.ndarray, weight: Optional[np.ndarray], mean: np.ndarray,
                    invstd: np.ndarray, training: bool):
    """The same gradient in one fused Numba kernel (used when no graph is being recorded)."""
    dt = g.dtype
    g = np.ascontiguousarray(np.broadcast_to(g, x.shape))
    x = np.ascontiguousarray(x)
    g3, x3 = g.reshape(g.shape[0], g.shape[1], -1), x.reshape(g.shape[0], g.shape[1], -1)
    scale = (invstd if weight is None else invstd * weight).astype(dt, copy=False)
    if training:
        # gx = scale * (g - sum(g)/m - (x - mean) * invstd^2 * sum(g * (x - mean))/m), one job
        # per channel; k and shift are its two per-channel factors
        gx = np.empty_like(g)
        k, shift = np.empty(len(mean), dt), np.empty(len(mean), dt)
        gb, g_xc = K.backward_train(g3, x3, mean, invstd, scale, k, shift, gx.reshape(g3.shape))
    else:
        gb = np.sum(g, axis=(0,) + tuple(range(2, g.ndim)), dtype=np.float64)
        g_xc = np.sum(g * (x - channel_view(mean, x.ndim)), axis=(0,) + tuple(range(2, g.ndim)), dtype=np.float64)
        gx = g * channel_view(scale, g.ndim)
    gw = g_xc * invstd                                  # sum(g * xhat)
    return Tensor(gx.astype(dt, copy=False)), Tensor(gw.astype(dt)), Tensor(gb.astype(dt))
