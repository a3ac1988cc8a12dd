"""Batch-norm kernels: per-channel statistics and the fused normalise / gradient passes.

Arrays are viewed as ``(N, C, L)`` (L = product of the spatial dims). Each channel's sums run
in one thread, in float64, in a fixed order, so results do not depend on the thread count.
NumPy needs about seven passes over the activation for a forward and twelve for a backward;
these kernels need three and four. They run as plain Python under ``NUMBA_DISABLE_JIT=1``;
``*_reference`` are the NumPy oracles used in the tests.
"""
import numpy as np
from numba import njit, prange
from . import MEMORY_BOUND_MIN_WORK, parallel_kernel


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True, fastmath={"reassoc"})   # reassoc: vectorised row sums
def channel_mean_var(x3):
    """Per-channel mean and biased variance (two-pass, float64) of ``x3 (N, C, L)``."""
    n, c, l = x3.shape
    mean = np.empty(c, np.float64)
    var = np.empty(c, np.float64)
    for ch in prange(c):
        total = 0.0
        for b in range(n):
            row = x3[b, ch]
            part = 0.0
            for j in range(l):
                part += row[j]
            total += part
        count = n * l
        mu = total / count if count > 0 else np.nan
        total = 0.0
        for b in range(n):
            row = x3[b, ch]
            part = 0.0
            for j in range(l):
                d = row[j] - mu
                part += d * d
            total += part
        mean[ch] = mu
        var[ch] = total / count if count > 0 else np.nan
    return mean, var


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def normalize(x3, mean, scale, shift, out3):
    """out = (x - mean[c]) * scale[c] + shift[c] (mean, scale, shift in x's dtype)."""
    n, c, l = x3.shape
    for r in prange(n * c):
        b, ch = r // c, r % c
        mu, s, t = mean[ch], scale[ch], shift[ch]
        src, dst = x3[b, ch], out3[b, ch]
        for j in range(l):
            dst[j] = (src[j] - mu) * s + t


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True, fastmath={"reassoc"})
def grad_sums(g3, x3, mean):
    """Per channel: sum(g) and sum(g * (x - mean)), float64."""
    n, c, l = g3.shape
    sum_g = np.empty(c, np.float64)
    sum_gxc = np.empty(c, np.float64)
    for ch in prange(c):
        mu = mean[ch]
        t1, t2 = 0.0, 0.0
        for b in range(n):
            grow, xrow = g3[b, ch], x3[b, ch]
            p1, p2 = 0.0, 0.0
            for j in range(l):
                gv = grow[j]
                p1 += gv
                p2 += gv * (xrow[j] - mu)
            t1 += p1
            t2 += p2
        sum_g[ch] = t1
        sum_gxc[ch] = t2
    return sum_g, sum_gxc


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def grad_input(g3, x3, mean, a, k, shift, out3):
    """out = a[c] * g - k[c] * (x - mean[c]) - shift[c] (all per-channel vectors in g's dtype)."""
    n, c, l = g3.shape
    for r in prange(n * c):
        b, ch = r // c, r % c
        mu, ac, kc, sc = mean[ch], a[ch], k[ch], shift[ch]
        grow, xrow, dst = g3[b, ch], x3[b, ch], out3[b, ch]
        for j in range(l):
            dst[j] = ac * grow[j] - kc * (xrow[j] - mu) - sc


def channel_mean_var_reference(x3):
    x = x3.astype(np.float64)
    return x.mean(axis=(0, 2)), x.var(axis=(0, 2))


def grad_sums_reference(g3, x3, mean):
    g, xc = g3.astype(np.float64), x3.astype(np.float64) - mean.reshape(1, -1, 1)
    return g.sum(axis=(0, 2)), (g * xc).sum(axis=(0, 2))
