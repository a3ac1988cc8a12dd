"""Layers against PyTorch with copied weights; Dropout/BatchNorm train vs eval; init statistics."""
import math

import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.testing import gradcheck, gradgradcheck


def _copy_weights(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _fwd_bwd(ours, theirs, x, atol=1e-5, rtol=1e-5):
    """Forward and backward (non-uniform upstream gradient) agree: output, input grad, param grads."""
    X = tc.Tensor(x.copy(), requires_grad=True)
    TX = torch.tensor(x.copy(), requires_grad=True)
    y, ty = ours(X), theirs(TX)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=atol, rtol=rtol)
    up = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    y.backward(tc.Tensor(up))
    ty.backward(torch.tensor(up))
    np.testing.assert_allclose(X.grad.data, TX.grad.numpy(), atol=atol, rtol=rtol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, tparams[name].grad.numpy(), atol=atol, rtol=rtol, err_msg=name)
    return y, ty


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    ours, theirs = nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias)
    _copy_weights(ours, theirs)
    _fwd_bwd(ours, theirs, RNG.standard_normal((2, 4, 5)).astype(np.float32))
    with pytest.raises(RuntimeError, match="in_features=5"):
        ours(tc.ones(2, 4))


@pytest.mark.parametrize("x_shape,w_shape,bias,pattern", [
    ((3, 5), (2, 4), False, r"linear: input of shape \(3, 5\) and weight of shape \(2, 4\) cannot be multiplied"),
    ((2, 3), (2, 3, 4), False, r"weight of shape \(2, 3, 4\)"),
    ((3, 4), (4,), True, r"weight of shape \(4,\).*weight.shape\[1\]"),   # torch: "mat2 must be a matrix"
])
def test_functional_linear_errors_name_the_shapes(x_shape, w_shape, bias, pattern):
    b = tc.tensor(1.0) if bias else None
    with pytest.raises(RuntimeError, match=pattern):
        F.linear(tc.ones(*x_shape), tc.ones(*w_shape), b)
    with pytest.raises(RuntimeError):
        torch.nn.functional.linear(torch.ones(*x_shape), torch.ones(*w_shape), torch.tensor(1.0) if bias else None)


