"""What the training demos share: options, the resumable training loop, checkpoints, curves.

``demos/mnist.py`` and ``demos/cifar10.py`` describe *what* to train (data, model, optimizer);
this module does the rest with tinygrad_cnn's public API only:

* :func:`add_common_arguments` / :func:`parse_args`: ``--data-dir --epochs --batch-size --lr
  --seed --out --resume --limit-batches --checkpoint-every --threads --no-progress ...``;
* :func:`fit`: the training loop with a tqdm bar (running loss and accuracy), an evaluation on
  the test set after every epoch, and a checkpoint written atomically after every epoch, every
  ``--checkpoint-every`` steps and when SIGTERM/SIGINT arrives;
* at the end ``curves.png`` (loss and accuracy per epoch), ``metrics.json`` and
  ``model.safetensors`` in ``--out``.

Resuming reproduces the uninterrupted run bit for bit (same thread count): every random
number of a run is a pure function of ``--seed`` and of what the checkpoint holds.

* The model is initialised right after ``tinygrad_cnn.manual_seed(seed)``.
* Epoch ``e`` reads its batches from a fresh ``DataLoader(..., shuffle=True, seed=s_e)`` with
  ``s_e`` derived from ``(seed, e)`` (:func:`epoch_seed`). The loader draws the epoch's order
  and the seed of the augmentation generator from ``s_e`` alone, so the batches of an epoch,
  augmentation included, do not depend on anything that happened before.
* A checkpoint stores the model, optimizer and scheduler states, ``tinygrad_cnn.get_rng()``'s
  bit-generator state (dropout and ``rand*``), the epoch, the number of steps already done in
  it, the running sums of the epoch and the metrics history. On ``--resume`` the loop rebuilds
  epoch ``e``'s loader and skips the batches already trained on (they are still read, so the
  augmentation generator advances exactly as before), then carries on.

Exit status: 0 when done (or stopped by ``--stop-after-steps``), 143 after SIGTERM and 130
after Ctrl-C (SIGINT), both once the checkpoint is written; run again with ``--resume``.
"""
from __future__ import annotations

import os
import sys


# ---------------------------------------------------------------------------------- threads
# BLAS and Numba read their thread counts when they load, so ``--threads N`` must be seen
# before NumPy is imported. Demos are scripts: their first import is this module.
def _threads_in_argv(argv: list) -> "int | None":
    for i, arg in enumerate(argv):
        value = None
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--threads="):
            value = arg.split("=", 1)[1]
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return None  # argparse reports the bad value later
    return None


