"""Curriculum topics 12-13: the classic architecture, and classification with softmax + cross-entropy.

    python demos/topic_12_13_classifier.py --out runs/topic_12_13

Topic 12: [Conv, ReLU, Pool] x N, flatten, [FC, ReLU] x N, FC -- LeNet-5 (tinygrad_cnn.models.lenet5),
shown as a model summary: every layer's output shape with the size formula worked out, its
parameters and multiply-adds. (demos/mnist.py trains it.)
Topic 13: softmax(y)_i = exp(y_i) / sum_j exp(y_j) turns the 10 scores into probabilities, and
cross-entropy -log p_target is the cost. The gradient of the cost with respect to the scores is
p - onehot(target), checked against the engine. Large logits (+-1e4) stay finite: log_softmax
subtracts the maximum first (log-sum-exp), where a naive exp would overflow.

Picture (in --out): topic13_softmax.png (scores, probabilities, gradient).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import models
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach import summary
from tinygrad_cnn.teach.pictures import has_matplotlib, require_matplotlib


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_12_13", help="folder for the pictures (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tc.manual_seed(args.seed)

    print("Topic 12: [Conv, ReLU, Pool] x 2, flatten, [FC, ReLU] x 2, FC  (LeNet-5 on a 28x28 digit)")
    net = models.lenet5()
    table = summary(net, (1, 1, 28, 28))
    print(table)

    print("\nTopic 13: softmax and cross-entropy")
    scores = tc.tensor([[2.0, 1.0, 0.1, -1.0, 0.5, 3.0, -0.5, 0.0, 1.5, -2.0]], requires_grad=True)
    target = tc.tensor([5])
    probs = F.softmax(scores, dim=1)
    loss = F.cross_entropy(scores, target)
    loss.backward()
    p_np = probs.detach().numpy()[0]
    by_hand = np.exp(scores.detach().numpy()[0]) / np.exp(scores.detach().numpy()[0]).sum()
    onehot = np.eye(10)[5]
    print(f"  scores        {np.round(scores.detach().numpy()[0], 2)}")
    print(f"  softmax       {np.round(p_np, 3)}  (sum {p_np.sum():.6f}; by hand max |diff| "
          f"{np.abs(by_hand - p_np).max():.1e})")
    print(f"  cross-entropy -log p[5] = -log {p_np[5]:.4f} = {loss.item():.4f}")
    grad = scores.grad.numpy()[0]
    print(f"  d loss / d scores = p - onehot(5) = {np.round(grad, 3)}  "
          f"(max |diff| {np.abs(grad - (p_np - onehot)).max():.1e})")

    big = tc.tensor([[1e4, -1e4, 0.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(np.array([1e4, -1e4, 0.0], dtype=np.float32))       # inf: overflow
        naive_p = naive / naive.sum()                                      # inf / inf = nan
    stable = F.softmax(big, dim=1).numpy()[0]
    ce = F.cross_entropy(big, tc.tensor([1])).item()
    print(f"  logits [1e4, -1e4, 0]: naive exp/sum gives {naive_p}; softmax gives {stable}; "
          f"cross-entropy for class 1 = {ce:.1f} (finite)")

    if has_matplotlib():
        plt = require_matplotlib()
        fig, axes = plt.subplots(1, 3, figsize=(9, 2.4), dpi=70)
        for ax, values, title, colour in [(axes[0], scores.detach().numpy()[0], "scores (logits)", "#9ecae1"),
                                          (axes[1], p_np, "softmax probabilities", "#3182bd"),
                                          (axes[2], grad, "gradient p - onehot(5)", "#e6550d")]:
            ax.bar(range(10), values, color=colour)
            ax.set_xticks(range(10))
            ax.tick_params(labelsize=6)
            ax.set_title(title, fontsize=8)
            ax.axhline(0, color="black", linewidth=0.5)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "topic13_softmax.png"))
        plt.close(fig)
    else:
        print("(matplotlib is not installed: no picture)")
    return {"params": table.total_params, "probs": p_np, "grad": grad, "loss": loss.item(),
            "stable": stable, "big_ce": ce}


if __name__ == "__main__":
    main()
