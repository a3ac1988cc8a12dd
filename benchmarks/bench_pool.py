"""Pooling / unpooling / upsampling speed, tinygrad_cnn vs PyTorch.

    python benchmarks/bench_pool.py [--reps 15] [--threads N] [--no-warmup]

Both frameworks run in this process on the same float32 data with the same number of threads
(torch.set_num_threads = numba's thread count).  Repetitions are interleaved (ours, torch,
ours, torch, ...) so that machine noise hits both alike; the table shows the median
milliseconds of one call (forward + backward where the row says so, with a random upstream
gradient), the ratio ours/torch and the geometric mean of the ratios.

JIT warm-up is reported separately: the first call of every workload in a fresh process, once
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

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# name, input shape, function name, kwargs, backward?
WORKLOADS = [
    ("max_pool2d 2x2 fwd+bwd (128,64,32,32)", (128, 64, 32, 32), "max_pool2d", dict(kernel_size=2), True),
    ("max_pool2d 2x2 fwd, no grad (128,64,32,32)", (128, 64, 32, 32), "max_pool2d", dict(kernel_size=2), False),
    ("max_pool2d 3x3 s2 p1 fwd+bwd (128,64,32,32)", (128, 64, 32, 32), "max_pool2d",
     dict(kernel_size=3, stride=2, padding=1), True),
    ("max_unpool2d 2x2 fwd+bwd -> (128,64,32,32)", (128, 64, 16, 16), "max_unpool2d", dict(kernel_size=2), True),
    ("avg_pool2d 2x2 fwd+bwd (128,64,32,32)", (128, 64, 32, 32), "avg_pool2d", dict(kernel_size=2), True),
    ("adaptive_avg_pool2d ->1x1 fwd+bwd (128,64,32,32)", (128, 64, 32, 32), "adaptive_avg_pool2d",
     dict(output_size=1), True),
    ("nearest 2x fwd+bwd (128,64,16,16)->32x32", (128, 64, 16, 16), "interpolate",
     dict(scale_factor=2, mode="nearest"), True),
    ("bilinear 2x fwd+bwd (128,64,16,16)->32x32", (128, 64, 16, 16), "interpolate",
     dict(scale_factor=2, mode="bilinear", align_corners=False), True),
    ("nearest 2x fwd, no grad (128,64,16,16)->32x32", (128, 64, 16, 16), "interpolate",
     dict(scale_factor=2, mode="nearest"), False),
    ("bilinear 2x fwd, no grad (128,64,16,16)->32x32", (128, 64, 16, 16), "interpolate",
     dict(scale_factor=2, mode="bilinear", align_corners=False), False),
]


def make_inputs(shape, fname, seed=0):
    """Input (and, for max_unpool, indices from a 2x2 max-pool of a random tensor)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if fname != "max_unpool2d":
        return x, None
    import torch
    big = torch.tensor(rng.standard_normal(shape[:2] + (shape[2] * 2, shape[3] * 2)).astype(np.float32))
    _, indices = torch.nn.functional.max_pool2d(big, 2, return_indices=True)
    return x, indices.numpy()


def ours_step(fname, x, indices, kw, backward, up):
    import tinygrad_cnn as tc
    import tinygrad_cnn.nn.functional as F
    X = tc.Tensor(x, requires_grad=backward)
    fn = getattr(F, fname)
    args = (X, tc.Tensor(indices)) if indices is not None else (X,)
    U = tc.Tensor(up) if up is not None else None

    def step():
        if backward:
            X.grad = None
            fn(*args, **kw).backward(U)
        else:
            with tc.no_grad():
                fn(*args, **kw)
    return step


def torch_step(fname, x, indices, kw, backward, up):
    import torch
    X = torch.tensor(x, requires_grad=backward)
    fn = getattr(torch.nn.functional, fname)
    args = (X, torch.tensor(indices)) if indices is not None else (X,)
    U = torch.tensor(up) if up is not None else None

    def step():
        if backward:
            X.grad = None
            fn(*args, **kw).backward(U)
        else:
            with torch.no_grad():
                fn(*args, **kw)
    return step


