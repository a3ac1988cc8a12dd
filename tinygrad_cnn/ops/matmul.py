"""Matrix product with PyTorch's rules for 1-D operands and batch broadcasting, and the linear
layer. BLAS does the work, on the library's threads (kernels/blas.py)."""
import numpy as np

from ..engine import Function
from ..kernels import blas


class MatMul(Function):
    """(..., n, k) @ (..., k, m) -> (..., n, m); batch dims broadcast, the engine sums them back."""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return blas.matmul(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = MatMul.apply(g, b.transpose(-1, -2)) if ctx.needs_input_grad[0] else None
        gb = MatMul.apply(a.transpose(-1, -2), g) if ctx.needs_input_grad[1] else None
        return ga, gb


class Linear(Function):
    """x @ W^T + b for x (..., in), W (out, in), b (out,), () or None: one graph node where
    matmul + transpose + add would make three (F.linear, nn.Linear).

    Backward: dx = g @ W, dW = g^T @ x and db = the sum of g over the leading dims, with the
    leading dims of x and g flattened into one -- written with MatMul, so differentiable again.
    """
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = blas.matmul(x.data, weight.data.T)
        if bias is not None:
            if np.result_type(out, bias.data) == out.dtype:
                out += bias.data            # out is a fresh array: add in place
            else:
                out = out + bias.data
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        n_out, n_in = weight.shape
        g2 = g.reshape(-1, n_out)                       # (M, out), M = product of leading dims
        gx = MatMul.apply(g2, weight).reshape(x.shape) if need_x else None
        gw = MatMul.apply(g2.t(), x.reshape(-1, n_in)) if need_w else None
        gb = g2.sum(0) if need_b else None              # the engine sums a () bias further
        return gx, gw, gb


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
