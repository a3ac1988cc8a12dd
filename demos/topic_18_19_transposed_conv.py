"""Curriculum topics 18-19: transposed convolution, learnable upsampling.

    python demos/topic_18_19_transposed_conv.py --out runs/topic_18_19

Topic 18, the slide's 3x3 transposed convolution with stride 2 on a 2x2 input: each input value
weights the filter and the weighted copy is written into the output, moving 2 output pixels for
every 1 input pixel; where copies overlap they are summed. That gives 5x5; trimming one pixel at
the top and left gives exactly 4x4 (2x the input). In PyTorch's arguments the trim is
``padding=1`` (one pixel off every side) with ``output_padding=1`` (one pixel back at the end).
Also called deconvolution, upconvolution, fractionally strided convolution, backward strided
convolution -- "backward" because it *is* the gradient of the strided convolution with respect
to its input, which is checked here.

Topic 19, the 1-D example: input [a, b], filter [x, y, z], stride 2 gives 5 outputs
[ax, ay, az+bx, by, bz]; one output is removed to get exactly 2x = 4.

Pictures (in --out): topic18_transposed_conv.png (the four weighted copies, their sum 5x5 and the
4x4 after the trim) and topic19_transposed_conv_1d.png.
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach.pictures import has_matplotlib, save_images

INPUT = np.array([[1, 2], [3, 4]], dtype=np.float32)
FILTER = np.array([[1, 1, 1], [1, 2, 1], [1, 1, 1]], dtype=np.float32)


def weighted_copies(x: np.ndarray, w: np.ndarray, stride: int) -> list:
    """One (H_full, W_full) canvas per input pixel holding x[i, j] * w at (stride*i, stride*j)."""
    k = w.shape[0]
    size = (x.shape[0] - 1) * stride + k
    copies = []
    for (i, j), v in np.ndenumerate(x):
        canvas = np.zeros((size, size), np.float32)
        canvas[stride * i: stride * i + k, stride * j: stride * j + k] = v * w
        copies.append(canvas)
    return copies


def transposed_examples():
    """(full 5x5, trimmed 4x4, the 1-D full and trimmed outputs) computed with conv_transpose."""
    x = tc.Tensor(INPUT.reshape(1, 1, 2, 2))
    w = tc.Tensor(FILTER.reshape(1, 1, 3, 3))
    full = F.conv_transpose2d(x, w, stride=2).numpy()[0, 0]
    trimmed = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).numpy()[0, 0]
    a = tc.Tensor(np.array([[[1, 2]]], np.float32))
    f = tc.Tensor(np.array([[[1, 2, 3]]], np.float32))
    full_1d = F.conv_transpose1d(a, f, stride=2).numpy()[0, 0]
    trimmed_1d = F.conv_transpose1d(a, f, stride=2, padding=1, output_padding=1).numpy()[0, 0]
    return full, trimmed, full_1d, trimmed_1d


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_18_19", help="folder for the pictures (default: %(default)s)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    full, trimmed, full_1d, trimmed_1d = transposed_examples()
    copies = weighted_copies(INPUT, FILTER, 2)
    print("Topic 18: 3x3 transposed convolution, stride 2, on the 2x2 input\n", INPUT.astype(int))
    print("filter:\n", FILTER.astype(int))
    print("each input value weights the filter, copied 2 pixels apart; overlaps are summed:")
    print("conv_transpose2d(x, w, stride=2) -> 5x5:\n", full.astype(int))
    assert np.array_equal(full, sum(copies)), "conv_transpose2d must equal the sum of the weighted copies"
    print("padding=1, output_padding=1 -> 4x4 (the 5x5 with its top row and left column trimmed):\n",
          trimmed.astype(int))
    assert np.array_equal(trimmed, full[1:, 1:])

    # "backward strided convolution": the gradient of conv2d(stride 2, pad 1) on a 4x4 input
    x4 = tc.randn(1, 1, 4, 4, requires_grad=True)
    w = tc.Tensor(FILTER.reshape(1, 1, 3, 3))
    y = F.conv2d(x4, w, stride=2, padding=1)                       # (1, 1, 2, 2)
    (gx,) = grad(y, x4, grad_outputs=tc.Tensor(INPUT.reshape(1, 1, 2, 2)))
    same = np.allclose(gx.numpy()[0, 0], trimmed)
    print(f"the input-gradient of conv2d(4x4 -> 2x2, stride 2, pad 1) with upstream [[1,2],[3,4]] "
          f"equals that 4x4: {same}")

    print("\nTopic 19: the 1-D example, input [1, 2], filter [1, 2, 3], stride 2")
    print(f"  full output (length (2-1)*2 + 3 = 5): {full_1d.astype(int).tolist()}"
          "   = [a*x, a*y, a*z + b*x, b*y, b*z]")
    print(f"  one pixel removed to get exactly 2 x 2 = 4 (padding=1, output_padding=1): "
          f"{trimmed_1d.astype(int).tolist()}")

    if has_matplotlib():
        titles = [f"{int(v)} x filter" for v in INPUT.ravel()] + ["sum: 5x5", "trimmed: 4x4"]
        save_images(copies + [full, trimmed], os.path.join(args.out, "topic18_transposed_conv.png"),
                    titles=titles, annotate=True, cmap="Purples", fmt="{:.0f}", cell=1.7,
                    suptitle="3x3 transposed convolution, stride 2: weight the filter, copy, sum overlaps")
        save_images([np.array([1, 2], np.float32), np.array([1, 2, 3], np.float32), full_1d, trimmed_1d],
                    os.path.join(args.out, "topic19_transposed_conv_1d.png"),
                    titles=["input [a, b]", "filter [x, y, z]", "stride 2: 5 outputs", "trimmed to 4"],
                    annotate=True, cmap="Purples", fmt="{:.0f}", cell=1.9)
    else:
        print("(matplotlib is not installed: no pictures)")
    return {"full": full, "trimmed": trimmed, "full_1d": full_1d, "trimmed_1d": trimmed_1d, "grad_matches": same}


if __name__ == "__main__":
    main()
