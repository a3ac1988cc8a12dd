import os
import sys

# One thread per test process unless the caller says otherwise: the suite runs one pytest worker
# per core (pytest-xdist), and nested Numba/BLAS threads on top would oversubscribe the machine.
for _var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("ci", deadline=None, max_examples=8, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running checks, opt in with --runslow")
    if os.environ.get("CI", "").lower() == "true":
        try:
            import torch  # noqa: F401
        except ImportError:  # the oracle must never be skipped in CI
            raise pytest.UsageError("CI=true but torch is not installed: the PyTorch oracle tests "
                                    "cannot be skipped in CI (pip install -e '.[test]')")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run the slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