def test_functional_linear_with_a_1d_weight_is_a_dot_product():
    """As torch: weight (in,) without bias gives x @ w (the out_features dim dropped)."""
    x, w = RNG.standard_normal((3, 4)), RNG.standard_normal(4)
    X, W = tc.tensor(x, requires_grad=True), tc.tensor(w, requires_grad=True)
    y = F.linear(X, W)
    yt = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w))
    assert y.shape == tuple(yt.shape) == (3,)
    np.testing.assert_allclose(y.data, yt.numpy(), rtol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(W.grad.data, x.sum(0), rtol=1e-12)


def test_linear_default_init_bounds_as_torch():
    tc.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.95 * bound
    # the weight is U(-b, b): its std is b / sqrt(3)
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.02 * bound


@pytest.mark.parametrize("make", [
    lambda n: n.ReLU(), lambda n: n.LeakyReLU(0.3), lambda n: n.Sigmoid(), lambda n: n.Tanh(),
    lambda n: n.GELU(), lambda n: n.GELU("tanh"), lambda n: n.Softmax(dim=1), lambda n: n.LogSoftmax(dim=-1),
    lambda n: n.Softplus(beta=2.0, threshold=5.0), lambda n: n.Identity(), lambda n: n.Flatten(),
    lambda n: n.Flatten(0, 1), lambda n: n.Unflatten(2, (2, 3)), lambda n: n.Unflatten(-1, (3, -1)),
])
def test_parameterless_layers_match_torch(make):
    _fwd_bwd(make(nn), make(torch.nn), RNG.standard_normal((2, 3, 6)).astype(np.float32))


@pytest.mark.parametrize("make", [lambda n: n.LayerNorm(6), lambda n: n.LayerNorm((3, 6), elementwise_affine=False),
                                  lambda n: n.LayerNorm(6, bias=False), lambda n: n.GroupNorm(3, 3),
                                  lambda n: n.GroupNorm(1, 3, affine=False)])
def test_layer_and_group_norm_match_torch(make):
    ours, theirs = make(nn), make(torch.nn)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(RNG.standard_normal(p.shape).astype(np.float32)))
    _copy_weights(ours, theirs)
    _fwd_bwd(ours, theirs, (RNG.standard_normal((2, 3, 6)) * 3 + 1).astype(np.float32), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- Dropout

def test_dropout_train_zeroes_and_scales_eval_is_identity():
    tc.manual_seed(0)
    d = nn.Dropout(0.25)
    x = tc.Tensor(np.full((200, 100), 2.0, dtype=np.float32), requires_grad=True)
    y = d(x)
    kept = y.data != 0
    assert abs(1 - kept.mean() - 0.25) < 0.02
    np.testing.assert_array_equal(y.data[kept], np.float32(2.0 / 0.75))   # survivors scaled by 1/(1-p)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, kept * np.float32(1 / 0.75))  # same mask in backward
    d.eval()
    assert d(x) is x                       # PyTorch's eval-mode dropout returns its input
    torch_d = torch.nn.Dropout(0.25).eval()
    tx = torch.ones(3)
    assert torch_d(tx) is tx
    assert not nn.Dropout(1.0)(x).data.any()
    assert nn.Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout_is_reproducible_with_manual_seed():
    x = tc.ones(10, 10)
    tc.manual_seed(3)
    a = F.dropout(x, 0.5).data
    tc.manual_seed(3)
    b = F.dropout(x, 0.5).data
    np.testing.assert_array_equal(a, b)


def test_dropout2d_drops_whole_channels():
    tc.manual_seed(1)
    d = nn.Dropout2d(0.5)
    x = tc.Tensor(RNG.uniform(1, 2, (8, 16, 3, 3)).astype(np.float32))
    y = d(x).data
    per_map = (y != 0).reshape(8, 16, -1)
    assert np.all(per_map.all(-1) | ~per_map.any(-1))           # each map all kept or all dropped
    kept = per_map.all(-1)
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], x.data[kept] * 2.0, rtol=1e-6)
    d.eval()
    assert d(x) is x
    with pytest.warns(UserWarning, match="3-D"):
        F.dropout2d(tc.ones(2, 3, 4))          # treated as (N, C, L), as PyTorch does


def test_dropout_gradcheck_with_fixed_mask():
    x = tc.Tensor(RNG.standard_normal((3, 4)), requires_grad=True)

    def fn(t):
        tc.manual_seed(5)      # the same mask at every evaluation
        return F.dropout(t, 0.4)
    assert gradcheck(fn, [x]) and gradgradcheck(fn, [x])


# ----------------------------------------------------------------------------- BatchNorm

BN = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
      (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 2)), (nn.BatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 2, 3, 2))]


@pytest.mark.parametrize("ours_cls,torch_cls,shape", BN)
@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"affine": False}, {"momentum": 0.3, "eps": 1e-3},
                                    {"track_running_stats": False}, {"bias": False}])
