"""Matrix product with PyTorch's rules for 1-D operands and batch broadcasting (BLAS does the work)."""
import numpy as np

from ..engine import Function


class MatMul(Function):
    """(..., n, k) @ (..., k, m) -> (..., n, m); batch dims broadcast, the engine sums them back."""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = MatMul.apply(g, b.transpose(-1, -2)) if ctx.needs_input_grad[0] else None
        gb = MatMul.apply(a.transpose(-1, -2), g) if ctx.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    """torch.matmul: 1-D operands are promoted to matrices and the added dim removed after."""
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise RuntimeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                           f"(inner dimensions {ka} and {kb} differ)")
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise RuntimeError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    out = MatMul.apply(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out
