"""Gradient clipping and flat parameter vectors (torch.nn.utils)."""
from __future__ import annotations

import math
from typing import Iterable, Union

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]

Params = Union[Tensor, Iterable[Tensor]]


def _as_list(parameters: Params) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters: Params, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type`` norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d Tensor), as PyTorch. ``norm_type`` may be
    ``float('inf')`` (the largest absolute entry).
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        norms = [np.max(np.abs(g.data)) if g.numel() else 0.0 for g in grads]
        total = float(max(norms))
    else:
        total = float(sum(np.sum(np.abs(g.data.astype(np.float64)) ** norm_type) for g in grads)
                      ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    clip_coef = max_norm / (total + 1e-6)
    if clip_coef < 1:
        for g in grads:
            g.data = g.data * g.dtype.type(clip_coef)
    return Tensor(np.array(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters: Params, clip_value: float, foreach=None) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` (in place)."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad.data = np.clip(p.grad.data, -clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D Tensor (a copy)."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return Tensor(np.concatenate([p.data.reshape(-1) for p in params]))


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy slices of the 1-D ``vec`` into the parameters, in order (inverse of the above)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {tuple(vec.shape)}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.numel():
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} elements but the parameters need {total}")
    start = 0
    for p in params:
        n = p.numel()
        p.data = vec.data[start:start + n].reshape(p.shape).astype(p.dtype, copy=True)
        p._version += 1
        start += n
