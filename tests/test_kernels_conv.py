"""Kernel-level tests of tinygrad_cnn.kernels.conv against the plain loop references.

numpy + numba only (no Tensor): the three kernels (forward, input-grad, weight-grad) are
checked against their loop references on hypothesis-drawn configurations in 1d/2d/3d, for
the general im2col path, the pointwise path and the depthwise path, with asymmetric implicit
padding (any output size is legal at this level), in float64 and float32, plus the adjoint
identities that tie the family together. A small subset runs again in a subprocess with
NUMBA_DISABLE_JIT=1, so the kernels are known to work as plain Python.
"""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from tinygrad_cnn.kernels import conv as K

SETTINGS = dict(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conv_configs(draw, path=None):
    """A kernel-level problem: shapes, stride, pad_before, dilation, groups, output size.

    ``path`` forces 'depthwise', 'pointwise' or 'general' (which may still draw groups > 1).
    """
    nd = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    if path is None:
        path = draw(st.sampled_from(["general", "general", "depthwise", "pointwise"]))
    if path == "depthwise":
        c_in = draw(st.integers(2, 4))
        groups = c_in
        c_out = c_in * draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 3))
        c_in = groups * draw(st.integers(1, 2))
        c_out = groups * draw(st.integers(1, 2))
    size_cap = {1: 9, 2: 6, 3: 4}[nd]
    in_size = tuple(draw(st.integers(1, size_cap)) for _ in range(nd))
    if path == "pointwise":
        kernel, stride, dilation, padding = (1,) * nd, (1,) * nd, (1,) * nd, (0,) * nd
        out_size = in_size
    else:
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
        padding = tuple(draw(st.integers(0, d * (k - 1) + 1)) for k, d in zip(kernel, dilation))
        # any output size is legal at the kernel level (taps outside the input read 0);
        # draw around the natural one so that both trimmed and over-long outputs occur
        natural = [max(1, (i + 2 * p - d * (k - 1) - 1) // s + 1)
                   for i, p, d, k, s in zip(in_size, padding, dilation, kernel, stride)]
        out_size = tuple(draw(st.integers(max(1, o - 1), o + 1)) for o in natural)
    return dict(n=n, c_in=c_in, c_out=c_out, groups=groups, in_size=in_size, kernel=kernel,
                stride=stride, padding=padding, dilation=dilation, out_size=out_size)


def make_arrays(cfg, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["c_in"]) + cfg["in_size"]).astype(dtype)
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    b = rng.standard_normal(cfg["c_out"]).astype(dtype)
    gy = rng.standard_normal((cfg["n"], cfg["c_out"]) + cfg["out_size"]).astype(dtype)
    return x, w, b, gy


def run_all(cfg, x, w, b, gy, impl):
    """Run forward / input-grad / weight-grad of ``impl`` ('' = kernels, '_reference')."""
    fwd = getattr(K, "conv_forward" + impl)
    igr = getattr(K, "conv_input_grad" + impl)
    wgr = getattr(K, "conv_weight_grad" + impl)
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    y = fwd(x, w, b, *args, cfg["out_size"])
    gx = igr(gy, w, *args, cfg["in_size"])
    gw = wgr(x, gy, cfg["kernel"], *args)
    return y, gx, gw


def assert_family_matches_reference(cfg, dtype, atol, rtol):
    x, w, b, gy = make_arrays(cfg, dtype)
    got = run_all(cfg, x, w, b, gy, "")
    want = run_all(cfg, x, w, b, gy, "_reference")
    for name, g, r in zip(["forward", "input_grad", "weight_grad"], got, want):
        assert g.shape == r.shape, (name, g.shape, r.shape)
        assert g.dtype == dtype, (name, g.dtype)
        np.testing.assert_allclose(g, r, atol=atol, rtol=rtol, err_msg=f"{name} {cfg}")


@settings(**SETTINGS)
@given(conv_configs())
def test_kernels_match_reference_float64(cfg):
    assert_family_matches_reference(cfg, np.float64, atol=1e-12, rtol=1e-12)


