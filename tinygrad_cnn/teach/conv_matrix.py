"""Convolution as a matrix (curriculum topic 20): why a transposed convolution is called "transposed".

A convolution is linear in its input, so for a fixed weight it *is* a matrix ``C``:

    conv(x).flatten() == C @ x.flatten()               C: (C_out*prod(out), C_in*prod(in))

and the transposed convolution with the same weight and geometry multiplies by ``C.T``:

    conv_transpose(y).flatten() == C.T @ y.flatten()

For a 3x3 filter over a 4x4 input (stride 1, no padding) ``C`` is 4x16; its first row holds
``w00 w01 w02 0 w10 w11 w12 0 w20 w21 w22 0 0 0 0 0`` and each next row is the same pattern
shifted, which is the slide's sparse matrix. The matrices are built here with plain loops
straight from the definition of a convolution (cross-correlation, as PyTorch), independently
of the library's conv kernels, so the tests can hold one against the other.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence, Tuple, Union

import numpy as np

from .. import shapes

__all__ = ["conv_matrix", "conv_transpose_matrix"]

IntOrTuple = Union[int, Sequence[int]]
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _as_array(weight: Any) -> np.ndarray:
    data = getattr(weight, "data", weight)
    return np.asarray(data)


def _split_input_shape(input_shape: Sequence[int], nd: int, channels: int, what: str) -> Tuple[int, ...]:
    """Spatial sizes from ``input_shape`` given as ``spatial``, ``(C, *spatial)`` or ``(N, C, *spatial)``."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == nd:
        return shape
    if len(shape) in (nd + 1, nd + 2):
        c = shape[-nd - 1]
        if c != channels:
            raise ValueError(f"{what}: input_shape {shape} has {c} channels but the weight expects {channels} channels")
        return shape[-nd:]
    raise ValueError(f"{what}: input_shape must be {nd} spatial sizes, (C, *spatial) or (N, C, *spatial) "
                     f"for a {nd}d weight, got {shape}")


def _source_index(pos: np.ndarray, size: int, mode: str) -> Tuple[np.ndarray, np.ndarray]:
    """Where padded position ``pos`` reads from in an input of length ``size``, and if it reads at all."""
    if mode == "zeros":
        return np.clip(pos, 0, size - 1), (pos >= 0) & (pos < size)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1), np.ones(pos.shape, bool)
    if mode == "circular":
        return np.mod(pos, size), np.ones(pos.shape, bool)
    # reflect, without repeating the edge: -1 -> 1, size -> size - 2
    period = 2 * (size - 1) if size > 1 else 1
    p = np.mod(np.abs(pos), period)
    return np.where(p >= size, period - p, p), np.ones(pos.shape, bool)


