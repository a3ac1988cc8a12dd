"""Convolution family: slide examples, adjoint identities, float32 vs PyTorch on medium shapes,
every error message, and the Conv*/ConvTranspose* modules against torch.nn with copied weights.

Tolerances: float64 comparisons 1e-10; float32 comparisons atol=rtol=1e-4 on values of order 1
(inputs ~ N(0, 1), sums of up to ~600 products, compared after scaling by the output's size).
"""
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import shapes
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.kernels import conv as conv_kernels
from tinygrad_cnn.testing import adjoint_check

TF = torch.nn.functional
OURS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
THEIRS = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
OURS_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
THEIRS_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}


def T(a, requires_grad=False):
    return tc.Tensor(np.asarray(a), requires_grad=requires_grad)


# ----------------------------------------------------------------------------- slide examples

SLIDE_IMAGE = np.array([[1, 1, 1, 0, 0],
                        [0, 1, 1, 1, 0],
                        [0, 0, 1, 1, 1],
                        [0, 0, 1, 1, 0],
                        [0, 1, 1, 0, 0]], dtype=np.float32)
SLIDE_FILTER = np.array([[1, 0, 1],
                         [0, 1, 0],
                         [1, 0, 1]], dtype=np.float32)


def test_topic3_feature_map():
    """5x5 binary image * 3x3 'X' filter: the feature map starts with 4 (top-left)."""
    y = F.conv2d(T(SLIDE_IMAGE[None, None]), T(SLIDE_FILTER[None, None]))
    assert y.shape == (1, 1, 3, 3)
    assert y.data[0, 0, 0, 0] == 4
    np.testing.assert_array_equal(y.data[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_topic4_activation_maps_shape():
    """(2,3,32,32) * (6,3,5,5) -> (2,6,28,28): one activation map per filter, one set per image."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    y = F.conv2d(T(x), T(w))
    assert y.shape == (2, 6, 28, 28)
    np.testing.assert_allclose(y.data, TF.conv2d(torch.tensor(x), torch.tensor(w)).numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kernel,padding,stride,expected", [
    (3, 0, 1, 5),      # W-K+1
    (3, 1, 1, 7),      # P=(K-1)/2 keeps the size
    (3, 0, 2, 3),      # (W-K+2P)/S+1 = (7-3)/2+1
    (3, 1, 2, 4),      # (7-3+2)/2+1
    (5, 2, 1, 7),
    (3, 0, 3, 2),      # (7-3)/3+1 = 2.33: the last column is never visited (floored)
])
def test_topic7_output_size_on_7x7(kernel, padding, stride, expected):
    x = T(np.ones((1, 1, 7, 7), dtype=np.float32))
    w = T(np.ones((1, 1, kernel, kernel), dtype=np.float32))
    y = F.conv2d(x, w, stride=stride, padding=padding)
    assert y.shape == (1, 1, expected, expected)
    assert shapes.conv_output_size(7, kernel, stride, padding) == expected
    assert (7 - kernel + 2 * padding) // stride + 1 == expected
    assert shapes.drops_pixels(7, kernel, stride, padding) == (7 - kernel + 2 * padding) % stride


def test_topic18_transposed_conv_2x2_to_4x4():
    """3x3 transposed conv, stride 2, pad 1 on a 2x2 input: 4x4 with output_padding=1.

    The filter moves 2 pixels in the output for every input pixel and overlapping outputs are
    summed; without padding that gives 5x5, and padding=1 + output_padding=1 trims exactly one
    row/column at the top and left.
    """
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.arange(1.0, 10.0).reshape(3, 3)
    full = np.zeros((5, 5))
    for i in range(2):
        for j in range(2):
            full[2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[i, j] * w    # copy the scaled filter, sum overlaps
    y5 = F.conv_transpose2d(T(x[None, None]), T(w[None, None]), stride=2)
    np.testing.assert_allclose(y5.data[0, 0], full)
    y4 = F.conv_transpose2d(T(x[None, None]), T(w[None, None]), stride=2, padding=1, output_padding=1)
    assert y4.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(y4.data[0, 0], full[1:, 1:])
    layer = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)
    assert layer(T(np.zeros((1, 1, 2, 2), np.float32))).shape == (1, 1, 4, 4)


def test_topic19_transposed_conv_1d():
    """Input [a, b], 3x1 filter [x, y, z], stride 2 -> [ax, ay, az+bx, by, bz]; trimming one
    pixel gives exactly 2x upsampling."""
    a, b, x, y, z = 2.0, 3.0, 5.0, 7.0, 11.0
    inp, w = T([[[a, b]]]), T([[[x, y, z]]])
    np.testing.assert_allclose(F.conv_transpose1d(inp, w, stride=2).data[0, 0],
                               [a * x, a * y, a * z + b * x, b * y, b * z])
    out = F.conv_transpose1d(inp, w, stride=2, padding=1, output_padding=1)
    np.testing.assert_allclose(out.data[0, 0], [a * y, a * z + b * x, b * y, b * z])


def test_topic20_conv_as_sparse_matrix():
    """A 3x3 conv over 4x4 is a 4x16 matrix C; conv(x) = C x and conv_transpose(y) = C^T y."""
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    columns = [F.conv2d(T(np.eye(16)[j].reshape(1, 1, 4, 4)), T(w)).data.reshape(4) for j in range(16)]
    C = np.stack(columns, axis=1)
    assert C.shape == (4, 16)
    # the first output pixel sees the top-left 3x3 window: row 0 of C is the filter laid out
    np.testing.assert_array_equal(C[0].reshape(4, 4), [[1, 2, 3, 0], [4, 5, 6, 0], [7, 8, 9, 0], [0, 0, 0, 0]])
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(16), rng.standard_normal(4)
    np.testing.assert_allclose(F.conv2d(T(x.reshape(1, 1, 4, 4)), T(w)).data.reshape(4), C @ x, atol=1e-12)
    np.testing.assert_allclose(F.conv_transpose2d(T(y.reshape(1, 1, 2, 2)), T(w)).data.reshape(16),
                               C.T @ y, atol=1e-12)


def test_topic8_pointwise_changes_channels():
    """A 1x1 conv is a matrix over channels at every pixel."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 5, 1, 1))
    y = F.conv2d(T(x), T(w))
    np.testing.assert_allclose(y.data, np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x), atol=1e-12)


def test_topic21_depthwise_is_per_channel():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((3, 1, 3, 3))
    y = F.conv2d(T(x), T(w), padding=1, groups=3)
    for c in range(3):
        yc = F.conv2d(T(x[:, c:c + 1]), T(w[c:c + 1]), padding=1)
        np.testing.assert_allclose(y.data[:, c:c + 1], yc.data, atol=1e-12)


# ----------------------------------------------------------------------------- adjoint identity

@st.composite
def adjoint_cases(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    in_size = tuple(max(d * (k - 1) + 1 - 2 * p, 1) + draw(st.integers(0, 4))
                    for k, d, p in zip(kernel, dilation, padding))
    return nd, draw(st.integers(1, 2)), c_in, c_out, groups, in_size, kernel, stride, padding, dilation


@settings(deadline=None)
@given(adjoint_cases(), st.integers(0, 2**31 - 1))
def test_adjoint_conv_vs_conv_transpose(case, seed):
    """<conv(x), y> == <x, conv_transpose(y)> for the same weight, any geometry. The
    output_padding that restores x's size is what makes conv_transpose the exact adjoint."""
    nd, n, c_in, c_out, groups, in_size, kernel, stride, padding, dilation = case
    w = T(np.random.default_rng(seed).standard_normal((c_out, c_in // groups) + kernel))
    out_size = tuple(shapes.conv_output_size(i, k, s, p, d)
                     for i, k, s, p, d in zip(in_size, kernel, stride, padding, dilation))
    output_padding = shapes.conv_transpose_output_padding(out_size, in_size, kernel, stride, padding, dilation)
    assert adjoint_check(
        lambda x: OURS[nd](x, w, stride=stride, padding=padding, dilation=dilation, groups=groups),
        lambda y: OURS_T[nd](y, w, stride=stride, padding=padding, output_padding=output_padding,
                             dilation=dilation, groups=groups),
        (n, c_in) + in_size, (n, c_out) + out_size, seed=seed)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_adjoint_with_string_padding(padding):
    """'same' with an even kernel and stride 2 pads asymmetrically; the adjoint still holds
    when the transpose is written with the explicit (before) pad and the output size."""
    from tinygrad_cnn.ops.conv import ConvTransposeNd
    w = T(np.random.default_rng(4).standard_normal((3, 2, 4, 3)))
    x_shape = (2, 2, 7, 6)
    from tinygrad_cnn.nn.functional.conv import conv_geometry
    stride, pad, dilation, out = conv_geometry(x_shape[2:], (4, 3), 2, padding, 1)
    assert adjoint_check(lambda x: F.conv2d(x, w, stride=2, padding=padding),
                         lambda y: ConvTransposeNd.apply(y, w, None, stride, pad, dilation, 1, x_shape[2:]),
                         x_shape, (2, 3) + out)


# ----------------------------------------------------------------------------- float32 vs torch

MEDIUM = [
    # nd, x shape, w shape, kwargs
    (2, (4, 8, 17, 15), (16, 8, 3, 3), dict(stride=1, padding=1)),
    (2, (3, 8, 20, 20), (12, 4, 3, 5), dict(stride=(2, 1), padding=(1, 2), groups=2)),
    (2, (2, 16, 13, 13), (16, 1, 3, 3), dict(stride=2, padding=1, groups=16)),            # depthwise
    (2, (2, 8, 9, 9), (24, 1, 5, 5), dict(padding="same", dilation=2, groups=8)),         # depthwise x3
    (2, (4, 16, 10, 10), (32, 16, 1, 1), dict()),                                        # pointwise
    (2, (3, 6, 21, 19), (5, 6, 4, 4), dict(stride=3, padding="same")),                   # TF 'same'
    (1, (4, 6, 50), (8, 3, 5), dict(stride=2, padding=3, dilation=2, groups=2)),
    (3, (2, 4, 7, 8, 6), (6, 4, 3, 2, 3), dict(stride=(1, 2, 1), padding=1)),
]


def _grads_vs_torch(ours_fn, theirs_fn, x, w, b, atol, rtol):
    X, W, B = (tc.Tensor(a.copy(), requires_grad=True) for a in (x, w, b))
    Xt, Wt, Bt = (torch.tensor(a.copy(), requires_grad=True) for a in (x, w, b))
    y, yt = ours_fn(X, W, B), theirs_fn(Xt, Wt, Bt)
    assert y.shape == tuple(yt.shape) and y.dtype == x.dtype
    np.testing.assert_allclose(y.data, yt.detach().numpy(), atol=atol, rtol=rtol)
    up = np.random.default_rng(5).standard_normal(y.shape).astype(x.dtype)
    (y * tc.Tensor(up)).sum().backward()
    (yt * torch.tensor(up)).sum().backward()
    for name, a, at in (("input", X, Xt), ("weight", W, Wt), ("bias", B, Bt)):
        scale = max(1.0, float(np.abs(at.grad.numpy()).max()))
        np.testing.assert_allclose(a.grad.data / scale, at.grad.numpy() / scale, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of {name}")


@pytest.mark.parametrize("nd,xs,ws,kw", MEDIUM)
def test_float32_vs_torch_medium(nd, xs, ws, kw):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    if kw.get("padding") == "same" and kw.get("stride", 1) != 1:   # torch refuses: pad explicitly
        pads = []
        for i, k in reversed(list(zip(xs[2:], ws[2:]))):
            pads.extend(shapes.same_padding(i, k, kw["stride"]))
        theirs = lambda X, W, B: THEIRS[nd](TF.pad(X, pads), W, B, stride=kw["stride"])   # noqa: E731
    else:
        theirs = lambda X, W, B: THEIRS[nd](X, W, B, **kw)   # noqa: E731
    _grads_vs_torch(lambda X, W, B: OURS[nd](X, W, B, **kw), theirs, x, w, b, atol=1e-4, rtol=1e-4)


MEDIUM_T = [
    (2, (4, 16, 8, 8), (16, 8, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    (2, (2, 8, 7, 9), (8, 3, 4, 3), dict(stride=(3, 2), padding=(1, 0), groups=2, dilation=(1, 2))),
    (2, (2, 8, 9, 9), (8, 1, 3, 3), dict(padding=1, groups=8)),                         # depthwise
    (1, (3, 4, 20), (4, 6, 5), dict(stride=3, padding=2, output_padding=2)),
    (3, (2, 4, 4, 5, 3), (4, 3, 2, 3, 3), dict(stride=2, padding=(0, 1, 1), output_padding=(1, 0, 1))),
]


@pytest.mark.parametrize("nd,xs,ws,kw", MEDIUM_T)
def test_float32_conv_transpose_vs_torch_medium(nd, xs, ws, kw):
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[1] * kw.get("groups", 1)).astype(np.float32)
    _grads_vs_torch(lambda X, W, B: OURS_T[nd](X, W, B, **kw),
                    lambda X, W, B: THEIRS_T[nd](X, W, B, **kw), x, w, b, atol=1e-4, rtol=1e-4)


def test_float64_non_contiguous_and_unbatched():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((2, 9, 3, 8))
    x = tc.Tensor(base, requires_grad=True).permute(0, 2, 1, 3)          # (2, 3, 9, 8), not contiguous
    assert not x.data.flags.c_contiguous
    w = tc.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    assert y.dtype == np.float64
    yt = TF.conv2d(torch.tensor(base).permute(0, 2, 1, 3), torch.tensor(w.data), stride=2, padding=1)
    np.testing.assert_allclose(y.data, yt.numpy(), atol=1e-10)
    # unbatched (C, H, W) input, as PyTorch allows
    y1 = F.conv2d(tc.Tensor(base[0].transpose(1, 0, 2)), w, stride=2, padding=1)
    np.testing.assert_allclose(y1.data, y.data[0], atol=1e-10)
    z1 = F.conv_transpose2d(tc.Tensor(y.data[0]), w.detach())
    assert z1.shape == (3, 7, 6)


def test_double_backward_gradient_penalty_vs_torch():
    """A gradient penalty ||d loss/dx||^2 differentiated again w.r.t. the weight (create_graph)."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    X, W = tc.Tensor(x, requires_grad=True), tc.Tensor(w, requires_grad=True)
    Xt, Wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gx,) = grad([(F.conv2d(X, W, stride=(2, 1), padding=1).tanh()).sum()], [X], create_graph=True)
    (gxt,) = torch.autograd.grad((TF.conv2d(Xt, Wt, stride=(2, 1), padding=1).tanh()).sum(), [Xt], create_graph=True)
    (gx * gx).sum().backward()
    (gxt * gxt).sum().backward()
    np.testing.assert_allclose(W.grad.data, Wt.grad.numpy(), atol=1e-10, rtol=1e-8)
    np.testing.assert_allclose(X.grad.data, Xt.grad.numpy(), atol=1e-10, rtol=1e-8)


def test_fused_backward_route_matches_the_recorded_route(monkeypatch):
    """ConvNd's backward takes one fused kernel for dx and dw when nothing records it, and the
    two Functions (ConvTransposeNd, ConvWeightGrad) under create_graph=True: same gradients. The
    forward does not keep the padded input for a backward that fuses (it needs none)."""
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((6, 4, 3, 3))
    calls = []
    real = conv_kernels.conv_backward
    monkeypatch.setattr(conv_kernels, "conv_backward", lambda *a: calls.append(1) or real(*a))
    grads = []
    for create_graph in (False, True):
        X, W = tc.Tensor(x, requires_grad=True), tc.Tensor(w, requires_grad=True)
        y = F.conv2d(X, W, padding=1)
        assert y.grad_fn.source is None          # a fused backward needs no padded copy of x
        gx, gw = grad([(y * y).sum()], [X, W], create_graph=create_graph)
        grads.append((gx.data, gw.data))
    assert len(calls) == 1                       # only the unrecorded backward fused
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-12)
    # a strided conv does not fuse: its forward keeps the padded input for the weight gradient
    W = tc.Tensor(w, requires_grad=True)
    y = F.conv2d(tc.Tensor(x, requires_grad=True), W, stride=2, padding=1)
    assert y.grad_fn.source is not None


# ----------------------------------------------------------------------------- errors

def _x(*shape):
    return tc.Tensor(np.zeros(shape, np.float32))


ERRORS = [
    # (call, exception, message regex)
    (lambda: F.conv2d(_x(1, 4, 5, 5), _x(5, 2, 3, 3), groups=2), ValueError, r"out_channels.*5.*divisible by groups \(2\)"),
    (lambda: F.conv2d(_x(1, 5, 5, 5), _x(6, 2, 3, 3), groups=2), ValueError, r"input channels \(5\).*divisible by groups \(2\)"),
    (lambda: F.conv2d(_x(2, 4, 32, 32), _x(6, 3, 5, 5)), ValueError,
     r"weight of shape \(6, 3, 5, 5\).*expected input with 3 channels.*got 4 channels"),
    (lambda: F.conv2d(_x(1, 3, 4, 4), _x(6, 3, 5, 5)), ValueError,
     r"output would be empty in spatial dim 0: input size 4 \+ 2\*padding 0 is smaller than the dilated kernel size 5"),
    (lambda: F.conv2d(_x(1, 3, 9, 4), _x(6, 3, 3, 3), dilation=(1, 2)), ValueError,
     r"spatial dim 1.*dilated kernel size 5"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3)), ValueError, r"expected weight of 4 dims.*got shape \(6, 3, 3\)"),
    (lambda: F.conv1d(_x(1, 3, 5, 5), _x(6, 3, 3)), ValueError, r"conv1d: expected input of 2 dims.*or 3 dims.*\(1, 3, 5, 5\)"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), _x(5)), ValueError, r"bias must have shape \(6,\).*\(5,\)"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), stride=0), ValueError, r"stride must be >= 1.*0"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), padding=-1), ValueError, r"padding must be >= 0.*-1"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), padding="full"), ValueError, r"invalid padding string 'full'"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), stride=(1, 2, 3)), ValueError, r"stride must have 2 elements"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), groups=0), ValueError, r"groups must be a positive integer, got 0"),
    (lambda: F.conv2d(_x(1, 3, 5, 5), _x(6, 3, 3, 3), groups=1.5), TypeError, r"groups must be an int"),
    (lambda: F.conv2d(np.zeros((1, 3, 5, 5)), _x(6, 3, 3, 3)), TypeError, r"input must be a Tensor, got ndarray"),
    (lambda: F.conv2d(tc.Tensor(np.zeros((1, 3, 5, 5), np.int64)), _x(6, 3, 3, 3)), TypeError,
     r"input must be a floating-point \(float32 or float64\) tensor, got dtype int64"),
    (lambda: F.conv1d(tc.Tensor(np.zeros((1, 3, 5), np.float16)), tc.Tensor(np.zeros((2, 3, 3), np.float16))),
     TypeError, r"input must be a floating-point \(float32 or float64\) tensor, got dtype float16"),
    (lambda: F.conv2d(tc.Tensor(np.zeros((1, 3, 5, 5))), _x(6, 3, 3, 3)), TypeError,
     r"same dtype, got input float64 and weight float32"),
    (lambda: F.conv_transpose2d(_x(1, 4, 3, 3), _x(4, 2, 3, 3), stride=2, output_padding=2), ValueError,
     r"output_padding \(2\) in spatial dim 0 must be smaller than either stride \(2\) or dilation \(1\)"),
    (lambda: F.conv_transpose2d(_x(1, 4, 3, 3), _x(5, 2, 3, 3)), ValueError,
     r"expects input with 5 channels.*got 4 channels"),
    (lambda: F.conv_transpose2d(_x(1, 4, 3, 3), _x(4, 2, 3, 3), groups=3), ValueError,
     r"input channels \(4\) must be divisible by groups \(3\)"),
    (lambda: F.conv_transpose2d(_x(1, 4, 1, 1), _x(4, 2, 1, 1), padding=1), ValueError,
     r"transposed convolution output would be empty"),
    (lambda: F.conv_transpose2d(_x(1, 4, 3, 3), _x(4, 2, 3, 3), padding="same"), ValueError,
     r"padding must be an int or a tuple"),
    (lambda: F.conv_transpose1d(_x(1, 4, 3), _x(4, 2, 3, 3)), ValueError, r"expected weight of 3 dims"),
    (lambda: F.conv_transpose2d(_x(1, 4, 3, 3), _x(4, 2, 3, 3), _x(4)), ValueError, r"bias must have shape \(2,\)"),
    (lambda: nn.Conv2d(3, 6, 3, groups=2), ValueError, r"in_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, r"out_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.Conv2d(3, 6, 3, padding_mode="mirror"), ValueError, r"padding_mode must be one of"),
    (lambda: nn.Conv2d(3, 6, 3, padding="half"), ValueError, r"invalid padding string 'half'"),
    (lambda: nn.Conv2d(0, 6, 3), ValueError, r"in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 6, (3, 3, 3)), ValueError, r"kernel_size must have 2 elements"),
    (lambda: nn.ConvTranspose2d(3, 6, 3, padding_mode="reflect"), ValueError, r'only "zeros" padding_mode'),
    (lambda: nn.ConvTranspose2d(3, 6, 3, stride=2)(_x(1, 3, 4, 4), output_size=(12, 12)), ValueError,
     r"requested an output size of \(12, 12\), but valid sizes range from \(9, 9\) to \(10, 10\)"),
    (lambda: nn.ConvTranspose2d(3, 6, 3, stride=2)(_x(1, 3, 4, 4), output_size=(9, 9, 9)), ValueError,
     r"output_size must have 2 or 4 elements \(got 3\)"),
    (lambda: nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect")(_x(1, 3, 1, 5)), ValueError,
     r"reflect padding"),
]


@pytest.mark.parametrize("call,exc,pattern", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_error_messages(call, exc, pattern, monkeypatch):
    """Every impossible configuration is refused with a clear message before any kernel runs."""
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were checked")
    for name in ("conv_forward", "conv_input_grad", "conv_weight_grad"):
        monkeypatch.setattr(conv_kernels, name, no_kernel)
    with pytest.raises(exc, match=pattern):
        call()


def test_same_padding_with_stride_is_tensorflow_convention():
    """out = ceil(in/stride); the odd extra pixel of padding goes at the end."""
    x = T(np.arange(7.0).reshape(1, 1, 7))
    w = T(np.array([[[1.0, 0.0, 0.0, 0.0]]]))        # picks the first tap of each window
    y = F.conv1d(x, w, stride=2, padding="same")
    assert y.shape == (1, 1, 4)                       # ceil(7/2)
    # total pad = (4-1)*2 + 4 - 7 = 3 -> 1 before, 2 after: windows start at -1, 1, 3, 5
    np.testing.assert_allclose(y.data[0, 0], [0.0, 1.0, 3.0, 5.0])
    assert F.conv1d(x, w, padding="same").shape == (1, 1, 7)


# ----------------------------------------------------------------------------- modules vs torch.nn

def _copy_params(ours, theirs):
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        if ours.bias is not None:
            theirs.bias.copy_(torch.tensor(ours.bias.data))


def _module_vs_torch(ours, theirs, x, **fwd_kwargs):
    _copy_params(ours, theirs)
    X, Xt = tc.Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    y, yt = ours(X, **fwd_kwargs), theirs(Xt, **fwd_kwargs)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), atol=1e-10, rtol=1e-8)
    up = np.random.default_rng(10).standard_normal(y.shape)
    (y * tc.Tensor(up)).sum().backward()
    (yt * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(X.grad.data, Xt.grad.numpy(), atol=1e-10, rtol=1e-8)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), atol=1e-10, rtol=1e-8)
    if ours.bias is not None:
        np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), atol=1e-10, rtol=1e-8)


MODULES = [
    (1, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=2, groups=2)),
    (2, dict(in_channels=3, out_channels=4, kernel_size=(3, 2), padding=1, dilation=(1, 2), bias=False)),
    (2, dict(in_channels=4, out_channels=4, kernel_size=3, padding="same", groups=4)),
    (2, dict(in_channels=3, out_channels=2, kernel_size=4, padding="same", dilation=2)),
    (2, dict(in_channels=3, out_channels=2, kernel_size=3, padding="valid", stride=(1, 2))),
    (3, dict(in_channels=2, out_channels=3, kernel_size=(2, 3, 3), padding=(0, 1, 1))),
]


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd,kw", MODULES)
def test_conv_modules_vs_torch(nd, kw, padding_mode):
    cls, tcls = getattr(nn, f"Conv{nd}d"), getattr(torch.nn, f"Conv{nd}d")
    ours = cls(**kw, padding_mode=padding_mode).double()
    theirs = tcls(**kw, padding_mode=padding_mode).double()
    assert tuple(ours.weight.shape) == tuple(theirs.weight.shape)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(11).standard_normal((2, kw["in_channels"]) + (5, 6, 7)[:nd])
    _module_vs_torch(ours, theirs, x)


@pytest.mark.parametrize("nd,kw,in_size,output_size", [
    (1, dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1), (5,), None),
    (2, dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, padding=1, output_padding=1), (4, 3), None),
    (2, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(3, 2), groups=2, bias=False), (3, 4), (10, 9)),
    (2, dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1, dilation=2), (4, 4), (1, 2, 10, 9)),
    (3, dict(in_channels=2, out_channels=3, kernel_size=2, stride=2), (2, 3, 2), (5, 6, 4)),
])
def test_conv_transpose_modules_vs_torch(nd, kw, in_size, output_size):
    cls, tcls = getattr(nn, f"ConvTranspose{nd}d"), getattr(torch.nn, f"ConvTranspose{nd}d")
    ours, theirs = cls(**kw).double(), tcls(**kw).double()
    assert tuple(ours.weight.shape) == tuple(theirs.weight.shape)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(12).standard_normal((1, kw["in_channels"]) + in_size)
    _module_vs_torch(ours, theirs, x, **({} if output_size is None else dict(output_size=output_size)))


def test_conv_transpose_output_size_inverts_strided_conv():
    """A stride-2 conv maps 7 and 8 pixels both to 4; output_size picks which one comes back."""
    down = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    up = nn.ConvTranspose2d(5, 3, 3, stride=2, padding=1)
    for size in (7, 8):
        x = tc.randn(1, 3, size, size)
        h = down(x)
        assert h.shape == (1, 5, 4, 4)
        assert up(h, output_size=x.shape).shape == x.shape


@pytest.mark.parametrize("cls,args,fan_in", [
    (nn.Conv1d, (4, 8, 5), 4 * 5),
    (nn.Conv2d, (6, 16, 3), 6 * 9),
    (nn.Conv2d, (8, 8, 3, 1, 1, 1, 4), 2 * 9),            # groups=4
    (nn.Conv3d, (2, 4, (1, 2, 3)), 2 * 6),
    (nn.ConvTranspose2d, (16, 6, 4), 6 * 16),             # weight (C_in, C_out/groups, k, k)
])
def test_default_init_is_pytorch(cls, args, fan_in):
    """kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
    tc.manual_seed(0)
    m = cls(*args)
    bound = 1 / math.sqrt(fan_in)
    w, b = m.weight.data, m.bias.data
    assert w.dtype == np.float32 and m.weight.requires_grad
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    if w.size >= 200:   # roughly uniform over the whole interval (std of U(-a, a) is a/sqrt(3))
        assert abs(w.std() - bound / math.sqrt(3)) < 0.15 * bound
        assert np.abs(w).max() > 0.9 * bound
    names = [n for n, _ in m.named_parameters()]
    assert names == ["weight", "bias"]


def test_module_state_dict_loads_torch_weights():
    theirs = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    ours = nn.Conv2d(3, 4, 3, padding=1).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(13).standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(ours(tc.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("groups,kernel", [(1, 3), (3, 3), (1, 1)])
def test_empty_batch(groups, kernel):
    """A batch of 0 samples gives an empty output and zero weight gradients, as in PyTorch."""
    x = tc.Tensor(np.zeros((0, 3, 5, 5), np.float32), requires_grad=True)
    w = tc.Tensor(np.ones((3, 3 // groups, kernel, kernel), np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1, groups=groups)
    assert y.shape == tuple(TF.conv2d(torch.zeros(0, 3, 5, 5), torch.ones(3, 3 // groups, kernel, kernel),
                                      padding=1, groups=groups).shape)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and not w.grad.data.any()
    assert F.conv_transpose2d(y.detach(), w, groups=groups).shape[0] == 0


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular"])
def test_conv_module_same_strided_matches_explicit_padding(padding_mode):
    """Beyond PyTorch: padding='same' with stride 2 (TF convention) in every padding mode equals
    torch's conv on the explicitly padded input (extra pixel at the end)."""
    ours = nn.Conv2d(3, 4, (4, 3), stride=2, padding="same", padding_mode=padding_mode).double()
    x = np.random.default_rng(14).standard_normal((2, 3, 9, 8))
    pads = []
    for i, k in reversed(list(zip((9, 8), (4, 3)))):
        pads.extend(shapes.same_padding(i, k, 2))
    mode = "constant" if padding_mode == "zeros" else padding_mode
    want = TF.conv2d(TF.pad(torch.tensor(x), pads, mode=mode), torch.tensor(ours.weight.data),
                     torch.tensor(ours.bias.data), stride=2)
    y = ours(tc.Tensor(x))
    assert y.shape == (2, 4, 5, 4)
    np.testing.assert_allclose(y.data, want.numpy(), atol=1e-12)
