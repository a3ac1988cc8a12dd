"""Debugging helpers for long training runs: live graph nodes, process memory, graph leaks.

The autograd graph (see ``engine.py``) is a set of ``Context`` nodes, one per recorded op call.
A node lives as long as something refers to it: the output Tensor's ``grad_fn``, or another
node's edge. After ``loss.backward()`` the saved arrays are freed, and when the loop rebinds
``loss`` (and the model's outputs) on the next step, the whole graph of the previous step goes
away. The classic leak keeps it alive instead::

    total_loss = 0
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        loss.backward(); opt.step(); opt.zero_grad()
        total_loss += loss          # LEAK: total_loss's graph now holds every step's graph
        total_loss += loss.item()   # right: a Python float, no graph

(``loss.detach()`` works too.) Tools here:

* :func:`live_graph_nodes` counts the graph nodes alive in the process;
* :func:`graph_size` counts the nodes reachable from one tensor;
* :func:`rss_bytes` is the process's resident memory;
* :func:`warn_on_graph_leaks` (a context manager) watches the optimizer steps run inside it and
  emits a :class:`GraphLeakWarning` when graph nodes pile up across steps.

Everything here only reads the graph; nothing changes how training runs.
"""
from __future__ import annotations

import gc
import os
import sys
import warnings
import weakref
from typing import Any, Callable, List, Optional

from .engine import Context

__all__ = ["live_graph_nodes", "graph_size", "rss_bytes", "GraphLeakWarning", "warn_on_graph_leaks"]


def _all_nodes() -> List[Context]:
    # Every live Context is tracked by the cyclic garbage collector (it has a __dict__), and an
    # instance of a Python class refers to its class in the collector's eyes, so asking the
    # collector for the referrers of Context finds them all (also while gc is disabled). The
    # heap walk happens in C: about 3x faster than filtering gc.get_objects() in Python.
    return [o for o in gc.get_referrers(Context) if type(o) is Context]


def live_graph_nodes() -> int:
    """How many autograd graph nodes (``Context`` objects, one per recorded op call) are alive.

    Walks every object tracked by the garbage collector (tens of milliseconds in a process with
    PyTorch loaded): call it every few steps, not in the inner loop. It does not run a collection
    itself; call ``gc.collect()`` first to count only what is still reachable.
    """
    return len(_all_nodes())


def graph_size(tensor: Any) -> int:
    """Number of graph nodes reachable from ``tensor.grad_fn`` (0 for a leaf or a detached tensor).

    ``graph_size(total_loss)`` growing from step to step is the signature of the leak described
    in this module's docstring.
    """
    root = getattr(tensor, "grad_fn", None)
    if root is None:
        return 0
    seen = {id(root)}
    stack = [root]
    while stack:
        node = stack.pop()
        for edge in node.edges:
            if edge is not None and edge[0] is not None and id(edge[0]) not in seen:
                seen.add(id(edge[0]))
                stack.append(edge[0])
    return len(seen)


def rss_bytes() -> int:
    """Resident set size of this process in bytes (current, from ``/proc/self/statm``).

    Where ``/proc`` does not exist (macOS, Windows) it falls back to the *peak* resident size
    from ``resource.getrusage``, which can only grow; on Windows it raises OSError.
    """
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        raise OSError("rss_bytes: no /proc/self/statm and no resource module on this platform") from None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # bytes on macOS, KiB on Linux


def _user_stacklevel() -> int:
    """``stacklevel`` for warnings.warn that points at the first caller outside tinygrad_cnn."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class GraphLeakWarning(UserWarning):
    """Graph nodes survive optimizer steps in growing numbers: something keeps old graphs alive."""


class warn_on_graph_leaks:
    """Context manager: warn when autograd graphs outlive the optimizer steps that used them.

    After every ``Optimizer.step()`` run inside the block, each live graph node is stamped with
    the step at which it was first seen. A node still alive ``patience`` steps later belongs to
    a graph that survived that many steps. One such graph is fine (say, an output kept for a
    plot); a *growing* number of them is the ``total_loss += loss`` leak, and triggers one
    :class:`GraphLeakWarning` (``warnings.simplefilter("error", GraphLeakWarning)`` turns it
    into an exception). Use it while debugging: each step walks the objects of the process
    (tens of milliseconds with PyTorch loaded)::

        with tinygrad_cnn.debug.warn_on_graph_leaks():
            for x, y in loader:
                ...
                optimizer.step()

    Attributes after (or during) the block: ``steps`` (steps seen), ``old_nodes`` (per step,
    how many nodes had survived ``patience`` steps), ``warned`` (whether it warned).
    """

    _active: List["warn_on_graph_leaks"] = []
    _original_step: Optional[Callable] = None

    def __init__(self, patience: int = 2) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"warn_on_graph_leaks: patience must be a positive int, got {patience!r}")
        self.patience = patience
        self.steps = 0
        self.old_nodes: List[int] = []
        self.warned = False
        self._first_seen: "weakref.WeakKeyDictionary[Context, int]" = weakref.WeakKeyDictionary()

    # -- observing Optimizer.step ----------------------------------------------------------
    # With PyTorch's global hook API (``optim.optimizer.register_optimizer_step_post_hook``) the
    # observer is a hook; without it, ``Optimizer.step`` is wrapped while any block is active.
    def __enter__(self) -> "warn_on_graph_leaks":
        from .optim import optimizer as optimizer_module
        cls = warn_on_graph_leaks
        register = getattr(optimizer_module, "register_optimizer_step_post_hook", None)
        if register is not None:
            self._handle = register(lambda optimizer, args, kwargs: self._after_step())
        else:
            if not cls._active:
                Optimizer = optimizer_module.Optimizer
                original = Optimizer.step
                cls._original_step = original

                def step(optimizer, *args, **kwargs):
                    result = original(optimizer, *args, **kwargs)
                    for watcher in list(cls._active):
                        watcher._after_step()
                    return result

                step.__doc__ = original.__doc__
                step.__wrapped__ = original
                Optimizer.step = step
            cls._active.append(self)
        return self

    def __exit__(self, *exc: Any) -> bool:
        from .optim.optimizer import Optimizer
        cls = warn_on_graph_leaks
        if getattr(self, "_handle", None) is not None:
            self._handle.remove()
            self._handle = None
            return False
        cls._active.remove(self)
        if not cls._active and cls._original_step is not None:
            Optimizer.step = cls._original_step
            cls._original_step = None
        return False

    # -- the check ------------------------------------------------------------------------
    def _after_step(self) -> None:
        self.steps += 1
        step = self.steps
        old = 0
        for node in _all_nodes():
            first = self._first_seen.get(node)
            if first is None:
                self._first_seen[node] = step
            elif step - first >= self.patience:
                old += 1
        self.old_nodes.append(old)
        growing = len(self.old_nodes) >= 2 and old > self.old_nodes[-2] > 0
        if growing and not self.warned:
            self.warned = True
            warnings.warn(
                f"graph leak: {old} autograd graph nodes have survived at least {self.patience} "
                f"optimizer steps, up from {self.old_nodes[-2]} one step earlier (step {step}). "
                "Something keeps every step's graph alive, typically `total_loss += loss`: "
                "accumulate `loss.item()` (a float) or `loss.detach()` instead.",
                GraphLeakWarning, stacklevel=_user_stacklevel())
