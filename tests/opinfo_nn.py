"""OpInfo specs for the nn family: batch/layer/group norm and every loss (float64, vs PyTorch).

tests/test_ops_generic.py runs each spec: forward and backward against PyTorch with a random
upstream gradient, gradcheck and gradgradcheck.
"""
import numpy as np
import torch
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from opinfo import OpInfo
from tinygrad_cnn.testing.strategies import arrays

TF = torch.nn.functional


def _bn_input(d, ndim):
    n = d(st.integers(2, 3))
    c = d(st.integers(1, 3))
    spatial = tuple(d(st.integers(1, 2)) for _ in range(ndim - 2))
    return d(arrays((n, c) + spatial, low=-2, high=2)), c


def bn_train(ndim, affine=True):
    def sample(d):
        x, c = _bn_input(d, ndim)
        return [x, d(arrays((c,), low=0.5, high=1.5)), d(arrays((c,)))] if affine else [x]
    return sample


def bn_eval(d):
    x, c = _bn_input(d, 4)
    return [x, d(arrays((c,), low=0.5, high=1.5)), d(arrays((c,))), d(arrays((c,))),
            d(arrays((c,), low=0.5, high=2.0))]


def _classes(d, n, c, shape=None, ignore=False):
    t = np.asarray(d(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    if ignore:
        t[0] = -100 if n > 1 else t[0]
    return t if shape is None else t.reshape(shape)


def ce_sample(d, spatial=False, ignore=False, weight=False, probs=False):
    n, c = d(st.integers(1, 3)), d(st.integers(2, 4))
    shape = (n, c, 2, 2) if spatial else (n, c)
    x = d(arrays(shape, low=-3, high=3))
    if probs:
        p = d(arrays(shape, low=0.1, high=1.0))
        t = p / p.sum(1, keepdims=True)
    else:
        tshape = (n, 2, 2) if spatial else (n,)
        t = _classes(d, int(np.prod(tshape)), c, tshape, ignore)
    out = [x, t]
    if weight:
        out.append(d(arrays((c,), low=0.5, high=2.0)))
    return out


def probs_sample(d):
    shape = (d(st.integers(1, 3)), d(st.integers(1, 4)))
    return [d(arrays(shape, low=0.1, high=0.9)), d(arrays(shape, low=0.0, high=1.0)),
            d(arrays(shape, low=0.5, high=2.0))]


def logits_sample(d):
    shape = (d(st.integers(1, 3)), d(st.integers(1, 4)))
    return [d(arrays(shape, low=-4, high=4)), d(arrays(shape, low=0.0, high=1.0)),
            d(arrays(shape, low=0.5, high=2.0)), d(arrays(shape[-1:], low=0.5, high=3.0))]


def pair_apart(d):
    """(input, target) with |input - target| >= 0.1 (l1's kink is at equality)."""
    shape = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    t = d(arrays(shape))
    gap = d(arrays(shape, low=0.1, high=1.0)) * np.where(d(arrays(shape)) > 0, 1.0, -1.0)
    return [t + gap, t]


OPINFOS = [
    # ------------------------------------------------------------------ batch norm (one Function)
    OpInfo("batch_norm_train_2d", {"BatchNorm"},
           lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), bn_train(4),
           gradcheck_atol=1e-4),
    OpInfo("batch_norm_train_1d", {"BatchNorm"},
           lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-3),
           lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True, eps=1e-3), bn_train(2),
           gradcheck_atol=1e-4),
    OpInfo("batch_norm_train_3d_input_no_affine", {"BatchNorm"},
           lambda x: F.batch_norm(x, None, None, training=True),
           lambda x: TF.batch_norm(x, None, None, training=True), bn_train(3, affine=False),
           gradcheck_atol=1e-4),
    OpInfo("batch_norm_train_5d", {"BatchNorm"},
           lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), bn_train(5),
           gradcheck_atol=1e-4),
    OpInfo("batch_norm_eval", {"BatchNorm"},
           lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False),
           lambda x, w, b, rm, rv: TF.batch_norm(x, rm, rv, w, b, training=False), bn_eval,
           differentiable=[0, 1, 2]),
    # ------------------------------------------------------------------ layer / group norm (composites)
    OpInfo("layer_norm", {"Sqrt", "Sum"},
           lambda x, w, b: F.layer_norm(x, x.shape[-2:], w, b),
           lambda x, w, b: TF.layer_norm(x, x.shape[-2:], w, b),
           lambda d: (lambda s: [d(arrays((2,) + s)), d(arrays(s, low=0.5, high=1.5)), d(arrays(s))])(
               (d(st.integers(1, 3)), d(st.integers(2, 3)))), gradcheck_atol=1e-4),
    OpInfo("group_norm", {"Sqrt", "Reshape"},
           lambda x, w, b: F.group_norm(x, 2, w, b),
           lambda x, w, b: TF.group_norm(x, 2, w, b),
           lambda d: [d(arrays((2, 4, 2, 1))), d(arrays((4,), low=0.5, high=1.5)), d(arrays((4,)))],
           gradcheck_atol=1e-4),
    # ------------------------------------------------------------------ losses
    OpInfo("cross_entropy", {"LogSoftmax", "NllLoss", "Mul"},     # the one-node common case
           lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t), ce_sample),
    OpInfo("cross_entropy_nd", {"LogSoftmax", "NllLoss", "Mul"},     # segmentation maps, one node too
           lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t),
           lambda d: ce_sample(d, spatial=True)),
    OpInfo("nll_loss_sum", {"NllLoss", "Mul"},
           lambda x, t: F.nll_loss(x, t, reduction="sum"), lambda x, t: TF.nll_loss(x, t, reduction="sum"), ce_sample),
    OpInfo("cross_entropy_1d_input", {"LogSoftmax", "Gather"},    # (C,) logits: the general path
           lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t),
           lambda d: (lambda c: [d(arrays((c,))), np.array(d(st.integers(0, c - 1)), dtype=np.int64)])(
               d(st.integers(2, 4)))),
    OpInfo("cross_entropy_weight_ignore_sum", {"LogSoftmax", "Gather"},
           lambda x, t, w: F.cross_entropy(x, t, weight=w, ignore_index=-100, reduction="sum"),
           lambda x, t, w: TF.cross_entropy(x, t, weight=w, ignore_index=-100, reduction="sum"),
           lambda d: ce_sample(d, ignore=True, weight=True), differentiable=[0]),
    OpInfo("cross_entropy_nd_smoothing_weight", {"LogSoftmax", "Gather"},
           lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1),
           lambda x, t, w: TF.cross_entropy(x, t, weight=w, label_smoothing=0.1),
           lambda d: ce_sample(d, spatial=True, weight=True, ignore=True), differentiable=[0]),
    OpInfo("cross_entropy_none_smoothing", {"LogSoftmax", "Gather"},
           lambda x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.3),
           lambda x, t: TF.cross_entropy(x, t, reduction="none", label_smoothing=0.3), ce_sample),
    OpInfo("cross_entropy_probs", {"LogSoftmax", "Mul"},
           lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2),
           lambda x, p: TF.cross_entropy(x, p, label_smoothing=0.2), lambda d: ce_sample(d, probs=True)),
    OpInfo("nll_loss_nd_weight", {"Gather"},
           lambda x, t, w: F.nll_loss(x, t, weight=w, reduction="mean"),
           lambda x, t, w: TF.nll_loss(x, t, weight=w, reduction="mean"),
           lambda d: ce_sample(d, spatial=True, weight=True), differentiable=[0]),
    OpInfo("mse_loss", {"Sub", "Mul", "Sum"}, lambda a, b: F.mse_loss(a, b), lambda a, b: TF.mse_loss(a, b),
           lambda d: (lambda s: [d(arrays(s)), d(arrays(s))])((d(st.integers(1, 3)), 2))),
    OpInfo("mse_loss_none", {"Sub", "Mul"}, lambda a, b: F.mse_loss(a, b, reduction="none"),
           lambda a, b: TF.mse_loss(a, b, reduction="none"),
           lambda d: (lambda s: [d(arrays(s)), d(arrays(s))])((2, d(st.integers(1, 3))))),
    OpInfo("l1_loss", {"Abs"}, lambda a, b: F.l1_loss(a, b, reduction="sum"),
           lambda a, b: TF.l1_loss(a, b, reduction="sum"), pair_apart),
    OpInfo("binary_cross_entropy", {"BinaryCrossEntropy", "Log", "Clamp"},
           lambda p, t, w: F.binary_cross_entropy(p, t, weight=w),
           lambda p, t, w: TF.binary_cross_entropy(p, t, weight=w), probs_sample, differentiable=[0, 1]),
    OpInfo("binary_cross_entropy_with_logits", {"Softplus"},
           lambda x, t, w, pw: F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction="sum"),
           lambda x, t, w, pw: TF.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction="sum"),
           logits_sample, differentiable=[0, 1]),
]
