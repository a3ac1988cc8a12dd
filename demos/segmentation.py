"""Curriculum topic 15: upsampling for segmentation -- a small encoder-decoder, two ways.

    python demos/segmentation.py --data-dir ../shared/datasets --epochs 2 --out runs/segmentation
    python demos/segmentation.py --synthetic --epochs 1 --limit-batches 5     (no data needed)

The task, built from real MNIST digits: each 32x56 image holds two digits side by side (shifted
at random, possibly touching), and the network labels every pixel with the digit it belongs to
(classes 1-10 for digits 0-9) or background (0). The label of a pixel depends on the shape of the
whole digit around it, so the network must look wide (downsample) and then answer per pixel
(upsample back).

Both variants share the encoder: [Conv3x3, BatchNorm, ReLU] x 2, MaxPool 2x2 (remembering the
indices), the same again with twice the channels, and two more convolutions at 1/4 size. They
differ in how they upsample back to 32x56:

* ``segnet``: SegNet-style (Badrinarayanan et al. 2017) -- MaxUnpool2d puts every value back where
  the encoder's max came from (topic 16), then two convolutions fill in the zeros;
* ``transposed``: ConvTranspose2d(kernel 2, stride 2) learns the upsampling (topic 18), then one
  convolution.

Each is trained with cross-entropy over every pixel (Adam), then evaluated with the mean
intersection-over-union over the 11 classes on held-out images (digits from the MNIST test set).

Files (in --out): segmentation.png (input / truth / each prediction for a few test images) and
metrics.json (mean IoU and per-class IoU of each variant).
"""
import argparse
import json
import os
import time

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import nn, optim
from tinygrad_cnn.nn import functional as F

H, W = 32, 56
NUM_CLASSES = 11          # background + digits 0-9


# ----------------------------------------------------------------------------- data

def compose(digits: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator):
    """``n`` images (n, 1, H, W) float32 in [0, 1] and masks (n, H, W) int64, two digits each.

    A pixel belongs to a digit where that digit's ink is above 0.5 (the brighter one where two
    overlap); its class is the digit + 1. Everything else is background, class 0.
    """
    images = np.zeros((n, H, W), np.float32)
    masks = np.zeros((n, H, W), np.int64)
    size = digits.shape[1]
    for i in range(n):
        ink = np.zeros((2, H, W), np.float32)
        picks = rng.integers(0, len(digits), 2)
        for j, k in enumerate(picks):
            top = rng.integers(0, H - size + 1)
            left = rng.integers(0, 6) + j * 22            # second digit 22-27 px to the right
            ink[j, top:top + size, left:left + size] = digits[k]
        images[i] = ink.max(0)
        owner = ink.argmax(0)
        mask = np.where(owner == 0, labels[picks[0]], labels[picks[1]]) + 1
        masks[i] = np.where(images[i] > 0.5, mask, 0)
    return images[:, None], masks


