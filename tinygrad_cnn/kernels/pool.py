"""Pooling kernels: windowed max / average and the scatter / gather pair by flat index.

Everything here works on a *lifted* 3-d layout ``(P, D, H, W)``: ``P = N * C`` planes, and
1-d / 2-d problems get leading spatial dimensions of size 1 (window 1, stride 1, no padding),
so one kernel serves 1d, 2d and 3d.  A flat index into a plane, ``(d * H + h) * W + w``, is then
exactly PyTorch's index convention for every dimensionality (the leading 1s add nothing).

A pooling window is described per spatial dimension by two small tables built in numpy
(:func:`pool_windows`, :func:`adaptive_windows`):

* ``first[o]``: the first input position of output ``o``'s window that lies inside the input,
* ``count[o]``: how many of its taps (``first, first + step, ...``) lie inside the input,

plus one ``step`` (the dilation) per dimension.  Padding never has to be materialised: taps in
the padding are simply not visited (they would contribute ``-inf`` to a max and ``0`` to a sum).
Regular and adaptive pooling are the same kernel with different tables.  The common case,
windows wholly inside the input without dilation (e.g. 2x2 stride 2), has its own table-free
kernel :func:`window_max_unpadded` (unrolled for 2x2 and 3x3), chosen by :meth:`PoolWindows.max`,
and 2x2 windows with column stride 2 a vectorised one, :func:`window_max_2x2`.

Max-pool semantics follow PyTorch's CPU kernels: the window scans in row-major order, a value
replaces the running maximum if it is *strictly* greater or if it is NaN.  So on ties the first
maximum in scan order wins, and a NaN always propagates (the *last* NaN in the window gives the
index).  A window without any input pixel (possible only with large dilation and padding) gives
``-inf`` and the index of its first tap, as PyTorch does.

Kernels take and return numpy arrays and ints only, run under ``NUMBA_DISABLE_JIT=1`` as plain
Python, and each has a slow loop reference at the end of this file used as the test oracle.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence, Tuple

import numpy as np
from numba import njit, prange
from . import parallel_kernel

# --------------------------------------------------------------------------------------------
# window tables (numpy)
# --------------------------------------------------------------------------------------------


def pool_windows(in_size: int, kernel: int, stride: int, padding: int, dilation: int,
                 out_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables ``(first, count, padded_len)`` of a regular pooling window along one dimension.

    Output ``o``'s window has taps at ``o*stride - padding + j*dilation`` for ``j < kernel``.
    ``padded_len[o]`` is the window length clipped to the padded input, PyTorch's
    ``count_include_pad=True`` divisor factor (only meaningful with ``dilation=1``).
    """
    first = np.empty(out_size, np.int64)
    count = np.empty(out_size, np.int64)
    padded_len = np.empty(out_size, np.int64)
    for o in range(out_size):
        start = o * stride - padding
        j0 = -(start // dilation) if start < 0 else 0          # first tap with position >= 0
        j1 = min(kernel - 1, (in_size - 1 - start) // dilation)  # last tap with position < in_size
        first[o] = start + j0 * dilation
        count[o] = max(j1 - j0 + 1, 0)
        padded_len[o] = min(start + kernel, in_size + padding) - start
    return first, count, padded_len


def adaptive_windows(in_size: int, out_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Tables ``(first, count)`` of adaptive pooling: window ``o`` covers
    ``[floor(o*in/out), ceil((o+1)*in/out))``."""
    o = np.arange(out_size, dtype=np.int64)
    first = (o * in_size) // out_size
    stop = -((-(o + 1) * in_size) // out_size)
    return first, stop - first


# --------------------------------------------------------------------------------------------
# jitted kernels
# --------------------------------------------------------------------------------------------


# Inner loops index rows with ``np.uint64(w)``: an unsigned index tells Numba it cannot be
# negative, so it skips its wrap-around select (``w < 0 -> w + W``), and LLVM can vectorise
# the loop (15x on a global average pool).  The tables guarantee ``0 <= w < W``.


@parallel_kernel(cache=True)
def window_max(x, first_d, count_d, first_h, count_h, first_w, count_w, step_d, step_h, step_w):
    """Max over each window of ``x (P, D, H, W)`` and its flat index in the plane.

    Returns ``values (P, oD, oH, oW)`` (dtype of x) and ``indices (P, oD, oH, oW)`` int64.
    """
    P, D, H, W = x.shape
    oD, oH, oW = first_d.shape[0], first_h.shape[0], first_w.shape[0]
    values = np.empty((P, oD, oH, oW), x.dtype)
    indices = np.empty((P, oD, oH, oW), np.int64)
    for p in prange(P):
        plane = x[p]
        for od in range(oD):
            for oh in range(oH):
                out_row = values[p, od, oh]
                index_row = indices[p, od, oh]
                for ow in range(oW):
                    best = -np.inf
                    best_index = (first_d[od] * H + first_h[oh]) * W + first_w[ow]
                    for jd in range(count_d[od]):
                        d = first_d[od] + jd * step_d
                        for jh in range(count_h[oh]):
                            h = first_h[oh] + jh * step_h
                            row = plane[d, h]
                            for jw in range(count_w[ow]):
                                w = first_w[ow] + jw * step_w
                                v = row[np.uint64(w)]
                                if v > best or v != v:     # strictly greater, or NaN
                                    best = v
                                    best_index = (d * H + h) * W + w
                    out_row[ow] = best
                    index_row[ow] = best_index
    return values, indices


@parallel_kernel(cache=True)
def window_max_unpadded(x, values, indices, kernel_h, kernel_w, stride_d, stride_h, stride_w):
    """:func:`window_max` for windows that lie wholly inside the input, with dilation 1 and a
    depth window of 1: output ``(od, oh, ow)`` is the block of rows ``oh*stride_h + [0,
    kernel_h)`` and columns ``ow*stride_w + [0, kernel_w)`` of depth slice ``od*stride_d``.

    The common max-pool layers (no padding, floor mode, e.g. 2x2 stride 2) are of this kind.
    No tables are read and the 2x2 window is unrolled: 5-9x faster than the general kernel.  Same scan order, tie and NaN rules.
    Fills and returns the preallocated ``values (P, oD, oH, oW)`` and int64 ``indices``.
    """
    P, D, H, W = x.shape
    oD, oH, oW = values.shape[1], values.shape[2], values.shape[3]
    # Flat arrays with unsigned offsets and branch-free updates: no per-row array views (their
    # set-up cost dominated small planes) and no mispredicted branches on ties (ReLU zeros).
    xf, vf, idf = x.reshape(-1), values.reshape(-1), indices.reshape(-1)
    one, Wu = np.uint64(1), np.uint64(W)
    for p in prange(P):
        for od in range(oD):
            d = od * stride_d
            for oh in range(oH):
                h = oh * stride_h
                row_index = (d * H + h) * W          # flat index of (d, h, 0) in the plane
                r0 = np.uint64(p * D * H * W + row_index)
                dst = np.uint64(((p * oD + od) * oH + oh) * oW)
                for ow in range(oW):
                    w = np.uint64(ow * stride_w)
                    i = row_index + ow * stride_w
                    best = xf[r0 + w]                # = the scan's first step from -inf
                    best_index = i
                    if kernel_h == 2 and kernel_w == 2:
                        v = xf[r0 + w + one]
                        c = v > best or v != v       # strictly greater, or NaN
                        best, best_index = (v, i + 1) if c else (best, best_index)
                        v = xf[r0 + Wu + w]
                        c = v > best or v != v
                        best, best_index = (v, i + W) if c else (best, best_index)
                        v = xf[r0 + Wu + w + one]
                        c = v > best or v != v
                        best, best_index = (v, i + W + 1) if c else (best, best_index)
                    else:
                        for jh in range(kernel_h):
                            for jw in range(kernel_w):
                                if jh == 0 and jw == 0:
                                    continue
                                off = jh * W + jw
                                v = xf[r0 + w + np.uint64(off)]
                                c = v > best or v != v
                                best, best_index = (v, i + off) if c else (best, best_index)
                    vf[dst + np.uint64(ow)] = best
                    idf[dst + np.uint64(ow)] = best_index
    return values, indices


@parallel_kernel(cache=True)
def window_max_2x2(x, values, indices, stride_d, stride_h):
    """:func:`window_max_unpadded` for 2x2 windows with column stride 2 (LeNet's, VGG's and
    SegNet's pooling), written so that LLVM vectorises each output row: the maximum of the four
    taps, then the index of the FIRST tap equal to it (the scan's tie rule), branch-free. That
    rule and ``max`` are only right without NaN, so each row also notes whether a tap was NaN,
    and such a (rare) row is redone in scan order, where the last NaN wins. 3.7x faster than
    the unrolled scan on LeNet's first pooling layer, 6x on 32x32 planes (one thread).
    """
    P, D, H, W = x.shape
    oD, oH, oW = values.shape[1], values.shape[2], values.shape[3]
    for p in prange(P):
        for od in range(oD):
            d = od * stride_d
            for oh in range(oH):
                h = oh * stride_h
                r0, r1 = x[p, d, h], x[p, d, h + 1]
                out_row, index_row = values[p, od, oh], indices[p, od, oh]
                row_index = (d * H + h) * W          # flat index of (d, h, 0) in the plane
                nan = False
                for ow in range(oW):
                    x00, x01, x10, x11 = r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]
                    nan |= (x00 != x00) | (x01 != x01) | (x10 != x10) | (x11 != x11)
                    best = max(max(x00, x01), max(x10, x11))
                    out_row[ow] = best
                    index_row[ow] = row_index + 2 * ow + (0 if x00 == best else 1 if x01 == best
                                                          else W if x10 == best else W + 1)
                if nan:
                    for ow in range(oW):
                        best, tap = r0[2 * ow], 0
                        for t, v in ((1, r0[2 * ow + 1]), (W, r1[2 * ow]), (W + 1, r1[2 * ow + 1])):
                            if v > best or v != v:   # strictly greater, or NaN
                                best, tap = v, t
                        out_row[ow] = best
                        index_row[ow] = row_index + 2 * ow + tap
    return values, indices


@parallel_kernel(cache=True, fastmath={"reassoc"})   # reassoc: vectorised window sums
def window_mean(x, first_d, count_d, first_h, count_h, first_w, count_w, divisor):
    """Sum over each (step 1) window of ``x (P, D, H, W)`` divided by ``divisor (oD, oH, oW)``."""
    P = x.shape[0]
    oD, oH, oW = first_d.shape[0], first_h.shape[0], first_w.shape[0]
    out = np.empty((P, oD, oH, oW), x.dtype)
    for p in prange(P):
        plane = x[p]
        for od in range(oD):
            for oh in range(oH):
                out_row = out[p, od, oh]
                for ow in range(oW):
                    w0, n = first_w[ow], count_w[ow]
                    total = 0.0
                    for d in range(first_d[od], first_d[od] + count_d[od]):
                        for h in range(first_h[oh], first_h[oh] + count_h[oh]):
                            row = plane[d, h]
                            for w in range(w0, w0 + n):
                                total += row[np.uint64(w)]
                    out_row[ow] = total / divisor[od, oh, ow]
    return out


@parallel_kernel(cache=True)
def window_mean_adjoint(grad, first_d, count_d, first_h, count_h, first_w, count_w, divisor,
                        D, H, W):
    """Transpose of :func:`window_mean`: each ``grad (P, oD, oH, oW)`` value, divided by its
    divisor, is added to every input position of its window.  Returns ``(P, D, H, W)``."""
    P, oD, oH, oW = grad.shape
    out = np.empty((P, D, H, W), grad.dtype)
    for p in prange(P):
        plane = out[p]
        plane[:] = 0.0
        for od in range(oD):
            for oh in range(oH):
                grad_row = grad[p, od, oh]
                for ow in range(oW):
                    w0, n = first_w[ow], count_w[ow]
                    g = grad_row[ow] / divisor[od, oh, ow]
                    for d in range(first_d[od], first_d[od] + count_d[od]):
                        for h in range(first_h[oh], first_h[oh] + count_h[oh]):
                            row = plane[d, h]
                            for w in range(w0, w0 + n):
                                row[np.uint64(w)] += g
    return out


def scatter_add_by_index(src, index, out_len):
    """``out[p, index[p, m]] += src[p, m]`` into zeros ``(P, out_len)``.

    This is max-pool's input gradient and max-unpool's forward.  Several ``m`` with the same
    index (overlapping pooling windows) accumulate.  Indices outside ``[0, out_len)`` are
    skipped, so the kernel can never write out of bounds (callers validate and raise first).
    The output is allocated here by numpy (see :func:`scatter_add_into`).
    """
    return scatter_add_into(np.empty((src.shape[0], out_len), src.dtype), src, index)


@parallel_kernel(cache=True)
def scatter_add_into(out, src, index):
    """:func:`scatter_add_by_index` into the preallocated ``out (P, out_len)`` (overwritten).

    The buffer comes from the caller because numpy backs large arrays with transparent huge
    pages and Numba's allocator does not: the page faults of a fresh 33 MB array allocated
    inside the kernel cost 3x the scatter itself.
    """
    P, M = src.shape
    out_len = out.shape[1]
    for p in prange(P):
        out_row = out[p]
        out_row[:] = 0.0
        src_row = src[p]
        index_row = index[p]
        for m in range(M):
            i = index_row[m]
            if 0 <= i < out_len:
                out_row[i] += src_row[m]
    return out


@parallel_kernel(cache=True)
def gather_by_index(src, index):
    """``out[p, m] = src[p, index[p, m]]``, shape of ``index``; the transpose of
    :func:`scatter_add_by_index` (max-unpool's input gradient).  Out-of-range indices read 0."""
    P, L = src.shape
    M = index.shape[1]
    out = np.empty((P, M), src.dtype)
    for p in prange(P):
        out_row = out[p]
        src_row = src[p]
        index_row = index[p]
        for m in range(M):
            i = index_row[m]
            out_row[m] = src_row[i] if 0 <= i < L else 0.0
    return out


@njit(cache=True)
def first_out_of_range(index, upper):
    """Position of the first value of the 1-d ``index`` outside ``[0, upper)``, or -1.

    One pass instead of numpy's ``min()`` and ``max()``: max-unpool checks user indices
    with it before its scatter runs.
    """
    for i in range(index.shape[0]):
        if index[i] < 0 or index[i] >= upper:
            return i
    return -1


# --------------------------------------------------------------------------------------------
# N-d entry points: lift (N, C, *spatial) to (P, D, H, W), build the tables once, call kernels
# --------------------------------------------------------------------------------------------


def lift3(values: Sequence[int], fill: int) -> Tuple[int, int, int]:
    """Pad a per-dimension tuple of a 1d/2d/3d problem to 3 dims with leading ``fill``."""
    values = tuple(int(v) for v in values)
    return (fill,) * (3 - len(values)) + values


def lift_planes(x: np.ndarray, ndim: int) -> np.ndarray:
    """``(N, C, *spatial)`` -> contiguous ``(N*C, D, H, W)`` with leading spatial 1s."""
    spatial = lift3(x.shape[x.ndim - ndim:], 1)
    return np.ascontiguousarray(x).reshape((-1,) + spatial)


def regular_steps(first: np.ndarray, count: np.ndarray, step: int) -> Tuple[int, int] | None:
    """``(kernel, stride)`` if one dimension's windows are ``[o*stride, o*stride + kernel)``,
    all of the same length, starting at 0 and with contiguous taps (no padding reached, no
    dilation); else None."""
    kernel = int(count[0])
    if kernel < 1 or (kernel > 1 and step != 1) or first[0] != 0 or np.any(count != kernel):
        return None
    stride = int(first[1]) if first.shape[0] > 1 else 1
    if stride < 1 or np.any(first != stride * np.arange(first.shape[0])):
        return None
    return kernel, stride


def unpadded_geometry(tables, step: Sequence[int]) -> Tuple[int, int, int, int, int] | None:
    """``(kernel_h, kernel_w, stride_d, stride_h, stride_w)`` when :func:`window_max_unpadded`
    computes these windows (every window wholly inside the input, dilation 1, depth window 1);
    else None.  Read off the tables, so adaptive windows that happen to be regular qualify."""
    dims = [regular_steps(tables[2 * i], tables[2 * i + 1], step[i]) for i in range(3)]
    if any(dim is None for dim in dims) or dims[0][0] != 1:
        return None
    (_, stride_d), (kernel_h, stride_h), (kernel_w, stride_w) = dims
    return kernel_h, kernel_w, stride_d, stride_h, stride_w


class PoolWindows:
    """The windows of one pooling configuration: per-dimension ``first``/``count`` tables, the
    dilation ``step`` and (for averages) the divisor of each output, for 1, 2 or 3 spatial dims.

    Build with :meth:`regular` or :meth:`adaptive`; then :meth:`max`, :meth:`mean` and
    :meth:`mean_adjoint` run the kernels on ``(N, C, *spatial)`` arrays.
    """

    def __init__(self, in_size: Sequence[int], out_size: Sequence[int], tables, step: Sequence[int],
                 divisor: np.ndarray):
        self.ndim = len(in_size)
        self.in_size = tuple(in_size)
        self.out_size = tuple(out_size)
        self.tables = tables          # (first_d, count_d, first_h, count_h, first_w, count_w)
        self.step = lift3(step, 1)
        self.divisor = divisor        # float64 (oD, oH, oW)
        self.unpadded = unpadded_geometry(tables, self.step)

    @classmethod
    def regular(cls, in_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                padding: Sequence[int], dilation: Sequence[int], out_size: Sequence[int],
                count_include_pad: bool = True, divisor_override: int | None = None) -> "PoolWindows":
        """Windows of max/avg pooling; ``out_size`` comes from ``shapes.pool_output_size``."""
        tables, inside, padded = [], [], []
        for args in zip(lift3(in_size, 1), lift3(kernel, 1), lift3(stride, 1), lift3(padding, 0),
                        lift3(dilation, 1), lift3(out_size, 1)):
            first, count, padded_len = pool_windows(*args)
            tables += [first, count]
            inside.append(count)
            padded.append(padded_len)
        if divisor_override:
            divisor = np.full(lift3(out_size, 1), float(divisor_override))
        else:
            factors = padded if count_include_pad else inside
            divisor = np.multiply.outer(np.multiply.outer(factors[0], factors[1]), factors[2])
        return cls(in_size, out_size, tuple(tables), dilation, divisor.astype(np.float64))

    @classmethod
    def adaptive(cls, in_size: Sequence[int], out_size: Sequence[int]) -> "PoolWindows":
        """Windows of adaptive pooling (``[floor(o*in/out), ceil((o+1)*in/out))`` per dim)."""
        tables, counts = [], []
        for n_in, n_out in zip(lift3(in_size, 1), lift3(out_size, 1)):
            first, count = adaptive_windows(n_in, n_out)
            tables += [first, count]
            counts.append(count)
        divisor = np.multiply.outer(np.multiply.outer(counts[0], counts[1]), counts[2])
        return cls(in_size, out_size, tuple(tables), (1,) * len(in_size), divisor.astype(np.float64))

    def _unlift(self, y: np.ndarray, batch_shape: Tuple[int, ...], spatial: Tuple[int, ...]) -> np.ndarray:
        return y.reshape(batch_shape + spatial)

    def max(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``x (N, C, *in_size)`` -> ``(values, int64 indices)``, each ``(N, C, *out_size)``."""
        batch = x.shape[:x.ndim - self.ndim]
        planes = lift_planes(x, self.ndim)
        if self.unpadded is not None:
            kernel_h, kernel_w, stride_d, stride_h, stride_w = self.unpadded
            shape = (planes.shape[0],) + lift3(self.out_size, 1)
            values, indices = np.empty(shape, planes.dtype), np.empty(shape, np.int64)
            if (kernel_h, kernel_w, stride_w) == (2, 2, 2):
                window_max_2x2(planes, values, indices, stride_d, stride_h)
            else:
                window_max_unpadded(planes, values, indices, kernel_h, kernel_w, stride_d, stride_h, stride_w)
        else:
            values, indices = window_max(planes, *self.tables, *self.step)
        return self._unlift(values, batch, self.out_size), self._unlift(indices, batch, self.out_size)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """``x (N, C, *in_size)`` -> window sums / divisor ``(N, C, *out_size)``."""
        batch = x.shape[:x.ndim - self.ndim]
        out = window_mean(lift_planes(x, self.ndim), *self.tables, self.divisor)
        return self._unlift(out, batch, self.out_size)

    def mean_adjoint(self, grad: np.ndarray) -> np.ndarray:
        """Transpose of :meth:`mean`: ``grad (N, C, *out_size)`` -> ``(N, C, *in_size)``."""
        batch = grad.shape[:grad.ndim - self.ndim]
        out = window_mean_adjoint(lift_planes(grad, self.ndim), *self.tables, self.divisor,
                                  *lift3(self.in_size, 1))
        return self._unlift(out, batch, self.in_size)


def scatter_add_planes(src: np.ndarray, indices: np.ndarray, out_size: Sequence[int]) -> np.ndarray:
    """Scatter ``src (N, C, *S)`` by flat per-plane ``indices`` (same shape) into zeros
    ``(N, C, *out_size)``, adding duplicates: max-pool's input gradient = max-unpool's forward.
    Leading dims are any batch dims (``(C, *S)`` works too)."""
    out_size = tuple(int(s) for s in out_size)
    batch = src.shape[:src.ndim - len(out_size)]
    planes = int(np.prod(batch))
    flat_src = np.ascontiguousarray(src).reshape(planes, src.size // max(planes, 1))
    flat_index = np.ascontiguousarray(indices, dtype=np.int64).reshape(flat_src.shape)
    return scatter_add_by_index(flat_src, flat_index, int(np.prod(out_size))).reshape(batch + out_size)


def gather_planes(src: np.ndarray, indices: np.ndarray, ndim: int) -> np.ndarray:
    """Gather ``src (N, C, *L)`` at flat per-plane ``indices (N, C, *S)`` -> ``(N, C, *S)``:
    max-unpool's input gradient, the transpose of :func:`scatter_add_planes`."""
    batch = src.shape[:src.ndim - ndim]
    planes = int(np.prod(batch))
    flat_src = np.ascontiguousarray(src).reshape(planes, src.size // max(planes, 1))
    flat_index = np.ascontiguousarray(indices, dtype=np.int64).reshape(planes, indices.size // max(planes, 1))
    return gather_by_index(flat_src, flat_index).reshape(indices.shape)


# --------------------------------------------------------------------------------------------
# plain loop references (slow, obviously correct; the oracles of the kernel tests)
# --------------------------------------------------------------------------------------------


def _window_positions(o: int, kernel: int, stride: int, padding: int, dilation: int):
    """Input positions of output o's window (some may lie in the padding), in scan order."""
    return [o * stride - padding + j * dilation for j in range(kernel)]


def _max_by_scan(x_plane: np.ndarray, positions, first) -> Tuple[float, int]:
    """PyTorch's scan: start at -inf with the index of ``first``; take strictly greater or NaN."""
    shape = x_plane.shape
    best = -math.inf
    best_index = sum(f * int(np.prod(shape[i + 1:])) for i, f in enumerate(first))  # row-major
    for pos in positions:
        v = x_plane[pos]
        if v > best or math.isnan(v):
            best, best_index = v, int(np.ravel_multi_index(pos, x_plane.shape))
    return best, best_index


def max_pool_reference(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                       padding: Sequence[int], dilation: Sequence[int],
                       out_size: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Max pooling of ``x (N, C, *spatial)`` by loops, PyTorch's rules (see module docstring)."""
    N, C, *spatial = x.shape
    values = np.empty((N, C, *out_size), x.dtype)
    indices = np.empty((N, C, *out_size), np.int64)
    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(s) for s in out_size]):
            taps = [_window_positions(o[i], kernel[i], stride[i], padding[i], dilation[i])
                    for i in range(len(spatial))]
            inside = [[t for t in taps[i] if 0 <= t < spatial[i]] for i in range(len(spatial))]
            first = [next(t for t in taps[i] if t >= 0) for i in range(len(spatial))]
            values[(n, c) + o], indices[(n, c) + o] = _max_by_scan(
                x[n, c], itertools.product(*inside), first)
    return values, indices


def avg_pool_reference(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                       padding: Sequence[int], out_size: Sequence[int], count_include_pad: bool,
                       divisor_override: int | None) -> np.ndarray:
    """Average pooling of ``x (N, C, *spatial)`` by loops, PyTorch's divisor rules."""
    N, C, *spatial = x.shape
    out = np.empty((N, C, *out_size), x.dtype)
    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(s) for s in out_size]):
            total, n_inside, padded = 0.0, 0, 1
            for i in range(len(spatial)):
                start = o[i] * stride[i] - padding[i]
                padded *= min(start + kernel[i], spatial[i] + padding[i]) - start
            taps = [_window_positions(o[i], kernel[i], stride[i], padding[i], 1)
                    for i in range(len(spatial))]
            for pos in itertools.product(*taps):
                if all(0 <= pos[i] < spatial[i] for i in range(len(spatial))):
                    total += float(x[(n, c) + pos])
                    n_inside += 1
            if divisor_override:
                divisor = divisor_override
            else:
                divisor = padded if count_include_pad else n_inside
            out[(n, c) + o] = total / divisor
    return out


def _adaptive_range(o: int, in_size: int, out_size: int) -> range:
    return range(math.floor(o * in_size / out_size), math.ceil((o + 1) * in_size / out_size))


def adaptive_max_pool_reference(x: np.ndarray, out_size: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Adaptive max pooling of ``x (N, C, *spatial)`` by loops."""
    N, C, *spatial = x.shape
    values = np.empty((N, C, *out_size), x.dtype)
    indices = np.empty((N, C, *out_size), np.int64)
    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(s) for s in out_size]):
            ranges = [_adaptive_range(o[i], spatial[i], out_size[i]) for i in range(len(spatial))]
            first = [r[0] for r in ranges]
            values[(n, c) + o], indices[(n, c) + o] = _max_by_scan(
                x[n, c], itertools.product(*ranges), first)
    return values, indices


def adaptive_avg_pool_reference(x: np.ndarray, out_size: Sequence[int]) -> np.ndarray:
    """Adaptive average pooling of ``x (N, C, *spatial)`` by loops."""
    N, C, *spatial = x.shape
    out = np.empty((N, C, *out_size), x.dtype)
    for n, c in itertools.product(range(N), range(C)):
        for o in itertools.product(*[range(s) for s in out_size]):
            ranges = [_adaptive_range(o[i], spatial[i], out_size[i]) for i in range(len(spatial))]
            values = [float(x[(n, c) + pos]) for pos in itertools.product(*ranges)]
            out[(n, c) + o] = sum(values) / len(values)
    return out


def scatter_add_reference(src: np.ndarray, index: np.ndarray, out_len: int) -> np.ndarray:
    """``out[p, index[p, m]] += src[p, m]`` by loops (in-range indices only)."""
    out = np.zeros((src.shape[0], out_len), src.dtype)
    for p in range(src.shape[0]):
        for m in range(src.shape[1]):
            if 0 <= index[p, m] < out_len:
                out[p, index[p, m]] += src[p, m]
    return out


def gather_reference(src: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``out[p, m] = src[p, index[p, m]]`` by loops (0 for out-of-range indices)."""
    out = np.zeros(index.shape, src.dtype)
    for p in range(index.shape[0]):
        for m in range(index.shape[1]):
            if 0 <= index[p, m] < src.shape[1]:
                out[p, m] = src[p, index[p, m]]
    return out
