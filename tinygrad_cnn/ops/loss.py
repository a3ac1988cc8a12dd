"""Losses that need their own gradient rule (the composite form would give 0 * inf = NaN)."""
import numpy as np

from ..engine import Function
from ..tensor import Tensor


class BinaryCrossEntropy(Function):
    """-(t log p + (1 - t) log(1 - p)) element-wise, logs clamped at -100 (as PyTorch).

    d/dp = (p - t) / max(p (1 - p), 1e-12): finite at p = 0 and p = 1, where the composite
    ``t * log(p)`` would multiply 0 by inf. d/dt = log(1 - p) - log(p) (clamped logs).
    """
    @staticmethod
    def forward(ctx, p, t):
        ctx.save_for_backward(p, t)
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p.data), -100)
            log_1mp = np.maximum(np.log1p(-p.data), -100)
        return -(t.data * log_p + (1 - t.data) * log_1mp)

    @staticmethod
    def backward(ctx, g):
        p, t = ctx.saved_tensors
        gp = gt = None
        if ctx.needs_input_grad[0]:
            gp = g * (p - t) / (p * (1.0 - p)).clamp(min=1e-12)
        if ctx.needs_input_grad[1]:
            gt = g * ((1.0 - p).log().clamp(min=-100.0) - p.log().clamp(min=-100.0))
        return gp, gt


class NllLoss(Function):
    """``scale * sum -x[n, t[n, ...], ...]`` for log-probabilities x (N, C, *S) and class
    indices t (N, *S): nll_loss's common case (no class weights, no ignored target; scale =
    1/(N*prod(S)) for 'mean', 1 for 'sum') as one graph node instead of gather, mask, multiply
    and two sums.

    The gradient is ``-scale`` at each picked entry and 0 elsewhere; backward multiplies the
    incoming gradient by that constant with a Mul, so it is differentiable again.
    """
    @staticmethod
    def forward(ctx, x, target, scale):
        ctx.index, ctx.scale, ctx.shape = np.expand_dims(target, 1), scale, x.shape
        picked = np.take_along_axis(x.data, ctx.index, axis=1)
        return np.asarray(-picked.sum() * scale, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        pick = np.zeros(ctx.shape, dtype=g.dtype)
        np.put_along_axis(pick, ctx.index, -ctx.scale, axis=1)
        return g * Tensor(pick), None, None
