"""Resampling kernels: nearest / linear interpolation, bed-of-nails, and their gradients.

Every resampling here is *separable*: along each spatial dimension, output position ``o`` reads
``T`` input positions ``index[t, o]`` with weights ``weight[t, o]``, and the N-d output is the
product over dimensions::

    out[p, od, oh, ow] = sum_{td, th, tw} weight_d[td, od] * weight_h[th, oh] * weight_w[tw, ow]
                                          * x[p, index_d[td, od], index_h[th, oh], index_w[tw, ow]]

* nearest / nearest-exact upsampling: ``T = 1``, weight 1 (each output copies one input),
* linear / bilinear / trilinear: ``T = 2`` (the two neighbours and their ``1 - lambda, lambda``),
* a strided slice ``x[::s]``: ``T = 1``, ``index = s * o``, weight 1.

:func:`separable_resample` computes that sum (a gather); :func:`separable_resample_adjoint` is
its exact transpose (a scatter-add).  The transpose is every gradient:

* the gradient of nearest upsampling is the adjoint with the same tables; for an integer scale
  it is a sum over each ``s x s`` block,
* bed-of-nails unpooling (each value in the top-left corner of its block, zeros elsewhere) *is*
  the adjoint of the strided slice, and its gradient is the strided slice,
* the gradient of linear interpolation is the adjoint with the linear tables.

1-d and 2-d problems are lifted to ``(P, D, H, W)`` with 1-tap identity tables for the missing
dimensions.  Index and weight tables are computed in numpy with PyTorch's exact floating-point
recipe (float32 arithmetic for float32 inputs) so that the chosen neighbours match PyTorch's.
Kernels run under ``NUMBA_DISABLE_JIT=1`` too; slow loop references are at the end.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence, Tuple

import numpy as np
from numba import njit, prange
from . import parallel_kernel

from .pool import lift3, lift_planes

Table = Tuple[np.ndarray, np.ndarray]          # (index (T, out) int64, weight (T, out) float)

# --------------------------------------------------------------------------------------------
# tables (numpy), PyTorch's arithmetic
# --------------------------------------------------------------------------------------------


def _torch_scale(in_size: int, out_size: int, scale_factor: Optional[float], dtype) -> np.floating:
    """PyTorch's ``compute_scales_value``: ``1/scale_factor`` if given, else ``in/out``, in dtype."""
    if scale_factor is not None and scale_factor > 0:
        return dtype(1.0 / scale_factor)
    return dtype(in_size) / dtype(out_size)


def identity_table(size: int, dtype=np.float64) -> Table:
    """One tap per position, weight 1: ``out[o] = x[o]`` (the lifted missing dimensions)."""
    return np.arange(size, dtype=np.int64)[None], np.ones((1, size), dtype)


def nearest_table(in_size: int, out_size: int, scale_factor: Optional[float] = None,
                  exact: bool = False, dtype=np.float32) -> Table:
    """Nearest (``src = floor(o * scale)``) or nearest-exact (``floor((o + 0.5) * scale)``),
    clipped to ``in_size - 1``; the scale is float32 arithmetic as in PyTorch (no short-cut
    for ``out == in``: with ``scale_factor=1.1`` a length-5 axis maps to ``[0, 0, 1, 2, 3]``)."""
    o = np.arange(out_size, dtype=np.int64)
    scale = _torch_scale(in_size, out_size, scale_factor, np.float32)
    if exact:
        src = np.floor(((o + 0.5) * np.float64(scale)).astype(np.float32))
    else:
        src = np.floor(o.astype(np.float32) * scale)
    index = np.minimum(src.astype(np.int64), in_size - 1)
    return index[None], np.ones((1, out_size), dtype)


def linear_table(in_size: int, out_size: int, scale_factor: Optional[float] = None,
                 align_corners: bool = False, dtype=np.float32) -> Table:
    """The two neighbours ``i0, i1`` of each output and their weights ``1 - lambda, lambda``.

    Source coordinate: ``o * (in-1)/(out-1)`` with ``align_corners``, else
    ``(o + 0.5) * scale - 0.5`` clipped at 0 (PyTorch's ``area_pixel_compute_source_index``).
    """
    if in_size == out_size:
        return identity_table(out_size, dtype)
    o = np.arange(out_size, dtype=np.int64)
    if align_corners:
        scale = dtype(in_size - 1) / dtype(out_size - 1) if out_size > 1 else dtype(0)
        real = scale * o.astype(dtype)
    else:
        scale = _torch_scale(in_size, out_size, scale_factor, dtype)
        real = _fused_source_index(scale, o, dtype)
        real = np.where(real < 0, dtype(0), real).astype(dtype)
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lam = np.clip(real - i0.astype(dtype), dtype(0), dtype(1)).astype(dtype)
    i1 = i0 + (i0 < in_size - 1)
    return np.stack([i0, i1]), np.stack([dtype(1) - lam, lam]).astype(dtype)


