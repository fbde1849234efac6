"""Whether a fit converged: R-hat, effective sample sizes and divergences against fixed
thresholds, and the :class:`ConvergenceWarning` every fit gives when they fail.

When divergent transitions gather at one end of a scale parameter (a population's scatter),
the warning says which parametrisation of the members about it would suit the data better.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import arviz as az
import numpy as np
from scipy.stats import rankdata

__all__ = [
    "ESS_MIN",
    "R_HAT_MAX",
    "ConvergenceWarning",
    "check_convergence",
    "convergence_report",
    "scale_divergences",
]

#: Convergence thresholds (Vehtari et al. 2021)
R_HAT_MAX = 1.01
ESS_MIN = 400

#: A scale parameter is named as the divergences' cause when at least this many divergences
#: sit, on average, at least this far from its posterior median (in posterior quantile),
#: and the shift is this many standard errors from none (uniform quantiles: sd sqrt(1/12 n)).
SCALE_MIN_DIVERGENCES = 5
SCALE_QUANTILE_SHIFT = 0.2
SCALE_SIGNIFICANCE = 3.0


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics (R-hat, ESS, divergences) indicate an unreliable posterior."""


def convergence_report(idata, *, var_names=None, r_hat_max=R_HAT_MAX, ess_min=ESS_MIN) -> dict:
    """The one convergence check of every fit: R-hat, bulk and tail ESS, divergences.

    Parameters
    ----------
    idata : az.InferenceData
        With ``posterior`` and (for divergences) ``sample_stats``.
    var_names : list of str, optional
        The variables checked (default: every posterior variable).
    r_hat_max : float
        Largest rank-normalised split R-hat accepted (Vehtari et al. 2021: 1.01).
    ess_min : float
        Smallest bulk effective sample size accepted (400; the tail ESS is reported).

    Returns
    -------
    dict
        ``converged`` (bool), ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``,
        ``divergences`` (int), ``problems`` (list of one-line strings, empty when converged),
        ``hints`` (what to try, from :func:`scale_divergences`) and ``thresholds``. A single
        chain has no R-hat: that is a problem too.
    """
    summary = az.summary(idata, var_names=var_names, kind="diagnostics")
    stats = idata.sample_stats if "sample_stats" in idata.groups() else {}
    divergent = int(stats["diverging"].sum()) if "diverging" in stats else 0
    report = {
        "r_hat_max": float(summary["r_hat"].max()),
        "ess_bulk_min": float(summary["ess_bulk"].min()),
        "ess_tail_min": float(summary["ess_tail"].min()),
        "divergences": divergent,
    }
    problems = []
    if not report["r_hat_max"] <= r_hat_max:
        if math.isnan(report["r_hat_max"]):
            problems.append("no R-hat (run at least 2 chains)")
        else:
            problems.append(f"R-hat up to {report['r_hat_max']:.3f} (> {r_hat_max})")
    if not report["ess_bulk_min"] >= ess_min:
        problems.append(f"bulk ESS down to {report['ess_bulk_min']:.0f} (< {ess_min})")
    if divergent:
        problems.append(f"{divergent} divergent transitions")
    report["problems"] = problems
    report["converged"] = not problems
    report["hints"] = [_scale_hint(*found) for found in scale_divergences(idata, var_names)]
    report["thresholds"] = {"r_hat_max": r_hat_max, "ess_min": ess_min}
    return report


