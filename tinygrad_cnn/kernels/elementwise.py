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
