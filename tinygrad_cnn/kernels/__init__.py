"""Numba kernels (numpy arrays and ints in, arrays out); see ARCHITECTURE.md.

Threading: parallel kernels alternate with OpenBLAS calls in every training step. Numba's
default OpenMP layer keeps its threads spinning after each parallel loop, which starves
OpenBLAS's threads on a small machine (measured 10-50x slowdowns on 2 cores). The
``workqueue`` layer parks idle threads instead, so it is chosen here unless the user picked a
layer with ``NUMBA_THREADING_LAYER`` (it must be set before the first parallel kernel runs).
Caveat of workqueue: parallel kernels must not be launched from several Python threads at once.
"""
import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

# ------------------------------------------------------------------------------------------
# Small work runs serially. Launching a parallel loop costs ~35 us with the workqueue layer
# (even with one thread), more than a whole small kernel: a LeNet-sized ReLU backward takes
# 40 us. So every parallel kernel has a serial twin, compiled from the same Python function;
# ``parallel_kernel`` chooses between them per call by the amount of work.
# ------------------------------------------------------------------------------------------
import functools  # noqa: E402
import types  # noqa: E402

PARALLEL_MIN_WORK = 1 << 20     # elements of the first argument below which serial wins


def _renamed(f, suffix: str):
    """The same Python function under another name (so Numba caches its build separately)."""
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix, f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + suffix
    twin.__doc__ = f.__doc__
    return twin


# Memory-bound passes (ReLU, batch-norm) gain little from a second thread on these machines
# (one core nearly saturates main-memory bandwidth), so they go parallel only for large
# arrays: at 2 threads the MobileNet-style step (batch norms of 4M and 8M elements) 3-10%
# faster with this threshold; ResNet-20's 0.5-2M-element ones got slower parallel.
MEMORY_BOUND_MIN_WORK = 1 << 22


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
            if args[0].size >= (call.min_work or PARALLEL_MIN_WORK) and numba.get_num_threads() > 1:
                return call.parallel(*args)
            return call.serial(*args)
        call.parallel, call.serial, call.min_work = par, ser, min_work
        return call
    return wrap
