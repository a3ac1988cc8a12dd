"""Convolution speed: forward + backward of representative layers, tinygrad_cnn vs PyTorch.

    python benchmarks/bench_conv.py [--reps 15] [--threads N] [--no-warmup]

Both frameworks run in this process on the same float32 data with the same number of threads
(torch.set_num_threads = numba's thread count). Repetitions are interleaved (ours, torch,
ours, torch, ...) so that machine noise hits both alike; the table shows median milliseconds
of one forward + backward (gradients of input, weight and bias, except for a first layer whose
input needs no gradient), the ratio ours/torch and the geometric mean of the ratios.

JIT warm-up is reported separately: the first call of every layer in a fresh process, once
with an empty Numba cache (compilation) and once with the cache filled (loading).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time


def _threads_from_argv():
    """``--threads N`` must reach OpenBLAS and Numba before numpy is imported."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


if _threads_from_argv():
    for _var in ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[_var] = _threads_from_argv()

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# PyTorch's OpenMP threads spin after every op by default. Interleaved with our OpenBLAS and
# Numba threads on a 2-core machine, that spinning steals the cores from whichever framework
# runs next (and on a loaded machine it slows PyTorch itself by 10-100x). Passive waiting
# parks them instead. Set OMP_WAIT_POLICY yourself to override (it must be set before torch
# is imported).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# name, kind, x shape, weight shape, kwargs, input needs grad
LAYERS = [
    ("LeNet conv1 B=64", "conv", (64, 1, 28, 28), (6, 1, 5, 5), dict(padding=2), False),
    ("LeNet conv2 B=64", "conv", (64, 6, 14, 14), (16, 6, 5, 5), dict(), True),
    ("LeNet conv1 B=256", "conv", (256, 1, 28, 28), (6, 1, 5, 5), dict(padding=2), False),
    ("LeNet conv2 B=256", "conv", (256, 6, 14, 14), (16, 6, 5, 5), dict(), True),
    ("ResNet-20 3x3 16ch 32x32 B=128", "conv", (128, 16, 32, 32), (16, 16, 3, 3), dict(padding=1), True),
    ("ResNet-20 3x3 32ch 16x16 B=128", "conv", (128, 32, 16, 16), (32, 32, 3, 3), dict(padding=1), True),
    ("ResNet-20 3x3 64ch 8x8 B=128", "conv", (128, 64, 8, 8), (64, 64, 3, 3), dict(padding=1), True),
    ("depthwise 3x3 64ch 32x32 B=64", "conv", (64, 64, 32, 32), (64, 1, 3, 3), dict(padding=1, groups=64), True),
    ("pointwise 1x1 64->64 32x32 B=64", "conv", (64, 64, 32, 32), (64, 64, 1, 1), dict(), True),
    ("conv_transpose 3x3 s2 64->32 16->32 B=64", "transpose", (64, 64, 16, 16), (64, 32, 3, 3),
     dict(stride=2, padding=1, output_padding=1), True),
]


def make_data(xs, ws, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / math.sqrt(np.prod(ws[1:]))).astype(np.float32)
    return x, w


def ours_step(kind, x, w, b, kw, need_x, up):
    import tinygrad_cnn as tc
    import tinygrad_cnn.nn.functional as F
    X = tc.Tensor(x, requires_grad=need_x)
    W, B = tc.Tensor(w, requires_grad=True), tc.Tensor(b, requires_grad=True)
    fn = F.conv2d if kind == "conv" else F.conv_transpose2d

    def step():
        X.grad = W.grad = B.grad = None
        y = fn(X, W, B, **kw)
        y.backward(tc.Tensor(up))
    return step


def torch_step(kind, x, w, b, kw, need_x, up):
    import torch
    X = torch.tensor(x, requires_grad=need_x)
    W, B = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    U = torch.tensor(up)
    fn = torch.nn.functional.conv2d if kind == "conv" else torch.nn.functional.conv_transpose2d

    def step():
        X.grad = W.grad = B.grad = None
        fn(X, W, B, **kw).backward(U)
    return step


def output_shape(kind, xs, ws, kw):
    from tinygrad_cnn import shapes
    n, s = xs[0], kw.get("stride", 1)
    p, op = kw.get("padding", 0), kw.get("output_padding", 0)
    if kind == "conv":
        return (n, ws[0]) + tuple(shapes.conv_output_size(i, k, s, p) for i, k in zip(xs[2:], ws[2:]))
    return (n, ws[1]) + tuple(shapes.conv_transpose_output_size(i, k, s, p, op) for i, k in zip(xs[2:], ws[2:]))