def scale_divergences(idata, var_names=None) -> list[tuple[str, float]]:
    """Positive scalar parameters at one end of whose posterior the divergences gather.

    A hierarchical scale ``tau`` with members ``loc + tau z`` (non-centred) or
    ``Normal(loc, tau)`` (centred) makes a funnel for one of the two forms: the members'
    conditional width changes with ``tau``, and NUTS diverges where that width is smallest.
    Non-centred members that the data measure well diverge at *large* ``tau`` (``z`` is then
    pinned to a width ``sigma / tau``); centred members that the data barely constrain diverge
    at *small* ``tau`` (the classic funnel). Which end the divergences sit at is read from the
    mean posterior quantile of the parameter at divergent draws.

    Parameters
    ----------
    idata : az.InferenceData
        With ``posterior`` and ``sample_stats.diverging``.
    var_names : list of str, optional
        Variables considered (default: every posterior variable); only scalar ones whose
        draws are all positive are tested.

    Returns
    -------
    list of (str, float)
        ``(name, mean quantile at divergent draws)``, strongest first; empty when there are
        fewer than :data:`SCALE_MIN_DIVERGENCES` divergences or no clear concentration
        (:data:`SCALE_QUANTILE_SHIFT` from 0.5, and :data:`SCALE_SIGNIFICANCE` standard
        errors).
    """
    stats = idata.sample_stats if "sample_stats" in idata.groups() else {}
    if "diverging" not in stats:
        return []
    diverging = np.asarray(stats["diverging"].values, dtype=bool)
    count = int(diverging.sum())
    if count < SCALE_MIN_DIVERGENCES:
        return []
    standard_error = math.sqrt(1.0 / (12.0 * count))
    found = []
    for name in var_names or list(idata.posterior.data_vars):
        draws = np.asarray(idata.posterior[name].values)
        if draws.shape != diverging.shape or not np.all(draws > 0):
            continue
        quantile = rankdata(draws.ravel()).reshape(draws.shape) / draws.size
        mean = float(quantile[diverging].mean())
        shift = abs(mean - 0.5)
        if shift >= SCALE_QUANTILE_SHIFT and shift >= SCALE_SIGNIFICANCE * standard_error:
            found.append((name, mean))
    return sorted(found, key=lambda item: -abs(item[1] - 0.5))


def _scale_hint(name, mean_quantile) -> str:
    if mean_quantile > 0.5:
        return (
            f"the divergences sit where {name!r} is large (mean posterior quantile "
            f"{mean_quantile:.2f}): if it is the scatter of members written non-centred, "
            f"loc + {name} * z, the data measure them better than {name}; write them centred, "
            f"pm.Normal(name, loc, {name})"
        )
    return (
        f"the divergences sit where {name!r} is small (mean posterior quantile "
        f"{mean_quantile:.2f}): if it is the scatter of members written centred, "
        f"pm.Normal(name, loc, {name}), the data barely constrain them (a funnel); write them "
        f"non-centred, loc + {name} * z with z ~ Normal(0, 1)"
    )


#: The package's directory: warnings point at the first caller outside it.
_PACKAGE_DIRECTORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _outside_stacklevel() -> int:
    """``warnings.warn``'s ``stacklevel``, from the function calling this, that names the first
    caller outside pymc_tracers (the user's line, however deep the library's calls went)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRECTORY):
        frame, level = frame.f_back, level + 1
    return level


def check_convergence(
    idata, *, var_names=None, r_hat_max=R_HAT_MAX, ess_min=ESS_MIN, what="the fit", hints=True
) -> dict:
    """:func:`convergence_report`, with a :class:`ConvergenceWarning` naming ``what`` when the
    posterior fails it (attributed to the first caller outside pymc_tracers). Returns the
    report. ``hints=False`` leaves the parametrisation hints out of the warning (for models
    the user did not write)."""
    report = convergence_report(idata, var_names=var_names, r_hat_max=r_hat_max, ess_min=ess_min)
    if not hints:
        report["hints"] = []
    if not report["converged"]:
        warnings.warn(
            f"{what} did not converge: "
            + "; ".join(report["problems"])
            + ". Its posterior is unreliable: "
            + ("; ".join(report["hints"]) + ". Otherwise run" if report["hints"] else "run")
            + " more draws/tuning, reparametrise, or raise target_accept.",
            ConvergenceWarning,
            stacklevel=_outside_stacklevel(),
        )
    return report
