"""What :func:`~pymc_tracers.inference.sampling.fit` and
:class:`~pymc_tracers.inference.fitter.Fitter` share: the samplers and their settings (nutpie's
backends and mass matrix), the checks of their arguments, and the one ending of every fit
(:func:`_finish`): the optional pointwise log-likelihood pass, the stored configuration
(sampler, backend, mass matrix, timing, grid), the median model maps of
:class:`~pymc_tracers.inference.results.Result` and the convergence check.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pymc as pm

from pymc_tracers.forward import Observation
from pymc_tracers.inference.results import Result, max_total_log_likelihood
from pymc_tracers.kinematics import KinematicObservation

__all__ = ["NUTPIE_BACKENDS", "SAMPLERS"]

logger = logging.getLogger("pymc_tracers")

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
NUTPIE_BACKENDS = ("auto", "jax", "numba")

#: nutpie's mass-matrix adaptation, used by ``fit`` and ``Fitter`` alike. The low-rank
#: modified mass matrix adapts to correlated parameters (central value vs gradient, r ~ -0.9):
#: bulk ESS per 2000 draws rose from ~500 to ~2000 in the paper's fits.
NUTPIE_SETTINGS = {"low_rank_modified_mass_matrix": True}

#: The mass matrix each sampler adapts with the settings used here (stored in the config).
MASS_MATRIX = {
    "nutpie": "low-rank modified",
    "pymc": "diagonal",
    "numpyro": "diagonal",
    "blackjax": "diagonal",
}


def _as_observations(observations) -> list:
    if observations is None:
        return []
    kinds = (Observation, KinematicObservation)
    if isinstance(observations, kinds):
        return [observations]
    observations = list(observations)
    if not all(isinstance(o, kinds) for o in observations):
        raise TypeError("observations must be what pmt.observe or pmt.observe_kinematics returned")
    return observations


def _posterior_radial_error(observations, posterior):
    """The largest error of the radial renderers' maps at posterior draws (None if none)."""
    errors = [
        o.renderer.check_posterior(posterior)
        for o in observations
        if hasattr(o.renderer, "check_posterior")
    ]
    errors = [e for e in errors if np.isfinite(e)]
    return max(errors) if errors else None


def _check_counts(*, draws, tune, chains, sampler):
    for name, value, least in [("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)]:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")
    if sampler == "nutpie" and tune < 1:
        raise ValueError(
            "nutpie needs at least one tuning step (its step-size and mass-matrix adaptation "
            f"windows are fractions of tune); got tune={tune}. Use tune >= 100 for a usable "
            "adaptation, or sampler='pymc' to sample without tuning"
        )


def _enable_jax_x64(why: str):
    """Switch JAX to 64-bit (the models are float64 graphs, which float32 JAX truncates);
    return the ``jax`` module."""
    try:
        import jax
    except ImportError:
        raise ImportError(f"{why} needs JAX: pip install 'pymc_tracers[jax]'") from None
    jax.config.update("jax_enable_x64", True)
    return jax


def nutpie_backend(backend):
    """nutpie's compilation backend for ``backend`` (``"auto"``: JAX when installed, in
    64-bit)."""
    if backend not in NUTPIE_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {NUTPIE_BACKENDS}")
    if backend == "auto":
        try:
            import jax  # noqa: F401
        except ImportError:
            return "numba"
        backend = "jax"
    if backend == "jax":
        _enable_jax_x64("backend='jax'")
    return backend


def _finish(
    idata,
    model,
    records,
    *,
    started,
    log_likelihood,
    map_draws,
    random_seed,
    grid,
    config,
    settings,
    map_function=None,
    observations=(),
) -> Result:
    """The one ending of every fit: log-likelihood pass, configuration, maps, convergence, and
    the radial path's accuracy at posterior draws."""
    sampling_seconds = time.perf_counter() - started
    config = dict(config or {})
    config.update(settings)
    config.update(
        random_seed=random_seed,
        mass_matrix=MASS_MATRIX[settings["sampler"]],
        sampling_seconds=sampling_seconds,
        grid=_grid_config(grid),
    )
    if log_likelihood:
        if "log_likelihood" not in idata.groups():
            with model:
                pm.compute_log_likelihood(idata, progressbar=False)
        config["log_likelihood_seconds"] = time.perf_counter() - started - sampling_seconds
        # kept in the (small) configuration, so BIC works on results saved without the
        # pointwise values
        config["max_log_likelihood"] = max_total_log_likelihood(idata.log_likelihood)
    radial_error = _posterior_radial_error(observations, idata.posterior)
    if radial_error is not None:
        config["radial_error"] = radial_error
    result = Result.from_model(
        idata,
        model,
        records=records,
        map_draws=map_draws,
        config=config,
        random_seed=random_seed,
        map_function=map_function,
    )
    result.check_convergence()
    return result


def _grid_config(grid):
    if grid is None:
        return None
    return {
        "shape": list(grid.shape),
        "pixel_scale": grid.pixel_scale,
        "supersampling": grid.supersampling,
        "center": list(grid.center),
    }
