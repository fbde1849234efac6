"""The :class:`Result` of a fit: posterior samples, model maps, diagnostics, plots, save/load.

A ``Result`` wraps an ``az.InferenceData``. Everything it needs later (the data, error, used-pixel
and median model maps of every likelihood, the fit configuration) is stored inside that object,
so a result loaded from disk works without the PyMC model that produced it.
"""

from __future__ import annotations

import json
import os

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from pymc_tracers.atomic import atomic_write
from pymc_tracers.grid import PixelGrid
from pymc_tracers.inference.convergence import (
    ESS_MIN,
    R_HAT_MAX,
    check_convergence,
    convergence_report,
)
from pymc_tracers.model.likelihood import likelihoods_of
from pymc_tracers.plotting import corner_figure, plot_maps

__all__ = ["Result"]

#: Name of the JSON configuration in ``idata.attrs``.
CONFIG_ATTR = "pymc_tracers"


def model_map_function(model, records):
    """Compile ``free parameters -> [model map of each record] + [free sigma maps]``."""
    return model.compile_fn(
        [r.model_map for r in records]
        + [r.sigma for r in records if not isinstance(r.sigma, np.ndarray)],
        inputs=model.free_RVs,
        on_unused_input="ignore",
        point_fn=True,
    )


def max_total_log_likelihood(log_likelihood: xr.Dataset) -> float:
    """Largest total (all likelihoods, all pixels) log-likelihood over the draws."""
    total = sum(
        values.sum(dim=[d for d in values.dims if d not in ("chain", "draw")])
        for values in log_likelihood.data_vars.values()
    )
    return float(total.max())


def _map_dims(name, shape):
    axes = ("y", "x") if len(shape) == 2 else ("galaxy", "y", "x")
    return tuple(f"{name}_{axis}" for axis in axes)