@settings(**SETTINGS)
@given(conv_configs(path="depthwise"), st.sampled_from(["prefill", "per-channel"]))
def test_depthwise_kernels_match_reference(cfg, padding_mode):
    """Both ways of padding (whole batch up front, or one channel per job) are exact."""
    limit = K.PREFILL_MAX_BYTES
    K.PREFILL_MAX_BYTES = limit if padding_mode == "prefill" else -1
    try:
        assert_family_matches_reference(cfg, np.float64, atol=1e-12, rtol=1e-12)
    finally:
        K.PREFILL_MAX_BYTES = limit


@settings(**SETTINGS)
@given(conv_configs(path="pointwise"))
def test_pointwise_kernels_match_reference(cfg):
    assert_family_matches_reference(cfg, np.float64, atol=1e-12, rtol=1e-12)


@settings(deadline=None, max_examples=20)
@given(conv_configs())
def test_kernels_match_reference_float32(cfg):
    assert_family_matches_reference(cfg, np.float32, atol=1e-4, rtol=1e-4)


@settings(**SETTINGS)
@given(conv_configs())
def test_adjoint_identities(cfg):
    """<conv(x), gy> == <x, conv_input_grad(gy)> == <w, conv_weight_grad(x, gy)>."""
    x, w, _, gy = make_arrays(cfg, np.float64, seed=1)
    y, gx, gw = run_all(cfg, x, w, None, gy, "")
    lhs = np.vdot(y, gy)
    assert np.isclose(lhs, np.vdot(x, gx), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, np.vdot(w, gw), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("jitted", [True, False])
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("chunk_bytes", [1, 700, 5000])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("stride,out_size", [((2, 1), (3, 5)), ((1, 1), (5, 5))])
def test_batch_chunking(monkeypatch, jitted, workers, chunk_bytes, groups, stride, out_size):
    """Tiny chunk budgets force one-sample chunks and ragged last chunks (both layouts, chunks
    run in the calling thread or concurrently on worker threads, as jitted chunk kernels or
    as Python closures on the worker pool)."""
    monkeypatch.setattr(K, "JITTED_CHUNKS", jitted)
    monkeypatch.setattr(K, "COLS_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(K, "NUM_WORKERS", workers)
    monkeypatch.setattr(K, "POOL_MIN_BYTES", 0)        # tiny problems on the worker threads too
    cfg = dict(n=5, c_in=4, c_out=6, groups=groups, in_size=(5, 6), kernel=(3, 2),
               stride=stride, padding=(1, 1), dilation=(1, 2), out_size=out_size)
    assert_family_matches_reference(cfg, np.float64, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("jitted", [True, False])
@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("kernel,stride", [((1, 1), (1, 1)), ((3, 3), (1, 1)), ((3, 3), (2, 2))])
def test_worker_threads_give_identical_results(monkeypatch, jitted, workers, kernel, stride):
    """The chunk threads change nothing: for a fixed chunking, the same float32 bits whether the
    chunks run in the calling thread or on workers (each chunk computes its own samples; the
    weight gradient sums the chunks in order)."""
    monkeypatch.setattr(K, "JITTED_CHUNKS", jitted)
    monkeypatch.setattr(K, "COLS_CHUNK_BYTES", 2000)
    monkeypatch.setattr(K, "POOL_MIN_BYTES", 0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 4) + kernel).astype(np.float32)
    out = tuple((i + 2 * 1 - k) // s + 1 for i, k, s in zip((9, 8), kernel, stride)) if kernel != (1, 1) else (9, 8)
    pad = (1, 1) if kernel != (1, 1) else (0, 0)
    gy = rng.standard_normal((7, 6) + out).astype(np.float32)
    results = []
    for n_workers in (1, workers):
        monkeypatch.setattr(K, "NUM_WORKERS", n_workers)
        results.append((K.conv_forward(x, w, None, stride, pad, (1, 1), 1, out),
                        K.conv_input_grad(gy, w, stride, pad, (1, 1), 1, (9, 8)),
                        K.conv_weight_grad(x, gy, kernel, stride, pad, (1, 1), 1)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k3,s3,d3,expect_planes", [
    ((2, 3, 2), (1, 1, 1), (1, 2, 1), 1),        # stride 1: the padded input is the one plane
    ((2, 3, 2), (1, 2, 1), (1, 1, 1), 2),        # stride 2 in H: taps 0, 2 read phase 0, tap 1 phase 1
    ((1, 3, 3), (1, 2, 2), (1, 2, 1), 2),        # dilation 2 = stride 2 in H: every tap on phase 0
    ((1, 1, 1), (2, 2, 2), (1, 1, 1), 1),        # 1x1 stride 2 (ResNet shortcut): only phase 0 kept
])
def test_patch_layout_gathers_the_definition(k3, s3, d3, expect_planes):
    """Every patch-matrix entry is the input pixel the definition reads (0 in the padding),
    at column od*step_d + oh*step_h + ow of its sample; only the phases taps read are kept."""
    in3, p3 = (3, 8, 9), (1, 1, 0)
    o3 = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, p, d, s in zip(in3, k3, p3, d3, s3))
    layout = K.PatchLayout(in3, k3, s3, p3, d3, o3)
    assert layout.n_planes == expect_planes
    n_k = int(np.prod(k3))
    x5 = np.random.default_rng(3).standard_normal((2, 2) + in3)
    cols = np.empty((2 * n_k, 2 * layout.span))
    layout.gather(layout.source(x5), cols)
    for c in range(2):
        for k, tap in enumerate(np.ndindex(*k3)):
            for b in range(2):
                for o in np.ndindex(*o3):
                    col = b * layout.span + o[0] * layout.step_d + o[1] * layout.step_h + o[2]
                    i = [oi * s + ki * d - p for oi, ki, s, d, p in zip(o, tap, s3, d3, p3)]
                    inside = all(0 <= v < n for v, n in zip(i, in3))
                    assert cols[c * n_k + k, col] == (x5[(b, c) + tuple(i)] if inside else 0.0)
    # source / finish are adjoint (finish sums phase planes back onto the input grid)
    q = np.random.default_rng(4).standard_normal(layout.source(x5).shape)
    assert np.isclose(np.vdot(layout.source(x5), q), np.vdot(x5, layout.finish(q)))
    # the direct kernels' per-channel planes (fill_planes) are the same planes, and
    # unfill_planes is their adjoint (= finish on one channel)
    box, s3_arr, q3 = layout.planes()[:3]
    xq = layout.source(x5).reshape((2, 2, layout.n_planes) + layout.q)
    qq = q.reshape(xq.shape)
    for b in range(2):
        for c in range(2):
            buf = np.empty((layout.n_planes,) + layout.q)
            K.fill_planes(x5[b, c], box, s3_arr, buf)
            np.testing.assert_array_equal(buf, xq[b, c])
            back = np.empty(in3)
            K.unfill_planes(qq[b, c], box, s3_arr, back)
            np.testing.assert_array_equal(back, layout.finish(q).reshape((2, 2) + in3)[b, c])


@settings(**SETTINGS)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(1, 2), st.integers(0, 3), st.integers(-2, 3)),
                min_size=3, max_size=3),
       st.integers(1, 2), st.integers(0, 2 ** 31))