def set_thread_environment(n: int) -> None:
    """Ask BLAS (OpenBLAS/MKL/OpenMP) and Numba for ``n`` threads; effective only before
    NumPy and Numba are imported (Numba's count can also be lowered later, see :func:`fit`)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


# ``--threads`` on the command line, else the running demo's DEFAULT_THREADS (None: all cores)
_EARLY_THREADS = _threads_in_argv(sys.argv[1:])
if _EARLY_THREADS is None:
    _EARLY_THREADS = getattr(sys.modules.get("__main__"), "DEFAULT_THREADS", None)
if _EARLY_THREADS is not None and _EARLY_THREADS > 0 and "numpy" not in sys.modules:
    set_thread_environment(_EARLY_THREADS)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, optim  # noqa: E402
from tinygrad_cnn.data import DataLoader  # noqa: E402

try:
    from tqdm.auto import tqdm as _tqdm  # noqa: E402
except ImportError:  # tqdm is optional: a plain line per epoch then
    _tqdm = None

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "tinygrad_cnn-demo-checkpoint"
CHECKPOINT_VERSION = 1
EXIT_SIGTERM, EXIT_SIGINT = 143, 130

# Options that change the trajectory of a run: a resumed run takes them from the checkpoint,
# and giving a different value on the command line is an error.
COMMON_TRAJECTORY_KEYS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                          "seed", "limit_batches", "label_smoothing")

# Options a resumed run takes from the checkpoint unless they are given again (they do not
# change the result). --stop-after-steps, --no-progress and --out are never inherited.
INHERITED_KEYS = ("data_dir", "download", "eval_batch_size", "checkpoint_every", "threads", "no_plot")


# ---------------------------------------------------------------------------------- options
def add_common_arguments(parser: argparse.ArgumentParser, *, epochs: Optional[int], batch_size: Optional[int],
                         lr: Optional[float], momentum: Optional[float] = 0.9, weight_decay: Optional[float] = 5e-4,
                         schedule: Optional[str] = "onecycle", label_smoothing: Optional[float] = 0.0,
                         out: str = "runs/demo", threads: Optional[int] = None) -> None:
    """The options every demo has (see docs/demos.md). A default of None means the demo fills
    it in after parsing (e.g. per dataset or per model, with ``parse_args(fill_defaults=...)``)."""
    def default(value: Any) -> str:
        return f" (default {value})" if value is not None else " (default: see below)"

    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", metavar="DIR", default=None,
                      help="folder holding the dataset (its files, or a sub-folder such as mnist/); "
                           "default: $TINYGRAD_CNN_DATA, then the user cache")
    data.add_argument("--download", action="store_true",
                      help="download the dataset (checksummed) if it is not found")
    data.add_argument("--limit-batches", metavar="N", type=_positive_int, default=None,
                      help="train on at most N batches per epoch and test on at most N batches "
                           "(quick smoke runs)")

    train = parser.add_argument_group("training")
    train.add_argument("--epochs", metavar="N", type=_positive_int, default=epochs,
                       help="passes over the training set" + default(epochs))
    train.add_argument("--batch-size", metavar="N", type=_positive_int, default=batch_size,
                       help="training batch size" + default(batch_size))
    train.add_argument("--lr", type=_positive_float, default=lr,
                       help="peak learning rate of the schedule" + default(lr))
    train.add_argument("--momentum", type=_non_negative_float, default=momentum,
                       help="SGD momentum (one-cycle moves it between 0.95 and 0.85 instead)" + default(momentum))
    train.add_argument("--no-nesterov", dest="nesterov", action="store_false",
                       help="plain momentum instead of Nesterov's")
    train.add_argument("--weight-decay", metavar="WD", type=_non_negative_float, default=weight_decay,
                       help="L2 weight decay" + default(weight_decay))
    train.add_argument("--schedule", choices=SCHEDULES, default=schedule,
                       help="learning-rate schedule, stepped every batch; 'step' divides the lr by 10 at "
                            "50%% and 75%% of training (He et al. 2016)" + default(schedule))
    train.add_argument("--label-smoothing", metavar="EPS", type=_unit_float, default=label_smoothing,
                       help="label smoothing of the cross-entropy loss" + default(label_smoothing))
    train.add_argument("--seed", type=_non_negative_int, default=0,
                       help="seeds initialisation, shuffling and augmentation (default 0)")
    train.add_argument("--eval-batch-size", metavar="N", type=_positive_int, default=1000,
                       help="batch size for evaluating on the test set (default 1000)")

    run = parser.add_argument_group("output, checkpoints and resuming")
    run.add_argument("--out", metavar="DIR", default=None,
                     help=f"folder for {CHECKPOINT_NAME}, model.safetensors, metrics.json and curves.png "
                          f"(default {out}, or the folder of the --resume checkpoint)")
    run.add_argument("--resume", metavar="CHECKPOINT", nargs="?", const="auto", default=None,
                     help=f"continue the run saved in CHECKPOINT (default: OUT/{CHECKPOINT_NAME}); "
                          "the result is bitwise the same as an uninterrupted run")
    run.add_argument("--overwrite", action="store_true",
                     help="start a new run even if --out holds an unfinished one (which is then lost)")
    run.add_argument("--checkpoint-every", metavar="STEPS", type=_non_negative_int, default=100,
                     help="also write the checkpoint every STEPS training steps, so that a killed run "
                          "loses little (0: only after each epoch; default 100)")
    run.add_argument("--stop-after-steps", metavar="STEPS", type=_positive_int, default=None,
                     help="stop (after writing the checkpoint) once the run has done STEPS training "
                          "steps in total, as if interrupted; continue it with --resume")
    run.add_argument("--threads", metavar="N", type=_positive_int, default=threads,
                     help="threads for BLAS and Numba kernels (default: "
                          + (f"{threads}" if threads else "all cores") + "). Results are bitwise reproducible "
                          "for a fixed thread count; on a busy machine --threads 1 is much faster")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch)")
    run.add_argument("--no-plot", action="store_true", help="do not write curves.png")
    parser.set_defaults(_default_out=out)


def _number(kind: Callable[[str], Any], check: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


_positive_int = _number(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
_non_negative_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
_unit_float = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def _explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set:
    """The ``dest`` names the user gave on the command line (defaults left out)."""
    saved = {id(a): a.default for a in parser._actions}
    saved_parser_defaults = dict(parser._defaults)
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        parser._defaults.clear()
        given = parser.parse_args(list(argv))
    finally:
        for action in parser._actions:
            action.default = saved[id(action)]
        parser._defaults.update(saved_parser_defaults)
    return set(vars(given))


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]],
               trajectory_keys: Sequence[str], fill_defaults: Optional[Callable[[argparse.Namespace], None]] = None
               ) -> argparse.Namespace:
    """Parse ``argv``; with ``--resume`` load the checkpoint and take the options that shape
    the run (``trajectory_keys``) from it. Giving one of those with another value than the
    checkpoint's is an error (``parser.error``). ``fill_defaults(args)`` fills in defaults that
    depend on other options (e.g. epochs per dataset) before the comparison.

    Sets ``args.out`` (a Path), ``args.checkpoint_path`` and ``args.checkpoint`` (the loaded
    checkpoint dict, or None for a fresh run).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    explicit = _explicit_options(parser, argv)
    if fill_defaults is not None:
        fill_defaults(args)
    args.checkpoint = None
    if args.resume is None:
        args.out = Path(args.out if args.out is not None else args._default_out)
        args.checkpoint_path = args.out / CHECKPOINT_NAME
        if args.checkpoint_path.is_file() and not args.overwrite:
            unfinished = _unfinished_run(args.checkpoint_path)
            if unfinished:
                parser.error(f"{args.checkpoint_path} holds an unfinished run ({unfinished}): continue it with "
                             "--resume, or start again with --overwrite (or choose another --out)")
        return args

    if args.resume == "auto":
        out = Path(args.out if args.out is not None else args._default_out)
        path = out / CHECKPOINT_NAME
    else:
        path = Path(args.resume)
        if path.is_dir():
            path = path / CHECKPOINT_NAME
        out = Path(args.out) if args.out is not None else path.parent
    if not path.is_file():
        parser.error(f"--resume: no checkpoint at {path} (run without --resume to start a new run, "
                     "or give the checkpoint's path)")
    try:
        checkpoint = load_checkpoint(path)
    except (ValueError, OSError) as exc:  # damaged, foreign or unreadable file
        parser.error(f"--resume: cannot use {path}: {exc}")
    saved = checkpoint["args"]
    if saved.get("demo") != parser.prog_demo_name:
        parser.error(f"--resume: {path} was written by the {saved.get('demo')!r} demo, not "
                     f"{parser.prog_demo_name!r}")
    for key in trajectory_keys:
        if key not in saved:
            continue
        if key in explicit and getattr(args, key) != saved[key]:
            parser.error(f"--resume: --{key.replace('_', '-')} {getattr(args, key)} differs from the "
                         f"checkpoint's {saved[key]!r}; a resumed run keeps the options it started with")
        setattr(args, key, saved[key])
    for key in INHERITED_KEYS:  # conveniences: taken from the checkpoint unless given again
        if key in saved and key not in explicit:
            setattr(args, key, saved[key])
    args.out, args.checkpoint_path, args.checkpoint = out, path, checkpoint
    return args