def _fused_source_index(scale, o, dtype):
    """``scale * (o + 0.5) - 0.5`` rounded once, as the fused multiply-add of PyTorch's
    AVX2 / AVX-512 CPU kernels computes it.  For float32 the float64 evaluation is exact
    before the final rounding; for float64 the (1-ulp) difference does not matter."""
    if dtype == np.float32:
        return (np.float64(scale) * (np.asarray(o, np.float64) + 0.5) - 0.5).astype(np.float32)
    return dtype(scale) * (np.asarray(o, dtype) + dtype(0.5)) - dtype(0.5)


def strided_table(small_size: int, stride: int, dtype=np.float32) -> Table:
    """The strided slice ``x[::stride]`` of a length ``small_size * stride`` axis."""
    return (np.arange(small_size, dtype=np.int64) * stride)[None], np.ones((1, small_size), dtype)


# --------------------------------------------------------------------------------------------
# jitted kernels
# --------------------------------------------------------------------------------------------


@parallel_kernel(cache=True)
def separable_resample(x, index_d, weight_d, index_h, weight_h, index_w, weight_w):
    """``x (P, D, H, W)`` -> ``(P, oD, oH, oW)``, the weighted separable gather above."""
    P = x.shape[0]
    oD, oH, oW = index_d.shape[1], index_h.shape[1], index_w.shape[1]
    Td, Th, Tw = index_d.shape[0], index_h.shape[0], index_w.shape[0]
    out = np.empty((P, oD, oH, oW), x.dtype)
    for p in prange(P):
        plane = x[p]
        for od in range(oD):
            for oh in range(oH):
                out_row = out[p, od, oh]
                out_row[:] = 0.0
                for td in range(Td):
                    for th in range(Th):
                        row = plane[index_d[td, od], index_h[th, oh]]
                        weight_dh = weight_d[td, od] * weight_h[th, oh]
                        for ow in range(oW):
                            along_w = weight_w[0, ow] * row[index_w[0, ow]]
                            for tw in range(1, Tw):
                                along_w += weight_w[tw, ow] * row[index_w[tw, ow]]
                            out_row[ow] += weight_dh * along_w
    return out


@parallel_kernel(cache=True)
def separable_resample_adjoint(grad, index_d, weight_d, index_h, weight_h, index_w, weight_w,
                               D, H, W):
    """Transpose of :func:`separable_resample`: ``grad (P, oD, oH, oW)`` is scatter-added back
    with the same weights into zeros ``(P, D, H, W)``."""
    P, oD, oH, oW = grad.shape
    Td, Th, Tw = index_d.shape[0], index_h.shape[0], index_w.shape[0]
    out = np.empty((P, D, H, W), grad.dtype)
    for p in prange(P):
        plane = out[p]
        plane[:] = 0.0
        for od in range(oD):
            for oh in range(oH):
                grad_row = grad[p, od, oh]
                for td in range(Td):
                    for th in range(Th):
                        row = plane[index_d[td, od], index_h[th, oh]]
                        weight_dh = weight_d[td, od] * weight_h[th, oh]
                        for ow in range(oW):
                            g = weight_dh * grad_row[ow]
                            for tw in range(Tw):
                                row[index_w[tw, ow]] += weight_w[tw, ow] * g
    return out


# --------------------------------------------------------------------------------------------
# N-d entry point
# --------------------------------------------------------------------------------------------


