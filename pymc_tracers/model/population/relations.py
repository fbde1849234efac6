"""Relations of a per-galaxy quantity with a covariate: the mean functions (plain algebra) and
:func:`linear_relation`, :func:`quadratic_relation`, :func:`broken_linear_relation` (see
:mod:`pymc_tracers.model.population`)."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
from pytensor.graph.basic import Variable

from pymc_tracers.model.population.priors import (
    _check_per_galaxy,
    _covariate,
    _dim_name,
    _galaxy_length,
    _per_galaxy_normal,
)
from pymc_tracers.smooth import softplus

__all__ = [
    "broken_linear_mean",
    "broken_linear_relation",
    "linear_mean",
    "linear_relation",
    "quadratic_mean",
    "quadratic_relation",
    "scatter_at",
]


# ---------------------------------------------------------------------------- mean functions
# Plain algebra: they work on floats, arrays (posterior draws broadcast against covariates)
# and PyTensor tensors alike, so the model, the simulations and the plots share them.


def linear_mean(x, intercept, slope, pivot=0.0):
    """``intercept + slope (x - pivot)``."""
    return intercept + slope * (x - pivot)


def quadratic_mean(x, intercept, slope, curvature, pivot=0.0):
    """``intercept + slope (x - pivot) + curvature (x - pivot)^2``."""
    d = x - pivot
    return intercept + slope * d + curvature * d**2


def broken_linear_mean(x, intercept, slope_low, slope_high, break_point, width):
    """Two straight lines joined smoothly at ``break_point``.

    ``intercept + slope_low d + (slope_high - slope_low) width [softplus(d / width) - ln 2]``
    with ``d = x - break_point``: the value at the break is ``intercept``; well below it
    (``d << -width``) the slope is ``slope_low``, well above it ``slope_high``. The two
    asymptotic lines meet ``(slope_high - slope_low) width ln 2`` below ``intercept``; ``width``
    (covariate units) sets how gradual the transition is, and keeps the curve smooth for NUTS.
    """
    d = x - break_point
    return (
        intercept
        + slope_low * d
        + (slope_high - slope_low) * width * (softplus(d / width) - np.log(2.0))
    )


def scatter_at(x, scatter, scatter_slope=None, pivot=0.0):
    """Intrinsic scatter at covariate ``x``: ``scatter * 10**(scatter_slope (x - pivot))``."""
    if scatter_slope is None:
        return scatter + 0.0 * x
    return scatter * 10.0 ** (scatter_slope * (x - pivot))


def _latent_covariate(name, x, n, covariate_error, covariate_prior, dim, centered):
    """Latent true covariates with a Gaussian population, observed with known errors."""
    if isinstance(x, Variable):
        raise TypeError("covariate_error needs the measured covariates as an array, not a tensor")
    error = _check_per_galaxy(covariate_error, "covariate_error", n, positive=True)
    if covariate_prior is None:
        spread = float(np.std(x)) if n > 1 else 1.0
        spread = spread if spread > 0 else 1.0
        loc = pm.Normal(f"{name}_covariate_mu", mu=float(np.mean(x)), sigma=3.0 * spread)
        width = pm.HalfNormal(f"{name}_covariate_sigma", sigma=3.0 * spread)
    else:
        try:
            loc, width = covariate_prior
        except (TypeError, ValueError):
            raise ValueError(
                "covariate_prior must be a pair (mean, sd) of the true covariates' population "
                f"(floats or PyMC variables); got {covariate_prior!r}"
            ) from None
        loc = _check_per_galaxy(loc, "covariate_prior mean", n)
        width = _check_per_galaxy(width, "covariate_prior sd", n, positive=True)
    latent = _per_galaxy_normal(f"{name}_covariate", loc, width, dim, centered, {})
    pm.Normal(f"{name}_covariate_observed", mu=latent, sigma=error, observed=x, dims=dim)
    return latent


def _relation(
    name,
    covariate,
    mean_fn,
    *,
    scatter,
    scatter_slope,
    pivot,
    covariate_error,
    covariate_prior,
    covariate_centered,
    dims,
    centered,
    kwargs,
):
    model = pm.modelcontext(None)
    dim = _dim_name(dims)
    x, n = _covariate(covariate)
    n = _galaxy_length(model, dim, n)
    pivot = _pivot(name, x, pivot)
    scatter = _check_per_galaxy(scatter, "scatter", n, positive=True)
    if scatter_slope is not None:
        scatter_slope = _check_per_galaxy(scatter_slope, "scatter_slope", n)
    if covariate_error is not None:
        x = _latent_covariate(name, x, n, covariate_error, covariate_prior, dim, covariate_centered)
    elif covariate_prior is not None:
        raise ValueError("covariate_prior only applies with covariate_error= (latent covariates)")
    mean = mean_fn(x, pivot)
    pm.Data(f"{name}_pivot", pivot)
    sigma = scatter_at(x, scatter, scatter_slope, pivot)
    return _per_galaxy_normal(name, mean, sigma, dim, centered, kwargs)


def _pivot(name, x, pivot) -> float:
    """The pivot (covariate units): by default the covariates' median, rounded to 0.1.

    A pivot far outside the sample correlates intercept and slope almost perfectly (at
    ``pivot = 0`` for log masses near 10, ``r ~ -0.99``), which is what makes such relations
    sample slowly; the median decorrelates them.
    """
    if pivot is None:
        pivot = float(np.round(np.median(x), 1))
    elif not np.isfinite(pivot):
        raise ValueError(f"pivot must be a finite number (covariate units); got {pivot!r}")
    spread = float(np.std(x))
    if x.size > 2 and spread > 0 and abs(pivot - np.median(x)) > 3 * spread:
        warnings.warn(
            f"{name}: pivot={pivot:g} lies {abs(pivot - np.median(x)) / spread:.0f} standard "
            f"deviations from the covariates' median {np.median(x):.3g}, which correlates "
            "intercept and slope and slows sampling; leave pivot=None (the median) or give a "
            "value inside the sample",
            stacklevel=4,
        )
    return float(pivot)


_RELATION_PARAMETERS = """
    scatter : float or PyMC variable
        Intrinsic scatter at the pivot (units of ``y``, > 0).
    scatter_slope : float or PyMC variable, optional
        ``d log10(scatter) / d x`` (dex of scatter per covariate unit); constant scatter if
        None. Negative values make the scatter grow towards low covariate values.
    covariate_error : float or array, optional
        1-sigma measurement errors of the covariates (> 0). The true covariates become latent
        variables ``<name>_covariate`` with a Gaussian population and the measurements an
        observed variable ``<name>_covariate_observed``.
    covariate_prior : (mean, sd), optional
        Population of the true covariates (floats or PyMC variables). Default: hyperpriors
        ``<name>_covariate_mu ~ Normal(mean(x), 3 std(x))`` and
        ``<name>_covariate_sigma ~ HalfNormal(3 std(x))``.
    covariate_centered : bool
        Parametrisation of the latent covariates (default centred: measured covariates are
        usually precise compared with the sample's spread).
    dims : str
        The galaxy dimension; created with labels ``0..N-1`` if the model lacks it.
    centered : bool
        Non-centred (default) or centred per-galaxy scatter (see the module docstring).
    **kwargs
        Passed to the per-galaxy PyMC ``Normal``.

    Returns
    -------
    TensorVariable
        The per-galaxy variable ``name``, shape ``(n_galaxies,)``, dims ``(dims,)``.

    Raises
    ------
    ValueError
        If a covariate is NaN or infinite (the message names the galaxy), if the number of
        covariates differs from the galaxy coordinate, or if a scatter or error is <= 0.
"""


def linear_relation(
    name,
    covariate,
    *,
    intercept,
    slope,
    scatter,
    pivot=None,
    scatter_slope=None,
    covariate_error=None,
    covariate_prior=None,
    covariate_centered=True,
    dims="galaxy",
    centered=False,
    **kwargs,
):
    """Per-galaxy values on a line in a covariate, with intrinsic scatter.

    ``y_i = intercept + slope (x_i - pivot) + scatter(x_i) eps_i``, ``eps_i ~ Normal(0, 1)``.

    Parameters
    ----------
    name : str
        Name of the per-galaxy variable (e.g. ``"gradient"``, dex/kpc).
    covariate : array_like, shape (n_galaxies,)
        The covariate ``x`` of each galaxy (e.g. log10 M*/Msun, dex).
    intercept : float or PyMC variable
        ``y`` at the pivot (units of ``y``).
    slope : float or PyMC variable
        ``dy/dx`` (units of ``y`` per covariate unit).
    pivot : float, optional
        Covariate value where ``intercept`` and ``scatter`` apply (covariate units). Default:
        the covariates' median rounded to 0.1, which decorrelates intercept and slope; it is
        recorded in the model as the data ``<name>_pivot`` (``idata.constant_data``). A pivot
        more than three standard deviations from the sample warns.
    """
    return _relation(
        name,
        covariate,
        lambda x, pivot: linear_mean(x, intercept, slope, pivot),
        scatter=scatter,
        scatter_slope=scatter_slope,
        pivot=pivot,
        covariate_error=covariate_error,
        covariate_prior=covariate_prior,
        covariate_centered=covariate_centered,
        dims=dims,
        centered=centered,
        kwargs=kwargs,
    )


def quadratic_relation(
    name,
    covariate,
    *,
    intercept,
    slope,
    curvature,
    scatter,
    pivot=None,
    scatter_slope=None,
    covariate_error=None,
    covariate_prior=None,
    covariate_centered=True,
    dims="galaxy",
    centered=False,
    **kwargs,
):
    """Per-galaxy values on a parabola in a covariate, with intrinsic scatter.

    ``y_i = intercept + slope d_i + curvature d_i^2 + scatter(x_i) eps_i``, ``d_i = x_i - pivot``.

    Parameters
    ----------
    name, covariate, intercept, slope
        As in :func:`linear_relation` (``slope`` is the derivative at the pivot).
    curvature : float or PyMC variable
        Units of ``y`` per covariate unit squared.
    pivot : float, optional
        Covariate value where ``intercept`` and ``scatter`` apply (covariate units). Default:
        the covariates' median rounded to 0.1, which decorrelates intercept and slope; it is
        recorded in the model as the data ``<name>_pivot`` (``idata.constant_data``). A pivot
        more than three standard deviations from the sample warns.
    """
    return _relation(
        name,
        covariate,
        lambda x, pivot: quadratic_mean(x, intercept, slope, curvature, pivot),
        scatter=scatter,
        scatter_slope=scatter_slope,
        pivot=pivot,
        covariate_error=covariate_error,
        covariate_prior=covariate_prior,
        covariate_centered=covariate_centered,
        dims=dims,
        centered=centered,
        kwargs=kwargs,
    )


def broken_linear_relation(
    name,
    covariate,
    *,
    intercept,
    slope_low,
    slope_high,
    break_point,
    scatter,
    width=0.1,
    pivot=None,
    scatter_slope=None,
    covariate_error=None,
    covariate_prior=None,
    covariate_centered=True,
    dims="galaxy",
    centered=False,
    **kwargs,
):
    """Per-galaxy values on two lines joined smoothly at a break, with intrinsic scatter.

    The mean is :func:`broken_linear_mean` (``intercept`` is its value at ``break_point``);
    with ``x`` and ``y`` logarithms it is a smoothly broken power law.

    Parameters
    ----------
    name, covariate
        As in :func:`linear_relation`.
    intercept : float or PyMC variable
        ``y`` at the break (units of ``y``).
    slope_low, slope_high : float or PyMC variable
        Slopes below and above the break (units of ``y`` per covariate unit).
    break_point : float or PyMC variable
        Covariate value of the break (covariate units); give it a prior inside the sample's
        range, the break is unconstrained outside it.
    width : float or PyMC variable
        Smoothing width of the break (covariate units, > 0; default 0.1). Over about
        ``+-3 width`` the slope changes from ``slope_low`` to ``slope_high``.
    pivot : float, optional
        Where ``scatter`` applies (covariate units); defaults to ``break_point`` when that is
        a number. Required with ``scatter_slope`` when the break is fitted.
    """
    if not isinstance(width, Variable) and not (np.isfinite(width) and width > 0):
        raise ValueError(f"width must be a finite number > 0 (covariate units); got {width!r}")
    if pivot is None:
        if not isinstance(break_point, Variable):
            pivot = float(break_point)
        elif scatter_slope is None:
            pivot = None  # the scatter is the same everywhere: the median serves
        else:
            raise ValueError(
                "give pivot= (the covariate value where `scatter` applies) when the break point "
                "is fitted and the scatter varies with the covariate"
            )
    return _relation(
        name,
        covariate,
        lambda x, _: broken_linear_mean(x, intercept, slope_low, slope_high, break_point, width),
        scatter=scatter,
        scatter_slope=scatter_slope,
        pivot=pivot,
        covariate_error=covariate_error,
        covariate_prior=covariate_prior,
        covariate_centered=covariate_centered,
        dims=dims,
        centered=centered,
        kwargs=kwargs,
    )


for _f in (linear_relation, quadratic_relation, broken_linear_relation):
    _f.__doc__ = _f.__doc__.rstrip() + "\n" + _RELATION_PARAMETERS
del _f
