"""Pooling, unpooling and upsampling at the Tensor / nn level: the slide examples, ties and NaN
against PyTorch, index interoperability, adjoint identities, every error, float32 against
PyTorch on medium shapes, and the modules against torch.nn.  (Forward, backward, gradcheck and
gradgradcheck on hypothesis-drawn configurations are in tests/opinfo_pool.py.)"""
import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.kernels.pool import PoolWindows
from tinygrad_cnn.kernels.resample import Resampler
from tinygrad_cnn.ops import pool as pool_ops
from tinygrad_cnn.ops.pool import GatherByIndexNd, MaxUnpoolNd
from tinygrad_cnn.ops.resample import ResampleNd, ResampleNdTranspose
from tinygrad_cnn.testing import adjoint_check

TF = torch.nn.functional
NAN, INF = float("nan"), float("inf")


def T(a, dtype=np.float32, requires_grad=False):
    return tc.Tensor(np.array(a, dtype=dtype), requires_grad=requires_grad)


def assert_same(ours, theirs, atol=0.0, rtol=0.0):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = ours.data if isinstance(ours, tc.Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, equal_nan=True)


# --------------------------------------------------------------------------------------------
# the slide examples
# --------------------------------------------------------------------------------------------

SLIDE = [[[[1.0, 2.0], [3.0, 4.0]]]]


def test_slide_nearest_neighbour_unpooling():
    blocks = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    np.testing.assert_array_equal(F.interpolate(T(SLIDE), scale_factor=2, mode="nearest").data[0, 0], blocks)
    np.testing.assert_array_equal(nn.Upsample(scale_factor=2, mode="nearest")(T(SLIDE)).data[0, 0], blocks)
    np.testing.assert_array_equal(F.interpolate(T(SLIDE), size=(4, 4)).data[0, 0], blocks)


