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
