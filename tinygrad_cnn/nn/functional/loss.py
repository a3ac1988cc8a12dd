"""Loss functions with torch.nn.functional's names, arguments and reductions.

Every loss is built from differentiable ops (log_softmax, gather, where, softplus, ...), so its
gradients of every order are correct by construction. Classification losses accept N-d inputs
``(N, C, d1, d2, ...)`` with targets ``(N, d1, d2, ...)`` (e.g. segmentation maps).
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ...ops.loss import NllLoss
from ...tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average: Optional[bool], reduce: Optional[bool], reduction: str) -> str:
    """PyTorch's deprecated size_average/reduce arguments, mapped onto ``reduction``."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _as_tensor(x, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x if x.dtype == like.dtype or x.dtype.kind != "f" else x.to(like.dtype)
    return Tensor(np.asarray(x, dtype=like.dtype))


def _class_targets(input: Tensor, target: Tensor, ignore_index: int, name: str) -> np.ndarray:
    """Check the shapes and values of class-index targets; returns the int64 index array."""
    t = target.data
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: class-index target must be an integer tensor, got dtype {t.dtype}")
    if input.ndim == 1:
        expected: tuple = ()
    elif input.ndim >= 2:
        expected = (input.shape[0],) + tuple(input.shape[2:])
    else:
        raise ValueError(f"{name}: input must have shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} needs a target of shape {expected} "
                         f"(class indices), got {tuple(t.shape)}")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    valid = t != ignore_index
    if valid.any():
        bad = t[valid]
        bad = bad[(bad < 0) | (bad >= c)]
        if bad.size:
            raise IndexError(f"{name}: Target {int(bad[0])} is out of bounds for {c} classes "
                             f"(valid range 0..{c - 1}, or ignore_index={ignore_index})")
    return t.astype(np.int64, copy=False)


def _check_weight(weight: Optional[Tensor], c: int, name: str) -> None:
    if weight is not None and tuple(weight.shape) != (c,):
        raise ValueError(f"{name}: weight must have shape ({c},) (one per class), got {tuple(weight.shape)}")


