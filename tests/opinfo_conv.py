"""OpInfo specs for the convolution family: ConvNd, ConvTransposeNd, ConvWeightGrad.

Every spec draws a whole valid configuration with hypothesis (batch, channels, groups, kernel,
stride, padding as int / tuple / 'same' / 'valid', dilation, output_padding, 1d/2d/3d, odd
sizes, kernels that exactly cover the padded input). The generic runner passes only arrays, so
the configuration travels as a small int64 array (a non-differentiable input) that both ``fn``
and ``torch_fn`` decode with :func:`decode`.

The backward of every member is built from the others, so each conv spec makes all three
Functions run (first and second order): ConvNd forward; ConvTransposeNd and ConvWeightGrad in
its backward; ConvNd again inside their backward (gradgradcheck).

Tolerances: float64 forward/backward vs torch atol=1e-10, rtol=1e-8 (same math, different
summation order); gradcheck / gradgradcheck use the runner's defaults (eps=1e-6).
"""
import numpy as np
import torch
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from opinfo import OpInfo
from tinygrad_cnn.testing.strategies import arrays

TF = torch.nn.functional
ALL = {"ConvNd", "ConvTransposeNd", "ConvWeightGrad"}
PAD_KINDS = {0: None, 1: "same", 2: "valid"}          # 0: integer padding per dim


def encode(nd, groups, stride, padding, dilation, output_padding=None, pad_kind=0):
    """Configuration -> int64 array [nd, pad_kind, groups, stride*nd, padding*nd, dilation*nd, output_padding*nd]."""
    output_padding = output_padding or (0,) * nd
    return np.array([nd, pad_kind, groups, *stride, *padding, *dilation, *output_padding], dtype=np.int64)


def decode(cfg):
    """int64 array (ours or torch's tensor) -> keyword arguments of conv / conv_transpose."""
    c = [int(v) for v in np.asarray(cfg.numpy()).reshape(-1)]
    nd, pad_kind, groups = c[:3]
    rest = c[3:]
    stride, padding, dilation, output_padding = (tuple(rest[i * nd:(i + 1) * nd]) for i in range(4))
    kw = dict(stride=stride, dilation=dilation, groups=groups,
              padding=PAD_KINDS[pad_kind] if pad_kind else padding)
    return kw, output_padding


def conv_kwargs(cfg):
    return decode(cfg)[0]


def transpose_kwargs(cfg):
    kw, output_padding = decode(cfg)
    return dict(kw, output_padding=output_padding)


OURS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
THEIRS = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
OURS_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
THEIRS_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}

# spatial caps per dimensionality, so gradgradcheck (quadratic in the input size) stays fast
MAX_SIDE = {1: 7, 2: 5, 3: 3}


def _channels(draw, depthwise, nd):
    if depthwise:
        c_in = draw(st.integers(2, 3))
        return 1, c_in, c_in, c_in * draw(st.integers(1, 2))     # n, c_in, groups, c_out
    groups = draw(st.integers(1, 2))
    big = 2 if nd < 3 else 1
    return (draw(st.integers(1, big)), groups * draw(st.integers(1, big)), groups,
            groups * draw(st.integers(1, 2)))


