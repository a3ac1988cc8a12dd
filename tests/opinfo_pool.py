"""OpInfo specs for pooling, unpooling and resampling (MaxPoolNd, MaxUnpoolNd, GatherByIndexNd,
AvgPoolNd, AvgPoolNdTranspose, ResampleNd, ResampleNdTranspose).

Each sample draws a configuration (kernel, stride, padding, dilation, ceil_mode, sizes, ...)
together with the input, and passes it to ``fn`` / ``torch_fn`` as a small int array ``cfg``
(a non-differentiable input), so both sides see the same drawn configuration.

Inputs of max ops are a random permutation scaled by 0.1: no ties, and finite differences
(eps 1e-6) never change which element is the maximum.  Ties and NaN have their own tests in
tests/test_pool.py.
"""
import numpy as np
import torch
from hypothesis import assume, strategies as st

import tinygrad_cnn.nn.functional as F
from opinfo import OpInfo
from tinygrad_cnn.kernels.pool import pool_windows
from tinygrad_cnn.shapes import pool_output_size

TF = torch.nn.functional


def _ints(cfg):
    return [int(v) for v in (cfg.tolist() if hasattr(cfg, "tolist") else cfg)]


def _distinct(draw, shape):
    """Values 0.1 apart in random order, centred on 0."""
    size = int(np.prod(shape))
    perm = np.array(draw(st.permutations(range(size))), np.float64)
    return ((perm - size / 2) * 0.1).reshape(shape)


def _batch(draw, ndim):
    # keep gradgradcheck cheap: fewer planes for bigger spatial problems
    return (1, draw(st.integers(1, 2))) if ndim < 3 else (1, 1)


