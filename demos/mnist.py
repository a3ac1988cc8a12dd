"""Train LeNet-5 on MNIST (or Fashion-MNIST with --dataset fashion) and watch it learn.

    python demos/mnist.py --data-dir /path/to/datasets          # >= 99% test accuracy in 3 epochs
    python demos/mnist.py --dataset fashion --data-dir ...      # Fashion-MNIST, >= 90% in 8 epochs

The net is the classic [Conv, ReLU, MaxPool] x 2 -> [FC, ReLU] x 2 -> FC of LeCun et al. (1998)
with today's defaults (tinygrad_cnn.models.lenet5, 61,706 parameters); the paper reports 0.95%
test error on MNIST. Recipe: SGD with Nesterov momentum, weight decay 5e-4, batch 64, a one-cycle
learning-rate schedule peaking at 0.1; inputs scaled to [0, 1] and normalised, no augmentation.

--data-dir DIR may hold the IDX files directly or in DIR/mnist/ (DIR/fashion-mnist/ for
Fashion-MNIST); without it $TINYGRAD_CNN_DATA and the user cache are searched, and --download
fetches the official files. Results (checkpoint, model.safetensors, metrics.json, curves.png) go
to --out (default runs/mnist or runs/fashion-mnist). Stop it at any time (Ctrl-C or SIGTERM
writes a checkpoint) and continue with --resume: the result is bitwise the same as an
uninterrupted run. See docs/demos.md.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

# LeNet-5's matrices are small: extra BLAS threads cost more than they give (and on a busy
# machine far more), so this demo runs on one thread unless --threads says otherwise.
DEFAULT_THREADS = 1

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (first: it applies --threads before NumPy loads)

from tinygrad_cnn import models  # noqa: E402
from tinygrad_cnn.data import MNIST, DatasetNotFoundError, FashionMNIST, transforms as T  # noqa: E402

# dataset -> (class, mean, std, default epochs, output folder, title)
DATASETS = {
    "mnist": (MNIST, 0.1307, 0.3081, 3, "runs/mnist", "LeNet-5 on MNIST"),
    "fashion": (FashionMNIST, 0.2860, 0.3530, 8, "runs/fashion-mnist", "LeNet-5 on Fashion-MNIST"),
}
TRAJECTORY_KEYS = _common.COMMON_TRAJECTORY_KEYS + ("dataset",)


def build_parser(default_dataset: str = "mnist") -> "_common.argparse.ArgumentParser":
    name = "mnist" if default_dataset == "mnist" else "fashion_mnist"
    parser = _common.make_parser(name, __doc__)
    parser.prog_demo_name = "mnist"  # one demo, two datasets: checkpoints are interchangeable
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=default_dataset,
                        help=f"which 28x28 grey-scale dataset (default {default_dataset})")
    _common.add_common_arguments(parser, epochs=None, batch_size=64, lr=0.1, momentum=0.9, weight_decay=5e-4,
                                 schedule="onecycle", out=DATASETS[default_dataset][4], threads=DEFAULT_THREADS)
    parser.epilog = "default --epochs: 3 for mnist, 8 for fashion"
    return parser


def main(argv: Optional[Sequence[str]] = None, default_dataset: str = "mnist") -> int:
    parser = build_parser(default_dataset)

    def fill_defaults(args):
        if args.epochs is None:
            args.epochs = DATASETS[args.dataset][3]
        if args.out is None and args.dataset != default_dataset:
            args._default_out = DATASETS[args.dataset][4]

    args = _common.parse_args(parser, argv, TRAJECTORY_KEYS, fill_defaults)
    cls, mean, std, _, _, title = DATASETS[args.dataset]
    transform = T.Compose([T.ToTensor(), T.Normalize((mean,), (std,))])
    try:
        train_set = cls(root=args.data_dir, train=True, download=args.download, transform=transform)
        test_set = cls(root=args.data_dir, train=False, download=args.download, transform=transform)
    except DatasetNotFoundError as exc:
        print(f"error: {exc}\n(or run with --download to fetch it)", file=sys.stderr)
        return 2
    task = _common.Task(name="mnist", title=title, train_set=train_set, test_set=test_set,
                        build_model=lambda: models.lenet5(num_classes=10),
                        trajectory_keys=TRAJECTORY_KEYS,
                        extra={"dataset": args.dataset, "model": "lenet5"})
    return _common.fit(args, task)


if __name__ == "__main__":
    _common.run(main)
