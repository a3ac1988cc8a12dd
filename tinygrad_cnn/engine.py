"""The autograd engine: Function, the recorded graph, and backward.

Read this file top to bottom; it is the whole of automatic differentiation here.

* An op is a subclass of :class:`Function` with two static methods. ``forward(ctx, *args)``
  computes the output from NumPy arrays (``t.data``); ``backward(ctx, *grad_outputs)``
  returns one gradient per forward argument, written with Tensor ops, so that gradients
  are themselves differentiable (``create_graph=True`` records them as a new graph).
* ``Fn.apply(*args)`` runs ``forward`` and, when an input requires grad, remembers a
  *node* (the ``ctx``): which Function ran, the edges to the inputs' nodes, and what
  ``forward`` saved. The output Tensor points to it as ``grad_fn``.
* :func:`run_backward` sorts the nodes reachable from the outputs topologically and calls
  each ``backward`` once, summing the gradients that reach each node. Gradients of
  broadcast inputs are summed back to the input's shape in one place: :func:`sum_to_shape`.

This module knows the Tensor class only through :func:`register_tensor_class` (tensor.py
calls it), so the import arrow points from tensor.py to here and never back.
"""
from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

_Tensor: Any = None  # the Tensor class, set by tensor.py

REGISTRY: Dict[str, type] = {}
"""Every Function defined inside tinygrad_cnn, by class name (tests check each is tested)."""


def register_tensor_class(cls: type) -> None:
    global _Tensor
    _Tensor = cls


# ----------------------------------------------------------------------------- grad mode

class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class _SetGradMode:
    """Context manager and decorator that sets grad recording on or off, then restores it."""
    mode = True

    def __enter__(self):
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_SetGradMode):
    """``with no_grad():`` or ``@no_grad()``: ops inside record no graph (as torch.no_grad)."""
    mode = False


class enable_grad(_SetGradMode):
    """``with enable_grad():`` turns recording back on inside a no_grad block."""
    mode = True


# ----------------------------------------------------------------------------- anomaly mode

class _Anomaly:
    enabled = False
    in_backward_of: Optional["Context"] = None   # the node whose backward is running


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


# ----------------------------------------------------------------------------- Function

