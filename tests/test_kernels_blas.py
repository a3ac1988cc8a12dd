"""kernels/blas.py: BLAS held to one thread under the library's own threads, and matmul."""
import threading

import numpy as np
import pytest

import tinygrad_cnn.kernels.blas as B
from tinygrad_cnn.kernels import conv as K

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def test_single_thread_holds_nests_and_restores():
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = _blas_threads()
        assert before and all(n == 2 for n in before)
        with B.single_thread():
            assert all(n == 1 for n in _blas_threads())
            with B.single_thread():                 # nested: still one thread
                assert all(n == 1 for n in _blas_threads())
            assert all(n == 1 for n in _blas_threads())     # the outer hold is still on
        assert _blas_threads() == before


def test_single_thread_shared_by_concurrent_holders():
    """Holds taken by other threads while the main thread holds share the one hold: BLAS stays
    at one thread until the last holder leaves, and the main thread's exit restores the count.
    (OpenBLAS takes thread counts set from the main thread, where the library's ops run; the
    counts are read there.)"""
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        inside, release = threading.Event(), threading.Event()

        def other():
            with B.single_thread():
                inside.set()
                release.wait(5)
        t = threading.Thread(target=other)
        with B.single_thread():
            t.start()
            assert inside.wait(5)
            assert B.single_thread._depth == 2
            release.set()
            t.join(5)
            assert B.single_thread._depth == 1
            assert all(n == 1 for n in _blas_threads())     # the other thread's exit kept the hold
        assert B.single_thread._depth == 0
        assert all(n == 2 for n in _blas_threads())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shapes", [((5, 7), (7, 3)), ((2, 5, 7), (7, 3)), ((4, 1, 3, 2), (5, 2, 6)),
                                    ((7,), (7, 2)), ((3, 7), (7,)), ((0, 4), (4, 3))])
def test_matmul_is_numpys(monkeypatch, threads, shapes):
    monkeypatch.setattr(B.numba, "get_num_threads", lambda: threads)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1]).astype(np.float32)
    got = B.matmul(a, b)
    want = np.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_matmul_holds_blas_for_small_products_only(monkeypatch):
    """With more than one library thread, a small product runs with BLAS on one thread; a
    product of BLAS_THREADS_MIN_MACS or more keeps BLAS's threads; with one library thread
    nothing is held."""
    held = []
    real = np.matmul

    def spy(a, b, **kw):
        held.append(B.single_thread._depth > 0)
        return real(a, b, **kw)
    monkeypatch.setattr(B.np, "matmul", spy)
    monkeypatch.setattr(B.numba, "get_num_threads", lambda: 2)
    a, b = np.ones((8, 8)), np.ones((8, 8))
    B.matmul(a, b)
    monkeypatch.setattr(B, "BLAS_THREADS_MIN_MACS", 8 * 8 * 8)
    B.matmul(a, b)
    monkeypatch.setattr(B.numba, "get_num_threads", lambda: 1)
    monkeypatch.setattr(B, "BLAS_THREADS_MIN_MACS", 1 << 40)
    B.matmul(a, b)
    assert held == [True, False, False]


def test_small_convolutions_hold_blas_when_the_library_has_threads(monkeypatch):
    """Convs too small for the worker threads run in the calling thread, and still with BLAS
    on one thread when the library runs several (BLAS's spinning threads would take the core
    our next kernel wants); with one library thread nothing is held."""
    held = []

    def work(b0, b1):
        held.append(B.single_thread._depth > 0)
        return b0
    monkeypatch.setattr(K, "NUM_WORKERS", 2)
    assert K._run_chunks(4, 10, work) == [0]            # tiny: one chunk, in this thread
    monkeypatch.setattr(K, "NUM_WORKERS", 1)
    K._run_chunks(4, 10, work)
    if K.ThreadpoolController is not None:
        assert held == [True, False]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_function_is_numpys_gemm(dtype):
    """gemm_function gives cblas_?gemm of NumPy's BLAS: row-major products with leading
    dimensions wider than the operands, B plain or transposed, C's padding left alone."""
    gemm = B.gemm_function(dtype)
    if gemm is None:     # pragma: no cover - a BLAS without cblas symbols
        pytest.skip("no cblas GEMM found")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 9)).astype(dtype)
    b = rng.standard_normal((7, 11)).astype(dtype)
    for trans, b_used in ((B.NO_TRANS, b[:7, :6]), (B.TRANS, b[:6, :7].T)):
        c = np.full((5, 8), -3.0, dtype)
        gemm(B.ROW_MAJOR, B.NO_TRANS, trans, 5, 6, 7, 1.0, a.ctypes.data, 9, b.ctypes.data, 11, 0.0, c.ctypes.data, 8)
        np.testing.assert_allclose(c[:, :6], a[:, :7] @ b_used, rtol=1e-5)
        assert np.all(c[:, 6:] == -3.0)


def test_gemm_function_only_for_float32_and_float64():
    assert B.gemm_function(np.int32) is None and B.gemm_function(np.float16) is None
    assert B.gemm_function(np.float32) is B.gemm_function(np.dtype("float32"))      # built once


def test_plain_gemm_names_are_skipped_for_a_64_bit_integer_openblas():
    """Plain ``cblas_sgemm`` names take 32-bit ints -- unless the OpenBLAS behind them was built
    with 64-bit ones (its config string says so), where calling them would misread the sizes."""
    class FakeConfig:
        restype = None

        def __init__(self, text):
            self.text = text

        def __call__(self):
            return self.text

    class Lib:
        def __init__(self, text):
            self.openblas_get_config = FakeConfig(text)

    assert B._ilp64_openblas(Lib(b"OpenBLAS 0.3.31 USE64BITINT DYNAMIC_ARCH"))
    assert not B._ilp64_openblas(Lib(b"OpenBLAS 0.3.31 DYNAMIC_ARCH"))
    assert not B._ilp64_openblas(object())      # not an OpenBLAS
