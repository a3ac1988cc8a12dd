"""The engine's contract: autograd semantics, higher-order gradients, errors, constructors."""
import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
from tinygrad_cnn.autograd import Function
from tinygrad_cnn.testing import adjoint_check, gradcheck, gradgradcheck


def t64(a, rg=True):
    return tc.Tensor(np.asarray(a, dtype=np.float64), requires_grad=rg)


# ----------------------------------------------------------------------------- higher order

def _mlp(ws, x, lib):
    w1, b1, w2, b2 = ws
    h = (x @ w1 + b1).tanh()
    return ((h @ w2 + b2) ** 2).sum()


def test_hessian_vector_product_of_mlp_matches_torch(rng):
    shapes = [(4, 5), (5,), (5, 3), (3,)]
    arrays = [rng.standard_normal(s) for s in shapes]
    x = rng.standard_normal((6, 4))
    vs = [rng.standard_normal(s) for s in shapes]

    ours = [t64(a) for a in arrays]
    loss = _mlp(ours, tc.Tensor(x), tc)
    grads = tc.autograd.grad(loss, ours, create_graph=True)
    dot = sum((g * tc.Tensor(v)).sum() for g, v in zip(grads, vs))
    hvp = tc.autograd.grad(dot, ours)

    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tl = _mlp(theirs, torch.tensor(x), torch)
    tg = torch.autograd.grad(tl, theirs, create_graph=True)
    tdot = sum((g * torch.tensor(v)).sum() for g, v in zip(tg, vs))
    thvp = torch.autograd.grad(tdot, theirs)
    for h, th in zip(hvp, thvp):
        np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-10, atol=1e-10)


