"""Curriculum topics 8 and 21-23: 1x1 (pointwise), depthwise and depthwise-separable convolution.

    python demos/topic_08_21_23_depthwise_separable.py --out runs/topic_08_21_23

Topic 8 / 23, pointwise convolution: Conv2d(kernel_size=1) mixes channels at each pixel on its
own -- a matrix product over the channel axis -- and so changes (here: compresses) the channel
count: 64 -> 16. Checked against an explicit einsum.
Topic 21, depthwise convolution: Conv2d(groups=C) convolves each channel with its own filter,
only in space. Checked: output channel c equals conv2d of input channel c alone.
Topic 22, depthwise-separable convolution (MobileNet): depthwise 3x3, then pointwise 1x1, in
place of one plain 3x3 conv; parameter and multiply-add counts side by side (from the model
summary of real layers, and from the formula 1/C_out + 1/K^2).

Pictures (in --out): topic21_depthwise.png (an RGB image, each channel, and each channel's own
depthwise result) and topic22_separable.png (parameters and MACs, plain vs separable).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach import separable_comparison, summary
from tinygrad_cnn.teach.pictures import has_matplotlib, require_matplotlib, save_images


def rgb_image(size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((3, size, size), np.float32)
    img[0] = (np.abs(xx - 10) < 4).astype(np.float32)                    # red vertical bar
    img[1] = (np.abs(yy - 20) < 3).astype(np.float32)                    # green horizontal bar
    img[2] = (((xx - 22) ** 2 + (yy - 9) ** 2) < 30).astype(np.float32)  # blue disc
    return img


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_08_21_23", help="folder for the pictures (default: %(default)s)")
    p.add_argument("--channels", type=int, default=64, help="C_in = C_out of the comparison (default: 64)")
    p.add_argument("--size", type=int, default=32, help="spatial size of the comparison (default: 32)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tc.manual_seed(0)

    print("Topic 8 / 23: pointwise (1x1) convolution compresses channels")
    x = tc.randn(2, 64, 8, 8)
    pointwise = nn.Conv2d(64, 16, kernel_size=1)
    y = pointwise(x)
    by_hand = np.einsum("oc,nchw->nohw", pointwise.weight.detach().numpy()[:, :, 0, 0], x.numpy()) \
        + pointwise.bias.detach().numpy()[None, :, None, None]
    print(f"  Conv2d(64, 16, kernel_size=1): {tuple(x.shape)} -> {tuple(y.shape)}, "
          f"{sum(q.numel() for q in pointwise.parameters()):,} parameters (64*16 + 16)")
    print(f"  = the same 16x64 matrix applied to every pixel's channel vector: "
          f"max |diff| {np.abs(y.detach().numpy() - by_hand).max():.1e}")

    print("\nTopic 21: depthwise convolution, each channel on its own")
    img = tc.Tensor(rgb_image()[None])
    depthwise = nn.Conv2d(3, 3, kernel_size=3, padding=1, groups=3, bias=False)
    edge = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    depthwise.weight.data[...] = np.stack([edge, edge.T, np.ones((3, 3), np.float32) / 9])[:, None]
    out = depthwise(img).detach().numpy()[0]
    worst = 0.0
    for c in range(3):
        alone = F.conv2d(img[:, c:c + 1], tc.Tensor(depthwise.weight.data[c:c + 1]), padding=1).numpy()[0, 0]
        worst = max(worst, float(np.abs(alone - out[c]).max()))
    print(f"  Conv2d(3, 3, 3, groups=3): weight {tuple(depthwise.weight.shape)} (one 1x3x3 filter per channel); "
          f"channel c of the output == conv2d(channel c, filter c): max |diff| {worst:.1e}")

    print("\nTopic 22: depthwise-separable = depthwise 3x3 + pointwise 1x1, against a plain 3x3 conv")
    c, s = args.channels, args.size
    plain = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False))
    separable = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
                              nn.Conv2d(c, c, 1, bias=False))
    s_plain, s_sep = summary(plain, (1, c, s, s)), summary(separable, (1, c, s, s))
    print(s_plain)
    print(s_sep)
    cmp = separable_comparison(c, c, 3, (s, s))
    print(cmp)
    assert (s_plain.total_params, s_plain.total_macs) == (cmp.plain_params, cmp.plain_macs)
    assert (s_sep.total_params, s_sep.total_macs) == (cmp.separable_params, cmp.separable_macs)

    if has_matplotlib():
        rgb = rgb_image()
        save_images([rgb.transpose(1, 2, 0)] + list(rgb) + list(out),
                    os.path.join(args.out, "topic21_depthwise.png"),
                    titles=["RGB input", "R", "G", "B", "R * vertical edge", "G * horizontal edge", "B * blur"],
                    ncols=4, cmap="gray", cell=1.6,
                    suptitle="depthwise conv (groups=3): each channel convolved only with its own filter")
        plt = require_matplotlib()
        fig, axes = plt.subplots(1, 2, figsize=(7, 2.6), dpi=70)
        names = ["plain 3x3", "depthwise 3x3", "pointwise 1x1", "separable total"]
        colours = ["#888888", "#9ecae1", "#3182bd", "#08519c"]
        for ax, what, values in [(axes[0], "parameters", [cmp.plain_params, cmp.depthwise_params,
                                                          cmp.pointwise_params, cmp.separable_params]),
                                 (axes[1], "multiply-adds", [cmp.plain_macs, cmp.depthwise_macs,
                                                             cmp.pointwise_macs, cmp.separable_macs])]:
            ax.bar(names, values, color=colours)
            ax.set_title(f"{what} ({c}->{c} channels, {s}x{s})", fontsize=8)
            ax.tick_params(labelsize=6)
            for i, v in enumerate(values):
                ax.text(i, v, f"{v:,}", ha="center", va="bottom", fontsize=6)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "topic22_separable.png"))
        plt.close(fig)
    else:
        print("(matplotlib is not installed: no pictures)")
    return {"depthwise_error": worst, "comparison": cmp}


if __name__ == "__main__":
    main()