def make_parser(demo_name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{demo_name}.py", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.prog_demo_name = demo_name  # type: ignore[attr-defined]
    return parser


# ---------------------------------------------------------------------------------- schedules
SCHEDULES = ("onecycle", "cosine", "step", "constant")


def make_optimizer(model: Any, args: argparse.Namespace, steps_per_epoch: int
                   ) -> Tuple[optim.Optimizer, Optional[Any]]:
    """SGD with (Nesterov) momentum and weight decay, and a learning-rate schedule stepped
    after every batch over ``epochs * steps_per_epoch`` steps:

    * ``onecycle``: ``OneCycleLR(max_lr=lr)`` (Smith 2018): warm-up over 30% of the steps
      from lr/25, then cosine annealing to lr/25e4; momentum cycles 0.95 -> 0.85 -> 0.95
      (so ``--momentum`` only sets the starting value the scheduler replaces);
    * ``cosine``: ``CosineAnnealingLR`` from lr down to 0;
    * ``step``: lr, divided by 10 at 50% and 75% of the steps (He et al. 2016: 32k and 48k of
      64k iterations);
    * ``constant``: no schedule.
    """
    total = args.epochs * steps_per_epoch
    nesterov = args.nesterov and args.momentum > 0
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay, nesterov=nesterov)
    if args.schedule == "onecycle":
        scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total,
                                                  cycle_momentum=args.momentum > 0)
    elif args.schedule == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    elif args.schedule == "step":
        scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[total // 2, (3 * total) // 4], gamma=0.1)
    elif args.schedule == "constant":
        scheduler = None
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {args.schedule!r}")
    return optimizer, scheduler


def epoch_seed(seed: int, epoch: int) -> int:
    """The DataLoader seed of ``epoch`` (0-based): a pure function of ``(seed, epoch)``."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0])


# ---------------------------------------------------------------------------------- checkpoints
def load_checkpoint(path: Path) -> Dict[str, Any]:
    checkpoint = tg.load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint of the tinygrad_cnn demos "
                         "(it has no 'format': 'tinygrad_cnn-demo-checkpoint' entry)")
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {checkpoint.get('version')} is not supported "
                         f"(this demo writes version {CHECKPOINT_VERSION})")
    return checkpoint


def _unfinished_run(path: Path) -> Optional[str]:
    """'epoch 3/12, step 40' if the checkpoint at ``path`` is of a run that did not finish."""
    try:
        checkpoint = load_checkpoint(path)
        epoch, epochs = int(checkpoint["progress"]["epoch"]), int(checkpoint["args"]["epochs"])
        step = int(checkpoint["progress"]["step_in_epoch"])
    except Exception:  # not ours or damaged: nothing to protect
        return None
    return f"epoch {epoch + 1}/{epochs}, step {step}" if epoch < epochs else None


def _write_json_atomically(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint."""
    epoch: int = 0            # the epoch being trained (0-based); == epochs when finished
    step_in_epoch: int = 0    # training steps already done in this epoch
    global_step: int = 0
    loss_sum: float = 0.0     # running sums of this epoch's training batches
    correct: int = 0
    seen: int = 0
    elapsed: float = 0.0      # seconds spent training and evaluating, over all sessions
    cpu: float = 0.0          # CPU seconds of this process (all threads) in the same spans
    history: Dict[str, list] = field(default_factory=lambda: {
        "epoch": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [], "lr": [],
        "seconds": [], "cpu_seconds": [], "step_loss": []})

    def to_state(self) -> Dict[str, Any]:
        h = {k: v for k, v in self.history.items() if k != "step_loss"}
        h["step_loss"] = np.asarray(self.history["step_loss"], dtype=np.float64)
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "loss_sum": self.loss_sum, "correct": self.correct, "seen": self.seen, "elapsed": self.elapsed,
                "cpu": self.cpu, "history": h}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "Progress":
        history = {k: list(v) for k, v in state["history"].items() if k != "step_loss"}
        step_loss = state["history"]["step_loss"]
        step_loss = step_loss.data if isinstance(step_loss, Tensor) else np.asarray(step_loss)
        history["step_loss"] = [float(v) for v in step_loss]
        return cls(epoch=int(state["epoch"]), step_in_epoch=int(state["step_in_epoch"]),
                   global_step=int(state["global_step"]), loss_sum=float(state["loss_sum"]),
                   correct=int(state["correct"]), seen=int(state["seen"]), elapsed=float(state["elapsed"]),
                   cpu=float(state.get("cpu", 0.0)), history=history)


