"""Model zoo speed: ResNet-50 eval forward on one 224x224 image, tinygrad_cnn vs PyTorch.

    python benchmarks/bench_models.py [--reps 7] [--threads 1 2] [--out benchmarks/results_models.md]

Both frameworks run in one process, with the same weights (PyTorch's random init copied into
tinygrad_cnn's ``models.resnet50`` through ``models.load_weights``), the same float32 input and
the same number of threads (a fresh process per thread count, with OMP/OPENBLAS/MKL/NUMBA
thread variables set). After warm-up calls (JIT compilation / cache loading is not timed),
repetitions are interleaved (ours, torch, ours, torch, ...) so machine noise hits both alike.
Reports median wall and CPU milliseconds, the ratios ours/torch and the largest output
difference, and writes them to ``--out``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def torch_resnet50():
    """torchvision's ResNet-50 architecture written with torch.nn (torchvision is not needed)."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inplanes = 64
            for i, (planes, n) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
                stride = 1 if i == 0 else 2
                down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
                blocks = [Bottleneck(inplanes, planes, stride, down)]
                inplanes = planes * 4
                blocks += [Bottleneck(inplanes, planes) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet50()


def _median_ms(values):
    return statistics.median(values) * 1e3


def time_pair(run_ours, run_torch, reps):
    """Interleaved repetitions; medians of wall-clock and process-CPU milliseconds per framework."""
    wall = {"ours": [], "torch": []}
    cpu = {"ours": [], "torch": []}
    for _ in range(reps):
        for name, fn in (("ours", run_ours), ("torch", run_torch)):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return ({k: _median_ms(v) for k, v in wall.items()}, {k: _median_ms(v) for k, v in cpu.items()})


def measure(reps: int) -> dict:
    """Time both frameworks in this process (thread counts come from the environment)."""
    import numba
    import torch
    import tinygrad_cnn
    from tinygrad_cnn import Tensor, models, no_grad

    torch.manual_seed(0)
    ref = torch_resnet50().eval()
    ours = models.resnet50()
    models.load_weights(ours, {k: v.numpy() for k, v in ref.state_dict().items()})
    ours.eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    xt = torch.from_numpy(x)

    def run_ours():
        with no_grad():
            return ours(Tensor(x)).numpy()

    def run_torch():
        with torch.no_grad():
            return ref(xt).numpy()

    t0 = time.perf_counter()
    out_ours = run_ours()
    first_ours = time.perf_counter() - t0
    out_torch = run_torch()
    run_ours(), run_torch()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    wall, cpu = time_pair(run_ours, run_torch, reps)
    return dict(wall=wall, cpu=cpu, load=load, first_ms=first_ours * 1e3,
                max_diff=float(np.abs(out_ours - out_torch).max()), scale=float(np.abs(out_torch).max()),
                numba_threads=numba.get_num_threads(), torch_threads=torch.get_num_threads(),
                versions=f"tinygrad_cnn {tinygrad_cnn.__version__}, numpy {np.__version__}, "
                         f"numba {numba.__version__}, torch {torch.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="thread counts to time, each in a fresh process (default: all CPUs)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results_models.md"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.reps)))
        return

    results = []
    for threads in args.threads or [os.cpu_count() or 1]:
        # BLAS, OpenMP (torch) and Numba read their thread counts at start-up: one process each
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--reps", str(args.reps)],
                              env=env, capture_output=True, text=True, check=True)
        line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
        r = json.loads(line[len("RESULT "):])
        r["threads"] = threads
        results.append(r)
        w, c = r["wall"], r["cpu"]
        print(f"threads {threads}: median of {args.reps}: ours {w['ours']:.1f} ms, torch {w['torch']:.1f} ms, "
              f"ratio {w['ours'] / w['torch']:.2f}x; CPU time ours {c['ours']:.1f} ms, torch {c['torch']:.1f} ms, "
              f"ratio {c['ours'] / c['torch']:.2f}x; load average {r['load']:.1f}; "
              f"first call {r['first_ms']:.0f} ms; max |diff| {r['max_diff']:.1e}")

    cpu_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    header = f"machine: {cpu_name}, {os.cpu_count()} logical CPUs; {results[0]['versions']}"
    columns = ["workload", "threads", "ours wall ms", "PyTorch wall ms", "wall ratio (ours / torch)",
               "ours CPU ms", "PyTorch CPU ms", "CPU ratio", "load average"]
    rows = ["| " + " | ".join(columns) + " |", "| --- " * len(columns) + "|"]
    for r in results:
        w, c = r["wall"], r["cpu"]
        rows.append(f"| ResNet-50 eval forward, (1, 3, 224, 224) | {r['threads']} | {w['ours']:.1f} | "
                    f"{w['torch']:.1f} | {w['ours'] / w['torch']:.2f}x | {c['ours']:.1f} | {c['torch']:.1f} | "
                    f"{c['ours'] / c['torch']:.2f}x | {r['load']:.1f} |")
    command = "python benchmarks/bench_models.py --reps {}{}".format(
        args.reps, " --threads " + " ".join(map(str, args.threads)) if args.threads else "")
    table = "\n".join(rows)
    text = f"""# Model zoo benchmark

`{command}` ({datetime.date.today().isoformat()})

{header}

Same weights (PyTorch's init copied with `models.load_weights`) and input for both; outputs agree
to {results[0]['max_diff']:.1e} (largest logit {results[0]['scale']:.2f}). Each thread count runs in a
fresh process (BLAS, OpenMP and Numba all limited to that many threads); after warm-up calls,
{args.reps} interleaved repetitions (ours, torch, ours, ...); median milliseconds of one forward
pass in eval mode under `no_grad`: wall clock, and process CPU time (all threads together). The
load average shows how busy the machine was with other jobs: on a shared machine the ratio of
the same run is the figure to compare, and the CPU-time ratio is the least disturbed.

{table}

First call of tinygrad_cnn in a fresh process (JIT compile or Numba cache load included):
{", ".join(f"{r['first_ms']:.0f} ms ({r['threads']} threads)" for r in results)}.
"""
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
