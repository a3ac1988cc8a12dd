"""Backpropagation by hand, checked by the engine and by finite differences.

    python demos/backprop_by_hand.py --out runs/backprop

1. A tiny net, x (1, 3) -> h = x W1 + b1 -> a = tanh(h) -> z = a W2 + b2 -> loss = (z - t)^2,
   runs forward. Then, node by node in backward order, the script prints the upstream gradient,
   the node's local derivative, and the gradient it passes on -- computed by hand with the chain
   rule in NumPy -- and checks each against (a) what the engine's own backward computed for that
   node (tinygrad_cnn.teach.trace_backward, which also names the op that computed it) and
   (b) gradcheck of that node's function on its own (finite differences, float64).
2. A Hessian-vector product H v of a small MLP's loss with create_graph=True (the gradient is
   itself differentiable), checked against finite differences of gradients and against the full
   Hessian built column by column.
3. The graph of the tiny net and of LeNet-5 (grouped by module, and with one box per layer) as
   Graphviz DOT, with gradient norms and the op each gradient was computed by (a conv's input
   gradient by conv_transpose, a max-pool's by max_unpool); rendered to SVG when Graphviz is
   installed.

Files (in --out): tiny_graph.dot, lenet_graph.dot, lenet_layers.dot (and .svg with Graphviz).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.teach import draw_graph, op_name, record_modules, save_graph, trace_backward
from tinygrad_cnn.teach.graph import GraphvizNotFound
from tinygrad_cnn.testing import gradcheck

np.set_printoptions(precision=4, suppress=True)


def tiny_values(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(1, 3)), "W1": rng.normal(size=(3, 2)) * 0.8, "b1": rng.normal(size=(2,)) * 0.1,
            "W2": rng.normal(size=(2, 1)) * 0.8, "b2": rng.normal(size=(1,)) * 0.1, "t": np.array([[0.5]])}


# Each node of the tiny net: (name, formula, function of its inputs, input names, hand-written VJP).
# The VJP takes the upstream gradient g and the input values and returns one gradient per input.
NODES = [
    ("xW1", "x @ W1", lambda x, W1: x @ W1, ("x", "W1"),
     lambda g, x, W1: (g @ W1.T, x.T @ g)),
    ("h", "xW1 + b1", lambda xW1, b1: xW1 + b1, ("xW1", "b1"),
     lambda g, xW1, b1: (g, g.sum(0))),
    ("a", "tanh(h)", lambda h: h.tanh(), ("h",),
     lambda g, h: (g * (1 - np.tanh(h) ** 2),)),
    ("aW2", "a @ W2", lambda a, W2: a @ W2, ("a", "W2"),
     lambda g, a, W2: (g @ W2.T, a.T @ g)),
    ("z", "aW2 + b2", lambda aW2, b2: aW2 + b2, ("aW2", "b2"),
     lambda g, aW2, b2: (g, g.sum(0))),
    ("d", "z - t", lambda z, t: z - t, ("z", "t"),
     lambda g, z, t: (g, -g)),
    ("sq", "d * d", lambda d1, d2: d1 * d2, ("d", "d"),
     lambda g, d1, d2: (g * d2, g * d1)),
    ("loss", "sum(sq)", lambda sq: sq.sum(), ("sq",),
     lambda g, sq: (g * np.ones_like(sq),)),
]
LOCAL = {"a": "1 - tanh(h)^2", "sq": "d for each factor (2 d in total)", "loss": "1 for every element",
         "xW1": "dL/dx = g W1^T, dL/dW1 = x^T g",
         "aW2": "dL/da = g W2^T, dL/dW2 = a^T g", "h": "1 (and sum over rows for b1)",
         "z": "1 (and sum over rows for b2)", "d": "+1 for z, -1 for t"}


def forward_tiny(values: dict, requires_grad: bool = True):
    """Run the net with Tensors; returns (tensors by name, the loss)."""
    t = {k: tc.Tensor(v, requires_grad=requires_grad and k != "t") for k, v in values.items()}
    for name, _, fn, ins, _ in NODES:
        t[name] = fn(*[t[i] for i in ins])
    return t, t["loss"]


def backprop_tiny(seed: int) -> dict:
    values = tiny_values(seed)
    tensors, loss = forward_tiny(values)
    fwd = {k: v.data for k, v in tensors.items()}
    print("Forward pass of the tiny net:")
    for name, formula, _, _, _ in NODES:
        print(f"  {name:5s}= {formula:12s} = {fwd[name].ravel()}")

    # The engine's view: every node's gradients, in the order its backward visits them.
    steps, _ = trace_backward(loss)
    print("\nThe engine's backward order (node: the op that computed each input's gradient):")
    for s in steps:
        made = ", ".join(op_name(m) if m not in (None, "identity") else str(m)
                         for m, e in zip(s.made_by, s.node.edges) if e is not None)
        print(f"  {s.name:8s} -> [{made}]")
    node_of = {id(s.node): s for s in steps}

    print("\nBackward by hand, node by node (g = dL/d(node output), the upstream gradient):")
    upstream = {"loss": np.ones(())}
    worst = 0.0
    checked = 0
    for name, formula, fn, ins, vjp in reversed(NODES):
        g = upstream[name]
        grads = vjp(g, *[fwd[i] for i in ins])
        print(f"  {name} = {formula}: g = {np.ravel(g)}, local derivative {LOCAL[name]}")
        step = node_of[id(tensors[name].grad_fn)]
        # the engine's node has one edge per forward argument, in the same order as `ins`
        for pos, (i, gi) in enumerate(zip(ins, grads)):
            upstream[i] = upstream.get(i, 0) + gi
            engine = step.grad_inputs[pos]
            if engine is None:
                print(f"      dL/d{i:3s}: not needed ({i} does not require grad)")
                continue
            err = float(np.abs(engine.data - gi).max())
            worst = max(worst, err)
            made = step.made_by[pos]
            made = op_name(made) if made not in (None, "identity") else made
            print(f"      dL/d{i:3s} = {np.ravel(gi)}   engine ({made}): {np.ravel(engine.data)}   |diff| {err:.1e}")
        # the node on its own, against finite differences
        leaves = [tc.Tensor(np.array(fwd[i], dtype=np.float64), requires_grad=i != "t") for i in ins]
        gradcheck(fn, leaves)
        checked += 1
    print(f"  every hand gradient matches the engine (worst |diff| {worst:.1e}); "
          f"gradcheck passed for all {checked} nodes")

    params = ["W1", "b1", "W2", "b2"]
    whole = [tc.Tensor(values[k], requires_grad=True) for k in params]

    def loss_of(W1, b1, W2, b2):
        a = (tc.Tensor(values["x"]) @ W1 + b1).tanh()
        d = a @ W2 + b2 - tc.Tensor(values["t"])
        return (d * d).sum()
    gradcheck(loss_of, whole)
    print("gradcheck of the whole loss with respect to W1, b1, W2, b2: passed")
    loss.backward()
    for k in params:
        assert np.allclose(tensors[k].grad.data, upstream[k]), k
    return {"loss": float(loss.item()), "worst": worst, "grads": {k: upstream[k] for k in params}}


def hessian_vector_product(seed: int) -> dict:
    """H v for a 2-4-1 tanh MLP's mean squared error on 5 points, three ways."""
    rng = np.random.default_rng(seed + 1)
    X, Y = tc.Tensor(rng.normal(size=(5, 2))), tc.Tensor(rng.normal(size=(5, 1)))
    shapes = [(2, 4), (4,), (4, 1), (1,)]
    theta = rng.normal(size=sum(int(np.prod(s)) for s in shapes)) * 0.7
    v = rng.normal(size=theta.shape)

    def unpack(flat):
        out, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(flat[i:i + n].reshape(s))
            i += n
        return out

    def loss_and_params(flat):
        ps = [tc.Tensor(p, requires_grad=True) for p in unpack(flat)]
        W1, b1, W2, b2 = ps
        pred = (X @ W1 + b1).tanh() @ W2 + b2
        return ((pred - Y) ** 2).mean(), ps

    def gradient(flat):
        loss, ps = loss_and_params(flat)
        return np.concatenate([g.data.ravel() for g in grad(loss, ps)])

    loss, ps = loss_and_params(theta)
    gs = grad(loss, ps, create_graph=True)                     # differentiable gradients
    vs = [tc.Tensor(p) for p in unpack(v)]
    gv = sum((g * vi).sum() for g, vi in zip(gs, vs))          # <grad, v>, a scalar with a graph
    hv = np.concatenate([h.data.ravel() for h in grad(gv, ps)])

    eps = 1e-5
    fd = (gradient(theta + eps * v) - gradient(theta - eps * v)) / (2 * eps)
    n = theta.size
    H = np.stack([(gradient(theta + eps * e) - gradient(theta - eps * e)) / (2 * eps) for e in np.eye(n)], 1)
    print(f"\nHessian-vector product of a 2-4-1 tanh MLP ({n} parameters) with create_graph=True:")
    print(f"  H v (double backward)       = {hv[:6]} ...")
    print(f"  finite differences of grads = {fd[:6]} ...   max |diff| {np.abs(hv - fd).max():.1e}")
    print(f"  full Hessian (column by column) @ v, max |diff| {np.abs(H @ v - hv).max():.1e}; "
          f"H symmetric to {np.abs(H - H.T).max():.1e}")
    return {"hv": hv, "fd": fd, "err": float(np.abs(hv - fd).max())}