def test_wrapped_layout_gathers_the_definition(dims, n, seed):
    """The stride-1 GEMM layout (rows not padded, wrapped reads zeroed): every patch-matrix
    entry at a real output column is the input pixel the definition reads (0 in the padding),
    for any size, kernel, dilation, padding before and after (also output wider than the
    input); gather/scatter and source/finish are adjoint pairs, as in the padded layout."""
    in3, k3, d3, p3 = (tuple(t[i] for t in dims) for i in range(4))
    o3 = tuple(i + p + pa - d * (k - 1) for i, k, d, p, (*_, pa) in zip(in3, k3, d3, p3, dims))
    assume(min(o3) >= 1)
    layout = K.patch_layout(in3, k3, (1, 1, 1), p3, d3, o3, wrap=True)
    assert isinstance(layout, K.WrappedLayout)
    n_k, c = int(np.prod(k3)), 2
    rng = np.random.default_rng(seed)
    x5 = rng.standard_normal((n, c) + in3)
    cols = np.full((c * n_k, n * layout.span + 3), np.nan)       # + 3: a wider scratch row
    layout.gather(layout.source(x5), cols)
    for ch in range(c):
        for k, tap in enumerate(np.ndindex(*k3)):
            for b in range(n):
                for o in np.ndindex(*o3):
                    col = b * layout.span + o[0] * layout.step_d + o[1] * layout.step_h + o[2]
                    i = [oi + ki * d - p for oi, ki, d, p in zip(o, tap, d3, p3)]
                    inside = all(0 <= v < size for v, size in zip(i, in3))
                    assert cols[ch * n_k + k, col] == (x5[(b, ch) + tuple(i)] if inside else 0.0)
    assert not np.isnan(cols[:, :n * layout.span]).any()
    a = rng.standard_normal((c * n_k, n * layout.span))
    dxq = np.zeros(layout.source(x5).shape)
    layout.scatter(a.copy(), dxq)
    gathered = np.empty_like(a)
    layout.gather(layout.source(x5), gathered)
    assert np.isclose(np.vdot(gathered, a), np.vdot(x5, layout.finish(dxq)))
    q = rng.standard_normal(layout.source(x5).shape)
    assert np.isclose(np.vdot(layout.source(x5), q), np.vdot(x5, layout.finish(q)))


