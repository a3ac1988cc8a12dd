"""Curriculum topic 14: the ImageNet families as small building blocks, with parameter counts.

    python demos/topic_14_families.py --out runs/topic_14
    python demos/topic_14_families.py --zoo       # also the full-size models' counts (slow, ~1 GB)

The winners of the ImageNet challenge differ mostly in the block they repeat:

* AlexNet / ZFNet (2012-13): big filters early (11x11, 7x7), [Conv, ReLU, Pool] stacks;
* VGG (2014): only 3x3 convs, two or three per block, then a 2x2 max-pool;
* GoogLeNet (2014): the Inception block, 1x1 / 3x3 / 5x5 / pool branches side by side,
  with 1x1 convs first to keep the channel count (and the cost) down, concatenated;
* ResNet (2015): the residual block, out = ReLU(F(x) + x), which lets 152 layers train;
* MobileNet: the depthwise-separable block (topic 22).

Each block is written once, in ``make_blocks(nn, cat)``, against the PyTorch API: called with
``tinygrad_cnn.nn`` it builds our layers, called with ``torch.nn`` PyTorch's (the tests check the
parameter counts agree). The script prints each block's summary (output shape, parameters,
multiply-adds per layer) on a (1, 64, 32, 32) input.

Picture (in --out): topic14_blocks.png (parameters and multiply-adds of each block).
"""
import argparse
import os

import tinygrad_cnn as tc
from tinygrad_cnn import nn as tnn
from tinygrad_cnn.teach import count_parameters, summary
from tinygrad_cnn.teach.pictures import has_matplotlib, require_matplotlib


def make_blocks(nn, cat, c: int = 64):
    """The four blocks for ``c`` input channels, built with the ``nn`` namespace given
    (``tinygrad_cnn.nn`` or ``torch.nn``) and its ``cat``."""

    def vgg_block(c_in, c_out, convs=2):
        layers = []
        for i in range(convs):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.MaxPool2d(2))

    class Inception(nn.Module):
        """GoogLeNet's block (Szegedy et al. 2015, Fig. 2b); sizes as its inception (3a) scaled to c."""

        def __init__(self, c_in, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
            super().__init__()
            self.branch1 = nn.Sequential(nn.Conv2d(c_in, c1, 1), nn.ReLU())
            self.branch3 = nn.Sequential(nn.Conv2d(c_in, c3_reduce, 1), nn.ReLU(),
                                         nn.Conv2d(c3_reduce, c3, 3, padding=1), nn.ReLU())
            self.branch5 = nn.Sequential(nn.Conv2d(c_in, c5_reduce, 1), nn.ReLU(),
                                         nn.Conv2d(c5_reduce, c5, 5, padding=2), nn.ReLU())
            self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                             nn.Conv2d(c_in, pool_proj, 1), nn.ReLU())

        def forward(self, x):
            return cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1)

    class Residual(nn.Module):
        """ResNet's basic block (He et al. 2016, Fig. 2): ReLU(BN(conv(ReLU(BN(conv(x))))) + x)."""

        def __init__(self, c_in, c_out, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = nn.Sequential()
            if stride != 1 or c_in != c_out:     # projection shortcut when the shape changes
                self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(c_out))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.shortcut(x))

    def mobilenet_block(c_in, c_out, stride=1):
        """MobileNet v1's block (Howard et al. 2017, Fig. 3): depthwise 3x3, then pointwise 1x1."""
        return nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False),
                             nn.BatchNorm2d(c_in), nn.ReLU(),
                             nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

    def plain_block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())

    return {
        "plain 3x3 conv": plain_block(c, 2 * c),
        "VGG block (2 x 3x3 + pool)": vgg_block(c, 2 * c),
        "Inception block": Inception(c, c, 3 * c // 4, c, c // 4, c // 2, c // 2),
        "residual block": Residual(c, c),
        "residual block, stride 2": Residual(c, 2 * c, stride=2),
        "MobileNet block": mobilenet_block(c, 2 * c),
    }


ZOO = [("alexnet", "AlexNet (2012), 8 layers", 61_100_840), ("zfnet", "ZFNet (2013), 8 layers", None),
       ("vgg19", "VGG-19 (2014), 19 layers", 143_667_240), ("googlenet", "GoogLeNet (2014), 22 layers", None),
       ("resnet152", "ResNet-152 (2015), 152 layers", 60_192_808), ("mobilenet_v2", "MobileNet-V2 (2018)", None)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_14", help="folder for the pictures (default: %(default)s)")
    p.add_argument("--channels", type=int, default=64, help="input channels of each block (default: 64)")
    p.add_argument("--size", type=int, default=32, help="input height and width (default: 32)")
    p.add_argument("--zoo", action="store_true", help="also build the full-size models and count their parameters")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tc.manual_seed(0)

    c, s = args.channels, args.size
    blocks = make_blocks(tnn, tc.cat, c)
    rows = []
    for name, block in blocks.items():
        info = summary(block, (1, c, s, s))
        out_shape = info.rows[-1].output_shape if info.rows else None
        print(f"\n=== {name}: {count_parameters(block):,} parameters, {info.total_macs:,} MACs ===")
        print(info)
        rows.append((name, count_parameters(block), info.total_macs, out_shape))
    if "Inception block" in blocks:
        y = blocks["Inception block"](tc.zeros(1, c, s, s))
        print(f"\nInception output: 4 branches concatenated along channels -> {tuple(y.shape)}")

    if args.zoo:
        from tinygrad_cnn import models
        print("\nThe full-size models of the slides (224x224 inputs):")
        for fn, title, expected in ZOO:
            n = count_parameters(getattr(models, fn)())
            note = "" if expected is None else f"  (torchvision: {expected:,})"
            print(f"  {title:32s} {n:>12,} parameters{note}")

    if has_matplotlib():
        plt = require_matplotlib()
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), dpi=70)
        names = [r[0] for r in rows]
        for ax, k, what in [(axes[0], 1, "parameters"), (axes[1], 2, "multiply-adds")]:
            values = [r[k] for r in rows]
            ax.barh(names, values, color="#3182bd")
            ax.set_title(f"{what} ({c} input channels, {s}x{s})", fontsize=8)
            ax.tick_params(labelsize=6)
            ax.invert_yaxis()
            for i, v in enumerate(values):
                ax.text(v, i, f" {v:,}", va="center", fontsize=6)
            ax.set_xlim(0, max(values) * 1.35)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "topic14_blocks.png"))
        plt.close(fig)
    else:
        print("(matplotlib is not installed: no picture)")
    return {name: (params, macs, shape) for name, params, macs, shape in rows}


if __name__ == "__main__":
    main()
