"""Ops that move data without arithmetic: reshape, permute, expand, index, pad, cat, gather.

Each backward is the opposite movement: reshape back, inverse permute, sum the expanded
dims, scatter what was gathered (and gather what was scattered), slice what was padded.
"""
from typing import Any, Sequence, Tuple

import numpy as np

from ..engine import Function, sum_to_shape
from ..tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.data.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))   # (np.argsort: 5 us)
        return x.data.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.permute(*ctx.inverse), None


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x):
        return np.ascontiguousarray(x.data)

    @staticmethod
    def backward(ctx, g):
        return g


class Expand(Function):
    """Broadcast to ``shape`` (a view); the gradient sums over the broadcast dims."""
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return np.broadcast_to(x.data, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to_shape(g, ctx.shape), None


def normalize_index(index: Any, shape: Tuple[int, ...]) -> Any:
    """Turn Tensors inside an index into NumPy arrays and check integer indices are in range."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for it in items:
        if isinstance(it, Tensor):
            it = it.data
        elif isinstance(it, list):
            it = np.asarray(it)
        if isinstance(it, np.ndarray) and it.dtype.kind == "f":
            raise IndexError("tensors used as indices must be long, int or bool tensors")
        out.append(it)
    return tuple(out) if isinstance(index, tuple) else out[0]


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(it is None or it is Ellipsis or isinstance(it, (int, slice, np.integer)) for it in items)


class GetItem(Function):
    """x[index] for ints, slices, None, Ellipsis, integer arrays and bool masks."""
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return x.data[index]

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, ctx.index, ctx.shape), None


class IndexAdd(Function):
    """zeros(shape) with ``src`` added at ``index`` (repeated indices accumulate).

    The gradient of x[index]; its own gradient is g[index] (GetItem): the pair closes.
    """
    @staticmethod
    def forward(ctx, src, index, shape):
        ctx.index = index
        out = np.zeros(shape, dtype=src.dtype)
        if _is_basic(index):
            out[index] = src.data
        else:
            np.add.at(out, index, src.data)
        return out

    @staticmethod
    def backward(ctx, g):
        return GetItem.apply(g, ctx.index), None, None


def _along(index: np.ndarray, dim: int) -> tuple:
    """Full advanced index that picks index[i, j, ...] along ``dim`` and i, j, ... elsewhere."""
    grids = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


class Gather(Function):
    """out[i][j] = x[i][index[i][j]] (dim 1 example), as torch.gather."""
    @staticmethod
    def forward(ctx, x, dim, index):
        if index.ndim != x.ndim:
            raise RuntimeError(f"gather: index must have as many dims as input ({x.ndim}), got {index.ndim}")
        if index.size and (index.min() < 0 or index.max() >= x.shape[dim]):
            raise IndexError(f"gather: index out of range for dim {dim} of size {x.shape[dim]}")
        ctx.shape, ctx.dim, ctx.index = x.shape, dim, index
        return x.data[_along(index, dim)]

    @staticmethod
    def backward(ctx, g):
        return ScatterAdd.apply(g, ctx.dim, ctx.index, ctx.shape), None, None


class ScatterAdd(Function):
    """zeros(shape) with src[i][j] added at [i][index[i][j]]; gradient = gather by the same index."""
    @staticmethod
    def forward(ctx, src, dim, index, shape):
        ctx.dim, ctx.index = dim, index
        out = np.zeros(shape, dtype=src.dtype)
        np.add.at(out, _along(index, dim), src.data)
        return out

    @staticmethod
    def backward(ctx, g):
        return Gather.apply(g, ctx.dim, ctx.index), None, None, None


class Pad(Function):
    """Constant padding; ``pads`` is ((before, after), ...) per dim, all >= 0. Gradient: a slice."""
    @staticmethod
    def forward(ctx, x, pads, value):
        ctx.slices = tuple(slice(b, b + s) for (b, _), s in zip(pads, x.shape))
        return np.pad(x.data, pads, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices], None, None


class Cat(Function):
    """Concatenate along ``dim``; each input's gradient is its slice of g."""
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.bounds = np.cumsum([0] + [x.shape[dim] for x in xs])
        return np.concatenate([x.data for x in xs], axis=dim)

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.dim
        grads = [g[lead + (slice(int(a), int(b)),)] if need else None
                 for a, b, need in zip(ctx.bounds[:-1], ctx.bounds[1:], ctx.needs_input_grad[1:])]
        return (None, *grads)


# ----------------------------------------------------------------------------- functions

def _pairs(pad: Sequence[int], ndim: int, name: str = "pad") -> list:
    """PyTorch's pad spec (last dim first: left, right, top, bottom, ...) -> per-dim pairs."""
    for p in pad:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
            raise TypeError(f"{name} must be a sequence of ints, got {tuple(pad)!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"{name} must have an even number of entries, at most 2*ndim={2 * ndim}, got {pad}")
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return pairs


def _mode_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source positions of a padded axis for reflect/replicate/circular padding."""
    pos = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        return pos % n
    period = 2 * (n - 1)
    pos = np.abs(pos) % period if period else np.zeros_like(pos)
    return np.where(pos >= n, period - pos, pos)


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """torch.nn.functional.pad: ``pad`` lists (left, right) of the last dim first.

    Negative pads crop. Modes ``'reflect'``, ``'replicate'`` and ``'circular'`` are gathers
    (differentiable indexing): the gradient adds each copy back onto its source.
    """
    pairs = _pairs(pad, x.ndim)
    for d, ((b, a), n) in enumerate(zip(pairs, x.shape)):
        if n + b + a < 0 or n + min(b, 0) + min(a, 0) < 0:
            raise ValueError(f"pad: padding ({b}, {a}) of dim {d} would crop more than its size {n}")
    if mode == "constant" and x.dtype.kind != "f" and not np.isfinite(value):
        raise RuntimeError(f"pad: value {value} cannot be stored in a tensor of dtype {x.dtype}")
    if any(b < 0 or a < 0 for b, a in pairs):   # crop first, then pad the rest
        crop = tuple(slice(max(-b, 0), s - max(-a, 0)) for (b, a), s in zip(pairs, x.shape))
        x = x[crop]
        pairs = [(max(b, 0), max(a, 0)) for b, a in pairs]
    if mode == "constant":
        return Pad.apply(x, tuple(pairs), value) if any(b or a for b, a in pairs) else x
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    for d, (b, a) in enumerate(pairs):
        if not (b or a):
            continue
        n = x.shape[d]
        if mode == "reflect" and (b >= n or a >= n):
            raise ValueError(f"pad: reflect padding ({b}, {a}) of dim {d} must be smaller than its size {n}")
        if mode == "circular" and (b > n or a > n):
            raise ValueError(f"pad: circular padding ({b}, {a}) of dim {d} must be at most its size {n}")
        x = x[(slice(None),) * d + (_mode_index(n, b, a, mode),)]
    return x


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """torch.cat: join tensors along an existing dim (all other dims must match)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    from ..tensor import _dims, _promote
    ndim = tensors[0].ndim
    d = _dims(dim, ndim)[0]
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = _promote(dt, t.dtype)
        if t.ndim != ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}; got shapes "
                               f"{[tuple(t.shape) for t in tensors]}")
    return Cat.apply(d, *[t.to(dt) for t in tensors])


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """torch.stack: join tensors of one shape along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    if any(t.shape != tensors[0].shape for t in tensors):
        raise RuntimeError(f"stack expects each tensor to be equal size, got {[tuple(t.shape) for t in tensors]}")
    from ..tensor import _dims
    d = _dims(dim, tensors[0].ndim + 1)[0]
    return cat([t.unsqueeze(d) for t in tensors], d)
