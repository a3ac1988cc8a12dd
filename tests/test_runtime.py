"""Process-level performance settings: malloc tuning on import, serial/parallel kernel twins."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn.kernels as kernels
from tinygrad_cnn.kernels import elementwise as E

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tuned(**env):
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("TINYGRAD_CNN_MALLOC_TUNING", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        full.pop(k, None)
    full.update(env)
    out = subprocess.run([sys.executable, "-c", "import tinygrad_cnn; print(tinygrad_cnn._malloc.TUNED)"],
                         env=full, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_malloc_tuning_on_import_and_its_opt_outs():
    assert _tuned() == "True"
    assert _tuned(TINYGRAD_CNN_MALLOC_TUNING="0") == "False"
    assert _tuned(MALLOC_TRIM_THRESHOLD_="123456") == "False"      # the user's own setting wins


def test_parallel_kernel_runs_serial_twin_for_small_work(monkeypatch):
    calls = []
    kernel = E._erf_flat          # (a kernel with the default threshold)
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append("parallel"))
    monkeypatch.setattr(kernel, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(kernels.numba, "get_num_threads", lambda: 2)
    x = np.ones(8, np.float32)
    kernel(x, np.empty_like(x))
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 4)
    kernel(x, np.empty_like(x))
    monkeypatch.setattr(kernels.numba, "get_num_threads", lambda: 1)
    kernel(x, np.empty_like(x))
    assert calls == ["serial", "parallel", "serial"]


def test_memory_bound_kernels_have_their_own_threshold(monkeypatch):
    """ReLU / batch-norm passes go parallel only from MEMORY_BOUND_MIN_WORK elements on (their
    ``min_work``), whatever the default threshold says."""
    calls = []
    kernel = E._relu_flat
    assert kernel.min_work == kernels.MEMORY_BOUND_MIN_WORK > kernels.PARALLEL_MIN_WORK
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append("parallel"))
    monkeypatch.setattr(kernel, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(kernels.numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 4)
    x = np.ones(8, np.float32)
    kernel(x, np.empty_like(x))
    monkeypatch.setattr(kernel, "min_work", 8)
    kernel(x, np.empty_like(x))
    assert calls == ["serial", "parallel"]


def test_twins_compute_the_same_and_cache_apart():
    kernel = E._relu_flat
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    a, b = np.empty_like(x), np.empty_like(x)
    kernel.parallel(x, a)
    kernel.serial(x, b)
    np.testing.assert_array_equal(a, b)
    if hasattr(kernel.serial, "py_func"):        # (plain functions under NUMBA_DISABLE_JIT=1)
        assert kernel.serial.py_func.__qualname__ == kernel.parallel.py_func.__qualname__ + "_serial"
