"""Activation functions and padding with torch.nn.functional's names and arguments."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...ops.matmul import Linear
from ...tensor import Tensor

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "softmax", "log_softmax",
           "pad", "linear", "dropout", "logsumexp"]


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return input.relu()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return input.leaky_relu(negative_slope)


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); ``approximate='tanh'`` uses PyTorch's tanh approximation.

    Built from differentiable ops (erf or tanh), so its gradients of every order come for free.
    """
    if approximate == "none":
        return input * 0.5 * (1.0 + (input * (1.0 / np.sqrt(2.0))).erf())
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * np.sqrt(2.0 / np.pi)
        return input * 0.5 * (1.0 + inner.tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    from ...ops.elementwise import Softplus
    return Softplus.apply(input, float(beta), float(threshold))


def _softmax_dim(input: Tensor, dim: Optional[int]) -> int:
    if dim is None:   # PyTorch's legacy implicit choice
        return 0 if input.ndim in (0, 1, 3) else 1
    return dim


def softmax(input: Tensor, dim: Optional[int] = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably (max subtracted)."""
    x = input if dtype is None else input.to(dtype)
    return x.softmax(_softmax_dim(x, dim))


def log_softmax(input: Tensor, dim: Optional[int] = None, dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``; finite for logits of +-1e4."""
    x = input if dtype is None else input.to(dtype)
    return x.log_softmax(_softmax_dim(x, dim))


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    return input.logsumexp(dim, keepdim)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last dims: ``pad = (left, right, top, bottom, ...)``; modes constant, reflect,
    replicate, circular; negative values crop."""
    return input.pad(pad, mode, value if value is not None else 0.0)


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """x @ W^T + b with W of shape (out_features, in_features)."""
    if bias is not None and bias.shape not in ((weight.shape[0],), ()):
        raise RuntimeError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},) "
                           f"for a weight of shape {tuple(weight.shape)}")
    if weight.ndim == 1 and bias is None:       # as torch: a 1-d weight without bias is x @ w
        return input.matmul(weight)
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"linear: input of shape {tuple(input.shape)} and weight of shape "
                           f"{tuple(weight.shape)} cannot be multiplied (the input's last dim must be "
                           f"in_features = weight.shape[1])")
    return Linear.apply(input, weight, bias)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.dtype.kind != "f":
        raise RuntimeError(f"dropout: input must be a floating-point tensor, got dtype {input.dtype}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    from ...tensor import get_rng
    keep = (get_rng().random(input.shape) >= p).astype(input.dtype) / (1.0 - p)
    return input * Tensor(keep)