def test_gemm_scratch_rows_avoid_4k_aliasing():
    """GEMM scratch rows are whole 64-byte lines, an odd number of them (a 4 KB multiple put
    every row of a BLAS panel in one cache set), and the grouped views are views."""
    for cols, itemsize in [(1024, 4), (3072, 4), (1, 4), (100, 8), (16, 4)]:
        pitch = K._pitch(cols, itemsize)
        assert pitch >= cols and pitch * itemsize % 64 == 0 and (pitch * itemsize // 64) % 2 == 1
    buf = K._gemm_scratch("test", 6, 1024, np.float32)
    assert buf.flags.c_contiguous and buf.shape == (6, K._pitch(1024, 4))
    view = K._grouped(buf, 2, 1024)
    assert view.shape == (2, 3, 1024) and np.shares_memory(view, buf)
    view[1, 2, 5] = 7.0
    assert buf[5, 5] == 7.0


def test_non_contiguous_inputs():
    cfg = dict(n=2, c_in=3, c_out=4, groups=1, in_size=(6, 5), kernel=(3, 3),
               stride=(1, 2), padding=(1, 0), dilation=(1, 1), out_size=(6, 2))
    x, w, b, gy = make_arrays(cfg)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)   # same values, F-ish
    wt = np.ascontiguousarray(w[:, ::-1]).copy()[:, ::-1]                        # negative strides
    gyt = np.repeat(gy, 2, axis=3)[..., ::2]                                     # strided view
    assert not xt.flags.c_contiguous and not wt.flags.c_contiguous and not gyt.flags.c_contiguous
    got = run_all(cfg, xt, wt, b, gyt, "")
    want = run_all(cfg, x, w, b, gy, "_reference")
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, atol=1e-12)


