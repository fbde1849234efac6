"""Inference: sample the PyMC models and read the results.

- :mod:`~pymc_tracers.inference.sampling`: :func:`~pymc_tracers.inference.sampling.fit`, the
  front door (one model, one sampling run);
- :mod:`~pymc_tracers.inference.fitter`: :class:`~pymc_tracers.inference.fitter.Fitter`
  (compile once, refit many data sets or PSFs);
- :mod:`~pymc_tracers.inference.samplers`: the samplers, their settings and the one ending
  both share;
- :mod:`~pymc_tracers.inference.results`: :class:`~pymc_tracers.inference.results.Result`
  (InferenceData, maps, plots, save/load) and the convergence check;
- :mod:`~pymc_tracers.inference.kfold`: galaxy-level K-fold cross-validation by refits of one
  compiled model.

The package re-exports the names of the sampling front door (it is also ``pmt.sampling``).
"""

from pymc_tracers.inference.convergence import ConvergenceWarning
from pymc_tracers.inference.fitter import Fitter
from pymc_tracers.inference.results import Result
from pymc_tracers.inference.samplers import NUTPIE_BACKENDS, SAMPLERS
from pymc_tracers.inference.sampling import fit

__all__ = ["NUTPIE_BACKENDS", "SAMPLERS", "ConvergenceWarning", "Fitter", "Result", "fit"]
