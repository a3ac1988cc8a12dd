"""Train a small MLP on generated two-spiral data: the engine end to end in a few seconds.

    python demos/mlp_spirals.py --epochs 300
"""
import argparse

import numpy as np

import tinygrad_cnn as tc


def spirals(n: int, rng: np.random.Generator):
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    cls = rng.integers(0, 2, n)
    r = t / (3 * np.pi)
    angle = t + np.pi * cls
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], 1) + rng.normal(0, 0.02, (n, 2))
    return x.astype(np.float32), cls.astype(np.int64)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    tc.manual_seed(args.seed)
    x, y = spirals(1000, rng)
    onehot = np.eye(2, dtype=np.float32)[y]
    params = [tc.randn(2, args.hidden) * np.sqrt(2 / 2), tc.zeros(args.hidden),
              tc.randn(args.hidden, args.hidden) * np.sqrt(2 / args.hidden), tc.zeros(args.hidden),
              tc.randn(args.hidden, 2) * np.sqrt(1 / args.hidden), tc.zeros(2)]
    params = [p.detach().requires_grad_() for p in params]
    X, T = tc.Tensor(x), tc.Tensor(onehot)
    for epoch in range(args.epochs):
        w1, b1, w2, b2, w3, b3 = params
        logits = ((X @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3
        loss = -(logits.log_softmax(1) * T).sum(1).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with tc.no_grad():
            for p in params:
                p.sub_(args.lr * p.grad.data)
        if epoch % 50 == 0 or epoch == args.epochs - 1:
            acc = float((logits.argmax(1).data == y).mean())
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}  accuracy {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
