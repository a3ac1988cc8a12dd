"""Kernel tests for pooling and resampling (numpy / numba only): each jitted kernel against its
plain loop reference, the references against PyTorch on purpose-made inputs (ties, NaN), the
adjoint identities, and a subset run as plain Python under NUMBA_DISABLE_JIT=1."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from tinygrad_cnn.kernels import pool as kp
from tinygrad_cnn.kernels import resample as kr
from tinygrad_cnn.shapes import pool_output_size

SETTINGS = settings(deadline=None, max_examples=40)


def nan_equal(a, b):
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@st.composite
def pool_configs(draw, dilation=True, max_ndim=3):
    """A valid pooling configuration: (spatial, kernel, stride, padding, dilation, ceil, out)."""
    ndim = draw(st.integers(1, max_ndim))
    spatial, kernel, stride, padding, dil, out = [], [], [], [], [], []
    ceil_mode = draw(st.booleans())
    for i in range(ndim):
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2)) if dilation else 1
        p = draw(st.integers(0, k // 2))
        n = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 7))
        try:
            o = pool_output_size(n, k, s, p, d, ceil_mode, i)
        except ValueError:
            assume(False)
        spatial.append(n); kernel.append(k); stride.append(s); padding.append(p); dil.append(d)
        out.append(o)
    return tuple(spatial), tuple(kernel), tuple(stride), tuple(padding), tuple(dil), ceil_mode, tuple(out)


def tie_heavy(draw, shape, nan=True):
    """Small integers (many ties), sometimes -inf and NaN."""
    x = np.array(draw(st.lists(st.integers(-2, 2), min_size=int(np.prod(shape)),
                               max_size=int(np.prod(shape)))), np.float64).reshape(shape)
    if nan and draw(st.booleans()):
        flat = x.reshape(-1)
        for i in draw(st.lists(st.integers(0, flat.size - 1), max_size=3)):
            flat[i] = draw(st.sampled_from([np.nan, -np.inf]))
    return x


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(cfg=pool_configs(), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_window_max_matches_reference(cfg, data, dtype):
    spatial, kernel, stride, padding, dilation, _, out = cfg
    x = tie_heavy(data.draw, (2, 2) + spatial).astype(dtype)
    windows = kp.PoolWindows.regular(spatial, kernel, stride, padding, dilation, out)
    values, indices = windows.max(x)
    ref_values, ref_indices = kp.max_pool_reference(x, kernel, stride, padding, dilation, out)
    assert values.dtype == x.dtype and indices.dtype == np.int64
    assert nan_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)


@SETTINGS
@given(cfg=pool_configs(dilation=False), data=st.data(), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, 3]))
def test_window_mean_matches_reference_and_adjoint(cfg, data, count_include_pad, divisor_override):
    spatial, kernel, stride, padding, dilation, _, out = cfg
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((2, 3) + spatial)
    windows = kp.PoolWindows.regular(spatial, kernel, stride, padding, dilation, out,
                                     count_include_pad, divisor_override)
    y = windows.mean(x)
    np.testing.assert_allclose(y, kp.avg_pool_reference(x, kernel, stride, padding, out,
                                                        count_include_pad, divisor_override),
                               rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y, g), np.vdot(x, windows.mean_adjoint(g)), rtol=1e-10)


@SETTINGS
@given(ndim=st.integers(1, 3), data=st.data())
def test_adaptive_windows_match_reference(ndim, data):
    spatial = tuple(data.draw(st.integers(1, 7)) for _ in range(ndim))
    out = tuple(data.draw(st.integers(1, 8)) for _ in range(ndim))
    x = tie_heavy(data.draw, (2, 2) + spatial)
    windows = kp.PoolWindows.adaptive(spatial, out)
    values, indices = windows.max(x)
    ref_values, ref_indices = kp.adaptive_max_pool_reference(x, out)
    assert nan_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)
    x = np.random.default_rng(0).standard_normal((2, 2) + spatial)
    np.testing.assert_allclose(windows.mean(x), kp.adaptive_avg_pool_reference(x, out), rtol=1e-12)
    g = np.random.default_rng(1).standard_normal((2, 2) + out)
    assert np.isclose(np.vdot(windows.mean(x), g), np.vdot(x, windows.mean_adjoint(g)))


@st.composite
def unpadded_configs(draw):
    """Pooling without padding or dilation in floor mode, 1-3 dims, depth window 1 (so the
    fast kernel applies); stride may be below the kernel (overlapping windows) or above it
    (skipped pixels), and odd sizes drop the last rows / columns."""
    ndim = draw(st.integers(1, 3))
    kernel, stride, spatial, out = [], [], [], []
    for i in range(ndim):
        k = 1 if (ndim == 3 and i == 0) else draw(st.sampled_from([1, 2, 2, 3, 3, 4]))
        s = draw(st.sampled_from([k, k, 1, 2, 3]))
        n = draw(st.integers(k, 9))
        kernel.append(k); stride.append(s); spatial.append(n)
        out.append(pool_output_size(n, k, s, 0, 1, False, i))
    return tuple(spatial), tuple(kernel), tuple(stride), tuple(out)


@SETTINGS
@given(cfg=unpadded_configs(), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_unpadded_max_matches_generic_kernel_and_reference(cfg, data, dtype):
    spatial, kernel, stride, out = cfg
    ndim = len(spatial)
    x = tie_heavy(data.draw, (2, 3) + spatial).astype(dtype)     # ties, NaN, -inf
    windows = kp.PoolWindows.regular(spatial, kernel, stride, (0,) * ndim, (1,) * ndim, out)
    lifted_stride = kp.lift3([s if o > 1 else 1 for s, o in zip(stride, out)], 1)  # one window: any
    assert windows.unpadded == kp.lift3(kernel, 1)[1:] + lifted_stride
    planes = kp.lift_planes(x, ndim)
    shape = (planes.shape[0],) + kp.lift3(out, 1)
    values, indices = kp.window_max_unpadded(planes, np.empty(shape, dtype), np.empty(shape, np.int64),
                                             *windows.unpadded)
    generic_values, generic_indices = kp.window_max(planes, *windows.tables, *windows.step)
    assert values.dtype == x.dtype and indices.dtype == np.int64
    assert nan_equal(values, generic_values)
    np.testing.assert_array_equal(indices, generic_indices)
    ref_values, ref_indices = kp.max_pool_reference(x, kernel, stride, (0,) * ndim, (1,) * ndim, out)
    dispatched_values, dispatched_indices = windows.max(x)
    assert nan_equal(dispatched_values, ref_values)
    np.testing.assert_array_equal(dispatched_indices, ref_indices)


def test_unpadded_max_ties_and_nan_in_every_tap_position():
    # one 3x3 (and 2x2) window per case: NaN or the tie-winning max at each position in turn
    for k in (2, 3):
        for pos in range(k * k):
            for kind in ("nan", "tie", "last_nan"):
                x = np.zeros((1, 1, k, k))
                if kind == "nan":
                    x.reshape(-1)[pos] = np.nan
                elif kind == "tie":
                    x.reshape(-1)[pos:] = 1.0                # ties from pos on: pos wins
                else:
                    x.reshape(-1)[:pos + 1] = np.nan          # several NaN: the last gives the index
                windows = kp.PoolWindows.regular((k, k), (k, k), (k, k), (0, 0), (1, 1), (1, 1))
                assert windows.unpadded is not None
                v, i = windows.max(x)
                ref_v, ref_i = kp.max_pool_reference(x, (k, k), (k, k), (0, 0), (1, 1), (1, 1))
                assert nan_equal(v, ref_v) and i.item() == ref_i.item() == pos, (k, pos, kind)


def test_max_pool_2x2_takes_the_fast_kernels(monkeypatch):
    calls = []

    def spy(name):
        fast = getattr(kp, name)

        def run(*args):
            calls.append((name,) + args[3:])
            return fast(*args)
        return run

    def generic(*args):
        raise AssertionError("the generic kernel ran")

    monkeypatch.setattr(kp, "window_max_unpadded", spy("window_max_unpadded"))
    monkeypatch.setattr(kp, "window_max_2x2", spy("window_max_2x2"))
    monkeypatch.setattr(kp, "window_max", generic)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8)).astype(np.float32)
    windows = kp.PoolWindows.regular((7, 8), (2, 2), (2, 2), (0, 0), (1, 1), (3, 4))
    values, indices = windows.max(x)
    assert calls == [("window_max_2x2", 1, 2)]
    ref_values, ref_indices = kp.max_pool_reference(x, (2, 2), (2, 2), (0, 0), (1, 1), (3, 4))
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)
    # 3x3 stride 3, 1-d pooling and 2x2 stride 1 take the unrolled scan
    kp.PoolWindows.regular((9, 9), (3, 3), (3, 3), (0, 0), (1, 1), (3, 3)).max(np.zeros((1, 2, 9, 9)))
    kp.PoolWindows.regular((8,), (2,), (2,), (0,), (1,), (4,)).max(x[:, :, 0])
    kp.PoolWindows.regular((7, 8), (2, 2), (1, 1), (0, 0), (1, 1), (6, 7)).max(x)
    assert calls[1:] == [("window_max_unpadded", 3, 3, 1, 3, 3), ("window_max_unpadded", 1, 2, 1, 1, 2),
                         ("window_max_unpadded", 2, 2, 1, 1, 1)]


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]), stride_d=st.integers(1, 2),
       stride_h=st.integers(1, 3), nan=st.booleans())
def test_vectorised_2x2_max_matches_the_scan(data, dtype, stride_d, stride_h, nan):
    # window_max_2x2 picks the index by equality and redoes rows with NaN: it must agree with
    # the unrolled scan (first maximum on ties, the last NaN wins, -inf and +inf as values)
    D, H, W = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 7)), data.draw(st.integers(2, 9))
    x = tie_heavy(data.draw, (2, D, H, W), nan=False)
    if nan:
        flat = x.reshape(-1)
        for i in data.draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=4)):
            flat[i] = data.draw(st.sampled_from([np.nan, -np.inf, np.inf]))
    x = x.astype(dtype)
    shape = (2, (D - 1) // stride_d + 1, (H - 2) // stride_h + 1, (W - 2) // 2 + 1)
    values, indices = kp.window_max_2x2(x, np.empty(shape, dtype), np.empty(shape, np.int64), stride_d, stride_h)
    scan_values, scan_indices = kp.window_max_unpadded(x, np.empty(shape, dtype), np.empty(shape, np.int64),
                                                       2, 2, stride_d, stride_h, 2)
    assert nan_equal(values, scan_values)
    np.testing.assert_array_equal(indices, scan_indices)
    # and so do both twins (parallel and serial) of the kernel
    serial = kp.window_max_2x2.serial(x, np.empty(shape, dtype), np.empty(shape, np.int64), stride_d, stride_h)
    par = kp.window_max_2x2.parallel(x, np.empty(shape, dtype), np.empty(shape, np.int64), stride_d, stride_h)
    for v, i in (serial, par):
        assert nan_equal(v, values)
        np.testing.assert_array_equal(i, indices)


@pytest.mark.parametrize("args", [
    ((7, 8), (2, 2), (2, 2), (1, 1), (1, 1), (4, 5)),     # padding
    ((7, 8), (2, 2), (2, 2), (0, 0), (2, 1), (3, 4)),     # dilation
    ((7, 7), (2, 2), (2, 2), (0, 0), (1, 1), (4, 4)),     # ceil mode: the last window overhangs
    ((4, 4, 4), (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), (2, 2, 2)),   # a depth window
])
def test_other_windows_take_the_generic_kernel(args):
    windows = kp.PoolWindows.regular(*args)
    assert windows.unpadded is None
    x = np.random.default_rng(1).integers(-2, 3, (1, 2) + args[0]).astype(np.float64)
    values, indices = windows.max(x)
    ref_values, ref_indices = kp.max_pool_reference(x, *args[1:])
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)


def test_unpadded_geometry_of_adaptive_windows():
    assert kp.PoolWindows.adaptive((4, 6), (2, 3)).unpadded == (2, 2, 1, 2, 2)
    assert kp.PoolWindows.adaptive((1, 1), (1, 1)).unpadded == (1, 1, 1, 1, 1)
    assert kp.PoolWindows.adaptive((5, 6), (3, 3)).unpadded is None       # windows of 2 and 3
    assert kp.PoolWindows.adaptive((3,), (5,)).unpadded is None           # overlapping, uneven


def test_pool_windows_tables():
    first, count, padded = kp.pool_windows(5, kernel=3, stride=2, padding=1, dilation=1, out_size=3)
    np.testing.assert_array_equal(first, [0, 1, 3])      # windows [-1..1], [1..3], [3..5]
    np.testing.assert_array_equal(count, [2, 3, 2])
    np.testing.assert_array_equal(padded, [3, 3, 3])
    first, count = kp.adaptive_windows(5, 3)              # [0,2), [1,4), [3,5)
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(count, [2, 3, 2])


# --------------------------------------------------------------------------------------------
# the references against PyTorch on purpose-made inputs
# --------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("x", [
    [2., 2., 1., 2.],                         # tie: the first maximum wins
    [1., np.nan, 3., np.nan, 0.],             # NaN propagates, the last NaN gives the index
    [-np.inf, -np.inf, -np.inf],              # all -inf: the first position
    [np.nan, 5., 5.],
])
def test_max_reference_ties_and_nan_match_torch(x):
    x = np.array(x)[None, None]
    n = x.shape[-1]
    ref_v, ref_i = kp.max_pool_reference(x, (n,), (n,), (0,), (1,), (1,))
    tv, ti = F.max_pool1d(torch.tensor(x), n, return_indices=True)
    assert nan_equal(ref_v, tv.numpy())
    np.testing.assert_array_equal(ref_i, ti.numpy())
    v, i = kp.PoolWindows.regular((n,), (n,), (n,), (0,), (1,), (1,)).max(x)
    assert nan_equal(v, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())


def test_window_without_input_pixels_matches_torch():
    # kernel 2, dilation 2, padding 1 on a length-1 input: taps at -1 and 1, none inside
    x = np.array([[[5.0]]])
    v, i = kp.PoolWindows.regular((1,), (2,), (1,), (1,), (2,), (1,)).max(x)
    tv, ti = F.max_pool1d(torch.tensor(x), 2, 1, padding=1, dilation=2, return_indices=True)
    np.testing.assert_array_equal(v, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    # ... and the gradient of such a window goes nowhere (the index is out of range)
    np.testing.assert_array_equal(kp.scatter_add_planes(np.ones_like(v), i, (1,)), [[[0.0]]])


@settings(deadline=None, max_examples=25)
@given(cfg=pool_configs(), data=st.data())
def test_max_reference_matches_torch(cfg, data):
    spatial, kernel, stride, padding, dilation, ceil_mode, out = cfg
    x = tie_heavy(data.draw, (1, 2) + spatial)
    ref_v, ref_i = kp.max_pool_reference(x, kernel, stride, padding, dilation, out)
    pool = [F.max_pool1d, F.max_pool2d, F.max_pool3d][len(spatial) - 1]
    tv, ti = pool(torch.tensor(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    assert nan_equal(ref_v, tv.numpy())
    np.testing.assert_array_equal(ref_i, ti.numpy())


@settings(deadline=None, max_examples=25)
@given(cfg=pool_configs(dilation=False), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, 2]))
def test_avg_reference_matches_torch(cfg, count_include_pad, divisor_override):
    spatial, kernel, stride, padding, dilation, ceil_mode, out = cfg
    x = np.random.default_rng(0).standard_normal((1, 2) + spatial)
    ref = kp.avg_pool_reference(x, kernel, stride, padding, out, count_include_pad, divisor_override)
    if len(spatial) == 1:
        if divisor_override:
            return
        t = F.avg_pool1d(torch.tensor(x), kernel, stride, padding, ceil_mode, count_include_pad)
    else:
        pool = F.avg_pool2d if len(spatial) == 2 else F.avg_pool3d
        # PyTorch's avg_pool3d alone refuses an input smaller than the kernel, even when padded
        assume(len(spatial) == 2 or all(n >= k for n, k in zip(spatial, kernel)))
        t = pool(torch.tensor(x), kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    np.testing.assert_allclose(ref, t.numpy(), rtol=1e-12, atol=1e-12)


def test_adaptive_references_match_torch():
    x = np.array([[[3., 1., np.nan, 2., 2., -np.inf, 4.]]])
    for out in (1, 2, 3, 5, 7, 9):
        v, i = kp.adaptive_max_pool_reference(x, (out,))
        tv, ti = F.adaptive_max_pool1d(torch.tensor(x), out, return_indices=True)
        assert nan_equal(v, tv.numpy())
        np.testing.assert_array_equal(i, ti.numpy())
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 7, 3))
    np.testing.assert_allclose(kp.adaptive_avg_pool_reference(x, (2, 3, 4)),
                               F.adaptive_avg_pool3d(torch.tensor(x), (2, 3, 4)).numpy(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# scatter / gather by index
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_scatter_gather_match_references_and_are_adjoint(data):
    P = data.draw(st.integers(1, 4))
    M = data.draw(st.integers(1, 10))
    L = data.draw(st.integers(1, 10))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    index = rng.integers(0, L, size=(P, M))                 # duplicates likely
    src = rng.standard_normal((P, M))
    y = rng.standard_normal((P, L))
    scattered = kp.scatter_add_by_index(src, index, L)
    np.testing.assert_allclose(scattered, kp.scatter_add_reference(src, index, L), rtol=1e-12)
    gathered = kp.gather_by_index(y, index)
    np.testing.assert_array_equal(gathered, kp.gather_reference(y, index))
    assert np.isclose(np.vdot(scattered, y), np.vdot(src, gathered), rtol=1e-10)


def test_scatter_never_writes_out_of_bounds():
    src = np.ones((2, 3))
    index = np.array([[0, -1, 5], [4, 2, 100]])
    out = kp.scatter_add_by_index(src, index, 5)
    np.testing.assert_array_equal(out, [[1, 0, 0, 0, 0], [0, 0, 1, 0, 1]])
    np.testing.assert_array_equal(kp.gather_by_index(np.arange(10.).reshape(2, 5), index),
                                  [[0, 0, 0], [9, 7, 0]])


@SETTINGS
@given(values=st.lists(st.integers(-3, 12), max_size=20), upper=st.integers(1, 10))
def test_first_out_of_range(values, upper):
    index = np.array(values, np.int64)
    bad = [i for i, v in enumerate(values) if not 0 <= v < upper]
    assert kp.first_out_of_range(index, upper) == (bad[0] if bad else -1)


def test_scatter_planes_accumulates_overlapping_maxima():
    x = np.array([[[1., 5., 2., 0.]]])
    windows = kp.PoolWindows.regular((4,), (2,), (1,), (0,), (1,), (3,))   # windows overlap
    values, indices = windows.max(x)
    np.testing.assert_array_equal(indices, [[[1, 1, 2]]])
    np.testing.assert_array_equal(kp.scatter_add_planes(np.ones_like(values), indices, (4,)),
                                  [[[0., 2., 1., 0.]]])
    np.testing.assert_array_equal(kp.gather_planes(np.array([[[10., 20., 30., 40.]]]), indices, 1),
                                  [[[20., 20., 30.]]])


# --------------------------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------------------------


@st.composite
def resample_configs(draw):
    ndim = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    if draw(st.booleans()):
        out = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
        scales = (None,) * ndim
    else:
        scales = tuple(draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 1.7])) for _ in range(ndim))
        out = tuple(int(np.floor(n * s)) for n, s in zip(spatial, scales))
        assume(all(o >= 1 for o in out))
    return spatial, out, scales


@SETTINGS
@given(cfg=resample_configs(), exact=st.booleans(), data=st.data(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_nearest_matches_reference_and_adjoint(cfg, exact, data, dtype):
    spatial, out, scales = cfg
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((2, 2) + spatial).astype(dtype)
    res = kr.Resampler.nearest(spatial, out, scales, exact)
    y = res.apply(x)
    np.testing.assert_array_equal(y, kr.nearest_reference(x, out, scales, exact))
    g = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y.astype(np.float64), g), np.vdot(x, res.adjoint(g)), rtol=1e-5)


@SETTINGS
@given(cfg=resample_configs(), align_corners=st.booleans(), data=st.data(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_linear_matches_reference_and_adjoint(cfg, align_corners, data, dtype):
    spatial, out, scales = cfg
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((2, 2) + spatial).astype(dtype)
    res = kr.Resampler.linear(spatial, out, scales, align_corners, dtype)
    y = res.apply(x)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, kr.linear_reference(x, out, scales, align_corners), rtol=tol, atol=tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    assert np.isclose(np.vdot(y, g), np.vdot(x, res.adjoint(g)), rtol=tol * 10)


@SETTINGS
@given(ndim=st.integers(1, 3), data=st.data())
def test_bed_of_nails_is_adjoint_of_strided_slice(ndim, data):
    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(ndim))
    scale = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((2, 3) + spatial)
    res = kr.Resampler.strided_slice(spatial, scale)
    big = res.adjoint(x)
    np.testing.assert_array_equal(big, kr.bed_of_nails_reference(x, scale))
    np.testing.assert_array_equal(res.apply(big), x)          # the gradient: a strided slice
    y = rng.standard_normal(big.shape)
    np.testing.assert_array_equal(res.apply(y), y[(...,) + tuple(slice(None, None, s) for s in scale)])


def test_slide_examples():
    x = np.array([[1., 2.], [3., 4.]])[None, None]
    nearest = kr.Resampler.nearest((2, 2), (4, 4), (2.0, 2.0)).apply(x)
    np.testing.assert_array_equal(nearest[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    nails = kr.Resampler.strided_slice((2, 2), (2, 2)).adjoint(x)
    np.testing.assert_array_equal(nails[0, 0], [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    # the gradient of nearest 2x is the sum over each 2x2 block
    g = np.arange(16.).reshape(1, 1, 4, 4)
    block_sums = kr.Resampler.nearest((2, 2), (4, 4), (2.0, 2.0)).adjoint(g)
    np.testing.assert_array_equal(block_sums[0, 0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                                     [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])


def test_bed_of_nails_keeps_nan_and_inf_local():
    x = np.array([[[np.nan, np.inf]]])
    big = kr.Resampler.strided_slice((2,), (2,)).adjoint(x)
    assert np.isnan(big[0, 0, 0]) and big[0, 0, 2] == np.inf
    np.testing.assert_array_equal(big[0, 0, [1, 3]], [0.0, 0.0])


# --------------------------------------------------------------------------------------------
# the same kernels as plain Python (NUMBA_DISABLE_JIT=1), in a subprocess
# --------------------------------------------------------------------------------------------

NO_JIT_SCRIPT = textwrap.dedent("""
    import numpy as np
    from tinygrad_cnn.kernels import pool as kp, resample as kr
    assert type(kp.window_max).__name__ == "function", "JIT was not disabled"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 4))
    x[0, 0, 1, 1] = np.nan
    w = kp.PoolWindows.regular((5, 4), (3, 2), (2, 1), (1, 1), (1, 2), (3, 2))
    v, i = w.max(x)
    rv, ri = kp.max_pool_reference(x, (3, 2), (2, 1), (1, 1), (1, 2), (3, 2))
    assert np.array_equal(v, rv, equal_nan=True) and np.array_equal(i, ri)
    x = rng.standard_normal((1, 2, 5, 4))
    w = kp.PoolWindows.regular((5, 4), (3, 2), (2, 1), (1, 1), (1, 1), (3, 4), False)
    y = w.mean(x)
    assert np.allclose(y, kp.avg_pool_reference(x, (3, 2), (2, 1), (1, 1), (3, 4), False, None))
    g = rng.standard_normal(y.shape)
    assert np.isclose(np.vdot(y, g), np.vdot(x, w.mean_adjoint(g)))
    a = kp.PoolWindows.adaptive((5, 4), (2, 3))
    assert np.allclose(a.mean(x), kp.adaptive_avg_pool_reference(x, (2, 3)))
    for k, s in ((2, 2), (3, 3), (2, 1), (4, 3)):   # vectorised 2x2; unrolled 3x3, 2x2; general loop
        xi = rng.integers(-2, 3, (2, 3, 9, 8)).astype(np.float64)
        xi[0, 1, 2, 3] = np.nan
        out = ((9 - k) // s + 1, (8 - k) // s + 1)
        w = kp.PoolWindows.regular((9, 8), (k, k), (s, s), (0, 0), (1, 1), out)
        assert w.unpadded == (k, k, 1, s, s)
        v, i = w.max(xi)
        rv, ri = kp.max_pool_reference(xi, (k, k), (s, s), (0, 0), (1, 1), out)
        assert np.array_equal(v, rv, equal_nan=True) and np.array_equal(i, ri)
    idx = rng.integers(0, 6, (2, 7))
    src = rng.standard_normal((2, 7))
    assert np.allclose(kp.scatter_add_by_index(src, idx, 6), kp.scatter_add_reference(src, idx, 6))
    assert kp.first_out_of_range(np.array([0, 5, 6, -1]), 6) == 2
    assert np.array_equal(kp.gather_by_index(x.reshape(2, -1), idx), kp.gather_reference(x.reshape(2, -1), idx))
    r = kr.Resampler.linear((5, 4), (7, 9), (None, None), False, np.float64)
    assert np.allclose(r.apply(x), kr.linear_reference(x, (7, 9), (None, None), False))
    n = kr.Resampler.nearest((5, 4), (7, 9), (None, None), True)
    assert np.array_equal(n.apply(x), kr.nearest_reference(x, (7, 9), (None, None), True))
    s = kr.Resampler.strided_slice((5, 4), (2, 3))
    assert np.array_equal(s.adjoint(x), kr.bed_of_nails_reference(x, (2, 3)))
    print("ok")
""")


def test_kernels_run_without_jit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=root)
    result = subprocess.run([sys.executable, "-c", NO_JIT_SCRIPT], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
