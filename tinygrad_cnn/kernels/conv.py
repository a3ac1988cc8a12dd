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

* general case: a patch matrix ("im2col") + one BLAS GEMM per chunk of the batch. The patch
  matrix has one row per (ci, kd, kh, kw) -- the order of ``weight.reshape(C_out, -1)`` -- and
  one column per (sample, output position), so one GEMM covers a whole chunk of samples. The
  batch is cut into chunks whose patch matrix stays in cache (a few MB).

  The columns use a *shifted* layout (:class:`PatchLayout`): the input is zero-padded once
  and split into its stride phases (pixels ``r, r+s, r+2s, ...`` per dim; one phase when the
  stride is 1). Then every tap reads one phase plane shifted by a constant offset, so its row
  of the patch matrix is ONE contiguous copy per sample -- no per-pixel index arithmetic.
  Columns run over the phase-plane grid, so a few columns per image row are unused
  ("garbage"); they are dropped when the output is written.

  The weight gradient reuses the padded planes the forward built (``keep_source``), and runs
  its long-K GEMM as cols @ g^T, the orientation BLAS is fast at. 2-d stride-2 layers split
  their input into the four phase planes with a Numba kernel (``split_phases_2x2``).

* pointwise (1x1, stride 1, no padding): no data movement at all, just batched matmuls.
* one input channel per group (depthwise, groups == C_in, also C_in == 1): direct Numba loops
  over the same shifted planes (all nine taps of a 3x3 in one pass); there is no GEMM shape
  to exploit. The batch is padded up front, or, beyond ``PREFILL_MAX_BYTES``, each job pads
  its own channel in a small buffer. A strided depthwise input gradient runs as a stride-1
  one on the zero-inserted gradient.