def test_gradient_penalty_backward_create_graph():
    x = t64([[0.3, -1.2], [2.0, 0.5]])
    w = t64([[1.5], [-0.7]])
    y = (x @ w).tanh().sum()
    (gx,) = tc.autograd.grad(y, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    tx = torch.tensor(x.data, requires_grad=True)
    tw = torch.tensor(w.data, requires_grad=True)
    (tgx,) = torch.autograd.grad((tx @ tw).tanh().sum(), tx, create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10)


def test_third_derivative_of_exp_sin_like_chain():
    x = t64(0.7)
    y = (x * x).exp()
    (g1,) = tc.autograd.grad(y, x, create_graph=True)
    (g2,) = tc.autograd.grad(g1, x, create_graph=True)
    (g3,) = tc.autograd.grad(g2, x)
    v = 0.7
    expected = np.exp(v * v) * (8 * v ** 3 + 12 * v)
    assert abs(g3.item() - expected) < 1e-9


# ----------------------------------------------------------------------------- user Functions

class Cube(Function):
    """The README's example of a user-defined op: y = x ** 3, dy/dx = 3 x ** 2."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x * x


def test_custom_function_gradcheck_and_gradgradcheck(rng):
    x = t64(rng.standard_normal((3, 2)))
    assert gradcheck(Cube.apply, [x])
    assert gradgradcheck(Cube.apply, [x])
    assert "Cube" not in tc.engine.REGISTRY  # user Functions are not library ops


def test_broken_custom_function_fails_gradcheck(rng):
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x * x

    with pytest.raises(AssertionError, match="numerical .* vs analytical"):
        gradcheck(Wrong.apply, [t64(rng.standard_normal(3) + 2)])


def test_adjoint_check_detects_wrong_transpose():
    a = np.arange(6.0).reshape(2, 3)
    assert adjoint_check(lambda x: x @ tc.Tensor(a.T), lambda y: y @ tc.Tensor(a), (4, 3), (4, 2))
    with pytest.raises(AssertionError, match="adjoint_check failed"):
        adjoint_check(lambda x: x @ tc.Tensor(a.T), lambda y: y @ tc.Tensor(2 * a), (4, 3), (4, 2))


# ----------------------------------------------------------------------------- semantics

def test_gradients_accumulate_and_graph_is_freed():
    x = t64([1.0, 2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])


def test_shared_input_grads_do_not_alias():
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0])
    (a + b).sum().backward()
    with tc.no_grad():
        a.grad.mul_(10.0)
    np.testing.assert_allclose(b.grad.data, [1.0, 1.0])


def test_retain_grad_on_non_leaf_and_is_leaf():
    x = t64([1.0, -2.0])
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    assert x.is_leaf and not h.is_leaf
    np.testing.assert_allclose(h.grad.data, 2 * h.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data)


def test_no_grad_context_and_decorator_and_enable_grad():
    x = t64([1.0])
    with tc.no_grad():
        assert not (x * 2).requires_grad
        with tc.enable_grad():
            assert (x * 2).requires_grad

    @tc.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert (x * 2).requires_grad and tc.is_grad_enabled()


def test_detach_and_requires_grad_rules():
    x = t64([1.0, 2.0])
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="floating point"):
        tc.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        tc.Tensor(np.array([1, 2]), requires_grad=True)


def test_non_scalar_backward_needs_gradient():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(gradient=tc.Tensor(np.array([1.0, 10.0])))
    np.testing.assert_allclose(x.grad.data, [2.0, 20.0])


def test_broadcast_error_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4,\)"):
        tc.ones(2, 3) + tc.ones(4)


def test_matmul_inner_dimension_error():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4, 5\).*inner dimensions 3 and 4"):
        tc.ones(2, 3) @ tc.ones(4, 5)


def test_inplace_on_leaf_requiring_grad_is_refused_and_saved_tensor_versions_checked():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        x.mul_(2.0)
    w = tc.Tensor(np.array([1.0, 2.0]))
    y = (x * w).sum()
    w.mul_(3.0)   # w was saved by Mul for the gradient of x
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_autograd_grad_unused_input():
    x, z = t64([1.0]), t64([2.0])
    with pytest.raises(RuntimeError, match="not have been used"):
        tc.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = tc.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0
    assert x.grad is None   # autograd.grad does not touch .grad


def test_grad_of_non_leaf_input():
    x = t64([1.0, 2.0])
    h = x * x
    (gh,) = tc.autograd.grad((h * 3).sum(), h)
    np.testing.assert_allclose(gh.data, [3.0, 3.0])


def test_multiple_uses_and_diamond_graph():
    x = t64(1.5)
    a = x * x
    b = a.exp() + a * x + a.log()
    b.backward()
    v = 1.5
    assert abs(x.grad.item() - (np.exp(v * v) * 2 * v + 3 * v * v + 2 / v)) < 1e-10


def test_detect_anomaly_reports_op_and_location():
    x = t64([1.0, -1.0])
    with tc.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"Log forward produced NaN.*test_engine.py"):
            x.log()
        y = x.abs().sqrt()   # d sqrt at 0 is inf: backward of Sqrt makes inf
        z = (y * 0.0 + (x * 0.0).abs().sqrt()).sum()
        with pytest.raises(RuntimeError, match=r"Sqrt backward.*produced NaN or inf.*line \d+"):
            z.backward()


# ----------------------------------------------------------------------------- Tensor API

def test_dtypes_and_promotion():
    assert tc.tensor([1.0]).dtype == np.float32
    assert tc.tensor([1]).dtype == np.int64
    assert tc.tensor([True]).dtype == np.bool_
    assert (tc.tensor([1]) * 2.5).dtype == np.float32
    assert (tc.tensor([1.0]) * tc.tensor([1.0], dtype="float64")).dtype == np.float64
    assert (tc.tensor([1.0]) + tc.tensor([1])).dtype == np.float32
    assert (tc.tensor([1.0]) + np.float64(2)).dtype == np.float32
    assert tc.zeros(2, 3).dtype == np.float32 and tc.zeros(2, 3).shape == (2, 3)


def test_constructors_and_seed():
    tc.manual_seed(3)
    a = tc.randn(2, 3)
    tc.manual_seed(3)
    b = tc.randn(2, 3)
    assert np.array_equal(a.data, b.data)
    assert tc.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tc.eye(3).data.trace() == 3
    assert tc.full((2,), 7).dtype == np.int64
    assert tc.ones_like(a).shape == (2, 3) and tc.zeros_like(a, dtype="float64").dtype == np.float64
    r = tc.randint(0, 5, (100,))
    assert r.dtype == np.int64 and r.data.min() >= 0 and r.data.max() < 5
    arr = np.zeros(3, np.float32)
    t = tc.from_numpy(arr)
    arr[0] = 5
    assert t.data[0] == 5
    assert tc.tensor(arr).data is not arr


def test_tensor_misc_api():
    x = tc.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.size() == (2, 2) and x.size(1) == 2 and x.numel() == 4 and x.ndim == 2
    assert x.sum().item() == 10.0
    assert x.to("cpu") is x and x.cpu() is x
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<MulBackward>" in repr(x * 2)
    assert repr(tc.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().shape == (2, 2)
    assert x.T.shape == (2, 2) and x.max().item() == 4.0
    assert x.argmax(1).tolist() == [1, 1]
    assert (x > 2).dtype == np.bool_
    with tc.no_grad():
        x.zero_()
    assert x.sum().item() == 0


def test_getitem_advanced_with_repeats_accumulates():
    x = t64([1.0, 2.0, 3.0])
    x[tc.tensor([0, 0, 2])].sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 0.0, 1.0])


def test_softmax_family_stable_for_huge_logits():
    x = tc.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    for y in (x.log_softmax(1), x.softmax(1), x.logsumexp(1)):
        assert np.all(np.isfinite(y.data))
    x.log_softmax(1)[0, 1].backward()
    assert np.all(np.isfinite(x.grad.data))


def test_backward_without_create_graph_records_nothing():
    x = t64([1.0, 2.0])
    y = (x.exp() * x).sum()
    (g,) = tc.autograd.grad(y, x)
    assert g.grad_fn is None and not g.requires_grad
