"""Convolution kernels: forward, input-gradient (= transposed convolution) and weight-gradient.

numpy + numba only: arrays and ints in, arrays out. Every function here works for 1, 2 and 3
spatial dimensions; internally a 1d/2d problem is a 3d problem with singleton leading spatial
dims, so there is one implementation to read.

Conventions (per spatial dimension, one int each)::

    out[o] = sum_k  w[k] * x[o*stride + k*dilation - pad]      (x outside [0, size) reads as 0)

``pad`` is the padding *before* the input. The padding after it is implied by the output size,
which the caller passes in explicitly -- that is how asymmetric ('same') padding and the
``output_padding`` of transposed convolution are expressed without special cases. With that
convention the three kernels are exact adjoints of each other for ANY sizes:

    conv_forward(x, w)          y[n, co]  = sum_ci,k  w[co, ci, k] * x[n, ci, o*s + k*d - p]
    conv_input_grad(gy, w)      gx        = d<gy, conv_forward(x, w)>/dx  (transposed conv)
    conv_weight_grad(x, gy)     gw        = d<gy, conv_forward(x, w)>/dw

How the work is done (see /work/shared/PERFORMANCE.md):

* general case: a patch matrix + one BLAS GEMM per chunk of the batch. The patch matrix has
  one row per (ci, kd, kh, kw) -- the order of ``weight.reshape(C_out, -1)`` -- and one
  column per (sample, output position), so one GEMM covers a whole chunk of samples and the
  gather writes contiguous rows. The batch is cut into chunks whose patch matrix stays in
  cache (a few MB). Two layouts of the columns (see :class:`PatchLayout`):

  - ``shifted`` (every stride 1): the input is zero-padded once; then the row of tap k is
    the padded input shifted by a constant offset, so the gather is one contiguous copy per
    (row, sample). Columns run over the padded grid, so a few columns per image row are
    unused ("garbage", at most 2x; dropped when the output is written).
  - ``strided`` (any stride): classic im2col, one column per output position.

* pointwise (1x1, stride 1, no padding): no data movement at all, just batched matmuls.
* one input channel per group (depthwise, groups == C_in, also C_in == 1): direct Numba loops;
  there is no GEMM shape to exploit.

"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from numba import njit, prange

Int3 = Tuple[int, int, int]

# Target size in bytes of one chunk of the im2col matrix (fits the 32 MB L3 comfortably and
# keeps each GEMM large enough for BLAS to run near peak).
COLS_CHUNK_BYTES = 4 << 20


# ----------------------------------------------------------------------------------------------
# Shape helpers: every public kernel accepts (N, C, *spatial) with 1..3 spatial dims and
# works on the 3d view (N, C, D, H, W).
# ----------------------------------------------------------------------------------------------

def _as3(values: Sequence[int], fill: int) -> Int3:
    """Left-pad a per-dimension tuple to 3 entries: (5,) -> (fill, fill, 5)."""
    values = tuple(int(v) for v in values)
    return (fill,) * (3 - len(values)) + values


def _as5d(a: np.ndarray) -> np.ndarray:
    """View (N, C, *spatial) as (N, C, D, H, W) with singleton leading spatial dims (a copy only
    if ``a`` is not C-contiguous)."""
    a = np.ascontiguousarray(a)
    n, c = a.shape[:2]
    return a.reshape((n, c) + _as3(a.shape[2:], 1))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@njit(cache=True)
def _valid_range(offset, stride, in_size, out_size):
    """Range [lo, hi) of output positions o with 0 <= o*stride + offset < in_size."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = out_size
    if (out_size - 1) * stride + offset >= in_size:
        hi = (in_size - offset + stride - 1) // stride
        if hi < 0:
            hi = 0
    if lo > out_size:
        lo = out_size
    if hi < lo:
        hi = lo
    return lo, hi


