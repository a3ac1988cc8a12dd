"""OpInfo specs for the engine's core ops (elementwise, reductions, movement, matmul)."""
import numpy as np
import torch
from hypothesis import strategies as st

import tinygrad_cnn as tc
from opinfo import OpInfo
from tinygrad_cnn.testing.strategies import arrays, broadcastable_shapes, shapes

TF = torch.nn.functional


def one(shape_strategy=shapes(0, 3), low=-2.0, high=2.0, distinct=False):
    return lambda draw: [draw(arrays(draw(shape_strategy), low=low, high=high, distinct=distinct))]


def pair(low=-2.0, high=2.0):
    def sample(draw):
        sa, sb = draw(broadcastable_shapes(max_dims=3))
        return [draw(arrays(sa, low=low, high=high)), draw(arrays(sb, low=low, high=high))]
    return sample


def pair_apart():
    """Broadcastable a, b with |a - b| >= 0.2 everywhere (no ties for maximum/minimum)."""
    def sample(draw):
        sa, sb = draw(broadcastable_shapes(max_dims=3))
        b = draw(arrays(sb))
        gap = draw(arrays(np.broadcast_shapes(sa, sb), low=0.2, high=1.0))
        sign = np.where(draw(arrays(gap.shape)) > 0, 1.0, -1.0)
        a = b + gap * sign
        return [_reduce_to(a, sa, b), b]
    return sample


def _reduce_to(a, shape, b):
    """a was built at the broadcast shape; keep a slice of it with ``shape`` that stays apart from b."""
    if a.shape == tuple(shape):
        return a
    lead = a.ndim - len(shape)
    idx = tuple([0] * lead + [slice(None) if s != 1 else slice(0, 1) for s in shape])
    sub = a[idx].reshape(shape)
    full = np.broadcast_to(sub, a.shape)
    bad = np.abs(full - np.broadcast_to(b, a.shape)) < 0.2
    return sub if not bad.any() else sub + 10.0


def positive(shape_strategy=shapes(0, 3)):
    return one(shape_strategy, 0.5, 2.0)


def away_from(points, shape_strategy=shapes(1, 3)):
    """Values at least 0.1 from each kink in ``points`` (finite differences are unreliable there)."""
    def sample(draw):
        a = draw(arrays(draw(shape_strategy)))
        for p in points:
            near = np.abs(a - p) < 0.1
            a = np.where(near, p + 0.2 * np.sign(a - p + 1e-12), a)
        return [a]
    return sample


def dim_of(draw, ndim):
    return draw(st.integers(-ndim, ndim - 1)) if ndim else 0


