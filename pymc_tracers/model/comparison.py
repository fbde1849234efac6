"""Model comparison: PSIS-LOO / WAIC tables (ArviZ) at pixel or galaxy level, and BIC.

``pmt.compare`` ranks fits by their expected log predictive density from the pointwise
log-likelihoods stored by ``pmt.fit``; ``pmt.bic`` and ``pmt.delta_bic`` give the paper's BIC.
(This module was ``pymc_tracers.compare``, whose name clashed with the function.)
"""

from __future__ import annotations

import json
import warnings

import arviz as az
import numpy as np
import xarray as xr

__all__ = [
    "LEVELS",
    "PARETO_K_BAD",
    "ParetoKWarning",
    "bic",
    "compare",
    "delta_bic",
    "pointwise_log_likelihood",
]

#: units left out one at a time: single pixels, or all data of one galaxy
LEVELS = ("pixel", "galaxy")

_PLURAL = {"pixel": "pixels", "galaxy": "galaxies"}

#: Pareto-k above this marks a leave-one-out estimate as unreliable (Vehtari et al. 2017/2024)
PARETO_K_BAD = 0.7


class ParetoKWarning(UserWarning):
    """Some PSIS-LOO estimates are unreliable (Pareto k above the threshold)."""


# ---------------------------------------------------------------------------- inputs
def _idata(result) -> az.InferenceData:
    idata = getattr(result, "idata", result)
    if not isinstance(idata, az.InferenceData):
        raise TypeError(f"expected a pmt.Result or az.InferenceData; got {type(result).__name__}")
    return idata


def _config(result) -> dict:
    config = getattr(result, "config", None)
    if config is None:
        config = json.loads(_idata(result).attrs.get("pymc_tracers", "{}"))
    return config


def _n_data(result) -> int:
    return int(sum(v["n_used"] for v in _config(result).get("likelihoods", {}).values()))


def _n_parameters(result) -> int:
    return int(sum(_config(result).get("free_parameters", {}).values()))


def _max_log_likelihood(result) -> float:
    idata = _idata(result)
    if "log_likelihood" not in idata.groups():
        raise ValueError("this result has no log_likelihood group: fit with log_likelihood=True")
    ll = idata.log_likelihood
    total = sum(
        ll[v].sum(dim=[d for d in ll[v].dims if d not in ("chain", "draw")]) for v in ll.data_vars
    )
    return float(total.max())


# ---------------------------------------------------------------------------- BIC
def bic(result) -> float:
    """Bayesian information criterion ``k ln n - 2 ln L_max`` (lower is better).

    ``L_max`` is the largest likelihood over the posterior draws (with informative data the
    sample maximum is within O(1/ESS) of the true maximum), ``k`` the number of free
    parameters and ``n`` the number of pixels in the likelihoods. For hierarchical models
    ``k`` counts every per-galaxy parameter, which over-penalises them (partial pooling makes
    the effective number smaller): prefer LOO there.

    Parameters
    ----------
    result : Result or az.InferenceData
        A fit from ``pmt.fit`` (its configuration holds ``k`` and ``n``).
    """
    config = _config(result)
    if not config.get("free_parameters") or not config.get("likelihoods"):
        raise ValueError(
            "BIC needs the numbers of free parameters and of data points, which pmt.fit stores "
            "in the result's configuration; this result has none"
        )
    return float(
        _n_parameters(result) * np.log(_n_data(result)) - 2.0 * _max_log_likelihood(result)
    )


def delta_bic(result_a, result_b) -> float:
    """``BIC(a) - BIC(b)``: positive values favour model ``b``; > 10 is "very strong"."""
    if _n_data(result_a) != _n_data(result_b):
        raise ValueError(
            f"the fits use different data ({_n_data(result_a)} vs {_n_data(result_b)} pixels); "
            "BIC can only compare models of the same data"
        )
    return bic(result_a) - bic(result_b)