def synthetic_digits(n: int, rng: np.random.Generator):
    """Stand-ins for MNIST when no data is at hand (tests, CI): ten fixed stroke patterns, one per
    class, each drawn with random jitter. Returns uint8-like float digits (n, 28, 28) and labels."""
    templates = np.zeros((10, 28, 28), np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for c in range(10):
        t_rng = np.random.default_rng(1000 + c)
        for _ in range(3):                                      # three thick strokes per class
            (y0, x0), (y1, x1) = t_rng.integers(5, 23, (2, 2))
            for s in np.linspace(0, 1, 30):
                cy, cx = y0 + s * (y1 - y0), x0 + s * (x1 - x0)
                templates[c] = np.maximum(templates[c], np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0))
    labels = rng.integers(0, 10, n)
    digits = np.empty((n, 28, 28), np.float32)
    for i, c in enumerate(labels):
        shifted = np.roll(templates[c], tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        digits[i] = np.clip(shifted + rng.normal(0, 0.05, (28, 28)), 0, 1)
    return digits, labels


def load_digits(args, train: bool, n: int, rng: np.random.Generator):
    if args.synthetic:
        return synthetic_digits(n, rng)
    from tinygrad_cnn.data import MNIST
    ds = MNIST(root=args.data_dir, train=train)
    pick = rng.choice(len(ds.data), size=min(n, len(ds.data)), replace=False)
    return ds.data[pick].astype(np.float32) / 255.0, ds.targets[pick]


# ----------------------------------------------------------------------------- models

def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution (padding 1 keeps the size), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Encoder(nn.Module):
    """(N, 1, 32, 56) -> (N, 2w, 8, 14), plus the two pools' indices (for SegNet's decoder)."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.block1 = nn.Sequential(conv_bn_relu(1, w), conv_bn_relu(w, w))
        self.pool1 = nn.MaxPool2d(2, return_indices=True)               # 32x56 -> 16x28
        self.block2 = nn.Sequential(conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w))
        self.pool2 = nn.MaxPool2d(2, return_indices=True)               # 16x28 -> 8x14
        self.block3 = nn.Sequential(conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 2 * w))

    def forward(self, x):
        x, i1 = self.pool1(self.block1(x))
        x, i2 = self.pool2(self.block2(x))
        return self.block3(x), (i1, i2)


class SegNet(nn.Module):
    """Encoder, then MaxUnpool2d with the encoder's indices (values go back where the max was,
    zeros elsewhere), each followed by convolutions that fill the zeros in."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.encoder = Encoder(w)
        self.unpool2 = nn.MaxUnpool2d(2)                                  # 8x14 -> 16x28
        self.dec2 = nn.Sequential(conv_bn_relu(2 * w, 2 * w), conv_bn_relu(2 * w, w))
        self.unpool1 = nn.MaxUnpool2d(2)                                  # 16x28 -> 32x56
        self.dec1 = nn.Sequential(conv_bn_relu(w, w), conv_bn_relu(w, w))
        self.classify = nn.Conv2d(w, NUM_CLASSES, 1)

    def forward(self, x):
        z, (i1, i2) = self.encoder(x)
        z = self.dec2(self.unpool2(z, i2))
        z = self.dec1(self.unpool1(z, i1))
        return self.classify(z)


