"""Sampling front door and the :class:`Result` object around ``az.InferenceData``."""

from __future__ import annotations

import json
import logging
import time
import warnings

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from pymc_tracers.likelihood import likelihoods_of

__all__ = ["fit", "Fitter", "Result", "ConvergenceWarning", "SAMPLERS"]

logger = logging.getLogger("pymc_tracers")

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")

#: Convergence thresholds (Vehtari et al. 2021)
R_HAT_MAX = 1.01
ESS_MIN = 400


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
    **sample_kwargs,
) -> "Result":
    """Sample a pymc_tracers model with NUTS and wrap the result.

    Parameters
    ----------
    model : pm.Model, optional
        Defaults to the model on the context stack.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain; number of chains.
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        NUTS implementation (nutpie by default; numpyro/blackjax need the ``jax`` extra).
    map_start : bool
        Start the chains from the maximum a posteriori point.
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
        here, both to compile and per gradient (``benchmarks/backends.py``).
    log_likelihood : bool
        Store pointwise log-likelihoods (needed for LOO/WAIC/BIC; costs a pass over the draws).
    **sample_kwargs
        Passed on to ``pm.sample``.

    Returns
    -------
    Result
    """
    model = pm.modelcontext(model)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    if sampler in ("numpyro", "blackjax"):
        try:
            import jax  # noqa: F401
        except ImportError:
            raise ImportError(f"sampler={sampler!r} needs JAX: pip install 'pymc_tracers[jax]'") from None
    start = time.perf_counter()
    initvals = None
    if map_start:
        with model:
            initvals = pm.find_MAP(progressbar=progressbar, seed=random_seed)
        initvals = {rv.name: initvals[rv.name] for rv in model.free_RVs}
    if sampler == "nutpie":
        backend = _nutpie_backend(backend)
        # the low-rank mass matrix adapts to correlated parameters (central value vs gradient,
        # r ~ -0.9): bulk ESS per 2000 draws rose from ~500 to ~2000 in the paper's fits
        nutpie_kwargs = dict(backend=backend, gradient_backend="jax" if backend == "jax" else "pytensor",
                             low_rank_modified_mass_matrix=True)
        sample_kwargs["nuts_sampler_kwargs"] = {**nutpie_kwargs, **sample_kwargs.get("nuts_sampler_kwargs", {})}
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
        if log_likelihood and "log_likelihood" not in idata.groups():
            pm.compute_log_likelihood(idata, progressbar=False)
    seconds = time.perf_counter() - start
    result = Result.from_model(
        idata,
        model,
        map_draws=map_draws,
        config=dict(
            config or {},
            sampler=sampler,
            backend=backend if sampler == "nutpie" else None,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampling_seconds=seconds,
            grid=_grid_config(grid),
        ),
        random_seed=random_seed,
    )
    result.check_convergence()
    return result


def _nutpie_backend(backend):
    if backend not in ("auto", "jax", "numba"):
        raise ValueError(f"unknown backend {backend!r}; use 'auto', 'jax' or 'numba'")
    if backend == "auto":
        try:
            import jax

            jax.config.update("jax_enable_x64", True)
            return "jax"
        except ImportError:
            return "numba"
    return backend


