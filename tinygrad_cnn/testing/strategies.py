"""Hypothesis strategies for property-testing ops (yours or the library's).

    from hypothesis import given
    from tinygrad_cnn.testing.strategies import shapes, broadcastable_shapes, arrays
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from hypothesis import strategies as st

__all__ = ["shapes", "broadcastable_shapes", "arrays", "tensors"]


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5) -> st.SearchStrategy:
    """Tuples of ints usable as tensor shapes."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def broadcastable_shapes(draw, min_dims: int = 0, max_dims: int = 4, max_side: int = 4) -> Tuple[tuple, tuple]:
    """A pair of shapes that broadcast together (some dims 1, some missing on one side)."""
    full = draw(shapes(min_dims, max_dims, 1, max_side))
    def thin(shape):
        drop = draw(st.integers(0, len(shape)))
        return tuple(1 if draw(st.booleans()) else s for s in shape[drop:])
    return thin(full), tuple(full) if draw(st.booleans()) else thin(full)


@st.composite
def arrays(draw, shape=None, dtype=np.float64, low: float = -2.0, high: float = 2.0,
           distinct: bool = False) -> np.ndarray:
    """A float array of ``shape`` (drawn if None) from a seeded generator.

    ``distinct=True`` gives well-separated values (no ties), for max-type ops in gradcheck.
    """
    if shape is None:
        shape = draw(shapes())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if distinct:
        vals = (rng.permutation(n) - n / 2) * ((high - low) / max(n, 1))
        return vals.reshape(shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def tensors(shape=None, dtype=np.float64, requires_grad: bool = True, **kw) -> st.SearchStrategy:
    """Tensors wrapping :func:`arrays`."""
    from ..tensor import Tensor
    return arrays(shape, dtype, **kw).map(lambda a: Tensor(a, requires_grad=requires_grad))
