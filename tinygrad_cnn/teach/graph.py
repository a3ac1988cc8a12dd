"""See the computation graph: which ops ran, what shapes flowed, and what backward sends back.

    loss = model(x).log_softmax(1)[0, 3]
    dot = draw_graph(loss, params=model)        # Graphviz DOT text (a str)
    save_graph(dot, "graph.svg")                # .dot always; .svg/.png when Graphviz is installed

Each op of the graph is one box: its name (``conv2d``), the Function that ran (``ConvNd``), the
output shape and dtype and, when ``show_grads`` is on, the norm of the gradient that arrived at
its output. Leaves are ellipses named from ``params`` (a module's parameter names) or from
``tensor.name``. Every arrow is labelled with the op that *backward* used to compute the gradient
flowing back along it: the arrow from a conv's input is labelled ``grad = conv_transpose``, the
one from its weight ``grad = conv_weight_grad`` -- the conv family closes under differentiation.

The gradients are found by :func:`trace_backward`, which backpropagates exactly as
``tinygrad_cnn.engine.run_backward`` does but one node at a time, with recording on, so that
each gradient remembers which op produced it. It needs the graph's saved tensors: draw before
``loss.backward()``, or call ``loss.backward(retain_graph=True)``. Nothing here touches ``.grad``.

To group the boxes by module (a cluster per layer, nested as the modules are), run the forward
pass inside :func:`record_modules`::

    with record_modules(model) as modules:
        loss = F.cross_entropy(model(x), y)
    dot = draw_graph(loss, params=model, modules=modules)
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..engine import Context, enable_grad, sum_to_shape
from ..tensor import Tensor

__all__ = ["draw_graph", "save_graph", "trace_backward", "record_modules", "ModuleRecord", "BackwardStep",
           "op_name", "GraphvizNotFound"]


# ----------------------------------------------------------------------------- naming

_SPECIAL_NAMES = {"MatMul": "matmul", "ReLU": "relu", "LeakyReLU": "leaky_relu", "GetItem": "getitem"}


def op_name(function_name: str) -> str:
    """A Function's class name as a PyTorch-style op name: ``ConvTransposeNd`` -> ``conv_transpose``.

    ``Nd`` (the 1d/2d/3d-generic suffix) is dropped and CamelCase becomes snake_case.
    """
    if function_name in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[function_name]
    base = function_name.replace("Nd", "")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()


def _forward_label(node: Context) -> str:
    """The op's name as a user would call it: ``conv2d``, ``max_pool2d``, ``add``."""
    name = op_name(node.fn.__name__)
    if node.fn.__name__.endswith("Nd") and node.out_meta:
        spatial = len(node.out_meta[0][0]) - 2
        if 1 <= spatial <= 3:
            name = f"{name}{spatial}d"
    return name


def _fmt_shape(shape: Tuple[int, ...]) -> str:
    return str(tuple(int(s) for s in shape))


def _fmt_norm(x: float) -> str:
    return f"{x:.3g}"


# ----------------------------------------------------------------------------- tracing backward

