"""One training epoch of ``demos/mnist.py`` with tinygrad_cnn, and the same epoch in PyTorch.

    python benchmarks/mnist_epoch.py --data-dir /path/to/datasets            # full epoch, 1 thread
    python benchmarks/mnist_epoch.py --limit 6400 --json out.json             # quick check
    python benchmarks/mnist_epoch.py --torch-data dataloader                  # torch's DataLoader side

What runs (both sides from the same initial weights, on the same batches in the same order):

* **tinygrad_cnn**: the demo's own pieces, imported from ``demos/``: its dataset and transform
  (``MNIST`` with ``ToTensor`` + ``Normalize(0.1307, 0.3081)``, no augmentation), its model
  (``models.lenet5``), its option defaults (``mnist.build_parser()``: batch 64, SGD with
  Nesterov momentum 0.9, weight decay 5e-4, one-cycle schedule peaking at lr 0.1 over the
  demo's default 3 epochs), its optimizer builder (``_common.make_optimizer``), its epoch
  loader (``DataLoader(..., shuffle=True, drop_last=True, seed=_common.epoch_seed(seed, 0))``
  with background prefetch) and its test-set evaluation (``_common.evaluate``). The demo's
  training function ``_common.fit`` cannot warm up outside the timed epoch nor report where
  the time goes, and it also evaluates, checkpoints and plots inside the epoch; so the body of
  its loop (forward, cross-entropy, zero_grad, backward, optimizer step, scheduler step,
  ``loss.item()``, the running accuracy) is replicated here line for line, minus the progress
  bar and checkpoints. The timed epoch is epoch 1 of the demo's default 3-epoch run.
* **PyTorch**: the same LeNet-5 (``nn.Sequential`` blocks with the same ``state_dict`` keys,
  loaded with our initial weights), ``torch.optim.SGD`` and ``torch.optim.lr_scheduler.
  OneCycleLR`` with the same hyper-parameters, the same loop body. Data, ``--torch-data``:
  ``tensor`` (default) keeps the uint8 images in one tensor and makes each batch by indexing,
  ``/255`` and normalising (the same work our batch transforms do); ``dataloader`` uses
  ``torch.utils.data.DataLoader`` (num_workers=0) over a Dataset that converts and normalises
  image by image, as a torchvision ``ToTensor()`` + ``Normalize`` script would.

Both sides use ``--threads`` threads (environment variables set before NumPy, Numba and torch
load; ``tinygrad_cnn.set_num_threads`` and ``torch.set_num_threads``). Before the timed
epoch each side trains one step of a throw-away model on the first batch: its time (JIT
compilation or Numba cache loading for us) is reported as warm-up and not counted. The epoch
time is wall time from making the loader to the last step; evaluation is timed separately.
"""
from __future__ import annotations

import os
import sys


def _early_threads(argv: list) -> int:
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else (
            arg.split("=", 1)[1] if arg.startswith("--threads=") else None)
        if value is not None:
            try:
                return max(1, int(value))
            except ValueError:
                return 1  # argparse reports it
    return 1


# BLAS, OpenMP (torch) and Numba read their thread counts when they load.
_THREADS = _early_threads(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(_THREADS)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "demos"))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Optional  # noqa: E402

import numpy as np  # noqa: E402

import _common  # noqa: E402  (the demo's training helpers)
import mnist as demo  # noqa: E402  (demos/mnist.py)

import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, models  # noqa: E402
from tinygrad_cnn.data import DataLoader, DatasetNotFoundError, Subset, transforms as T  # noqa: E402


class _Phases:
    """Accumulates seconds per phase of a training step."""

    NAMES = ("data", "forward", "backward", "optimizer", "bookkeeping")

    def __init__(self) -> None:
        self.seconds = {name: 0.0 for name in self.NAMES}

    def add(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[name] += now - start
        return now


class _IndexDataset:
    """``ds[index_array]`` is the index array: a twin DataLoader over it yields the batch
    indices the demo's loader uses (its randomness does not depend on the dataset)."""
    batch_indexable = True

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: Any) -> Any:
        return np.asarray(index, dtype=np.int64)


