"""Losses that need their own gradient rule (the composite form would give 0 * inf = NaN)."""
import numpy as np

from ..engine import Function


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