class Result:
    """Posterior samples and model maps of a pymc_tracers fit.

    Attributes
    ----------
    idata : az.InferenceData
        Posterior, sample statistics, pointwise log-likelihoods (in memory; see :meth:`save`),
        and in ``constant_data`` for each likelihood ``<name>`` the maps ``<name>_map_data``,
        ``<name>_map_sigma``, ``<name>_map_used`` and ``<name>_map_model`` (pixel-wise
        posterior median model map), of shape ``(ny, nx)`` or, for a batched (population)
        likelihood, ``(N, ny, nx)`` with a leading galaxy axis.
    config : dict
        The fit configuration, stored as JSON in ``idata.attrs["pymc_tracers"]``. It is kept in
        its JSON form (lists, not tuples), so a loaded result has an identical ``config``.
    """

    def __init__(self, idata: az.InferenceData, config: dict | None = None):
        self.idata = idata
        if config is None:
            config = json.loads(idata.attrs.get(CONFIG_ATTR, "{}"))
        text = json.dumps(config, default=_jsonable)
        self.config = json.loads(text)
        idata.attrs[CONFIG_ATTR] = text

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(
        cls,
        idata,
        model,
        *,
        records=None,
        map_draws=100,
        config=None,
        random_seed=None,
        map_function=None,
    ) -> Result:
        """Add data, error and median model maps of every likelihood of ``model`` to ``idata``.

        Parameters
        ----------
        idata : az.InferenceData
            With a ``posterior`` group over the model's free variables.
        model : pm.Model
        records : list of LikelihoodRecord, optional
            Defaults to :func:`pymc_tracers.model.likelihood.likelihoods_of` ``(model)``.
        map_draws : int
            Number of (thinned, randomly chosen) posterior draws over which the pixel-wise
            median model map is taken.
        config : dict, optional
            Stored as JSON; the likelihoods and free parameters are added to it.
        random_seed : int, optional
            Picks the thinned draws.
        map_function : callable, optional
            A compiled :func:`model_map_function` of the same records (reused by ``Fitter``).
        """
        records = likelihoods_of(model) if records is None else list(records)
        config = dict(config or {})
        config["likelihoods"] = {
            r.name: {
                "kind": r.kind,
                "shape": list(r.data.shape),
                "batched": r.data.ndim == 3,
                "n_used": int(r.used.sum()),
                "n_total": int(r.data.size),
            }
            for r in records
        }
        point = model.initial_point()
        config["free_parameters"] = {
            rv.name: int(np.prod(point[model.rvs_to_values[rv].name].shape))
            for rv in model.free_RVs
        }
        if records:
            dataset = _median_maps(
                idata,
                model,
                records,
                map_draws,
                random_seed,
                map_function or model_map_function(model, records),
            )
            if "constant_data" in idata.groups():
                stale = [v for v in dataset.data_vars if v in idata.constant_data]
                idata.constant_data = xr.merge([idata.constant_data.drop_vars(stale), dataset])
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
        report = convergence_report(self.idata, var_names=self._parameter_names())
        return {k: report[k] for k in ("r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences")}

    def check_convergence(self, r_hat_max=R_HAT_MAX, ess_min=ESS_MIN) -> bool:
        """Run :func:`check_convergence` (warns with :class:`ConvergenceWarning`), record its
        report in :attr:`config` (``config["convergence"]``, saved with the result) and return
        whether the posterior passed."""
        report = check_convergence(
            self.idata,
            var_names=self._parameter_names(),
            r_hat_max=r_hat_max,
            ess_min=ess_min,
            what="the fit",
        )
        self.config["convergence"] = report
        self.idata.attrs[CONFIG_ATTR] = json.dumps(self.config, default=_jsonable)
        return report["converged"]

    @property
    def convergence(self) -> dict | None:
        """The last convergence report (:func:`convergence_report`), or None when not run."""
        return self.config.get("convergence")

    def percentiles(self, name, q=(16, 50, 84)) -> np.ndarray:
        """Posterior percentiles of a scalar (or array) parameter."""
        return np.percentile(az.extract(self.idata, var_names=[name]).values, q, axis=-1)

    def max_log_likelihood(self) -> float:
        """Largest total log-likelihood over the posterior draws.

        Read from the pointwise ``log_likelihood`` group when it is present, otherwise from
        the value recorded at fit time (``config["max_log_likelihood"]``), so that BIC works
        on results saved without the pointwise values.
        """
        if "log_likelihood" in self.idata.groups():
            return max_total_log_likelihood(self.idata.log_likelihood)
        if self.config.get("max_log_likelihood") is not None:
            return float(self.config["max_log_likelihood"])
        raise ValueError(
            "this result has no log-likelihood: fit with log_likelihood=True (the default), or "
            "call result.compute_log_likelihood(model) with the model that was fitted"
        )

    def compute_log_likelihood(self, model) -> Result:
        """Recompute the pointwise log-likelihood (for LOO/WAIC) from the fitted model.

        Use it on a result loaded from a file saved without the ``log_likelihood`` group:
        ``model`` must be the model that was fitted (same variable names), e.g. rebuilt by the
        same code. Returns ``self``.
        """
        if "log_likelihood" in self.idata.groups():
            del self.idata.log_likelihood
        with model:
            pm.compute_log_likelihood(self.idata, progressbar=False)
        return self

    def n_parameters(self) -> int:
        return int(sum(self.config.get("free_parameters", {}).values()))

    def n_data(self) -> int:
        return int(sum(v["n_used"] for v in self.config.get("likelihoods", {}).values()))

    # ------------------------------------------------------------------ maps
    def maps(self, name=None, *, galaxy=None) -> dict:
        """Data, sigma, median model, residual and used-pixel maps of one likelihood.

        Parameters
        ----------
        name : str, optional
            The likelihood (default: the first tracer likelihood).
        galaxy : int, optional
            For a batched (population) likelihood, the galaxy whose ``(ny, nx)`` maps to
            return; without it the maps keep their leading galaxy axis ``(N, ny, nx)``.

        Returns
        -------
        dict of ndarray
            ``data``, ``model``, ``residual`` (data - model, NaN outside the used pixels),
            ``sigma`` (in the data's units) and ``used`` (bool).
        """
        name = self._name(name)
        cd = self.idata.constant_data
        maps = {
            "data": cd[f"{name}_map_data"].values,
            "model": cd[f"{name}_map_model"].values,
            "sigma": cd[f"{name}_map_sigma"].values,
            "used": cd[f"{name}_map_used"].values.astype(bool),
        }
        if galaxy is not None:
            n_galaxies = self._n_galaxies(name)
            if n_galaxies is None:
                raise ValueError(f"likelihood {name!r} holds a single galaxy; leave galaxy=None")
            if (
                isinstance(galaxy, bool)
                or not float(galaxy).is_integer()
                or not (-n_galaxies <= galaxy < n_galaxies)
            ):
                raise ValueError(
                    f"galaxy must be an integer index in [0, {n_galaxies - 1}] for {name!r}; "
                    f"got {galaxy!r}"
                )
            maps = {key: value[int(galaxy)] for key, value in maps.items()}
        maps["residual"] = np.where(maps["used"], maps["data"] - maps["model"], np.nan)
        return maps

    def _n_galaxies(self, name):
        shape = self.config["likelihoods"][name]["shape"]
        return shape[0] if len(shape) == 3 else None

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

    def plot_maps(
        self,
        name=None,
        *,
        galaxy=None,
        grid=None,
        center=(0.0, 0.0),
        n_bins=12,
        cmap="viridis",
        **kwargs,
    ):
        """Data / model / residual panels and a radial profile of one likelihood's map.

        ``galaxy`` picks one galaxy of a batched (population) likelihood and is required for
        one. ``grid`` (default: the grid stored at fit time) gives arcsec axes; ``center``
        (arcsec) is the centre of the radial profile. Other keywords (``unit``, ``frame`` for
        north/east arrows, ``truth``) go to :func:`pymc_tracers.plotting.plot_maps`.
        """
        name = self._name(name)
        n_galaxies = self._n_galaxies(name)
        if n_galaxies is not None and galaxy is None:
            raise ValueError(
                f"likelihood {name!r} holds {n_galaxies} galaxies: pass galaxy=<index in "
                f"[0, {n_galaxies - 1}]> to plot one"
            )
        label = name if galaxy is None else f"{name} [galaxy {int(galaxy)}]"
        return plot_maps(
            self.maps(name, galaxy=galaxy),
            name=label,
            grid=grid or self._grid(),
            center=center,
            n_bins=n_bins,
            cmap=cmap,
            **kwargs,
        )

    def plot_corner(self, var_names=None, *, units=None, truth=None):
        """Pairwise posterior plot with marginals, labelled with ``units`` (default: the
        units stored in :attr:`config`); ``truth`` draws reference lines."""
        stored = {**self.config.get("units", {}), **self.config.get("derived_units", {})}
        if var_names is None and self.config.get("free_parameters"):
            posterior = self.idata.posterior.data_vars
            var_names = [v for v in self.config["free_parameters"] if v in posterior]
        return corner_figure(self.idata, var_names=var_names, units=units or stored, truth=truth)

    def _grid(self):
        g = self.config.get("grid")
        if g is None:
            return None
        return PixelGrid(
            tuple(g["shape"]),
            g["pixel_scale"],
            g.get("supersampling", 1),
            tuple(g.get("center", (0, 0))),
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, log_likelihood=False) -> None:
        """Write the result (samples, maps, configuration) to one netCDF file, atomically.

        Parameters
        ----------
        path : str or path-like
            The file to write. The result is first written to a temporary file in the same
            folder and then renamed over ``path`` (``os.replace``), so an interrupted save never
            leaves a truncated file under the final name.
        log_likelihood : bool
            Also store the pointwise log-likelihood (pixels x draws), compactly as float32 with
            zlib compression. Off by default: it is by far the largest part of a fit (206 MB
            for a 121x121-pixel map and 2 x 1000 draws in float64) and only LOO/WAIC need it.
            Without it, :meth:`max_log_likelihood` still works on the loaded result (the
            maximum is kept in ``config``), and :meth:`compute_log_likelihood` rebuilds the
            pointwise values (for LOO/WAIC and ``pmt.bic``) from the fitted model. The
            in-memory result always keeps them.
        """
        path = os.fspath(path)
        groups = {}
        for group in self.idata.groups():
            data = getattr(self.idata, group)
            if group == "log_likelihood":
                if not log_likelihood:
                    continue
                data = data.astype(np.float32)
            groups[group] = data
        idata = az.InferenceData(attrs=dict(self.idata.attrs), **groups)
        atomic_write(path, lambda tmp: idata.to_netcdf(tmp, compress=True), overwrite=True)

    @classmethod
    def load(cls, path) -> Result:
        """Read a result written by :meth:`save` (fully into memory; the file is closed)."""
        with az.rc_context({"data.load": "eager"}):
            idata = az.from_netcdf(os.fspath(path))
        return cls(idata)

    def __repr__(self):
        d = self.diagnostics()
        return (
            f"Result(parameters={list(self.config.get('free_parameters', {}))}, "
            f"likelihoods={self.likelihood_names}, r_hat_max={d['r_hat_max']:.3f}, "
            f"ess_bulk_min={d['ess_bulk_min']:.0f}, divergences={d['divergences']})"
        )


