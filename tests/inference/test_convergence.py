"""The convergence check: where divergences gather on a scale parameter, and what the warning
then suggests."""

import warnings

import arviz as az
import numpy as np
import pytest

import pymc_tracers as pmt
from pymc_tracers.inference.convergence import (
    SCALE_MIN_DIVERGENCES,
    check_convergence,
    convergence_report,
    scale_divergences,
)

CHAINS, DRAWS = 2, 500


def _posterior(diverging_where, n_divergent=40, seed=0):
    """Draws of a scale ``tau`` (log-normal), a location ``mu`` (any sign) and a vector ``z``,
    with ``n_divergent`` divergent draws chosen by ``diverging_where(tau, rng)``."""
    rng = np.random.default_rng(seed)
    tau = np.exp(rng.normal(-3.0, 0.4, size=(CHAINS, DRAWS)))
    mu = rng.normal(0.0, 1.0, size=(CHAINS, DRAWS))
    z = rng.normal(size=(CHAINS, DRAWS, 3))
    chosen = diverging_where(tau, rng)[:n_divergent]
    diverging = np.zeros(tau.size, dtype=bool)
    diverging[chosen] = True
    return az.from_dict(
        posterior={"tau": tau, "mu": mu, "z": z},
        sample_stats={"diverging": diverging.reshape(tau.shape)},
    )


def _largest(tau, rng):
    return np.argsort(tau.ravel())[::-1][: tau.size // 10][rng.permutation(tau.size // 10)]


def _smallest(tau, rng):
    return np.argsort(tau.ravel())[: tau.size // 10][rng.permutation(tau.size // 10)]


def _anywhere(tau, rng):
    return rng.permutation(tau.size)


def test_divergences_at_large_scale_suggest_the_centred_form():
    idata = _posterior(_largest)
    (name, quantile), *others = scale_divergences(idata)
    assert name == "tau" and quantile > 0.9 and not others  # mu has negative draws, z is a vector
    hint = convergence_report(idata)["hints"][0]
    assert "'tau' is large" in hint and "write them centred" in hint


def test_divergences_at_small_scale_suggest_the_non_centred_form():
    idata = _posterior(_smallest)
    assert [name for name, _ in scale_divergences(idata)] == ["tau"]
    hint = convergence_report(idata)["hints"][0]
    assert "'tau' is small" in hint and "write them non-centred" in hint


@pytest.mark.parametrize("seed", range(5))
def test_divergences_spread_over_the_posterior_give_no_hint(seed):
    assert scale_divergences(_posterior(_anywhere, seed=seed)) == []


def test_too_few_divergences_give_no_hint():
    idata = _posterior(_largest, n_divergent=SCALE_MIN_DIVERGENCES - 1)
    assert scale_divergences(idata) == []
    assert convergence_report(idata)["divergences"] == SCALE_MIN_DIVERGENCES - 1


def test_only_the_variables_asked_for_are_tested():
    assert scale_divergences(_posterior(_largest), var_names=["mu", "z"]) == []


def test_the_warning_carries_the_hint():
    with pytest.warns(pmt.ConvergenceWarning, match=r"'tau' is large.*write them centred"):
        report = check_convergence(_posterior(_largest))
    assert not report["converged"] and "40 divergent transitions" in report["problems"]


def test_a_posterior_without_divergences_warns_without_a_hint():
    idata = _posterior(_largest, n_divergent=0)
    idata.posterior["mu"][1] += 5.0  # chains apart: R-hat fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_convergence(idata)
    (warning,) = [w for w in caught if issubclass(w.category, pmt.ConvergenceWarning)]
    assert "R-hat" in str(warning.message) and "write them" not in str(warning.message)
