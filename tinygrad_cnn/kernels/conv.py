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

* general case: im2col + one BLAS GEMM per chunk of the batch. The column matrix is laid out
  as ``cols[(ci, kd, kh, kw), (n, od, oh, ow)]`` so the gather writes contiguous rows, the row
  order matches ``weight.reshape(C_out, -1)``, and one GEMM covers a whole chunk of samples.
  The batch is cut into chunks whose column matrix stays in cache (a few MB).
* pointwise (1x1, stride 1, no padding): no data movement at all, just batched matmuls.
* depthwise (groups == C_in): direct Numba loops, there is no GEMM shape to exploit.

Each jitted kernel has a plain loop reference (``*_reference``) used by the tests as oracle.
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
# Depthwise convolution (groups == C_in): direct loops, parallel over (sample, channel) planes.
# Output channel co reads input channel co // multiplier.
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
# Public kernels
# ----------------------------------------------------------------------------------------------

def _is_pointwise(kernel: Int3, stride: Int3, padding: Int3, in_size: Int3, out_size: Int3) -> bool:
    return kernel == (1, 1, 1) and stride == (1, 1, 1) and padding == (0, 0, 0) and in_size == out_size


def _is_depthwise(c_in: int, groups: int) -> bool:
    return groups == c_in and groups > 1