def test_slide_bed_of_nails():
    nails = [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(F.bed_of_nails(T(SLIDE), 2).data[0, 0], nails)
    np.testing.assert_array_equal(nn.BedOfNails(2)(T(SLIDE)).data[0, 0], nails)
    # any scale factor, 1d and 3d too
    np.testing.assert_array_equal(F.bed_of_nails(T([[[1.0, 2.0]]]), 3).data, [[[1, 0, 0, 2, 0, 0]]])
    cube = F.bed_of_nails(T(np.arange(8.0).reshape(1, 1, 2, 2, 2)), (2, 1, 2)).data[0, 0]
    assert cube.shape == (4, 2, 4)
    np.testing.assert_array_equal(cube[::2, :, ::2], np.arange(8.0).reshape(2, 2, 2))
    assert cube.sum() == np.arange(8.0).sum() and np.count_nonzero(cube) == 7


def test_slide_max_pool_then_max_unpool():
    x = T([[[[1, 6, 2, 0],
              [5, 3, 1, 8],
              [0, 2, 9, 4],
              [7, 1, 3, 2]]]])
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(values.data[0, 0], [[6, 8], [7, 9]])
    np.testing.assert_array_equal(indices.data[0, 0], [[1, 7], [12, 10]])
    back = F.max_unpool2d(values, indices, 2).data[0, 0]
    np.testing.assert_array_equal(back, [[0, 6, 0, 0],
                                         [0, 0, 0, 8],
                                         [0, 0, 9, 0],
                                         [7, 0, 0, 0]])
    # the modules do the same, and output_size undoes the floor of an odd size
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    odd = T(np.arange(25.0).reshape(1, 1, 5, 5))
    v, i = pool(odd)
    restored = unpool(v, i, output_size=odd.shape).data[0, 0]
    assert restored.shape == (5, 5)
    np.testing.assert_array_equal(restored[[1, 1, 3, 3], [1, 3, 1, 3]], [6, 8, 16, 18])
    assert restored.sum() == 6 + 8 + 16 + 18


def test_global_average_pooling_is_adaptive_output_1():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(np.float32)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(T(x), 1).data, x.mean(axis=(2, 3), keepdims=True),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d((1, 1))(T(x)).data[..., 0, 0], x.mean(axis=(2, 3)),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# ties and NaN, on purpose-made inputs, against PyTorch
# --------------------------------------------------------------------------------------------

TIE_NAN_CASES = [
    [2.0, 2.0, 1.0, 2.0, 2.0, 0.0],                    # ties: the first maximum wins
    [1.0, NAN, 3.0, NAN, 0.0, 1.0],                    # NaN propagates (the last NaN's index)
    [-INF, -INF, -INF, -INF, 5.0, 5.0],               # all -inf windows: the first position
    [NAN, 5.0, 5.0, INF, INF, NAN],
    [0.0, -0.0, 0.0, -0.0, 1.0, 1.0],
]


@pytest.mark.parametrize("row", TIE_NAN_CASES)
@pytest.mark.parametrize("kernel,stride,padding,dilation", [(2, 2, 0, 1), (3, 1, 1, 1), (2, 1, 1, 2), (6, 1, 0, 1)])
def test_max_pool_ties_and_nan_match_torch(row, kernel, stride, padding, dilation):
    x = np.array(row, np.float64)
    for n in (1, 2, 3):
        shape = (1, 1) + (1,) * (n - 1) + (6,)
        ours = [F.max_pool1d, F.max_pool2d, F.max_pool3d][n - 1]
        theirs = [TF.max_pool1d, TF.max_pool2d, TF.max_pool3d][n - 1]
        k = (1,) * (n - 1) + (kernel,)
        s = (1,) * (n - 1) + (stride,)
        p = (0,) * (n - 1) + (padding,)
        d = (1,) * (n - 1) + (dilation,)
        xt = tc.Tensor(x.reshape(shape), requires_grad=True)
        tt = torch.tensor(x.reshape(shape), requires_grad=True)
        v, i = ours(xt, k, s, p, d, return_indices=True)
        tv, ti = theirs(tt, k, s, p, d, return_indices=True)
        assert_same(v, tv)
        np.testing.assert_array_equal(i.data, ti.numpy())
        # the gradient goes to the winner PyTorch picked
        g = np.arange(1.0, v.numel() + 1).reshape(v.shape)
        (v * tc.Tensor(g)).sum().backward()
        tv.backward(torch.tensor(g))
        assert_same(xt.grad, tt.grad)


def test_max_pool_2d_tie_scan_order_is_row_major():
    x = np.array([[[[1.0, 7.0], [7.0, 7.0]]]])
    _, i = F.max_pool2d(T(x), 2, return_indices=True)
    _, ti = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert i.data.item() == ti.item() == 1


@pytest.mark.parametrize("row", TIE_NAN_CASES)
def test_adaptive_max_pool_ties_and_nan_match_torch(row):
    x = np.array(row)[None, None]
    for out in (1, 2, 4, 5):
        v, i = F.adaptive_max_pool1d(T(x, np.float64), out, return_indices=True)
        tv, ti = TF.adaptive_max_pool1d(torch.tensor(x), out, return_indices=True)
        assert_same(v, tv)
        np.testing.assert_array_equal(i.data, ti.numpy())


# --------------------------------------------------------------------------------------------
# indices interoperate with PyTorch
# --------------------------------------------------------------------------------------------

POOL_CONFIGS = [  # (n, shape, kernel, stride, padding, dilation, ceil_mode)
    (1, (4, 6, 31), 3, 2, 1, 1, True),
    (2, (4, 8, 17, 19), 2, 2, 0, 1, False),
    (2, (2, 8, 17, 19), 3, 1, 1, 2, False),        # overlapping, dilated
    (2, (2, 8, 17, 19), (3, 2), (2, 3), (1, 0), 1, True),
    (3, (2, 3, 7, 9, 8), 2, (1, 2, 2), 1, (2, 1, 1), True),
]


@pytest.mark.parametrize("n,shape,kernel,stride,padding,dilation,ceil_mode", POOL_CONFIGS)
def test_max_pool_float32_values_indices_gradient_match_torch(n, shape, kernel, stride, padding, dilation, ceil_mode):
    x = np.random.default_rng(n).standard_normal(shape).astype(np.float32)
    ours, theirs = [F.max_pool1d, F.max_pool2d, F.max_pool3d][n - 1], [TF.max_pool1d, TF.max_pool2d, TF.max_pool3d][n - 1]
    xt, tt = T(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    v, i = ours(xt, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    tv, ti = theirs(tt, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    assert v.dtype == np.float32 and i.dtype == np.int64
    assert_same(v, tv)
    np.testing.assert_array_equal(i.data, ti.numpy())
    g = np.random.default_rng(1).standard_normal(v.shape).astype(np.float32)
    (v * T(g)).sum().backward()
    tv.backward(torch.tensor(g))
    assert_same(xt.grad, tt.grad, atol=1e-6)   # overlapping windows: several gradients add up


@pytest.mark.parametrize("n,shape", [(1, (3, 4, 12)), (2, (3, 4, 10, 12)), (3, (2, 3, 4, 6, 8))])
def test_max_unpool_with_torch_indices_gives_torch_output(n, shape):
    x = torch.tensor(np.random.default_rng(2).standard_normal(shape).astype(np.float32))
    pool = [TF.max_pool1d, TF.max_pool2d, TF.max_pool3d][n - 1]
    unpool_t = [TF.max_unpool1d, TF.max_unpool2d, TF.max_unpool3d][n - 1]
    unpool = [F.max_unpool1d, F.max_unpool2d, F.max_unpool3d][n - 1]
    values, indices = pool(x, 2, return_indices=True)
    want = unpool_t(values, indices, 2)
    got = unpool(T(values.numpy()), tc.Tensor(indices.numpy()), 2)
    assert_same(got, want)
    # and the other way round: PyTorch unpools our indices
    ours_v, ours_i = [F.max_pool1d, F.max_pool2d, F.max_pool3d][n - 1](T(x.numpy()), 2, return_indices=True)
    assert_same(unpool_t(torch.tensor(ours_v.data), torch.tensor(ours_i.data), 2), want)
    # with output_size for an odd input
    odd = x[..., :-1]
    values, indices = pool(odd, 2, return_indices=True)
    want = unpool_t(values, indices, 2, output_size=odd.shape[2:])
    assert_same(unpool(T(values.numpy()), tc.Tensor(indices.numpy()), 2, output_size=odd.shape[2:]), want)
    # int32 indices are accepted
    assert_same(unpool(T(values.numpy()), tc.Tensor(indices.numpy().astype(np.int32)), 2,
                       output_size=odd.shape), want)


def test_max_unpool_adds_duplicates_which_is_max_pool_gradient():
    """With overlapping windows one pixel can be the maximum of several windows.  Our
    max_unpool adds the values sent to it, which is exactly max-pool's input gradient
    (PyTorch's max_unpool keeps only one of them)."""
    x = np.array([[[1.0, 5.0, 2.0, 0.0, 3.0]]], np.float32)
    values, indices = F.max_pool1d(T(x), 3, 1, return_indices=True)
    np.testing.assert_array_equal(indices.data, [[[1, 1, 4]]])
    g = np.array([[[10.0, 20.0, 30.0]]], np.float32)
    unpooled = F.max_unpool1d(T(g), indices, 3, 1)
    np.testing.assert_array_equal(unpooled.data, [[[0, 30, 0, 0, 30]]])
    tt = torch.tensor(x, requires_grad=True)
    TF.max_pool1d(tt, 3, 1).backward(torch.tensor(g))
    assert_same(unpooled, tt.grad)


# --------------------------------------------------------------------------------------------
# adjoint identities: <A x, y> == <x, A^T y>
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,out_size", [((2, 3, 5), (9,)), ((2, 3, 4, 3), (5, 7)), ((1, 2, 2, 3, 2), (3, 4, 5))])
def test_adjoint_scatter_gather(shape, out_size):
    rng = np.random.default_rng(3)
    plane = int(np.prod(out_size))
    indices = tc.Tensor(rng.integers(0, plane, size=shape))            # duplicates included
    big = shape[:2] + out_size
    assert adjoint_check(lambda x: MaxUnpoolNd.apply(x, indices, out_size),
                         lambda y: GatherByIndexNd.apply(y, indices, len(out_size)), shape, big)


@pytest.mark.parametrize("resampler,in_shape", [
    (Resampler.nearest((3, 4), (7, 8), (None, None)), (2, 2, 3, 4)),
    (Resampler.nearest((3,), (7,), (None,), exact=True), (2, 2, 3)),
    (Resampler.linear((3, 4), (7, 9), (None, None), False, np.float64), (2, 2, 3, 4)),
    (Resampler.linear((2, 3, 4), (3, 5, 4), (None, None, None), True, np.float64), (1, 2, 2, 3, 4)),
    (Resampler.linear((5,), (3,), (None,), False, np.float64), (2, 2, 5)),    # downsampling
    (Resampler.strided_slice((2, 3), (2, 3)), (2, 2, 4, 9)),                    # bed of nails'
])
def test_adjoint_upsample_and_its_gradient(resampler, in_shape):
    out_shape = in_shape[:2] + resampler.out_size
    assert adjoint_check(lambda x: ResampleNd.apply(x, resampler),
                         lambda y: ResampleNdTranspose.apply(y, resampler), in_shape, out_shape)


def test_adjoint_avg_pool():
    windows = PoolWindows.regular((7, 6), (3, 2), (2, 1), (1, 1), (1, 1), (4, 7), False, None)
    assert adjoint_check(lambda x: pool_ops.AvgPoolNd.apply(x, windows),
                         lambda y: pool_ops.AvgPoolNdTranspose.apply(y, windows), (2, 3, 7, 6), (2, 3, 4, 7))


def test_nearest_gradient_is_block_sums_and_bed_of_nails_gradient_is_strided_slice():
    x = T(SLIDE, np.float64, requires_grad=True)
    g = np.arange(16.0).reshape(1, 1, 4, 4)
    (F.interpolate(x, scale_factor=2) * tc.Tensor(g)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, g.reshape(2, 2, 2, 2).sum(axis=(1, 3)).reshape(1, 1, 2, 2))
    x.grad = None
    (F.bed_of_nails(x, 2) * tc.Tensor(g)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, g[..., ::2, ::2])


# --------------------------------------------------------------------------------------------
# errors, always before any kernel runs
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_kernels(monkeypatch):
    """Make every pooling / resampling kernel entry point fail the test if it is reached."""
    def boom(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were checked")
    for name in ("max", "mean", "mean_adjoint"):
        monkeypatch.setattr(PoolWindows, name, boom)
    monkeypatch.setattr(Resampler, "apply", boom)
    monkeypatch.setattr(Resampler, "adjoint", boom)
    monkeypatch.setattr(pool_ops, "scatter_add_planes", boom)
    monkeypatch.setattr(pool_ops, "gather_planes", boom)


X4 = np.zeros((1, 2, 5, 5), np.float32)
IDX = np.zeros((1, 2, 5, 5), np.int64)

ERRORS = [
    (lambda: F.max_pool2d(T(X4), 3, padding=2), ValueError, "padding"),
    (lambda: F.avg_pool2d(T(X4), 2, padding=2), ValueError, "padding"),
    (lambda: F.max_pool2d(T(X4), 7), ValueError, "empty"),
    (lambda: F.max_pool2d(T(X4), 3, dilation=3), ValueError, "empty"),
    (lambda: F.avg_pool3d(T(np.zeros((1, 1, 2, 5, 5))), 3), ValueError, "empty"),
    (lambda: F.max_pool2d(T(X4), 0), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(T(X4), 2, stride=0), ValueError, "stride"),
    (lambda: F.max_pool2d(T(X4), 2, dilation=0), ValueError, "dilation"),
    (lambda: F.max_pool2d(T(X4), 2, padding=-1), ValueError, "padding"),
    (lambda: F.max_pool2d(T(X4), (2, 2, 2)), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(T(X4), 2.5), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(T(np.zeros((5, 5))), 2), ValueError, "3-d or 4-d"),
    (lambda: F.max_pool1d(T(X4), 2), ValueError, "2-d or 3-d"),
    (lambda: F.max_pool2d(tc.Tensor(np.zeros((1, 1, 4, 4), np.int64)), 2), TypeError, "floating"),
    (lambda: F.max_pool2d(X4, 2), TypeError, "Tensor"),
    (lambda: F.max_pool2d(T(np.zeros((1, 2, 0, 5))), 1), ValueError, "non-empty"),
    (lambda: F.avg_pool2d(T(X4), 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.adaptive_avg_pool2d(T(X4), 0), ValueError, "output_size"),
    (lambda: F.adaptive_max_pool2d(T(X4), (2, 2, 2)), ValueError, "output_size"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX[..., :4]), 2), ValueError, "shape"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX + 100), 2), ValueError, "invalid max index 100"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX - 1), 2), ValueError, "invalid max index -1"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX + 100), 2), ValueError, r"\[0, 100\)"),
    (lambda: F.max_unpool2d(T(X4), T(IDX), 2), TypeError, "integer"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX), 2, output_size=(12, 11)), ValueError, "between 8 and 12"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX), 2, output_size=(8, 10)), ValueError, "between 8 and 12"),
    (lambda: F.max_unpool2d(T(X4), tc.Tensor(IDX), 2, output_size=(10,)), ValueError, "output_size"),
    (lambda: F.interpolate(T(X4), size=3, scale_factor=2), ValueError, "only one of size or scale_factor"),
    (lambda: F.interpolate(T(X4)), ValueError, "only one of size or scale_factor"),
    (lambda: F.interpolate(T(X4), size=3, mode="bicubic"), ValueError, "mode"),
    (lambda: F.interpolate(T(X4), size=3, mode="linear"), ValueError, "linear mode needs 3-d"),
    (lambda: F.interpolate(T(X4[0]), size=3, mode="bilinear"), ValueError, "bilinear mode needs 4-d"),
    (lambda: F.interpolate(T(X4), size=3, align_corners=True), ValueError, "align_corners"),
    (lambda: F.interpolate(T(X4), scale_factor=0.1), ValueError, "greater than 0"),
    (lambda: F.interpolate(T(X4), scale_factor=-2), ValueError, "scale_factor"),
    (lambda: F.interpolate(T(X4), size=(3, 0)), ValueError, "size"),
    (lambda: F.interpolate(T(X4[0, 0]), size=3), ValueError, "3-d, 4-d or 5-d"),
    (lambda: F.bed_of_nails(T(X4), 0), ValueError, "scale_factor"),
    (lambda: F.bed_of_nails(T(X4[0, 0]), 2), ValueError, "3-d, 4-d or 5-d"),
]


