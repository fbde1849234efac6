"""Deprecated location: use :mod:`pymc_tracers.sampling` and :mod:`pymc_tracers.results`."""

from pymc_tracers.results import ConvergenceWarning, Result
from pymc_tracers.sampling import SAMPLERS, Fitter, fit

__all__ = ["SAMPLERS", "ConvergenceWarning", "Fitter", "Result", "fit"]
