"""Curriculum topics 9-11: 1D / 2D / 3D convolution, pooling as downsampling, flatten then FC.

    python demos/topic_09_11_dims_pooling.py --out runs/topic_09_11

Topic 9: the same idea in 1, 2 and 3 spatial dimensions. A 1-D filter slides along a signal
(N, C, L); a 2-D filter over an image (N, C, H, W); a 3-D filter through a volume or a video
(N, C, D, H, W). In every case the filter spans all input channels and produces one map per
filter: a "2-D convolution" of a colour image is a 3-D array of weights moved in 2 directions.
The script prints each shape, checks each against the formula, and shows one example of each.
Topic 10: max and average pooling halve the size; adaptive / global average pooling go to any
fixed size (1x1 = one number per channel).
Topic 11: flatten the last maps and apply a fully connected layer.

Picture (in --out): topic09_conv_dims.png (a 1-D signal and its edge response, an image and its
edge map, slices of a 3-D volume and of its response), topic10_pooling.png (the 4x4 example).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach import explain_conv, explain_pool
from tinygrad_cnn.teach.pictures import has_matplotlib, require_matplotlib, save_images

POOL_4x4 = np.array([[1, 1, 2, 4],
                     [5, 6, 7, 8],
                     [3, 2, 1, 0],
                     [1, 2, 3, 4]], dtype=np.float32)   # the classic max-pool example


def conv_dims():
    """One example per dimensionality: (input, weight, output) as NumPy arrays."""
    t = np.linspace(0, 1, 40, dtype=np.float32)
    signal = (t > 0.3).astype(np.float32) - (t > 0.7).astype(np.float32) * 0.5   # two steps
    edge1 = np.array([-1, 0, 1], np.float32)
    y1 = F.conv1d(tc.Tensor(signal.reshape(1, 1, -1)), tc.Tensor(edge1.reshape(1, 1, 3)), padding=1)

    yy, xx = np.mgrid[0:24, 0:24].astype(np.float32)
    image = (((yy - 12) ** 2 + (xx - 12) ** 2) < 60).astype(np.float32)           # a disc
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    y2 = F.conv2d(tc.Tensor(image.reshape(1, 1, 24, 24)), tc.Tensor(sobel.reshape(1, 1, 3, 3)), padding=1)

    zz, yy, xx = np.mgrid[0:12, 0:16, 0:16].astype(np.float32)
    volume = (((zz - 6) ** 2 + (yy - 8) ** 2 + (xx - 8) ** 2) < 25).astype(np.float32)  # a ball
    depth_edge = np.zeros((3, 3, 3), np.float32)
    depth_edge[0], depth_edge[2] = -1 / 9, 1 / 9                                     # change along depth
    y3 = F.conv3d(tc.Tensor(volume.reshape(1, 1, 12, 16, 16)), tc.Tensor(depth_edge.reshape(1, 1, 3, 3, 3)),
                  padding=1)
    return [(signal, edge1, y1.numpy()[0, 0]), (image, sobel, y2.numpy()[0, 0]), (volume, depth_edge, y3.numpy()[0, 0])]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_09_11", help="folder for the pictures (default: %(default)s)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tc.manual_seed(0)

    print("Topic 9: convolution in 1, 2 and 3 dimensions (8 filters, 3 input channels, batch 2)")
    cases = [("conv1d", F.conv1d, (2, 3, 100), (8, 3, 5)),
             ("conv2d", F.conv2d, (2, 3, 32, 32), (8, 3, 5, 5)),
             ("conv3d", F.conv3d, (2, 3, 16, 32, 32), (8, 3, 5, 5, 5))]
    shapes_seen = {}
    for name, fn, xs, ws in cases:
        y = fn(tc.randn(*xs), tc.randn(*ws))
        formula = "; ".join(str(e) for e in explain_conv(xs[2:], ws[2:]))
        print(f"  {name}: input {xs} * weight {ws} -> {tuple(y.shape)}   [{formula}]")
        print(f"          each filter has {int(np.prod(ws[1:]))} weights = C_in x kernel, "
              f"and moves in {len(ws) - 2} direction(s)")
        shapes_seen[name] = tuple(y.shape)
    examples = conv_dims()

    print("\nTopic 10: pooling is downsampling")
    x = tc.Tensor(POOL_4x4.reshape(1, 1, 4, 4))
    mx = F.max_pool2d(x, 2).numpy()[0, 0]
    av = F.avg_pool2d(x, 2).numpy()[0, 0]
    print("  input 4x4:\n", POOL_4x4.astype(int))
    print("  max_pool2d(2):\n", mx)
    print("  avg_pool2d(2):\n", av)
    print("  size:", "; ".join(str(e) for e in explain_pool((4, 4), 2)))
    big = tc.randn(2, 64, 7, 7)
    gap = F.adaptive_avg_pool2d(big, 1)
    print(f"  global average pooling (adaptive_avg_pool2d(x, 1)): {tuple(big.shape)} -> {tuple(gap.shape)}; "
          f"equal to x.mean((2, 3)): {np.allclose(gap.numpy()[..., 0, 0], big.numpy().mean((2, 3)), atol=1e-6)}")
    print(f"  adaptive_avg_pool2d(x, (3, 2)): {tuple(big.shape)} -> {tuple(F.adaptive_avg_pool2d(big, (3, 2)).shape)}")
    for name, fn, xs in [("max_pool1d", F.max_pool1d, (2, 3, 100)), ("max_pool3d", F.max_pool3d, (2, 3, 16, 32, 32))]:
        print(f"  {name}(2): {xs} -> {tuple(fn(tc.randn(*xs), 2).shape)}")

    print("\nTopic 11: flatten, then a fully connected layer")
    maps = tc.randn(2, 16, 5, 5)
    flat = nn.Flatten()(maps)
    fc = nn.Linear(16 * 5 * 5, 120)
    print(f"  maps {tuple(maps.shape)} -> Flatten -> {tuple(flat.shape)} -> Linear(400, 120) -> "
          f"{tuple(fc(flat).shape)}")

    if has_matplotlib():
        plt = require_matplotlib()
        (s, k1, r1), (im, k2, r2), (vol, k3, r3) = examples
        fig, axes = plt.subplots(2, 4, figsize=(10, 4.6), dpi=70)
        axes[0, 0].plot(s, label="signal")
        axes[0, 0].plot(r1, label="conv1d [-1, 0, 1]")
        axes[0, 0].legend(fontsize=6)
        axes[0, 0].set_title("1-D: (N, C, L)", fontsize=8)
        axes[1, 0].axis("off")
        axes[0, 1].imshow(im, cmap="gray")
        axes[0, 1].set_title("2-D: image (N, C, H, W)", fontsize=8)
        axes[1, 1].imshow(r2, cmap="RdBu_r")
        axes[1, 1].set_title("conv2d Sobel: vertical edges", fontsize=8)
        for j, z in enumerate((3, 9)):
            axes[0, 2 + j].imshow(vol[z], cmap="gray", vmin=0, vmax=1)
            axes[0, 2 + j].set_title(f"3-D: volume slice d={z}", fontsize=8)
            axes[1, 2 + j].imshow(r3[z], cmap="RdBu_r", vmin=-1, vmax=1)
            axes[1, 2 + j].set_title(f"conv3d depth edge, d={z}", fontsize=8)
        for ax in axes.ravel()[1:]:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "topic09_conv_dims.png"))
        plt.close(fig)
        save_images([POOL_4x4, mx, av], os.path.join(args.out, "topic10_pooling.png"),
                    titles=["input 4x4", "max pool 2x2", "average pool 2x2"], annotate=True,
                    cmap="Greens", fmt="{:g}", cell=1.8)
    else:
        print("(matplotlib is not installed: no pictures)")
    return {"shapes": shapes_seen, "max_pool": mx, "avg_pool": av}


if __name__ == "__main__":
    main()
