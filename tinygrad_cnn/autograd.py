"""torch.autograd's public face: Function, backward, grad, no_grad, enable_grad, detect_anomaly."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from .engine import Context, Function, _Anomaly, enable_grad, is_grad_enabled, no_grad, run_backward
from .tensor import Tensor

__all__ = ["Function", "Context", "backward", "grad", "no_grad", "enable_grad", "is_grad_enabled",
           "detect_anomaly", "set_detect_anomaly"]

TensorOrSeq = Union[Tensor, Sequence[Tensor]]


def _as_list(x) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, Tensor) else list(x)


def _seed_grads(outputs: list, grad_outputs: list) -> list:
    if not grad_outputs:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad_outputs has {len(grad_outputs)} entries but there are {len(outputs)} outputs")
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this output "
                                   f"has shape {tuple(out.shape)}: pass gradient= (or grad_outputs=) of that shape")
            g = Tensor(np.ones(out.shape, dtype=out.dtype))
        elif not isinstance(g, Tensor):
            g = Tensor(np.asarray(g, dtype=out.dtype))
        if g.shape != out.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output has shape {tuple(g.shape)} and output has "
                               f"shape {tuple(out.shape)}")
        seeds.append(g)
    return seeds


def backward(tensors: TensorOrSeq, grad_tensors: Optional[TensorOrSeq] = None,
             retain_graph: Optional[bool] = None, create_graph: bool = False,
             inputs: Optional[Sequence[Tensor]] = None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (torch.autograd.backward)."""
    outs = _as_list(tensors)
    seeds = _seed_grads(outs, _as_list(grad_tensors))
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is not None:
        got = grad(outs, _as_list(inputs), seeds, retain_graph=retain, create_graph=create_graph,
                   allow_unused=True)
        for t, g in zip(_as_list(inputs), got):
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
        return
    run_backward(outs, seeds, retain, create_graph)


def grad(outputs: TensorOrSeq, inputs: TensorOrSeq, grad_outputs: Optional[TensorOrSeq] = None,
         retain_graph: Optional[bool] = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` w.r.t. ``inputs``, returned instead of accumulated (torch.autograd.grad).

    With ``create_graph=True`` the result is itself part of a graph, so it can be differentiated
    again (Hessian-vector products, gradient penalties).
    """
    outs, ins = _as_list(outputs), _as_list(inputs)
    for t in ins:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    seeds = _seed_grads(outs, _as_list(grad_outputs))
    retain = create_graph if retain_graph is None else retain_graph
    result = run_backward(outs, seeds, retain, create_graph, inputs=ins)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) appears to not have been "
                               "used in the graph. Set allow_unused=True if this is the desired behavior.")
        if g is not None and not create_graph:
            result[i] = g.detach()
    return tuple(result)


class detect_anomaly:
    """Context manager: fail at the first op whose forward or backward makes NaN/inf, naming
    the op, the shapes, and the line of user code that created it (as torch.autograd.detect_anomaly)."""

    def __init__(self, check_nan: bool = True):
        self.check = check_nan

    def __enter__(self):
        self.prev = _Anomaly.enabled
        _Anomaly.enabled = self.check

    def __exit__(self, *exc):
        _Anomaly.enabled = self.prev
        return False


def set_detect_anomaly(mode: bool) -> None:
    _Anomaly.enabled = bool(mode)
