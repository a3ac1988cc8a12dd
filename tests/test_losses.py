"""Every loss option against PyTorch (float64 and float32), stability at +-1e4, clear errors."""
import itertools

import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.autograd import grad

TF = torch.nn.functional
RNG = np.random.default_rng(0)


def _check(fn, tfn, arrays, diff, atol=1e-10, rtol=1e-8):
    """Forward and gradients (w.r.t. inputs listed in ``diff``) agree with torch."""
    ours = [tc.Tensor(a.copy(), requires_grad=i in diff) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a.copy(), requires_grad=i in diff) for i, a in enumerate(arrays)]
    out, tout = fn(*ours), tfn(*theirs)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=atol, rtol=rtol)
    up = RNG.standard_normal(out.shape).astype(out.dtype)
    got = grad([out], [ours[i] for i in diff], [tc.Tensor(up)])
    want = torch.autograd.grad([tout], [theirs[i] for i in diff], [torch.tensor(up)])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.data, w.numpy(), atol=atol, rtol=rtol)
    return out


CE_CASES = list(itertools.product(["mean", "sum", "none"], [0.0, 0.15], [False, True], [False, True],
                                  ["1d", "2d", "4d"]))


@pytest.mark.parametrize("reduction,smoothing,use_weight,ignore,layout", CE_CASES)
def test_cross_entropy_class_indices_every_option(reduction, smoothing, use_weight, ignore, layout):
    c = 5
    if layout == "1d":
        x, t = RNG.standard_normal(c), np.array(3)
    elif layout == "2d":
        x, t = RNG.standard_normal((6, c)) * 3, RNG.integers(0, c, 6)
    else:
        x, t = RNG.standard_normal((2, c, 3, 2)), RNG.integers(0, c, (2, 3, 2))
    if ignore and t.ndim:
        t.reshape(-1)[0] = 2
        ignore_index = 2
    else:
        ignore_index = -100
    w = RNG.uniform(0.5, 2.0, c)
    kw = dict(reduction=reduction, label_smoothing=smoothing, ignore_index=ignore_index)
    _check(lambda a, ww: F.cross_entropy(a, tc.Tensor(t), weight=ww if use_weight else None, **kw),
           lambda a, ww: TF.cross_entropy(a, torch.tensor(t), weight=ww if use_weight else None, **kw),
           [x, w], [0])
    # float32 too, and the module form
    m = nn.CrossEntropyLoss(weight=tc.Tensor(w.astype(np.float32)) if use_weight else None, **kw)
    tm = torch.nn.CrossEntropyLoss(weight=torch.tensor(w.astype(np.float32)) if use_weight else None, **kw)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(m(tc.Tensor(x32), tc.Tensor(t)).data, tm(torch.tensor(x32), torch.tensor(t)).numpy(),
                               rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("use_weight", [False, True])
def test_cross_entropy_probability_targets(reduction, smoothing, use_weight):
    x = RNG.standard_normal((4, 3, 2))
    p = RNG.uniform(0.1, 1, (4, 3, 2))
    p /= p.sum(1, keepdims=True)
    w = RNG.uniform(0.5, 2.0, 3)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _check(lambda a, b, ww: F.cross_entropy(a, b, weight=ww if use_weight else None, **kw),
           lambda a, b, ww: TF.cross_entropy(a, b, weight=ww if use_weight else None, **kw), [x, p, w], [0, 1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("use_weight", [False, True])
def test_nll_loss(reduction, use_weight):
    logp = np.log(RNG.dirichlet(np.ones(4), size=6))
    t = RNG.integers(0, 4, 6)
    t[1] = -100
    w = RNG.uniform(0.5, 2, 4)
    _check(lambda a, ww: F.nll_loss(a, tc.Tensor(t), weight=ww if use_weight else None, reduction=reduction),
           lambda a, ww: TF.nll_loss(a, torch.tensor(t), weight=ww if use_weight else None, reduction=reduction),
           [logp, w], [0])
    m = nn.NLLLoss(reduction=reduction)
    np.testing.assert_allclose(m(tc.Tensor(logp), tc.Tensor(t)).data,
                               torch.nn.NLLLoss(reduction=reduction)(torch.tensor(logp), torch.tensor(t)).numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses(reduction):
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    w, pw = RNG.uniform(0.5, 2, (3, 4)), RNG.uniform(0.5, 3, 4)
    p, t = RNG.uniform(0.05, 0.95, (3, 4)), RNG.uniform(0, 1, (3, 4))
    _check(lambda x, y: F.mse_loss(x, y, reduction=reduction), lambda x, y: TF.mse_loss(x, y, reduction=reduction),
           [a, b], [0, 1])
    _check(lambda x, y: F.l1_loss(x, y, reduction=reduction), lambda x, y: TF.l1_loss(x, y, reduction=reduction),
           [a, b], [0, 1])
    _check(lambda x, y, ww: F.binary_cross_entropy(x, y, ww, reduction=reduction),
           lambda x, y, ww: TF.binary_cross_entropy(x, y, ww, reduction=reduction), [p, t, w], [0, 1])
    _check(lambda x, y, ww, pp: F.binary_cross_entropy_with_logits(x, y, ww, reduction=reduction, pos_weight=pp),
           lambda x, y, ww, pp: TF.binary_cross_entropy_with_logits(x, y, ww, reduction=reduction, pos_weight=pp),
           [a * 5, t, w, pw], [0, 1])
    for ours, theirs, args in [(nn.MSELoss, torch.nn.MSELoss, (a, b)), (nn.L1Loss, torch.nn.L1Loss, (a, b)),
                               (nn.BCELoss, torch.nn.BCELoss, (p, t)),
                               (nn.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss, (a, t))]:
        np.testing.assert_allclose(ours(reduction=reduction)(*map(tc.Tensor, args)).data,
                                   theirs(reduction=reduction)(*map(torch.tensor, args)).numpy(), rtol=1e-12)


def test_bce_with_logits_pos_weight_module_registers_buffers():
    pw = tc.Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    m = nn.BCEWithLogitsLoss(pos_weight=pw)
    tm = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw.data))
    assert list(m.state_dict()) == list(tm.state_dict()) == ["pos_weight"]
    x, t = RNG.standard_normal((4, 3)).astype(np.float32), RNG.integers(0, 2, (4, 3)).astype(np.float32)
    np.testing.assert_allclose(m(tc.Tensor(x), tc.Tensor(t)).data, tm(torch.tensor(x), torch.tensor(t)).numpy(),
                               rtol=1e-6)
    assert list(nn.CrossEntropyLoss(weight=tc.ones(3)).state_dict()) == \
        list(torch.nn.CrossEntropyLoss(weight=torch.ones(3)).state_dict())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_stay_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, 1e4, 1e4, 0.0], [-1e4, -1e4, -1e4, -1e4]], dtype=dtype)
    t = np.array([1, 0, 2])
    X = tc.Tensor(x.copy(), requires_grad=True)
    for smoothing in (0.0, 0.1):
        loss = F.cross_entropy(X, tc.Tensor(t), label_smoothing=smoothing)
        tl = TF.cross_entropy(torch.tensor(x), torch.tensor(t), label_smoothing=smoothing)
        assert np.isfinite(loss.item())
        assert loss.item() == pytest.approx(tl.item(), rel=1e-6)
        (g,) = grad([loss], [X])
        assert np.isfinite(g.data).all()
    y = (x > 0).astype(dtype)
    bl = F.binary_cross_entropy_with_logits(X, tc.Tensor(y), pos_weight=tc.Tensor(np.full(4, 2.0, dtype)))
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tbl = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y),
                                              pos_weight=torch.full((4,), 2.0, dtype=tdt))
    assert np.isfinite(bl.item()) and bl.item() == pytest.approx(tbl.item(), rel=1e-6)
    (g,) = grad([bl], [X])
    assert np.isfinite(g.data).all()
    # BCE on probabilities of exactly 0 and 1: logs clamp at -100 as PyTorch
    p = np.array([0.0, 1.0, 0.5], dtype=dtype)
    q = np.array([1.0, 0.0, 1.0], dtype=dtype)
    assert F.binary_cross_entropy(tc.Tensor(p), tc.Tensor(q)).item() == pytest.approx(
        TF.binary_cross_entropy(torch.tensor(p), torch.tensor(q)).item(), rel=1e-6)


