"""BLAS under our own threads: the worker pool, holding BLAS to one thread, matmul, and the
GEMM that jitted kernels call (``gemm_function``, see the end of this file).

The library parallelises on its own threads (the conv chunks in kernels/conv.py, Numba's
kernels). OpenBLAS's threads would compete with them: after each call they spin for a while
on a core our next kernel wants (LeNet-5 training step at 2 threads: 4.97 ms with OpenBLAS's
threads, 3.96 ms without; one thread: 3.99 ms). So the conv GEMMs and every small product
hold BLAS to one thread while the library uses more than one (``single_thread``); only big
products (a fully-connected layer of AlexNet's size) use BLAS's threads, where they pay
(OpenBLAS's own threading beat row blocks on our threads there: 21 vs 25 ms for
256x4096 @ 4096x4096 at 2 threads). A user's own NumPy calls keep BLAS's threads.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numba
import numpy as np

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional: without it BLAS keeps its own threads
    ThreadpoolController = None

# Products with at least this many multiply-adds (~1 ms of work at one thread) run with
# BLAS's own threads; smaller ones on one thread.
BLAS_THREADS_MIN_MACS = 1 << 27

_pool: Optional[ThreadPoolExecutor] = None
_pool_pid = [0]         # the process that created _pool
_pool_lock = threading.Lock()


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """The library's pool of ``workers`` Python threads (a new one when the count changed, or
    in a forked child, whose copy of the parent's pool has no threads behind it)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers != workers or _pool_pid[0] != os.getpid():
            if _pool is not None and _pool_pid[0] == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinygrad_cnn-worker")
            _pool_pid[0] = os.getpid()
        return _pool


class single_thread:
    """``with single_thread():`` BLAS runs on one thread inside (nested and concurrent holders
    share one hold; the last one out restores BLAS's thread counts). OpenBLAS (0.3.31) takes
    thread counts set from the main thread, where the library's ops normally run; a hold taken
    first in another thread is counted but leaves BLAS's threads as they are."""
    _lock = threading.Lock()
    _depth = 0
    _saved: list = []
    _libs: Optional[list] = None      # threadpoolctl's controllers of the BLAS libraries

    def __enter__(self):
        if ThreadpoolController is None:
            return self
        cls = single_thread
        with cls._lock:
            if cls._depth == 0:
                if cls._libs is None:
                    cls._libs = ThreadpoolController().select(user_api="blas").lib_controllers
                cls._saved = [lib.get_num_threads() for lib in cls._libs]
                for lib, n in zip(cls._libs, cls._saved):
                    if n != 1:
                        lib.set_num_threads(1)
            cls._depth += 1
        return self

    def __exit__(self, *exc):
        if ThreadpoolController is None:
            return False
        cls = single_thread
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                for lib, n in zip(cls._libs, cls._saved):
                    if n != 1:
                        lib.set_num_threads(n)
        return False


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)``; while the library runs more than one thread, with BLAS held to one
    thread unless the product has at least ``BLAS_THREADS_MIN_MACS`` multiply-adds."""
    if numba.get_num_threads() <= 1 or a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b)
    macs = max(a.size * b.shape[-1], b.size * a.shape[-2])     # (with the batch of either side)
    if macs >= BLAS_THREADS_MIN_MACS:
        return np.matmul(a, b)
    with single_thread():
        return np.matmul(a, b)


# ----------------------------------------------------------------------------------------------
# GEMM callable from Numba: the conv kernels run whole chunks (gather -> GEMM -> write-out) in
# one jitted call on Numba's threads, with no Python (and no GIL hand-off) between the steps.
# ----------------------------------------------------------------------------------------------

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112      # the CBLAS enum values

# (symbol, integer type) of cblas_?gemm: NumPy's own OpenBLAS (scipy-openblas, 64-bit ints,
# prefixed names), then the plain names of a system BLAS
_GEMM_SYMBOLS = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
                 ("scipy_cblas_{}gemm", ctypes.c_int), ("cblas_{}gemm", ctypes.c_int))


def _blas_library_paths() -> list:
    paths = []
    if ThreadpoolController is not None:
        paths = [lib.filepath for lib in ThreadpoolController().select(user_api="blas").lib_controllers]
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    if os.path.isdir(libs):     # where NumPy's wheels keep their OpenBLAS
        paths += sorted(os.path.join(libs, f) for f in os.listdir(libs) if "openblas" in f)
    return list(dict.fromkeys(paths))       # each library once


def gemm_function(dtype) -> Optional[object]:
    """``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64) of the BLAS NumPy uses, as a
    ctypes function that jitted code can call (passed in as an argument, so that the kernels
    calling it stay cacheable); None for other dtypes, or when no such BLAS is found or it
    fails a small check product. Arguments: ``(ROW_MAJOR, trans_a, trans_b, m, n, k, alpha,
    a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc)``."""
    dtype = np.dtype(dtype)
    return _gemm_function(dtype.char) if dtype in (np.float32, np.float64) else None


@functools.lru_cache(maxsize=None)
def _gemm_function(char: str) -> Optional[object]:
    dtype = np.dtype(char)
    letter, real = ("s", ctypes.c_float) if dtype == np.float32 else ("d", ctypes.c_double)
    for path in _blas_library_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, integer in _GEMM_SYMBOLS:
            try:
                address = getattr(lib, name.format(letter))
            except AttributeError:
                continue
            if integer is ctypes.c_int and _ilp64_openblas(lib):   # 64-bit ints behind plain names
                continue
            ptr = ctypes.c_void_p
            fn = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer,
                                  real, ptr, integer, ptr, integer, real, ptr, integer)(ctypes.cast(address, ptr).value)
            if _gemm_works(fn, dtype):
                return fn
    return None


def _ilp64_openblas(lib) -> bool:
    """Whether ``lib`` is an OpenBLAS built with 64-bit integers (its config string says so)."""
    try:
        config = lib.openblas_get_config
    except AttributeError:
        return False
    config.restype = ctypes.c_char_p
    return b"USE64BITINT" in (config() or b"")


def _gemm_works(fn, dtype) -> bool:
    """A 3x4 @ (5x4)^T product with padded rows, checked against NumPy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 6)).astype(dtype)
    b = rng.standard_normal((5, 7)).astype(dtype)
    c = np.full((3, 9), 7.0, dtype)
    fn(ROW_MAJOR, NO_TRANS, TRANS, 3, 5, 4, 1.0, a.ctypes.data, 6, b.ctypes.data, 7, 0.0, c.ctypes.data, 9)
    expect = a[:, :4] @ b[:, :4].T
    return bool(np.allclose(c[:, :5], expect, rtol=1e-4, atol=1e-4) and np.all(c[:, 5:] == 7.0))