def test_slide_example_topic3():
    """5x5 binary image * 3x3 'X' filter: the feature map of the slides (top-left value 4)."""
    image = np.array([[1, 1, 1, 0, 0],
                      [0, 1, 1, 1, 0],
                      [0, 0, 1, 1, 1],
                      [0, 0, 1, 1, 0],
                      [0, 1, 1, 0, 0]], dtype=np.float32)
    filt = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float32)
    y = K.conv_forward(image[None, None], filt[None, None], None, (1, 1), (0, 0), (1, 1), 1, (3, 3))
    np.testing.assert_array_equal(y[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_references_are_the_definition():
    """The references themselves, on a case small enough to do by hand (1d, stride 2, pad 1)."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    # taps: o*2 + k - 1  -> o=0: (-1,0,1), o=1: (1,2,3), o=2: (3,4,5->out)
    y = K.conv_forward_reference(x, w, np.array([0.5]), (2,), (1,), (1,), 1, (3,))
    np.testing.assert_allclose(y[0, 0], [0 + 10 * 1 + 100 * 2 + 0.5, 2 + 30 + 400 + 0.5, 4 + 50 + 0 + 0.5])
    gy = np.array([[[1.0, 0.0, 2.0]]])
    gx = K.conv_input_grad_reference(gy, w, (2,), (1,), (1,), 1, (5,))
    np.testing.assert_allclose(gx[0, 0], [10, 100, 0, 2, 20])
    gw = K.conv_weight_grad_reference(x, gy, (3,), (2,), (1,), (1,), 1)
    np.testing.assert_allclose(gw[0, 0], [0 + 2 * 4, 1 + 2 * 5, 2 + 0])


NO_JIT_SCRIPT = textwrap.dedent("""
    import numpy as np
    import numba
    assert numba.config.DISABLE_JIT
    from tinygrad_cnn.kernels import conv as K
    assert not hasattr(K.gather_patches, "signatures")  # plain Python functions
    cases = [
        dict(n=2, c_in=2, c_out=3, groups=1, in_size=(7,), kernel=(3,), stride=(2,),
             padding=(1,), dilation=(1,), out_size=(4,)),
        dict(n=2, c_in=4, c_out=4, groups=2, in_size=(5, 4), kernel=(2, 3), stride=(1, 2),
             padding=(0, 2), dilation=(2, 1), out_size=(3, 3)),
        dict(n=1, c_in=3, c_out=6, groups=3, in_size=(5, 5), kernel=(3, 3), stride=(2, 1),
             padding=(1, 1), dilation=(1, 1), out_size=(3, 5)),
        dict(n=2, c_in=4, c_out=2, groups=2, in_size=(3, 4), kernel=(1, 1), stride=(1, 1),
             padding=(0, 0), dilation=(1, 1), out_size=(3, 4)),
        dict(n=1, c_in=2, c_out=2, groups=1, in_size=(3, 3, 4), kernel=(2, 2, 2), stride=(1, 1, 2),
             padding=(1, 0, 1), dilation=(1, 1, 1), out_size=(4, 2, 2)),
        # stride 1: shifted layout, flipped-kernel input grad, shifted depthwise, C_in = 1
        dict(n=2, c_in=3, c_out=4, groups=1, in_size=(5, 6), kernel=(3, 3), stride=(1, 1),
             padding=(1, 1), dilation=(1, 1), out_size=(5, 6)),
        dict(n=2, c_in=2, c_out=6, groups=1, in_size=(6, 5), kernel=(3, 2), stride=(1, 1),
             padding=(0, 1), dilation=(2, 1), out_size=(2, 6)),
        dict(n=2, c_in=3, c_out=3, groups=3, in_size=(6, 6), kernel=(3, 3), stride=(1, 1),
             padding=(1, 1), dilation=(1, 1), out_size=(6, 6)),
        dict(n=2, c_in=1, c_out=3, groups=1, in_size=(7,), kernel=(3,), stride=(1,),
             padding=(2,), dilation=(1,), out_size=(9,)),
        dict(n=2, c_in=4, c_out=4, groups=2, in_size=(3, 4, 5), kernel=(2, 2, 3), stride=(1, 1, 1),
             padding=(1, 0, 1), dilation=(1, 2, 1), out_size=(4, 2, 5)),
        # 3x3 stride 2 in 2-d: the Numba phase splitter; depthwise too (per-channel planes)
        dict(n=2, c_in=2, c_out=3, groups=1, in_size=(7, 6), kernel=(3, 3), stride=(2, 2),
             padding=(1, 1), dilation=(1, 1), out_size=(4, 3)),
        dict(n=2, c_in=2, c_out=2, groups=2, in_size=(6, 7), kernel=(3, 3), stride=(2, 2),
             padding=(1, 1), dilation=(1, 1), out_size=(3, 4)),
    ]
    if __import__("os").environ.get("PAD_PER_CHANNEL"):
        K.PREFILL_MAX_BYTES = -1    # depthwise: each job pads its own channel
    rng = np.random.default_rng(0)
    fused = 0
    for cfg in cases:
        x = rng.standard_normal((cfg["n"], cfg["c_in"]) + cfg["in_size"])
        w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"]) + cfg["kernel"])
        gy = rng.standard_normal((cfg["n"], cfg["c_out"]) + cfg["out_size"])
        a = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
        np.testing.assert_allclose(K.conv_forward(x, w, None, *a, cfg["out_size"]),
                                   K.conv_forward_reference(x, w, None, *a, cfg["out_size"]), atol=1e-12)
        np.testing.assert_allclose(K.conv_input_grad(gy, w, *a, cfg["in_size"]),
                                   K.conv_input_grad_reference(gy, w, *a, cfg["in_size"]), atol=1e-12)
        np.testing.assert_allclose(K.conv_weight_grad(x, gy, cfg["kernel"], *a),
                                   K.conv_weight_grad_reference(x, gy, cfg["kernel"], *a), atol=1e-12)
        both = K.conv_backward(x, gy, w, *a)        # the fused backward, where it applies
        if both is not None:
            fused += 1
            np.testing.assert_allclose(both[0], K.conv_input_grad_reference(gy, w, *a, cfg["in_size"]), atol=1e-12)
            np.testing.assert_allclose(both[1], K.conv_weight_grad_reference(x, gy, cfg["kernel"], *a), atol=1e-12)
    assert fused >= 2, fused
    print("NO_JIT_OK", len(cases))
""")


@pytest.mark.parametrize("per_channel", ["", "1"])
def test_kernels_without_jit(per_channel):
    """The same kernels run as plain Python (NUMBA_DISABLE_JIT=1), as a student would debug them."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PAD_PER_CHANNEL=per_channel)
    proc = subprocess.run([sys.executable, "-c", NO_JIT_SCRIPT], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO_JIT_OK 12" in proc.stdout


@settings(**SETTINGS)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(0, 2), st.integers(1, 3))
def test_stride2_phase_splitter_equals_numpy(h, w, k, p, c):
    """The Numba stride-2 splitter (3x3 stride-2 convs) writes exactly the planes the NumPy
    path writes, for any size, kernel and padding (odd sizes drop unread pixels)."""
    o3 = [(i + 2 * p - k) // 2 + 1 for i in (h, w)]
    assume(min(o3) >= 1 and p < k)
    layout = K.PatchLayout((1, h, w), (1, k, k), (1, 2, 2), (0, p, p), (1, 1, 1), (1, o3[0], o3[1]))
    x = np.random.default_rng(h * 100 + w).standard_normal((2, c, 1, h, w)).astype(np.float32)
    got = layout.source(x)
    fast, layout.fast_split = layout.fast_split, False
    try:
        want = layout.source(x)
    finally:
        layout.fast_split = fast
    np.testing.assert_array_equal(got, want)
    if k >= 2:
        assert fast          # all four phases are read: the fast path was taken


@pytest.mark.parametrize("stride,padding", [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 2), (2, 0))])
def test_forward_keeps_the_padded_source_for_the_weight_gradient(stride, padding):
    """conv_forward(keep_source=True) hands back the planes it built; conv_weight_grad given
    them gives bit-for-bit the gradient it computes on its own (and they are the layout's
    source of x)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = tuple((i + 2 * p - 3) // s + 1 for i, p, s in zip((9, 8), padding, stride))
    y, source = K.conv_forward(x, w, None, stride, padding, (1, 1), 1, out, keep_source=True)
    np.testing.assert_array_equal(y, K.conv_forward(x, w, None, stride, padding, (1, 1), 1, out))
    assert source is not None
    layout = K.patch_layout((1, 9, 8), (1, 3, 3), (1,) + stride, (0,) + padding, (1, 1, 1), (1,) + out, wrap=True)
    assert isinstance(layout, K.WrappedLayout) == (stride == (1, 1))
    np.testing.assert_array_equal(source, layout.source(x[:, :, None]))
    gy = rng.standard_normal((5, 4) + out).astype(np.float32)
    np.testing.assert_array_equal(K.conv_weight_grad(x, gy, (3, 3), stride, padding, (1, 1), 1, source=source),
                                  K.conv_weight_grad(x, gy, (3, 3), stride, padding, (1, 1), 1))


def test_small_convolutions_stay_in_the_calling_thread(monkeypatch):
    """Below POOL_MIN_BYTES of patches the chunks run serially whatever the worker count (the
    thread hand-offs cost more than they save); above it they are shared between the calling
    thread and the pool."""
    ran_on = []
    monkeypatch.setattr(K, "NUM_WORKERS", 2)
    monkeypatch.setattr(K, "COLS_CHUNK_BYTES", 100)

    def work(b0, b1):
        ran_on.append(threading.current_thread().name)
        return b0

    assert K._run_chunks(8, 100, work) == list(range(8))
    assert set(ran_on) == {threading.current_thread().name}
    ran_on.clear()
    monkeypatch.setattr(K, "POOL_MIN_BYTES", 0)
    assert K._run_chunks(8, 100, work) == list(range(8))        # results still in chunk order
    if K.ThreadpoolController is not None:
        # the calling thread takes every second chunk itself, a worker thread the others
        me = threading.current_thread().name
        assert ran_on.count(me) == 4
        assert sum(name.startswith("tinygrad_cnn-worker") for name in ran_on) == 4


@settings(**SETTINGS)
@given(conv_configs(path="general"), st.sampled_from([None, 1]))
def test_fused_backward_matches_the_two_kernels(cfg, stride_one):
    """conv_backward gives both gradients of every geometry backward_fuses accepts (stride 1,
    drawn here half of the time) -- the same values as conv_input_grad / conv_weight_grad and
    the loop references -- and None for every other geometry."""
    if stride_one:
        cfg = dict(cfg, stride=(1,) * len(cfg["stride"]))
    x, w, _, gy = make_arrays(cfg)
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    both = K.conv_backward(x, gy, w, *args)
    fuses = K.backward_fuses(w.shape, cfg["c_in"], *args)
    assert (both is not None) == fuses
    if not fuses:
        return
    gx, gw = both
    np.testing.assert_allclose(gx, K.conv_input_grad(gy, w, *args, cfg["in_size"]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, K.conv_weight_grad(x, gy, cfg["kernel"], *args), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, K.conv_input_grad_reference(gy, w, *args, cfg["in_size"]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, K.conv_weight_grad_reference(x, gy, cfg["kernel"], *args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometry,fuses", [
    (dict(w=(8, 4, 3, 3), c_in=4, stride=(1, 1), padding=(1, 1)), True),      # the ResNet 3x3
    (dict(w=(8, 4, 3, 3), c_in=4, stride=(2, 2), padding=(1, 1)), False),     # strided: scatter path
    (dict(w=(8, 4, 1, 1), c_in=4, stride=(1, 1), padding=(0, 0)), False),     # pointwise path
    (dict(w=(8, 1, 3, 3), c_in=8, stride=(1, 1), padding=(1, 1), groups=8), False),   # depthwise
    (dict(w=(12, 4, 3, 3), c_in=4, stride=(1, 1), padding=(1, 1)), False),    # C_out > 2 C_in: scatter
    (dict(w=(8, 4, 3, 3), c_in=4, stride=(1, 1), padding=(3, 0)), False),     # pad > d(k-1): no gather
])
def test_which_geometries_fuse(geometry, fuses):
    g = geometry.get("groups", 1)
    assert K.backward_fuses(geometry["w"], geometry["c_in"], geometry["stride"], geometry["padding"],
                            (1, 1), g) == fuses


@pytest.mark.parametrize("jitted", [True, False])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_fused_backward_float32_chunks_and_threads(monkeypatch, jitted, workers):
    """float32, many small chunks on worker threads: the input gradient is bit-for-bit
    conv_input_grad's (the same GEMM on the same patch matrix) and the weight gradient agrees to
    float32 rounding (another order of the same products)."""
    monkeypatch.setattr(K, "JITTED_CHUNKS", jitted)
    monkeypatch.setattr(K, "COLS_CHUNK_BYTES", 3000)
    monkeypatch.setattr(K, "NUM_WORKERS", workers)
    monkeypatch.setattr(K, "POOL_MIN_BYTES", 0)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((9, 6, 10, 7)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)      # groups = 2
    gy = rng.standard_normal((9, 8, 10, 7)).astype(np.float32)
    gx, gw = K.conv_backward(x, gy, w, (1, 1), (1, 1), (1, 1), 2)
    assert gx.dtype == gw.dtype == np.float32
    np.testing.assert_array_equal(gx, K.conv_input_grad(gy, w, (1, 1), (1, 1), (1, 1), 2, (10, 7)))
    np.testing.assert_allclose(gw, K.conv_weight_grad(x, gy, (3, 3), (1, 1), (1, 1), (1, 1), 2), rtol=1e-4, atol=1e-4)


@settings(**SETTINGS)
@given(conv_configs(path="general"), st.sampled_from([np.float32, np.float64]), st.integers(1, 3))
def test_jitted_chunks_match_the_python_chunks(cfg, dtype, workers):
    """The jitted chunk kernels (gather -> BLAS GEMM called from Numba -> write-out) and the
    Python closures on the worker pool compute the same four results: forward, input gradient,
    weight gradient and the fused backward, for both patch layouts and any grouping."""
    if K.blas.gemm_function(dtype) is None:     # pragma: no cover - no GEMM callable from Numba
        pytest.skip("BLAS's GEMM is not callable from Numba here")
    x, w, b, gy = make_arrays(cfg, dtype)
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    results = []
    old = K.JITTED_CHUNKS, K.NUM_WORKERS, K.POOL_MIN_BYTES, K.COLS_CHUNK_BYTES
    try:
        K.NUM_WORKERS, K.POOL_MIN_BYTES, K.COLS_CHUNK_BYTES = workers, 0, 500
        for jitted in (True, False):
            K.JITTED_CHUNKS = jitted
            y, source = K.conv_forward(x, w, b, *args, cfg["out_size"], keep_source=True)
            results.append([y, K.conv_input_grad(gy, w, *args, cfg["in_size"]),
                            K.conv_weight_grad(x, gy, cfg["kernel"], *args, source=source),
                            K.conv_weight_grad(x, gy, cfg["kernel"], *args)]
                           + list(K.conv_backward(x, gy, w, *args) or ()))
    finally:
        K.JITTED_CHUNKS, K.NUM_WORKERS, K.POOL_MIN_BYTES, K.COLS_CHUNK_BYTES = old
    for a, c in zip(*results):
        assert a.dtype == c.dtype == dtype
        np.testing.assert_allclose(a, c, **tol)
    want = run_all(cfg, x, w, b, gy, "_reference")
    for a, r in zip(results[0], want + (want[2],)):
        np.testing.assert_allclose(a, r, **(dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else tol))


def test_the_gemm_paths_run_as_jitted_chunks(monkeypatch):
    """With a GEMM callable from Numba, the GEMM paths take the jitted chunk kernels (the
    Python closures on the worker pool never run); without one they fall back to them."""
    if K.blas.gemm_function(np.float32) is None:     # pragma: no cover
        pytest.skip("BLAS's GEMM is not callable from Numba here")
    ran = []
    monkeypatch.setattr(K, "_run_chunks", lambda *a: ran.append("pool") or [])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    K.conv_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1, (6, 6))
    K.conv_forward(x, w, None, (2, 2), (1, 1), (1, 1), 1, (3, 3))
    K.conv_input_grad(gy[:, :, ::2, ::2], w, (2, 2), (1, 1), (1, 1), 1, (6, 6))
    K.conv_weight_grad(x, gy, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    K.conv_backward(x, gy, w, (1, 1), (1, 1), (1, 1), 1)
    assert ran == []
    monkeypatch.setattr(K, "JITTED_CHUNKS", False)
    K.conv_weight_grad(x, gy, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    assert ran == ["pool"]


def test_parallel_depthwise_kernels_pad_per_channel(monkeypatch):
    """Depthwise kernels that will run on several threads pad each channel inside their jobs
    (the padded batch would cross main memory twice); one thread, or work too small for the
    parallel twin, pads the batch up front (up to PREFILL_MAX_BYTES)."""
    import tinygrad_cnn.kernels as kernels
    layout = K.patch_layout((1, 8, 8), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), (1, 8, 8))
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 4 * 3 * 64)
    monkeypatch.setattr(K.numba, "get_num_threads", lambda: 1)
    assert layout.use_prefill(4, 3, 4)
    monkeypatch.setattr(K.numba, "get_num_threads", lambda: 2)
    assert not layout.use_prefill(4, 3, 4)          # 4 * 3 * 64 elements: the parallel twin runs
    assert layout.use_prefill(2, 3, 4)              # half of it: serial, padded up front
    monkeypatch.setattr(K, "PREFILL_MAX_BYTES", 0)
    assert not layout.use_prefill(2, 3, 4)          # and never beyond PREFILL_MAX_BYTES


def test_an_error_in_the_callers_chunk_waits_for_the_other_threads(monkeypatch):
    """When the calling thread's share of the chunks raises, the worker threads' shares finish
    before the error propagates (nothing keeps writing into the caller's arrays afterwards)."""
    import time
    monkeypatch.setattr(K, "NUM_WORKERS", 2)
    monkeypatch.setattr(K, "COLS_CHUNK_BYTES", 100)
    monkeypatch.setattr(K, "POOL_MIN_BYTES", 0)
    caller = threading.current_thread().name
    finished = []

    def work(b0, b1):
        if threading.current_thread().name == caller:
            raise ValueError("chunk failed")
        time.sleep(0.05)
        finished.append(b0)
        return b0
    with pytest.raises(ValueError, match="chunk failed"):
        K._run_chunks(4, 100, work)
    if K.ThreadpoolController is not None:
        assert sorted(finished) == [0, 2]       # the worker's chunks (every second one) are done