def test_batchnorm_train_then_eval_matches_torch(ours_cls, torch_cls, shape, kwargs):
    ours, theirs = ours_cls(3, **kwargs), torch_cls(3, **kwargs)
    if theirs.weight is not None:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(RNG.uniform(0.5, 1.5, 3).astype(np.float32)))
    _copy_weights(ours, theirs)
    for _ in range(3):   # train: batch statistics, running stats updated
        x = (RNG.standard_normal(shape) * 2 + 1).astype(np.float32)
        ours.zero_grad()
        theirs.zero_grad()
        _fwd_bwd(ours, theirs, x, atol=1e-5, rtol=1e-4)
    for (k, v), (tk, tv) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert k == tk
        np.testing.assert_allclose(v.data, tv.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    ours.eval()
    theirs.eval()
    x = (RNG.standard_normal(shape) * 2 + 1).astype(np.float32)
    ours.zero_grad()
    theirs.zero_grad()
    y, ty = _fwd_bwd(ours, theirs, x, atol=1e-5, rtol=1e-4)
    if kwargs.get("track_running_stats", True):   # eval uses the running stats: not normalised per batch
        assert abs(float(y.data.mean())) > 1e-3 or abs(float(y.data.std()) - 1) > 1e-3


def test_batchnorm_train_and_eval_differ_and_num_batches_tracked():
    bn = nn.BatchNorm2d(2)
    x = tc.Tensor((RNG.standard_normal((4, 2, 3, 3)) * 3 + 5).astype(np.float32))
    y_train = bn(x)
    np.testing.assert_allclose(y_train.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    y_eval = bn(x)
    assert bn.num_batches_tracked.item() == 1          # eval does not count
    assert not np.allclose(y_eval.data, y_train.data)
    rm = 0.1 * x.data.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.running_mean.data, rm, rtol=1e-5)


def test_batchnorm_batch_of_one_errors_in_training_only():
    bn = nn.BatchNorm1d(3)
    msg = r"Expected more than 1 value per channel when training, got input size \(1, 3\)"
    with pytest.raises(ValueError, match=msg):
        bn(tc.ones(1, 3))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))      # the same situation errors in PyTorch too
    bn.eval()
    assert bn(tc.ones(1, 3)).shape == (1, 3)
    nn.BatchNorm2d(3)(tc.ones(1, 3, 2, 1))             # one sample but several pixels is fine


def test_batchnorm_input_checks():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(tc.ones(2, 3))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(tc.ones(2, 4))


def test_batchnorm_fast_backward_equals_tensor_op_backward():
    """The fused NumPy backward (ordinary backward) and the Tensor-op backward (create_graph)
    give the same gradients."""
    x = tc.Tensor(RNG.standard_normal((3, 4, 2, 2)), requires_grad=True)
    w = tc.Tensor(RNG.uniform(0.5, 1.5, 4), requires_grad=True)
    b = tc.Tensor(RNG.standard_normal(4), requires_grad=True)
    up = tc.Tensor(RNG.standard_normal((3, 4, 2, 2)))
    for training in (True, False):
        rm, rv = tc.Tensor(RNG.standard_normal(4)), tc.Tensor(RNG.uniform(0.5, 2, 4))
        y = F.batch_norm(x, rm, rv, w, b, training=training)
        fast = grad([y], [x, w, b], [up], retain_graph=True)
        graph = grad([y], [x, w, b], [up], create_graph=True)
        assert graph[0].requires_grad
        for f, g in zip(fast, graph):
            np.testing.assert_allclose(f.data, g.data, rtol=1e-10, atol=1e-12)


def test_batchnorm_float32_large_batch_matches_torch():
    x = (RNG.standard_normal((32, 8, 16, 16)) * 4 + 10).astype(np.float32)
    ours, theirs = nn.BatchNorm2d(8), torch.nn.BatchNorm2d(8)
    _fwd_bwd(ours, theirs, x, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), rtol=1e-5)


