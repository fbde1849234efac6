"""Kinematic populations: characteristic speeds for Tully–Fisher relations, V/sigma, and
rotation- against dispersion-dominated comparisons per galaxy.

Physics (PyTensor graphs with numpy twins, no random variables):

* :func:`rotation_speed`: a rotation curve's speed at one disc radius per galaxy (km/s);
* :func:`velocity_22`: ``V_2.2``, the speed at 2.2 disc scale lengths (Courteau & Rix 1997),
  where an exponential disc's own curve peaks (2.15 r_d), the usual Tully–Fisher speed of
  optical rotation curves; :func:`flat_velocity`: ``V_flat``, the asymptote of arctan and
  tanh curves;
* :func:`curve_with_speed_at`: a rotation curve written with its speed at a chosen radius
  instead of its ``v_max``, so that a population relation can be put on ``V_2.2`` directly.

A Tully–Fisher relation is :func:`pymc_tracers.model.population.linear_relation` on ``log10 V``
(km/s) against ``log10 M*`` (dex), and a population of dispersions is
:func:`pymc_tracers.model.population.hierarchical_lognormal` (docs/kinematics.md,
"Populations: Tully–Fisher").

Posterior summaries (ArviZ):

* :func:`v_over_sigma`: the posterior of ``V / sigma0`` per galaxy, the probability that it
  exceeds a threshold (1 by default: Wisnioski et al. 2015) and a classification;
* :func:`rotation_or_dispersion`: per galaxy, the PSIS-LOO expected log predictive density of
  a rotating disc against a dispersion-dominated model of the same maps, with ``V / sigma0``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pymc_tracers.kinematics.radial_functions import RadialFunction
from pymc_tracers.kinematics.rotation_curves import ArctanCurve, ExponentialDiscCurve, TanhCurve
from pymc_tracers.profiles.light import per_galaxy
from pymc_tracers.profiles.tracer import _numeric

__all__ = [
    "EXPONENTIAL_R_EFF_OVER_R_D",
    "V_OVER_SIGMA_THRESHOLD",
    "curve_with_speed_at",
    "flat_velocity",
    "rotation_or_dispersion",
    "rotation_speed",
    "rotation_speed_numpy",
    "v_over_sigma",
    "velocity_22",
    "velocity_22_numpy",
]

#: ``r_eff / r_d`` of an exponential disc (Sérsic b_1 = 1.678): ``r_d = r_eff / 1.678``.
EXPONENTIAL_R_EFF_OVER_R_D = 1.6783469900166608

#: ``V / sigma0`` above which a galaxy is called rotation-dominated (Wisnioski et al. 2015,
#: KMOS3D: "v_rot / sigma_0 > 1"; Förster Schreiber et al. 2009 divide SINS galaxies at the
#: observed ``v_obs / (2 sigma_int) = 0.4``, close to the same line for typical inclinations).
V_OVER_SIGMA_THRESHOLD = 1.0


# ---------------------------------------------------------------------------- speeds
def _check_curve(curve):
    if not isinstance(curve, RadialFunction):
        raise TypeError(
            "give a rotation curve (e.g. pmt.ArctanCurve, pmt.ExponentialDiscCurve or any "
            f"pmt.RadialExpression); got {type(curve).__name__}"
        )


def _check_radius(radius, name="radius"):
    if isinstance(radius, Variable):
        return radius
    value = np.asarray(radius, dtype=float)
    if value.ndim > 1:
        raise ValueError(f"{name} must be a number or one value per galaxy (N,); got {value.shape}")
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise ValueError(f"{name} must be finite and >= 0 (arcsec); got {radius!r}")
    return value


def rotation_speed(curve, radius):
    """The speed of a rotation curve at one disc radius per galaxy (km/s), as a tensor.

    Parameters
    ----------
    curve : RadialFunction
        A rotation curve ``V(R)`` (e.g. :class:`~pymc_tracers.ArctanCurve`), its parameters
        numbers, arrays over N galaxies or PyMC variables.
    radius : float, array (N,) or variable
        Disc-plane radius in arcsec: one for all galaxies or one per galaxy.

    Returns
    -------
    TensorVariable
        ``V(radius)`` in km/s: shape ``(N,)`` for a batch, a scalar for one galaxy. Wrap it
        in ``pm.Deterministic(name, ..., dims="galaxy")`` to keep its posterior.
    """
    _check_curve(curve)
    radius = per_galaxy(_check_radius(radius))
    speed = pt.as_tensor_variable(curve(radius))
    if speed.ndim == 3:
        return speed[:, 0, 0]
    if speed.ndim == 0:
        return speed
    raise ValueError(
        f"{curve!r} evaluated at one radius per galaxy gave ndim={speed.ndim}; a radial "
        "expression must broadcast its galaxy parameters as (N, 1, 1) (pmt.profiles.light."
        "per_galaxy)"
    )


def rotation_speed_numpy(curve, radius):
    """Numpy twin of :func:`rotation_speed` (fixed parameters): ``(N,)`` or a float."""
    _check_curve(curve)
    radius = _numeric(_check_radius(radius))
    radius = radius[..., None, None] if radius.ndim else radius
    speed = np.asarray(curve.numpy(radius), dtype=float)
    return speed[:, 0, 0] if speed.ndim == 3 else speed


def _r_d(r_d, r_eff):
    if (r_d is None) == (r_eff is None):
        raise ValueError(
            "give exactly one of r_d= (exponential disc scale length, arcsec) or r_eff= "
            "(half-light radius of an exponential disc, arcsec; r_d = r_eff / 1.678)"
        )
    if r_d is None:
        return r_eff / EXPONENTIAL_R_EFF_OVER_R_D
    return r_d


def velocity_22(curve, *, r_d=None, r_eff=None):
    """``V_2.2``: the rotation speed at 2.2 disc scale lengths (km/s), as a tensor.

    The characteristic speed of optical Tully–Fisher studies (Courteau & Rix 1997; Pizagno
    et al. 2007): 2.2 r_d is where a self-gravitating exponential disc's own rotation curve
    peaks (2.15 r_d, :data:`~pymc_tracers.kinematics.rotation_curves.FREEMAN_PEAK_Y`), and it
    is defined for any curve shape, including curves that keep rising inside the data.

    Parameters
    ----------
    curve : RadialFunction
        The rotation curve (any shape).
    r_d : float, array (N,) or variable, optional
        Exponential scale length of the light in arcsec (disc plane).
    r_eff : float, array (N,) or variable, optional
        Or the half-light radius of an exponential light profile (arcsec): ``r_d = r_eff /
        1.678``. Give exactly one of ``r_d`` and ``r_eff``.

    Returns
    -------
    TensorVariable
        Shape ``(N,)`` for a batch, else a scalar (km/s).
    """
    return rotation_speed(curve, 2.2 * _r_d(r_d, r_eff))


def velocity_22_numpy(curve, *, r_d=None, r_eff=None):
    """Numpy twin of :func:`velocity_22`."""
    scale = _r_d(r_d, r_eff)
    return rotation_speed_numpy(curve, 2.2 * _numeric(scale))


def flat_velocity(curve):
    """``V_flat``: the asymptotic speed of a curve that flattens (km/s).

    ``v_max`` for :class:`~pymc_tracers.ArctanCurve` and :class:`~pymc_tracers.TanhCurve`.
    Note that an arctan curve reaches only 90% of it at ``R = 6.3 r_t``: when the data do not
    reach the flat part, ``V_flat`` is an extrapolation and :func:`velocity_22` is the better
    measured speed.

    Raises
    ------
    TypeError
        For :class:`~pymc_tracers.ExponentialDiscCurve` (it peaks at 2.15 r_d and declines,
        with no flat part: use :func:`velocity_22` or its ``v_max``, the peak) and for other
        curves (use :func:`rotation_speed` at the outermost radius of the data).
    """
    if isinstance(curve, (ArctanCurve, TanhCurve)):
        return curve.v_max
    if isinstance(curve, ExponentialDiscCurve):
        raise TypeError(
            "an exponential-disc curve has no flat part (it peaks at 2.15 r_d, then declines): "
            "use pmt.velocity_22(curve, r_d=...) or its v_max (the peak speed)"
        )
    raise TypeError(
        f"no asymptotic speed is defined for {curve!r}; use pmt.rotation_speed(curve, radius) "
        "at the outermost radius the data reach"
    )


def curve_with_speed_at(curve_type, *, speed, radius, **shape):
    """A rotation curve whose speed at ``radius`` is ``speed``, instead of its ``v_max``.

    Every built-in curve is ``v_max`` times a shape set by its other parameters, so
    ``v_max = speed / shape(radius)``. With ``speed`` from a population relation on
    ``log10 V_2.2`` and ``radius = 2.2 r_d``, the relation holds for ``V_2.2`` exactly,
    whatever the curve's shape parameters.

    Parameters
    ----------
    curve_type : type
        :class:`~pymc_tracers.ArctanCurve`, :class:`~pymc_tracers.TanhCurve` or
        :class:`~pymc_tracers.ExponentialDiscCurve`.
    speed : float, array (N,) or variable
        The speed at ``radius`` (km/s).
    radius : float, array (N,) or variable
        Disc radius (arcsec) where the curve has that speed; > 0.
    **shape
        The curve's other parameters (``r_t=`` or ``r_d=``).

    Returns
    -------
    RadialFunction
        ``curve_type(v_max=speed / shape(radius), **shape)``.

    Examples
    --------
    >>> v22 = 10 ** pmt.population.linear_relation("log_v22", log_mass, ...)
    >>> curve = pmt.curve_with_speed_at(pmt.ArctanCurve, speed=v22, radius=2.2 * r_d, r_t=r_t)
    """
    if curve_type not in (ArctanCurve, TanhCurve, ExponentialDiscCurve):
        raise TypeError(
            "curve_type must be pmt.ArctanCurve, pmt.TanhCurve or pmt.ExponentialDiscCurve "
            f"(curves proportional to v_max); got {curve_type!r}"
        )
    if not isinstance(radius, Variable) and np.any(_check_radius(radius) <= 0):
        raise ValueError(f"radius must be > 0 arcsec (every curve is 0 at R = 0); got {radius!r}")
    unit = rotation_speed(curve_type(v_max=1.0, **shape), radius)
    return curve_type(v_max=pt.as_tensor_variable(speed) / unit, **shape)


# ---------------------------------------------------------------------------- posteriors
def _posterior(result):
    idata = getattr(result, "idata", result)
    if not hasattr(idata, "posterior"):
        raise TypeError(f"expected a pmt.Result or az.InferenceData; got {type(result).__name__}")
    return idata


def _draws(posterior, name, galaxy_dim):
    if name not in posterior:
        raise ValueError(
            f"the posterior has no {name!r}: store it as pm.Deterministic({name!r}, ..., "
            f"dims={galaxy_dim!r}) (e.g. pmt.velocity_22) or name the variable that holds it; "
            f"the posterior has {sorted(posterior.data_vars)}"
        )
    da = posterior[name]
    extra = [d for d in da.dims if d not in ("chain", "draw", galaxy_dim)]
    if extra:
        raise ValueError(f"{name!r} has dims {da.dims}; give one value per galaxy ({galaxy_dim})")
    if galaxy_dim not in da.dims:
        da = da.expand_dims({galaxy_dim: [0]}, axis=-1)
    return da.transpose("chain", "draw", galaxy_dim)


def v_over_sigma(
    result,
    *,
    velocity="v_22",
    dispersion="sigma0",
    threshold=V_OVER_SIGMA_THRESHOLD,
    probability=0.95,
    galaxy_dim="galaxy",
):
    """Posterior of ``V / sigma0`` per galaxy and whether the galaxy is rotation-dominated.

    Parameters
    ----------
    result : Result or az.InferenceData
        A fit whose posterior holds the rotation speed and intrinsic dispersion per galaxy.
    velocity : str
        Posterior variable of the rotation speed (km/s, intrinsic, not ``v sin i``); e.g.
        ``V_2.2`` stored with ``pm.Deterministic("v_22", pmt.velocity_22(curve, r_d=...))``.
    dispersion : str
        Posterior variable of the intrinsic dispersion (km/s), e.g. ``sigma0``.
    threshold : float
        ``V / sigma0`` dividing rotation- from dispersion-dominated galaxies (default 1,
        Wisnioski et al. 2015; :data:`V_OVER_SIGMA_THRESHOLD`).
    probability : float
        Posterior probability needed for a verdict (default 0.95); below it either way the
        galaxy is ``"ambiguous"``.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: ``median``, ``low`` and ``high`` (16th and 84th percentiles) of
        ``V / sigma0``, ``p_rotation`` = P(V / sigma0 > threshold), and ``class``:
        ``"rotation-dominated"`` (``p_rotation >= probability``), ``"dispersion-dominated"``
        (``p_rotation <= 1 - probability``) or ``"ambiguous"``.
    """
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a number > 0 (V / sigma0); got {threshold!r}")
    if not (0.5 < probability < 1):
        raise ValueError(f"probability must be in (0.5, 1); got {probability!r}")
    posterior = _posterior(result).posterior
    v = _draws(posterior, velocity, galaxy_dim)
    s = _draws(posterior, dispersion, galaxy_dim)
    with np.errstate(divide="ignore"):
        ratio = (np.abs(v.values) / s.values).reshape(-1, v.shape[-1])
    low, median, high = np.percentile(ratio, [16, 50, 84], axis=0)
    p = np.mean(ratio > threshold, axis=0)
    verdict = np.where(
        p >= probability,
        "rotation-dominated",
        np.where(p <= 1 - probability, "dispersion-dominated", "ambiguous"),
    )
    index = pd.Index(v[galaxy_dim].values, name=galaxy_dim)
    table = pd.DataFrame(
        {"median": median, "low": low, "high": high, "p_rotation": p, "class": verdict},
        index=index,
    )
    table.attrs["threshold"] = float(threshold)
    return table


def _pointwise_loo(result, var_name, galaxy_of, galaxy_dim):
    """Pixel-level PSIS-LOO of one fit: (elpd_i, pareto_k_i, galaxy_i)."""
    import arviz as az
    import xarray as xr

    from pymc_tracers.model.comparison import (
        _config,
        _galaxy_of_entries,
        _idata,
        pointwise_log_likelihood,
    )

    idata = _idata(result)
    ll = pointwise_log_likelihood(result, level="pixel", var_name=var_name)
    group = idata.log_likelihood
    names = list(group.data_vars) if var_name is None else np.atleast_1d(var_name).tolist()
    galaxy = np.concatenate(
        [_galaxy_of_entries(n, group[n], _config(result), galaxy_of, galaxy_dim) for n in names]
    )
    ll = ll.rename({[d for d in ll.dims if d not in ("chain", "draw")][0]: "observation"})
    data = az.InferenceData(posterior=idata.posterior, log_likelihood=xr.Dataset({"y": ll}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(data, pointwise=True)
    return np.asarray(loo.loo_i).ravel(), np.asarray(loo.pareto_k).ravel(), galaxy


def rotation_or_dispersion(
    rotating,
    dispersion_dominated,
    *,
    velocity="v_22",
    dispersion="sigma0",
    threshold=V_OVER_SIGMA_THRESHOLD,
    probability=0.95,
    min_difference=4.0,
    var_name=None,
    galaxy_of=None,
    galaxy_dim="galaxy",
):
    """Per galaxy: is a rotating disc or a dispersion-dominated model the better description?

    Both models are fitted to the same maps (e.g. a batch of galaxies in one model each). For
    each galaxy the pixel-level PSIS-LOO expected log predictive densities of its pixels are
    summed, for each model; their difference ``elpd_diff = elpd(rotating) -
    elpd(dispersion-dominated)`` has the standard error ``sqrt(n var(d_i))`` of a sum of ``n``
    pointwise differences (Vehtari, Gelman & Gabry 2017). A model is ``preferred`` when the
    difference exceeds both ``min_difference`` and twice its standard error; otherwise
    ``"neither"`` (a rotating disc with ``V -> 0`` is a dispersion-dominated model, so a
    non-rotating galaxy gives a small difference, not a large one: read it with ``V/sigma``).

    Parameters
    ----------
    rotating, dispersion_dominated : Result or az.InferenceData
        Fits with pointwise log-likelihoods (``pmt.fit`` stores them and the data shapes that
        tell which galaxy each pixel belongs to). The dispersion-dominated model is e.g. the
        same disc with no rotation (``v = v_sys``) and a free dispersion.
    velocity, dispersion, threshold, probability
        As in :func:`v_over_sigma`, read from the rotating fit (skipped when ``velocity`` is
        None or absent from its posterior).
    min_difference : float
        Smallest ``|elpd_diff|`` that counts as a preference (default 4; Sivula et al. 2020
        call smaller differences small whatever their standard error).
    var_name, galaxy_of, galaxy_dim
        As in :func:`pymc_tracers.compare` (``galaxy_of`` for one-galaxy likelihoods, e.g.
        ``{"velocity": 0, "dispersion": 0}`` for a single galaxy).

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: ``n_pixels``, ``elpd_rotating``, ``elpd_dispersion``,
        ``elpd_diff``, ``se_diff``, ``pareto_k_max`` (worst of both fits; > 0.7 marks an
        unreliable pixel-level LOO, see :func:`pymc_tracers.compare`), ``preferred``
        (``"rotating"``, ``"dispersion-dominated"`` or ``"neither"``) and, when the rotating
        fit has the speed and dispersion, the :func:`v_over_sigma` columns (``v_over_sigma``,
        ``v_over_sigma_low``, ``v_over_sigma_high``, ``p_rotation``, ``class``).

    Notes
    -----
    Pixel-level LOO treats pixels as independent; PSF-correlated residuals make its standard
    errors too small (:func:`pymc_tracers.compare`, Notes). With white-noise residuals (a
    model that fits) it is the right per-galaxy comparison; the ``V/sigma`` posterior is the
    continuous measure of how rotation-dominated the galaxy is.
    """
    if not (min_difference >= 0):
        raise ValueError(f"min_difference must be >= 0 (elpd units); got {min_difference!r}")
    fits = {"rotating": rotating, "dispersion": dispersion_dominated}
    pointwise = {k: _pointwise_loo(v, var_name, galaxy_of, galaxy_dim) for k, v in fits.items()}
    (elpd_r, k_r, gal_r), (elpd_d, k_d, gal_d) = pointwise["rotating"], pointwise["dispersion"]
    if elpd_r.shape != elpd_d.shape or not np.array_equal(gal_r, gal_d):
        raise ValueError(
            f"the two fits have different pixels ({elpd_r.size} and {elpd_d.size}); compare "
            "models of the same maps with the same masks"
        )
    galaxies = np.unique(gal_r)
    rows = []
    for g in galaxies:
        inside = gal_r == g
        d = elpd_r[inside] - elpd_d[inside]
        n = int(inside.sum())
        diff = float(d.sum())
        se = float(np.sqrt(n * np.var(d, ddof=1))) if n > 1 else float("nan")
        decisive = abs(diff) > min_difference and abs(diff) > 2 * se
        preferred = ("rotating" if diff > 0 else "dispersion-dominated") if decisive else "neither"
        rows.append(
            dict(
                n_pixels=n,
                elpd_rotating=float(elpd_r[inside].sum()),
                elpd_dispersion=float(elpd_d[inside].sum()),
                elpd_diff=diff,
                se_diff=se,
                pareto_k_max=float(max(k_r[inside].max(), k_d[inside].max())),
                preferred=preferred,
            )
        )
    posterior = _posterior(rotating).posterior
    labels = galaxies
    if galaxy_dim in posterior.coords and galaxies.max() < posterior.sizes[galaxy_dim]:
        labels = posterior[galaxy_dim].values[galaxies]
    table = pd.DataFrame(rows, index=pd.Index(labels, name=galaxy_dim))
    if velocity is not None and velocity in posterior and dispersion in posterior:
        ratio = v_over_sigma(
            rotating,
            velocity=velocity,
            dispersion=dispersion,
            threshold=threshold,
            probability=probability,
            galaxy_dim=galaxy_dim,
        )
        ratio = ratio.rename(
            columns={
                "median": "v_over_sigma",
                "low": "v_over_sigma_low",
                "high": "v_over_sigma_high",
            }
        )
        if len(ratio) == len(table):  # one galaxy, or the same galaxies in the same order
            ratio.index = table.index
        table = table.join(ratio)
    return table