def _median_maps(idata, model, records, map_draws, random_seed, map_function) -> xr.Dataset:
    """Pixel-wise posterior median model maps over ``map_draws`` thinned draws."""
    posterior = az.extract(idata, group="posterior")
    n_total = posterior.sizes["sample"]
    rng = np.random.default_rng(random_seed)
    picks = np.sort(rng.choice(n_total, size=min(int(map_draws), n_total), replace=False))
    free = [rv.name for rv in model.free_RVs]
    maps = [[] for _ in records]
    free_sigma = [r.name for r in records if not isinstance(r.sigma, np.ndarray)]
    sigmas = {name: [] for name in free_sigma}
    for i in picks:
        point = {name: np.asarray(posterior[name].isel(sample=i).values) for name in free}
        values = map_function(point)
        for k in range(len(records)):
            maps[k].append(values[k])
        for name, value in zip(free_sigma, values[len(records) :]):
            sigmas[name].append(value)
    data_vars = {}
    for record, draws in zip(records, maps):
        dims = _map_dims(record.name, record.data.shape)
        if isinstance(record.sigma, np.ndarray):
            sigma = np.broadcast_to(record.sigma, record.data.shape)
        else:
            sigma = np.median(sigmas[record.name], axis=0)
        data_vars[f"{record.name}_map_data"] = (dims, np.asarray(record.data, float))
        data_vars[f"{record.name}_map_sigma"] = (dims, np.asarray(sigma, float))
        data_vars[f"{record.name}_map_used"] = (dims, np.asarray(record.used).astype(np.int8))
        data_vars[f"{record.name}_map_model"] = (dims, np.median(np.asarray(draws), axis=0))
    return xr.Dataset(data_vars)


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)