def _prefix(flat: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A C-contiguous (rows, cols) matrix on the start of a flat scratch buffer."""
    return flat[:rows * cols].reshape(rows, cols)


def _batch_chunk(n: int, bytes_per_sample: int) -> int:
    """How many samples go into one im2col chunk."""
    return max(1, min(n, COLS_CHUNK_BYTES // max(1, bytes_per_sample)))


# ----------------------------------------------------------------------------------------------
# im2col / col2im: the data movement around the GEMM
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def im2col(x, b0, b1, kernel, stride, padding, dilation, out_size, cols):
    """Gather patches of samples ``b0:b1`` of ``x`` (N, C, D, H, W) into
    ``cols`` (C*KD*KH*KW, (b1-b0)*Do*Ho*Wo); out-of-range taps read as 0."""
    C, D, H, W = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    KD, KH, KW = kernel
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    Do, Ho, Wo = out_size
    for r in prange(C * KD * KH * KW):
        kw = r % KW
        kh = (r // KW) % KH
        kd = (r // (KW * KH)) % KD
        c = r // (KW * KH * KD)
        off_w = kw * dw - pw
        lo, hi = _valid_range(off_w, sw, W, Wo)
        row = cols[r]
        for b in range(b1 - b0):
            for od in range(Do):
                i_d = od * sd + kd * dd - pd
                for oh in range(Ho):
                    i_h = oh * sh + kh * dh - ph
                    base = ((b * Do + od) * Ho + oh) * Wo
                    if i_d < 0 or i_d >= D or i_h < 0 or i_h >= H:
                        for ow in range(Wo):
                            row[base + ow] = 0.0
                    else:
                        xrow = x[b0 + b, c, i_d, i_h]
                        for ow in range(lo):
                            row[base + ow] = 0.0
                        for ow in range(lo, hi):
                            row[base + ow] = xrow[ow * sw + off_w]
                        for ow in range(hi, Wo):
                            row[base + ow] = 0.0


@njit(parallel=True, cache=True)
def col2im(cols, b0, b1, kernel, stride, padding, dilation, out_size, dx):
    """Adjoint of :func:`im2col`: scatter-add ``cols`` back into samples ``b0:b1`` of ``dx``
    (N, C, D, H, W). ``dx[b0:b1]`` must be zeroed by the caller. Parallel over channels, so no
    two threads ever write the same element."""
    C, D, H, W = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    KD, KH, KW = kernel
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    Do, Ho, Wo = out_size
    K = KD * KH * KW
    for c in prange(C):
        for k in range(K):
            kw = k % KW
            kh = (k // KW) % KH
            kd = k // (KW * KH)
            off_w = kw * dw - pw
            lo, hi = _valid_range(off_w, sw, W, Wo)
            row = cols[c * K + k]
            for b in range(b1 - b0):
                for od in range(Do):
                    i_d = od * sd + kd * dd - pd
                    if i_d < 0 or i_d >= D:
                        continue
                    for oh in range(Ho):
                        i_h = oh * sh + kh * dh - ph
                        if i_h < 0 or i_h >= H:
                            continue
                        base = ((b * Do + od) * Ho + oh) * Wo
                        dxrow = dx[b0 + b, c, i_d, i_h]
                        for ow in range(lo, hi):
                            dxrow[ow * sw + off_w] += row[base + ow]


# ----------------------------------------------------------------------------------------------
# One input channel per group (depthwise, groups == C_in; also C_in == groups == 1): direct
# loops, parallel over (sample, channel) planes. Output channel co reads input channel
# co // multiplier, multiplier = C_out // C_in.
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def depthwise_forward(x, w, stride, padding, dilation, y):
    """y (N, C_out, Do, Ho, Wo) = depthwise conv of x (N, C_in, D, H, W) with
    w (C_out, 1, KD, KH, KW); ``y`` must be zeroed (or hold the bias) on entry."""
    N, C_in, D, H, W = x.shape
    C_out, KD, KH, KW = w.shape[0], w.shape[2], w.shape[3], w.shape[4]
    Do, Ho, Wo = y.shape[2], y.shape[3], y.shape[4]
    mult = C_out // C_in
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    for job in prange(N * C_out):
        n = job // C_out
        co = job % C_out
        ci = co // mult
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    wv = w[co, 0, kd, kh, kw]
                    off_w = kw * dw - pw
                    lo, hi = _valid_range(off_w, sw, W, Wo)
                    for od in range(Do):
                        i_d = od * sd + kd * dd - pd
                        if i_d < 0 or i_d >= D:
                            continue
                        for oh in range(Ho):
                            i_h = oh * sh + kh * dh - ph
                            if i_h < 0 or i_h >= H:
                                continue
                            yrow = y[n, co, od, oh]
                            xrow = x[n, ci, i_d, i_h]
                            for ow in range(lo, hi):
                                yrow[ow] += wv * xrow[ow * sw + off_w]


@njit(parallel=True, cache=True)
def depthwise_input_grad(gy, w, stride, padding, dilation, gx):
    """Adjoint of :func:`depthwise_forward` in x: gx (N, C_in, D, H, W), zeroed on entry."""
    N, C_in, D, H, W = gx.shape
    C_out, KD, KH, KW = w.shape[0], w.shape[2], w.shape[3], w.shape[4]
    Do, Ho, Wo = gy.shape[2], gy.shape[3], gy.shape[4]
    mult = C_out // C_in
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    for job in prange(N * C_in):
        n = job // C_in
        ci = job % C_in
        for co in range(ci * mult, (ci + 1) * mult):
            for kd in range(KD):
                for kh in range(KH):
                    for kw in range(KW):
                        wv = w[co, 0, kd, kh, kw]
                        off_w = kw * dw - pw
                        lo, hi = _valid_range(off_w, sw, W, Wo)
                        for od in range(Do):
                            i_d = od * sd + kd * dd - pd
                            if i_d < 0 or i_d >= D:
                                continue
                            for oh in range(Ho):
                                i_h = oh * sh + kh * dh - ph
                                if i_h < 0 or i_h >= H:
                                    continue
                                gyrow = gy[n, co, od, oh]
                                gxrow = gx[n, ci, i_d, i_h]
                                for ow in range(lo, hi):
                                    gxrow[ow * sw + off_w] += wv * gyrow[ow]


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def depthwise_weight_grad(x, gy, stride, padding, dilation, gw):
    """gw (C_out, 1, KD, KH, KW) = d<gy, depthwise_forward(x, w)>/dw (overwritten)."""
    N, C_in, D, H, W = x.shape
    C_out, KD, KH, KW = gw.shape[0], gw.shape[2], gw.shape[3], gw.shape[4]
    Do, Ho, Wo = gy.shape[2], gy.shape[3], gy.shape[4]
    mult = C_out // C_in
    sd, sh, sw = stride
    pd, ph, pw = padding
    dd, dh, dw = dilation
    for co in prange(C_out):
        ci = co // mult
        for kd in range(KD):
            for kh in range(KH):
                for kw in range(KW):
                    off_w = kw * dw - pw
                    lo, hi = _valid_range(off_w, sw, W, Wo)
                    acc = 0.0
                    for n in range(N):
                        for od in range(Do):
                            i_d = od * sd + kd * dd - pd
                            if i_d < 0 or i_d >= D:
                                continue
                            for oh in range(Ho):
                                i_h = oh * sh + kh * dh - ph
                                if i_h < 0 or i_h >= H:
                                    continue
                                gyrow = gy[n, co, od, oh]
                                xrow = x[n, ci, i_d, i_h]
                                for ow in range(lo, hi):
                                    acc += gyrow[ow] * xrow[ow * sw + off_w]
                    gw[co, 0, kd, kh, kw] = acc


# ----------------------------------------------------------------------------------------------
# The shifted layout (every stride 1): gather = one contiguous copy per (row, sample)
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def gather_shifted(xp, b0, b1, offsets, span, cols):
    """cols[(c, k), (b, j)] = xp[b0 + b, c, offsets[k] + j] for j < span.

    ``xp`` (N, C, plane) is the zero-padded input, one flat plane per channel."""
    n_c, n_k = xp.shape[1], offsets.shape[0]
    for r in prange(n_c * n_k):
        c = r // n_k
        off = offsets[r % n_k]
        row = cols[r]
        for b in range(b1 - b0):
            row[b * span:(b + 1) * span] = xp[b0 + b, c, off:off + span]


@njit(parallel=True, cache=True)
def scatter_shifted(cols, b0, b1, offsets, span, dxp):
    """Adjoint of :func:`gather_shifted`: dxp[b0 + b, c, offsets[k] + j] += cols[(c, k), (b, j)].
    Parallel over channels, so no two threads write the same element."""
    n_c, n_k = dxp.shape[1], offsets.shape[0]
    for c in prange(n_c):
        for b in range(b1 - b0):
            dst = dxp[b0 + b, c]
            for k in range(n_k):
                off = offsets[k]
                dst[off:off + span] += cols[c * n_k + k, b * span:(b + 1) * span]


@njit(parallel=True, cache=True)
def depthwise_forward_shifted(xp, w, offsets, span, step_d, step_h, bias, y):
    """Stride-1 direct convolution with one input channel per group.

    xp (N, C_in, plane) zero-padded input, w (C_out, K) taps, y (N, C_out, Do, Ho, Wo).
    Each tap adds a shifted copy of the padded plane: one long contiguous loop."""
    c_in, n_k = xp.shape[1], offsets.shape[0]
    n, c_out, Do, Ho, Wo = y.shape[0], y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    mult = c_out // c_in
    for job in prange(n * c_out):
        b = job // c_out
        co = job % c_out
        src = xp[b, co // mult]
        acc = np.zeros(span, dtype=xp.dtype)
        for k in range(n_k):
            wv = w[co, k]
            shifted = src[offsets[k]:offsets[k] + span]    # a view: indices provably >= 0,
            for j in range(span):                           # so the loop vectorises
                acc[j] += wv * shifted[j]
        for od in range(Do):
            for oh in range(Ho):
                start = od * step_d + oh * step_h
                valid = acc[start:start + Wo]
                yrow = y[b, co, od, oh]
                for ow in range(Wo):
                    yrow[ow] = valid[ow] + bias[co]


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def depthwise_weight_grad_shifted(xp, g, offsets, span, step_d, step_h, gw):
    """Weight gradient of :func:`depthwise_forward_shifted`: gw (C_out, K) (overwritten),
    gw[co, k] = sum over samples and positions of g * (xp shifted by offsets[k])."""
    c_in, n_k = xp.shape[1], offsets.shape[0]
    n, c_out, Do, Ho, Wo = g.shape[0], g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    mult = c_out // c_in
    for co in prange(c_out):
        g_flat = np.zeros(span, dtype=xp.dtype)      # g on the padded grid; garbage stays 0
        acc = np.zeros(n_k, dtype=xp.dtype)
        for b in range(n):
            for od in range(Do):
                for oh in range(Ho):
                    start = od * step_d + oh * step_h
                    g_flat[start:start + Wo] = g[b, co, od, oh]
            src = xp[b, co // mult]
            for k in range(n_k):
                shifted = src[offsets[k]:offsets[k] + span]
                total = 0.0
                for j in range(span):
                    total += g_flat[j] * shifted[j]
                acc[k] += total
        for k in range(n_k):
            gw[co, k] = acc[k]


# ----------------------------------------------------------------------------------------------
# Between the GEMM layout (C_out, samples * span) and the output array (N, C_out, Do, Ho, Wo).
# Output position (od, oh, ow) of sample b is column b*span + od*step_d + oh*step_h + ow.
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def gemm_to_output(prod, b0, b1, span, step_d, step_h, bias, y):
    """y[b0 + b, co, od, oh, ow] = prod[co, column(b, od, oh, ow)] + bias[co]."""
    c_out, Do, Ho, Wo = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    for job in prange((b1 - b0) * c_out):
        b = job // c_out
        co = job % c_out
        src = prod[co]
        bv = bias[co]
        for od in range(Do):
            for oh in range(Ho):
                start = b * span + od * step_d + oh * step_h
                valid = src[start:start + Wo]
                yrow = y[b0 + b, co, od, oh]
                for ow in range(Wo):
                    yrow[ow] = valid[ow] + bv


@njit(parallel=True, cache=True)
def output_to_gemm(g, b0, b1, span, step_d, step_h, g_t):
    """The inverse layout change: g_t[co, column(b, od, oh, ow)] = g[b0 + b, co, od, oh, ow],
    with zeros in the unused (garbage) columns."""
    c_out, Do, Ho, Wo = g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    for job in prange((b1 - b0) * c_out):
        b = job // c_out
        co = job % c_out
        dst = g_t[co]
        dst[b * span:(b + 1) * span] = 0.0
        for od in range(Do):
            for oh in range(Ho):
                start = b * span + od * step_d + oh * step_h
                dst[start:start + Wo] = g[b0 + b, co, od, oh]


class PatchLayout:
    """Where the patch-matrix columns of one sample live, and how to gather / scatter them.

    ``span`` columns per sample; output position (od, oh, ow) is column
    ``od*step_d + oh*step_h + ow``. Built by :meth:`choose` for one conv geometry.
    """

    def __init__(self, in3: Int3, k3: Int3, s3: Int3, p3: Int3, d3: Int3, o3: Int3):
        self.in3, self.k3, self.s3, self.p3, self.d3, self.o3 = in3, k3, s3, p3, d3, o3
        (Do, Ho, Wo), n_out = o3, o3[0] * o3[1] * o3[2]
        # the padded grid a stride-1 conv reads: out + dilated kernel - 1 per dim
        self.padded = tuple(o + d * (k - 1) for o, k, d in zip(o3, k3, d3))
        _, Hp, Wp = self.padded
        shifted_span = (Do - 1) * Hp * Wp + (Ho - 1) * Wp + Wo
        self.shifted = s3 == (1, 1, 1) and shifted_span <= 2 * n_out
        if self.shifted:
            self.span, self.step_d, self.step_h = shifted_span, Hp * Wp, Wp
            self.offsets = np.array([(kd * d3[0] * Hp + kh * d3[1]) * Wp + kw * d3[2]
                                     for kd in range(k3[0]) for kh in range(k3[1])
                                     for kw in range(k3[2])], dtype=np.int64)
        else:
            self.span, self.step_d, self.step_h = n_out, Ho * Wo, Wo

    def _overlap(self):
        """Index tuples (into x, into the padded grid) of the input pixels the grid covers."""
        x_idx, p_idx = [slice(None)] * 2, [slice(None)] * 2
        for size, pad, grid in zip(self.in3, self.p3, self.padded):
            count = max(0, min(size, grid - pad))
            x_idx.append(slice(0, count))
            p_idx.append(slice(pad, pad + count))
        return tuple(x_idx), tuple(p_idx)

    def source(self, x5: np.ndarray) -> np.ndarray:
        """What :meth:`gather` reads: x5 itself, or its zero-padded copy (N, C, plane)."""
        if not self.shifted:
            return x5
        xp = np.zeros(x5.shape[:2] + self.padded, dtype=x5.dtype)
        x_idx, p_idx = self._overlap()
        xp[p_idx] = x5[x_idx]
        return xp.reshape(x5.shape[0], x5.shape[1], -1)

    def gather(self, src: np.ndarray, b0: int, b1: int, cols: np.ndarray) -> None:
        if self.shifted:
            gather_shifted(src, b0, b1, self.offsets, self.span, cols)
        else:
            im2col(src, b0, b1, self.k3, self.s3, self.p3, self.d3, self.o3, cols)

    def grad_source(self, n: int, c: int, dtype) -> np.ndarray:
        """A zeroed buffer for :meth:`scatter` (the padded grid for the shifted layout)."""
        shape = self.padded if self.shifted else self.in3
        buf = np.zeros((n, c) + shape, dtype=dtype)
        return buf.reshape(n, c, -1) if self.shifted else buf

    def scatter(self, cols: np.ndarray, b0: int, b1: int, dsrc: np.ndarray) -> None:
        if self.shifted:
            scatter_shifted(cols, b0, b1, self.offsets, self.span, dsrc)
        else:
            col2im(cols, b0, b1, self.k3, self.s3, self.p3, self.d3, self.o3, dsrc)

    def finish(self, dsrc: np.ndarray) -> np.ndarray:
        """Gradient on the input grid (N, C, D, H, W): crop the padding off the padded grid."""
        if not self.shifted:
            return dsrc
        n, c = dsrc.shape[:2]
        dxp = dsrc.reshape((n, c) + self.padded)
        dx = np.zeros((n, c) + self.in3, dtype=dsrc.dtype)
        x_idx, p_idx = self._overlap()
        dx[x_idx] = dxp[p_idx]
        return dx


# ----------------------------------------------------------------------------------------------
# Public kernels
# ----------------------------------------------------------------------------------------------

def _is_pointwise(kernel: Int3, stride: Int3, padding: Int3, in_size: Int3, out_size: Int3) -> bool:
    return kernel == (1, 1, 1) and stride == (1, 1, 1) and padding == (0, 0, 0) and in_size == out_size


def _one_channel_per_group(c_in: int, groups: int) -> bool:
    """Depthwise (groups == C_in) and single-input-channel convs: the direct kernels."""
    return groups == c_in


def _geometry(weight_shape, stride, padding, dilation, in_size, out_size):
    return (_as3(weight_shape[2:], 1), _as3(stride, 1), _as3(padding, 0), _as3(dilation, 1),
            _as3(in_size, 1), _as3(out_size, 1))


def conv_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                 stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                 groups: int, out_size: Sequence[int]) -> np.ndarray:
    """Convolution (cross-correlation, as in PyTorch).

    x (N, C_in, *S_in), weight (C_out, C_in/groups, *K), bias (C_out,) or None
    -> y (N, C_out, *out_size). ``padding`` is the padding before each spatial dim; the
    padding after it is whatever ``out_size`` implies. Shapes are assumed valid (checked in
    ``tinygrad_cnn.shapes`` / the functional layer).
    """
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    dtype = np.result_type(x.dtype, weight.dtype)
    x5 = _as5d(x.astype(dtype, copy=False))
    w5 = _as5d(weight.astype(dtype, copy=False))
    k3, s3, p3, d3, i3, o3 = _geometry(weight.shape, stride, padding, dilation, x.shape[2:], out_size)
    out_shape = (n, c_out) + tuple(int(v) for v in out_size)
    b = np.zeros(c_out, dtype) if bias is None else bias.astype(dtype, copy=False)

    if _one_channel_per_group(c_in, groups):
        layout = PatchLayout(i3, k3, s3, p3, d3, o3)
        if layout.shifted:
            y5 = np.empty((n, c_out) + o3, dtype=dtype)
            depthwise_forward_shifted(layout.source(x5), w5.reshape(c_out, -1), layout.offsets,
                                      layout.span, layout.step_d, layout.step_h, b, y5)
        else:
            y5 = np.empty((n, c_out) + o3, dtype=dtype)
            y5[...] = b.reshape(1, c_out, 1, 1, 1)
            depthwise_forward(x5, w5, s3, p3, d3, y5)
        return y5.reshape(out_shape)

    cin_g, cout_g = c_in // groups, c_out // groups
    n_out = o3[0] * o3[1] * o3[2]
    if _is_pointwise(k3, s3, p3, i3, o3):
        wg = w5.reshape(groups, cout_g, cin_g)
        y = np.matmul(wg, x5.reshape(n, groups, cin_g, n_out)).reshape(n, c_out, n_out)
        if bias is not None:
            y += b.reshape(1, c_out, 1)
        return y.reshape(out_shape)

    layout = PatchLayout(i3, k3, s3, p3, d3, o3)
    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    wg = w5.reshape(groups, cout_g, ck_g)
    src = layout.source(x5)
    y5 = np.empty((n, c_out) + o3, dtype=dtype)
    nb = _batch_chunk(n, groups * ck_g * layout.span * x5.itemsize)
    cols_buf = np.empty(groups * ck_g * nb * layout.span, dtype=dtype)
    prod_buf = np.empty(c_out * nb * layout.span, dtype=dtype)
    for b0 in range(0, n, nb):
        b1 = min(n, b0 + nb)
        m = (b1 - b0) * layout.span
        cols = _prefix(cols_buf, groups * ck_g, m)
        prod = _prefix(prod_buf, c_out, m)
        layout.gather(src, b0, b1, cols)
        np.matmul(wg, cols.reshape(groups, ck_g, m), out=prod.reshape(groups, cout_g, m))
        gemm_to_output(prod, b0, b1, layout.span, layout.step_d, layout.step_h, b, y5)
    return y5.reshape(out_shape)


def conv_input_grad(grad_out: np.ndarray, weight: np.ndarray, stride: Sequence[int],
                    padding: Sequence[int], dilation: Sequence[int], groups: int,
                    in_size: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`conv_forward` with respect to x -- this IS transposed convolution.

    grad_out (N, C_out, *S_out), weight (C_out, C_in/groups, *K) -> (N, C_in, *in_size).
    """
    n, c_out = grad_out.shape[:2]
    cin_g = weight.shape[1]
    c_in = cin_g * groups
    cout_g = c_out // groups
    dtype = np.result_type(grad_out.dtype, weight.dtype)
    g5 = _as5d(grad_out.astype(dtype, copy=False))
    w5 = _as5d(weight.astype(dtype, copy=False))
    k3, s3, p3, d3, i3, o3 = _geometry(weight.shape, stride, padding, dilation, in_size, grad_out.shape[2:])
    in_shape = (n, c_in) + tuple(int(v) for v in in_size)

    if _one_channel_per_group(c_in, groups) and cout_g > 1:
        gx = np.zeros((n, c_in) + i3, dtype=dtype)
        depthwise_input_grad(g5, w5, s3, p3, d3, gx)
        return gx.reshape(in_shape)

    flipped_pad = tuple(d * (k - 1) - p for k, d, p in zip(k3, d3, p3))
    if s3 == (1, 1, 1) and min(flipped_pad) >= 0 and c_out <= 2 * c_in:
        # With stride 1 the transpose of a conv is a conv of grad_out with the kernel flipped
        # in space and its channel axes swapped (per group). Gathering C_out*K rows is cheaper
        # than scattering C_in*K rows back (a read-modify-write) unless C_out >> C_in.
        w_t = w5.reshape((groups, cout_g, cin_g) + k3).transpose(0, 2, 1, 3, 4, 5)
        w_t = w_t[..., ::-1, ::-1, ::-1].reshape((c_in, cout_g) + k3)
        gx = conv_forward(g5, w_t, None, s3, flipped_pad, d3, groups, i3)
        return gx.reshape(in_shape)

    n_out = o3[0] * o3[1] * o3[2]
    if _is_pointwise(k3, s3, p3, i3, o3):
        wt = w5.reshape(groups, cout_g, cin_g).transpose(0, 2, 1)
        gx = np.matmul(wt, g5.reshape(n, groups, cout_g, n_out))
        return gx.reshape(in_shape)

    layout = PatchLayout(i3, k3, s3, p3, d3, o3)
    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    wt = w5.reshape(groups, cout_g, ck_g).transpose(0, 2, 1)      # (G, CK_g, C_out_g)
    dsrc = layout.grad_source(n, c_in, dtype)
    nb = _batch_chunk(n, groups * ck_g * layout.span * g5.itemsize)
    gt_buf = np.empty(c_out * nb * layout.span, dtype=dtype)
    cols_buf = np.empty(groups * ck_g * nb * layout.span, dtype=dtype)
    for b0 in range(0, n, nb):
        b1 = min(n, b0 + nb)
        m = (b1 - b0) * layout.span
        g_t = _prefix(gt_buf, c_out, m)
        cols = _prefix(cols_buf, groups * ck_g, m)
        output_to_gemm(g5, b0, b1, layout.span, layout.step_d, layout.step_h, g_t)
        np.matmul(wt, g_t.reshape(groups, cout_g, m), out=cols.reshape(groups, ck_g, m))
        layout.scatter(cols, b0, b1, dsrc)
    return layout.finish(dsrc).reshape(in_shape)


def conv_weight_grad(x: np.ndarray, grad_out: np.ndarray, kernel_size: Sequence[int],
                     stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                     groups: int) -> np.ndarray:
    """Gradient of :func:`conv_forward` with respect to the weight.

    x (N, C_in, *S_in), grad_out (N, C_out, *S_out) -> (C_out, C_in/groups, *kernel_size).
    """
    n, c_in = x.shape[:2]
    c_out = grad_out.shape[1]
    cin_g, cout_g = c_in // groups, c_out // groups
    dtype = np.result_type(x.dtype, grad_out.dtype)
    x5 = _as5d(x.astype(dtype, copy=False))
    g5 = _as5d(grad_out.astype(dtype, copy=False))
    w_shape = (c_out, cin_g) + tuple(int(v) for v in kernel_size)
    k3, s3, p3, d3, i3, o3 = _geometry(w_shape, stride, padding, dilation, x.shape[2:], grad_out.shape[2:])

    if _one_channel_per_group(c_in, groups):
        layout = PatchLayout(i3, k3, s3, p3, d3, o3)
        gw = np.empty((c_out, 1) + k3, dtype=dtype)
        if layout.shifted:
            depthwise_weight_grad_shifted(layout.source(x5), g5, layout.offsets, layout.span,
                                          layout.step_d, layout.step_h, gw.reshape(c_out, -1))
        else:
            depthwise_weight_grad(x5, g5, s3, p3, d3, gw)
        return gw.reshape(w_shape)

    n_out = o3[0] * o3[1] * o3[2]
    if _is_pointwise(k3, s3, p3, i3, o3):
        xg = x5.reshape(n, groups, cin_g, n_out)
        gg = g5.reshape(n, groups, cout_g, n_out)
        gw = np.matmul(gg, xg.transpose(0, 1, 3, 2)).sum(axis=0)   # (G, C_out_g, C_in_g)
        return gw.reshape(w_shape)

    layout = PatchLayout(i3, k3, s3, p3, d3, o3)
    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    src = layout.source(x5)
    gw = np.zeros((groups, cout_g, ck_g), dtype=dtype)
    part = np.empty_like(gw)
    nb = _batch_chunk(n, groups * ck_g * layout.span * x5.itemsize)
    cols_buf = np.empty(groups * ck_g * nb * layout.span, dtype=dtype)
    gt_buf = np.empty(c_out * nb * layout.span, dtype=dtype)
    for b0 in range(0, n, nb):
        b1 = min(n, b0 + nb)
        m = (b1 - b0) * layout.span
        cols = _prefix(cols_buf, groups * ck_g, m)
        g_t = _prefix(gt_buf, c_out, m)
        layout.gather(src, b0, b1, cols)
        output_to_gemm(g5, b0, b1, layout.span, layout.step_d, layout.step_h, g_t)
        np.matmul(g_t.reshape(groups, cout_g, m), cols.reshape(groups, ck_g, m).transpose(0, 2, 1), out=part)
        gw += part
    return gw.reshape(w_shape)


# ----------------------------------------------------------------------------------------------
# Plain loop references (slow, obviously correct): the test oracle.
# Each one walks every (output position, tap) pair of the definition at the top of this file.
# ----------------------------------------------------------------------------------------------

def _taps(x5_shape, w_shape, stride, padding, dilation, groups, out_size):
    """Yield (n, co, ci, od, oh, ow, kd, kh, kw, i_d, i_h, i_w) for every tap that lands inside
    the input: the index set of the convolution sum."""
    n_, c_in, D, H, W = x5_shape
    c_out, cin_g, KD, KH, KW = w_shape
    cout_g = c_out // groups
    for n in range(n_):
        for co in range(c_out):
            g = co // cout_g
            for ci in range(cin_g):
                for od in range(out_size[0]):
                    for oh in range(out_size[1]):
                        for ow in range(out_size[2]):
                            for kd in range(KD):
                                for kh in range(KH):
                                    for kw in range(KW):
                                        i_d = od * stride[0] + kd * dilation[0] - padding[0]
                                        i_h = oh * stride[1] + kh * dilation[1] - padding[1]
                                        i_w = ow * stride[2] + kw * dilation[2] - padding[2]
                                        if 0 <= i_d < D and 0 <= i_h < H and 0 <= i_w < W:
                                            yield (n, co, g * cin_g + ci, ci, od, oh, ow,
                                                   kd, kh, kw, i_d, i_h, i_w)


def conv_forward_reference(x, weight, bias, stride, padding, dilation, groups, out_size):
    """Loop reference for :func:`conv_forward`."""
    x5, w5 = _as5d(x), _as5d(weight)
    o3 = _as3(out_size, 1)
    args = (_as3(stride, 1), _as3(padding, 0), _as3(dilation, 1), groups, o3)
    y = np.zeros((x.shape[0], weight.shape[0]) + o3, dtype=np.result_type(x, weight))
    for n, co, cig, ci, od, oh, ow, kd, kh, kw, i_d, i_h, i_w in _taps(x5.shape, w5.shape, *args):
        y[n, co, od, oh, ow] += w5[co, ci, kd, kh, kw] * x5[n, cig, i_d, i_h, i_w]
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1, 1)
    return y.reshape(y.shape[:2] + tuple(out_size))