# ---------------------------------------------------------------------------------- signals
class StopRequest:
    """Turns SIGTERM and SIGINT into a flag that the loop checks between steps."""

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __bool__(self) -> bool:
        return self.signal is not None


class _Interrupted(Exception):
    pass


# ---------------------------------------------------------------------------------- the loop
def _close(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def evaluate(model: Any, dataset: Any, batch_size: int, limit_batches: Optional[int] = None,
             stop: Optional[StopRequest] = None) -> Tuple[float, float, int]:
    """Mean cross-entropy and accuracy of ``model`` on ``dataset`` (eval mode, no graph).
    Returns ``(loss, accuracy in [0, 1], number of samples)``."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, seed=0)
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    iterator = iter(loader)
    try:
        with tg.no_grad():
            for i, (images, labels) in enumerate(iterator):
                if limit_batches is not None and i >= limit_batches:
                    break
                if stop:
                    raise _Interrupted()
                logits = model(Tensor(images))
                loss_sum += F.cross_entropy(logits, Tensor(labels), reduction="sum").item()
                correct += int((logits.detach().numpy().argmax(axis=1) == labels).sum())
                seen += len(labels)
    finally:
        _close(iterator)
        model.train()
    return loss_sum / max(seen, 1), correct / max(seen, 1), seen


def _bar(total: int, initial: int, desc: str, disable: bool) -> Any:
    if _tqdm is None or disable:
        return None
    return _tqdm(total=total, initial=initial, desc=desc, unit="batch", dynamic_ncols=True, mininterval=0.5,
                 leave=True)


def machine_info() -> Dict[str, Any]:
    info: Dict[str, Any] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "processor": _cpu_name(), "python": platform.python_version(),
                            "numpy": np.__version__, "tinygrad_cnn": getattr(tg, "__version__", "?")}
    try:
        import numba
        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
    except Exception:  # pragma: no cover - numba is a dependency, but be robust
        pass
    try:
        from threadpoolctl import threadpool_info
        info["blas_threads"] = {p.get("internal_api", "?"): p.get("num_threads") for p in threadpool_info()}
    except ImportError:
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        if var in os.environ:
            info[var] = os.environ[var]
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@dataclass
class Task:
    """What a demo trains: filled in by demos/mnist.py and demos/cifar10.py."""
    name: str                                  # demo name, e.g. "mnist"
    title: str                                 # for messages and the plot, e.g. "LeNet-5 on MNIST"
    train_set: Any
    test_set: Any
    build_model: Callable[[], Any]
    build_optimizer: Callable[[Any, int], Tuple[Any, Optional[Any]]] = None  # (model, steps_per_epoch)
    trajectory_keys: Sequence[str] = COMMON_TRAJECTORY_KEYS
    extra: Dict[str, Any] = field(default_factory=dict)   # recorded in metrics.json


def _saved_args(args: argparse.Namespace, task: Task) -> Dict[str, Any]:
    keep = {}
    for key, value in vars(args).items():
        if key.startswith("_") or key in ("checkpoint", "checkpoint_path", "resume", "out"):
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            keep[key] = value
    keep["demo"] = task.name
    return keep


@contextlib.contextmanager
def thread_limit(n: Optional[int]) -> Any:
    """Within the block use at most ``n`` threads in Numba kernels and (with threadpoolctl
    installed) in BLAS; None changes nothing. Restores the previous counts afterwards."""
    if n is None:
        yield
        return
    import numba
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # BLAS keeps the count it read from the environment at start-up
            yield
        else:
            with threadpool_limits(limits=n):
                yield
    finally:
        numba.set_num_threads(previous)


def fit(args: argparse.Namespace, task: Task, log: Callable[[str], None] = print) -> int:
    """Train ``task`` as the options say; returns the process exit status (see module doc)."""
    with thread_limit(args.threads):
        return _fit(args, task, log)


def _fit(args: argparse.Namespace, task: Task, log: Callable[[str], None]) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME  # where this run writes (it may have resumed from elsewhere)

    train_loader_len = len(DataLoader(task.train_set, batch_size=args.batch_size, drop_last=True))
    if train_loader_len == 0:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the training set "
                         f"({len(task.train_set)} samples)")
    steps_per_epoch = train_loader_len if args.limit_batches is None else min(train_loader_len, args.limit_batches)

    tg.manual_seed(args.seed)
    model = task.build_model()
    build_optimizer = task.build_optimizer or (lambda m, n: make_optimizer(m, args, n))
    optimizer, scheduler = build_optimizer(model, steps_per_epoch)
    progress = Progress()
    if args.checkpoint is not None:
        ck = args.checkpoint
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ck["scheduler"])
        tg.get_rng().bit_generator.state = ck["rng"]["tinygrad_cnn"]
        progress = Progress.from_state(ck["progress"])
        log(f"resuming {task.title} from {args.checkpoint_path}: epoch {progress.epoch + 1}/{args.epochs}, "
            f"step {progress.step_in_epoch}/{steps_per_epoch}")
    else:
        log(f"training {task.title}: {len(task.train_set)} training / {len(task.test_set)} test images, "
            f"{sum(int(p.numel()) for p in model.parameters()):,} parameters, "
            f"{args.epochs} epochs of {steps_per_epoch} steps (batch {args.batch_size})")
    saved_args = _saved_args(args, task)

    def save_checkpoint() -> None:
        tg.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "args": saved_args,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict() if scheduler is not None else None,
                 "rng": {"tinygrad_cnn": tg.get_rng().bit_generator.state},
                 "progress": progress.to_state()}, ckpt_path)

    def write_metrics(status: str) -> None:
        h = progress.history
        final = {"epochs_done": len(h["epoch"]), "steps_done": progress.global_step,
                 "train_seconds": round(progress.elapsed, 2), "train_cpu_seconds": round(progress.cpu, 2)}
        if h["test_acc"]:
            final.update(test_acc=h["test_acc"][-1], test_loss=h["test_loss"][-1],
                         best_test_acc=max(h["test_acc"]))
        _write_json_atomically({"demo": task.name, "title": task.title, "status": status, "args": saved_args,
                                "final": final, "history": h, "machine": machine_info(), **task.extra},
                               out / "metrics.json")

    stop = StopRequest()
    session_start, session_cpu = time.perf_counter(), time.process_time()
    counted = counted_cpu = 0.0  # part of this session's time already added to progress

    def account() -> None:
        nonlocal counted, counted_cpu
        now, now_cpu = time.perf_counter() - session_start, time.process_time() - session_cpu
        progress.elapsed += now - counted
        progress.cpu += now_cpu - counted_cpu
        counted, counted_cpu = now, now_cpu

    status = "finished"
    with stop:
        try:
            while progress.epoch < args.epochs:
                epoch = progress.epoch
                epoch_clock = time.perf_counter()
                loader = DataLoader(task.train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                    seed=epoch_seed(args.seed, epoch))
                if progress.step_in_epoch >= steps_per_epoch:  # stopped while evaluating: only that is left
                    loader = []
                bar = _bar(steps_per_epoch, progress.step_in_epoch, f"epoch {epoch + 1}/{args.epochs}",
                           args.no_progress or not loader)
                iterator = iter(loader)
                model.train()
                try:
                    for i, (images, labels) in enumerate(iterator):
                        if i >= steps_per_epoch:
                            break
                        if i < progress.step_in_epoch:
                            if stop:
                                raise _Interrupted()
                            continue  # trained on before the interruption: skip, keeping the random draws
                        logits = model(Tensor(images))
                        loss = F.cross_entropy(logits, Tensor(labels), label_smoothing=args.label_smoothing)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        if scheduler is not None:
                            scheduler.step()
                        loss_value = loss.item()
                        if not math.isfinite(loss_value):
                            raise FloatingPointError(f"the training loss became {loss_value} at step "
                                                     f"{progress.global_step + 1}; try a smaller --lr")
                        progress.step_in_epoch = i + 1
                        progress.global_step += 1
                        progress.loss_sum += loss_value * len(labels)
                        progress.correct += int((logits.detach().numpy().argmax(axis=1) == labels).sum())
                        progress.seen += len(labels)
                        progress.history["step_loss"].append(loss_value)
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix(loss=f"{progress.loss_sum / progress.seen:.4f}",
                                            acc=f"{100 * progress.correct / progress.seen:.2f}%",
                                            lr=f"{optimizer.param_groups[0]['lr']:.3g}", refresh=False)
                        asked_to_stop = (args.stop_after_steps is not None
                                         and progress.global_step >= args.stop_after_steps)
                        if stop or asked_to_stop:
                            raise _Interrupted()
                        if args.checkpoint_every and progress.global_step % args.checkpoint_every == 0:
                            account()
                            save_checkpoint()
                finally:
                    _close(iterator)
                    if bar is not None:
                        bar.close()
                test_loss, test_acc, _ = evaluate(model, task.test_set, args.eval_batch_size, args.limit_batches, stop)
                account()
                h = progress.history
                h["epoch"].append(epoch + 1)
                h["train_loss"].append(progress.loss_sum / max(progress.seen, 1))
                h["train_acc"].append(progress.correct / max(progress.seen, 1))
                h["test_loss"].append(test_loss)
                h["test_acc"].append(test_acc)
                h["lr"].append(optimizer.param_groups[0]["lr"])
                h["seconds"].append(round(progress.elapsed, 2))
                h["cpu_seconds"].append(round(progress.cpu, 2))
                log(f"epoch {epoch + 1}/{args.epochs}: train loss {h['train_loss'][-1]:.4f} "
                    f"acc {100 * h['train_acc'][-1]:.2f}% | test loss {test_loss:.4f} acc {100 * test_acc:.2f}% "
                    f"| {time.perf_counter() - epoch_clock:.1f} s (total {progress.elapsed:.1f} s, "
                    f"{progress.cpu:.1f} s CPU)")
                progress.epoch += 1
                progress.step_in_epoch, progress.loss_sum, progress.correct, progress.seen = 0, 0.0, 0, 0
                save_checkpoint()
                write_metrics("running" if progress.epoch < args.epochs else "finished")
                if not args.no_plot:
                    plot_curves(progress.history, out / "curves.png", task.title, steps_per_epoch,
                                args.label_smoothing)
        except _Interrupted:
            account()
            save_checkpoint()
            status = "interrupted"
            write_metrics(status)
            if not args.no_plot and progress.history["epoch"]:
                plot_curves(progress.history, out / "curves.png", task.title, steps_per_epoch,
                            args.label_smoothing)
            why = ("SIGTERM" if stop.signal == signal.SIGTERM else "Ctrl-C" if stop.signal == signal.SIGINT
                   else f"--stop-after-steps {args.stop_after_steps}")
            log(f"stopped by {why} at epoch {progress.epoch + 1}, step {progress.step_in_epoch}/{steps_per_epoch}; "
                f"checkpoint written to {ckpt_path}; continue with --resume")
            return {signal.SIGTERM: EXIT_SIGTERM, signal.SIGINT: EXIT_SIGINT}.get(stop.signal, 0)

    tg.save(model.state_dict(), out / "model.safetensors")
    h = progress.history
    log(f"done: test accuracy {100 * h['test_acc'][-1]:.2f}% after {args.epochs} epochs, "
        f"{progress.elapsed:.0f} s of training; results in {out}/")
    return 0


# ---------------------------------------------------------------------------------- curves
def plot_curves(history: Dict[str, list], path: Path, title: str, steps_per_epoch: int,
                label_smoothing: float = 0.0) -> bool:
    """Write loss (per step and per epoch) and accuracy (per epoch) curves to ``path`` (PNG).
    Returns False (and warns) if matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no curves.png (pip install matplotlib)", file=sys.stderr)
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.asarray(history["step_loss"], dtype=np.float64)
    if len(steps):
        x = np.arange(1, len(steps) + 1) / steps_per_epoch
        ax_loss.plot(x, steps, color="tab:blue", alpha=0.25, linewidth=0.7, label="train (each batch)")
        window = max(1, min(len(steps) // 20, steps_per_epoch // 5))
        if window > 1:
            smooth = np.convolve(steps, np.ones(window) / window, mode="valid")
            ax_loss.plot(x[window - 1:], smooth, color="tab:blue", linewidth=1.2,
                         label=f"train (mean of {window} batches)")
    epochs = history["epoch"]
    if epochs:
        ax_loss.plot(epochs, history["train_loss"], "o-", color="tab:cyan", label="train (epoch mean)")
        ax_loss.plot(epochs, history["test_loss"], "s-", color="tab:red", label="test")
        ax_acc.plot(epochs, [100 * a for a in history["train_acc"]], "o-", color="tab:blue", label="train")
        ax_acc.plot(epochs, [100 * a for a in history["test_acc"]], "s-", color="tab:red", label="test")
        best = max(history["test_acc"])
        ax_acc.set_title(f"accuracy (last test {100 * history['test_acc'][-1]:.2f}%, best {100 * best:.2f}%)")
    else:
        ax_acc.set_title("accuracy")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_title("loss" if not label_smoothing else
                      f"loss (train: with label smoothing {label_smoothing:g}; test: plain)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("%")
    for ax in (ax_loss, ax_acc):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def run(main: Callable[[Optional[Sequence[str]]], int]) -> None:
    """``if __name__ == "__main__": run(main)``: exit with main's status."""
    sys.exit(main(None))