# ---------------------------------------------------------------------------- pointwise
def _galaxy_of_entries(var, da, config, galaxy_of, galaxy_dim):
    """Galaxy index (0..N-1) of each pointwise entry of one log-likelihood variable."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if len(dims) != 1:
        raise ValueError(
            f"log-likelihood {var!r} has dims {tuple(dims)}; galaxy-level comparison needs one "
            "observation dimension per variable"
        )
    (dim,) = dims
    n = da.sizes[dim]
    if galaxy_of is not None and var in galaxy_of:
        return np.full(n, int(galaxy_of[var]))
    if dim == galaxy_dim:
        return np.arange(n)
    shape = config.get("likelihoods", {}).get(var, {}).get("shape")
    if shape is not None and len(shape) == 3:
        # coordinate values are flat indices into the full (N, ny, nx) data shape
        index = np.asarray(da[dim].values, dtype=np.int64)
        return np.unravel_index(index, tuple(shape))[0]
    if shape is not None:
        raise ValueError(
            f"likelihood {var!r} holds one galaxy's {len(shape)}-D map, so its galaxy is not "
            "in the data's shape; for models written as one likelihood per galaxy pass "
            f"galaxy_of={{{var!r}: <galaxy index>, ...}}"
        )
    raise ValueError(
        f"cannot tell which galaxy each entry of log-likelihood {var!r} belongs to: it is not "
        f"a pymc_tracers likelihood and its dimension {dim!r} is not {galaxy_dim!r}; pass "
        f"galaxy_of={{{var!r}: <galaxy index>}} or var_name= to leave it out"
    )


def pointwise_log_likelihood(
    result, *, level="pixel", var_name=None, galaxy_of=None, galaxy_dim="galaxy"
) -> xr.DataArray:
    """Pointwise log-likelihoods of a fit, per pixel or summed per galaxy.

    Parameters
    ----------
    result : Result or az.InferenceData
    level : {"pixel", "galaxy"}
        ``"pixel"``: one entry per used pixel (several likelihoods are concatenated, in the
        order of the ``log_likelihood`` group). ``"galaxy"``: the sum over each galaxy's pixels
        in every likelihood (the log-likelihood of all its data), one entry per galaxy.
    var_name : str or list of str, optional
        Only these log-likelihood variables (default: all).
    galaxy_of : dict, optional
        ``{likelihood name: galaxy index}`` for likelihoods that hold one galaxy each (the
        loop form, one ``observe`` per galaxy). Batched likelihoods (data of shape
        ``(N, ny, nx)``) need nothing: the galaxy of an entry is
        ``np.unravel_index(pixel_index, shape)[0]``. Variables with dimension ``galaxy_dim``
        (e.g. measured covariates) contribute entry ``i`` to galaxy ``i``.
    galaxy_dim : str
        Name of the galaxy dimension (default ``"galaxy"``).

    Returns
    -------
    xr.DataArray, dims ``("chain", "draw", "observation")`` or ``("chain", "draw", galaxy_dim)``
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
    idata = _idata(result)
    if "log_likelihood" not in idata.groups():
        raise ValueError(
            "this result has no log_likelihood group: fit with pmt.fit(..., log_likelihood=True) "
            "or run pm.compute_log_likelihood(idata) in the model"
        )
    group = idata.log_likelihood
    names = list(group.data_vars) if var_name is None else np.atleast_1d(var_name).tolist()
    for name in names:
        if name not in group:
            raise ValueError(f"no log-likelihood {name!r}; the result has {list(group.data_vars)}")

    def flat(name):
        da = group[name]
        obs = [d for d in da.dims if d not in ("chain", "draw")]
        return da.transpose("chain", "draw", *obs).values.reshape(
            da.sizes["chain"], da.sizes["draw"], -1
        )

    if level == "pixel":
        if len(names) == 1:
            return group[names[0]]
        values = np.concatenate([flat(n) for n in names], axis=-1)
        return xr.DataArray(
            values,
            dims=("chain", "draw", "observation"),
            coords={"chain": group.chain, "draw": group.draw},
        )

    config = _config(result)
    galaxy = np.concatenate(
        [_galaxy_of_entries(n, group[n], config, galaxy_of, galaxy_dim) for n in names]
    )
    values = np.concatenate([flat(n) for n in names], axis=-1)
    labels, inverse = np.unique(galaxy, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(labels.size))
    summed = np.add.reduceat(values[..., order], starts, axis=-1)
    coords = {"chain": group.chain, "draw": group.draw, galaxy_dim: labels}
    if galaxy_dim in idata.posterior.coords and labels.max() < idata.posterior.sizes[galaxy_dim]:
        coords[galaxy_dim] = idata.posterior[galaxy_dim].values[labels]
    return xr.DataArray(summed, dims=("chain", "draw", galaxy_dim), coords=coords)