# --------------------------------------------------------------------------- tinygrad_cnn
def ours_warmup(train_set: Any, args: argparse.Namespace, steps: int) -> Dict[str, float]:
    """One step (then a second) of a throw-away model on the first batch."""
    images, labels = train_set[np.arange(args.batch_size)]
    tg.manual_seed(12345)
    model = models.lenet5(num_classes=10)
    optimizer, scheduler = _common.make_optimizer(model, args, steps)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        logits = model(Tensor(images))
        loss = F.cross_entropy(logits, Tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss.item()
        times.append(time.perf_counter() - start)
    return {"first_step_s": times[0], "second_step_s": times[1]}


def timed_epoch(name: str, model: Any, cross_entropy: Any, optimizer: Any, scheduler: Any, batches: Any,
                label_smoothing: float) -> Dict[str, Any]:
    """The demo's training loop body, written once for both libraries (they share the API):
    ``batches`` yields (inputs, labels) as the library's tensors. Times each phase."""
    phases = _Phases()
    batch_labels: List[np.ndarray] = []
    loss_sum, correct, seen = 0.0, 0, 0
    t = time.perf_counter()
    for x, y in batches:
        t = phases.add("data", t)
        logits = model(x)
        loss = cross_entropy(logits, y, label_smoothing=label_smoothing)
        t = phases.add("forward", t)
        optimizer.zero_grad()
        loss.backward()
        t = phases.add("backward", t)
        optimizer.step()
        scheduler.step()
        t = phases.add("optimizer", t)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"{name}: the training loss became {loss_value} at step {len(batch_labels) + 1}")
        labels = np.array(y.numpy(), copy=True)
        loss_sum += loss_value * len(labels)
        correct += int((logits.detach().numpy().argmax(axis=1) == labels).sum())
        seen += len(labels)
        batch_labels.append(labels)
        t = phases.add("bookkeeping", t)
    return {"steps": len(batch_labels), "images": seen, "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1), "phases_s": phases.seconds, "_labels": batch_labels}


def ours_epoch(train_set: Any, test_set: Any, args: argparse.Namespace, steps: int, seed: int) -> Dict[str, Any]:
    tg.manual_seed(seed)
    model = models.lenet5(num_classes=10)
    initial = {k: np.array(v.numpy(), copy=True) for k, v in model.state_dict().items()}
    optimizer, scheduler = _common.make_optimizer(model, args, steps)
    model.train()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        seed=_common.epoch_seed(seed, 0))
    iterator = iter(loader)
    try:
        batches = ((Tensor(images), Tensor(labels)) for _, (images, labels) in zip(range(steps), iterator))
        run = timed_epoch("tinygrad_cnn", model, F.cross_entropy, optimizer, scheduler, batches,
                          args.label_smoothing)
    finally:
        _common._close(iterator)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    start = time.perf_counter()
    test_loss, test_acc, _ = _common.evaluate(model, test_set, args.eval_batch_size)
    eval_s = time.perf_counter() - start
    return dict(run, epoch_s=wall, cpu_s=cpu, test_loss=test_loss, test_acc=test_acc, eval_s=eval_s,
                _initial=initial)


def ours_data_only(train_set: Any, args: argparse.Namespace, steps: int, seed: int) -> float:
    """Seconds to make the epoch's batches alone (what the prefetch thread does meanwhile)."""
    start = time.perf_counter()
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        seed=_common.epoch_seed(seed, 0), prefetch=False)
    for i, _ in enumerate(loader):
        if i + 1 >= steps:
            break
    return time.perf_counter() - start


