"""RMSprop with momentum and the centered variant."""
from __future__ import annotations

from typing import Any, Dict, Iterable

import numpy as np

from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop (Hinton's lecture 6e)::

        v = alpha * v + (1 - alpha) * g^2
        (centered: a = alpha * a + (1 - alpha) * g;  v_hat = v - a^2)
        d = g / (sqrt(v_hat) + eps)
        momentum > 0: buf = momentum * buf + d;  p -= lr * buf    else p -= lr * d
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
        g = -grad if group["maximize"] else grad
        state["step"] = state.get("step", 0) + 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * param
        v = self._buffer(state, "square_avg", param)
        v *= alpha
        v += (1 - alpha) * g * g
        if group["centered"]:
            a = self._buffer(state, "grad_avg", param)
            a += (g - a) * (1 - alpha)
            avg = np.sqrt(v - a * a)
        else:
            avg = np.sqrt(v)
        avg += eps
        if group["momentum"] > 0:
            buf = self._buffer(state, "momentum_buffer", param)
            buf *= group["momentum"]
            buf += g / avg
            param -= lr * buf
        else:
            param -= lr * (g / avg)