class Resampler:
    """One separable resampling ``(N, C, *in_size) -> (N, C, *out_size)`` and its transpose.

    Build with :meth:`nearest`, :meth:`linear` or :meth:`strided_slice`; :meth:`apply` gathers,
    :meth:`adjoint` scatters back.  Weights are kept in the input dtype (PyTorch's opmath).
    """

    def __init__(self, in_size: Sequence[int], out_size: Sequence[int], tables: Sequence[Table]):
        self.ndim = len(in_size)
        self.in_size = tuple(int(s) for s in in_size)
        self.out_size = tuple(int(s) for s in out_size)
        lifted = [identity_table(1)] * (3 - self.ndim) + list(tables)
        self.tables = lifted
        self._cast = {}

    def _flat_tables(self, dtype) -> tuple:
        key = np.dtype(dtype).str
        if key not in self._cast:
            self._cast[key] = tuple(a for index, weight in self.tables
                                    for a in (index, np.ascontiguousarray(weight, dtype=dtype)))
        return self._cast[key]

    @classmethod
    def nearest(cls, in_size: Sequence[int], out_size: Sequence[int],
                scale_factors: Sequence[Optional[float]], exact: bool = False) -> "Resampler":
        """Nearest (``exact=False``, PyTorch's 'nearest') or 'nearest-exact' upsampling."""
        tables = [nearest_table(i, o, s, exact) for i, o, s in zip(in_size, out_size, scale_factors)]
        return cls(in_size, out_size, tables)

    @classmethod
    def linear(cls, in_size: Sequence[int], out_size: Sequence[int],
               scale_factors: Sequence[Optional[float]], align_corners: bool,
               dtype=np.float32) -> "Resampler":
        """Linear / bilinear / trilinear interpolation; the weights are computed in ``dtype``, which
        must be the dtype of the arrays it will be applied to."""
        tables = [linear_table(i, o, s, align_corners, np.dtype(dtype).type)
                  for i, o, s in zip(in_size, out_size, scale_factors)]
        return cls(in_size, out_size, tables)

    @classmethod
    def strided_slice(cls, small_size: Sequence[int], stride: Sequence[int]) -> "Resampler":
        """``x[..., ::s_d, ::s_h, ::s_w]`` from ``small * stride`` to ``small``; its adjoint is
        bed-of-nails unpooling."""
        big = [n * s for n, s in zip(small_size, stride)]
        return cls(big, small_size, [strided_table(n, s) for n, s in zip(small_size, stride)])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, *in_size)`` -> ``(N, C, *out_size)``."""
        batch = x.shape[:x.ndim - self.ndim]
        out = separable_resample(lift_planes(x, self.ndim), *self._flat_tables(x.dtype))
        return out.reshape(batch + self.out_size)

    def adjoint(self, grad: np.ndarray) -> np.ndarray:
        """Transpose: ``(N, C, *out_size)`` -> ``(N, C, *in_size)``."""
        batch = grad.shape[:grad.ndim - self.ndim]
        out = separable_resample_adjoint(lift_planes(grad, self.ndim), *self._flat_tables(grad.dtype),
                                         *lift3(self.in_size, 1))
        return out.reshape(batch + self.in_size)


# --------------------------------------------------------------------------------------------
# plain loop references (slow, obviously correct; the oracles of the kernel tests)
# --------------------------------------------------------------------------------------------


def nearest_reference(x: np.ndarray, out_size: Sequence[int], scale_factors: Sequence[Optional[float]],
                      exact: bool = False) -> np.ndarray:
    """Nearest / nearest-exact interpolation of ``x (N, C, *spatial)`` element by element."""
    N, C, *spatial = x.shape
    out = np.empty((N, C, *out_size), x.dtype)
    f32 = np.float32

    def source(o, n_in, n_out, s):
        scale = f32(1.0 / s) if s else f32(n_in) / f32(n_out)
        real = f32(np.float64(o + 0.5) * np.float64(scale)) if exact else f32(o) * scale
        return min(int(math.floor(real)), n_in - 1)

    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(s) for s in out_size]):
            src = tuple(source(o[i], spatial[i], out_size[i], scale_factors[i]) for i in range(len(o)))
            out[(n, c) + o] = x[(n, c) + src]
    return out


def linear_reference(x: np.ndarray, out_size: Sequence[int], scale_factors: Sequence[Optional[float]],
                     align_corners: bool) -> np.ndarray:
    """(Bi/tri)linear interpolation of ``x (N, C, *spatial)``: each output is the weighted sum of
    the 2^d corners around its source point."""
    N, C, *spatial = x.shape
    t = x.dtype.type
    out = np.empty((N, C, *out_size), x.dtype)

    def neighbours(o, n_in, n_out, s):
        if n_in == n_out:
            return [(o, t(1.0))]
        if align_corners:
            real = (t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)) * t(o)
        else:
            scale = t(1.0 / s) if s else t(n_in) / t(n_out)
            real = max(t(_fused_source_index(scale, o, t)), t(0))
        i0 = min(int(math.floor(real)), n_in - 1)
        lam = min(max(real - t(i0), t(0)), t(1))
        return [(i0, t(1) - lam), (min(i0 + 1, n_in - 1), lam)]

    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(s) for s in out_size]):
            corners = [neighbours(o[i], spatial[i], out_size[i], scale_factors[i]) for i in range(len(o))]
            total = 0.0
            for corner in itertools.product(*corners):
                weight = 1.0
                for _, w in corner:
                    weight *= float(w)
                total += weight * float(x[(n, c) + tuple(i for i, _ in corner)])
            out[(n, c) + o] = total
    return out


def bed_of_nails_reference(x: np.ndarray, scale: Sequence[int]) -> np.ndarray:
    """Bed-of-nails of ``x (N, C, *spatial)``: ``out[..., i*s] = x[..., i]``, zeros elsewhere."""
    N, C, *spatial = x.shape
    out = np.zeros((N, C, *[n * s for n, s in zip(spatial, scale)]), x.dtype)
    for n, c in itertools.product(range(N), range(C)):
        for i in itertools.product(*[range(s) for s in spatial]):
            out[(n, c) + tuple(a * s for a, s in zip(i, scale))] = x[(n, c) + i]
    return out