# --------------------------------------------------------------------------- PyTorch
def torch_lenet5(torch: Any) -> Any:
    nn = torch.nn

    class LeNet5(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                                          nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
            self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(inplace=True), nn.Linear(120, 84),
                                            nn.ReLU(inplace=True), nn.Linear(84, 10))

        def forward(self, x: Any) -> Any:
            return self.classifier(self.features(x).flatten(1))

    return LeNet5()


def torch_optimizer(torch: Any, model: Any, args: argparse.Namespace, steps: int) -> Any:
    nesterov = args.nesterov and args.momentum > 0
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, nesterov=nesterov)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * steps,
                                                    cycle_momentum=args.momentum > 0)
    return optimizer, scheduler


def torch_batches(torch: Any, mode: str, images_u8: np.ndarray, labels: np.ndarray, order: List[np.ndarray],
                  mean: float, std: float) -> Any:
    """An iterable of (images float32 (B, 1, 28, 28), labels int64 (B,)) in the order ``order``."""
    if mode == "tensor":
        x_all = torch.from_numpy(np.ascontiguousarray(images_u8)).unsqueeze(1)
        y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))

        def generate() -> Any:
            for idx in order:
                index = torch.from_numpy(idx)
                x = x_all[index].float().div_(255.0).sub_(mean).div_(std)
                yield x, y_all[index]
        return generate()

    class PerImage(torch.utils.data.Dataset):
        """Like torchvision's ToTensor() + Normalize: one image at a time."""

        def __len__(self) -> int:
            return len(images_u8)

        def __getitem__(self, i: int) -> Any:
            x = torch.from_numpy(images_u8[i]).unsqueeze(0).float().div_(255.0).sub_(mean).div_(std)
            return x, int(labels[i])

    return torch.utils.data.DataLoader(PerImage(), batch_sampler=[idx.tolist() for idx in order], num_workers=0)


def torch_step(torch: Any, model: Any, optimizer: Any, scheduler: Any, x: Any, y: Any) -> Any:
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return logits, loss


def torch_warmup(torch: Any, first: Any, args: argparse.Namespace, steps: int) -> Dict[str, float]:
    torch.manual_seed(12345)
    model = torch_lenet5(torch)
    optimizer, scheduler = torch_optimizer(torch, model, args, steps)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        _, loss = torch_step(torch, model, optimizer, scheduler, *first)
        loss.item()
        times.append(time.perf_counter() - start)
    return {"first_step_s": times[0], "second_step_s": times[1]}


def torch_epoch(torch: Any, initial: Dict[str, np.ndarray], batches: Any, test_x: Any, test_y: Any,
                args: argparse.Namespace, steps: int) -> Dict[str, Any]:
    model = torch_lenet5(torch)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in initial.items()}, strict=True)
    optimizer, scheduler = torch_optimizer(torch, model, args, steps)
    model.train()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = timed_epoch("torch", model, torch.nn.functional.cross_entropy, optimizer, scheduler, batches,
                      args.label_smoothing)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    start = time.perf_counter()
    model.eval()
    test_loss_sum, test_correct = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(test_y), args.eval_batch_size):
            logits = model(test_x[lo:lo + args.eval_batch_size])
            target = test_y[lo:lo + args.eval_batch_size]
            test_loss_sum += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            test_correct += int((logits.argmax(dim=1) == target).sum())
    eval_s = time.perf_counter() - start
    n_test = max(len(test_y), 1)
    return dict(run, epoch_s=wall, cpu_s=cpu, test_loss=test_loss_sum / n_test, test_acc=test_correct / n_test,
                eval_s=eval_s)