def graphs(out: str, seed: int, lenet: bool) -> list:
    written = []
    values = tiny_values(seed)
    tensors, loss = forward_tiny(values)
    for k in ("x", "W1", "b1", "W2", "b2"):
        tensors[k].name = k
    dot = draw_graph(loss, title="tiny net: loss = (tanh(x W1 + b1) W2 + b2 - t)^2")
    written.append(_save(dot, os.path.join(out, "tiny_graph")))
    if lenet:
        from tinygrad_cnn import models
        from tinygrad_cnn import nn
        tc.manual_seed(seed)
        net = models.lenet5()
        x = tc.randn(1, 1, 28, 28)
        criterion = nn.CrossEntropyLoss()
        with record_modules(net, loss=criterion) as modules:     # the loss gets its own box too
            loss = criterion(net(x), tc.tensor([3]))
        dot = draw_graph(loss, params=net, modules=modules, title="LeNet-5, one MNIST-sized input")
        written.append(_save(dot, os.path.join(out, "lenet_graph")))
        layers = draw_graph(loss, params=net, modules=modules, collapse=True,
                            title="LeNet-5, one box per layer")
        written.append(_save(layers, os.path.join(out, "lenet_layers")))
        n_conv = dot.count("grad = conv_transpose")
        print(f"\nLeNet-5 graph: {dot.count('[shape=box')} ops in {dot.count('subgraph cluster_')} module "
              f"clusters; {n_conv} input gradient(s) computed by conv_transpose")
    return written


def _save(dot: str, stem: str) -> str:
    save_graph(dot, stem + ".dot")
    try:
        save_graph(dot, stem + ".svg")
        print(f"wrote {stem}.dot and {stem}.svg")
    except GraphvizNotFound:
        print(f"wrote {stem}.dot (install Graphviz's `dot` to get an SVG: dot -Tsvg {stem}.dot -o {stem}.svg)")
    return stem + ".dot"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/backprop", help="folder for the graph files (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-lenet", action="store_true", help="skip the LeNet-5 graph")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    result = backprop_tiny(args.seed)
    result["hvp"] = hessian_vector_product(args.seed)
    result["files"] = graphs(args.out, args.seed, not args.no_lenet)
    return result


if __name__ == "__main__":
    main()
