import os

os.environ.setdefault("PYTENSOR_FLAGS", "floatX=float64")
# numba compiles without LLVM optimisation: the suite runs each numba function once or twice,
# and at the default level (3) compiling the backend tests' models took about twice as long
# (test_backends_agree_with_c[NUMBA-True] 18.3 -> 10.5 s, [NUMBA-False] 15.6 -> 8.7 s). What
# they check (PyTensor's numba lowering of the graph and of our ops, values and gradients
# against C, no object-mode fallback) does not depend on it; set NUMBA_OPT to test at another
# level. numba reads it when it is first imported.
os.environ.setdefault("NUMBA_OPT", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run the slow paper reproductions")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20240313)
