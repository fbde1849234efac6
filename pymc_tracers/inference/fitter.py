"""Compile once, refit many times: :class:`Fitter` fits one compiled model to many data sets
(a survey of galaxies on one grid) or PSFs, swapping data into nutpie's compiled sampler.
"""

from __future__ import annotations

import time

import numpy as np
import pymc as pm
from pymc.model.transform.optimization import freeze_dims_and_data

from pymc_tracers.inference.results import Result, model_map_function
from pymc_tracers.inference.samplers import (
    NUTPIE_SETTINGS,
    _as_observations,
    _check_counts,
    _finish,
    nutpie_backend,
)
from pymc_tracers.memory import release_freed_memory
from pymc_tracers.model.likelihood import likelihoods_of

__all__ = ["Fitter"]


class Fitter:
    """Compile a model once, then fit it to many data sets or PSFs without recompiling.

    Fitting a survey of galaxies observed on the same grid, or one galaxy under many PSFs,
    only changes data: the observed maps and errors (``pm.Data`` created by the likelihoods)
    and, for models on the linear and radial paths, the PSF-dependent basis maps, which the
    observations' renderers recompute. nutpie swaps them into the compiled sampler. The
    likelihoods are read from the model itself
    (:func:`~pymc_tracers.model.likelihood.likelihoods_of`), so models transformed by ``pm.do`` or
    ``clone_model`` work too.

    Parameters
    ----------
    model : pm.Model, optional
        Defaults to the model on the context stack.
    observations : list of Observation or KinematicObservation, optional
        What :func:`~pymc_tracers.observe` or :func:`~pymc_tracers.observe_kinematics`
        returned for this model; needed for ``fit(psf=...)`` (their renderers recompute their
        data for the new PSF).
    backend : {"numba", "jax"}
        nutpie's compilation backend. numba (default) compiles once and then swaps data for
        free; nutpie's JAX backend re-traces on new data (timings in ``docs/performance.md``).
    swappable_data : bool
        Keep the data (maps, errors, basis maps) swappable (default). ``False`` bakes them
        into the compiled model as constants, which lets the compiler fold what depends on
        data alone, but :meth:`fit` then takes no new data or PSF. (The linear path's
        per-pixel basis, the bulk of a population's data, is precomputed either way.)
    jitter : bool
        Start the chains at randomly jittered points (nutpie's default, ``True``) or all at
        the prior's central point (``False``).
    initial_points : dict, optional
        Starting values by variable name (in the variable's own units), overriding the
        prior's central point. Unjittered, a variable whose prior is flat at its central
        point (a HalfNormal scale at sigma, once log-transformed) starts with a zero
        gradient, which stalls nutpie's first mass-matrix guess (measured: step sizes of
        1e-9 and 1000 leapfrog steps per draw for the first few tens of warm-up draws of a
        100-galaxy population); starting such a scale below its prior's sigma avoids it.

    Examples
    --------
    >>> fitter = pmt.Fitter(model, observations=[observation])   # compiles once
    >>> for galaxy in galaxies:
    ...     result = fitter.fit({"metallicity": (galaxy.tracer_map, galaxy.tracer_error)},
    ...                         psf=galaxy.psf)
    """

    def __init__(
        self,
        model=None,
        *,
        observations=None,
        backend="numba",
        swappable_data=True,
        jitter=True,
        initial_points=None,
    ):
        import nutpie

        if backend not in ("numba", "jax"):
            raise ValueError(f"unknown backend {backend!r}; use 'numba' or 'jax'")
        self.model = pm.modelcontext(model)
        self.records = {r.name: r for r in likelihoods_of(self.model)}
        self.observations = _as_observations(observations)
        self.backend = nutpie_backend(backend)
        self.swappable_data = bool(swappable_data)
        start = time.perf_counter()
        compiled_model = self.model
        if self.backend == "jax" and self.swappable_data:
            # JAX traces static shapes: fix the dimension lengths (PyMC keeps them as shared
            # variables), but keep the data swappable
            compiled_model = freeze_dims_and_data(self.model, data=[])
        self.compiled = nutpie.compile_pymc_model(
            compiled_model,
            backend=self.backend,
            gradient_backend="jax" if self.backend == "jax" else "pytensor",
            # nutpie freezes pm.Data for JAX by default; swapping needs it kept as data
            freeze_model=not self.swappable_data,
            jitter_rvs=None if jitter else set(),
            initial_points=self._initial_points(initial_points),
        )
        self.compile_seconds = time.perf_counter() - start
        # compiling a large batch frees ~1 GB (1000 galaxies) that the allocator would keep
        # through sampling
        release_freed_memory()
        self._map_function = None

    def _initial_points(self, values):
        if not values:
            return None
        unknown = sorted(set(values) - {rv.name for rv in self.model.free_RVs})
        if unknown:
            raise ValueError(
                f"initial_points names {unknown}, which are not free variables of the model; "
                f"they are {sorted(rv.name for rv in self.model.free_RVs)}"
            )
        return {name: np.asarray(value, dtype=float) for name, value in values.items()}

    def _data_updates(self, data) -> dict:
        updates = {}
        for name, value in (data or {}).items():
            if name not in self.records:
                raise ValueError(
                    f"no likelihood named {name!r}; the model has {sorted(self.records)}"
                )
            record = self.records[name]
            new_map, new_sigma = value if isinstance(value, tuple) else (value, None)
            new_map = np.asarray(new_map, dtype=float)
            if new_map.shape != record.data.shape:
                raise ValueError(
                    f"data for {name!r} has shape {new_map.shape}; the model was built for "
                    f"{record.data.shape}"
                )
            index = np.flatnonzero(record.used)
            if not np.all(np.isfinite(new_map.ravel()[index])):
                raise ValueError(
                    f"data for {name!r} is NaN or infinite in pixels the compiled model uses; "
                    "pixels are fixed at build time, so rebuild the model (or Fitter) for a "
                    "different mask"
                )
            updates[f"{name}_observed"] = new_map.ravel()[index]
            record.data = np.where(record.used, new_map, np.nan)
            if new_sigma is not None:
                if not isinstance(record.sigma, np.ndarray):
                    raise ValueError(
                        f"{name!r} has a noise model with free parameters; it takes no sigma map"
                    )
                new_sigma = np.broadcast_to(np.asarray(new_sigma, dtype=float), new_map.shape)
                used_sigma = new_sigma.ravel()[index]
                if not np.all(np.isfinite(used_sigma) & (used_sigma > 0)):
                    raise ValueError(
                        f"sigma for {name!r} must be finite and > 0 in the used pixels"
                    )
                updates[f"{name}_sigma"] = used_sigma
                record.sigma = np.where(record.used, new_sigma, np.nan)
        return updates

    def _psf_updates(self, psf) -> dict:
        if not self.observations:
            raise ValueError(
                "Fitter.fit(psf=...) needs the observations whose PSF changes: build the "
                "Fitter with pmt.Fitter(model, observations=[observation]) (what pmt.observe "
                "returned)"
            )
        updates = {}
        for observation in self.observations:
            updates.update(observation.renderer.psf_updates(psf))
        unknown = sorted(name for name in updates if name not in self.model.named_vars)
        if unknown:
            raise ValueError(
                f"the observations' data {unknown} are not in this model: pass the "
                "observations built inside it"
            )
        return updates

    def swap_data(self, updates: dict) -> None:
        """Swap model data by name into the compiled model (e.g. another galaxy's basis maps
        from a model of the same structure); data the compiled model does not use are skipped."""
        self.compiled = self._compiled_with(updates)

    def _compiled_with(self, updates):
        """The compiled model with ``updates`` swapped in (data it does not use are skipped:
        e.g. full-map bases when its likelihood reads only the compact per-pixel basis)."""
        known = getattr(self.compiled, "shared_data", getattr(self.compiled, "_shared_data", None))
        if known is not None:
            updates = {name: value for name, value in updates.items() if name in known}
        return self.compiled.with_data(**updates) if updates else self.compiled

    def sample_with(
        self, updates=None, *, draws=1000, tune=1000, chains=2, random_seed=None, progressbar=True
    ):
        """Posterior draws of the compiled model with model data swapped in, nothing else.

        The model itself is left as it is (its data keep their values), so several calls may
        run at once from threads, e.g. the folds of :func:`~pymc_tracers.inference.kfold.kfold`.

        Parameters
        ----------
        updates : dict, optional
            New values of model data by name (``<likelihood>_observed``, ``<likelihood>_sigma``,
            basis maps...), in the shapes the model was built with.
        draws, tune, chains, random_seed, progressbar
            As in :func:`fit`.

        Returns
        -------
        az.InferenceData
            nutpie's draws (posterior and sample statistics), without log-likelihoods or maps.
        """
        import nutpie

        _check_counts(draws=draws, tune=tune, chains=chains, sampler="nutpie")
        return nutpie.sample(
            self._compiled_with(updates or {}),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=random_seed,
            progress_bar=progressbar,
            save_warmup=False,
            **NUTPIE_SETTINGS,
        )

    def fit(
        self,
        data=None,
        *,
        psf=None,
        draws=1000,
        tune=1000,
        chains=2,
        random_seed=None,
        progressbar=True,
        map_draws=100,
        grid=None,
        config=None,
        log_likelihood=True,
    ) -> Result:
        """Sample the compiled model with new data and/or PSF.

        Parameters
        ----------
        data : dict, optional
            ``{likelihood name: map}`` or ``{name: (map, sigma)}``; maps of the original shape
            with finite values in the pixels the model was built with.
        psf : PSF, optional
            A new fixed PSF, or one per galaxy (every renderer but ``fitted_psf``; the full
            paths take stamps no wider than the built one; needs ``observations``).
        draws, tune, chains, random_seed, progressbar, map_draws, grid, config, log_likelihood
            As in :func:`fit`.
        """
        _check_counts(draws=draws, tune=tune, chains=chains, sampler="nutpie")
        started = time.perf_counter()
        updates = self._data_updates(data)
        if psf is not None:
            updates.update(self._psf_updates(psf))
        if updates and not self.swappable_data:
            raise ValueError(
                "this Fitter was built with swappable_data=False (data compiled in as "
                "constants); build it with swappable_data=True to fit new data or PSFs"
            )
        if updates:
            with self.model:
                pm.set_data(updates)
        idata = self.sample_with(
            updates,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
        )
        records = list(self.records.values())
        if self._map_function is None:
            self._map_function = model_map_function(self.model, records)
        return _finish(
            idata,
            self.model,
            records,
            started=started,
            log_likelihood=log_likelihood,
            map_draws=map_draws,
            random_seed=random_seed,
            grid=grid,
            config=dict(config or {}, compile_seconds=self.compile_seconds),
            settings={
                "sampler": "nutpie",
                "backend": self.backend,
                "draws": draws,
                "tune": tune,
                "chains": chains,
            },
            map_function=self._map_function,
            observations=self.observations,
        )
