"""The sampling front door: :func:`fit` samples a model once with NUTS (nutpie, PyMC, NumPyro
or BlackJAX) and wraps the draws in a :class:`~pymc_tracers.inference.results.Result`; to fit
one compiled model to many data sets, see :class:`~pymc_tracers.inference.fitter.Fitter`.
"""

from __future__ import annotations

import time

import pymc as pm

from pymc_tracers.inference.fitter import Fitter
from pymc_tracers.inference.results import Result
from pymc_tracers.inference.samplers import (
    NUTPIE_SETTINGS,
    SAMPLERS,
    _as_observations,
    _check_counts,
    _enable_jax_x64,
    _finish,
    nutpie_backend,
)
from pymc_tracers.model.likelihood import likelihoods_of

__all__ = ["fit"]


def fit(
    model=None,
    *,
    draws=1000,
    tune=1000,
    chains=2,
    sampler="nutpie",
    map_start=False,
    random_seed=None,
    progressbar=True,
    map_draws=100,
    grid=None,
    config=None,
    backend="auto",
    log_likelihood=True,
    observations=None,
    **sample_kwargs,
) -> Result:
    """Sample a pymc_tracers model with NUTS and wrap the result.

    Parameters
    ----------
    model : pm.Model, optional
        Defaults to the model on the context stack.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain; number of chains. nutpie needs
        ``tune >= 1`` (its adaptation windows are fractions of the tuning steps).
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        NUTS implementation (nutpie by default; numpyro/blackjax need the ``jax`` extra).
    map_start : bool
        Start every chain at the maximum a posteriori point, unjittered. Recommended for
        large batches of galaxies: from jittered starts one chain may settle in a poor local
        mode of one galaxy among hundreds (e.g. a rotation curve whose beam smearing stands
        in for the dispersion) and never leave it.
    random_seed : int, optional
    progressbar : bool
    map_draws : int
        Number of posterior draws used for the median model maps.
    grid : PixelGrid, optional
        The data grid, stored so plots have arcsec axes and radii.
    config : dict, optional
        Extra JSON-serialisable description stored in ``idata.attrs`` (e.g. the galaxy setup).
    backend : {"auto", "jax", "numba"}
        nutpie's compilation backend. "auto" takes JAX when it is installed: measured faster
        here, both to compile and per gradient (``benchmarks/backends.py``). Whenever JAX runs
        the model (this backend, ``sampler="numpyro"`` or ``"blackjax"``), 64-bit JAX is
        switched on so the float64 graph is not truncated to float32.
    log_likelihood : bool
        Compute pointwise log-likelihoods (needed for LOO/WAIC/BIC; costs a pass over the
        draws). They stay in memory; :meth:`Result.save` stores them only when asked.
    observations : list of Observation, optional
        What :func:`~pymc_tracers.observe` returned. Those on the radial path are compared
        with the exact full path at a few posterior draws after sampling; the largest error
        (tracer units) is stored as ``config["radial_error"]``, with a warning when it
        exceeds the tolerance.
    **sample_kwargs
        Passed on to ``pm.sample``.

    Returns
    -------
    Result
    """
    model = pm.modelcontext(model)
    observations = _as_observations(observations)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    _check_counts(draws=draws, tune=tune, chains=chains, sampler=sampler)
    if sampler == "nutpie":
        backend = nutpie_backend(backend)
        sample_kwargs["nuts_sampler_kwargs"] = {
            "backend": backend,
            "gradient_backend": "jax" if backend == "jax" else "pytensor",
            **NUTPIE_SETTINGS,
            **sample_kwargs.get("nuts_sampler_kwargs", {}),
        }
    elif sampler in ("numpyro", "blackjax"):
        jax = _enable_jax_x64(f"sampler={sampler!r}")
        backend = "jax"
        if sampler == "blackjax" and jax.local_device_count() < chains:
            # PyMC maps blackjax chains over devices (pmap), which fails with fewer devices
            # than chains; vectorised chains run anywhere
            sample_kwargs["nuts_sampler_kwargs"] = {
                "chain_method": "vectorized",
                **sample_kwargs.get("nuts_sampler_kwargs", {}),
            }
    else:
        backend = None
    started = time.perf_counter()
    initvals = None
    if map_start:
        with model:
            initvals = pm.find_MAP(progressbar=progressbar, seed=random_seed)
        initvals = {rv.name: initvals[rv.name] for rv in model.free_RVs}
        if sampler == "nutpie":
            # pm.sample does not pass initvals to nutpie (it warns and starts from jittered
            # points); the Fitter hands them to nutpie's compiler, unjittered
            extra = sorted(set(sample_kwargs) - {"nuts_sampler_kwargs"})
            if extra:
                raise ValueError(
                    f"map_start=True with nutpie takes no further sampler options; got {extra}"
                )
            fitter = Fitter(
                model,
                observations=observations,
                backend=backend,
                swappable_data=False,
                jitter=False,
                initial_points=initvals,
            )
            return fitter.fit(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                progressbar=progressbar,
                map_draws=map_draws,
                grid=grid,
                config=dict(config or {}, map_start=True),
                log_likelihood=log_likelihood,
            )
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            nuts_sampler=sampler,
            initvals=initvals,
            random_seed=random_seed,
            progressbar=progressbar,
            **sample_kwargs,
        )
    return _finish(
        idata,
        model,
        likelihoods_of(model),
        started=started,
        log_likelihood=log_likelihood,
        map_draws=map_draws,
        random_seed=random_seed,
        grid=grid,
        config=config,
        settings={
            "sampler": sampler,
            "backend": backend,
            "draws": draws,
            "tune": tune,
            "chains": chains,
        },
        observations=observations,
    )