@dataclass
class BackwardStep:
    """What one node received and sent during :func:`trace_backward`.

    ``grad_outputs[i]``: the gradient of the loss w.r.t. the node's i-th output (a Tensor).
    ``grad_inputs[j]``: the gradient it sends to its j-th input (None when that input needs none).
    ``made_by[j]``: the Function (class name) that computed ``grad_inputs[j]``, ``"identity"`` when
    backward passed the upstream gradient through unchanged, or None.
    """
    node: Context
    grad_outputs: List[Optional[Tensor]]
    grad_inputs: List[Optional[Tensor]]
    made_by: List[Optional[str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.node.fn.__name__


def _nodes_in_order(root: Context) -> List[Context]:
    """Every node reachable from ``root``, each before the nodes that feed it (backward order)."""
    order: List[Context] = []
    seen = {id(root)}
    stack: List[Tuple[Context, Iterator]] = [(root, iter(root.edges))]
    while stack:
        node, edges = stack[-1]
        for e in edges:
            if e is not None and e[0] is not None and id(e[0]) not in seen:
                seen.add(id(e[0]))
                stack.append((e[0], iter(e[0].edges)))
                break
        else:
            stack.pop()
            order.append(node)          # post-order: inputs first
    order.reverse()                     # so the output comes first
    return order


def _made_by(g: Tensor, upstream: List[Optional[Tensor]]) -> Optional[str]:
    if any(g is u for u in upstream if u is not None):
        return "identity"
    if g.grad_fn is None:
        return None
    return g.grad_fn.fn.__name__


def trace_backward(output: Tensor, gradient: Optional[Any] = None) -> Tuple[List[BackwardStep], Dict[int, Tensor]]:
    """Backpropagate from ``output`` one node at a time and record every gradient.

    Returns ``(steps, leaf_grads)``: ``steps`` in the order backward visits the nodes (output
    first), and ``leaf_grads`` mapping ``id(leaf)`` to the gradient that reached that leaf (all
    gradients returned detached; internally they are recorded so each knows its op).
    ``gradient`` defaults to ones (``output`` should then be a scalar, as for ``backward()``).
    The leaves' ``.grad`` are not touched and the graph is kept, so ``output.backward()`` still
    works afterwards.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"trace_backward: output must be a Tensor, got {type(output).__name__}")
    if output.grad_fn is None:
        raise ValueError("trace_backward: output has no grad_fn: nothing was recorded (does any input "
                         "require grad? was it computed under no_grad()?)")
    if gradient is None:
        if output.numel() != 1:
            raise ValueError(f"trace_backward: output has shape {tuple(output.shape)}; pass gradient= of "
                             f"that shape for a non-scalar output")
        gradient = np.ones(output.shape, dtype=output.dtype)
    seed_data = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient, dtype=output.dtype)
    if seed_data.shape != output.shape:
        raise ValueError(f"trace_backward: gradient has shape {seed_data.shape}, output has {tuple(output.shape)}")
    # The seed requires grad so that every gradient computed from it records the op that made it.
    seed = Tensor(np.array(seed_data, copy=True), requires_grad=True)

    root = output.grad_fn
    grads: Dict[int, List[Optional[Tensor]]] = {id(root): [None] * len(root.out_meta)}
    grads[id(root)][output._output_nr] = seed
    leaf_grads: Dict[int, Tensor] = {}
    steps: List[BackwardStep] = []
    with enable_grad():
        for node in _nodes_in_order(root):
            if node.freed:
                raise RuntimeError(
                    f"trace_backward: the graph was freed by an earlier backward() (at {node.name()}). "
                    "Draw or trace before calling backward(), or call backward(retain_graph=True).")
            slot = grads.pop(id(node), [None] * len(node.out_meta))
            grad_outs = [g if g is not None or dtype.kind != "f" else Tensor(np.zeros(shape, dtype=dtype))
                         for g, (shape, dtype) in zip(slot, node.out_meta)]
            in_grads = node.fn.backward(node, *grad_outs)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            step = BackwardStep(node, [g.detach() if g is not None else None for g in grad_outs], [], [])
            for edge, g in zip(node.edges, in_grads):
                if edge is None or g is None:
                    step.grad_inputs.append(None)
                    step.made_by.append(None)
                    continue
                parent, nr, leaf, shape, dtype = edge
                if not isinstance(g, Tensor):
                    g = Tensor(np.asarray(g))
                step.made_by.append(_made_by(g, grad_outs))
                if g.shape != tuple(shape):         # the engine's broadcast rule, in the same place
                    g = sum_to_shape(g, shape)
                if g.dtype != dtype:
                    g = g.to(dtype)
                step.grad_inputs.append(g.detach())
                if parent is None:
                    leaf_grads[id(leaf)] = g.detach() if id(leaf) not in leaf_grads else \
                        Tensor(leaf_grads[id(leaf)].data + g.data)
                else:
                    pslot = grads.setdefault(id(parent), [None] * len(parent.out_meta))
                    pslot[nr] = g if pslot[nr] is None else pslot[nr] + g
            steps.append(step)
    return steps, leaf_grads


# ----------------------------------------------------------------------------- module grouping

def _tensors_in(obj: Any) -> List[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors_in(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors_in(o)]
    return []


class ModuleRecord(dict):
    """``id(node) -> (module name, module class name, node)``, plus ``classes``: the class name of
    every module of the model by dotted name (for labelling clusters at any depth)."""

    def __init__(self, classes: Iterable[Tuple[str, str]]):
        super().__init__()
        self.classes: Dict[str, str] = dict(classes)


@contextlib.contextmanager
def record_modules(model: Any, **named: Any) -> Iterator["ModuleRecord"]:
    """Remember which module created each graph node while the forward pass runs inside the block.

    Yields a dict ``id(node) -> (module name, module class name, node)`` for :func:`draw_graph`'s
    ``modules=``. A node belongs to the innermost module whose forward created it (children's
    hooks run before their parent's, so the first module to claim a node keeps it). Modules
    outside ``model`` can be named too, e.g. the loss: ``record_modules(net, loss=criterion)``.
    """
    everything = [("", model)] + list(named.items())
    for label, m in everything:
        if not hasattr(m, "named_modules"):
            raise TypeError(f"record_modules: {label or 'model'} must be an nn.Module, got {type(m).__name__}")
    pairs = [(name, m) for label, top in everything for name, m in top.named_modules(prefix=label)]
    owner = ModuleRecord((name, type(m).__name__) for name, m in pairs)

    def make_hook(name: str):
        def hook(module, inputs, output):
            stop = {id(t.grad_fn) for t in _tensors_in(inputs) if t.grad_fn is not None}
            todo = [t.grad_fn for t in _tensors_in(output) if t.grad_fn is not None]
            seen = set()
            while todo:
                node = todo.pop()
                if id(node) in stop or id(node) in seen:
                    continue
                seen.add(id(node))
                owner.setdefault(id(node), (name, type(module).__name__, node))
                todo.extend(e[0] for e in node.edges if e is not None and e[0] is not None)
        return hook

    handles = [m.register_forward_hook(make_hook(name)) for name, m in pairs]
    try:
        yield owner
    finally:
        for h in handles:
            h.remove()


# ----------------------------------------------------------------------------- DOT

def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _param_names(params: Any) -> Dict[int, str]:
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items: Iterable = params.named_parameters()
    elif isinstance(params, dict):
        items = params.items()
    else:
        items = params
    names = {}
    for name, t in items:
        names[id(t)] = str(name)
    return names


def _norm(t: Optional[Tensor]) -> float:
    if t is None:
        return 0.0
    return float(np.sqrt(np.sum(np.square(t.data.astype(np.float64)))))


def draw_graph(output: Tensor, params: Any = None, modules: Optional[Dict[int, tuple]] = None,
               show_grads: bool = True, gradient: Optional[Any] = None, title: Optional[str] = None,
               collapse: Union[bool, int] = False) -> str:
    """The graph that produced ``output`` as Graphviz DOT text.

    Args:
        output: the Tensor at the end of the graph (a loss, usually).
        params: names for leaves: an ``nn.Module`` (its ``named_parameters()``), a dict
            ``name -> Tensor`` or (name, Tensor) pairs. Other leaves use ``tensor.name`` if set.
        modules: from :func:`record_modules`; groups the ops into one cluster per module.
        show_grads: run :func:`trace_backward` and show the gradient norm at every node and leaf,
            and label each arrow with the op that computed the gradient flowing back along it.
            That needs the graph's saved tensors: draw before ``backward()``, or after
            ``backward(retain_graph=True)``. After a plain ``backward()`` (graph freed) only the
            leaves' ``.grad`` norms are shown, and the caption says why.
        gradient: the upstream gradient for a non-scalar ``output`` (default: ones).
        title: a caption.
        collapse: with ``modules``, draw each module as one box instead of its ops: ``True`` for the
            innermost modules (one box per layer), an int ``d`` for the modules ``d`` names deep
            (``collapse=1`` on a ResNet gives one box per stage: ``layer1``, ``layer2``, ...). Each
            box shows the module's output shape, gradient norm and how many ops it holds.

    Returns the DOT source (a str); :func:`save_graph` writes and renders it.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: output must be a Tensor, got {type(output).__name__}")
    if output.grad_fn is None:
        raise ValueError("draw_graph: output has no grad_fn, so there is no graph to draw (make an input or "
                         "parameter require grad, and do not compute under no_grad())")
    names = _param_names(params)
    nodes = _nodes_in_order(output.grad_fn)
    ids = {id(n): f"op{i}" for i, n in enumerate(nodes)}
    steps, leaf_grads = None, {}
    if show_grads and any(n.freed for n in nodes):
        # backward() already ran and freed the graph: the leaves' .grad is all that is left
        for n in nodes:
            for e in n.edges:
                if e is not None and e[0] is None and e[2].grad is not None:
                    leaf_grads[id(e[2])] = e[2].grad
        note = ("gradient norms of the leaves only (from .grad): backward() freed the graph; "
                "draw before backward or use backward(retain_graph=True) to see every op's gradient")
        title = f"{title}\n{note}" if title else note
    elif show_grads:
        steps, leaf_grads = trace_backward(output, gradient)
    by_node = {id(s.node): s for s in steps} if steps else {}

    lines = ["digraph tinygrad_cnn {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11' +
             (f", label={_quote(title)}, labelloc=t" if title else "") + "];",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    leaf_lines: List[str] = []
    edge_lines: List[str] = []
    leaves: Dict[int, str] = {}
    n_inputs = 0

    def leaf_id(t: Tensor) -> str:
        nonlocal n_inputs
        if id(t) in leaves:
            return leaves[id(t)]
        lid = f"leaf{len(leaves)}"
        leaves[id(t)] = lid
        name = names.get(id(t)) or getattr(t, "name", None)
        is_param = id(t) in names or type(t).__name__ == "Parameter"
        if not name:
            name = "parameter" if is_param else ("input" if n_inputs == 0 else f"input{n_inputs}")
            n_inputs += 0 if is_param else 1
        label = f"{name}\n{_fmt_shape(t.shape)} {t.dtype}"
        if show_grads and id(t) in leaf_grads:
            label += f"\n|grad| = {_fmt_norm(_norm(leaf_grads[id(t)]))}"
        colour = "#cfe2ff" if is_param else "#e9ecef"
        leaf_lines.append(f"  {lid} [shape=ellipse, style=filled, fillcolor=\"{colour}\", label={_quote(label)}];")
        return lid

    classes: Dict[str, str] = dict(getattr(modules, "classes", {}) or {})
    for name, cls, *_ in (modules or {}).values():
        classes.setdefault(name, cls)

    def group_of(node: Context) -> Optional[str]:
        if not collapse or not modules or id(node) not in modules:
            return None
        name = modules[id(node)][0]
        if not isinstance(collapse, bool):
            name = ".".join(name.split(".")[:int(collapse)])
        return name or None

    groups = {id(n): group_of(n) for n in nodes}
    box = {id(n): (ids[id(n)] if groups[id(n)] is None else "mod_" + re.sub(r"\W", "_", groups[id(n)]))
           for n in nodes}
    members: Dict[str, List[Context]] = {}
    exits: Dict[str, Context] = {}      # per group, the op whose output leaves the module
    for n in nodes:
        if groups[id(n)] is not None:
            members.setdefault(groups[id(n)], []).append(n)
    for n in nodes:                     # output first: the first exit found is the module's last op
        for e in n.edges:
            if e is not None and e[0] is not None and groups[id(e[0])] is not None \
                    and groups[id(e[0])] != groups[id(n)]:
                exits.setdefault(groups[id(e[0])], e[0])
        if n is output.grad_fn and groups[id(n)] is not None:
            exits.setdefault(groups[id(n)], n)

    def grad_norm(node: Context) -> Optional[float]:
        step = by_node.get(id(node))
        if step is None:
            return None
        return math.sqrt(sum(_norm(g) ** 2 for g in step.grad_outputs if g is not None))

    node_lines: Dict[int, str] = {}
    group_params: Dict[str, Dict[int, Tensor]] = {}
    group_line: Dict[str, Tuple[int, str, str, str]] = {}   # group -> (node id, box id, label, fill)
    for node in nodes:
        nid = box[id(node)]
        group = groups[id(node)]
        if group is None:
            label = f"{_forward_label(node)}  [{node.fn.__name__}]"
            for shape, dtype in node.out_meta:
                label += f"\n{_fmt_shape(shape)} {dtype}"
            norm = grad_norm(node)
            fill = "#ffe8a3" if node is output.grad_fn else "#ffffff"
            style = "rounded,filled"
        elif node is exits.get(group, members[group][0]):
            ops = members[group]
            label = f"{group}" + (f" ({classes[group]})" if group in classes else "")
            label += f"\n{len(ops)} op{'s' if len(ops) > 1 else ''}: " + ", ".join(
                dict.fromkeys(_forward_label(o) for o in reversed(ops)))
            shape, dtype = node.out_meta[0]
            label += f"\n{_fmt_shape(shape)} {dtype}"
            norm = grad_norm(node)
            fill = "#ffe8a3" if node is output.grad_fn else "#eef6e8"
            style = "filled"
        else:
            node_lines[id(node)] = ""
            norm = None
            label = None
        if label is not None:
            if norm is not None:
                label += f"\n|grad| = {_fmt_norm(norm)}"
            node_lines[id(node)] = (f"{nid} [shape=box, style=\"{style}\", fillcolor=\"{fill}\", "
                                    f"label={_quote(label)}];")
            if group is not None:
                group_line[group] = (id(node), nid, label, fill)
        step = by_node.get(id(node))
        for j, edge in enumerate(node.edges):
            if edge is None:
                continue
            parent, nr, leaf, shape, dtype = edge
            if parent is None and group is not None and (id(leaf) in names or type(leaf).__name__ == "Parameter"):
                group_params.setdefault(group, {})[id(leaf)] = leaf     # counted in the module's box
                continue
            src = box[id(parent)] if parent is not None else leaf_id(leaf)
            if src == nid:
                continue                 # inside a collapsed module
            attrs = []
            if step is not None and step.grad_inputs[j] is not None:
                made = step.made_by[j]
                glabel = f"grad = {op_name(made) if made not in (None, 'identity') else (made or '?')}"
                glabel += f"\n|g| = {_fmt_norm(_norm(step.grad_inputs[j]))}"
                attrs.append(f"label={_quote(glabel)}")
            edge_lines.append(f"  {src} -> {nid}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")

    for group, (node_id, nid, label, fill) in group_line.items():   # add the modules' parameters
        held = group_params.get(group, {})
        if held:
            count = sum(t.numel() for t in held.values())
            label += f"\n{count:,} parameters"
            if show_grads:
                total = math.sqrt(sum(_norm(leaf_grads.get(k)) ** 2 for k in held))
                label += f", |grad| = {_fmt_norm(total)}"
            node_lines[node_id] = (f"{nid} [shape=box, style=\"filled\", fillcolor=\"{fill}\", "
                                   f"label={_quote(label)}];")

    # ops (or collapsed modules), nested in clusters by module name ("layer1.0.conv1" sits in
    # layer1 > layer1.0 > layer1.0.conv1); a collapsed module sits in its parent's cluster
    tree: Dict[str, Any] = {"nodes": [], "children": {}}
    for node in nodes:
        if not node_lines[id(node)]:
            continue
        name = ""
        if modules and id(node) in modules:
            name = modules[id(node)][0]
        if groups[id(node)] is not None:
            name = ".".join(groups[id(node)].split(".")[:-1])
        where = tree
        if name:
            parts = name.split(".")
            for k in range(len(parts)):
                prefix = ".".join(parts[:k + 1])
                where = where["children"].setdefault(prefix, {"nodes": [], "children": {}})
        where["nodes"].append(node_lines[id(node)])

    def emit(branch: Dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        for line in branch["nodes"]:
            lines.append(pad + line)
        for k, (prefix, sub) in enumerate(branch["children"].items()):
            cid = re.sub(r"\W", "_", prefix)
            label = prefix + (f" ({classes[prefix]})" if prefix in classes else "")
            lines.append(f"{pad}subgraph cluster_{cid} {{")
            lines.append(f"{pad}  label={_quote(label)}; style=\"rounded,dashed\"; color=\"#888888\";")
            emit(sub, depth + 1)
            lines.append(f"{pad}}}")

    emit(tree, 1)
    lines.extend(leaf_lines)
    lines.extend(edge_lines)
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- rendering

class GraphvizNotFound(RuntimeError):
    """Rendering DOT to a picture needs Graphviz's ``dot`` program."""


def save_graph(dot: str, path: str) -> str:
    """Write ``dot`` to ``path``.

    ``path`` ending in ``.dot``/``.gv`` writes the text only. Ending in ``.svg``, ``.png`` or ``.pdf``
    writes the text next to it (same name, ``.dot``) and renders the picture with Graphviz
    (its ``dot`` program, which the optional ``graphviz`` Python package also needs); without it
    raises :class:`GraphvizNotFound` after the ``.dot`` file is written. Returns ``path``.
    """
    root, ext = os.path.splitext(path)
    ext = ext.lower().lstrip(".")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    dot_path = path if ext in ("dot", "gv") else root + ".dot"
    with open(dot_path, "w", encoding="utf-8") as f:
        f.write(dot)
    if ext in ("dot", "gv"):
        return path
    if ext not in ("svg", "png", "pdf"):
        raise ValueError(f"save_graph: unknown picture format {ext!r} in {path!r}; use .dot, .svg, .png or .pdf")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            f"save_graph: wrote {dot_path}, but rendering {ext.upper()} needs Graphviz's `dot` program, "
            "which is not installed (apt install graphviz / brew install graphviz; the optional "
            "`pip install graphviz` package also needs it). You can paste the .dot text into any "
            "Graphviz viewer instead.")
    done = subprocess.run([exe, f"-T{ext}", dot_path, "-o", path], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"save_graph: `dot -T{ext}` failed on {dot_path}: {done.stderr.strip()}")
    return path