class Fitter:
    """Compile a model once, then fit it to many data sets or PSFs without recompiling.

    Fitting a survey of galaxies observed on the same grid, or one galaxy under many PSFs,
    only changes data: the observed maps and errors (``pm.Data`` created by the likelihoods)
    and, for models on the exact linear path, the PSF-dependent basis maps. nutpie swaps them
    into the compiled sampler.

    Parameters
    ----------
    model : pm.Model, optional
        Defaults to the model on the context stack.
    backend : {"numba", "jax"}
        nutpie's compilation backend. numba (default) compiles once and then swaps data for
        free (measured: ~9 s compile, then ~1.6 s per 2 x 1000-draw refit of the Figure-3
        model); nutpie's JAX backend re-traces on new data (~8 s per refit).

    Examples
    --------
    >>> fitter = pmt.Fitter(model)                       # compiles once
    >>> for galaxy in galaxies:
    ...     result = fitter.fit({"metallicity": (galaxy.tracer_map, galaxy.tracer_error)},
    ...                         psf=galaxy.psf)
    """

    def __init__(self, model=None, *, backend="numba"):
        import nutpie

        self.model = pm.modelcontext(model)
        self.records = {r.name: r for r in likelihoods_of(self.model)}
        start = time.perf_counter()
        backend = _nutpie_backend(backend)
        self.compiled = nutpie.compile_pymc_model(
            self.model,
            backend=backend,
            gradient_backend="jax" if backend == "jax" else "pytensor",
            freeze_model=False,  # keep pm.Data swappable (nutpie freezes it for JAX by default)
        )
        self.compile_seconds = time.perf_counter() - start
        self._map_function = None

    def _data_updates(self, data) -> dict:
        updates = {}
        for name, value in (data or {}).items():
            if name not in self.records:
                raise ValueError(f"no likelihood named {name!r}; the model has {sorted(self.records)}")
            record = self.records[name]
            new_map, new_sigma = value if isinstance(value, tuple) else (value, None)
            new_map = np.asarray(new_map, dtype=float)
            if new_map.shape != record.data.shape:
                raise ValueError(f"data for {name!r} has shape {new_map.shape}; the model was built for {record.data.shape}")
            index = np.flatnonzero(record.used)
            if not np.all(np.isfinite(new_map.ravel()[index])):
                raise ValueError(
                    f"data for {name!r} is NaN in pixels the compiled model uses; pixels are fixed at "
                    "build time, so rebuild the model (or Fitter) for a different mask"
                )
            updates[f"{name}_observed"] = new_map.ravel()[index]
            record.data = new_map
            if new_sigma is not None:
                if not isinstance(record.sigma, np.ndarray):
                    raise ValueError(f"{name!r} has a noise model with free parameters; it takes no sigma map")
                new_sigma = np.broadcast_to(np.asarray(new_sigma, dtype=float), new_map.shape)
                used_sigma = new_sigma.ravel()[index]
                if not np.all(used_sigma > 0):
                    raise ValueError(f"sigma for {name!r} must be finite and > 0 in the used pixels")
                updates[f"{name}_sigma"] = used_sigma
                record.sigma = np.array(new_sigma)
        return updates

    def _psf_updates(self, psf) -> dict:
        from pymc_tracers.forward import LINEAR_BASES

        bases = LINEAR_BASES.get(self.model, [])
        if not bases:
            raise ValueError(
                "this model renders through the full FFT path, whose PSF is compiled in; build a "
                "new model for a new PSF (only exact linear-path models can swap PSFs)"
            )
        updates = {}
        for basis in bases:
            arrays = basis["recompute"](psf)
            updates.update(zip(basis["names"], arrays))
        return updates

    def fit(self, data=None, *, psf=None, draws=1000, tune=1000, chains=2, random_seed=None,
            progressbar=True, map_draws=100, grid=None, config=None, log_likelihood=True) -> "Result":
        """Sample the compiled model with new data and/or PSF.

        Parameters
        ----------
        data : dict, optional
            ``{likelihood name: map}`` or ``{name: (map, sigma)}``; maps of the original shape
            with finite values in the pixels the model was built with.
        psf : PSF, optional
            A new PSF (linear-path models only).
        """
        import nutpie

        start = time.perf_counter()
        updates = self._data_updates(data)
        if psf is not None:
            updates.update(self._psf_updates(psf))
        if updates:
            with self.model:
                pm.set_data(updates)
        compiled = self.compiled.with_data(**updates) if updates else self.compiled
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=random_seed,
                              progress_bar=progressbar, save_warmup=False,
                              low_rank_modified_mass_matrix=True)
        if log_likelihood:
            with self.model:
                pm.compute_log_likelihood(idata, progressbar=False)
        seconds = time.perf_counter() - start
        if self._map_function is None:
            self._map_function = _model_map_function(self.model, likelihoods_of(self.model))
        result = Result.from_model(
            idata, self.model, map_draws=map_draws, random_seed=random_seed,
            map_function=self._map_function,
            config=dict(config or {}, sampler="nutpie", draws=draws, tune=tune, chains=chains,
                        random_seed=random_seed, sampling_seconds=seconds,
                        compile_seconds=self.compile_seconds, grid=_grid_config(grid)),
        )
        result.check_convergence()
        return result


def _grid_config(grid):
    if grid is None:
        return None
    return dict(shape=list(grid.shape), pixel_scale=grid.pixel_scale,
                supersampling=grid.supersampling, center=list(grid.center))


