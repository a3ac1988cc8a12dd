"""Batch-norm kernels against NumPy references (the layer itself is checked against PyTorch by
the OpInfo tests and tests/test_layers.py)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn.kernels import norm as K

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 17))


@settings(deadline=None)
@given(shape=shapes, dtype=st.sampled_from([np.float32, np.float64]), data=st.data(),
       offset=st.sampled_from([0.0, 1e4]), kernel=st.sampled_from(["parallel", "serial"]))
def test_training_kernels_match_numpy(shape, dtype, data, offset, kernel):
    """forward_train / backward_train (either twin) against the float64 references, the
    per-channel factors they hand back against their formulas, and eval's normalize."""
    el = st.floats(-3, 3, width=32)
    x = data.draw(hnp.arrays(dtype, shape, elements=el)) + dtype(offset)
    g = data.draw(hnp.arrays(dtype, shape, elements=el))
    c = shape[1]
    rng = np.random.default_rng(0)
    w, b = (rng.standard_normal(c).astype(dtype) for _ in range(2))
    mean, invstd, scale, shift = (np.empty(c, dtype) for _ in range(4))
    out = np.empty_like(x)
    forward = getattr(K.forward_train, kernel)
    mean64, var = forward(x, w, b, 1e-5, mean, invstd, scale, shift, out)
    want_out, want_mean, want_var = K.forward_train_reference(x, w, b, 1e-5)
    np.testing.assert_allclose(mean64, want_mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(var, want_var, rtol=1e-9, atol=1e-9)
    assert mean.dtype == invstd.dtype == scale.dtype == dtype
    np.testing.assert_array_equal(invstd, (1.0 / np.sqrt(var + 1e-5)).astype(dtype))
    np.testing.assert_array_equal(scale, invstd * w)
    tight = dtype == np.float64
    np.testing.assert_allclose(out, want_out, rtol=1e-9 if tight else 1e-4, atol=1e-7 if tight else 1e-3)
    k, sh, gx = np.empty(c, dtype), np.empty(c, dtype), np.empty_like(g)
    sg, sgx = getattr(K.backward_train, kernel)(g, x, mean, invstd, scale, k, sh, gx)
    want_gx, want_sg, want_sgx = K.backward_train_reference(g, x, mean, invstd, scale)
    np.testing.assert_allclose(sg, want_sg, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sgx, want_sgx, rtol=1e-6, atol=1e-6 * (1 + offset))
    m = shape[0] * shape[2]
    np.testing.assert_array_equal(k, (scale * invstd * invstd * sgx / m).astype(dtype))
    np.testing.assert_array_equal(sh, (scale * sg / m).astype(dtype))
    np.testing.assert_allclose(gx, want_gx, rtol=1e-9 if tight else 1e-4,
                               atol=1e-9 if tight else (1e-2 if offset else 1e-4))
    m_, s_, t_ = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    K.normalize(x, m_, s_, t_, out)
    np.testing.assert_array_equal(out, ((x - m_.reshape(1, -1, 1)) * s_.reshape(1, -1, 1) + t_.reshape(1, -1, 1)).astype(dtype))


def _forward(x):
    c = x.shape[1]
    bufs = [np.empty(c, x.dtype) for _ in range(4)]
    return K.forward_train(x, np.ones(c, x.dtype), np.zeros(c, x.dtype), 1e-5, *bufs, np.empty_like(x))


def test_empty_batch_gives_nan_statistics():
    mean, var = _forward(np.zeros((0, 3, 4), np.float32))
    assert mean.shape == (3,) and np.isnan(mean).all() and np.isnan(var).all()


def test_statistics_do_not_depend_on_thread_count():
    import numba
    x = np.random.default_rng(1).standard_normal((8, 6, 50)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        results = []
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            results.append(K.forward_train.parallel(x, *(np.ones(6, np.float32),) * 2, 1e-5,
                                                    *(np.empty(6, np.float32) for _ in range(4)), np.empty_like(x)))
        results.append(K.forward_train.serial(x, *(np.ones(6, np.float32),) * 2, 1e-5,
                                              *(np.empty(6, np.float32) for _ in range(4)), np.empty_like(x)))
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


NO_JIT_SCRIPT = """
import numpy as np, numba
assert numba.config.DISABLE_JIT
from tinygrad_cnn.kernels import norm as K, elementwise as E
assert not hasattr(K.forward_train.parallel, "signatures")      # plain Python functions
rng = np.random.default_rng(0)
x = rng.standard_normal((3, 2, 5)); g = rng.standard_normal((3, 2, 5))
w, b = rng.standard_normal(2), rng.standard_normal(2)
for twin in ("parallel", "serial"):
    mean, invstd, scale, shift = (np.empty(2) for _ in range(4))
    out = np.empty_like(x)
    m64, var = getattr(K.forward_train, twin)(x, w, b, 1e-5, mean, invstd, scale, shift, out)
    want, wm, wv = K.forward_train_reference(x, w, b, 1e-5)
    assert np.allclose(out, want) and np.allclose(m64, wm) and np.allclose(var, wv)
    k, sh, gx = np.empty(2), np.empty(2), np.empty_like(g)
    sg, sgx = getattr(K.backward_train, twin)(g, x, mean, invstd, scale, k, sh, gx)
    wgx, wsg, wsgx = K.backward_train_reference(g, x, mean, invstd, scale)
    assert np.allclose(gx, wgx) and np.allclose(sg, wsg) and np.allclose(sgx, wsgx)
    K.normalize(x, mean, scale, shift, out)
    assert np.allclose(out, want)
f = rng.standard_normal(50).astype(np.float32)
assert np.array_equal(E.relu(f), E.relu_reference(f))
assert np.array_equal(E.relu_backward(f, f[::-1].copy()), E.relu_backward_reference(f, f[::-1].copy()))
assert np.array_equal(E.add(f, f[::-1].copy()), f + f[::-1])
assert np.allclose(E.erf(f), E.erf_reference(f))
print("ok")
"""


def test_norm_and_elementwise_kernels_run_without_the_jit():
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=root)
    result = subprocess.run([sys.executable, "-c", NO_JIT_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
