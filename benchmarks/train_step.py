"""Full training steps (forward, loss, backward, SGD step) side by side with PyTorch.

    python benchmarks/train_step.py                # all models, 2 threads
    python benchmarks/train_step.py --models lenet64 resnet20 --reps 10 --threads 1

Each model is written ONCE below against the PyTorch API and built twice, with
``lib = torch`` and ``lib = tinygrad_cnn`` (that is the portability promise), with the same
weights. Each side runs in its OWN worker process, in the environment its users get: importing
tinygrad_cnn tunes glibc's malloc for the whole process (``tinygrad_cnn/_malloc.py``), and
PyTorch sharing that process would profit from it too. The parent drives the workers in
lock-step (one step of ours, one of PyTorch's, ...) so that machine noise hits both alike, and
reports the median ms/step and the ratio ours/PyTorch (turns of a few steps, with a pause between
turns so that one process's spin-waiting thread pools do not steal the cores of the next). A
third worker runs PyTorch with the same
malloc settings (``torch+malloc``), so the table also shows how much of the gap is the
allocator. JIT warm-up (fresh process, cold and warm Numba cache) and the peak memory of one
ResNet-20 step are measured in further subprocesses.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- models, once

def lenet(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def resnet20(lib):
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.pad = stride, cout - cin

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            short = x
            if self.stride != 1 or self.pad:   # option A: subsample + zero-pad channels
                short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
            return F.relu(out + short)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            blocks, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                for i in range(3):
                    blocks.append(Block(cin, cout, stride if i == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.blocks(F.relu(self.bn(self.conv(x))))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
    return Net()


def mobilenet(lib):
    """Depthwise-separable blocks (MobileNet v1 style) on 32x32 inputs."""
    nn = lib.nn

    def sep(cin, cout, stride):
        return [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    layers = [nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
    for cin, cout, s in ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2)):
        layers += sep(cin, cout, s)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10)]
    return nn.Sequential(*layers)


def segnet(lib):
    """A small SegNet-style encoder-decoder: max-pool indices reused by max-unpool."""
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc1 = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.enc2 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)
            self.dec2 = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.dec1 = nn.Conv2d(16, 11, 3, padding=1)

        def forward(self, x):
            x, i1 = self.pool(self.enc1(x))
            x, i2 = self.pool(self.enc2(x))
            x = self.dec2(self.unpool(x, i2))
            return self.dec1(self.unpool(x, i1))
    return Net()


MODELS = {   # name: (builder, input shape, target shape or class count)
    "lenet64": (lenet, (64, 1, 28, 28), 10),
    "lenet256": (lenet, (256, 1, 28, 28), 10),
    "resnet20": (resnet20, (128, 3, 32, 32), 10),
    "mobilenet": (mobilenet, (128, 3, 32, 32), 10),
    "segnet": (segnet, (32, 1, 28, 28), (32, 28, 28)),
}


# ----------------------------------------------------------------------------- one step, two libs

def build_pair(name):
    import torch
    import tinygrad_cnn as tc
    builder, xshape, target = MODELS[name]
    torch.manual_seed(0)
    theirs = builder(torch)
    ours = builder(tc)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xshape).astype(np.float32)
    if isinstance(target, int):
        y = rng.integers(0, target, xshape[0])
    else:
        y = rng.integers(0, 11, target)
    return ours, theirs, x, y


def make_step(lib, model, x, y):
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    X, Y = lib.tensor(x), lib.tensor(y)
    F = lib.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


TUNED_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def worker(lib_name, name, threads):
    """A step server: builds the model, then runs one step per "step" line on stdin and answers
    with its duration in seconds (the first answer includes JIT compilation)."""
    import torch
    torch.set_num_threads(threads)
    if lib_name == "tinygrad_cnn":
        import tinygrad_cnn as lib
        lib.set_num_threads(threads)
    else:
        lib = torch
    ours, theirs, x, y = build_pair(name)
    step = make_step(lib, ours if lib_name == "tinygrad_cnn" else theirs, x, y)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "step":
            break
        times = []
        for _ in range(int(words[1]) if len(words) > 1 else 1):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        print(" ".join(map(str, times)), flush=True)


class Worker:
    def __init__(self, lib_name, name, threads, extra_env=None):
        env = dict(os.environ, **(extra_env or {}))
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", lib_name, name,
                                      "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True)

    def steps(self, n: int = 1) -> list:
        """Run n steps back to back; their durations in seconds."""
        self.proc.stdin.write(f"step {n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker died (exit code {self.proc.wait()})")
        return [float(v) for v in line.split()]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def time_pair(name, reps, threads, warmup=2, block=4, pause=0.1):
    """Median ms/step of ours, torch and torch with our malloc settings: the workers take turns,
    ``block`` timed steps each (after one untimed step that wakes the thread pools), ``reps``
    rounds. Between turns the parent pauses, so that the thread
    pools of the worker that just ran (OpenMP and OpenBLAS threads spin-wait for a while after
    each parallel region) are asleep before the next one starts: with several threads, one
    process's spinning threads would otherwise steal the cores from the other's."""
    workers = [Worker("tinygrad_cnn", name, threads), Worker("torch", name, threads),
               Worker("torch", name, threads, TUNED_MALLOC_ENV)]
    try:
        first = workers[0].steps(1)[0]
        for w in workers[1:]:
            w.steps(1)
        for w in workers:
            w.steps(warmup)
        times = [[] for _ in workers]
        for _ in range(reps):
            for w, t in zip(workers, times):
                time.sleep(pause)
                t.extend(w.steps(block + 1)[1:])    # the first step of a turn wakes the threads
    finally:
        for w in workers:
            w.close()
    ours, theirs, theirs_tuned = (statistics.median(t) * 1e3 for t in times)
    return ours, theirs, theirs_tuned, first


# ----------------------------------------------------------------------------- subprocess probes

_WARMUP_SNIPPET = r"""
import time; t0 = time.perf_counter()
import sys; sys.path.insert(0, {here!r})
import numpy as np, tinygrad_cnn as tc
from train_step import lenet, make_step
m = lenet(tc); x = np.zeros((64, 1, 28, 28), np.float32); y = np.zeros(64, np.int64)
make_step(tc, m, x, y)()
print(time.perf_counter() - t0)
"""

_MEMORY_SNIPPET = r"""
import resource, sys; sys.path.insert(0, {here!r})
import numpy as np
lib_name = {lib!r}
if lib_name == "torch":
    import torch as lib; torch = lib; torch.set_num_threads({threads})