def _model_map_function(model, records):
    return model.compile_fn(
        [r.model_map for r in records]
        + [r.sigma for r in records if not isinstance(r.sigma, np.ndarray)],
        inputs=model.free_RVs,
        on_unused_input="ignore",
        point_fn=True,
    )


class Result:
    """Posterior samples and model maps of a pymc_tracers fit.

    Attributes
    ----------
    idata : az.InferenceData
        Posterior, sample statistics, pointwise log-likelihoods, and (in ``constant_data``)
        for each likelihood ``<name>`` the 2-D maps ``<name>_map_data``, ``<name>_map_sigma``,
        ``<name>_map_used`` and ``<name>_map_model`` (pixel-wise posterior median model map).
    config : dict
        The fit configuration, also stored as JSON in ``idata.attrs["pymc_tracers"]``.
    """

    def __init__(self, idata: az.InferenceData, config: dict | None = None):
        self.idata = idata
        if config is None:
            config = json.loads(idata.attrs.get("pymc_tracers", "{}"))
        self.config = config
        idata.attrs["pymc_tracers"] = json.dumps(config, default=_jsonable)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(cls, idata, model, *, map_draws=100, config=None, random_seed=None, map_function=None):
        """Add data, error and median model maps of every registered likelihood to ``idata``."""
        records = likelihoods_of(model)
        config = dict(config or {})
        config["likelihoods"] = {
            r.name: dict(kind=r.kind, shape=list(r.data.shape), n_used=r.n_used, n_total=int(r.data.size))
            for r in records
        }
        config["free_parameters"] = {rv.name: int(np.prod(model.initial_point()[model.rvs_to_values[rv].name].shape)) for rv in model.free_RVs}
        if records:
            fn = map_function or _model_map_function(model, records)
            posterior = az.extract(idata, group="posterior")
            n_total = posterior.sizes["sample"]
            rng = np.random.default_rng(random_seed)
            picks = rng.choice(n_total, size=min(map_draws, n_total), replace=False)
            maps = [[] for _ in records]
            sigmas = {r.name: [] for r in records if not isinstance(r.sigma, np.ndarray)}
            for i in picks:
                point = {rv.name: np.asarray(posterior[rv.name].isel(sample=i).values) for rv in model.free_RVs}
                values = fn(point)
                for k in range(len(records)):
                    maps[k].append(values[k])
                for name, value in zip(sigmas, values[len(records):]):
                    sigmas[name].append(value)
            data_vars = {}
            for record, draws in zip(records, maps):
                dims = (f"{record.name}_y", f"{record.name}_x")
                sigma = record.sigma if isinstance(record.sigma, np.ndarray) else np.median(sigmas[record.name], axis=0)
                data_vars[f"{record.name}_map_data"] = (dims, record.data)
                data_vars[f"{record.name}_map_sigma"] = (dims, np.asarray(sigma, float))
                data_vars[f"{record.name}_map_used"] = (dims, record.used.astype(np.int8))
                data_vars[f"{record.name}_map_model"] = (dims, np.median(draws, axis=0))
            dataset = xr.Dataset(data_vars)
            if "constant_data" in idata.groups():
                idata.constant_data = xr.merge([idata.constant_data, dataset])
            else:
                idata.add_groups(constant_data=dataset)
        return cls(idata, config)

    # ------------------------------------------------------------------ numbers
    @property
    def likelihood_names(self) -> list[str]:
        return list(self.config.get("likelihoods", {}))

    def _parameter_names(self):
        """Posterior variables without the samplers' unconstrained copies (``*_log__`` ...)."""
        return [v for v in self.idata.posterior.data_vars if not v.endswith("__")]

    def summary(self, var_names=None, **kwargs):
        """``az.summary`` of the posterior (mean, sd, HDI, ESS, R-hat)."""
        return az.summary(self.idata, var_names=var_names or self._parameter_names(), **kwargs)

    def diagnostics(self) -> dict:
        """Worst R-hat, smallest bulk/tail ESS and the number of divergent transitions."""
        summary = az.summary(self.idata, var_names=self._parameter_names(), kind="diagnostics")
        stats = self.idata.sample_stats
        divergent = int(stats["diverging"].sum()) if "diverging" in stats else 0
        return dict(
            r_hat_max=float(summary["r_hat"].max()),
            ess_bulk_min=float(summary["ess_bulk"].min()),
            ess_tail_min=float(summary["ess_tail"].min()),
            divergences=divergent,
        )

    def check_convergence(self, r_hat_max=R_HAT_MAX, ess_min=ESS_MIN) -> bool:
        """Warn (and return False) when R-hat, ESS or divergences show a problem."""
        d = self.diagnostics()
        problems = []
        if not d["r_hat_max"] <= r_hat_max:
            problems.append(f"R-hat up to {d['r_hat_max']:.3f} (> {r_hat_max})")
        if not d["ess_bulk_min"] >= ess_min:
            problems.append(f"bulk ESS down to {d['ess_bulk_min']:.0f} (< {ess_min})")
        if d["divergences"]:
            problems.append(f"{d['divergences']} divergent transitions")
        if problems:
            warnings.warn(
                "the posterior may be unreliable: " + "; ".join(problems)
                + ". Run more draws/tuning, reparametrise, or raise target_accept.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return not problems

    def percentiles(self, name, q=(16, 50, 84)) -> np.ndarray:
        """Posterior percentiles of a scalar (or array) parameter."""
        return np.percentile(az.extract(self.idata, var_names=[name]).values, q, axis=-1)

    def max_log_likelihood(self) -> float:
        """Largest total log-likelihood over the posterior draws."""
        if "log_likelihood" not in self.idata.groups():
            raise ValueError("this result has no log_likelihood group: fit with log_likelihood=True")
        ll = self.idata.log_likelihood
        total = sum(ll[v].sum(dim=[d for d in ll[v].dims if d not in ("chain", "draw")]) for v in ll.data_vars)
        return float(total.max())

    def n_parameters(self) -> int:
        return int(sum(self.config.get("free_parameters", {}).values()))

    def n_data(self) -> int:
        return int(sum(v["n_used"] for v in self.config.get("likelihoods", {}).values()))

    # ------------------------------------------------------------------ maps
    def maps(self, name=None) -> dict:
        """Data, sigma, median model, residual and used-pixel maps of one likelihood."""
        name = self._name(name)
        cd = self.idata.constant_data
        data = cd[f"{name}_map_data"].values
        model = cd[f"{name}_map_model"].values
        used = cd[f"{name}_map_used"].values.astype(bool)
        residual = np.where(used, data - model, np.nan)
        return dict(data=data, model=model, residual=residual, sigma=cd[f"{name}_map_sigma"].values, used=used)

    def _name(self, name):
        names = self.likelihood_names
        if not names:
            raise ValueError("this result has no pymc_tracers likelihoods, so no maps")
        if name is None:
            tracers = [n for n in names if self.config["likelihoods"][n]["kind"] == "tracer"]
            return (tracers or names)[0]
        if name not in names:
            raise ValueError(f"no likelihood named {name!r}; this result has {names}")
        return name

    def plot_maps(self, name=None, *, grid=None, center=(0.0, 0.0), n_bins=12, cmap="viridis"):
        """Data / model / residual panels and a radial profile of one likelihood's map."""
        from pymc_tracers.plotting import plot_maps

        return plot_maps(self.maps(name), name=self._name(name), grid=grid or self._grid(), center=center, n_bins=n_bins, cmap=cmap)

    def plot_corner(self, var_names=None, **kwargs):
        """Pairwise posterior plot (``az.plot_pair`` with marginals)."""
        return az.plot_pair(self.idata, var_names=var_names, marginals=True, kind="kde", **kwargs)

    def _grid(self):
        from pymc_tracers.grid import PixelGrid

        g = self.config.get("grid")
        return None if g is None else PixelGrid(tuple(g["shape"]), g["pixel_scale"], g.get("supersampling", 1), tuple(g.get("center", (0, 0))))

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write everything (samples, maps, configuration) to one netCDF file."""
        self.idata.to_netcdf(str(path))

    @classmethod
    def load(cls, path) -> "Result":
        """Read a result written by :meth:`save`."""
        idata = az.from_netcdf(str(path))
        return cls(idata)

    def __repr__(self):
        d = self.diagnostics()
        return (
            f"Result(parameters={list(self.config.get('free_parameters', {}))}, "
            f"likelihoods={self.likelihood_names}, r_hat_max={d['r_hat_max']:.3f}, "
            f"ess_bulk_min={d['ess_bulk_min']:.0f}, divergences={d['divergences']})"
        )


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics (R-hat, ESS, divergences) indicate an unreliable posterior."""


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)
