"""Model zoo speed: ResNet-50 eval forward on one 224x224 image, tinygrad_cnn vs PyTorch.

    python benchmarks/bench_models.py [--reps 7] [--threads N] [--out benchmarks/results_models.md]

Both frameworks run in this process, with the same weights (PyTorch's random init copied into
tinygrad_cnn's ``models.resnet50`` through ``models.load_weights``), the same float32 input and
the same number of threads (torch.set_num_threads = numba's thread count). After one warm-up
call each (JIT compilation / cache loading is not timed), repetitions are interleaved (ours,
torch, ours, torch, ...) so machine noise hits both alike. Reports the median milliseconds, the
ratio ours/torch and the largest output difference, and writes them to ``--out``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: numba's)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results_models.md"))
    args = ap.parse_args()

    import numba
    import torch
    import tinygrad_cnn
    from tinygrad_cnn import Tensor, models, no_grad

    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
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

    try:
        load = "load average before timing: %.1f" % os.getloadavg()[0]
    except OSError:
        load = ""
    t0 = time.perf_counter()
    out_ours = run_ours()
    first_ours = time.perf_counter() - t0
    out_torch = run_torch()
    max_diff = float(np.abs(out_ours - out_torch).max())
    scale = float(np.abs(out_torch).max())

    times = {"ours": [], "torch": []}
    cpu_times = {"ours": [], "torch": []}
    for _ in range(args.reps):
        for name, fn in (("ours", run_ours), ("torch", run_torch)):
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu_times[name].append(time.process_time() - c)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    cpu_med = {k: statistics.median(v) * 1e3 for k, v in cpu_times.items()}
    ratio = med["ours"] / med["torch"]
    cpu_ratio = cpu_med["ours"] / cpu_med["torch"]

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    header = (f"machine: {cpu}, {os.cpu_count()} logical CPUs; threads: {threads}; "
              f"tinygrad_cnn {tinygrad_cnn.__version__}, numpy {np.__version__}, numba {numba.__version__}, "
              f"torch {torch.__version__}")
    row = (f"| ResNet-50 eval forward, (1, 3, 224, 224) | {med['ours']:.1f} | {med['torch']:.1f} | "
           f"{ratio:.2f}x | {cpu_med['ours']:.1f} | {cpu_med['torch']:.1f} | {cpu_ratio:.2f}x | "
           f"{max_diff:.1e} (of max {scale:.2f}) |")
    print(header)
    print(f"first call (warm-up, includes JIT/cache load): {first_ours * 1e3:.0f} ms")
    print(f"median of {args.reps}: ours {med['ours']:.1f} ms, torch {med['torch']:.1f} ms, ratio {ratio:.2f}x; "
          f"CPU time ours {cpu_med['ours']:.1f} ms, torch {cpu_med['torch']:.1f} ms, ratio {cpu_ratio:.2f}x; "
          f"max |diff| {max_diff:.2e}; {load}")

    columns = ["workload", "ours wall ms", "PyTorch wall ms", "wall ratio (ours / torch)", "ours CPU ms",
               "PyTorch CPU ms", "CPU ratio", "max abs output difference"]
    table_head = "| " + " | ".join(columns) + " |\n" + "| --- " * len(columns) + "|"
    text = f"""# Model zoo benchmark

`python benchmarks/bench_models.py --reps {args.reps}` ({datetime.date.today().isoformat()})

{header}

Same weights and input for both; one warm-up call each, then {args.reps} interleaved repetitions;
median milliseconds of one forward pass in eval mode under `no_grad`: wall clock, and process
CPU time (all threads together), which is less disturbed when other jobs share the machine
({load}).

{table_head}
{row}

First call of tinygrad_cnn in this process (JIT compile or Numba cache load included):
{first_ours * 1e3:.0f} ms. The machine is shared; absolute times vary run to run, the ratio
(same run, interleaved) is the figure to compare.
"""
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
