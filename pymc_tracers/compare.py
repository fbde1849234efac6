"""Model comparison: BIC (as in the paper) and ArviZ LOO/WAIC from pointwise log-likelihoods."""

from __future__ import annotations

import arviz as az
import numpy as np

from pymc_tracers.fitting import Result

__all__ = ["bic", "delta_bic", "compare"]


def bic(result: Result) -> float:
    """Bayesian information criterion ``k ln n - 2 ln L_max``.

    ``L_max`` is the largest likelihood over the posterior draws (with informative data the
    sample maximum is within O(1/ESS) of the true maximum), ``k`` the number of free
    parameters and ``n`` the number of pixels in the likelihoods.
    """
    return float(result.n_parameters() * np.log(result.n_data()) - 2.0 * result.max_log_likelihood())


def delta_bic(result_a: Result, result_b: Result) -> float:
    """``BIC(a) - BIC(b)``: positive values favour model ``b``; > 10 is "very strong"."""
    if result_a.n_data() != result_b.n_data():
        raise ValueError(
            f"the fits use different data ({result_a.n_data()} vs {result_b.n_data()} pixels); "
            "BIC can only compare models of the same data"
        )
    return bic(result_a) - bic(result_b)


def compare(results: dict, ic="loo", **kwargs):
    """``az.compare`` of several fits by LOO (default) or WAIC, from pointwise log-likelihoods."""
    return az.compare({name: r.idata for name, r in results.items()}, ic=ic, **kwargs)