OPINFOS = [
    OpInfo("add", {"Add"}, lambda a, b: a + b, lambda a, b: a + b, pair()),
    OpInfo("sub", {"Sub"}, lambda a, b: a - b, lambda a, b: a - b, pair()),
    OpInfo("mul", {"Mul"}, lambda a, b: a * b, lambda a, b: a * b, pair()),
    OpInfo("div", {"Div"}, lambda a, b: a / b, lambda a, b: a / b,
           lambda d: [d(arrays(s, low=0.5, high=2)) for s in d(broadcastable_shapes(max_dims=3))]),
    OpInfo("neg", {"Neg"}, lambda a: -a, lambda a: -a, one()),
    OpInfo("scalar_ops", {"Add", "Mul", "Sub", "Div"}, lambda a: (2.0 - a) * 3 / 1.5 + 1,
           lambda a: (2.0 - a) * 3 / 1.5 + 1, one()),
    OpInfo("cast", {"Cast"}, lambda a: a.float().double() * 1.0, lambda a: a.float().double() * 1.0,
           one(), atol=1e-6, rtol=1e-6, gradcheck_atol=1e-4, gradcheck_rtol=1e-2, eps=1e-3),
    OpInfo("pow_scalar", {"PowScalar"}, lambda a: a ** 3 + a ** 0.5, lambda a: a ** 3 + a ** 0.5,
           positive()),
    OpInfo("pow_tensor", {"Pow", "Where"}, lambda a, b: a ** b, lambda a, b: a ** b,
           lambda d: [d(arrays((2, 3), low=0.5, high=2)), d(arrays((3,)))]),
    OpInfo("exp", {"Exp"}, lambda a: a.exp(), lambda a: a.exp(), one()),
    OpInfo("log", {"Log"}, lambda a: a.log(), lambda a: a.log(), positive()),
    OpInfo("sqrt", {"Sqrt"}, lambda a: a.sqrt(), lambda a: a.sqrt(), positive()),
    OpInfo("abs", {"Abs"}, lambda a: a.abs(), lambda a: a.abs(), away_from([0.0])),
    OpInfo("clamp", {"Clamp"}, lambda a: a.clamp(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7),
           away_from([-0.5, 0.7])),
    OpInfo("clamp_min", {"Clamp"}, lambda a: a.clamp(min=0.3), lambda a: a.clamp(min=0.3), away_from([0.3])),
    OpInfo("maximum", {"Maximum"}, lambda a, b: a.maximum(b), lambda a, b: torch.maximum(a, b), pair_apart()),
    OpInfo("minimum", {"Minimum"}, lambda a, b: a.minimum(b), lambda a, b: torch.minimum(a, b), pair_apart()),
    OpInfo("where", {"Where"}, lambda c, a, b: tc.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
           lambda d: [d(arrays((3, 4))) > 0, d(arrays((3, 4))), d(arrays((4,)))]),
    OpInfo("relu", {"ReLU", "ReluBackward"}, lambda a: a.relu(), lambda a: a.relu(), away_from([0.0])),
    OpInfo("leaky_relu", {"LeakyReLU"}, lambda a: tc.nn.functional.leaky_relu(a, 0.2),
           lambda a: TF.leaky_relu(a, 0.2), away_from([0.0])),
    OpInfo("sigmoid", {"Sigmoid"}, lambda a: a.sigmoid(), lambda a: a.sigmoid(), one()),
    OpInfo("tanh", {"Tanh"}, lambda a: a.tanh(), lambda a: a.tanh(), one()),
    OpInfo("gelu", {"Erf", "Mul", "Add"}, lambda a: tc.nn.functional.gelu(a), lambda a: TF.gelu(a), one()),
    OpInfo("gelu_tanh", {"Tanh", "Mul"}, lambda a: tc.nn.functional.gelu(a, approximate="tanh"),
           lambda a: TF.gelu(a, approximate="tanh"), one()),
    OpInfo("softplus", {"Softplus", "Sigmoid", "Where"}, lambda a: tc.nn.functional.softplus(a, 2.0, 3.0),
           lambda a: TF.softplus(a, 2.0, 3.0), away_from([1.5])),
    OpInfo("sum", {"Sum"}, lambda a: a.sum(1, keepdim=False), lambda a: a.sum(1),
           one(shapes(2, 4))),
    OpInfo("sum_all_keepdim", {"Sum", "Expand"}, lambda a: a.sum((0, -1), keepdim=True),
           lambda a: a.sum((0, -1), keepdim=True), one(shapes(2, 3, min_side=2))),
    OpInfo("mean", {"Sum", "Mul"}, lambda a: a.mean(-1), lambda a: a.mean(-1), one(shapes(1, 3))),
    OpInfo("var", {"Sum", "Sub", "Mul"}, lambda a: a.var(0), lambda a: a.var(0),
           one(shapes(1, 3, min_side=2))),
    OpInfo("std_biased", {"Sqrt", "Sum"}, lambda a: a.std(-1, unbiased=False, keepdim=True),
           lambda a: a.std(-1, unbiased=False, keepdim=True), one(shapes(1, 3, min_side=2))),
    OpInfo("amax", {"AMax"}, lambda a: a.max(), lambda a: a.max(), one(shapes(1, 3), distinct=True)),
    OpInfo("amin_dims", {"AMax"}, lambda a: a.amin((0, 1), keepdim=True), lambda a: a.amin((0, 1), keepdim=True),
           one(shapes(2, 3), distinct=True)),
    OpInfo("max_dim", {"MaxDim", "ScatterAdd", "Gather"}, lambda a: a.max(1), lambda a: a.max(1),
           one(shapes(2, 3), distinct=True)),
    OpInfo("min_dim_keepdim", {"MaxDim"}, lambda a: a.min(-1, keepdim=True), lambda a: a.min(-1, keepdim=True),
           one(shapes(1, 3), distinct=True)),
    OpInfo("logsumexp", {"LogSumExp"}, lambda a: a.logsumexp(-1), lambda a: a.logsumexp(-1),
           one(shapes(1, 3))),
    OpInfo("logsumexp_dims", {"LogSumExp"}, lambda a: a.logsumexp((0, 1), keepdim=True),
           lambda a: a.logsumexp((0, 1), keepdim=True), one(shapes(2, 3))),
    OpInfo("softmax", {"Softmax"}, lambda a: a.softmax(-1), lambda a: a.softmax(-1), one(shapes(1, 3))),
    OpInfo("log_softmax", {"LogSoftmax"}, lambda a: a.log_softmax(0), lambda a: a.log_softmax(0),
           one(shapes(1, 3))),
    OpInfo("reshape", {"Reshape"}, lambda a: a.reshape(-1, 2), lambda a: a.reshape(-1, 2),
           lambda d: [d(arrays((d(st.integers(1, 3)), 2, d(st.integers(1, 3)))))]),
    OpInfo("flatten_unsqueeze", {"Reshape"}, lambda a: a.flatten(1).unsqueeze(0).squeeze(0),
           lambda a: a.flatten(1).unsqueeze(0).squeeze(0), one(shapes(2, 4))),
    OpInfo("permute", {"Permute"}, lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), one(shapes(3, 3))),
    OpInfo("transpose_contiguous", {"Permute", "Contiguous"}, lambda a: a.transpose(0, 1).contiguous(),
           lambda a: a.transpose(0, 1).contiguous(), one(shapes(2, 3, min_side=2))),
    OpInfo("expand", {"Expand"}, lambda a: a.expand(2, 3, a.shape[-1]),
           lambda a: a.expand(2, 3, a.shape[-1]), lambda d: [d(arrays((3, 1) if d(st.booleans()) else (1, 2)))]),
    OpInfo("getitem_basic", {"GetItem", "IndexAdd"}, lambda a: a[1:, None, ::2, -1],
           lambda a: a[1:, None, ::2, -1], one(shapes(3, 3, min_side=2))),
    OpInfo("getitem_advanced", {"GetItem", "IndexAdd"},
           lambda a: a[tc.tensor([0, 2, 0]), 1:], lambda a: a[torch.tensor([0, 2, 0]), 1:],
           lambda d: [d(arrays((3, 4)))]),
    OpInfo("getitem_mask", {"GetItem", "IndexAdd"}, lambda a: a[a.detach() > 0], lambda a: a[a.detach() > 0],
           one(shapes(1, 3))),
    OpInfo("gather", {"Gather", "ScatterAdd"}, lambda a, i: a.gather(1, i), lambda a, i: a.gather(1, i),
           lambda d: [d(arrays((3, 4))), np.asarray(d(st.lists(st.integers(0, 3), min_size=6, max_size=6))).reshape(3, 2)]),
    OpInfo("pad_constant", {"Pad", "GetItem"}, lambda a: tc.nn.functional.pad(a, (1, 2, 0, 1), value=0.5),
           lambda a: TF.pad(a, (1, 2, 0, 1), value=0.5), one(shapes(2, 3))),
    OpInfo("pad_crop", {"GetItem", "Pad"}, lambda a: tc.nn.functional.pad(a, (-1, 2)),
           lambda a: TF.pad(a, (-1, 2)), one(shapes(1, 3, min_side=2))),
    OpInfo("pad_reflect", {"GetItem", "IndexAdd"}, lambda a: tc.nn.functional.pad(a, (1, 1), mode="reflect"),
           lambda a: TF.pad(a, (1, 1), mode="reflect"), one(shapes(2, 3, min_side=2))),
    OpInfo("pad_replicate", {"GetItem"}, lambda a: tc.nn.functional.pad(a, (2, 1, 1, 0), mode="replicate"),
           lambda a: TF.pad(a, (2, 1, 1, 0), mode="replicate"), one(shapes(3, 3))),
    OpInfo("pad_circular", {"GetItem"}, lambda a: tc.nn.functional.pad(a, (1, 2), mode="circular"),
           lambda a: TF.pad(a, (1, 2), mode="circular"), one(shapes(2, 3, min_side=2))),
    OpInfo("cat", {"Cat", "GetItem"}, lambda a, b: tc.cat([a, b, a], 1), lambda a, b: torch.cat([a, b, a], 1),
           lambda d: [d(arrays((2, 3))), d(arrays((2, d(st.integers(1, 3)))))]),
    OpInfo("stack", {"Cat", "Reshape"}, lambda a, b: tc.stack([a, b], -1), lambda a, b: torch.stack([a, b], -1),
           lambda d: (lambda s: [d(arrays(s)), d(arrays(s))])(d(shapes(1, 3)))),
    OpInfo("matmul", {"MatMul", "Permute"}, lambda a, b: a @ b, lambda a, b: a @ b,
           lambda d: (lambda n, k, m: [d(arrays((2, n, k))), d(arrays((k, m)))])(
               d(st.integers(1, 3)), d(st.integers(1, 3)), d(st.integers(1, 3)))),
    OpInfo("matmul_vec", {"MatMul", "Reshape"}, lambda a, b: a @ b, lambda a, b: a @ b,
           lambda d: (lambda k: [d(arrays((k,))), d(arrays((k, 2)))])(d(st.integers(1, 4)))),
    OpInfo("linear", {"Linear", "MatMul"}, lambda x, w, b: tc.nn.functional.linear(x, w, b),
           lambda x, w, b: TF.linear(x, w, b),
           lambda d: (lambda i, o: [d(arrays((d(st.integers(1, 3)), i))), d(arrays((o, i))), d(arrays((o,)))])(
               d(st.integers(1, 4)), d(st.integers(1, 4)))),
    # leading batch dims (flattened in backward), 1-d input, no bias, a () bias
    OpInfo("linear_3d_input", {"Linear", "MatMul"}, lambda x, w, b: tc.nn.functional.linear(x, w, b),
           lambda x, w, b: TF.linear(x, w, b), lambda d: [d(arrays((2, 3, 4))), d(arrays((2, 4))), d(arrays((2,)))]),
    OpInfo("linear_1d_input_no_bias", {"Linear", "MatMul"}, lambda x, w: tc.nn.functional.linear(x, w),
           lambda x, w: TF.linear(x, w), lambda d: [d(arrays((3,))), d(arrays((2, 3)))]),
    OpInfo("linear_scalar_bias", {"Linear", "MatMul"}, lambda x, w, b: tc.nn.functional.linear(x, w, b),
           lambda x, w, b: TF.linear(x, w, b), lambda d: [d(arrays((2, 3))), d(arrays((2, 3))), d(arrays(()))]),
]
