"""Batch-norm kernels against NumPy references (the layer itself is checked against PyTorch by
the OpInfo tests and tests/test_layers.py)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn.kernels import norm as K

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 17))


@settings(deadline=None)
@given(shape=shapes, dtype=st.sampled_from([np.float32, np.float64]), data=st.data(),
       offset=st.sampled_from([0.0, 1e4]))
def test_stats_and_passes_match_numpy(shape, dtype, data, offset):
    el = st.floats(-3, 3, width=32)
    x = data.draw(hnp.arrays(dtype, shape, elements=el)) + dtype(offset)
    g = data.draw(hnp.arrays(dtype, shape, elements=el))
    mean, var = K.channel_mean_var(x)
    want_mean, want_var = K.channel_mean_var_reference(x)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(var, want_var, rtol=1e-9, atol=1e-9)
    c = shape[1]
    rng = np.random.default_rng(0)
    m_, s_, t_ = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    out = np.empty_like(x)
    K.normalize(x, m_, s_, t_, out)
    want = (x - m_.reshape(1, -1, 1)) * s_.reshape(1, -1, 1) + t_.reshape(1, -1, 1)
    np.testing.assert_allclose(out, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-3 if offset else 1e-5)
    sg, sgx = K.grad_sums(g, x, mean.astype(dtype))
    wg, wgx = K.grad_sums_reference(g, x, mean.astype(dtype))
    np.testing.assert_allclose(sg, wg, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sgx, wgx, rtol=1e-6, atol=1e-6 * (1 + offset))
    a, k, sh = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    gx = np.empty_like(g)
    K.grad_input(g, x, m_, a, k, sh, gx)
    col = lambda v: v.reshape(1, -1, 1)  # noqa: E731
    want = col(a) * g - col(k) * (x - col(m_)) - col(sh)
    np.testing.assert_allclose(gx, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=(1e-2 if offset else 1e-4) if dtype == np.float32 else 1e-9)


def test_empty_batch_gives_nan_statistics():
    mean, var = K.channel_mean_var(np.zeros((0, 3, 4), np.float32))
    assert mean.shape == (3,) and np.isnan(mean).all() and np.isnan(var).all()


def test_statistics_do_not_depend_on_thread_count():
    import numba
    x = np.random.default_rng(1).standard_normal((8, 6, 50)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        results = []
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            results.append(K.channel_mean_var(x))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(results[0], results[-1]):
        np.testing.assert_array_equal(a, b)
