"""Element-wise kernels that NumPy lacks (erf), jitted with Numba; plain loops without JIT."""
import math

import numpy as np
from numba import njit, prange
from . import MEMORY_BOUND_MIN_WORK, parallel_kernel


@parallel_kernel(cache=True)      # compute-bound: the default threshold
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


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def _relu_backward_flat(g, y, out):
    for i in prange(g.size):
        out[i] = g[i] if y[i] > 0 else 0.0


def relu_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``g`` where ``y > 0``, else 0 (ReLU's backward from its output ``y``), in one pass."""
    y = np.ascontiguousarray(y).reshape(np.shape(y))
    flat_g = np.ascontiguousarray(np.broadcast_to(g, y.shape)).reshape(-1)
    out = np.empty(y.shape, dtype=g.dtype)
    _relu_backward_flat(flat_g, y.reshape(-1), out.reshape(-1))
    return out


def relu_backward_reference(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(y > 0, g, np.zeros((), g.dtype)).astype(g.dtype)


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def _relu_flat(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 or v != v else 0.0      # NaN passes through, as in PyTorch


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) element-wise, NaN kept (4x faster than ``np.maximum`` here, which has no
    vectorised NaN-propagating loop for float32 in this NumPy build)."""
    x = np.ascontiguousarray(x).reshape(np.shape(x))     # (ascontiguousarray makes 0-d 1-d)
    out = np.empty_like(x)
    _relu_flat(x.reshape(-1), out.reshape(-1))
    return out


def relu_reference(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), x, np.maximum(x, 0)).astype(x.dtype)


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def _add_flat(a, b, out):
    for i in prange(a.size):
        out[i] = a[i] + b[i]


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``; for two C-contiguous float arrays of one shape and dtype a Numba pass that can
    use several threads (NumPy's add runs on one; a ResNet-20 residual add of 2M floats), else
    NumPy's broadcasting add."""
    if (a.shape != b.shape or a.dtype != b.dtype or a.dtype.kind != "f" or a.ndim == 0
            or not (a.flags.c_contiguous and b.flags.c_contiguous)):
        return a + b
    out = np.empty_like(a)
    _add_flat(a.reshape(-1), b.reshape(-1), out.reshape(-1))
    return out