class Function:
    """Base class of every op. Subclass it, write ``forward`` and ``backward``, call ``apply``.

    ``ctx`` (an instance of :class:`Context`) carries what backward needs:
    ``ctx.save_for_backward(*tensors)`` / ``ctx.saved_tensors``, ``ctx.needs_input_grad``
    (one bool per forward argument) and any attribute you set on it.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("tinygrad_cnn."):
            REGISTRY[cls.__name__] = cls

    @staticmethod
    def forward(ctx: "Context", *args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: "Context", *grad_outputs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any) -> Any:
        Tensor = _Tensor
        ctx = Context(cls)
        prev, record = _GradMode.enabled, False
        if prev:
            needs = tuple([isinstance(a, Tensor) and a.requires_grad for a in args])
            record = True in needs
        if not record:     # nothing will call backward: forward need not keep anything for it
            needs = (False,) * len(args)
        ctx.needs_input_grad = needs
        _GradMode.enabled = False
        try:
            raw = cls.forward(ctx, *args)
        finally:
            _GradMode.enabled = prev
        single = not isinstance(raw, tuple)
        outs = [_wrap_output(raw)] if single else [_wrap_output(r) for r in raw]
        if _Anomaly.enabled:
            _check_finite(cls.__name__, "forward", outs, args)
        if record:
            ctx.edges = [_edge(a) if need else None for a, need in zip(args, needs)]
            ctx.out_meta = [(o.data.shape, o.data.dtype) for o in outs]
            for i, o in enumerate(outs):
                if o.data.dtype.kind == "f":
                    o.requires_grad = True
                    o.grad_fn = ctx
                    o._output_nr = i
            ctx._pack_saved((raw,) if single else raw, outs)
            if _Anomaly.enabled:
                ctx.trace = _user_frame()
        return outs[0] if single else tuple(outs)


def _wrap_output(r: Any) -> Any:
    Tensor = _Tensor
    if type(r) is np.ndarray:       # the usual case, without Tensor.__init__'s conversions
        return Tensor._wrap(r)
    if isinstance(r, Tensor):
        return Tensor(r.data)
    return Tensor(np.asarray(r))


def _edge(t: Any) -> tuple:
    """Where the gradient of input ``t`` goes: (node, output_nr, leaf_or_None, shape, dtype)."""
    if t.grad_fn is None:
        return (None, 0, t, t.shape, t.dtype)
    return (t.grad_fn, t._output_nr, None, t.shape, t.dtype)


class Context:
    """A node of the graph: one call of a Function, remembered for backward."""

    def __init__(self, fn: type):
        self.fn = fn
        self.needs_input_grad: Tuple[bool, ...] = ()
        self.edges: List[Optional[tuple]] = []
        self.out_meta: List[tuple] = []
        self.retained: Dict[int, Any] = {}
        self.freed = False
        self._to_save: Tuple[Any, ...] = ()
        self._saved: Optional[list] = None
        self.trace: Optional[str] = None

    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    @property
    def next_functions(self) -> Tuple[tuple, ...]:
        """(node_or_leaf, output_nr) per input, like torch's grad_fn.next_functions."""
        return tuple((None, 0) if e is None else ((e[0], e[1]) if e[0] is not None else (e[2], 0))
                     for e in self.edges)

    def save_for_backward(self, *tensors: Any) -> None:
        self._to_save = tensors

    def _pack_saved(self, raws: tuple, outs: list) -> None:
        # An output is saved as its array plus its index: at unpack time it is rebuilt as a
        # Tensor whose grad_fn is this very node. Holding the output Tensor itself would make
        # a reference cycle (output -> node -> output) that keeps activations alive.
        packed = []
        for t in self._to_save:
            for i, (r, o) in enumerate(zip(raws, outs)):
                if t is o or t is r:
                    packed.append(("output", i, o.data))
                    break
            else:
                packed.append(("tensor", t, getattr(t, "_version", 0)))
        self._saved = packed
        self._to_save = ()

    @property
    def saved_tensors(self) -> Tuple[Any, ...]:
        if self.freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (in {self.name()}): the "
                "saved tensors were freed after the first backward. Call backward(retain_graph=True) "
                "the first time if you need to backward twice.")
        if self._saved is None:  # apply() did not record (no input needs grad): use as given
            return tuple(self._to_save)
        out = []
        for kind, a, b in self._saved:
            if kind == "output":
                t = _Tensor(b)
                if _is_float(b.dtype):
                    t.requires_grad, t.grad_fn, t._output_nr = True, self, a
                out.append(t)
            else:
                if getattr(a, "_version", 0) != b:
                    raise RuntimeError(
                        f"one of the tensors saved by {self.fn.__name__} for backward was modified "
                        f"by an in-place operation (version {b} -> {a._version}); its gradient would be wrong")
                out.append(a)
        return tuple(out)

    def free(self) -> None:
        self._saved = None
        self.freed = True


# ----------------------------------------------------------------------------- backward

def sum_to_shape(g: Any, shape: Tuple[int, ...]) -> Any:
    """Sum ``g`` over the dimensions that broadcasting added or stretched, to get ``shape``.

    The one place where gradients of broadcast inputs are reduced. Written with Tensor ops
    so it is recorded when gradients are being differentiated.
    """
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and g.shape[i + lead] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape)