# --------------------------------------------------------------------------- report
def _table(result: Dict[str, Any]) -> str:
    o, t = result["tinygrad_cnn"], result["torch"]
    rows = [("epoch wall time (s)", f"{o['epoch_s']:.2f}", f"{t['epoch_s']:.2f}", f"{result['ratio']:.2f}x"),
            ("epoch CPU time, all threads (s)", f"{o['cpu_s']:.2f}", f"{t['cpu_s']:.2f}",
             f"{o['cpu_s'] / t['cpu_s']:.2f}x" if t["cpu_s"] > 0 else "-"),
            ("images/s", f"{o['images_per_s']:.0f}", f"{t['images_per_s']:.0f}", ""),
            ("ms/step (epoch time / steps)", f"{1e3 * o['epoch_s'] / o['steps']:.2f}",
             f"{1e3 * t['epoch_s'] / t['steps']:.2f}", ""),
            ("warm-up: first step (s), not in the epoch", f"{o['warmup']['first_step_s']:.3f}",
             f"{t['warmup']['first_step_s']:.3f}", ""),
            ("second step (ms)", f"{1e3 * o['warmup']['second_step_s']:.2f}",
             f"{1e3 * t['warmup']['second_step_s']:.2f}", ""),
            ("train loss (epoch mean)", f"{o['train_loss']:.4f}", f"{t['train_loss']:.4f}", ""),
            ("train accuracy", f"{100 * o['train_acc']:.2f}%", f"{100 * t['train_acc']:.2f}%", ""),
            ("test loss / accuracy", f"{o['test_loss']:.4f} / {100 * o['test_acc']:.2f}%",
             f"{t['test_loss']:.4f} / {100 * t['test_acc']:.2f}%", ""),
            ("test evaluation (s), not in the epoch", f"{o['eval_s']:.2f}", f"{t['eval_s']:.2f}", "")]
    lines = ["| | tinygrad_cnn | PyTorch | ours / torch |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", "Where the epoch's wall time goes (seconds, main thread):", "",
              "| phase | tinygrad_cnn | PyTorch |", "| --- | ---: | ---: |"]
    for name in _Phases.NAMES:
        lines.append(f"| {name} | {o['phases_s'][name]:.2f} | {t['phases_s'][name]:.2f} |")
    lines.append(f"| (our batches made alone, no training: {o['data_only_s']:.2f} s; done by the "
                 "prefetch thread during the epoch) | | |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist_epoch.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="folder with the MNIST IDX files (or DIR/mnist/); default: $TINYGRAD_CNN_DATA, "
                             "then the user cache, as demos/mnist.py")
    parser.add_argument("--limit", metavar="N", type=int, default=None,
                        help="train on the first N training images only (quick check)")
    parser.add_argument("--threads", metavar="N", type=int, default=1,
                        help="threads for both frameworks (default 1, the demo's default)")
    parser.add_argument("--torch-data", choices=("tensor", "dataloader"), default="tensor",
                        help="how the PyTorch side makes batches (default tensor; see above)")
    parser.add_argument("--seed", type=int, default=0, help="the demo's --seed (default 0)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise SystemExit(f"--threads must be >= 1, got {args.threads}")
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"--limit must be >= 1, got {args.limit}")

    import torch  # after the thread environment is set
    tg.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)

    # The demo's defaults: batch 64, lr 0.1, momentum 0.9 (Nesterov), wd 5e-4, one-cycle, 3 epochs.
    recipe = demo.build_parser().parse_args([])
    cls, mean, std, default_epochs = demo.DATASETS["mnist"][:4]
    recipe.epochs = default_epochs
    transform = T.Compose([T.ToTensor(), T.Normalize((mean,), (std,))])
    try:
        full_train = cls(root=args.data_dir, train=True, transform=transform)
        test_set = cls(root=args.data_dir, train=False, transform=transform)
    except DatasetNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_train = len(full_train) if args.limit is None else min(args.limit, len(full_train))
    train_set = full_train if n_train == len(full_train) else Subset(full_train, np.arange(n_train))
    steps = n_train // recipe.batch_size
    if steps == 0:
        print(f"error: --limit {args.limit} is smaller than the batch size {recipe.batch_size}", file=sys.stderr)
        return 2

    print(f"MNIST epoch: {n_train} training images, {steps} steps of {recipe.batch_size}, "
          f"{len(test_set)} test images, {args.threads} thread(s); one-cycle over {recipe.epochs} epochs, "
          f"epoch 1 timed; torch data: {args.torch_data}", flush=True)

    load_before = os.getloadavg()[0]
    # ---- tinygrad_cnn
    warm = ours_warmup(train_set, recipe, steps)
    ours = ours_epoch(train_set, test_set, recipe, steps, args.seed)
    ours["warmup"] = warm
    ours["data_only_s"] = ours_data_only(train_set, recipe, steps, args.seed)
    print(f"tinygrad_cnn: {ours['epoch_s']:.2f} s, train loss {ours['train_loss']:.4f}, "
          f"test acc {100 * ours['test_acc']:.2f}%", flush=True)

    # ---- PyTorch, same initial weights, same batches
    twin = DataLoader(_IndexDataset(n_train), batch_size=recipe.batch_size, shuffle=True, drop_last=True,
                      seed=_common.epoch_seed(args.seed, 0), prefetch=False)
    order = [idx for _, idx in zip(range(steps), twin)]
    images_u8 = np.asarray(full_train.data)[:n_train]
    labels = np.asarray(full_train.targets)[:n_train]
    same_batches = len(order) == len(ours["_labels"]) and all(
        np.array_equal(labels[idx], lab) for idx, lab in zip(order, ours["_labels"]))
    test_x = torch.from_numpy(np.ascontiguousarray(test_set.arrays()[0]))
    test_y = torch.from_numpy(np.asarray(test_set.targets, dtype=np.int64))
    first = next(iter(torch_batches(torch, args.torch_data, images_u8, labels, order[:1], mean, std)))
    twarm = torch_warmup(torch, first, recipe, steps)
    theirs = torch_epoch(torch, ours["_initial"], torch_batches(torch, args.torch_data, images_u8, labels, order,
                                                                mean, std),
                         test_x, test_y, recipe, steps)
    theirs["warmup"] = twarm
    same_batches = same_batches and all(np.array_equal(a, b) for a, b in zip(theirs["_labels"], ours["_labels"]))
    print(f"PyTorch:      {theirs['epoch_s']:.2f} s, train loss {theirs['train_loss']:.4f}, "
          f"test acc {100 * theirs['test_acc']:.2f}%", flush=True)

    for side in (ours, theirs):
        side["images_per_s"] = side["images"] / side["epoch_s"]
        for key in [k for k in side if k.startswith("_")]:
            del side[key]
    result = {
        "benchmark": "mnist_epoch",
        "command": "python benchmarks/mnist_epoch.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "threads": args.threads, "train_images": n_train, "test_images": len(test_set), "steps": steps,
        "batch_size": recipe.batch_size,
        "recipe": {"optimizer": "SGD", "lr": recipe.lr, "momentum": recipe.momentum, "nesterov": recipe.nesterov,
                   "weight_decay": recipe.weight_decay, "schedule": recipe.schedule,
                   "schedule_epochs": recipe.epochs, "normalize": [mean, std], "augmentation": None},
        "torch_data": args.torch_data,
        "torch_data_note": ("uint8 tensor indexed per batch, /255 and normalised per batch (simple tensor batching)"
                            if args.torch_data == "tensor" else
                            "torch.utils.data.DataLoader(num_workers=0), per-image ToTensor+Normalize, default collate"),
        "same_initial_weights": True, "same_batches": bool(same_batches),
        "tinygrad_cnn": ours, "torch": theirs, "ratio": ours["epoch_s"] / theirs["epoch_s"],
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "tinygrad_cnn": tg.__version__,
                     "python": platform.python_version()},
        "machine": _common.machine_info(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
    }
    print()
    print(_table(result))
    print(f"\nratio ours/torch (epoch wall time): {result['ratio']:.2f}x; same batches in the same order: "
          f"{result['same_batches']}; torch data: {result['torch_data_note']}; load average (1 min) before/after: "
          f"{result['load_average_1min'][0]} / {result['load_average_1min'][1]} on {os.cpu_count()} CPUs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