def test_batchnorm_state_dict_keys_equal_torch():
    def build(n):
        return n.Sequential(n.Linear(4, 3), n.BatchNorm1d(3), n.ReLU())
    ours, theirs = build(nn), build(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.state_dict()["1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize("shape", [(3, 2), (2, 2, 3), (2, 2, 2, 2)])
def test_module_gradcheck_float64(shape):
    """gradcheck + gradgradcheck through BatchNorm (train and eval) and LayerNorm modules."""
    bn = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}[len(shape)](2).double()
    ln = nn.LayerNorm(shape[-1]).double()
    x = tc.Tensor(RNG.standard_normal(shape), requires_grad=True)
    for mode in (True, False):
        bn.train(mode)
        with tc.no_grad():
            bn.running_mean.data[...] = RNG.standard_normal(2)
        fn = (lambda t: ln(bn(t))) if mode else (lambda t: bn(t))
        bn.momentum = 0.0     # keep the running stats fixed while finite differences run
        assert gradcheck(fn, [x], atol=1e-4)
        assert gradgradcheck(fn, [x], atol=1e-4)


# ----------------------------------------------------------------------------- init

def test_fan_in_fan_out_and_gain_as_torch():
    from tinygrad_cnn.nn.init import _calculate_fan_in_and_fan_out
    for shape in [(5, 3), (8, 4, 3, 3), (6, 2, 5), (4, 2, 1, 2, 3)]:
        assert _calculate_fan_in_and_fan_out(tc.zeros(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))
    for nl, p in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                  ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert nn.init.calculate_gain(nl, p) == pytest.approx(torch.nn.init.calculate_gain(nl, p))
    with pytest.raises(ValueError):
        _calculate_fan_in_and_fan_out(tc.zeros(3))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


@pytest.mark.parametrize("name,kwargs,kind", [
    ("xavier_uniform_", {"gain": 2.0}, "uniform"), ("xavier_normal_", {}, "normal"),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, "uniform"),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}, "uniform"),
    ("kaiming_normal_", {"nonlinearity": "relu"}, "normal"), ("normal_", {"mean": 1.0, "std": 0.5}, "normal"),
    ("uniform_", {"a": -2.0, "b": 3.0}, "uniform"),
])
def test_init_distributions_match_torch(name, kwargs, kind):
    shape = (64, 32, 3, 3)
    tc.manual_seed(0)
    torch.manual_seed(0)
    ours = getattr(nn.init, name)(tc.zeros(*shape), **kwargs).data
    theirs = getattr(torch.nn.init, name)(torch.zeros(*shape), **kwargs).numpy()
    assert ours.dtype == np.float32
    assert abs(ours.mean() - theirs.mean()) < 0.03 * theirs.std() + 1e-3
    assert abs(ours.std() / theirs.std() - 1) < 0.02
    if kind == "uniform":   # the same support
        assert abs(ours.max() / theirs.max() - 1) < 0.01 and abs(ours.min() / theirs.min() - 1) < 0.01


def test_constant_inits_and_in_place_under_no_grad():
    p = nn.Parameter(tc.zeros(3, 4))
    assert nn.init.ones_(p) is p and (p.data == 1).all()
    nn.init.zeros_(p)
    assert not p.data.any()
    nn.init.constant_(p, 0.5)
    assert (p.data == 0.5).all() and p.requires_grad
    nn.init.eye_(p)
    np.testing.assert_array_equal(p.data, np.eye(3, 4))
    nn.init.orthogonal_(p)
    np.testing.assert_allclose(p.data @ p.data.T, np.eye(3), atol=1e-5)


def test_init_reproducible_with_manual_seed():
    tc.manual_seed(42)
    a = nn.Linear(10, 10).weight.data.copy()
    tc.manual_seed(42)
    b = nn.Linear(10, 10).weight.data
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- utils

@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    ours = [nn.Parameter(tc.zeros(3, 4)), nn.Parameter(tc.zeros(5))]
    theirs = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True)]
    for o, t in zip(ours, theirs):
        g = RNG.standard_normal(o.shape).astype(np.float32)
        o.grad, t.grad = tc.Tensor(g.copy()), torch.tensor(g.copy())
    n = nn.utils.clip_grad_norm_(ours, 1.0, norm_type)
    tn = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type)
    assert n.item() == pytest.approx(tn.item(), rel=1e-6)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_value_and_vectors():
    m = nn.Linear(3, 2)
    m(tc.randn(4, 3) * 10).sum().backward()
    nn.utils.clip_grad_value_(m.parameters(), 0.1)
    assert all(np.abs(p.grad.data).max() <= 0.1 for p in m.parameters())
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (8,)
    tv = torch.nn.utils.parameters_to_vector([torch.tensor(p.data) for p in m.parameters()])
    np.testing.assert_array_equal(v.data, tv.numpy())
    nn.utils.vector_to_parameters(v * 2, m.parameters())
    np.testing.assert_allclose(nn.utils.parameters_to_vector(m.parameters()).data, v.data * 2)
    with pytest.raises(ValueError, match="elements"):
        nn.utils.vector_to_parameters(tc.zeros(3), m.parameters())