def conv_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                 stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                 groups: int, out_size: Sequence[int]) -> np.ndarray:
    """Convolution (cross-correlation, as in PyTorch).

    x (N, C_in, *S_in), weight (C_out, C_in/groups, *K), bias (C_out,) or None
    -> y (N, C_out, *out_size). ``padding`` is the padding before each spatial dim; the
    padding after it is whatever ``out_size`` implies. Shapes are assumed valid (checked in
    ``tinygrad_cnn.shapes`` / the functional layer).
    """
    spatial = len(out_size)
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    dtype = np.result_type(x.dtype, weight.dtype)
    x5 = _as5d(x.astype(dtype, copy=False))
    w5 = _as5d(weight.astype(dtype, copy=False))
    k3, s3 = _as3(weight.shape[2:], 1), _as3(stride, 1)
    p3, d3, o3 = _as3(padding, 0), _as3(dilation, 1), _as3(out_size, 1)
    out_shape = (n, c_out) + tuple(int(v) for v in out_size)
    p_out = o3[0] * o3[1] * o3[2]

    if _is_depthwise(c_in, groups):
        y5 = np.zeros((n, c_out) + o3, dtype=dtype)
        if bias is not None:
            y5 += bias.astype(dtype, copy=False).reshape(1, c_out, 1, 1, 1)
        depthwise_forward(x5, w5, s3, p3, d3, y5)
        return y5.reshape(out_shape)

    cin_g, cout_g = c_in // groups, c_out // groups
    if _is_pointwise(k3, s3, p3, x5.shape[2:], o3):
        wg = w5.reshape(groups, cout_g, cin_g)
        y = np.matmul(wg, x5.reshape(n, groups, cin_g, p_out)).reshape(n, c_out, p_out)
        if bias is not None:
            y += bias.astype(dtype, copy=False).reshape(1, c_out, 1)
        return y.reshape(out_shape)

    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    wg = w5.reshape(groups, cout_g, ck_g)
    y = np.empty((n, c_out, p_out), dtype=dtype)
    nb = _batch_chunk(n, groups * ck_g * p_out * x5.itemsize)
    cols_buf = np.empty(groups * ck_g * nb * p_out, dtype=dtype)
    prod_buf = np.empty(c_out * nb * p_out, dtype=dtype)
    b_row = None if bias is None else bias.astype(dtype, copy=False).reshape(1, c_out, 1)
    for b0 in range(0, n, nb):
        b1 = min(n, b0 + nb)
        m = (b1 - b0) * p_out
        cols = _prefix(cols_buf, groups * ck_g, m)
        prod = _prefix(prod_buf, c_out, m)
        im2col(x5, b0, b1, k3, s3, p3, d3, o3, cols)
        np.matmul(wg, cols.reshape(groups, ck_g, m), out=prod.reshape(groups, cout_g, m))
        # (C_out, nb, P) -> (nb, C_out, P) while adding the bias: one pass over the output
        chunk = prod.reshape(c_out, b1 - b0, p_out).transpose(1, 0, 2)
        if b_row is None:
            y[b0:b1] = chunk
        else:
            np.add(chunk, b_row, out=y[b0:b1])
    return y.reshape(out_shape)


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
    k3, s3 = _as3(weight.shape[2:], 1), _as3(stride, 1)
    p3, d3, i3 = _as3(padding, 0), _as3(dilation, 1), _as3(in_size, 1)
    o3 = g5.shape[2:]
    in_shape = (n, c_in) + tuple(int(v) for v in in_size)
    p_out = o3[0] * o3[1] * o3[2]

    if _is_depthwise(c_in, groups):
        gx = np.zeros((n, c_in) + i3, dtype=dtype)
        depthwise_input_grad(g5, w5, s3, p3, d3, gx)
        return gx.reshape(in_shape)

    if _is_pointwise(k3, s3, p3, i3, o3):
        wt = w5.reshape(groups, cout_g, cin_g).transpose(0, 2, 1)
        gx = np.matmul(wt, g5.reshape(n, groups, cout_g, p_out))
        return gx.reshape(in_shape)

    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    wt = w5.reshape(groups, cout_g, ck_g).transpose(0, 2, 1)      # (G, CK_g, C_out_g)
    gx = np.zeros((n, c_in) + i3, dtype=dtype)
    nb = _batch_chunk(n, groups * ck_g * p_out * g5.itemsize)
    gt_buf = np.empty(c_out * nb * p_out, dtype=dtype)
    cols_buf = np.empty(groups * ck_g * nb * p_out, dtype=dtype)
    g3 = g5.reshape(n, c_out, p_out)
    for b0 in range(0, n, nb):
        b1 = min(n, b0 + nb)
        m = (b1 - b0) * p_out
        g_t = _prefix(gt_buf, c_out, m)
        cols = _prefix(cols_buf, groups * ck_g, m)
        # (nb, C_out, P) -> (C_out, nb*P) so that one GEMM covers the chunk
        g_t.reshape(c_out, b1 - b0, p_out)[...] = g3[b0:b1].transpose(1, 0, 2)
        np.matmul(wt, g_t.reshape(groups, cout_g, m), out=cols.reshape(groups, ck_g, m))
        col2im(cols, b0, b1, k3, s3, p3, d3, o3, gx)
    return gx.reshape(in_shape)


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
    k3, s3 = _as3(kernel_size, 1), _as3(stride, 1)
    p3, d3 = _as3(padding, 0), _as3(dilation, 1)
    o3 = g5.shape[2:]
    w_shape = (c_out, cin_g) + tuple(int(v) for v in kernel_size)
    p_out = o3[0] * o3[1] * o3[2]

    if _is_depthwise(c_in, groups):
        gw = np.empty((c_out, 1) + k3, dtype=dtype)
        depthwise_weight_grad(x5, g5, s3, p3, d3, gw)
        return gw.reshape(w_shape)

    if _is_pointwise(k3, s3, p3, x5.shape[2:], o3):
        xg = x5.reshape(n, groups, cin_g, p_out)
        gg = g5.reshape(n, groups, cout_g, p_out)
        gw = np.matmul(gg, xg.transpose(0, 1, 3, 2)).sum(axis=0)   # (G, C_out_g, C_in_g)
        return gw.reshape(w_shape)

    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    gw = np.zeros((groups, cout_g, ck_g), dtype=dtype)
    part = np.empty_like(gw)
    nb = _batch_chunk(n, groups * ck_g * p_out * x5.itemsize)
    cols_buf = np.empty(groups * ck_g * nb * p_out, dtype=dtype)
    gt_buf = np.empty(c_out * nb * p_out, dtype=dtype)
    g3 = g5.reshape(n, c_out, p_out)
    for b0 in range(0, n, nb):
        b1 = min(n, b0 + nb)
        m = (b1 - b0) * p_out
        cols = _prefix(cols_buf, groups * ck_g, m)
        g_t = _prefix(gt_buf, c_out, m)
        im2col(x5, b0, b1, k3, s3, p3, d3, o3, cols)
        g_t.reshape(c_out, b1 - b0, p_out)[...] = g3[b0:b1].transpose(1, 0, 2)
        cg = cols.reshape(groups, ck_g, m)
        np.matmul(g_t.reshape(groups, cout_g, m), cg.transpose(0, 2, 1), out=part)
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
