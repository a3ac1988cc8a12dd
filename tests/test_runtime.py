"""Process-level performance settings: malloc tuning on import, serial/parallel kernel twins."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn.kernels as kernels
from tinygrad_cnn.kernels import elementwise as E

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, unset=(), **env):
    """stdout of ``python -c code`` with the project on the path, ``unset`` variables removed
    from the environment and ``env`` added (the run must succeed)."""
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in unset:
        full.pop(k, None)
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _tuned(**env):
    return _python("import tinygrad_cnn; print(tinygrad_cnn._malloc.TUNED)",
                   ("TINYGRAD_CNN_MALLOC_TUNING", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"), **env).strip()


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
    assert kernel.min_work == kernels.MEMORY_BOUND_MIN_WORK
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append("parallel"))
    monkeypatch.setattr(kernel, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(kernels.numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 4)
    monkeypatch.setattr(kernel, "min_work", 16)
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


_LAYER_SNIPPET = """
import os, numpy as np, numba
import tinygrad_cnn
from tinygrad_cnn.kernels import elementwise as E
numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
x = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
E._relu_flat.parallel(x, np.empty_like(x))
print(numba.threading_layer())
"""


_LAYER_VARS = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY")


def _run(snippet, **env):
    return _python(snippet, _LAYER_VARS, **env).split()


def _tbb_installed():
    try:
        from importlib import metadata
        return metadata.version("tbb") is not None
    except Exception:
        return False


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no threading layer without the JIT")
def test_threading_layer_choice_and_the_users_word():
    """TBB when its wheel is installed (a dependency on x86-64), else workqueue -- never GNU
    OpenMP on our own (see kernels/__init__.py); a layer the user names is used as it is."""
    assert _run(_LAYER_SNIPPET) == (["tbb"] if _tbb_installed() else ["workqueue"])
    assert _run(_LAYER_SNIPPET, NUMBA_THREADING_LAYER="workqueue") == ["workqueue"]
    if _tbb_installed():        # asked for by name, TBB is found in the wheel too
        assert _run(_LAYER_SNIPPET, NUMBA_THREADING_LAYER="tbb") == ["tbb"]


_FORK_SNIPPET = """
import os, numpy as np, numba
import tinygrad_cnn.kernels as kernels
from tinygrad_cnn.kernels import elementwise as E
numba.set_num_threads(2)
x = np.random.default_rng(1).standard_normal(1 << 12).astype(np.float32)
want = np.empty_like(x)
E._relu_flat.parallel(x, want)              # the layer's threads have started
E._relu_flat.min_work = 1                   # every call would go parallel
pid = os.fork()
if pid == 0:
    code = 3
    try:
        got = np.empty_like(x)
        E._relu_flat(x, got)                # with GNU OpenMP a parallel loop here gets the child killed
        serial = kernels.parallel_threads() == 1
        code = 0 if np.array_equal(got, want) and serial == (numba.threading_layer() == "omp") else 2
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
assert kernels.parallel_threads() == 2      # the parent keeps its threads
print(numba.threading_layer(), os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork") or os.environ.get("NUMBA_DISABLE_JIT") == "1",
                    reason="needs os.fork and the JIT's threading layer")
@pytest.mark.parametrize("layer", [None, "omp"])
def test_kernels_in_a_child_forked_after_the_threads_started(layer):
    """A forked child computes the same: with the default layer (TBB / workqueue are fork-safe)
    in parallel, with GNU OpenMP (not fork-safe: Numba kills a forked child that starts a
    parallel loop) on the serial twins."""
    env = {"NUMBA_NUM_THREADS": "2"}
    if layer:
        env["NUMBA_THREADING_LAYER"] = layer
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    out = subprocess.run([sys.executable, "-c", _FORK_SNIPPET], capture_output=True, text=True, timeout=300, env=full)
    if layer == "omp" and "No threading layer could be loaded" in out.stderr:
        pytest.skip("GNU OpenMP layer not available here")
    assert out.returncode == 0, out.stderr
    got_layer, child_exit = out.stdout.split()
    assert child_exit == "0", (got_layer, out.stderr)