def conv_sample(nd, depthwise=False, pointwise=False, bias=True, same_strided=False):
    """Draw [x, weight, (bias,) cfg] for a valid convolution."""
    def sample(draw):
        n, c_in, groups, c_out = _channels(draw, depthwise, nd)
        if pointwise:
            kernel, stride, dilation, pad_kind, padding = (1,) * nd, (1,) * nd, (1,) * nd, 0, (0,) * nd
        else:
            kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
            dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
            pad_kind = 1 if same_strided else draw(st.sampled_from([0, 0, 0, 1, 2]))
            # torch refuses 'same' with stride > 1: those cases live in the same_strided spec
            max_stride = 1 if pad_kind == 1 and not same_strided else 3
            stride = tuple(draw(st.integers(1, max_stride)) for _ in range(nd))
            if same_strided and all(s == 1 for s in stride):
                stride = (2,) + stride[1:]
            padding = tuple(draw(st.integers(0, 2)) if pad_kind == 0 else 0 for _ in range(nd))
        in_size = []
        for k, d, p in zip(kernel, dilation, padding):
            need = max(1, d * (k - 1) + 1 - 2 * p)     # smallest input with a non-empty output
            exact = draw(st.booleans())                # the kernel exactly covers the padded input
            in_size.append(need if exact else draw(st.integers(need, max(need, MAX_SIDE[nd]))))
        x = draw(arrays((n, c_in) + tuple(in_size)))
        w = draw(arrays((c_out, c_in // groups) + kernel))
        out = [x, w]
        if bias:
            out.append(draw(arrays((c_out,))))
        out.append(encode(nd, groups, stride, padding, dilation, pad_kind=pad_kind))
        return out
    return sample


def conv_transpose_sample(nd, depthwise=False, bias=True):
    """Draw [x, weight (C_in, C_out/groups, *k), (bias,) cfg] for a valid transposed convolution."""
    def sample(draw):
        n, c_in, groups, c_out = _channels(draw, depthwise, nd)
        kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
        in_size = tuple(draw(st.integers(1, {1: 4, 2: 3, 3: 2}[nd])) for _ in range(nd))
        output_padding, padding = [], []
        for i, k, s, d in zip(in_size, kernel, stride, dilation):
            op = draw(st.integers(0, max(s, d) - 1))   # must be smaller than stride or dilation
            full = (i - 1) * s + d * (k - 1) + op       # output size - 1 without padding
            padding.append(draw(st.integers(0, min(2, full // 2))))
            output_padding.append(op)
        x = draw(arrays((n, c_out) + in_size))          # the transposed conv's input channels
        w = draw(arrays((c_out, c_in // groups) + kernel))
        out = [x, w]
        if bias:
            out.append(draw(arrays((c_in,))))
        out.append(encode(nd, groups, stride, tuple(padding), dilation, tuple(output_padding)))
        return out
    return sample


def _same_pads_torch(x, w, kw):
    """Explicit (TF-convention) pads for torch, which refuses padding='same' with stride > 1."""
    from tinygrad_cnn.shapes import same_padding
    pads = []
    for i, k, s, d in reversed(list(zip(x.shape[2:], w.shape[2:], kw["stride"], kw["dilation"]))):
        pads.extend(same_padding(i, k, s, d))
    return TF.pad(x, pads)


def _torch_same_strided(x, w, b, cfg):
    kw = conv_kwargs(cfg)
    nd = x.ndim - 2
    return THEIRS[nd](_same_pads_torch(x, w, kw), w, b, stride=kw["stride"], dilation=kw["dilation"],
                      groups=kw["groups"])


TOL = dict(atol=1e-10, rtol=1e-8)

OPINFOS = []
for _nd in (1, 2, 3):
    OPINFOS += [
        OpInfo(f"conv{_nd}d", ALL,
               fn=lambda x, w, b, c, nd=_nd: OURS[nd](x, w, b, **conv_kwargs(c)),
               torch_fn=lambda x, w, b, c, nd=_nd: THEIRS[nd](x, w, b, **conv_kwargs(c)),
               sample=conv_sample(_nd), **TOL),
        OpInfo(f"conv_transpose{_nd}d", ALL,
               fn=lambda x, w, b, c, nd=_nd: OURS_T[nd](x, w, b, **transpose_kwargs(c)),
               torch_fn=lambda x, w, b, c, nd=_nd: THEIRS_T[nd](x, w, b, **transpose_kwargs(c)),
               sample=conv_transpose_sample(_nd), **TOL),
    ]

OPINFOS += [
    OpInfo("conv2d_no_bias", ALL,
           fn=lambda x, w, c: F.conv2d(x, w, **conv_kwargs(c)),
           torch_fn=lambda x, w, c: TF.conv2d(x, w, **conv_kwargs(c)),
           sample=conv_sample(2, bias=False), **TOL),
    OpInfo("conv2d_depthwise", ALL,
           fn=lambda x, w, b, c: F.conv2d(x, w, b, **conv_kwargs(c)),
           torch_fn=lambda x, w, b, c: TF.conv2d(x, w, b, **conv_kwargs(c)),
           sample=conv_sample(2, depthwise=True), **TOL),
    OpInfo("conv1d_depthwise", ALL,
           fn=lambda x, w, b, c: F.conv1d(x, w, b, **conv_kwargs(c)),
           torch_fn=lambda x, w, b, c: TF.conv1d(x, w, b, **conv_kwargs(c)),
           sample=conv_sample(1, depthwise=True), **TOL),
    OpInfo("conv2d_pointwise", ALL,
           fn=lambda x, w, b, c: F.conv2d(x, w, b, **conv_kwargs(c)),
           torch_fn=lambda x, w, b, c: TF.conv2d(x, w, b, **conv_kwargs(c)),
           sample=conv_sample(2, pointwise=True), **TOL),
    OpInfo("conv_transpose2d_depthwise", ALL,
           fn=lambda x, w, b, c: F.conv_transpose2d(x, w, b, **transpose_kwargs(c)),
           torch_fn=lambda x, w, b, c: TF.conv_transpose2d(x, w, b, **transpose_kwargs(c)),
           sample=conv_transpose_sample(2, depthwise=True), **TOL),
    # beyond PyTorch: 'same' with stride > 1 (TensorFlow convention), checked against explicit pads
    OpInfo("conv2d_same_strided", ALL,
           fn=lambda x, w, b, c: F.conv2d(x, w, b, **conv_kwargs(c)),
           torch_fn=_torch_same_strided,
           sample=conv_sample(2, same_strided=True), **TOL),
    OpInfo("conv1d_same_strided", ALL,
           fn=lambda x, w, b, c: F.conv1d(x, w, b, **conv_kwargs(c)),
           torch_fn=_torch_same_strided,
           sample=conv_sample(1, same_strided=True), **TOL),
]