def output_shape(fname, x, indices, kw):
    import tinygrad_cnn as tc
    import tinygrad_cnn.nn.functional as F
    args = (tc.Tensor(x[:1]),) + ((tc.Tensor(indices[:1]),) if indices is not None else ())
    with tc.no_grad():
        return (x.shape[0],) + getattr(F, fname)(*args, **kw).shape[1:]


def warmup_only():
    """First call of every workload in this (fresh) process; prints seconds per workload."""
    t0 = time.perf_counter()
    import tinygrad_cnn.nn  # noqa: F401
    t_import = time.perf_counter() - t0
    times = []
    for name, shape, fname, kw, backward in WORKLOADS:
        small = (2,) + shape[1:]          # the JIT cost does not depend on the size
        x, indices = make_inputs(small, fname)
        up = np.ones(output_shape(fname, x, indices, kw), np.float32) if backward else None
        step = ours_step(fname, x, indices, kw, backward, up)
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print("WARMUP", t_import, *times)


def measure_warmup():
    """(import s, per-workload first-call s) with an empty numba cache, then with it filled."""
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (compile)", "cached"):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--warmup-only"], env=env,
                                 capture_output=True, text=True, check=True).stdout
            line = [ln for ln in out.splitlines() if ln.startswith("WARMUP")][0]
            vals = [float(v) for v in line.split()[1:]]
            results[label] = (vals[0], vals[1:])
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15, help="interleaved repetitions per workload")
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: numba's)")
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
    print(f"tinygrad_cnn {tinygrad_cnn.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"numba {numba.__version__}; threads: {threads} (numba layer {numba.config.THREADING_LAYER}); "
          f"{args.reps} interleaved repetitions, median ms\n")

    rows, ratios = [], []
    for name, shape, fname, kw, backward in WORKLOADS:
        x, indices = make_inputs(shape, fname)
        up = None
        if backward:
            up = np.random.default_rng(1).standard_normal(output_shape(fname, x, indices, kw)).astype(np.float32)
        ours, theirs = (ours_step(fname, x, indices, kw, backward, up),
                        torch_step(fname, x, indices, kw, backward, up))
        ours(), theirs()          # warm up (JIT, caches, allocator)
        t_ours, t_torch = [], []
        for _ in range(args.reps):
            t = time.perf_counter(); ours(); t_ours.append(time.perf_counter() - t)
            t = time.perf_counter(); theirs(); t_torch.append(time.perf_counter() - t)
        mo, mt = 1e3 * float(np.median(t_ours)), 1e3 * float(np.median(t_torch))
        ratios.append(mo / mt)
        rows.append((name, mo, mt, mo / mt))
        print(f"  {name:50s} {mo:9.2f} {mt:9.2f} {mo / mt:7.2f}", flush=True)

    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print("\n| workload | ours (ms) | torch (ms) | ours/torch |")
    print("| --- | ---: | ---: | ---: |")
    for name, mo, mt, r in rows:
        print(f"| {name} | {mo:.2f} | {mt:.2f} | {r:.2f} |")
    print(f"| **geometric mean** | | | **{geo:.2f}** |")
    print(f"\nworst workload: {max(rows, key=lambda r: r[3])[0]} ({max(ratios):.2f})")

    if not args.no_warmup:
        res = measure_warmup()
        print("\nJIT warm-up (first call of each workload in a fresh process, seconds):\n")
        print("| | import | " + " | ".join(w[0] for w in WORKLOADS) + " | total |")
        print("| --- | ---: |" + " ---: |" * (len(WORKLOADS) + 1))
        for label, (imp, times) in res.items():
            print(f"| {label} | {imp:.2f} | " + " | ".join(f"{t:.2f}" for t in times) + f" | {imp + sum(times):.2f} |")


if __name__ == "__main__":
    main()