else:
    import tinygrad_cnn as lib; lib.set_num_threads({threads})
from train_step import resnet20, make_step
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # after imports, before any model
m = resnet20(lib)
rng = np.random.default_rng(0)
step = make_step(lib, m, rng.standard_normal((128, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 128))
step(); step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0)
"""


def blas_note():
    """Which BLAS kernels NumPy runs (OpenBLAS picks them per CPU, or OPENBLAS_CORETYPE does)."""
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return f"BLAS {info[0].get('internal_api')} {info[0].get('architecture')}" if info else "BLAS ?"
    except ImportError:
        return "BLAS ?"


def warmup_times(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        code = _WARMUP_SNIPPET.format(here=HERE)
        cold = float(subprocess.check_output([sys.executable, "-c", code], env=env).split()[-1])
        warm = float(subprocess.check_output([sys.executable, "-c", code], env=env).split()[-1])
    return cold, warm


def peak_memory(threads):
    out = {}
    for lib in ("tinygrad_cnn", "torch"):
        code = _MEMORY_SNIPPET.format(here=HERE, lib=lib, threads=threads)
        out[lib] = float(subprocess.check_output([sys.executable, "-c", code]).split()[-1])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-subprocess", action="store_true", help="skip warm-up and memory probes")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", nargs=2, metavar=("LIB", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker[0], args.worker[1], args.threads)

    import torch
    print(f"threads={args.threads}  torch {torch.__version__}  reps={args.reps}  {blas_note()}")
    print(f"{'model':<10} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} {'torch+malloc ms':>16} {'ratio':>6} "
          f"{'1st step s':>10}")
    rows = {}
    for name in args.models:
        ours, theirs, tuned, first = time_pair(name, args.reps, args.threads)
        rows[name] = {"ours_ms": ours, "torch_ms": theirs, "ratio": ours / theirs,
                      "torch_tuned_malloc_ms": tuned, "ratio_tuned": ours / tuned, "first_step_s": first}
        print(f"{name:<10} {ours:9.1f} {theirs:9.1f} {ours / theirs:6.2f} {tuned:16.1f} {ours / tuned:6.2f} "
              f"{first:10.2f}", flush=True)
    if not args.no_subprocess:
        cold, warm = warmup_times(args.threads)
        rows["warmup"] = {"cold_cache_s": cold, "warm_cache_s": warm}
        print(f"first LeNet step in a fresh process (import + JIT + step): cold cache {cold:.2f} s, "
              f"warm cache {warm:.2f} s")
        mem = peak_memory(args.threads)
        rows["resnet20_peak_mb"] = mem
        print(f"ResNet-20 B=128 step, peak RSS above the imported library: ours {mem['tinygrad_cnn']:.0f} MB, torch "
              f"{mem['torch']:.0f} MB, ratio {mem['tinygrad_cnn'] / max(mem['torch'], 1e-9):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
