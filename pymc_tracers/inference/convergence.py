"""Whether a fit converged: R-hat, effective sample sizes and divergences against fixed
thresholds, and the :class:`ConvergenceWarning` every fit gives when they fail.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import arviz as az

__all__ = [
    "ESS_MIN",
    "R_HAT_MAX",
    "ConvergenceWarning",
    "check_convergence",
    "convergence_report",
]

#: Convergence thresholds (Vehtari et al. 2021)
R_HAT_MAX = 1.01
ESS_MIN = 400


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
        ``divergences`` (int), ``problems`` (list of one-line strings, empty when converged)
        and ``thresholds``. A single chain has no R-hat: that is a problem too.
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
    report["thresholds"] = {"r_hat_max": r_hat_max, "ess_min": ess_min}
    return report


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
    idata, *, var_names=None, r_hat_max=R_HAT_MAX, ess_min=ESS_MIN, what="the fit"
) -> dict:
    """:func:`convergence_report`, with a :class:`ConvergenceWarning` naming ``what`` when the
    posterior fails it (attributed to the first caller outside pymc_tracers). Returns the
    report."""
    report = convergence_report(idata, var_names=var_names, r_hat_max=r_hat_max, ess_min=ess_min)
    if not report["converged"]:
        warnings.warn(
            f"{what} did not converge: "
            + "; ".join(report["problems"])
            + ". Its posterior is unreliable: run more draws/tuning, reparametrise, or raise "
            "target_accept.",
            ConvergenceWarning,
            stacklevel=_outside_stacklevel(),
        )
    return report
