"""Thread-count control: Numba's parallel kernels and (when threadpoolctl is present) BLAS."""
from __future__ import annotations


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba kernels (and in BLAS when threadpoolctl is installed)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(n)


def get_num_threads() -> int:
    import numba
    return numba.get_num_threads()
