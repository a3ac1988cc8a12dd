"""Train a CNN on CIFAR-10 with augmentation, BatchNorm, SGD and a one-cycle schedule.

    python demos/cifar10.py --data-dir /path/to/datasets                 # default: fast net
    python demos/cifar10.py --model resnet20 --data-dir /path/to/datasets

--model fast (default): a 7-layer VGG-style net with BatchNorm (0.58M parameters, about 68
MFLOP per image forward), chosen to reach about 85% test accuracy quickly on a CPU: conv 32 at
32x32, max-pool, 2 x conv 64 at 16x16, max-pool, 2 x conv 128 at 8x8, max-pool, conv 256 at
4x4, global max-pool, linear. Recipe: batch 128, SGD + Nesterov momentum, weight
decay 5e-4, one-cycle schedule peaking at lr 0.1, label smoothing 0.1, 15 epochs.

--model resnet20 (or resnet32/44/56): the CIFAR ResNets of He et al. 2016
(tinygrad_cnn.models.resnet20: 0.27M parameters, 41 MFLOP per image). Defaults are a short
one-cycle recipe (30 epochs, lr 0.1, weight decay 5e-4); the paper's own recipe, aiming at its
91.25% for ResNet-20, is

    python demos/cifar10.py --model resnet20 --epochs 164 --schedule step --lr 0.1 \\
        --weight-decay 1e-4 --no-nesterov --label-smoothing 0 --batch-size 128

Training images are augmented as in the paper: 4 pixels of zero padding, a random 32x32 crop
and a random horizontal flip; every image is normalised with the training set's per-channel
mean and standard deviation. --data-dir DIR may hold cifar-10-batches-bin/ or
cifar-10-batches-py/ (the official archives unpacked). Checkpoints, metrics and curves go to
--out (default runs/cifar10-<model>); stop at any time and continue with --resume. See
docs/demos.md.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402  (first: it applies --threads before NumPy loads)

from tinygrad_cnn import models, nn  # noqa: E402
from tinygrad_cnn.data import CIFAR10, DatasetNotFoundError, transforms as T  # noqa: E402

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def conv_bn_relu(c_in: int, c_out: int) -> list:
    """3x3 convolution (no bias: BatchNorm has one), BatchNorm, ReLU. Keeps H and W."""
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class FastNet(nn.Module):
    """The default net: most of its work happens at 16x16 and 8x8, where CPU convolutions
    are efficient. ``(N, 3, 32, 32)`` -> logits ``(N, num_classes)``.

    ``widths=(a, b, c, d)``: conv a @32x32 -> pool -> 2 x conv b @16x16 -> pool -> 2 x conv c
    @8x8 -> pool -> conv d @4x4 -> global max-pool -> linear.
    """

    def __init__(self, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.features = nn.Sequential(
            *conv_bn_relu(3, a),                               # (N, a, 32, 32)
            nn.MaxPool2d(2),                                   # (N, a, 16, 16)
            *conv_bn_relu(a, b), *conv_bn_relu(b, b),          # (N, b, 16, 16)
            nn.MaxPool2d(2),                                   # (N, b, 8, 8)
            *conv_bn_relu(b, c), *conv_bn_relu(c, c),          # (N, c, 8, 8)
            nn.MaxPool2d(2),                                   # (N, c, 4, 4)
            *conv_bn_relu(c, d),                               # (N, d, 4, 4)
            nn.AdaptiveMaxPool2d(1),                           # (N, d, 1, 1)
            nn.Flatten(),                                      # (N, d)
        )
        self.classifier = nn.Linear(d, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


# model -> default options (any of them can be overridden on the command line)
MODEL_DEFAULTS = {
    "fast": dict(epochs=15, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="onecycle",
                 label_smoothing=0.1),
    "resnet20": dict(epochs=30, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="onecycle",
                     label_smoothing=0.0),
}
for _name in ("resnet32", "resnet44", "resnet56"):
    MODEL_DEFAULTS[_name] = MODEL_DEFAULTS["resnet20"]
TRAJECTORY_KEYS = _common.COMMON_TRAJECTORY_KEYS + ("model",)


def build_model(name: str) -> nn.Module:
    if name == "fast":
        return FastNet(num_classes=10)
    return models.get_model(name, num_classes=10)


def build_parser() -> "_common.argparse.ArgumentParser":
    parser = _common.make_parser("cifar10", __doc__)
    parser.add_argument("--model", choices=sorted(MODEL_DEFAULTS), default="fast",
                        help="which network (default fast)")
    _common.add_common_arguments(parser, epochs=None, batch_size=None, lr=None, momentum=None, weight_decay=None,
                                 schedule=None, label_smoothing=None, out="runs/cifar10-fast")
    parser.epilog = "defaults per model: " + "; ".join(
        f"{name}: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in d.items())
        for name, d in MODEL_DEFAULTS.items() if name in ("fast", "resnet20")) + " (resnet32/44/56 as resnet20)"
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()

    def fill_defaults(args):
        for key, value in MODEL_DEFAULTS[args.model].items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        args._default_out = f"runs/cifar10-{args.model}"

    args = _common.parse_args(parser, argv, TRAJECTORY_KEYS, fill_defaults)
    train_transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                                 T.Normalize(MEAN, STD)])
    test_transform = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    try:
        train_set = CIFAR10(root=args.data_dir, train=True, download=args.download, transform=train_transform)
        test_set = CIFAR10(root=args.data_dir, train=False, download=args.download, transform=test_transform)
    except DatasetNotFoundError as exc:
        print(f"error: {exc}\n(or run with --download to fetch it)", file=sys.stderr)
        return 2
    titles = {"fast": "FastNet on CIFAR-10"}
    task = _common.Task(name="cifar10", title=titles.get(args.model, f"{args.model.replace('resnet', 'ResNet-')} "
                                                                     "on CIFAR-10"),
                        train_set=train_set, test_set=test_set, build_model=lambda: build_model(args.model),
                        trajectory_keys=TRAJECTORY_KEYS, extra={"dataset": "cifar10", "model": args.model})
    return _common.fit(args, task)


if __name__ == "__main__":
    _common.run(main)
