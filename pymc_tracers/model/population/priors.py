"""Per-galaxy priors over a ``galaxy`` dimension: :func:`hierarchical_normal`,
:func:`hierarchical_lognormal`, and the checks of per-galaxy values the relations share
(see :mod:`pymc_tracers.model.population`)."""

from __future__ import annotations

import numpy as np
import pymc as pm
from pytensor.graph.basic import Variable

__all__ = ["hierarchical_lognormal", "hierarchical_normal"]


# ---------------------------------------------------------------------------- validation
def _dim_name(dims):
    if isinstance(dims, str):
        return dims
    if isinstance(dims, (tuple, list)) and len(dims) == 1 and isinstance(dims[0], str):
        return dims[0]
    raise ValueError(f"dims must name one dimension (e.g. dims='galaxy'); got {dims!r}")


def _galaxy_length(model, dim, n=None, what="covariate"):
    """Length of the galaxy coordinate, created from ``n`` when the model has none yet."""
    coords = model.coords.get(dim)
    if coords is None:
        if n is None:
            raise ValueError(
                f"the model has no {dim!r} coordinate, so the number of galaxies is unknown; "
                f"create the model with pm.Model(coords={{{dim!r}: galaxy_ids}})"
            )
        model.add_coord(dim, np.arange(n))
        return n
    if n is not None and len(coords) != n:
        raise ValueError(
            f"{what} has {n} values but the model's {dim!r} coordinate has {len(coords)} "
            "galaxies; give one value per galaxy, in the coordinate's order"
        )
    return len(coords)


def _check_per_galaxy(value, label, n, positive=False):
    """Floats or per-galaxy arrays: finite, (> 0), broadcastable to the galaxies."""
    if isinstance(value, Variable):
        shape = value.type.shape
        if len(shape) > 1 or (len(shape) == 1 and shape[0] not in (None, 1, n)):
            raise ValueError(
                f"{label} has shape {shape}; give a scalar or one value per galaxy ({n})"
            )
        return value
    array = np.asarray(value, dtype=float)
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, n)):
        raise ValueError(
            f"{label} has shape {array.shape}; give a scalar or one value per galaxy ({n})"
        )
    bad = ~np.isfinite(array) | ((array <= 0) if positive else False)
    if np.any(bad):
        i = int(np.flatnonzero(np.atleast_1d(bad))[0])
        where = f" for galaxy {i}" if array.ndim else ""
        need = "finite and > 0" if positive else "finite"
        raise ValueError(f"{label} must be {need}; got {np.atleast_1d(array)[i]}{where}")
    return array


def _covariate(x, label="covariate"):
    """A 1-D float array of covariates; NaN/inf raise, naming the galaxy."""
    if isinstance(x, Variable):
        if x.type.ndim != 1:
            raise ValueError(f"{label} must be 1-D (one value per galaxy); got ndim={x.type.ndim}")
        return x, x.type.shape[0]
    array = np.asarray(x, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{label} must be 1-D (one value per galaxy); got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{label} is {array[bad[0]]} for galaxy {int(bad[0])} ({bad.size} non-finite value"
            f"{'s' if bad.size > 1 else ''} in all, at indices {bad[:10].tolist()}); remove those "
            "galaxies or give their covariate a value and a large covariate_error"
        )
    return array, array.shape[0]


def _per_galaxy_normal(name, mean, scale, dim, centered, kwargs):
    if centered:
        return pm.Normal(name, mu=mean, sigma=scale, dims=dim, **kwargs)
    offset = pm.Normal(f"{name}_offset", mu=0.0, sigma=1.0, dims=dim, **kwargs)
    return pm.Deterministic(name, mean + scale * offset, dims=dim)


# ---------------------------------------------------------------------------- helpers
def hierarchical_normal(name, mu, tau, *, dims="galaxy", centered=False, **kwargs):
    """Per-galaxy parameters drawn from a population ``Normal(mu, tau)``.

    Parameters
    ----------
    name : str
        Name of the per-galaxy variable (e.g. ``"gradient"``).
    mu : float, array or PyMC variable
        Population mean (units of the parameter); a scalar or one value per galaxy.
    tau : float, array or PyMC variable
        Population standard deviation (same units, > 0).
    dims : str
        The galaxy dimension; the model must have this coordinate.
    centered : bool
        ``False`` (default): ``name = mu + tau * name_offset``, ``name_offset ~ Normal(0, 1)``
        (a Deterministic); ``True``: ``name ~ Normal(mu, tau)``.
    **kwargs
        Passed to the PyMC ``Normal`` (``name_offset`` when non-centred).

    Returns
    -------
    TensorVariable
        The per-galaxy variable, shape ``(n_galaxies,)``, dims ``(dims,)``.
    """
    model = pm.modelcontext(None)
    dim = _dim_name(dims)
    n = _galaxy_length(model, dim)
    mu = _check_per_galaxy(mu, "mu", n)
    tau = _check_per_galaxy(tau, "tau", n, positive=True)
    return _per_galaxy_normal(name, mu, tau, dim, centered, kwargs)


def hierarchical_lognormal(name, mu, tau, *, dims="galaxy", centered=False, **kwargs):
    """Positive per-galaxy parameters with a log-normal population: ``log10 x ~ Normal(mu, tau)``.

    For quantities that are positive and spread over a factor of a few across a sample, such
    as intrinsic velocity dispersions (km/s) or scale lengths. The per-galaxy
    ``log10_<name>`` comes from :func:`hierarchical_normal` (non-centred by default) and
    ``name = 10**log10_<name>`` is a Deterministic.

    Parameters
    ----------
    name : str
        Name of the per-galaxy variable (e.g. ``"sigma0"``, km/s).
    mu : float, array or PyMC variable
        Population mean of ``log10 x`` (dex of the parameter's units, e.g. ``log10(km/s)``);
        ``10**mu`` is the population median.
    tau : float, array or PyMC variable
        Population scatter of ``log10 x`` (dex, > 0).
    dims, centered, **kwargs
        As in :func:`hierarchical_normal` (applied to ``log10_<name>``).

    Returns
    -------
    TensorVariable
        The per-galaxy variable ``name`` (> 0, units of ``10**mu``), dims ``(dims,)``.

    Example
    -------
    >>> log_sigma_mu = pm.Normal("log_sigma0_mu", 1.6, 0.3)          # log10(km/s)
    >>> log_sigma_tau = pm.HalfNormal("log_sigma0_tau", 0.3)         # dex
    >>> sigma0 = pmt.population.hierarchical_lognormal("sigma0", log_sigma_mu, log_sigma_tau)
    """
    dim = _dim_name(dims)
    log_value = hierarchical_normal(f"log10_{name}", mu, tau, dims=dim, centered=centered, **kwargs)
    return pm.Deterministic(name, 10.0**log_value, dims=dim)
