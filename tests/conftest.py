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


#: PyTensor flags that ``config.change_flags`` sets while it infers static shapes
#: (pytensor.tensor.basic, ``cxx=""``): the context manager is not thread-safe, so two threads
#: building graphs at once (inference.kfold with n_jobs=2) can leave them changed for good.
_RACED_FLAGS = ("cxx", "optdb__max_use_ratio")


@pytest.fixture(autouse=True)
def _pytensor_flags_restored(request):
    """Restore the flags above when a test leaves them changed, and say which test did.

    With ``cxx`` left empty every later test on that worker runs without the C backend, and
    ``mode="FAST_RUN"`` fails ("We do not support the passing of multiple modes": PyTensor's
    fallback VM mode is a tuple); one full run under load failed 5 unrelated tests that way.
    """
    import warnings

    import pytensor

    before = {name: getattr(pytensor.config, name) for name in _RACED_FLAGS}
    yield
    changed = {n: v for n, v in before.items() if getattr(pytensor.config, n) != v}
    for name, value in changed.items():
        setattr(pytensor.config, name, value)
    if changed:
        warnings.warn(
            f"{request.node.nodeid} left PyTensor flags {sorted(changed)} changed (restored)",
            pytest.PytestWarning,
            stacklevel=1,
        )