# ---------------------------------------------------------------------------- compare
def compare(
    results: dict,
    ic="loo",
    *,
    level="pixel",
    var_name=None,
    galaxy_of=None,
    galaxy_dim="galaxy",
    scale=None,
    pareto_k_threshold=PARETO_K_BAD,
    **kwargs,
):
    """Rank fits of the same data by PSIS-LOO (default) or WAIC: an ArviZ compare table.

    Parameters
    ----------
    results : dict
        ``{model name: Result or az.InferenceData}`` with pointwise log-likelihoods (``pmt.fit``
        stores them by default) of the same data.
    ic : {"loo", "waic"}
        Information criterion (PSIS-LOO by default; WAIC has no reliability diagnostic).
    level : {"pixel", "galaxy"}
        What is left out: one pixel, or all data of one galaxy (see
        :func:`pointwise_log_likelihood`; ``galaxy_of`` and ``galaxy_dim`` are passed on).
    var_name : str or list of str, optional
        Log-likelihood variables to use (default: all of them, summed per galaxy or
        concatenated per pixel).
    scale : {"log", "negative_log", "deviance"}, optional
        ArviZ's scale (default "log": higher elpd is better).
    pareto_k_threshold : float
        Pareto k above which a LOO entry counts as unreliable (default 0.7).
    **kwargs
        Passed to ``az.compare`` (``method``, ``b_samples``, ``seed``...).

    Returns
    -------
    pandas.DataFrame
        ``az.compare``'s table (rank, elpd, p, elpd_diff, weight, se, dse, warning, scale),
        plus ``n_points`` (pixels or galaxies left out in turn), ``n_pareto_k_bad`` and
        ``pareto_k_max`` (LOO only), and ``bic``: NaN for hierarchical fits (per-galaxy free
        parameters; ``table.attrs["bic_note"]`` says why: BIC counts each galaxy's parameters
        as free while the population prior pools them, so it over-penalises such models and
        can point against LOO) and when a result lacks the configuration ``pmt.fit`` stores.

    Warns
    -----
    ParetoKWarning
        When some entries have Pareto k > ``pareto_k_threshold``; the warning names the models.

    Notes
    -----
    **When pixel-level LOO is unreliable.** PSIS-LOO treats each pixel as an exchangeable,
    conditionally independent observation. Pixels of a PSF-convolved map are not: the PSF
    spreads any misfit (and correlated noise from resampling or drizzling) over neighbouring
    pixels, so leaving one pixel out leaves its neighbours, which carry nearly the same
    information, in. Pixel-level elpd differences then overstate the evidence (their standard
    errors are too small) and favour models that fit small-scale structure. Use it as a
    ranking when residuals are close to white noise (residual maps show no structure on the
    PSF scale); otherwise, and for any population model, use ``level="galaxy"``
    (leave-one-galaxy-out: each galaxy's pixels summed first), which asks how well the model
    predicts a new galaxy. In a hierarchical model each galaxy's own parameters (its gradient,
    central value) are pinned by its data; leaving those data out sends them back to the
    population prior, a change importance sampling often cannot follow, so Pareto k > 0.7 is
    common at galaxy level. The table counts them and a warning names the models: then refit
    without groups of galaxies (K-fold cross-validation) instead of trusting the PSIS value.
    """
    if ic not in ("loo", "waic"):
        raise ValueError(f"ic must be 'loo' or 'waic'; got {ic!r}")
    if level not in LEVELS:
        raise ValueError(
            f"level must be one of {LEVELS} (leave out one pixel or one galaxy); got {level!r}"
        )
    if not isinstance(results, dict) or len(results) < 2:
        raise ValueError("give a dict {model name: result} of at least two fits to compare")
    elpds, n_points, pareto = {}, {}, {}
    for name, result in results.items():
        ll = pointwise_log_likelihood(
            result, level=level, var_name=var_name, galaxy_of=galaxy_of, galaxy_dim=galaxy_dim
        )
        n_points[name] = int(np.prod([ll.sizes[d] for d in ll.dims if d not in ("chain", "draw")]))
        data = az.InferenceData(
            posterior=_idata(result).posterior, log_likelihood=xr.Dataset({"pointwise": ll})
        )
        with warnings.catch_warnings():
            # ArviZ's own Pareto-k / WAIC-variance warnings are summarised below, per model
            warnings.simplefilter("ignore", UserWarning)
            elpd = (az.loo if ic == "loo" else az.waic)(data, pointwise=True, scale=scale)
        elpds[name] = elpd
        if ic == "loo":
            k = np.asarray(elpd.pareto_k).ravel()
            pareto[name] = (int(np.sum(k > pareto_k_threshold)), float(np.max(k)))
    if len(set(n_points.values())) > 1:
        raise ValueError(
            f"the fits have different numbers of {_PLURAL[level]}: {n_points}; LOO/WAIC compare "
            "models of the same data (same pixels, masks and galaxies)"
        )
    table = az.compare(elpds, ic=ic, scale=scale, **kwargs)
    table["n_points"] = [n_points[m] for m in table.index]
    if ic == "loo":
        table["n_pareto_k_bad"] = [pareto[m][0] for m in table.index]
        table["pareto_k_max"] = [pareto[m][1] for m in table.index]
        bad = {m: pareto[m][0] for m in table.index if pareto[m][0]}
        if bad:
            where = (
                "pixel-level LOO is often unreliable for PSF-correlated residuals; compare "
                "with level='galaxy'"
                if level == "pixel"
                else "leaving a galaxy out moves its own parameters too far for importance "
                "sampling; use K-fold cross-validation (refits) for these models"
            )
            counts = ", ".join(
                f"{n} of {n_points[m]} {_PLURAL[level]} in {m!r}" for m, n in bad.items()
            )
            warnings.warn(
                f"Pareto k > {pareto_k_threshold} for {counts}: those LOO estimates are "
                f"unreliable ({where})",
                ParetoKWarning,
                stacklevel=2,
            )
    table["bic"] = [_bic_or_nan(results[m], galaxy_dim) for m in table.index]
    hierarchical = [m for m in table.index if _is_hierarchical(results[m], galaxy_dim)]
    if hierarchical:
        table.attrs["bic_note"] = (
            f"no BIC for the hierarchical models {hierarchical}: it counts every per-galaxy "
            "parameter as free, while the population prior pools them (fewer effective "
            "parameters), so it over-penalises them and can point against LOO; use LOO/K-fold"
        )
    return table


def _is_hierarchical(result, galaxy_dim) -> bool:
    """Whether a fit has free parameters per galaxy (a ``galaxy_dim`` dimension)."""
    posterior = _idata(result).posterior
    return any(galaxy_dim in posterior[v].dims for v in posterior.data_vars)


def _bic_or_nan(result, galaxy_dim="galaxy") -> float:
    """BIC, or NaN for a hierarchical fit or one without the configuration BIC needs."""
    if _is_hierarchical(result, galaxy_dim):
        return float("nan")
    try:
        return bic(result)
    except ValueError:
        return float("nan")