def conv_matrix(conv_or_weight: Any, input_shape: Sequence[int], stride: IntOrTuple = 1,
                padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1, groups: int = 1,
                padding_mode: str = "zeros") -> np.ndarray:
    """The dense matrix ``C`` with ``conv(x).flatten() == C @ x.flatten()`` for one sample.

    Args:
        conv_or_weight: an ``nn.Conv1d/2d/3d`` (its weight, stride, padding, dilation, groups and
            padding_mode are used and the other arguments ignored), or a weight
            ``(C_out, C_in/groups, *K)`` as a Tensor or NumPy array.
        input_shape: the input's spatial sizes, ``(C_in, *spatial)`` or ``(N, C_in, *spatial)``.
        stride, padding, dilation, groups: as ``F.conv{n}d`` (``padding`` may be ``'same'``/``'valid'``).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'`` (as ``nn.Conv2d``).

    Returns ``C`` of shape ``(C_out * prod(out_size), C_in * prod(in_size))`` and the weight's dtype;
    rows and columns in the C-order of ``(C_out, *out_size)`` and ``(C_in, *in_size)``. The bias
    is not part of ``C`` (it is added after: ``conv(x) = C x + b``).
    """
    if hasattr(conv_or_weight, "weight") and hasattr(conv_or_weight, "kernel_size"):
        conv = conv_or_weight
        if getattr(conv, "transposed", False) or "Transpose" in type(conv).__name__:
            raise TypeError("conv_matrix: got a transposed convolution; use conv_transpose_matrix for it")
        weight = _as_array(conv.weight)
        stride, padding, dilation = conv.stride, conv.padding, conv.dilation
        groups, padding_mode = conv.groups, getattr(conv, "padding_mode", "zeros")
    else:
        weight = _as_array(conv_or_weight)
    if weight.ndim < 3 or weight.ndim > 5:
        raise ValueError(f"conv_matrix: weight must be (C_out, C_in/groups, *K) with 1 to 3 kernel dims, "
                         f"got shape {weight.shape}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"conv_matrix: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv_matrix: groups must be a positive int, got {groups!r}")
    nd = weight.ndim - 2
    c_out, c_in_per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    if c_out % groups:
        raise ValueError(f"conv_matrix: C_out = {c_out} (weight.shape[0]) is not divisible by groups = {groups}")
    c_in = c_in_per_group * groups
    in_size = _split_input_shape(input_shape, nd, c_in, "conv_matrix")
    stride = shapes.ntuple(stride, nd, "stride", minimum=1)
    dilation = shapes.ntuple(dilation, nd, "dilation", minimum=1)
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0,) * nd
            out_size = tuple(shapes.conv_output_size(i, k, s, 0, d, dim)
                             for dim, (i, k, s, d) in enumerate(zip(in_size, kernel, stride, dilation)))
        elif padding == "same":
            pad = tuple(shapes.same_padding(i, k, s, d)[0] for i, k, s, d in zip(in_size, kernel, stride, dilation))
            out_size = tuple(-(-i // s) for i, s in zip(in_size, stride))
        else:
            raise ValueError(f"conv_matrix: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    else:
        pad = shapes.ntuple(padding, nd, "padding", minimum=0)
        out_size = tuple(shapes.conv_output_size(i, k, s, p, d, dim)
                         for dim, (i, k, s, p, d) in enumerate(zip(in_size, kernel, stride, pad, dilation)))
    if padding_mode == "reflect" and any(p >= i for p, i in zip(pad, in_size)):
        raise ValueError(f"conv_matrix: reflect padding {pad} must be smaller than the input size {in_size}")
    return _build(weight, in_size, out_size, stride, pad, dilation, groups, padding_mode)


def _build(weight: np.ndarray, in_size: Tuple[int, ...], out_size: Tuple[int, ...], stride: Tuple[int, ...],
           pad: Tuple[int, ...], dilation: Tuple[int, ...], groups: int, padding_mode: str) -> np.ndarray:
    """C for validated geometry: one row per (output channel, output position)."""
    nd = len(in_size)
    c_out, c_in_per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    c_in = c_in_per_group * groups
    n_out, n_in = int(np.prod(out_size)), int(np.prod(in_size))
    C = np.zeros((c_out * n_out, c_in * n_in), dtype=weight.dtype if weight.dtype.kind == "f" else np.float64)
    # For every output position (all at once, as a grid) and every kernel tap, the input position it
    # reads is  out * stride - pad + tap * dilation  along each dim.
    grids = np.meshgrid(*[np.arange(o) for o in out_size], indexing="ij")
    rows_in_channel = np.arange(n_out)
    out_per_group = c_out // groups
    for tap in itertools.product(*[range(k) for k in kernel]):
        src, ok = [], np.ones(out_size, bool)
        for d in range(nd):
            pos = grids[d] * stride[d] - pad[d] + tap[d] * dilation[d]
            idx, valid = _source_index(pos, in_size[d], padding_mode)
            src.append(idx)
            ok &= valid
        flat_in = np.ravel_multi_index(src, in_size).reshape(-1)
        ok = ok.reshape(-1)
        for co in range(c_out):
            group = co // out_per_group
            for ci_local in range(c_in_per_group):
                ci = group * c_in_per_group + ci_local
                rows = co * n_out + rows_in_channel[ok]
                cols = ci * n_in + flat_in[ok]
                # +=: with reflect/replicate/circular padding two taps can read the same pixel
                C[rows, cols] += weight[(co, ci_local) + tap]
    return C


def conv_transpose_matrix(conv_or_weight: Any, input_shape: Sequence[int], stride: IntOrTuple = 1,
                          padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                          dilation: IntOrTuple = 1) -> np.ndarray:
    """The matrix ``M`` with ``conv_transpose(y).flatten() == M @ y.flatten()``; ``M = C.T``.

    Arguments as ``F.conv_transpose{n}d`` (same order), with ``conv_or_weight`` an
    ``nn.ConvTranspose*`` module or a weight ``(C_in, C_out/groups, *K)`` and ``input_shape``
    the transposed conv's input ``(C_in, *spatial)`` (or just the spatial sizes). ``C`` is the
    matrix of the convolution that maps the transposed conv's output size back to its input size.
    """
    if hasattr(conv_or_weight, "weight") and hasattr(conv_or_weight, "kernel_size"):
        m = conv_or_weight
        weight = _as_array(m.weight)
        stride, padding, output_padding = m.stride, m.padding, m.output_padding
        groups, dilation = m.groups, m.dilation
    else:
        weight = _as_array(conv_or_weight)
    if weight.ndim < 3 or weight.ndim > 5:
        raise ValueError(f"conv_transpose_matrix: weight must be (C_in, C_out/groups, *K) with 1 to 3 kernel "
                         f"dims, got shape {weight.shape}")
    nd = weight.ndim - 2
    small = _split_input_shape(input_shape, nd, weight.shape[0], "conv_transpose_matrix")
    stride = shapes.ntuple(stride, nd, "stride", minimum=1)
    dilation = shapes.ntuple(dilation, nd, "dilation", minimum=1)
    padding = shapes.ntuple(padding, nd, "padding", minimum=0)
    output_padding = shapes.ntuple(output_padding, nd, "output_padding", minimum=0)
    big = tuple(shapes.conv_transpose_output_size(i, k, s, p, op, d, dim)
                for dim, (i, k, s, p, op, d) in enumerate(zip(small, weight.shape[2:], stride, padding,
                                                               output_padding, dilation)))
    # The weight of a transposed conv, read as a conv weight, maps C_out*groups... channels back:
    # (C_in, C_out/groups, *K) is exactly a conv weight (C_out', C_in'/groups, *K) with C_out' = C_in.
    if weight.shape[0] % groups:
        raise ValueError(f"conv_transpose_matrix: C_in = {weight.shape[0]} (weight.shape[0]) is not divisible "
                         f"by groups = {groups}")
    # Rows: the conv's outputs, which are the transposed conv's inputs (`small`). With
    # output_padding >= stride (allowed when smaller than dilation) the conv over `big` would have
    # more outputs than `small`; the transposed conv has no input for those, so they are not built.
    C = _build(weight, big, small, stride, padding, dilation, groups, "zeros")
    return C.T
