"""Curriculum topic 20: why "transposed"? A convolution is a sparse matrix C; the transposed
convolution multiplies by C^T.

    python demos/topic_20_conv_matrix.py --out runs/topic_20

The slide's case: a 3x3 filter over a 4x4 input (stride 1, no padding) gives a 2x2 output, so
C is 4x16: each row holds the 9 weights w_{i,j} in the positions that output pixel reads, zeros
elsewhere. C^T is 16x4 and maps a 2x2 map back to 4x4: exactly conv_transpose2d. Both identities
are checked numerically with random weights and inputs:

    conv2d(x).flatten()           == C   @ x.flatten()
    conv_transpose2d(y).flatten() == C^T @ y.flatten()

and again for the 3x3 / stride 2 / padding 1 convolution of topic 18.

Pictures (in --out): topic20_C.png and topic20_CT.png (the matrices with their w_{i,j} labels).
"""
import argparse
import os

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach import conv_matrix, conv_transpose_matrix
from tinygrad_cnn.teach.pictures import has_matplotlib, save_matrix


def symbolic_labels(kernel: int, input_size: int, **geometry) -> np.ndarray:
    """C with each entry named w_{i,j} (or '' for a structural zero).

    Built by feeding conv_matrix the weights 1..K*K: entry v in C is the weight number v.
    """
    numbered = np.arange(1, kernel * kernel + 1, dtype=np.float64).reshape(1, 1, kernel, kernel)
    C = conv_matrix(numbered, (1, input_size, input_size), **geometry).astype(int)
    names = np.empty(C.shape, dtype=object)
    for (r, c), v in np.ndenumerate(C):
        names[r, c] = "" if v == 0 else "w%d%d" % divmod(v - 1, kernel)
    return names


def check_identities(rng: np.random.Generator, input_size: int, stride: int, padding: int,
                     output_padding: int = 0):
    """Max |error| of the two identities for a random 3x3 filter; returns (C, errors)."""
    w = rng.normal(size=(1, 1, 3, 3))
    x = rng.normal(size=(1, 1, input_size, input_size))
    C = conv_matrix(w, (1, input_size, input_size), stride=stride, padding=padding)
    y_conv = F.conv2d(tc.Tensor(x), tc.Tensor(w), stride=stride, padding=padding).numpy()
    err_conv = np.abs(C @ x.ravel() - y_conv.ravel()).max()
    y = rng.normal(size=y_conv.shape)
    z = F.conv_transpose2d(tc.Tensor(y), tc.Tensor(w), stride=stride, padding=padding,
                           output_padding=output_padding).numpy()
    M = conv_transpose_matrix(w, y.shape[1:], stride=stride, padding=padding, output_padding=output_padding)
    err_t = np.abs(C.T @ y.ravel() - z.ravel()).max()
    same = z.size == C.shape[1] and np.array_equal(M, C.T)
    return C, err_conv, err_t, same


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/topic_20", help="folder for the pictures (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    labels = symbolic_labels(3, 4)
    print("C for a 3x3 filter over a 4x4 input (4 x 16); row r = output pixel r, column c = input pixel c:")
    for row in labels:
        print("  " + " ".join(f"{v or '0':>3s}" for v in row))
    print("C^T (16 x 4), the slide's matrix:")
    for row in labels.T:
        print("  " + " ".join(f"{v or '0':>3s}" for v in row))

    results = {}
    for name, size, stride, pad, out_pad in [("3x3 over 4x4, stride 1", 4, 1, 0, 0),
                                             ("3x3 over 4x4, stride 2, pad 1 (topic 18)", 4, 2, 1, 1)]:
        C, e1, e2, same = check_identities(rng, size, stride, pad, out_pad)
        print(f"\n{name}: C is {C.shape[0]}x{C.shape[1]}, {np.count_nonzero(C)} of {C.size} entries non-zero")
        print(f"  |conv2d(x) - C x|_max = {e1:.2e}")
        print(f"  |conv_transpose2d(y) - C^T y|_max = {e2:.2e}   (conv_transpose_matrix == C^T: {same})")
        results[name] = (C.shape, e1, e2)

    if has_matplotlib():
        numbered = np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)
        C = conv_matrix(numbered, (1, 4, 4))
        save_matrix(C, os.path.join(args.out, "topic20_C.png"), labels=labels, cmap="Greens",
                    title="C (4x16): conv2d(x) = C x")
        save_matrix(C.T, os.path.join(args.out, "topic20_CT.png"), labels=labels.T, cmap="Greens",
                    title="C^T (16x4): conv_transpose2d(y) = C^T y")
    else:
        print("(matplotlib is not installed: no pictures)")
    return {"labels": labels, "results": results}


if __name__ == "__main__":
    main()
