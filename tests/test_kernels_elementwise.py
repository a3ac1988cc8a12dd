"""Element-wise Numba kernels against their plain references (and PyTorch where it has one)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn.kernels import elementwise as E

floats = st.floats(-5, 5, width=32) | st.just(0.0) | st.just(float("nan"))


@settings(deadline=None)
@given(y=hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5), elements=floats),
       data=st.data())
def test_relu_backward_is_the_mask(y, data):
    g = data.draw(hnp.arrays(np.float32, y.shape, elements=st.floats(-3, 3, width=32)))
    got = E.relu_backward(g, y)
    np.testing.assert_array_equal(got, E.relu_backward_reference(g, y))
    assert got.dtype == g.dtype and got.shape == y.shape
    # zero exactly where y <= 0 or NaN (NaN > 0 is false, as in PyTorch's threshold_backward)
    assert np.all(got[~(y > 0)] == 0)


def test_relu_backward_broadcast_and_strided_inputs():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((4, 6)).astype(np.float32)[:, ::2]      # strided
    g = np.float32(2.5) * np.ones((1, 3), np.float32)                # broadcast
    np.testing.assert_array_equal(E.relu_backward(g, y), np.where(y > 0, 2.5, 0).astype(np.float32))


def test_relu_backward_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    g = rng.standard_normal((3, 4, 5)).astype(np.float32)
    y = np.maximum(x, 0)
    want = torch.ops.aten.threshold_backward(torch.from_numpy(g), torch.from_numpy(y), 0).numpy()
    np.testing.assert_array_equal(E.relu_backward(g, y), want)


def test_erf_matches_reference():
    x = np.linspace(-4, 4, 101).astype(np.float64)
    np.testing.assert_allclose(E.erf(x), E.erf_reference(x), rtol=0, atol=1e-15)


@settings(deadline=None)
@given(x=hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
                    elements=floats))
def test_relu_forward_keeps_nan(x):
    got = E.relu(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, E.relu_reference(x))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(x))


def test_relu_forward_matches_torch_on_strided_input():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)[:, ::2]
    x[0, 0] = np.nan
    np.testing.assert_array_equal(E.relu(x), torch.relu(torch.from_numpy(x.copy())).numpy())


@settings(deadline=None)
@given(a=hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
                    elements=floats), data=st.data())
def test_add_is_numpys_add(a, data):
    """The residual-add kernel: NumPy's result (values, dtype, shape) for same-shape arrays, and
    NumPy's own add for broadcasting, mixed dtypes or strided views."""
    b = data.draw(hnp.arrays(a.dtype, a.shape, elements=floats))
    for x, y in [(a, b), (a, b[..., :1] if b.ndim else b), (a, b.astype(np.float16)),
                 (a.T, b.T), (a, np.float32(2.0) * np.ones((), a.dtype))]:
        got, want = E.add(x, y), x + y
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_add_kernel_twins_on_a_big_array(monkeypatch):
    x = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    y = np.random.default_rng(3).standard_normal(1000).astype(np.float32)
    for kernel in (E._add_flat.parallel, E._add_flat.serial):
        out = np.empty_like(x)
        kernel(x, y, out)
        np.testing.assert_array_equal(out, x + y)
