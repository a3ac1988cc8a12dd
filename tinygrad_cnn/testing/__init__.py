"""Gradient checking, as a public feature: check your own Functions the way the library checks its own.

* :func:`gradcheck` compares the Jacobian from backward with central differences (float64).
* :func:`gradgradcheck` does the same for the gradient itself (second derivatives).
* :func:`adjoint_check` tests a linear op A against its claimed transpose: <u, A v> == <A^T u, v>.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ..autograd import grad
from ..engine import no_grad
from ..tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "adjoint_check", "numerical_jacobian", "analytical_jacobian"]


def _outputs(fn: Callable, inputs: Sequence[Tensor]) -> list:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def numerical_jacobian(fn: Callable, inputs: Sequence[Tensor], eps: float = 1e-6) -> list:
    """J[i] of shape (n_outputs_total, n_inputs_i) by central differences, per differentiable input."""
    jac = []
    # grad stays on: fn may itself call autograd.grad (gradgradcheck)
    for t in inputs:
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        flat = t.data.reshape(-1)   # a view: we perturb the input in place and restore it
        cols = []
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = np.concatenate([o.data.reshape(-1) for o in _outputs(fn, inputs)])
            flat[k] = orig - eps
            minus = np.concatenate([o.data.reshape(-1) for o in _outputs(fn, inputs)])
            flat[k] = orig
            cols.append((plus - minus) / (2 * eps))
        jac.append(np.stack(cols, axis=1) if cols else np.zeros((0, 0)))
    return jac


def analytical_jacobian(fn: Callable, inputs: Sequence[Tensor]) -> list:
    """J[i] from backward: one vector-Jacobian product per output element."""
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    outs = _outputs(fn, inputs)
    n_out = sum(o.numel() for o in outs)
    jac = [np.zeros((n_out, t.numel())) for t in diff]
    row = 0
    for o in outs:
        for k in range(o.numel()):
            seed = np.zeros(o.shape, dtype=o.dtype)
            seed.reshape(-1)[k] = 1.0
            if o.requires_grad:
                gs = grad([o], diff, [Tensor(seed)], retain_graph=True, allow_unused=True)
                for j, g in enumerate(gs):
                    if g is not None:
                        jac[j][row] = g.data.reshape(-1)
            row += 1
    return jac


def _check_inputs(inputs: Sequence) -> None:
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {t.dtype}; use float64 inputs "
                             "(finite differences in float32 are too coarse)")


def gradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Check backward against central differences for every input that requires grad.

    On failure raises AssertionError naming the input, the worst element (output index,
    input index) and both Jacobian entries.
    """
    inputs = list(inputs)
    _check_inputs(inputs)
    num = numerical_jacobian(fn, inputs, eps)
    ana = analytical_jacobian(fn, inputs)
    names = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    for idx, n, a in zip(names, num, ana):
        if n.shape != a.shape:
            msg = f"gradcheck: Jacobian shapes differ for input {idx}: numerical {n.shape}, analytical {a.shape}"
        else:
            err = np.abs(n - a) - (atol + rtol * np.abs(n))
            if not err.size or err.max() <= 0:
                continue
            r, c = np.unravel_index(int(np.argmax(err)), err.shape)
            msg = (f"gradcheck failed for input {idx}: worst at output element {r}, input element {c}: "
                   f"numerical {n[r, c]:.8g} vs analytical {a[r, c]:.8g} (atol={atol}, rtol={rtol}); "
                   f"{int((err > 0).sum())} of {err.size} Jacobian entries differ")
        if raise_exception:
            raise AssertionError(msg)
        return False
    return True


def gradgradcheck(fn: Callable, inputs: Sequence, grad_outputs: Optional[Sequence] = None,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, seed: int = 0) -> bool:
    """gradcheck of the function (inputs, v) -> VJP(inputs, v): checks second derivatives.

    ``v`` (the upstream gradient) is random unless ``grad_outputs`` is given; it is also checked
    as an input, so the mixed derivative is covered.
    """
    inputs = list(inputs)
    _check_inputs(inputs)
    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    grad_outputs = list(grad_outputs)
    n_in = len(inputs)
    diff_pos = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_derivative(*args):
        xs, vs = list(args[:n_in]), list(args[n_in:])
        outs = [o for o in _outputs(fn, xs) if o.requires_grad]
        if not outs:
            return tuple(Tensor(np.zeros(xs[i].shape)) for i in diff_pos)
        gs = grad(outs, [xs[i] for i in diff_pos], vs[:len(outs)], create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(np.zeros(xs[i].shape)) for g, i in zip(gs, diff_pos))

    return gradcheck(first_derivative, inputs + grad_outputs, eps, atol, rtol, raise_exception)


def adjoint_check(forward: Callable, transpose: Callable, x_shape: Sequence[int],
                  y_shape: Sequence[int], rtol: float = 1e-8, seed: int = 0) -> bool:
    """<forward(x), y> == <x, transpose(y)> for random float64 x and y (linear ops only)."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(tuple(x_shape)))
    y = Tensor(rng.standard_normal(tuple(y_shape)))
    with no_grad():
        fx, ty = forward(x), transpose(y)
    if fx.shape != tuple(y_shape) or ty.shape != tuple(x_shape):
        raise AssertionError(f"adjoint_check: forward gave {fx.shape} (expected {tuple(y_shape)}), "
                             f"transpose gave {ty.shape} (expected {tuple(x_shape)})")
    lhs = float(np.sum(fx.data * y.data))
    rhs = float(np.sum(x.data * ty.data))
    if abs(lhs - rhs) > rtol * max(1.0, abs(lhs), abs(rhs)):
        raise AssertionError(f"adjoint_check failed: <A x, y> = {lhs!r} but <x, A^T y> = {rhs!r}")
    return True