* the input gradient of a stride-1 conv is itself a conv (of grad_out, with the kernel flipped
  in space and its channel axes swapped), which gathers instead of scattering. When both
  gradients are wanted, :func:`conv_backward` computes the weight gradient from that same
  patch matrix of grad_out (one GEMM with x in the gather's column order) instead of building
  a second patch matrix of x.

Threads: when BLAS's GEMM is callable from Numba (``blas.gemm_function``: NumPy's own OpenBLAS
and most system BLAS), each GEMM path is ONE jitted call whose chunks run as a ``prange`` on
Numba's threads, every chunk doing gather -> GEMM -> write-out with no Python in between
(``chunked_forward`` / ``_input_grad`` / ``_weight_grad`` / ``_backward``); measured against
the Python pool below, one process, 2 threads: LeNet-5 step B=256 10.1 -> 8.4 ms, SegNet
11.6 -> 9.9 ms, ResNet-20 207 -> 198 ms (the pool's wake-ups cost 10-60 us each way per conv).
Otherwise (and for the pointwise path) the chunks of the batch run concurrently on the calling
thread and a small pool of Python threads (as many threads in all as
``tinygrad_cnn.set_num_threads`` says; the chunk count is a multiple of the thread count, and each thread takes every n-th chunk in one task),
each doing pad -> gather -> single-threaded GEMM -> write-out for its own samples; the Numba
kernels release the GIL (``nogil``), and so does BLAS. Independent chunks need no
synchronisation inside a GEMM, so a busy machine slows us down gracefully (multi-threaded
OpenBLAS, whose threads wait for each other at every block, degraded 10-100x there). BLAS is
held to one thread while the chunks run, and also for small convs run in the calling thread
(``kernels/blas.py``; without threadpoolctl the chunks run one after the other with BLAS's
own threads).
"""
from __future__ import annotations

import functools
import threading
from typing import Callable, List, Optional, Sequence, Tuple

import numba
import numpy as np
from numba import njit, prange
from . import blas, parallel_kernel

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional: without it the chunks run one by one
    ThreadpoolController = None

Int3 = Tuple[int, int, int]

# Target size in bytes of one chunk of the patch matrix: each worker's chunk stays in its
# core's 2 MB L2 and each GEMM is still wide enough for BLAS to run near peak (ResNet-20 step
# at 2 threads 248 -> 239 ms against 4 MB; at 1 thread the same; 1 MB lost at both).
COLS_CHUNK_BYTES = 2 << 20

# Convolutions whose whole patch matrix is smaller than this run their chunks in the calling
# thread (the hand-offs cost more than they save). 8 MB while the workqueue layer's sleeping
# threads competed for the cores; with TBB, 1 MB: at 2 threads SegNet 11.0 -> 9.9 ms, LeNet-5
# B=64 4.0 -> 3.7 ms, ResNet-20 and LeNet-5 B=256 even (two A/B runs in one process each).
POOL_MIN_BYTES = 1 << 20

# Depthwise kernels pad the whole batch first when that padded copy is at most this big, else
# each job pads its own channel (see PatchLayout.use_prefill). Measured: padding up front won
# at every size tried (up to 38 MB: C=64 32x32 stride 2, B=128, forward 11 -> 8 ms).
PREFILL_MAX_BYTES = 64 << 20

# Worker threads for the chunks; None: Numba's current thread count (what
# ``tinygrad_cnn.set_num_threads`` sets). 1 runs the chunks one after the other in the caller.
NUM_WORKERS: Optional[int] = None


def _workers() -> int:
    return NUM_WORKERS if NUM_WORKERS is not None else numba.get_num_threads()


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


# ----------------------------------------------------------------------------------------------
# Running the chunks of a batch
# ----------------------------------------------------------------------------------------------

_local = threading.local()


def _batch_chunk(n: int, bytes_per_sample: int, workers: int) -> int:
    """Samples per chunk: the patch matrix stays near COLS_CHUNK_BYTES, and the number of
    chunks is a multiple of the worker count (when the batch allows), so that every worker
    gets the same share: 11 chunks on 2 workers ran 6 against 5."""
    workers = max(1, workers)
    by_cache = max(1, COLS_CHUNK_BYTES // max(1, bytes_per_sample))
    n_chunks = max(1, -(-n // by_cache))
    n_chunks = -(-n_chunks // workers) * workers
    return max(1, -(-n // n_chunks))


def _run_chunks(n: int, bytes_per_sample: int, work: Callable[[int, int], object]) -> List[object]:
    """``[work(b0, b1) for each chunk]``, the chunks running concurrently on the worker threads
    with BLAS held to one thread each. Results come back in chunk order (so sums of them are
    deterministic)."""
    configured = workers = _workers()
    if n * bytes_per_sample < POOL_MIN_BYTES:
        workers = 1             # small work: thread hand-offs cost more than they save
    nb = _batch_chunk(n, bytes_per_sample, workers)
    chunks = [(b0, min(n, b0 + nb)) for b0 in range(0, n, nb)]
    if workers <= 1 or len(chunks) <= 1 or ThreadpoolController is None:
        if configured <= 1:
            return [work(b0, b1) for b0, b1 in chunks]
        with blas.single_thread():      # BLAS's own threads would fight ours (kernels/blas.py)
            return [work(b0, b1) for b0, b1 in chunks]
    # one task per thread, each taking every workers-th chunk (a future per chunk cost ~15 us);
    # the calling thread takes the last share itself
    def worker_task(first):
        return [work(*chunks[i]) for i in range(first, len(chunks), workers)]
    with blas.single_thread():
        futures = [blas.worker_pool(workers - 1).submit(worker_task, i) for i in range(workers - 1)]
        try:
            mine = worker_task(workers - 1)
        except BaseException:
            for f in futures:       # let the other shares finish before the error leaves
                f.exception()
            raise
        per_worker = [f.result() for f in futures] + [mine]
    return [per_worker[i % workers][i // workers] for i in range(len(chunks))]


def _scratch(slot: str, rows: int, cols: int, dtype) -> np.ndarray:
    """A (rows, cols) scratch matrix owned by the calling thread, reused across calls (fresh
    pages cost a page fault each; big chunks would pay that on every call)."""
    bufs = _local.__dict__.setdefault("bufs", {})
    key, size = (slot, np.dtype(dtype)), rows * cols
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        if size * buf.itemsize <= 4 * COLS_CHUNK_BYTES:     # keep the usual sizes only
            bufs[key] = buf
    return buf[:size].reshape(rows, cols)


def _pitch(cols: int, itemsize: int) -> int:
    """Row length (in elements) of a GEMM operand with ``cols`` columns: whole 64-byte lines, and
    an odd number of them. BLAS reads a panel of rows at once; with a row length that is a
    multiple of 4 KB (a 32x32 image has 1024 columns per sample) those rows all land in the
    same cache set, and the 16-channel ResNet-20 GEMM ran 1.5x slower."""
    lines = -(-cols * itemsize // 64)
    return (lines + 1 - lines % 2) * 64 // itemsize


def _gemm_scratch(slot: str, rows: int, cols: int, dtype) -> np.ndarray:
    """A C-contiguous (rows, pitch) scratch matrix, pitch = :func:`_pitch` >= cols. The Numba
    kernels take it whole (they touch the first ``cols`` columns); BLAS takes
    :func:`_grouped` views of those columns."""
    return _scratch(slot, rows, _pitch(cols, np.dtype(dtype).itemsize), dtype)


def _grouped(buf: np.ndarray, groups: int, cols: int) -> np.ndarray:
    """The first ``cols`` columns of a (rows, pitch) matrix as (groups, rows/groups, cols)."""
    return buf.reshape(groups, buf.shape[0] // groups, buf.shape[1])[:, :, :cols]


# ----------------------------------------------------------------------------------------------
# The shifted layout (see PatchLayout). ``xq`` is (N, C * n_planes, plane): the zero-padded
# input split into its stride phases, one flat plane per (channel, phase). Tap k of channel c
# reads plane c * n_planes + tap_plane[k] from offset tap_offset[k] on.
# ----------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def gather_patches(xq, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, cols):
    """The patch matrix of the samples in xq:
    cols[(c, k), (b, j)] = xq[b, c * n_planes + tap_plane[k], tap_offset[k] + j], j < span,
    then 0 at the columns ``zero_cols[k, :n_zero[k]]`` of every sample (the reads that a
    wrapped layout takes from the neighbouring row; none in the padded layout)."""
    n_k = tap_plane.shape[0]
    for r in range(cols.shape[0]):
        c, k = r // n_k, r % n_k
        plane, off = c * n_planes + tap_plane[k], tap_offset[k]
        zc, nz = zero_cols[k], n_zero[k]
        for b in range(xq.shape[0]):
            dst = cols[r, b * span:(b + 1) * span]
            src = xq[b, plane, off:off + span]
            for j in range(span):       # loops over views vectorise; slice assignment is
                dst[j] = src[j]         # slower here (it guards against overlapping memory)
            for i in range(nz):
                dst[zc[i]] = 0.0


@njit(nogil=True, cache=True)
def scatter_patches(cols, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, dxq):
    """Adjoint of :func:`gather_patches`: add every patch-matrix entry back onto the pixel it
    came from (dxq zeroed on entry). The entries gather_patches zeroes are zeroed in ``cols``
    first (cols is scratch) and so add nothing."""
    n_k = tap_plane.shape[0]
    for r in range(cols.shape[0]):
        c, k = r // n_k, r % n_k
        plane, off = c * n_planes + tap_plane[k], tap_offset[k]
        zc, nz = zero_cols[k], n_zero[k]
        for b in range(dxq.shape[0]):
            dst = dxq[b, plane, off:off + span]
            src = cols[r, b * span:(b + 1) * span]
            for i in range(nz):
                src[zc[i]] = 0.0
            for j in range(span):
                dst[j] += src[j]


# ----------------------------------------------------------------------------------------------
# Between the GEMM layout (C_out, samples * span) and the output array (n, C_out, Do, Ho, Wo).
# Output position (od, oh, ow) of sample b is column b*span + od*step_d + oh*step_h + ow.
# ----------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def gemm_to_output(prod, span, step_d, step_h, bias, y):
    """y[b, co, od, oh, ow] = prod[co, column(b, od, oh, ow)] + bias[co]."""
    n, c_out, Do, Ho, Wo = y.shape[0], y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    for b in range(n):
        for co in range(c_out):
            src = prod[co]
            for od in range(Do):
                for oh in range(Ho):
                    start = b * span + od * step_d + oh * step_h
                    valid = src[start:start + Wo]      # a view: the loop below then vectorises
                    yrow = y[b, co, od, oh]
                    for ow in range(Wo):
                        yrow[ow] = valid[ow] + bias[co]


@njit(nogil=True, cache=True)
def output_to_gemm(g, span, step_d, step_h, g_t):
    """The inverse layout change: g_t[co, column(b, od, oh, ow)] = g[b, co, od, oh, ow], with
    zeros in the unused (garbage) columns."""
    n, c_out, Do, Ho, Wo = g.shape[0], g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    for co in range(c_out):
        row = g_t[co]
        for j in range(row.shape[0]):
            row[j] = 0.0
        for b in range(n):
            for od in range(Do):
                for oh in range(Ho):
                    start = b * span + od * step_d + oh * step_h
                    dst, src = row[start:start + Wo], g[b, co, od, oh]
                    for ow in range(Wo):
                        dst[ow] = src[ow]


# ----------------------------------------------------------------------------------------------
# One input channel per group (depthwise, groups == C_in; also C_in == groups == 1): direct
# loops over the shifted planes. Output channel co reads input channel co // multiplier,
# multiplier = C_out // C_in. ``w`` is (C_out, K). Each job builds the zero-padded phase
# planes of ONE input channel in a small local buffer (it stays in L1) instead of padding the
# whole batch in memory first: ``box[phase, dim] = (lo, hi, first)`` says which plane positions
# [lo, hi) hold input pixels, starting at input index ``first`` with step ``s3[dim]``.
# ----------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _copy_planes(img, box, s3, buf, to_planes):
    """Between one channel's image img (D, H, W) and its phase planes buf (n_planes, Qd, Qh, Qw):
    to_planes -> buf = the zero-padded planes of img; else img = the plane values of its pixels
    (every pixel sits in at most one plane position; pixels in none get 0). The two are adjoint."""
    flat = buf.reshape(-1) if to_planes else img.reshape(-1)
    for j in range(flat.shape[0]):
        flat[j] = 0.0
    for ph in range(buf.shape[0]):
        w_lo, w_hi, w_first = box[ph, 2, 0], box[ph, 2, 1], box[ph, 2, 2]
        n_w = w_hi - w_lo
        for qd in range(box[ph, 0, 0], box[ph, 0, 1]):
            i_d = box[ph, 0, 2] + (qd - box[ph, 0, 0]) * s3[0]
            for qh in range(box[ph, 1, 0], box[ph, 1, 1]):
                i_h = box[ph, 1, 2] + (qh - box[ph, 1, 0]) * s3[1]
                row, xrow = buf[ph, qd, qh], img[i_d, i_h]
                if s3[2] == 1:      # contiguous views: the copy vectorises
                    p_run, x_run = row[w_lo:w_hi], xrow[w_first:w_first + n_w]
                    if to_planes:
                        for j in range(n_w):
                            p_run[j] = x_run[j]
                    else:
                        for j in range(n_w):
                            x_run[j] = p_run[j]
                elif to_planes:
                    for j in range(n_w):
                        row[w_lo + j] = xrow[w_first + j * s3[2]]
                else:
                    for j in range(n_w):
                        xrow[w_first + j * s3[2]] = row[w_lo + j]


@njit(nogil=True, cache=True)
def fill_planes(src, box, s3, buf):
    """buf (n_planes, Qd, Qh, Qw) = the zero-padded phase planes of src (D, H, W)."""
    _copy_planes(src, box, s3, buf, True)


@njit(nogil=True, cache=True)
def unfill_planes(buf, box, s3, dst):
    """Adjoint of :func:`fill_planes`: dst (D, H, W) = the plane values of its pixels."""
    _copy_planes(dst, box, s3, buf, False)


@njit(nogil=True, cache=True, inline="always")
def _nine_taps(planes, tap_plane, tap_offset, span):
    """The nine shifted views of a 3x3 kernel's taps (planes: (n_planes, plane)); inlined
    into the callers (a real call returning nine views measured 1.4x slower on 16x16 planes)."""
    o = tap_offset
    return (planes[tap_plane[0], o[0]:o[0] + span], planes[tap_plane[1], o[1]:o[1] + span],
            planes[tap_plane[2], o[2]:o[2] + span], planes[tap_plane[3], o[3]:o[3] + span],
            planes[tap_plane[4], o[4]:o[4] + span], planes[tap_plane[5], o[5]:o[5] + span],
            planes[tap_plane[6], o[6]:o[6] + span], planes[tap_plane[7], o[7]:o[7] + span],
            planes[tap_plane[8], o[8]:o[8] + span])


@parallel_kernel(cache=True)
def depthwise_forward(x5, prefilled, w, box, s3, q3, tap_plane, tap_offset, span, step_d, step_h, bias, y):
    """y (N, C_out, Do, Ho, Wo) = bias + sum over taps of w[co, k] * (shifted plane of x).
    ``x5`` is the input (N, C_in, D, H, W), or with ``prefilled`` its phase planes
    (N, C_in * n_planes, Qd, Qh, Qw) made beforehand by :meth:`PatchLayout.source`."""
    n = x5.shape[0]
    c_out, Do, Ho, Wo = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    n_planes, n_k = box.shape[0], tap_plane.shape[0]
    c_in = x5.shape[1] // n_planes if prefilled else x5.shape[1]
    mult = c_out // c_in
    for job in prange(n * c_in):
        b, ci = job // c_in, job % c_in
        if prefilled:
            planes = x5[b, ci * n_planes:(ci + 1) * n_planes].reshape(n_planes, -1)
        else:
            buf = np.empty((n_planes, q3[0], q3[1], q3[2]), dtype=x5.dtype)
            fill_planes(x5[b, ci], box, s3, buf)
            planes = buf.reshape(n_planes, -1)
        acc = np.empty(span, dtype=x5.dtype)
        for co in range(ci * mult, (ci + 1) * mult):
            if n_k == 9:            # 3x3: all nine taps in one pass, acc written once
                a0, a1, a2, a3, a4, a5, a6, a7, a8 = _nine_taps(planes, tap_plane, tap_offset, span)
                w0, w1, w2, w3, w4 = w[co, 0], w[co, 1], w[co, 2], w[co, 3], w[co, 4]
                w5, w6, w7, w8 = w[co, 5], w[co, 6], w[co, 7], w[co, 8]
                for j in range(span):
                    acc[j] = ((w0 * a0[j] + w1 * a1[j] + w2 * a2[j]) + (w3 * a3[j] + w4 * a4[j] + w5 * a5[j])
                              + (w6 * a6[j] + w7 * a7[j] + w8 * a8[j]))
                k = n_k
            else:
                for j in range(span):
                    acc[j] = 0.0
                k = 0
            while k + 3 < n_k:      # four taps per pass over acc: a quarter of the loads / stores
                w0, w1, w2, w3 = w[co, k], w[co, k + 1], w[co, k + 2], w[co, k + 3]
                o0, o1, o2, o3 = tap_offset[k], tap_offset[k + 1], tap_offset[k + 2], tap_offset[k + 3]
                s0 = planes[tap_plane[k], o0:o0 + span]
                s1 = planes[tap_plane[k + 1], o1:o1 + span]
                s2 = planes[tap_plane[k + 2], o2:o2 + span]
                s3_ = planes[tap_plane[k + 3], o3:o3 + span]
                for j in range(span):
                    acc[j] += (w0 * s0[j] + w1 * s1[j]) + (w2 * s2[j] + w3 * s3_[j])
                k += 4
            while k < n_k:
                wv, off = w[co, k], tap_offset[k]
                shifted = planes[tap_plane[k], off:off + span]
                for j in range(span):
                    acc[j] += wv * shifted[j]
                k += 1
            for od in range(Do):
                for oh in range(Ho):
                    start = od * step_d + oh * step_h
                    valid = acc[start:start + Wo]
                    yrow = y[b, co, od, oh]
                    for ow in range(Wo):
                        yrow[ow] = valid[ow] + bias[co]


@parallel_kernel(cache=True)
def depthwise_input_grad(g, w, prefilled, box, s3, q3, tap_plane, tap_offset, span, step_d, step_h, dx5):
    """Adjoint of :func:`depthwise_forward` in x: dx5 (N, C_in, D, H, W) (overwritten), or with
    ``prefilled`` the gradient on the phase planes (N, C_in * n_planes, Qd, Qh, Qw) for
    :meth:`PatchLayout.finish`."""
    n, c_out, Do, Ho, Wo = g.shape[0], g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    n_planes = box.shape[0]
    c_in = dx5.shape[1] // n_planes if prefilled else dx5.shape[1]
    mult = c_out // c_in
    for job in prange(n * c_in):
        b, ci = job // c_in, job % c_in
        buf = np.zeros((n_planes, q3[0], q3[1], q3[2]), dtype=dx5.dtype)
        planes = buf.reshape(n_planes, -1)
        g_flat = np.zeros(span, dtype=dx5.dtype)    # g on the plane grid; garbage stays 0
        for co in range(ci * mult, (ci + 1) * mult):
            for od in range(Do):
                for oh in range(Ho):
                    dst, src = g_flat[od * step_d + oh * step_h:], g[b, co, od, oh]
                    for ow in range(Wo):
                        dst[ow] = src[ow]
            for k in range(tap_plane.shape[0]):
                wv, off = w[co, k], tap_offset[k]
                shifted = planes[tap_plane[k], off:off + span]
                for j in range(span):
                    shifted[j] += wv * g_flat[j]
        if prefilled:
            dx5[b, ci * n_planes:(ci + 1) * n_planes] = buf
        else:
            unfill_planes(buf, box, s3, dx5[b, ci])


@parallel_kernel(cache=True, fastmath={"reassoc", "contract"})
def depthwise_weight_grad(x5, g, prefilled, box, s3, q3, tap_plane, tap_offset, span, step_d, step_h, gw):
    """gw (C_out, K) (overwritten) = sum over samples and positions of g * (shifted plane of x)
    (``x5`` as in :func:`depthwise_forward`)."""
    n, c_out, Do, Ho, Wo = g.shape[0], g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    n_k = tap_plane.shape[0]
    n_planes = box.shape[0]
    c_in = x5.shape[1] // n_planes if prefilled else x5.shape[1]
    mult = c_out // c_in
    for ci in prange(c_in):
        buf = np.empty((n_planes, q3[0], q3[1], q3[2]), dtype=x5.dtype)
        planes = buf.reshape(n_planes, -1)
        g_flat = np.zeros(span, dtype=x5.dtype)     # g on the plane grid; garbage stays 0
        acc = np.zeros((mult, n_k), dtype=np.float64)   # across samples: float64
        zero = np.zeros(1, dtype=x5.dtype)[0]
        for b in range(n):
            if prefilled:
                planes = x5[b, ci * n_planes:(ci + 1) * n_planes].reshape(n_planes, -1)
            else:
                fill_planes(x5[b, ci], box, s3, buf)
            for m in range(mult):
                co = ci * mult + m
                for od in range(Do):
                    for oh in range(Ho):
                        dst, src = g_flat[od * step_d + oh * step_h:], g[b, co, od, oh]
                        for ow in range(Wo):
                            dst[ow] = src[ow]
                k = 0
                if n_k == 9:        # 3x3: the nine dot products in one pass over g_flat
                    a0, a1, a2, a3, a4, a5, a6, a7, a8 = _nine_taps(planes, tap_plane, tap_offset, span)
                    t0, t1, t2, t3, t4, t5, t6, t7, t8 = zero, zero, zero, zero, zero, zero, zero, zero, zero
                    for j in range(span):
                        gv = g_flat[j]
                        t0 += gv * a0[j]
                        t1 += gv * a1[j]
                        t2 += gv * a2[j]
                        t3 += gv * a3[j]
                        t4 += gv * a4[j]
                        t5 += gv * a5[j]
                        t6 += gv * a6[j]
                        t7 += gv * a7[j]
                        t8 += gv * a8[j]
                    acc[m, 0] += t0
                    acc[m, 1] += t1
                    acc[m, 2] += t2
                    acc[m, 3] += t3
                    acc[m, 4] += t4
                    acc[m, 5] += t5
                    acc[m, 6] += t6
                    acc[m, 7] += t7
                    acc[m, 8] += t8
                    k = 9
                while k + 3 < n_k:  # four taps per pass over g_flat
                    o0, o1, o2, o3 = tap_offset[k], tap_offset[k + 1], tap_offset[k + 2], tap_offset[k + 3]
                    s0 = planes[tap_plane[k], o0:o0 + span]
                    s1 = planes[tap_plane[k + 1], o1:o1 + span]
                    s2 = planes[tap_plane[k + 2], o2:o2 + span]
                    s3_ = planes[tap_plane[k + 3], o3:o3 + span]
                    t0, t1, t2, t3 = zero, zero, zero, zero     # x's dtype: float32 lanes vectorise 2x wider
                    for j in range(span):
                        gv = g_flat[j]
                        t0 += gv * s0[j]
                        t1 += gv * s1[j]
                        t2 += gv * s2[j]
                        t3 += gv * s3_[j]
                    acc[m, k] += t0
                    acc[m, k + 1] += t1
                    acc[m, k + 2] += t2
                    acc[m, k + 3] += t3
                    k += 4
                while k < n_k:
                    off = tap_offset[k]
                    shifted = planes[tap_plane[k], off:off + span]
                    total = zero
                    for j in range(span):
                        total += g_flat[j] * shifted[j]
                    acc[m, k] += total
                    k += 1
        for m in range(mult):
            for k in range(n_k):
                gw[ci * mult + m, k] = acc[m, k]


@njit(nogil=True, cache=True)
def split_phases_2x2(x3, pad_h, pad_w, out4):
    """The four stride-2 phase planes of zero-padded 2-d images: x3 (P, H, W) ->
    out4 (P, 4, Qh, Qw), phase (rh, rw) at index 2*rh + rw; input pixel (i, j) goes to
    position ((i + pad_h) // 2, (j + pad_w) // 2) of phase ((i + pad_h) % 2, (j + pad_w) % 2)
    when that lies inside the plane. Pixels are read in contiguous pairs (one per column
    phase), which vectorises; NumPy's stride-2 copies do not (2x faster here)."""
    P, H, W = x3.shape
    Qh, Qw = out4.shape[2], out4.shape[3]
    xf, of = x3.reshape(-1), out4.reshape(-1)
    plane = Qh * Qw
    zero = np.zeros(1, x3.dtype)[0]
    e0 = pad_w % 2                      # first column whose padded index is even (phase 0)
    q0 = (e0 + pad_w) // 2              # its position
    n_pairs = max(0, min((W - e0) // 2, Qw - q0))
    for p in range(P):
        obase = p * 4 * plane
        for j in range(4 * plane):
            of[np.uint64(obase + j)] = zero
        for i in range(H):
            rh, qh = (i + pad_h) % 2, (i + pad_h) // 2
            if qh >= Qh:
                continue
            xrow = np.uint64((p * H + i) * W)
            base0 = np.uint64(obase + (2 * rh) * plane + qh * Qw)
            base1 = base0 + np.uint64(plane)
            for m in range(n_pairs):
                src = xrow + np.uint64(e0 + 2 * m)
                of[base0 + np.uint64(q0 + m)] = xf[src]
                of[base1 + np.uint64(q0 + m)] = xf[src + np.uint64(1)]
            # the columns the pairs missed: a first odd one, a last unpaired one
            for j in range(W):
                if e0 <= j < e0 + 2 * n_pairs:
                    continue
                rw, qw = (j + pad_w) % 2, (j + pad_w) // 2
                if qw < Qw:
                    of[np.uint64(obase + (2 * rh + rw) * plane + qh * Qw + qw)] = xf[xrow + np.uint64(j)]


# ----------------------------------------------------------------------------------------------
# The layout
# ----------------------------------------------------------------------------------------------

class PatchLayout:
    """How one conv geometry reads its input: stride phases, tap offsets, columns per sample.

    Per spatial dim, tap k reads padded pixel ``o*s + k*d`` for output o. Writing
    ``k*d = s*a + r`` (r < s) this is pixel ``o + a`` of *phase* r, the sub-grid
    ``r, r+s, r+2s, ...`` of the padded input. So once the padded input is split into its
    phases (:meth:`source`), tap k is phase ``r`` shifted by ``a``: a constant offset into a
    flat phase plane of size ``Qd*Qh*Qw``. Output (od, oh, ow) is column
    ``od*step_d + oh*step_h + ow`` with ``step_h = Qw``, ``step_d = Qh*Qw``; ``span`` columns
    per sample. Only the phases some tap reads are kept (a 1x1 stride-2 conv keeps one).
    """

    def __init__(self, in3: Int3, k3: Int3, s3: Int3, p3: Int3, d3: Int3, o3: Int3):
        self.in3, self.s3, self.p3, self.o3 = in3, s3, p3, o3
        # phase-plane size: the padded extent the conv reads, rounded up to whole strides
        self.q = tuple(-(-((o - 1) * s + d * (k - 1) + 1) // s) for o, k, s, d in zip(o3, k3, s3, d3))
        taps = [tuple(t) for t in np.ndindex(*k3)]      # (kd, kh, kw), the weight's order
        phase_of = [tuple(k * d % s for k, d, s in zip(t, d3, s3)) for t in taps]
        shift_of = [tuple(k * d // s for k, d, s in zip(t, d3, s3)) for t in taps]
        self.phases = sorted(set(phase_of))
        Qd, Qh, Qw = self.q
        self.n_planes = len(self.phases)
        self.tap_plane = np.array([self.phases.index(p) for p in phase_of], dtype=np.int64)
        self.tap_offset = np.array([(a[0] * Qh + a[1]) * Qw + a[2] for a in shift_of], dtype=np.int64)
        Do, Ho, Wo = o3
        self.plane_size = Qd * Qh * Qw
        self.is_identity = self.q == tuple(in3) and self.phases == [(0, 0, 0)] and tuple(p3) == (0, 0, 0)
        # 2-d stride 2 with all four phases in use (3x3 stride-2 convs): a Numba splitter
        self.fast_split = (in3[0] == 1 and s3 == (1, 2, 2) and Qd == 1 and len(self.phases) == 4
                           and self.phases == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)])
        self.span = (Do - 1) * Qh * Qw + (Ho - 1) * Qw + Wo
        self.step_d, self.step_h = Qh * Qw, Qw
        self.zero_cols = np.zeros((len(taps), 0), dtype=np.int64)     # nothing to mend here
        self.n_zero = np.zeros(len(taps), dtype=np.int64)
        # box[phase, dim] = (lo, hi, first): plane positions [lo, hi) hold input pixels
        # first, first + s, ... (the direct kernels' form of _windows)
        self.box = np.zeros((self.n_planes, 3, 3), dtype=np.int64)
        self.windows = [self._windows(phase) for phase in self.phases]    # per phase, computed once
        for i, (plane_idx, x_idx) in enumerate(self.windows):
            for d in range(3):
                self.box[i, d] = (plane_idx[d + 1].start, plane_idx[d + 1].stop, x_idx[d + 1].start)

    def _windows(self, phase):
        """(plane index, input index): the plane positions of ``phase`` that hold input pixels
        (plane position j holds padded pixel j*s + r, i.e. input pixel j*s + r - pad)."""
        plane_idx, x_idx = [Ellipsis], [Ellipsis]
        for r, s, p, size, q in zip(phase, self.s3, self.p3, self.in3, self.q):
            lo = max(0, -(-(p - r) // s))
            hi = max(lo, min(q, -(-(size + p - r) // s)))
            first = lo * s + r - p
            plane_idx.append(slice(lo, hi))
            x_idx.append(slice(first, first + (hi - lo - 1) * s + 1, s) if hi > lo else slice(0, 0))
        return tuple(plane_idx), tuple(x_idx)

    def source(self, x5: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """x5 (N, C, D, H, W) -> xq (N, C * n_planes, plane): zero-padded, split into phases
        (written into ``out``, any buffer of that size, if given)."""
        n, c = x5.shape[:2]
        if self.is_identity:
            return x5.reshape(n, c, self.plane_size)        # no padding, stride 1: x itself
        shape = (n, c, self.n_planes) + self.q
        if self.fast_split and n * c > 0:
            xq = np.empty(shape, dtype=x5.dtype) if out is None else out.reshape(shape)
            split_phases_2x2(x5.reshape(n * c, self.in3[1], self.in3[2]), self.p3[1], self.p3[2],
                             xq.reshape(n * c, 4, self.q[1], self.q[2]))
            return xq.reshape(n, c * self.n_planes, self.plane_size)
        if out is None:
            xq = np.zeros(shape, dtype=x5.dtype)
        else:
            xq = out.reshape(shape)
            xq[...] = 0.0
        for i, (plane_idx, x_idx) in enumerate(self.windows):
            xq[:, :, i][plane_idx] = x5[x_idx]
        return xq.reshape(n, c * self.n_planes, self.plane_size)

    def finish(self, dxq: np.ndarray) -> np.ndarray:
        """Adjoint of :meth:`source`: gradient on the phase planes -> gradient (N, C, D, H, W).
        Every input pixel sits in at most one plane position; pixels no tap reads get 0."""
        n, c = dxq.shape[0], dxq.shape[1] // self.n_planes
        dxq = dxq.reshape((n, c, self.n_planes) + self.q)
        dx = np.zeros((n, c) + self.in3, dtype=dxq.dtype)
        for i, (plane_idx, x_idx) in enumerate(self.windows):
            dx[x_idx] = dxq[:, :, i][plane_idx]
        return dx

    def gemm_args(self) -> tuple:
        """The geometry arguments of the jitted chunk kernels (after the planes)."""
        return (self.n_planes, self.tap_plane, self.tap_offset, self.span, self.zero_cols, self.n_zero,
                self.step_d, self.step_h)

    def gather(self, xq: np.ndarray, cols: np.ndarray) -> None:
        gather_patches(xq, self.n_planes, self.tap_plane, self.tap_offset, self.span,
                       self.zero_cols, self.n_zero, cols)

    def scatter(self, cols: np.ndarray, dxq: np.ndarray) -> None:
        scatter_patches(cols, self.n_planes, self.tap_plane, self.tap_offset, self.span,
                        self.zero_cols, self.n_zero, dxq)

    def use_prefill(self, n: int, c: int, itemsize: int) -> bool:
        """Direct kernels: pad the whole batch up front (one vectorised pass) or per channel
        inside each job (no padded copy of a big batch in memory). Kernels that will run on
        several threads pad per channel: the padded batch would go through main memory twice,
        and memory bandwidth does not grow with the threads here (MobileNet-style depthwise
        layers at 2 threads 20% faster this way; at one thread padding up front wins)."""
        from . import PARALLEL_MIN_WORK, parallel_threads    # (its current value: the kernels' own test)
        in_size = self.in3[0] * self.in3[1] * self.in3[2]
        if parallel_threads() > 1 and n * c * in_size >= PARALLEL_MIN_WORK:
            return False
        return n * c * self.n_planes * self.plane_size * itemsize <= PREFILL_MAX_BYTES

    def planes(self) -> tuple:
        """The geometry arguments of the direct (depthwise) kernels."""
        if not hasattr(self, "_planes"):
            self._planes = (self.box, np.array(self.s3, dtype=np.int64), np.array(self.q, dtype=np.int64),
                            self.tap_plane, self.tap_offset, self.span, self.step_d, self.step_h)
        return self._planes


class WrappedLayout(PatchLayout):
    """The GEMM layout of a stride-1 conv: padded in D and H only, rows of ``P = max(W, Wo)``.

    The padded layout pads every row, so each output row has ``k_w - 1`` unused columns: 6%
    of the GEMM at 32x32, 12% at 16x16, 22% at 8x8 (ResNet-20's 3x3 layers). Here the rows
    keep their width and the taps that reach past a row's end read the next row's first pixels
    (or the previous row's last ones) instead of padding: the gather copies the same one
    contiguous run per (row, sample) and then zeroes those few wrapped entries (``zero_cols``:
    per tap, the columns ``ow`` whose pixel ``ow + kw*d - p`` lies outside ``[0, W)``). A
    'same' conv then has no unused column at all, and its output rows follow each other as in
    the output array. The plane of a channel is ``lead = p_w`` zeros, the ``Qd x Qh x P``
    padded volume (pixel (d, h, w) at ``((d + p_d) * Qh + h + p_h) * P + w``), and enough zeros
    after it for the last tap's run. Only for the GEMM paths (the direct depthwise kernels use
    :class:`PatchLayout`'s boxes).
    """

    def __init__(self, in3: Int3, k3: Int3, s3: Int3, p3: Int3, d3: Int3, o3: Int3):
        assert tuple(s3) == (1, 1, 1), "the wrapped layout is for stride 1"
        self.in3, self.s3, self.p3, self.o3 = in3, s3, p3, o3
        Do, Ho, Wo = o3
        W = in3[2]
        Qd, Qh = (o + d * (k - 1) for o, k, d in zip(o3[:2], k3[:2], d3[:2]))
        P = max(W, Wo)
        self.q = (Qd, Qh, P)
        self.lead = p3[2]
        self.phases, self.n_planes = [(0, 0, 0)], 1
        taps = [tuple(t) for t in np.ndindex(*k3)]
        self.tap_plane = np.zeros(len(taps), dtype=np.int64)
        self.tap_offset = np.array([self.lead + (kd * d3[0] * Qh + kh * d3[1]) * P + kw * d3[2] - p3[2]
                                    for kd, kh, kw in taps], dtype=np.int64)
        self.span = (Do - 1) * Qh * P + (Ho - 1) * P + Wo
        self.step_d, self.step_h = Qh * P, P
        self.plane_size = max(self.lead + Qd * Qh * P, int(self.tap_offset.max()) + self.span)
        # pixels kept: all of each row; the rows and slices the padded volume reaches
        self.kept3 = (max(0, min(in3[0], Qd - p3[0])), max(0, min(in3[1], Qh - p3[1])), W)
        self.is_identity = (self.lead == 0 and p3[0] == p3[1] == 0 and (Qd, Qh, P) == tuple(in3)
                            and self.plane_size == Qd * Qh * P)
        starts = [od * self.step_d + oh * self.step_h for od in range(Do) for oh in range(Ho)]
        wrapped = [[ow for ow in range(Wo) if not 0 <= ow + kw * d3[2] - p3[2] < W] for _, _, kw in taps]
        self.n_zero = np.array([len(starts) * len(w) for w in wrapped], dtype=np.int64)
        self.zero_cols = np.zeros((len(taps), int(self.n_zero.max())), dtype=np.int64)
        for k, w in enumerate(wrapped):
            self.zero_cols[k, :self.n_zero[k]] = [st + ow for st in starts for ow in w]

    def _pixels(self, xq: np.ndarray) -> np.ndarray:
        """The view of the planes ``xq (N, C, plane_size)`` that holds the kept input pixels."""
        (Qd, Qh, P), (pd, ph), (Dk, Hk, W) = self.q, self.p3[:2], self.kept3
        core = xq[:, :, self.lead:self.lead + Qd * Qh * P].reshape(xq.shape[:2] + (Qd, Qh, P))
        return core[:, :, pd:pd + Dk, ph:ph + Hk, :W]

    def source(self, x5: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        n, c = x5.shape[:2]
        if self.is_identity:
            return x5.reshape(n, c, self.plane_size)
        xq = np.zeros((n, c, self.plane_size), dtype=x5.dtype) if out is None else out.reshape(n, c, self.plane_size)
        if out is not None:
            xq[...] = 0.0
        Dk, Hk = self.kept3[:2]
        self._pixels(xq)[...] = x5[:, :, :Dk, :Hk]
        return xq

    def finish(self, dxq: np.ndarray) -> np.ndarray:
        n, c = dxq.shape[0], dxq.shape[1]
        dx = np.zeros((n, c) + tuple(self.in3), dtype=dxq.dtype)
        Dk, Hk = self.kept3[:2]
        dx[:, :, :Dk, :Hk] = self._pixels(dxq.reshape(n, c, self.plane_size))
        return dx

    def use_prefill(self, n: int, c: int, itemsize: int) -> bool:     # pragma: no cover
        raise TypeError("the wrapped layout is for the GEMM paths only")

    def planes(self) -> tuple:     # pragma: no cover
        raise TypeError("the wrapped layout is for the GEMM paths only")


# ----------------------------------------------------------------------------------------------
# Whole chunks in one jitted call. With BLAS's GEMM callable from Numba (blas.gemm_function), a
# chunk's gather -> GEMM -> write-out needs no Python, and the chunks of a batch run as one
# prange on Numba's threads: no hand-off to the Python worker pool (its wake-ups cost 10-60 us
# each way here) and no GIL between the steps. ``gemm`` is that ctypes function; ``nb`` samples
# per chunk; every chunk allocates its own scratch of ``pitch`` columns (see _pitch).
# ----------------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def _gemm(gemm, trans_b, m, n, k, a, lda, b, ldb, c, ldc):
    """c[:m, :n] = a[:m, :k] @ (b[:n, :k].T if trans_b else b[:k, :n]) (row-major, leading
    dimensions given; views start where the operands start)."""
    gemm(blas.ROW_MAJOR, blas.NO_TRANS, blas.TRANS if trans_b else blas.NO_TRANS, m, n, k, 1.0,
         a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, c.ctypes.data, ldc)


@njit(nogil=True, cache=True)
def _chunk_bounds(chunk, nb, n, span):
    """Samples [b0, b1) of chunk number ``chunk`` (``nb`` per chunk) and its m GEMM columns."""
    b0 = chunk * nb
    b1 = min(n, b0 + nb)
    return b0, b1, (b1 - b0) * span


@parallel_kernel(cache=True)
def chunked_forward(xq, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, step_d, step_h,
                    w, bias, groups, nb, pitch, gemm, y):
    """conv_forward's GEMM path: y (N, C_out, Do, Ho, Wo) from the source planes xq and
    w (C_out, CK_g)."""
    n, c_out, ck_g = xq.shape[0], w.shape[0], w.shape[1]
    cout_g = c_out // groups
    for chunk in prange((n + nb - 1) // nb):
        b0, b1, m = _chunk_bounds(chunk, nb, n, span)
        cols = np.empty((groups * ck_g, pitch), xq.dtype)
        prod = np.empty((c_out, pitch), xq.dtype)
        gather_patches(xq[b0:b1], n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, cols)
        for g in range(groups):
            _gemm(gemm, False, cout_g, m, ck_g, w[g * cout_g:], ck_g, cols[g * ck_g:], pitch, prod[g * cout_g:], pitch)
        gemm_to_output(prod, span, step_d, step_h, bias, y[b0:b1])


@parallel_kernel(cache=True)
def chunked_input_grad(g, wt, groups, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero,
                       step_d, step_h, nb, pitch, gemm, dxq):
    """conv_input_grad's scatter path: the patch-matrix gradient wt_g @ g_t of each chunk added
    back onto the (zeroed) source planes dxq. wt (G, CK_g, C_out_g) contiguous."""
    n, c_out = g.shape[0], g.shape[1]
    ck_g, cout_g = wt.shape[1], wt.shape[2]
    for chunk in prange((n + nb - 1) // nb):
        b0, b1, m = _chunk_bounds(chunk, nb, n, span)
        g_t = np.empty((c_out, pitch), g.dtype)
        cols = np.empty((groups * ck_g, pitch), g.dtype)
        output_to_gemm(g[b0:b1], span, step_d, step_h, g_t)
        for gi in range(groups):
            _gemm(gemm, False, ck_g, m, cout_g, wt[gi], cout_g, g_t[gi * cout_g:], pitch, cols[gi * ck_g:], pitch)
        scatter_patches(cols, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, dxq[b0:b1])


@parallel_kernel(cache=True)
def chunked_weight_grad(xq, g, groups, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero,
                        step_d, step_h, tall, nb, pitch, gemm, parts):
    """conv_weight_grad's GEMM path, one partial sum per chunk: parts[chunk, group] =
    cols_g @ g_t^T (CK_g, C_out_g) if tall else g_t @ cols_g^T (C_out_g, CK_g)."""
    n, c_out = g.shape[0], g.shape[1]
    cout_g = c_out // groups
    ck_g = parts.shape[2] if tall else parts.shape[3]
    for chunk in prange((n + nb - 1) // nb):
        b0, b1, m = _chunk_bounds(chunk, nb, n, span)
        cols = np.empty((groups * ck_g, pitch), xq.dtype)
        g_t = np.empty((c_out, pitch), xq.dtype)
        gather_patches(xq[b0:b1], n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, cols)
        output_to_gemm(g[b0:b1], span, step_d, step_h, g_t)
        for gi in range(groups):
            cols_g, g_g = cols[gi * ck_g:], g_t[gi * cout_g:]
            if tall:
                _gemm(gemm, True, ck_g, cout_g, m, cols_g, pitch, g_g, pitch, parts[chunk, gi], cout_g)
            else:
                _gemm(gemm, True, cout_g, ck_g, m, g_g, pitch, cols_g, pitch, parts[chunk, gi], ck_g)


@parallel_kernel(cache=True)
def chunked_backward(gq, x, wt, groups, n_planes, tap_plane, tap_offset, span, zero_cols, n_zero,
                     step_d, step_h, nb, pitch, gemm, gx, parts):
    """conv_backward: per chunk the patch matrix of grad_out's planes gq, gx = wt_g @ cols_g
    (wt (G, C_in_g, CK_g)) and parts[chunk, group] = cols_g @ x_t^T (CK_g, C_in_g)."""
    n, c_in = x.shape[0], x.shape[1]
    cin_g, ck_g = wt.shape[1], wt.shape[2]
    no_bias = np.zeros(c_in, gq.dtype)
    for chunk in prange((n + nb - 1) // nb):
        b0, b1, m = _chunk_bounds(chunk, nb, n, span)
        cols = np.empty((groups * ck_g, pitch), gq.dtype)
        prod = np.empty((c_in, pitch), gq.dtype)
        x_t = np.empty((c_in, pitch), gq.dtype)
        gather_patches(gq[b0:b1], n_planes, tap_plane, tap_offset, span, zero_cols, n_zero, cols)
        for gi in range(groups):
            _gemm(gemm, False, cin_g, m, ck_g, wt[gi], ck_g, cols[gi * ck_g:], pitch, prod[gi * cin_g:], pitch)
        gemm_to_output(prod, span, step_d, step_h, no_bias, gx[b0:b1])
        output_to_gemm(x[b0:b1], span, step_d, step_h, x_t)
        for gi in range(groups):
            _gemm(gemm, True, ck_g, cin_g, m, cols[gi * ck_g:], pitch, x_t[gi * cin_g:], pitch, parts[chunk, gi], cin_g)


# Whole chunks in one jitted call when BLAS's GEMM is callable from Numba (False: the chunks
# run as Python closures on the worker pool, the path without that GEMM)
JITTED_CHUNKS = True


def _jitted_plan(n: int, bytes_per_sample: int, dtype):
    """(gemm, samples per chunk, run on Numba's threads) for the jitted chunk kernels, or None
    when they cannot run (no GEMM for this dtype)."""
    gemm = blas.gemm_function(dtype) if JITTED_CHUNKS else None
    if gemm is None:
        return None
    workers = _workers()
    if n * bytes_per_sample < POOL_MIN_BYTES:
        workers = 1
    from . import parallel_threads
    threaded = workers > 1 and parallel_threads() > 1
    return gemm, _batch_chunk(n, bytes_per_sample, workers), threaded


def _run_jitted(kernel, threaded: bool, *args):
    """The parallel twin over the chunks when ``threaded``, else the serial one; BLAS held to
    one thread whenever the library runs more than one (as in _run_chunks)."""
    if _workers() <= 1:
        return kernel.serial(*args)
    with blas.single_thread():
        return (kernel.parallel if threaded else kernel.serial)(*args)


# ----------------------------------------------------------------------------------------------
# Public kernels
# ----------------------------------------------------------------------------------------------

# The GEMM paths of stride-1 convs use the WrappedLayout (False: the padded layout everywhere)
WRAP_ROWS = True


@functools.lru_cache(maxsize=256)
def patch_layout(in3: Int3, k3: Int3, s3: Int3, p3: Int3, d3: Int3, o3: Int3, wrap: bool = False) -> "PatchLayout":
    """The (immutable) layout of one geometry, built once: a training loop asks for the same
    few geometries every step. ``wrap``: the GEMM layout (:class:`WrappedLayout` for stride 1)."""
    if wrap and WRAP_ROWS and tuple(s3) == (1, 1, 1):
        return WrappedLayout(in3, k3, s3, p3, d3, o3)
    return PatchLayout(in3, k3, s3, p3, d3, o3)


# The input gradient of a strided depthwise conv runs as the stride-1 one of the gradient with
# zeros inserted between the strides: s^2 times the multiply-adds, but a gather over one padded
# plane instead of scatter-adds into s^2 phase planes, which cost more (B=128, stride 2:
# C=64 32x32 20 -> 12 ms, C=128 16x16 9.5 -> 5.6 ms). Forward and weight gradient measured
# slower that way, so they keep the phase planes.
DEPTHWISE_DENSE = True


def _dense(o3: Int3, s3: Int3) -> Int3:
    """The stride-1 output size whose every s-th position is a stride-s output position."""
    return tuple((o - 1) * s + 1 for o, s in zip(o3, s3))


def _is_pointwise(kernel: Int3, stride: Int3, padding: Int3, in_size: Int3, out_size: Int3) -> bool:
    return kernel == (1, 1, 1) and stride == (1, 1, 1) and padding == (0, 0, 0) and in_size == out_size


def _geometry(weight_shape, stride, padding, dilation, in_size, out_size):
    return (_as3(weight_shape[2:], 1), _as3(stride, 1), _as3(padding, 0), _as3(dilation, 1),
            _as3(in_size, 1), _as3(out_size, 1))


def conv_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                 stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                 groups: int, out_size: Sequence[int], keep_source: bool = False):
    """Convolution (cross-correlation, as in PyTorch).

    x (N, C_in, *S_in), weight (C_out, C_in/groups, *K), bias (C_out,) or None
    -> y (N, C_out, *out_size). ``padding`` is the padding before each spatial dim; the
    padding after it is whatever ``out_size`` implies. Shapes are assumed valid (checked in
    ``tinygrad_cnn.shapes`` / the functional layer).

    ``keep_source=True`` returns ``(y, source)``: the padded phase planes of x that the GEMM
    path builds anyway (None on the other paths, or when they are x itself), for
    :func:`conv_weight_grad` to reuse instead of building them again.
    """
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    dtype = np.result_type(x.dtype, weight.dtype)
    x5 = _as5d(x.astype(dtype, copy=False))
    w5 = _as5d(weight.astype(dtype, copy=False))
    k3, s3, p3, d3, i3, o3 = _geometry(weight.shape, stride, padding, dilation, x.shape[2:], out_size)
    out_shape = (n, c_out) + tuple(int(v) for v in out_size)
    b = np.zeros(c_out, dtype) if bias is None else bias.astype(dtype, copy=False)
    cin_g, cout_g = c_in // groups, c_out // groups
    n_out = o3[0] * o3[1] * o3[2]
    y5 = np.empty((n, c_out) + o3, dtype=dtype)

    if _is_pointwise(k3, s3, p3, i3, o3):
        wg = w5.reshape(groups, cout_g, cin_g)
        xg, yg = x5.reshape(n, groups, cin_g, n_out), y5.reshape(n, groups, cout_g, n_out)

        def pointwise(b0, b1):
            np.matmul(wg, xg[b0:b1], out=yg[b0:b1])
            yg[b0:b1] += b.reshape(groups, cout_g, 1)
        _run_chunks(n, (c_in + c_out) * n_out * x5.itemsize, pointwise)
        return (y5.reshape(out_shape), None) if keep_source else y5.reshape(out_shape)

    layout = patch_layout(i3, k3, s3, p3, d3, o3)
    if cin_g == 1:      # one input channel per group: direct loops, parallel inside
        prefill = layout.use_prefill(n, c_in, x5.itemsize)
        xs = layout.source(x5).reshape((n, c_in * layout.n_planes) + layout.q) if prefill else x5
        depthwise_forward(xs, prefill, w5.reshape(c_out, -1), *layout.planes(), b, y5)
        return (y5.reshape(out_shape), None) if keep_source else y5.reshape(out_shape)

    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    wg = w5.reshape(groups, cout_g, ck_g)
    layout = patch_layout(i3, k3, s3, p3, d3, o3, wrap=True)

    keep = keep_source and not layout.is_identity
    kept = np.empty((n, c_in * layout.n_planes, layout.plane_size), dtype=dtype) if keep else None

    plan = _jitted_plan(n, groups * ck_g * layout.span * x5.itemsize, dtype)
    if plan is not None:
        gemm, nb, threaded = plan
        _run_jitted(chunked_forward, threaded, layout.source(x5, out=kept), *layout.gemm_args(),
                    np.ascontiguousarray(wg.reshape(c_out, ck_g)), b, groups, nb,
                    _pitch(nb * layout.span, x5.itemsize), gemm, y5)
        return (y5.reshape(out_shape), kept) if keep_source else y5.reshape(out_shape)

    def chunk(b0, b1):
        m = (b1 - b0) * layout.span
        cols = _gemm_scratch("cols", groups * ck_g, m, dtype)
        prod = _gemm_scratch("prod", c_out, m, dtype)
        xq = kept[b0:b1] if keep else _scratch("xq", b1 - b0, c_in * layout.n_planes * layout.plane_size, dtype)
        layout.gather(layout.source(x5[b0:b1], out=xq), cols)
        np.matmul(wg, _grouped(cols, groups, m), out=_grouped(prod, groups, m))
        gemm_to_output(prod, layout.span, layout.step_d, layout.step_h, b, y5[b0:b1])
    _run_chunks(n, groups * ck_g * layout.span * x5.itemsize, chunk)
    return (y5.reshape(out_shape), kept) if keep_source else y5.reshape(out_shape)


def _flipped_pad(k3: Int3, d3: Int3, p3: Int3) -> Int3:
    """Padding of the stride-1 input gradient written as a conv of grad_out (flipped kernel)."""
    return tuple(d * (k - 1) - p for k, d, p in zip(k3, d3, p3))


def _input_grad_gathers(k3: Int3, s3: Int3, p3: Int3, d3: Int3, c_in: int, c_out: int, groups: int) -> bool:
    """Whether :func:`conv_input_grad` runs as a conv of grad_out with the flipped kernel: with
    stride 1 the transpose of a conv is such a conv, and gathering C_out*K patch rows is cheaper
    than scattering C_in*K rows back (a read-modify-write) unless C_out >> C_in."""
    cheaper = (c_out <= 2 * c_in) if c_in // groups > 1 else c_out // groups == 1
    return s3 == (1, 1, 1) and min(_flipped_pad(k3, d3, p3)) >= 0 and cheaper


def _flipped_weight(w5: np.ndarray, groups: int, k3: Int3) -> np.ndarray:
    """The kernel of that conv: flipped in space, channel axes swapped per group ->
    (C_in, C_out/groups, *K)."""
    c_out, cin_g = w5.shape[:2]
    w_t = w5.reshape((groups, c_out // groups, cin_g) + k3).transpose(0, 2, 1, 3, 4, 5)
    return w_t[..., ::-1, ::-1, ::-1].reshape((groups * cin_g, c_out // groups) + k3)


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

    if _input_grad_gathers(k3, s3, p3, d3, c_in, c_out, groups):
        # (a pointwise conv lands in the pointwise path of conv_forward: a matmul with w^T)
        gx = conv_forward(g5, _flipped_weight(w5, groups, k3), None, s3, _flipped_pad(k3, d3, p3), d3, groups, i3)
        return gx.reshape(in_shape)

    if cin_g == 1 and s3 != (1, 1, 1) and DEPTHWISE_DENSE:
        g_dense = np.zeros((n, c_out) + _dense(o3, s3), dtype=dtype)    # zeros between the strides
        g_dense[:, :, ::s3[0], ::s3[1], ::s3[2]] = g5
        return conv_input_grad(g_dense, w5, (1, 1, 1), p3, d3, groups, i3).reshape(in_shape)

    layout = patch_layout(i3, k3, s3, p3, d3, o3)
    if cin_g == 1:
        if layout.use_prefill(n, c_in, g5.itemsize):
            dxq = np.empty((n, c_in * layout.n_planes) + layout.q, dtype=dtype)
            depthwise_input_grad(g5, w5.reshape(c_out, -1), True, *layout.planes(), dxq)
            return layout.finish(dxq.reshape(n, c_in * layout.n_planes, layout.plane_size)).reshape(in_shape)
        dx5 = np.empty((n, c_in) + i3, dtype=dtype)
        depthwise_input_grad(g5, w5.reshape(c_out, -1), False, *layout.planes(), dx5)
        return dx5.reshape(in_shape)

    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    wt = w5.reshape(groups, cout_g, ck_g).transpose(0, 2, 1)      # (G, CK_g, C_out_g)
    plan = _jitted_plan(n, groups * ck_g * layout.span * g5.itemsize, dtype)
    if plan is not None:
        gemm, nb, threaded = plan
        dxq = np.zeros((n, c_in * layout.n_planes, layout.plane_size), dtype=dtype)
        _run_jitted(chunked_input_grad, threaded, g5, np.ascontiguousarray(wt), groups, *layout.gemm_args(),
                    nb, _pitch(nb * layout.span, g5.itemsize), gemm, dxq)
        return layout.finish(dxq).reshape(in_shape)
    gx5 = np.empty((n, c_in) + i3, dtype=dtype)

    def chunk(b0, b1):
        m = (b1 - b0) * layout.span
        g_t = _gemm_scratch("g_t", c_out, m, dtype)
        cols = _gemm_scratch("cols", groups * ck_g, m, dtype)
        output_to_gemm(g5[b0:b1], layout.span, layout.step_d, layout.step_h, g_t)
        np.matmul(wt, _grouped(g_t, groups, m), out=_grouped(cols, groups, m))
        dxq = _scratch("xq", b1 - b0, c_in * layout.n_planes * layout.plane_size, dtype)
        dxq[...] = 0.0
        layout.scatter(cols, dxq.reshape(b1 - b0, c_in * layout.n_planes, layout.plane_size))
        gx5[b0:b1] = layout.finish(dxq.reshape(b1 - b0, c_in * layout.n_planes, layout.plane_size))
    _run_chunks(n, groups * ck_g * layout.span * g5.itemsize, chunk)
    return gx5.reshape(in_shape)


def conv_weight_grad(x: np.ndarray, grad_out: np.ndarray, kernel_size: Sequence[int],
                     stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int],
                     groups: int, source: Optional[np.ndarray] = None) -> np.ndarray:
    """Gradient of :func:`conv_forward` with respect to the weight.

    x (N, C_in, *S_in), grad_out (N, C_out, *S_out) -> (C_out, C_in/groups, *kernel_size).
    ``source``: the padded planes of x kept by ``conv_forward(..., keep_source=True)``.
    """
    n, c_in = x.shape[:2]
    c_out = grad_out.shape[1]
    cin_g, cout_g = c_in // groups, c_out // groups
    dtype = np.result_type(x.dtype, grad_out.dtype)
    x5 = _as5d(x.astype(dtype, copy=False))
    g5 = _as5d(grad_out.astype(dtype, copy=False))
    w_shape = (c_out, cin_g) + tuple(int(v) for v in kernel_size)
    k3, s3, p3, d3, i3, o3 = _geometry(w_shape, stride, padding, dilation, x.shape[2:], grad_out.shape[2:])
    n_out = o3[0] * o3[1] * o3[2]

    if _is_pointwise(k3, s3, p3, i3, o3):
        xg = x5.reshape(n, groups, cin_g, n_out)
        gg = g5.reshape(n, groups, cout_g, n_out)
        parts = _run_chunks(n, (c_in + c_out) * n_out * x5.itemsize,
                            lambda b0, b1: np.matmul(gg[b0:b1], xg[b0:b1].transpose(0, 1, 3, 2)).sum(axis=0))
        return np.sum(parts, axis=0).astype(dtype, copy=False).reshape(w_shape)

    layout = patch_layout(i3, k3, s3, p3, d3, o3)
    if cin_g == 1:
        gw = np.empty((c_out, k3[0] * k3[1] * k3[2]), dtype=dtype)
        prefill = layout.use_prefill(n, c_in, x5.itemsize)
        xs = layout.source(x5).reshape((n, c_in * layout.n_planes) + layout.q) if prefill else x5
        depthwise_weight_grad(xs, g5, prefill, *layout.planes(), gw)
        return gw.reshape(w_shape)

    ck_g = cin_g * k3[0] * k3[1] * k3[2]
    layout = patch_layout(i3, k3, s3, p3, d3, o3, wrap=True)     # the one conv_forward keeps
    # BLAS runs a long-K product ~2x faster when the result has more rows than columns
    # (measured: 16 x 144 from K = 6516 at 67 GFLOP/s, its transpose 144 x 16 at 139).
    tall = ck_g >= cout_g
    part_shape = (groups, ck_g, cout_g) if tall else (groups, cout_g, ck_g)

    plan = _jitted_plan(n, groups * ck_g * layout.span * x5.itemsize, dtype)
    if plan is not None:
        gemm, nb, threaded = plan
        xq = source if source is not None and source.dtype == dtype else layout.source(x5)
        parts = np.empty((-(-n // nb),) + part_shape, dtype=dtype)
        _run_jitted(chunked_weight_grad, threaded, xq, g5, groups, *layout.gemm_args(), tall, nb,
                    _pitch(nb * layout.span, x5.itemsize), gemm, parts)
        return _sum_parts(parts, part_shape, dtype, tall, w_shape)

    def chunk(b0, b1):
        m = (b1 - b0) * layout.span
        cols = _gemm_scratch("cols", groups * ck_g, m, dtype)
        g_t = _gemm_scratch("g_t", c_out, m, dtype)
        if source is not None and source.dtype == dtype:
            xq = source[b0:b1]
        else:
            xq = layout.source(x5[b0:b1], out=_scratch("xq", b1 - b0, c_in * layout.n_planes * layout.plane_size, dtype))
        layout.gather(xq, cols)
        output_to_gemm(g5[b0:b1], layout.span, layout.step_d, layout.step_h, g_t)
        g_g, cols_g = _grouped(g_t, groups, m), _grouped(cols, groups, m)
        if tall:
            return np.matmul(cols_g, g_g.transpose(0, 2, 1))       # (G, CK_g, C_out_g)
        return np.matmul(g_g, cols_g.transpose(0, 2, 1))           # (G, C_out_g, CK_g)
    parts = _run_chunks(n, groups * ck_g * layout.span * x5.itemsize, chunk)
    return _sum_parts(parts, part_shape, dtype, tall, w_shape)


def _sum_parts(parts, part_shape: tuple, dtype, tall: bool, w_shape) -> np.ndarray:
    """The weight gradient from the chunks' partial products, ``part_shape`` = (G, CK_g, C_out_g)
    if tall else (G, C_out_g, CK_g), summed in chunk order: the same sum whatever the thread
    timing (and zeros for an empty batch)."""
    gw = np.zeros(part_shape, dtype=dtype)
    for part in parts:
        gw += part
    if tall:
        gw = gw.transpose(0, 2, 1)
    return np.ascontiguousarray(gw).reshape(w_shape)


def backward_fuses(weight_shape: Sequence[int], c_in: int, stride: Sequence[int], padding: Sequence[int],
                   dilation: Sequence[int], groups: int) -> bool:
    """Whether :func:`conv_backward` computes both gradients of this geometry in one pass: the
    input gradient is a stride-1 gather (a GEMM conv of grad_out with the flipped kernel, as in
    :func:`conv_input_grad`), not a pointwise or one-channel-per-group conv."""
    c_out, cin_g = int(weight_shape[0]), int(weight_shape[1])
    k3, s3, p3, d3 = (_as3(weight_shape[2:], 1), _as3(stride, 1), _as3(padding, 0), _as3(dilation, 1))
    return (_input_grad_gathers(k3, s3, p3, d3, c_in, c_out, groups) and k3 != (1, 1, 1)
            and cin_g > 1 and c_out // groups > 1)


def conv_backward(x: np.ndarray, grad_out: np.ndarray, weight: np.ndarray, stride: Sequence[int],
                  padding: Sequence[int], dilation: Sequence[int], groups: int):
    """Both gradients of :func:`conv_forward` at once: ``(gx, gw)`` as
    :func:`conv_input_grad` and :func:`conv_weight_grad` give them, or None when
    :func:`backward_fuses` says no (then call those two).

    The input gradient is a convolution of grad_out with the flipped kernel, so each chunk
    builds the patch matrix of grad_out, ``cols_g[(co, k'), (b, i)] = g[b, co, i - k*d + p]``
    (k' = the flipped tap k). The weight gradient is made of the same products:
    ``gw[co, ci, k] = sum_(b, i) cols_g[(co, k'), (b, i)] * x[b, ci, i]`` -- one more GEMM with
    x laid out in the gather's column order, and no second patch matrix (of x) at all.
    """
    c_in = x.shape[1]
    if not backward_fuses(weight.shape, c_in, stride, padding, dilation, groups):
        return None
    n, c_out = grad_out.shape[:2]
    cin_g, cout_g = c_in // groups, c_out // groups
    dtype = np.result_type(x.dtype, grad_out.dtype, weight.dtype)
    x5 = _as5d(x.astype(dtype, copy=False))
    g5 = _as5d(grad_out.astype(dtype, copy=False))
    w5 = _as5d(weight.astype(dtype, copy=False))
    k3, s3, p3, d3, i3, o3 = _geometry(weight.shape, stride, padding, dilation, x.shape[2:], grad_out.shape[2:])
    n_k = k3[0] * k3[1] * k3[2]
    wt_g = _flipped_weight(w5, groups, k3).reshape(groups, cin_g, cout_g * n_k)
    layout = patch_layout(o3, k3, (1, 1, 1), _flipped_pad(k3, d3, p3), d3, i3, wrap=True)   # the gather over grad_out
    ck_g = cout_g * n_k
    gx5 = np.empty((n, c_in) + i3, dtype=dtype)
    no_bias = np.zeros(c_in, dtype)

    def chunk(b0, b1):
        m = (b1 - b0) * layout.span
        cols = _gemm_scratch("cols", groups * ck_g, m, dtype)
        prod = _gemm_scratch("prod", c_in, m, dtype)
        gq = _scratch("xq", b1 - b0, c_out * layout.n_planes * layout.plane_size, dtype)
        layout.gather(layout.source(g5[b0:b1], out=gq), cols)
        cols_g = _grouped(cols, groups, m)
        np.matmul(wt_g, cols_g, out=_grouped(prod, groups, m))
        gemm_to_output(prod, layout.span, layout.step_d, layout.step_h, no_bias, gx5[b0:b1])
        x_t = _gemm_scratch("g_t", c_in, m, dtype)      # x in the gather's columns, 0 in the unused ones
        output_to_gemm(x5[b0:b1], layout.span, layout.step_d, layout.step_h, x_t)
        return np.matmul(cols_g, _grouped(x_t, groups, m).transpose(0, 2, 1))    # (G, CK_g, C_in_g)

    plan = _jitted_plan(n, groups * ck_g * layout.span * x5.itemsize, dtype)
    if plan is not None:
        gemm, nb, threaded = plan
        parts = np.empty((-(-n // nb), groups, ck_g, cin_g), dtype=dtype)
        _run_jitted(chunked_backward, threaded, layout.source(g5), x5, np.ascontiguousarray(wt_g), groups,
                    *layout.gemm_args(), nb, _pitch(nb * layout.span, x5.itemsize), gemm, gx5, parts)
    else:
        parts = _run_chunks(n, groups * ck_g * layout.span * x5.itemsize, chunk)

    acc = np.zeros((groups, ck_g, cin_g), dtype=dtype)
    for part in parts:          # in chunk order: the same sum whatever the thread timing
        acc += part
    # row (co, k') holds flipped tap k' = n_k - 1 - k: reverse the taps, then (C_out, C_in_g, *K)
    gw = acc.reshape(groups, cout_g, n_k, cin_g)[:, :, ::-1, :].transpose(0, 1, 3, 2)
    gw = np.ascontiguousarray(gw).reshape((c_out, cin_g) + tuple(int(v) for v in weight.shape[2:]))
    return gx5.reshape(x.shape[:2] + tuple(x.shape[2:])), gw


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