def nll_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: ``-weight[t] * input[n, t]`` for log-probabilities ``input``.

    input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``; target ``(N,)``/``()``/``(N, d1, ...)`` of
    class indices. Targets equal to ``ignore_index`` contribute nothing. ``reduction='mean'``
    divides by the summed weights of the non-ignored targets (as PyTorch).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    t = _class_targets(input, target, ignore_index, "nll_loss")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    _check_weight(weight, c, "nll_loss")
    if (weight is None and input.ndim >= 2 and input.dtype.kind == "f" and reduction != "none"
            and t.size > 0 and not (t == ignore_index).any()):     # the common case: one node
        return NllLoss.apply(input, t, 1.0 / t.size if reduction == "mean" else 1.0)
    x = input.unsqueeze(0) if input.ndim == 1 else input
    tb = t.reshape((1,) + t.shape) if input.ndim == 1 else t
    valid = tb != ignore_index
    safe = np.where(valid, tb, 0)
    picked = x.gather(1, Tensor(np.expand_dims(safe, 1))).squeeze(1)      # input[n, t[n], ...]
    mask = Tensor(valid.astype(x.dtype))
    wt = mask if weight is None else _as_tensor(weight, x)[Tensor(safe)] * mask   # weight[t], 0 if ignored
    loss = -(picked * wt)
    if input.ndim == 1:
        loss = loss.squeeze(0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wt.sum()


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` and ``target`` (= nll_loss(log_softmax(input))).

    input ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)`` (unnormalised logits; finite for +-1e4).
    target: class indices of shape ``(N,)``/``()``/``(N, d1, ...)``, or class probabilities of the
    input's shape. ``weight`` (C,) rescales each class; ``label_smoothing`` in [0, 1] mixes the
    target with the uniform distribution, as PyTorch.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    x = input if input.dtype.kind == "f" else input.float()
    class_dim = 0 if x.ndim == 1 else 1
    c = x.shape[class_dim]
    _check_weight(weight, c, "cross_entropy")
    logp = x.log_softmax(class_dim)
    wshape = (c,) + (1,) * (x.ndim - class_dim - 1)

    if target.dtype.kind == "f":                        # class probabilities
        if tuple(target.shape) != tuple(x.shape):
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(x.shape)}, got {tuple(target.shape)}")
        p = _as_tensor(target, x)
        if label_smoothing > 0:
            p = p * (1.0 - label_smoothing) + label_smoothing / c
        terms = logp * p
        if weight is not None:
            terms = terms * _as_tensor(weight, x).reshape(wshape)
        loss = -terms.sum(class_dim)
        if reduction == "mean":
            n = x.numel() // c if c else 0
            return loss.sum() / float(n) if n else loss.sum() * np.nan
        return _reduce(loss, reduction)

    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    # the smoothing term: -sum_c weight[c] * logp[c], over non-ignored targets
    t = _class_targets(x, target, ignore_index, "cross_entropy")
    valid = t != ignore_index
    terms = logp if weight is None else logp * _as_tensor(weight, x).reshape(wshape)
    smooth = -terms.sum(class_dim) * Tensor(valid.astype(x.dtype))
    if reduction == "none":
        pass
    elif reduction == "sum":
        smooth = smooth.sum()
    elif weight is None:
        smooth = smooth.sum() / float(valid.sum())
    else:
        safe = np.where(valid, t, 0)
        denom = _as_tensor(weight, x)[Tensor(safe)] * Tensor(valid.astype(x.dtype))
        smooth = smooth.sum() / denom.sum()
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / c)


def _pointwise_shapes(input: Tensor, target: Tensor, name: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(f"{name}: target shape {tuple(target.shape)} does not broadcast with input "
                             f"shape {tuple(input.shape)}") from None
        warnings.warn(f"{name}: using a target size ({tuple(target.shape)}) that is different to the input "
                      f"size ({tuple(input.shape)}); it will be broadcast, which is likely not what you want.",
                      UserWarning, stacklevel=3)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2`` (any shape; reduced by mean by default)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _pointwise_shapes(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|`` (any shape)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _pointwise_shapes(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``-weight * (t log(p) + (1 - t) log(1 - p))`` for probabilities ``input`` in [0, 1].

    The logs are clamped at -100 (as PyTorch), so p = 0 or 1 gives a finite loss. Prefer
    :func:`binary_cross_entropy_with_logits`, which is stable for any logit.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"binary_cross_entropy: target size ({tuple(target.shape)}) must be the same as "
                         f"input size ({tuple(input.shape)})")
    if input.numel() and (np.min(input.data) < 0 or np.max(input.data) > 1 or np.isnan(input.data).any()):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                         f"(got min {np.nanmin(input.data)}, max {np.nanmax(input.data)})")
    from ...ops.loss import BinaryCrossEntropy
    loss = BinaryCrossEntropy.apply(input, _as_tensor(target, input))
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Optional[Tensor] = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula, for logits ``input`` of any size::

        loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * softplus(-x)

    ``pos_weight`` (broadcast along the last dim, e.g. shape (C,)) weighs the positive examples.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target size ({tuple(target.shape)}) must be "
                         f"the same as input size ({tuple(input.shape)})")
    if isinstance(target, Tensor) and target.dtype.kind == "f" and target.dtype.itemsize > input.dtype.itemsize:
        input = input.to(target.dtype)          # float32 logits with float64 targets -> float64
    t = _as_tensor(target, input)
    sp = _softplus(-input)
    if pos_weight is not None:
        log_weight = (_as_tensor(pos_weight, input) - 1.0) * t + 1.0
        loss = (1.0 - t) * input + log_weight * sp
    else:
        loss = (1.0 - t) * input + sp
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) without a linear cut-off: exact and stable for any x (even +-1e4)."""
    from ...ops.elementwise import Softplus
    return Softplus.apply(x, 1.0, float("inf"))