@pytest.mark.parametrize("call,exc,match", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_errors_before_any_kernel(no_kernels, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_max_unpool_out_of_range_raises_and_output_untouched():
    values = T(np.ones((1, 1, 2, 2)))
    bad = tc.Tensor(np.array([[[[0, 1], [2, 1_000_000]]]]))
    with pytest.raises(ValueError, match="invalid max index 1000000"):
        F.max_unpool2d(values, bad, 2)


# --------------------------------------------------------------------------------------------
# float32 against PyTorch on medium shapes
# --------------------------------------------------------------------------------------------


def _fwd_bwd(ours, theirs, x, atol):
    xt, tt = T(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(xt), theirs(tt)
    assert y.dtype == np.float32
    assert_same(y, ty, atol=atol, rtol=1e-5)
    g = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    (y * T(g)).sum().backward()
    ty.backward(torch.tensor(g))
    assert_same(xt.grad, tt.grad, atol=atol * 10, rtol=1e-5)


MEDIUM = np.random.default_rng(4).standard_normal((4, 8, 17, 19)).astype(np.float32)
MEDIUM3 = np.random.default_rng(4).standard_normal((2, 4, 7, 9, 8)).astype(np.float32)


@pytest.mark.parametrize("name,ours,theirs,x", [
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
     lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False), MEDIUM),
    ("avg_pool2d_divisor", lambda x: F.avg_pool2d(x, (2, 3), 1, (1, 0), False, True, 4),
     lambda x: TF.avg_pool2d(x, (2, 3), 1, (1, 0), False, True, 4), MEDIUM),
    ("avg_pool1d", lambda x: F.avg_pool1d(x.reshape(4, 8, -1), 4, 3, 2, True),
     lambda x: TF.avg_pool1d(x.reshape(4, 8, -1), 4, 3, 2, True), MEDIUM),
    ("avg_pool3d", lambda x: F.avg_pool3d(x, 3, 2, 1), lambda x: TF.avg_pool3d(x, 3, 2, 1), MEDIUM3),
    ("adaptive_avg2d", lambda x: F.adaptive_avg_pool2d(x, (7, 5)), lambda x: TF.adaptive_avg_pool2d(x, (7, 5)), MEDIUM),
    ("adaptive_avg3d", lambda x: F.adaptive_avg_pool3d(x, (3, None, 5)),
     lambda x: TF.adaptive_avg_pool3d(x, (3, None, 5)), MEDIUM3),
    ("adaptive_max2d", lambda x: F.adaptive_max_pool2d(x, (7, 5)), lambda x: TF.adaptive_max_pool2d(x, (7, 5)), MEDIUM),
    ("adaptive_max1d", lambda x: F.adaptive_max_pool1d(x.reshape(4, 8, -1), 10),
     lambda x: TF.adaptive_max_pool1d(x.reshape(4, 8, -1), 10), MEDIUM),
    ("nearest2x", lambda x: F.interpolate(x, scale_factor=2), lambda x: TF.interpolate(x, scale_factor=2), MEDIUM),
    ("nearest_odd", lambda x: F.interpolate(x, size=(23, 11)), lambda x: TF.interpolate(x, size=(23, 11)), MEDIUM),
    ("nearest_scale", lambda x: F.interpolate(x, scale_factor=(1.7, 0.6)),
     lambda x: TF.interpolate(x, scale_factor=(1.7, 0.6)), MEDIUM),
    ("nearest_exact", lambda x: F.interpolate(x, size=(23, 11), mode="nearest-exact"),
     lambda x: TF.interpolate(x, size=(23, 11), mode="nearest-exact"), MEDIUM),
    ("bilinear2x", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
     lambda x: TF.interpolate(x, scale_factor=2, mode="bilinear"), MEDIUM),
    ("bilinear_ac", lambda x: F.interpolate(x, size=(30, 7), mode="bilinear", align_corners=True),
     lambda x: TF.interpolate(x, size=(30, 7), mode="bilinear", align_corners=True), MEDIUM),
    ("bilinear_recompute", lambda x: F.interpolate(x, scale_factor=1.3, mode="bilinear", recompute_scale_factor=True),
     lambda x: TF.interpolate(x, scale_factor=1.3, mode="bilinear", recompute_scale_factor=True), MEDIUM),
    ("linear", lambda x: F.interpolate(x.reshape(4, 8, -1), scale_factor=2.5, mode="linear"),
     lambda x: TF.interpolate(x.reshape(4, 8, -1), scale_factor=2.5, mode="linear"), MEDIUM),
    ("trilinear", lambda x: F.interpolate(x, scale_factor=(2, 1.5, 0.5), mode="trilinear"),
     lambda x: TF.interpolate(x, scale_factor=(2, 1.5, 0.5), mode="trilinear"), MEDIUM3),
    ("nearest3d", lambda x: F.interpolate(x, size=(9, 4, 16)), lambda x: TF.interpolate(x, size=(9, 4, 16)), MEDIUM3),
    ("area", lambda x: F.interpolate(x, size=(6, 8), mode="area"),
     lambda x: TF.interpolate(x, size=(6, 8), mode="area"), MEDIUM),
])
def test_float32_medium_shapes_match_torch(name, ours, theirs, x):
    _fwd_bwd(ours, theirs, x, atol=1e-5)


def test_unbatched_inputs_and_float64_kept():
    x = np.random.default_rng(6).standard_normal((3, 9, 8))
    v, i = F.max_pool2d(tc.Tensor(x), 2, return_indices=True)
    tv, ti = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert v.dtype == np.float64
    assert_same(v, tv)
    np.testing.assert_array_equal(i.data, ti.numpy())
    assert_same(F.max_unpool2d(v, i, 2, output_size=(9, 8)), TF.max_unpool2d(tv, ti, 2, output_size=(9, 8)))
    assert_same(F.avg_pool2d(tc.Tensor(x), 3, 2, 1), TF.avg_pool2d(torch.tensor(x), 3, 2, 1), atol=1e-12)
    assert_same(F.adaptive_avg_pool2d(tc.Tensor(x), 4), TF.adaptive_avg_pool2d(torch.tensor(x), 4), atol=1e-12)


def test_double_backward_through_max_pool():
    x = tc.Tensor(np.random.default_rng(7).permutation(36).reshape(1, 1, 6, 6) / 10.0, requires_grad=True)
    y = F.max_pool2d(x, 3, 1)
    (gx,) = tc.autograd.grad([(y * y).sum()], [x], create_graph=True)
    (ggx,) = tc.autograd.grad([gx.sum()], [x])
    tx = torch.tensor(x.data, requires_grad=True)
    ty = TF.max_pool2d(tx, 3, 1)
    (tgx,) = torch.autograd.grad((ty * ty).sum(), tx, create_graph=True)
    (tggx,) = torch.autograd.grad(tgx.sum(), tx)
    assert_same(gx, tgx, atol=1e-12)
    assert_same(ggx, tggx, atol=1e-12)


# --------------------------------------------------------------------------------------------
# modules against torch.nn
# --------------------------------------------------------------------------------------------

MODULES = [
    ("MaxPool1d", (3, 2, 1, 1, False, True), (2, 3, 11)),
    ("MaxPool2d", ((2, 3), 1, (1, 0), 2, True, True), (2, 3, 9, 10)),
    ("MaxPool3d", (2, None, 0, 1, False, True), (1, 2, 4, 6, 5)),
    ("AvgPool1d", (3, 2, 1, True, False), (2, 3, 11)),
    ("AvgPool2d", (3, 2, 1, True, False, 5), (2, 3, 9, 10)),
    ("AvgPool3d", (2,), (1, 2, 4, 6, 5)),
    ("AdaptiveAvgPool1d", (4,), (2, 3, 11)),
    ("AdaptiveAvgPool2d", ((None, 3),), (2, 3, 9, 10)),
    ("AdaptiveAvgPool3d", (1,), (1, 2, 4, 6, 5)),
    ("AdaptiveMaxPool1d", (4, True), (2, 3, 11)),
    ("AdaptiveMaxPool2d", ((3, 4), True), (2, 3, 9, 10)),
    ("AdaptiveMaxPool3d", (2, True), (1, 2, 4, 6, 5)),
    ("Upsample", (None, 2, "nearest"), (2, 3, 4, 5)),
    ("Upsample", ((5, 7), None, "bilinear", True), (2, 3, 4, 5)),
    ("Upsample", (None, 1.5, "trilinear"), (1, 2, 4, 6, 5)),
    ("Upsample", (7, None, "nearest-exact"), (2, 3, 4)),
    ("UpsamplingNearest2d", (None, 3), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", ((6, 9),), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("name,args,shape", MODULES, ids=[m[0] for m in MODULES])
def test_modules_match_torch_nn(name, args, shape):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    out, tout = ours(T(x)), theirs(torch.tensor(x))
    if isinstance(tout, tuple):
        assert_same(out[0], tout[0], atol=1e-6)
        np.testing.assert_array_equal(out[1].data, tout[1].numpy())
    else:
        assert_same(out, tout, atol=1e-6, rtol=1e-5)
    assert list(ours.parameters()) == []


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_unpool_modules_match_torch_nn(n):
    shape = (2, 3) + (5, 6, 7)[:n]
    x = torch.tensor(np.random.default_rng(9).standard_normal(shape).astype(np.float32))
    pool = getattr(torch.nn, f"MaxPool{n}d")(2, return_indices=True)
    ours, theirs = getattr(nn, f"MaxUnpool{n}d")(2), getattr(torch.nn, f"MaxUnpool{n}d")(2)
    assert repr(ours) == repr(theirs)
    values, indices = pool(x)
    assert_same(ours(T(values.numpy()), tc.Tensor(indices.numpy()), output_size=x.shape),
                theirs(values, indices, output_size=x.shape))
    even = x[(...,) + (slice(0, 4),) * n]
    values, indices = pool(even)
    assert_same(ours(T(values.numpy()), tc.Tensor(indices.numpy())), theirs(values, indices))


def test_bed_of_nails_module_repr_and_gradient():
    m = nn.BedOfNails((2, 3))
    assert repr(m) == "BedOfNails(scale_factor=(2, 3))"
    x = T(np.ones((1, 1, 2, 2)), requires_grad=True)
    y = m(x)
    assert y.shape == (1, 1, 4, 6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((1, 1, 2, 2)))
