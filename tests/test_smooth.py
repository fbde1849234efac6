"""The backend-safe softplus against numpy, and its gradient under PyTensor and jax.grad."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.special import expit

from pymc_tracers.smooth import SOFTPLUS_TAIL, softplus

# far below, near and far above the bend; beyond |x| = 709 exp overflows in float64
X = np.array([-5000.0, -800.0, -40.0, -SOFTPLUS_TAIL, -3.0, 0.0, 0.7, SOFTPLUS_TAIL, 45.0, 2e3])


def test_softplus_matches_numpy_on_arrays_and_tensors():
    np.testing.assert_array_equal(softplus(X), np.logaddexp(0.0, X))
    x = pt.dvector("x")
    value = pytensor.function([x], softplus(x))(X)
    np.testing.assert_allclose(value, np.logaddexp(0.0, X), rtol=1e-15, atol=1e-13)


def test_softplus_gradient_is_the_sigmoid():
    x = pt.dvector("x")
    slope = pytensor.function([x], pytensor.grad(pt.sum(softplus(x)), x))(X)
    np.testing.assert_allclose(slope, expit(X), rtol=1e-12, atol=1e-13)
    inside = np.array([-7.0, -0.3, 0.0, 2.0, 12.0])
    pytensor.gradient.verify_grad(softplus, [inside], rng=np.random.default_rng(0))


def test_softplus_jax_gradient_is_finite_where_pytensors_own_is_not():
    """jax.grad differentiates every branch of PyTensor's JAX softplus; ours has none that
    overflows, so gradients stay finite however far from the bend."""
    jax = pytest.importorskip("jax")
    from pymc.sampling.jax import get_jaxified_graph

    jax.config.update("jax_enable_x64", True)
    x = pt.dvector("x")
    ours = get_jaxified_graph([x], [pt.sum(softplus(x))])
    slope = jax.grad(lambda v: ours(v)[0])(X)
    np.testing.assert_allclose(np.asarray(slope), expit(X), rtol=1e-12, atol=1e-13)
    # what this guards against (if PyTensor's own becomes safe, this function can go)
    theirs = get_jaxified_graph([x], [pt.sum(pt.softplus(x))])
    assert np.isnan(np.asarray(jax.grad(lambda v: theirs(v)[0])(X))).any()


def test_the_library_uses_no_other_softplus():
    """A bare pt.softplus anywhere in a model graph brings the NaN back under nutpie."""
    import pathlib

    import pymc_tracers

    root = pathlib.Path(pymc_tracers.__file__).parent
    bare = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "smooth.py" and "pt.softplus(" in path.read_text()
    ]
    assert bare == [], f"use pymc_tracers.smooth.softplus in {bare}"
