"""Curriculum topic 7: the spatial size of a convolution's output, (W - K + 2P)/S + 1.

    python demos/topic_07_output_size.py --out runs/topic_07

Works through the slide's 7x7 input with a 3x3 filter: no padding (5x5), padding 1 (7x7, the
"same" size, P = (K-1)/2), stride 2 (3x3), and stride 3, where the filter does not fit evenly:
PyTorch floors the division and the last input column is never read (flagged, with the
``output_padding`` that a transposed convolution needs to get the 7 back). An impossible
configuration is rejected with the worked formula. Every explained size is checked against the
shape ``conv2d`` actually returns.

Picture (in --out): topic07_coverage.png, how many filter windows read each input pixel for
each configuration (0 = a dropped pixel). The coverage map is itself a transposed convolution of
ones: conv_transpose2d(ones(out), ones(K, K), stride).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach import explain_conv
from tinygrad_cnn.teach.pictures import has_matplotlib, save_images

CASES = [  # (title, W, K, S, P)
    ("7x7, 3x3 filter", 7, 3, 1, 0),
    ("padding 1", 7, 3, 1, 1),
    ("stride 2", 7, 3, 2, 0),
    ("stride 3", 7, 3, 3, 0),
    ("5x5 filter, P=(K-1)/2=2", 7, 5, 1, 2),
]


def coverage(w: int, k: int, s: int, p: int) -> np.ndarray:
    """How many KxK windows (stride s, padding p) read each pixel of a WxW input."""
    out = (w - k + 2 * p) // s + 1
    ones_out = tc.ones(1, 1, out, out)
    ones_k = tc.ones(1, 1, k, k)
    # conv_transpose scatters each output's window back onto the input it came from
    return F.conv_transpose2d(ones_out, ones_k, stride=s, padding=p,
                              output_padding=(w - k + 2 * p) % s).numpy()[0, 0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_07", help="folder for the pictures (default: %(default)s)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    print("Output size = (W - K + 2P)/S + 1  (floored, as PyTorch)\n")
    results, maps = [], []
    for title, w, k, s, pad in CASES:
        exp = explain_conv((w, w), k, stride=s, padding=pad)
        real = F.conv2d(tc.zeros(1, 1, w, w), tc.zeros(1, 1, k, k), stride=s, padding=pad).shape[2:]
        assert tuple(e.out_size for e in exp) == tuple(real), (exp, real)
        print(f"{title:26s} W={w} K={k} S={s} P={pad}:  {exp[0].worked}  -> output {real[0]}x{real[1]}")
        if exp[0].dropped:
            print(f"{'':26s} ! {exp[0].drop_note()}; {exp[0].inverse}")
        results.append((title, exp[0].out_size, exp[0].dropped))
        maps.append(coverage(w, k, s, pad))

    print("\nP = (K-1)/2 keeps the size (stride 1, odd K):")
    for k in (3, 5, 7):
        print(f"  K={k}: P={(k - 1) // 2}: {explain_conv(28, k, padding=(k - 1) // 2)[0].worked}")
    print("padding='same' with stride 2 (TensorFlow's rule, output = ceil(W/S)):")
    for e in explain_conv((7, 8), 3, stride=2, padding="same"):
        print("  " + str(e))

    print("\nAn impossible configuration is refused with the arithmetic:")
    try:
        explain_conv(7, 9)
    except ValueError as err:
        print("  ValueError:", err)
    try:
        F.conv2d(tc.zeros(1, 1, 7, 7), tc.zeros(1, 1, 9, 9))
    except ValueError as err:
        print("  conv2d says:", err)

    if has_matplotlib():
        save_images(maps, os.path.join(args.out, "topic07_coverage.png"),
                    titles=[f"{t}\n-> {o}x{o}" + (f", drops {d}" if d else "") for t, o, d in results],
                    annotate=True, cmap="Blues", vmin=0, fmt="{:.0f}",
                    suptitle="windows reading each pixel of a 7x7 input (0 = never read)")
    else:
        print("(matplotlib is not installed: no picture)")
    return results


if __name__ == "__main__":
    main()