def conv_input_grad_reference(grad_out, weight, stride, padding, dilation, groups, in_size):
    """Loop reference for :func:`conv_input_grad`: each tap sends w * gy back to its input pixel."""
    g5, w5 = _as5d(grad_out), _as5d(weight)
    i3 = _as3(in_size, 1)
    x5_shape = (grad_out.shape[0], weight.shape[1] * groups) + i3
    args = (_as3(stride, 1), _as3(padding, 0), _as3(dilation, 1), groups, g5.shape[2:])
    gx = np.zeros(x5_shape, dtype=np.result_type(grad_out, weight))
    for n, co, cig, ci, od, oh, ow, kd, kh, kw, i_d, i_h, i_w in _taps(x5_shape, w5.shape, *args):
        gx[n, cig, i_d, i_h, i_w] += w5[co, ci, kd, kh, kw] * g5[n, co, od, oh, ow]
    return gx.reshape(gx.shape[:2] + tuple(in_size))


def conv_weight_grad_reference(x, grad_out, kernel_size, stride, padding, dilation, groups):
    """Loop reference for :func:`conv_weight_grad`: each tap adds x * gy to its weight."""
    x5, g5 = _as5d(x), _as5d(grad_out)
    w_shape = (grad_out.shape[1], x.shape[1] // groups) + _as3(kernel_size, 1)
    args = (_as3(stride, 1), _as3(padding, 0), _as3(dilation, 1), groups, g5.shape[2:])
    gw = np.zeros(w_shape, dtype=np.result_type(x, grad_out))
    for n, co, cig, ci, od, oh, ow, kd, kh, kw, i_d, i_h, i_w in _taps(x5.shape, w_shape, *args):
        gw[co, ci, kd, kh, kw] += x5[n, cig, i_d, i_h, i_w] * g5[n, co, od, oh, ow]
    return gw.reshape(w_shape[:2] + tuple(kernel_size))