@st.composite
def _pool_cfg(draw, n, dilation=True, input_at_least_kernel=False):
    """kernel, stride, padding, dilation, ceil_mode and a spatial size giving a non-empty output."""
    ceil_mode = int(draw(st.booleans()))
    k, s, p, d, spatial = [], [], [], [], []
    for i in range(n):
        ki = draw(st.integers(1, 3))
        si = draw(st.integers(1, 3))            # stride < kernel: overlapping windows
        di = draw(st.integers(1, 2)) if dilation else 1
        pi = draw(st.integers(0, ki // 2))
        low = max(1, di * (ki - 1) + 1 - 2 * pi, ki if input_at_least_kernel else 1)
        size = draw(st.integers(low, max(low, {1: 7, 2: 5, 3: 4}[n])))
        try:
            out = pool_output_size(size, ki, si, pi, di, bool(ceil_mode), i)
        except ValueError:
            assume(False)
        # a window lying entirely in the padding (large dilation) gets -inf and an out-of-range
        # index; PyTorch's backward then writes out of bounds, so keep it out of these samples
        assume(pool_windows(size, ki, si, pi, di, out)[1].min() > 0)
        k.append(ki); s.append(si); p.append(pi); d.append(di); spatial.append(size)
    return k, s, p, d, ceil_mode, spatial


# --------------------------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------------------------


def max_pool_sample(n):
    def sample(draw):
        k, s, p, d, ceil_mode, spatial = draw(_pool_cfg(n))
        x = _distinct(draw, _batch(draw, n) + tuple(spatial))
        return [x, np.array(k + s + p + d + [ceil_mode])]
    return sample


def _split_pool(cfg, n):
    c = _ints(cfg)
    return c[:n], c[n:2 * n], c[2 * n:3 * n], c[3 * n:4 * n], bool(c[4 * n])


def max_pool_fns(n):
    ours = [F.max_pool1d, F.max_pool2d, F.max_pool3d][n - 1]
    theirs = [TF.max_pool1d, TF.max_pool2d, TF.max_pool3d][n - 1]

    def fn(x, cfg):
        k, s, p, d, ceil_mode = _split_pool(cfg, n)
        return ours(x, k, s, p, d, ceil_mode, return_indices=True)

    def torch_fn(x, cfg):
        k, s, p, d, ceil_mode = _split_pool(cfg, n)
        return theirs(x, k, s, p, d, ceil_mode, return_indices=True)
    return fn, torch_fn


MAX_OPS = {"MaxPoolNd", "MaxUnpoolNd", "GatherByIndexNd"}

# --------------------------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------------------------


def avg_pool_sample(n):
    def sample(draw):
        # PyTorch's avg_pool3d refuses inputs smaller than the kernel even when padded
        k, s, p, _, ceil_mode, spatial = draw(_pool_cfg(n, dilation=False, input_at_least_kernel=True))
        count_include_pad = int(draw(st.booleans()))
        divisor = draw(st.sampled_from([0, 0, 2, 5])) if n > 1 else 0
        rng = np.random.default_rng(draw(st.integers(0, 2**31)))
        x = rng.uniform(-2, 2, _batch(draw, n) + tuple(spatial))
        return [x, np.array(k + s + p + [ceil_mode, count_include_pad, divisor])]
    return sample


def _split_avg(cfg, n):
    c = _ints(cfg)
    return c[:n], c[n:2 * n], c[2 * n:3 * n], bool(c[3 * n]), bool(c[3 * n + 1]), (c[3 * n + 2] or None)


def avg_pool_fns(n):
    def fn(x, cfg):
        k, s, p, ceil_mode, cip, div = _split_avg(cfg, n)
        if n == 1:
            return F.avg_pool1d(x, k, s, p, ceil_mode, cip)
        return [F.avg_pool2d, F.avg_pool3d][n - 2](x, k, s, p, ceil_mode, cip, div)

    def torch_fn(x, cfg):
        k, s, p, ceil_mode, cip, div = _split_avg(cfg, n)
        if n == 1:
            return TF.avg_pool1d(x, k, s, p, ceil_mode, cip)
        return [TF.avg_pool2d, TF.avg_pool3d][n - 2](x, k, s, p, ceil_mode, cip, div)
    return fn, torch_fn


AVG_OPS = {"AvgPoolNd", "AvgPoolNdTranspose"}

# --------------------------------------------------------------------------------------------
# adaptive pooling
# --------------------------------------------------------------------------------------------


def adaptive_sample(n, distinct):
    def sample(draw):
        spatial = tuple(draw(st.integers(1, 6 if n < 3 else 3)) for _ in range(n))
        out = [draw(st.integers(1, 5 if n < 3 else 3)) for _ in range(n)]
        shape = _batch(draw, n) + spatial
        if distinct:
            x = _distinct(draw, shape)
        else:
            x = np.random.default_rng(draw(st.integers(0, 2**31))).uniform(-2, 2, shape)
        return [x, np.array(out)]
    return sample


def adaptive_fns(n, kind):
    if kind == "avg":
        ours = [F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d][n - 1]
        theirs = [TF.adaptive_avg_pool1d, TF.adaptive_avg_pool2d, TF.adaptive_avg_pool3d][n - 1]
        return (lambda x, cfg: ours(x, _ints(cfg))), (lambda x, cfg: theirs(x, _ints(cfg)))
    ours = [F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d][n - 1]
    theirs = [TF.adaptive_max_pool1d, TF.adaptive_max_pool2d, TF.adaptive_max_pool3d][n - 1]
    return (lambda x, cfg: ours(x, _ints(cfg), return_indices=True),
            lambda x, cfg: theirs(x, _ints(cfg), return_indices=True))


# --------------------------------------------------------------------------------------------
# max unpooling
# --------------------------------------------------------------------------------------------


def max_unpool_sample(n):
    """Values and duplicate-free indices (PyTorch keeps one of several values sent to the same
    position while we add them; without duplicates both agree)."""
    def sample(draw):
        top = 3 if n == 1 else 2                 # keep the unpooled output small
        k = [draw(st.integers(1, top)) for _ in range(n)]
        s = [draw(st.integers(1, top)) for _ in range(n)]
        p = [draw(st.integers(0, ki // 2)) for ki in k]
        spatial = [draw(st.integers(1, 3)) for _ in range(n)]
        default = [(i - 1) * si - 2 * pi + ki for i, ki, si, pi in zip(spatial, k, s, p)]
        assume(all(v >= 1 for v in default))
        use_size = int(draw(st.booleans()))
        out = [draw(st.integers(max(1, v - si + 1), v + si - 1)) if use_size else v
               for v, si in zip(default, s)]
        plane = int(np.prod(out))
        per_plane = int(np.prod(spatial))
        assume(per_plane <= plane)
        batch = _batch(draw, n)
        rng = np.random.default_rng(draw(st.integers(0, 2**31)))
        indices = np.stack([rng.choice(plane, per_plane, replace=False)
                            for _ in range(int(np.prod(batch)))]).reshape(batch + tuple(spatial))
        x = rng.uniform(-2, 2, batch + tuple(spatial))
        return [x, indices.astype(np.int64), np.array(k + s + p + [use_size] + out)]
    return sample


def max_unpool_fns(n):
    def parse(cfg):
        c = _ints(cfg)
        k, s, p, use_size, out = c[:n], c[n:2 * n], c[2 * n:3 * n], c[3 * n], c[3 * n + 1:]
        return k, s, p, (out if use_size else None)

    def fn(x, indices, cfg):
        k, s, p, out = parse(cfg)
        return [F.max_unpool1d, F.max_unpool2d, F.max_unpool3d][n - 1](x, indices, k, s, p, out)

    def torch_fn(x, indices, cfg):
        k, s, p, out = parse(cfg)
        return [TF.max_unpool1d, TF.max_unpool2d, TF.max_unpool3d][n - 1](x, indices, k, s, p, out)
    return fn, torch_fn


def pool_unpool_sample(draw):
    k, s, p, _, ceil_mode, spatial = draw(_pool_cfg(2, dilation=False))
    assume(all(si >= ki for si, ki in zip(s, k)))          # no overlap: no duplicate indices
    x = _distinct(draw, (1, 1) + tuple(spatial))
    return [x, np.array(k + s + p + [ceil_mode] + spatial)]


def _pool_unpool(pool, unpool):
    def f(x, cfg):
        c = _ints(cfg)
        k, s, p, ceil_mode, spatial = c[0:2], c[2:4], c[4:6], bool(c[6]), c[7:9]
        values, indices = pool(x, k, s, p, 1, ceil_mode, return_indices=True)
        return unpool(values, indices, k, s, p, output_size=spatial)
    return f


# --------------------------------------------------------------------------------------------
# interpolation and bed of nails
# --------------------------------------------------------------------------------------------


def interpolate_sample(n_choices, allow_align):
    def sample(draw):
        n = draw(st.sampled_from(n_choices))
        spatial = tuple(draw(st.integers(1, 4 if n < 3 else 2)) for _ in range(n))
        use_scale = int(draw(st.booleans()))
        if use_scale:
            tenths = [draw(st.sampled_from([5, 10, 15, 17, 20, 25, 30])) for _ in range(n)]
            assume(all(int(i * t / 10) >= 1 for i, t in zip(spatial, tenths)))
            sizes = tenths
        else:
            sizes = [draw(st.integers(1, 6 if n < 3 else 3)) for _ in range(n)]
        align = draw(st.sampled_from([-1, 0, 1])) if allow_align else -1
        x = np.random.default_rng(draw(st.integers(0, 2**31))).uniform(-2, 2, _batch(draw, n) + spatial)
        return [x, np.array([align, use_scale] + sizes)]
    return sample


def interpolate_fns(mode):
    def parse(x, cfg):
        c = _ints(cfg)
        align = None if c[0] < 0 else bool(c[0])
        kw = {"scale_factor": tuple(v / 10 for v in c[2:])} if c[1] else {"size": tuple(c[2:])}
        m = mode if mode != "linear" else ["linear", "bilinear", "trilinear"][x.ndim - 3]
        return dict(kw, mode=m, align_corners=align)

    return (lambda x, cfg: F.interpolate(x, **parse(x, cfg)),
            lambda x, cfg: TF.interpolate(x, **parse(x, cfg)))


def bed_of_nails_sample(draw):
    n = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 3 if n < 3 else 2)) for _ in range(n))
    scale = [draw(st.integers(1, 3 if n < 3 else 2)) for _ in range(n)]
    x = np.random.default_rng(draw(st.integers(0, 2**31))).uniform(-2, 2, _batch(draw, n) + spatial)
    return [x, np.array(scale)]


def torch_bed_of_nails(x, cfg):
    """PyTorch's way to write bed of nails: a transposed conv with a one-hot kernel, stride = block."""
    scale = _ints(cfg)
    n = len(scale)
    N, C = x.shape[:2]
    kernel = torch.zeros((1, 1) + tuple(scale), dtype=x.dtype)
    kernel[(0, 0) + (0,) * n] = 1.0
    conv_t = [TF.conv_transpose1d, TF.conv_transpose2d, TF.conv_transpose3d][n - 1]
    y = conv_t(x.reshape((N * C, 1) + tuple(x.shape[2:])), kernel, stride=tuple(scale))
    return y.reshape((N, C) + tuple(y.shape[2:]))


RESAMPLE_OPS = {"ResampleNd", "ResampleNdTranspose"}

OPINFOS = []
for _n in (1, 2, 3):
    _fn, _tfn = max_pool_fns(_n)
    OPINFOS.append(OpInfo(f"max_pool{_n}d", MAX_OPS, _fn, _tfn, max_pool_sample(_n)))
    _fn, _tfn = avg_pool_fns(_n)
    OPINFOS.append(OpInfo(f"avg_pool{_n}d", AVG_OPS, _fn, _tfn, avg_pool_sample(_n)))
    _fn, _tfn = adaptive_fns(_n, "avg")
    OPINFOS.append(OpInfo(f"adaptive_avg_pool{_n}d", AVG_OPS, _fn, _tfn, adaptive_sample(_n, False)))
    _fn, _tfn = adaptive_fns(_n, "max")
    OPINFOS.append(OpInfo(f"adaptive_max_pool{_n}d", MAX_OPS, _fn, _tfn, adaptive_sample(_n, True)))
    _fn, _tfn = max_unpool_fns(_n)
    OPINFOS.append(OpInfo(f"max_unpool{_n}d", {"MaxUnpoolNd", "GatherByIndexNd"}, _fn, _tfn,
                          max_unpool_sample(_n)))

OPINFOS += [
    OpInfo("max_pool2d_then_max_unpool2d", MAX_OPS, _pool_unpool(F.max_pool2d, F.max_unpool2d),
           _pool_unpool(TF.max_pool2d, TF.max_unpool2d), pool_unpool_sample),
    OpInfo("interpolate_nearest", RESAMPLE_OPS, *interpolate_fns("nearest"),
           interpolate_sample((1, 2, 3), False)),
    OpInfo("interpolate_nearest_exact", RESAMPLE_OPS, *interpolate_fns("nearest-exact"),
           interpolate_sample((1, 2, 3), False)),
    OpInfo("interpolate_linear_bilinear_trilinear", RESAMPLE_OPS, *interpolate_fns("linear"),
           interpolate_sample((1, 2, 3), True)),
    OpInfo("interpolate_area", AVG_OPS, *interpolate_fns("area"), interpolate_sample((1, 2, 3), False)),
    OpInfo("bed_of_nails", RESAMPLE_OPS, lambda x, cfg: F.bed_of_nails(x, _ints(cfg)),
           torch_bed_of_nails, bed_of_nails_sample),
]
