"""Element-wise kernels that NumPy lacks (erf), jitted with Numba; plain loops without JIT."""
import math

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _erf_flat(x, out):
    for i in prange(x.size):
        out[i] = math.erf(x[i])


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, element-wise, same dtype as ``x``."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    _erf_flat(flat, out)
    return out.reshape(x.shape)


def erf_reference(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x.copy()


@njit(cache=True, parallel=True)
def _relu_backward_flat(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] if y[i] > 0 else 0.0


def relu_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``g`` where ``y > 0``, else 0 (ReLU's backward from its output ``y``), in one pass."""
    y = np.ascontiguousarray(y)
    flat_g = np.ascontiguousarray(np.broadcast_to(g, y.shape)).reshape(-1)
    out = np.empty(y.shape, dtype=g.dtype)
    _relu_backward_flat(flat_g, y.reshape(-1), out.reshape(-1))
    return out


def relu_backward_reference(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(y > 0, g, np.zeros((), g.dtype)).astype(g.dtype)
