"""Keep freed activation buffers inside the process (glibc malloc tuning, on import).

A training step allocates and frees the same large arrays every step. By default glibc serves
arrays above a (dynamic) threshold with fresh ``mmap`` pages and returns freed memory at the top
of the heap to the OS, so every step pays a page fault per 4 KiB touched again: measured here,
a fifth of a LeNet step (a 1.2 MB ReLU output cost 125 us in the step, 27 us when its pages were
already mapped). Two ``mallopt`` settings keep that memory mapped and reusable:

* ``M_MMAP_THRESHOLD = 32 MiB`` -- arrays below it come from the heap (reusable) not ``mmap``;
* ``M_TRIM_THRESHOLD = 1 GiB`` -- freed heap memory is kept unless more than that is free.

The cost: the process keeps up to its peak heap mapped (its RSS does not shrink between steps;
peak RSS is unchanged). Skipped when ``TINYGRAD_CNN_MALLOC_TUNING=0``, when you set glibc's own
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` (your choice wins), and off glibc.
``TUNED`` says whether it was applied.
"""
import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3      # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 << 20                        # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 1 << 30


def tune() -> bool:
    if os.environ.get("TINYGRAD_CNN_MALLOC_TUNING") == "0" or not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):             # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


TUNED = tune()