def test_loss_errors_are_clear():
    x = tc.randn(3, 4)
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.cross_entropy(x, tc.Tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="target of shape \\(3,\\)"):
        F.cross_entropy(x, tc.Tensor([0, 1]))
    with pytest.raises(ValueError, match="probability targets"):
        F.cross_entropy(x, tc.randn(3, 5))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, tc.Tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="weight must have shape \\(4,\\)"):
        F.cross_entropy(x, tc.Tensor([0, 1, 2]), weight=tc.ones(3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(tc.Tensor([0.5, 1.5]), tc.Tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="same as input size"):
        F.binary_cross_entropy_with_logits(tc.randn(3), tc.randn(4))
    with pytest.raises(TypeError, match="integer"):
        F.nll_loss(x, tc.Tensor([0.0, 1.0, 1.0]))
    with pytest.warns(UserWarning, match="broadcast"):
        F.mse_loss(tc.randn(3, 1), tc.randn(3))


def test_legacy_size_average_and_reduce():
    x, y = tc.randn(3, 4), tc.randn(3, 4)
    assert F.mse_loss(x, y, size_average=False).item() == pytest.approx(F.mse_loss(x, y, reduction="sum").item())
    assert F.mse_loss(x, y, reduce=False).shape == (3, 4)


def test_all_ignored_gives_nan_like_torch():
    x = tc.randn(2, 3)
    t = np.array([-100, -100])
    with np.errstate(invalid="ignore", divide="ignore"):
        ours = F.cross_entropy(x, tc.Tensor(t)).item()
    theirs = TF.cross_entropy(torch.tensor(x.data), torch.tensor(t)).item()
    assert np.isnan(ours) and np.isnan(theirs)
