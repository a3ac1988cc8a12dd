"""Batch-norm kernels: the training forward and backward, one job per channel.

Arrays are viewed as ``(N, C, L)`` (L = product of the spatial dims). Each channel is one job:
its sums run in one thread, in float64, in a fixed order (so results do not depend on the
thread count), and its element-wise pass follows right away, while the channel's values are
still in cache. NumPy needs about seven passes over the activation for a forward and twelve for
a backward; here the forward reads each channel three times and the backward twice, but only
the first read comes from memory (session 3's kernels ran the statistics over the whole
activation first: MobileNet-style step 3-4% faster this way). They run as plain Python under
``NUMBA_DISABLE_JIT=1``; ``*_reference`` are the NumPy oracles used in the tests.
"""
import numpy as np
from numba import njit, prange
from . import MEMORY_BOUND_MIN_WORK, parallel_kernel


# Per-channel building blocks. The sums allow reassociation (vectorised row sums, float64,
# fixed order); the element-wise passes and the per-channel factors are computed without
# fastmath, so they round exactly as the NumPy formulas in ops/norm.py's docstring.

@njit(nogil=True, cache=True, fastmath={"reassoc"})
def _channel_mean_var(x3, ch):
    """Mean and biased variance (two-pass, float64) of channel ``ch`` of ``x3 (N, C, L)``."""
    n, l = x3.shape[0], x3.shape[2]
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
    return mu, (total / count if count > 0 else np.nan)


@njit(nogil=True, cache=True, fastmath={"reassoc"})
def _channel_grad_sums(g3, x3, ch, mu):
    """sum(g) and sum(g * (x - mu)) (float64) over channel ``ch``."""
    t1, t2 = 0.0, 0.0
    for b in range(g3.shape[0]):
        grow, xrow = g3[b, ch], x3[b, ch]
        p1, p2 = 0.0, 0.0
        for j in range(g3.shape[2]):
            gv = grow[j]
            p1 += gv
            p2 += gv * (xrow[j] - mu)
        t1 += p1
        t2 += p2
    return t1, t2


@njit(nogil=True, cache=True)
def _normalize_channel(x3, ch, mu, s, t, out3):
    """out = (x - mu) * s + t over channel ``ch``."""
    for b in range(x3.shape[0]):
        src, dst = x3[b, ch], out3[b, ch]
        for j in range(x3.shape[2]):
            dst[j] = (src[j] - mu) * s + t


@njit(nogil=True, cache=True)
def _grad_input_channel(g3, x3, ch, mu, a, k, shift, out3):
    """out = a * g - k * (x - mu) - shift over channel ``ch``."""
    for b in range(g3.shape[0]):
        grow, xrow, dst = g3[b, ch], x3[b, ch], out3[b, ch]
        for j in range(g3.shape[2]):
            dst[j] = a * grow[j] - k * (xrow[j] - mu) - shift


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def normalize(x3, mean, scale, shift, out3):
    """out = (x - mean[c]) * scale[c] + shift[c] (mean, scale, shift in x's dtype): eval mode."""
    for ch in prange(x3.shape[1]):
        _normalize_channel(x3, ch, mean[ch], scale[ch], shift[ch], out3)


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def forward_train(x3, weight, bias, eps, mean, invstd, scale, shift, out3):
    """The training forward, one job per channel: its statistics, then
    ``out = (x - mean) * scale + shift`` while the channel is still in cache (the second and
    third passes over it hit the cache instead of memory). ``weight`` / ``bias`` have C entries
    (ones / zeros for a layer without them); ``mean``, ``invstd = 1/sqrt(var + eps)``,
    ``scale = invstd * weight`` and ``shift = bias`` are filled in x's dtype. Returns the
    float64 mean and biased variance (for the running statistics)."""
    c = x3.shape[1]
    mean64 = np.empty(c, np.float64)
    var64 = np.empty(c, np.float64)
    for ch in prange(c):
        mu, var = _channel_mean_var(x3, ch)
        mean64[ch], var64[ch] = mu, var
        mean[ch] = mu
        invstd[ch] = 1.0 / np.sqrt(var + eps)
        scale[ch] = invstd[ch] * weight[ch]
        shift[ch] = bias[ch]
        _normalize_channel(x3, ch, mean[ch], scale[ch], shift[ch], out3)
    return mean64, var64


@parallel_kernel(min_work=MEMORY_BOUND_MIN_WORK, cache=True)
def backward_train(g3, x3, mean, invstd, scale, k, shift, out3):
    """The training input gradient, one job per channel: ``sum(g)``, ``sum(g * (x - mean))``,
    then ``k = scale * invstd^2 * sum(g (x - mean)) / M`` and ``shift = scale * sum(g) / M``
    (filled in g's dtype), then ``out = scale * g - k * (x - mean) - shift`` while the channel
    is in cache. Returns the two sums (float64) for the weight and bias gradients."""
    n, c, l = g3.shape
    sum_g = np.empty(c, np.float64)
    sum_gxc = np.empty(c, np.float64)
    for ch in prange(c):
        t1, t2 = _channel_grad_sums(g3, x3, ch, mean[ch])
        sum_g[ch], sum_gxc[ch] = t1, t2
        k[ch] = scale[ch] * invstd[ch] * invstd[ch] * t2 / (n * l)
        shift[ch] = scale[ch] * t1 / (n * l)
        _grad_input_channel(g3, x3, ch, mean[ch], scale[ch], k[ch], shift[ch], out3)
    return sum_g, sum_gxc


def channel_mean_var_reference(x3):
    x = x3.astype(np.float64)
    return x.mean(axis=(0, 2)), x.var(axis=(0, 2))


def grad_sums_reference(g3, x3, mean):
    g, xc = g3.astype(np.float64), x3.astype(np.float64) - mean.reshape(1, -1, 1)
    return g.sum(axis=(0, 2)), (g * xc).sum(axis=(0, 2))


def forward_train_reference(x3, weight, bias, eps):
    """(out, mean, var) of the training forward, in float64."""
    mean, var = channel_mean_var_reference(x3)
    col = lambda v: np.asarray(v, np.float64).reshape(1, -1, 1)  # noqa: E731
    return (x3 - col(mean)) / np.sqrt(col(var) + eps) * col(weight) + col(bias), mean, var


def backward_train_reference(g3, x3, mean, invstd, scale):
    """(gx, sum(g), sum(g * (x - mean))) of the training backward, in float64."""
    sg, sgx = grad_sums_reference(g3, x3, mean)
    m = g3.shape[0] * g3.shape[2]
    col = lambda v: np.asarray(v, np.float64).reshape(1, -1, 1)  # noqa: E731
    k = col(scale) * col(invstd) ** 2 * col(sgx) / m
    gx = col(scale) * g3 - k * (x3 - col(mean)) - col(scale) * col(sg) / m
    return gx, sg, sgx
