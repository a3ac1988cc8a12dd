"""Normalisation and channel dropout with torch.nn.functional's names and arguments."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np

from ...tensor import Tensor, get_rng

__all__ = ["batch_norm", "layer_norm", "group_norm", "dropout2d", "dropout1d", "dropout3d"]


def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of ``(N, C, *)`` to zero mean and unit variance, then scale/shift.

    ``training=True`` uses the batch statistics and updates ``running_mean`` / ``running_var``
    in place (``new = (1 - momentum) * old + momentum * batch``; the variance is unbiased);
    ``training=False`` uses the running statistics.
    """
    from ...ops.norm import BatchNorm
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, *), got shape {tuple(input.shape)}")
    if not eps >= 0:
        raise ValueError(f"batch_norm: eps must be non-negative, got {eps}")
    if training and eps <= 0:
        raise ValueError(f"batch_norm: eps must be positive in training (a constant channel would "
                         f"divide by zero), got {eps}")
    c = input.shape[1]
    if c == 0:
        raise ValueError(f"batch_norm: input has 0 channels (shape {tuple(input.shape)})")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for input with {c} channels, "
                             f"got {tuple(t.shape)}")
    if training:
        size = input.numel() // max(c, 1)
        if size <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    x = input if input.dtype.kind == "f" else input.float()
    return BatchNorm.apply(x, weight, bias, running_mean, running_var, bool(training),
                           float(momentum), float(eps))


def _normalize(xc: Tensor, dims, eps: float) -> Tensor:
    """xc / sqrt(mean(xc^2) + eps), computed on xc / s with s = max(max|xc|, 1) per group.

    The scale s is a constant and the formula is the same function of xc for every s > 0, so the
    value and every gradient are unchanged; but xc^2 can no longer overflow (float32 |x| > 1e19).
    """
    with np.errstate(invalid="ignore"):
        s = np.maximum(np.max(np.abs(xc.data), axis=dims, keepdims=True, initial=0.0), 1.0).astype(xc.dtype)
    xs = xc * Tensor(1.0 / s)
    return xs * ((xs * xs).mean(dims, keepdim=True) + Tensor(eps / (s * s))).sqrt().reciprocal()


def _normalized_shape(normalized_shape: Union[int, Sequence[int]]) -> tuple:
    return (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)


def layer_norm(input: Tensor, normalized_shape: Union[int, Sequence[int]], weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims of ``(*, *normalized_shape)``,
    then scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``)."""
    shape = _normalized_shape(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape or input.ndim < k:
        raise ValueError(f"layer_norm: normalized_shape {shape} must match the last dims of the input, "
                         f"got input of shape {tuple(input.shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    out = _normalize(input - input.mean(dims, keepdim=True), dims, eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Split the C channels of ``(N, C, *)`` into ``num_groups`` groups, normalise each group of
    each sample, then apply the per-channel ``weight`` / ``bias`` (shape ``(C,)``)."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected input of shape (N, C, *), got {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(f"group_norm: num_groups must be an int, got {num_groups!r}")
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: num_channels ({c}) must be divisible by num_groups ({num_groups})")
    x = input.reshape(n, num_groups, -1)
    out = _normalize(x - x.mean(2, keepdim=True), (2,), eps).reshape(input.shape)
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _channel_dropout(input: Tensor, p: float, training: bool, batched_ndim: int, name: str) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")
    if input.dtype.kind != "f":
        raise RuntimeError(f"{name}: input must be a floating-point tensor, got dtype {input.dtype}")
    if input.ndim not in (batched_ndim, batched_ndim - 1):
        raise ValueError(f"{name}: expected {batched_ndim - 1}-D (unbatched) or {batched_ndim}-D (batched) "
                         f"input, got {input.ndim}-D input of shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    lead = 2 if input.ndim == batched_ndim else 1     # (N, C) or just (C,) share one draw per map
    if name == "dropout2d" and input.ndim == 3:
        # PyTorch (2.x) reads a 3-D input to dropout2d as (N, C, L) with a warning; so do we
        warnings.warn("dropout2d: received a 3-D input; treating it as (N, C, L) like PyTorch. Use "
                      "dropout1d for channel-wise 1-D dropout.", UserWarning, stacklevel=3)
        lead = 2
    mask_shape = input.shape[:lead] + (1,) * (input.ndim - lead)
    if p == 1.0:
        return input * Tensor(np.zeros(mask_shape, dtype=input.dtype))
    keep = (get_rng().random(mask_shape) >= p).astype(input.dtype) / input.dtype.type(1.0 - p)
    return input * Tensor(keep)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` (or ``(C, L)``) with probability p; scale by 1/(1-p)."""
    return _channel_dropout(input, p, training, 3, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole feature maps of ``(N, C, H, W)`` (or ``(C, H, W)``) with probability p; the
    kept maps are scaled by 1/(1-p), so the expected value is unchanged."""
    return _channel_dropout(input, p, training, 4, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole volumes of ``(N, C, D, H, W)`` (or ``(C, D, H, W)``) with probability p."""
    return _channel_dropout(input, p, training, 5, "dropout3d")