class TransposedNet(nn.Module):
    """Encoder, then learned upsampling: ConvTranspose2d(kernel 2, stride 2), each followed by a
    convolution (the same depth as SegNet's decoder)."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.encoder = Encoder(w)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(2 * w, 2 * w, 2, stride=2, bias=False),
                                 nn.BatchNorm2d(2 * w), nn.ReLU())         # 8x14 -> 16x28
        self.dec2 = conv_bn_relu(2 * w, w)
        self.up1 = nn.Sequential(nn.ConvTranspose2d(w, w, 2, stride=2, bias=False),
                                 nn.BatchNorm2d(w), nn.ReLU())             # 16x28 -> 32x56
        self.dec1 = conv_bn_relu(w, w)
        self.classify = nn.Conv2d(w, NUM_CLASSES, 1)

    def forward(self, x):
        z, _ = self.encoder(x)
        z = self.dec2(self.up2(z))
        z = self.dec1(self.up1(z))
        return self.classify(z)


VARIANTS = {"segnet": SegNet, "transposed": TransposedNet}


# ----------------------------------------------------------------------------- metrics

def confusion(pred: np.ndarray, truth: np.ndarray, k: int = NUM_CLASSES) -> np.ndarray:
    """(k, k) counts: rows = true class, columns = predicted class."""
    return np.bincount(truth.ravel() * k + pred.ravel(), minlength=k * k).reshape(k, k)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class; NaN for a class absent from both truth and prediction."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.nanmean(iou_per_class(confusion(pred, truth))))


def predict(model, images: np.ndarray, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with tc.no_grad():
        for s in range(0, len(images), batch):
            out.append(model(tc.Tensor(images[s:s + batch])).numpy().argmax(1))
    model.train()
    return np.concatenate(out)


def train(name: str, model, images, masks, args, rng) -> float:
    opt = optim.Adam(model.parameters(), lr=args.lr)
    n = len(images)
    steps_per_epoch = max(1, n // args.batch_size)
    if args.limit_batches:
        steps_per_epoch = min(steps_per_epoch, args.limit_batches)
    start = time.time()
    for epoch in range(args.epochs):
        order = rng.permutation(n)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            logits = model(tc.Tensor(images[idx]))                        # (B, 11, H, W)
            loss = F.cross_entropy(logits, tc.Tensor(masks[idx]))        # averaged over every pixel
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            if (step + 1) % args.log_every == 0 or step + 1 == steps_per_epoch:
                print(f"  [{name}] epoch {epoch + 1} step {step + 1}/{steps_per_epoch} "
                      f"loss {total / (step + 1):.4f}  ({time.time() - start:.0f} s)")
    return time.time() - start


# ----------------------------------------------------------------------------- pictures

def colourise(mask: np.ndarray) -> np.ndarray:
    """(H, W) classes -> (H, W, 3) colours; background black."""
    palette = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                        [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60],
                        [250, 190, 212]], np.float32) / 255
    return palette[mask]


def save_pictures(path: str, images, masks, preds: dict, ious: dict, count: int = 4) -> None:
    from tinygrad_cnn.teach.pictures import require_matplotlib
    plt = require_matplotlib()
    cols = 2 + len(preds)
    fig, axes = plt.subplots(count, cols, figsize=(2.2 * cols, 1.45 * count + 0.4), dpi=70, squeeze=False)
    for r in range(count):
        panels = [(images[r, 0], "input", "gray"), (colourise(masks[r]), "truth", None)]
        panels += [(colourise(p[r]), f"{k} (mIoU {ious[k]:.2f})", None) for k, p in preds.items()]
        for c, (im, title, cmap) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(im, cmap=cmap, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=8)
    fig.suptitle("per-pixel digit classes (colour = digit, black = background)", fontsize=9)
    from matplotlib.patches import Patch
    fig.legend(handles=[Patch(color=colourise(np.array([c + 1]))[0], label=str(c)) for c in range(10)],
               ncol=10, loc="lower center", fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


# ----------------------------------------------------------------------------- main

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: $TINYGRAD_CNN_DATA, the cache)")
    p.add_argument("--synthetic", action="store_true", help="generated stroke 'digits' instead of MNIST")
    p.add_argument("--out", default="runs/segmentation", help="folder for the outputs (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit-batches", type=int, default=0, help="at most this many steps per epoch (0: all)")
    p.add_argument("--train-size", type=int, default=6000, help="composed training images")
    p.add_argument("--test-size", type=int, default=500, help="composed test images")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv layers")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--variants", default="segnet,transposed", help="comma-separated: segnet, transposed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            p.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    digits, labels = load_digits(args, True, max(args.train_size, 2), rng)
    train_x, train_y = compose(digits, labels, args.train_size, rng)
    digits, labels = load_digits(args, False, max(args.test_size, 2), rng)
    test_x, test_y = compose(digits, labels, args.test_size, rng)
    source = "synthetic strokes" if args.synthetic else "MNIST"
    print(f"{args.train_size} training and {args.test_size} test images of {H}x{W} from {source}; "
          f"{NUM_CLASSES} classes per pixel ({100 * float((train_y > 0).mean()):.1f}% digit pixels)")

    results, preds = {}, {}
    for name in variants:
        tc.manual_seed(args.seed)
        model = VARIANTS[name](args.width)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"\n{name}: {type(model).__name__}, {n_params:,} parameters")
        seconds = train(name, model, train_x, train_y, args, rng)
        pred = predict(model, test_x)
        ious = iou_per_class(confusion(pred, test_y))
        results[name] = {"mean_iou": float(np.nanmean(ious)), "per_class_iou": [None if np.isnan(v) else float(v)
                                                                                 for v in ious],
                         "pixel_accuracy": float((pred == test_y).mean()), "params": int(n_params),
                         "train_seconds": round(seconds, 1)}
        preds[name] = pred
        print(f"  {name}: mean IoU {results[name]['mean_iou']:.3f}, pixel accuracy "
              f"{results[name]['pixel_accuracy']:.3f}")

    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"data": source, "epochs": args.epochs, "train_size": args.train_size,
                   "test_size": args.test_size, "results": results}, f, indent=2)
    try:
        save_pictures(os.path.join(args.out, "segmentation.png"), test_x, test_y, preds,
                      {k: v["mean_iou"] for k, v in results.items()}, count=min(4, len(test_x)))
    except ImportError as e:
        print(f"(no picture: {e})")
    print("\n" + "  ".join(f"{k}: mIoU {v['mean_iou']:.3f}" for k, v in results.items()))
    return results


if __name__ == "__main__":
    main()
