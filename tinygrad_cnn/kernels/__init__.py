"""Numba kernels (numpy arrays and ints in, arrays out); see ARCHITECTURE.md.

Threading layer. Parallel kernels alternate with BLAS calls and with the conv chunks on our own
Python threads in every training step, so the layer's idle threads must give their core back
quickly, and a launch must be cheap. Measured on the 2-core VMs (one tiny parallel loop):

    layer                          launch, threads busy   after 2 ms idle   after 10 ms idle
    workqueue                      136 us                 114 us            169 us
    tbb (Intel oneTBB)             1.4 us                  12 us             13 us
    omp, passive (no spinning)      50 us                  52 us            112 us
    omp, libgomp's default spin    1.3 us                 2.9 us             40 us

The library prefers TBB (the ``tbb`` wheel is a dependency on x86-64; its library is loaded from
the wheel here, as a pip install does not put it on the loader's path), then workqueue. Same
code, two full runs of benchmarks/train_step.py at 2 threads with each layer: ResNet-20 1.28 /
1.29 x PyTorch with TBB against 1.36 / 1.39 with workqueue, the MobileNet-style net 0.94 / 0.97
against 1.05 / 1.09. OpenMP is not chosen by default:
GNU OpenMP is one library per process, shared with PyTorch's (whichever is imported first sets
the spin policy for both), its default spinning takes the core that BLAS or a conv chunk wants
next (10-50x slowdowns seen in session 1), and it is not fork-safe. A user's choice wins:
``NUMBA_THREADING_LAYER`` / ``NUMBA_THREADING_LAYER_PRIORITY`` are left alone.

If the user does pick GNU OpenMP: a process forked after its threads started must not start a
parallel loop (Numba terminates it), so in such a child every kernel runs its serial twin
(``os.register_at_fork``); results are the same, as the kernels do not depend on the thread count.
"""
import ctypes
import os

import numba

FORKED_AFTER_OMP = False      # True in a child forked after GNU OpenMP's threads started


def _load_tbb() -> bool:
    """Load libtbb from the ``tbb`` wheel (so that Numba's TBB layer finds it); False if absent."""
    try:
        from importlib import metadata
        files = metadata.files("tbb") or []
    except Exception:           # not installed (or no metadata)
        return False
    for f in files:
        if f.name in ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll"):
            try:
                ctypes.CDLL(str(f.locate()), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
                return True
            except OSError:
                return False
    return False


def _start_threading_layer() -> None:
    _load_tbb()                 # (also for a user who asks for the tbb layer by name)
    if "NUMBA_THREADING_LAYER" in os.environ or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return
    numba.config.THREADING_LAYER = "default"
    numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]


def _after_fork_in_child() -> None:
    global FORKED_AFTER_OMP
    try:
        FORKED_AFTER_OMP = numba.threading_layer() == "omp"
    except ValueError:                  # no layer started in the parent: the child may start one
        pass


_start_threading_layer()
os.register_at_fork(after_in_child=_after_fork_in_child)


def parallel_threads() -> int:
    """How many threads the parallel kernels use now (1 in a child forked after OpenMP started)."""
    return 1 if FORKED_AFTER_OMP else numba.get_num_threads()


# ------------------------------------------------------------------------------------------
# Small work runs serially. Launching a parallel loop costs 12-20 us with TBB's threads asleep
# (~135 us with workqueue), comparable to a whole small kernel: a LeNet-sized ReLU backward
# takes 40 us. So every parallel kernel has a serial twin, compiled from the same Python function;
# ``parallel_kernel`` chooses between them per call by the amount of work.
# ------------------------------------------------------------------------------------------
import functools  # noqa: E402
import types  # noqa: E402

# Elements of the first argument below which serial wins. With TBB's cheap launches a second
# thread pays from about 64K elements of compute-heavy work (pooling, depthwise, LeNet's first
# conv): at 2 threads LeNet-5 B=64 3.63 -> 3.29 ms, B=256 10.4 -> 9.9 ms, SegNet 10.8 -> 10.4
# ms, ResNet-20 200 -> 195 ms against 1M (with the memory-bound threshold below), MobileNet even.
PARALLEL_MIN_WORK = 1 << 16


def _renamed(f, suffix: str):
    """The same Python function under another name (so Numba caches its build separately)."""
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix, f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + suffix
    twin.__doc__ = f.__doc__
    return twin


# Memory-bound passes (ReLU, batch-norm) have their own threshold, 4x the default (with
# workqueue's costly launches it had been 4M elements; see the measurements above).
MEMORY_BOUND_MIN_WORK = 1 << 18


def parallel_kernel(min_work=None, **options):
    """Decorator: ``njit(parallel=True, **options)`` plus its serial twin; each call runs the
    parallel one only when the first argument (the big array) has at least ``min_work``
    (default ``PARALLEL_MIN_WORK``) elements and Numba has more than one thread. The threshold is
    the ``min_work`` attribute of the returned function (tests and benchmarks may change it)."""
    def wrap(f):
        par = numba.njit(parallel=True, **options)(f)
        ser = numba.njit(**options)(_renamed(f, "_serial"))     # prange runs as range

        @functools.wraps(f)
        def call(*args):
            if args[0].size >= (call.min_work or PARALLEL_MIN_WORK) and parallel_threads() > 1:
                return call.parallel(*args)
            return call.serial(*args)
        call.parallel, call.serial, call.min_work = par, ser, min_work
        return call
    return wrap