def warmup_only():
    """First call of every layer in this (fresh) process; prints seconds per layer."""
    t0 = time.perf_counter()
    import tinygrad_cnn  # noqa: F401
    t_import = time.perf_counter() - t0
    times = []
    for name, kind, xs, ws, kw, need_x in LAYERS:
        x, w = make_data(xs, ws)
        c_out = ws[0] if kind == "conv" else ws[1]
        up = np.ones(output_shape(kind, xs, ws, kw), np.float32)
        step = ours_step(kind, x, w, np.zeros(c_out, np.float32), kw, need_x, up)
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print("WARMUP", t_import, *times)


def measure_warmup():
    """(import s, per-layer first-call s) with an empty numba cache, then with it filled."""
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "cached"):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--warmup-only"], env=env,
                                 capture_output=True, text=True, check=True).stdout
            line = [ln for ln in out.splitlines() if ln.startswith("WARMUP")][0]
            vals = [float(v) for v in line.split()[1:]]
            results[label] = (vals[0], vals[1:])
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15, help="interleaved repetitions per layer")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both: BLAS, Numba and torch (default: numba's default, the core count)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the JIT warm-up measurement")
    ap.add_argument("--warmup-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.warmup_only:
        warmup_only()
        return

    import numba
    import torch
    import tinygrad_cnn
    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    import tinygrad_cnn.nn.functional as F
    F.conv2d(tinygrad_cnn.randn(1, 2, 4, 4), tinygrad_cnn.randn(1, 2, 3, 3))   # starts numba's threads
    print(f"tinygrad_cnn {tinygrad_cnn.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"numba {numba.__version__}; threads: {threads} (numba layer {numba.threading_layer()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"torch OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}); "
          f"{args.reps} interleaved repetitions, median ms of forward+backward\n")

    warm = None if args.no_warmup else measure_warmup()   # fresh processes, before we load the CPU

    rows, ratios = [], []
    for name, kind, xs, ws, kw, need_x in LAYERS:
        x, w = make_data(xs, ws)
        c_out = ws[0] if kind == "conv" else ws[1]
        b = np.zeros(c_out, np.float32)
        up = np.random.default_rng(1).standard_normal(output_shape(kind, xs, ws, kw)).astype(np.float32)
        ours, theirs = ours_step(kind, x, w, b, kw, need_x, up), torch_step(kind, x, w, b, kw, need_x, up)
        ours(), theirs()          # warm up (JIT, caches, allocator)
        t_ours, t_torch = [], []
        for _ in range(args.reps):
            t = time.perf_counter(); ours(); t_ours.append(time.perf_counter() - t)
            t = time.perf_counter(); theirs(); t_torch.append(time.perf_counter() - t)
        mo, mt = 1e3 * float(np.median(t_ours)), 1e3 * float(np.median(t_torch))
        ratios.append(mo / mt)
        rows.append((name, mo, mt, mo / mt))
        print(f"  {name:42s} {mo:9.2f} {mt:9.2f} {mo / mt:7.2f}   (min {1e3 * min(t_ours):.2f} / "
              f"{1e3 * min(t_torch):.2f})", flush=True)

    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    head = "| layer | ours (ms) | torch (ms) | ours/torch |"
    rule = "| --- | ---: | ---: | ---: |"
    if warm:
        head += " first call, empty JIT cache (s) | first call, cached (s) |"
        rule += " ---: | ---: |"
    print("\n" + head + "\n" + rule)
    for i, (name, mo, mt, r) in enumerate(rows):
        line = f"| {name} | {mo:.2f} | {mt:.2f} | {r:.2f} |"
        if warm:
            line += f" {warm['cold'][1][i]:.2f} | {warm['cached'][1][i]:.2f} |"
        print(line)
    print(f"| **geometric mean** | | | **{geo:.2f}** |" + (" | |" if warm else ""))
    print(f"\nworst layer: {max(rows, key=lambda r: r[3])[0]} ({max(ratios):.2f})")
    if warm:
        print(f"import tinygrad_cnn: {warm['cold'][0]:.2f} s with an empty Numba cache, "
              f"{warm['cached'][0]:.2f} s cached; first calls of all layers together: "
              f"{sum(warm['cold'][1]):.1f} s (compiling) / {sum(warm['cached'][1]):.1f} s (cached).")


if __name__ == "__main__":
    main()