def _topological_order(roots: Sequence[Any]) -> List[Context]:
    """Nodes reachable from ``roots``, each after every node that feeds gradient into it."""
    order: List[Context] = []
    seen = set()
    for root in roots:
        if root is None or id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(root.edges))]
        while stack:
            node, it = stack[-1]
            for e in it:
                if e is not None and e[0] is not None and id(e[0]) not in seen:
                    seen.add(id(e[0]))
                    stack.append((e[0], iter(e[0].edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _accumulate(a: Any, b: Any) -> Any:
    return b if a is None else a + b


def run_backward(outputs: Sequence[Any], grad_outputs: Sequence[Any], retain_graph: bool,
                 create_graph: bool, inputs: Optional[Sequence[Any]] = None) -> Optional[list]:
    """Backpropagate ``grad_outputs`` from ``outputs``.

    Without ``inputs`` the gradients are accumulated into the ``.grad`` of leaves (and of
    tensors that called ``retain_grad()``), as ``Tensor.backward``. With ``inputs`` they are
    returned instead, one per input (None when unreachable), as ``autograd.grad``.
    """
    grads: Dict[int, list] = {}      # id(node) -> gradient of each of its outputs
    captured: Dict[Any, Any] = {}    # autograd.grad: id(leaf) or (id(node), nr) -> gradient
    want = None
    if inputs is not None:
        want = {}
        for t in inputs:
            want[id(t) if t.grad_fn is None else (id(t.grad_fn), t._output_nr)] = None

    def send(edge_node, nr, leaf, g):
        if edge_node is None:
            if want is None:
                _accumulate_leaf(leaf, g, create_graph)
            elif id(leaf) in want:
                captured[id(leaf)] = _accumulate(captured.get(id(leaf)), g)
        else:
            slot = grads.setdefault(id(edge_node), [None] * len(edge_node.out_meta))
            slot[nr] = _accumulate(slot[nr], g)

    prev, _GradMode.enabled = _GradMode.enabled, create_graph
    try:
        for out, g in zip(outputs, grad_outputs):
            send(out.grad_fn, out._output_nr, out, g)
        for node in _topological_order([o.grad_fn for o in outputs]):
            slot = grads.pop(id(node), None)
            if slot is None:
                continue
            for nr, g in enumerate(slot):
                if want is not None and (id(node), nr) in want and g is not None:
                    captured[(id(node), nr)] = g
                ref = node.retained.get(nr)
                if want is None and ref is not None and ref() is not None and g is not None:
                    t = ref()
                    t.grad = _accumulate(t.grad, g if create_graph else g.detach())
            _backward_node(node, slot, retain_graph, send)
    finally:
        _GradMode.enabled = prev
    if want is None:
        return None
    return [captured.get(id(t) if t.grad_fn is None else (id(t.grad_fn), t._output_nr))
            for t in inputs]


def _backward_node(node: Context, slot: list, retain_graph: bool, send: Callable) -> None:
    Tensor = _Tensor
    grad_outs = []
    for g, (shape, dtype) in zip(slot, node.out_meta):
        if g is None and _is_float(dtype):
            g = Tensor(np.zeros(shape, dtype=dtype))
        grad_outs.append(g)
    if _Anomaly.enabled:
        prev_node, _Anomaly.in_backward_of = _Anomaly.in_backward_of, node
        try:
            in_grads = node.fn.backward(node, *grad_outs)
        finally:
            _Anomaly.in_backward_of = prev_node
    else:
        in_grads = node.fn.backward(node, *grad_outs)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    if len(in_grads) != len(node.edges):
        raise RuntimeError(f"{node.fn.__name__}.backward returned {len(in_grads)} gradients, "
                           f"expected {len(node.edges)} (one per forward argument)")
    if _Anomaly.enabled:
        _check_finite(node.fn.__name__, "backward", [g for g in in_grads if g is not None], (),
                      node.trace)
    for edge, g in zip(node.edges, in_grads):
        if edge is None or g is None:
            continue
        parent, nr, leaf, shape, dtype = edge
        if not isinstance(g, Tensor):
            g = Tensor(np.asarray(g))
        if g.shape != shape:
            g = sum_to_shape(g, shape)
        if g.dtype != dtype:
            g = g.to(dtype)
        send(parent, nr, leaf, g)
    if not retain_graph:
        node.free()


def _accumulate_leaf(leaf: Any, g: Any, create_graph: bool) -> None:
    if create_graph:
        leaf.grad = _accumulate(leaf.grad, g)
    elif leaf.grad is None:
        leaf.grad = _Tensor(np.array(g.data, copy=True))   # own the memory: grads may alias
    else:
        leaf.grad = _Tensor(leaf.grad.data + g.data)


# ----------------------------------------------------------------------------- anomaly helpers

def _user_frame() -> str:
    """The innermost stack frame outside this package: where the user created the op."""
    import os
    import traceback
    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(pkg):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}: {frame.line}'
    return "(unknown)"


def _check_finite(name: str, phase: str, tensors: list, inputs: tuple, trace: Optional[str] = None):
    outer = _Anomaly.in_backward_of
    if outer is not None and phase == "forward":   # an op run by some node's backward formula
        name, phase, trace = outer.fn.__name__, f"backward (in its {name} step)", outer.trace
    for t in tensors:
        if _is_float(t.dtype) and not np.all(np.isfinite(t.data)):
            shapes = [tuple(a.shape) for a in inputs if hasattr(a, "shape")]
            where = trace or _user_frame()
            raise RuntimeError(
                f"anomaly detected: {name} {phase} produced NaN or inf (output shape {tuple(t.shape)}"
                f"{', input shapes ' + str(shapes) if shapes else ''}). The op was created at: {where}")
