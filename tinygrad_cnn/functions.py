"""torch-style free functions over Tensors (tinygrad_cnn.where, tinygrad_cnn.exp, ...)."""
from typing import Any

import numpy as np

from .ops.movement import cat, stack  # noqa: F401
from .tensor import Tensor, _operands, _to_array


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """Elements of ``input`` where ``condition`` is true, else of ``other`` (both broadcast)."""
    from .ops.elementwise import Where
    cond = _to_array(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {cond.dtype}")
    a, b = _operands(input, other) if isinstance(input, Tensor) else _operands(Tensor(_to_array(input)), other)
    return Where.apply(cond, a, b)


def maximum(a: Tensor, b: Any) -> Tensor: return a.maximum(b)
def minimum(a: Tensor, b: Any) -> Tensor: return a.minimum(b)
def matmul(a: Tensor, b: Any) -> Tensor: return a.matmul(b)
def exp(x: Tensor) -> Tensor: return x.exp()
def log(x: Tensor) -> Tensor: return x.log()
def sqrt(x: Tensor) -> Tensor: return x.sqrt()
def abs(x: Tensor) -> Tensor: return x.abs()
def relu(x: Tensor) -> Tensor: return x.relu()
def sigmoid(x: Tensor) -> Tensor: return x.sigmoid()
def tanh(x: Tensor) -> Tensor: return x.tanh()
def erf(x: Tensor) -> Tensor: return x.erf()
def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor: return x.clamp(min, max)
def sum(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor: return x.sum(dim, keepdim)
def mean(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor: return x.mean(dim, keepdim)
def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor: return x.logsumexp(dim, keepdim)
def softmax(x: Tensor, dim: int) -> Tensor: return x.softmax(dim)
def log_softmax(x: Tensor, dim: int) -> Tensor: return x.log_softmax(dim)
def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor: return x.flatten(start_dim, end_dim)
def reshape(x: Tensor, shape: Any) -> Tensor: return x.reshape(shape)
def permute(x: Tensor, dims: Any) -> Tensor: return x.permute(*dims)
def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor: return x.transpose(dim0, dim1)
def squeeze(x: Tensor, dim: Any = None) -> Tensor: return x.squeeze(dim)
def unsqueeze(x: Tensor, dim: int) -> Tensor: return x.unsqueeze(dim)
def gather(x: Tensor, dim: int, index: Tensor) -> Tensor: return x.gather(dim, index)
def argmax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor: return x.argmax(dim, keepdim)
def max(x: Tensor, dim: Any = None, keepdim: bool = False): return x.max(dim, keepdim)
def min(x: Tensor, dim: Any = None, keepdim: bool = False): return x.min(dim, keepdim)
def var(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False): return x.var(dim, unbiased, keepdim)
def std(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False): return x.std(dim, unbiased, keepdim)
def is_tensor(x: Any) -> bool: return isinstance(x, Tensor)
def numel(x: Tensor) -> int: return x.numel()
