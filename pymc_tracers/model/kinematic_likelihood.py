"""Likelihoods for velocity and dispersion maps, jointly with the line flux (PyMC).

The PyMC layer over :mod:`pymc_tracers.kinematics` (which builds the maps).

Thin layers over :func:`~pymc_tracers.tracer_likelihood`, :func:`~pymc_tracers.image_likelihood`
and :func:`~pymc_tracers.model.binned.binned_likelihood`: masks, NaN pixels, Student-t and the
pointwise log-likelihoods work as they do for tracer maps. Errors may be given as 1-sigma maps
or as inverse variances, as IFU pipelines write them (MaNGA DAP ``*_IVAR``; ``ivar = 0`` marks
an unusable pixel, which is left out).

Binned (Voronoi) maps: the pipeline sums the spectra of a bin's spaxels, so a bin's moments are
those of the summed cube, ratios of the *sums* over the bin::

    v_b     = v_ref + sum_b M1 / sum_b L
    sigma_b = sqrt(sum_b M2 / sum_b L - (sum_b M1 / sum_b L)^2 + <sigma_LSF^2>_b)

with ``<sigma_LSF^2>_b`` the light-weighted mean over the bin.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pymc_tracers.kinematics.moments import VARIANCE_FLOOR
from pymc_tracers.kinematics.observe import KinematicObservation
from pymc_tracers.model.binned import bin_sums, binned_likelihood
from pymc_tracers.model.likelihood import image_likelihood, tracer_likelihood

__all__ = [
    "sigma_from_ivar",
    "kinematic_likelihood",
    "binned_velocity",
    "binned_dispersion",
    "binned_kinematic_likelihood",
]


def sigma_from_ivar(ivar, name="ivar"):
    """1-sigma errors from inverse variances: ``1 / sqrt(ivar)``, NaN where ``ivar = 0``.

    Raises
    ------
    ValueError
        For negative or infinite inverse variances.
    """
    ivar = np.asarray(ivar, dtype=float)
    if np.any(np.isinf(ivar)):
        raise ValueError(f"{name} has infinite values: an inverse variance must be finite")
    if np.any(ivar < 0):
        where = np.unravel_index(int(np.flatnonzero(ivar < 0)[0]), ivar.shape)
        raise ValueError(
            f"{name} has {int((ivar < 0).sum())} negative values (first at index {where}); "
            "an inverse variance is >= 0 (0 marks an unusable pixel)"
        )
    with np.errstate(divide="ignore"):
        return np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)


def _errors(what, sigma, ivar):
    if (sigma is None) == (ivar is None):
        raise ValueError(
            f"give exactly one of {what}_sigma= (1-sigma errors, km/s) or {what}_ivar= "
            "(inverse variances, (km/s)^-2)"
        )
    return sigma if ivar is None else sigma_from_ivar(ivar, f"{what}_ivar")


def _check_observation(observation):
    if not isinstance(observation, KinematicObservation):
        raise TypeError(
            "give the KinematicObservation returned by pmt.observe_kinematics; got "
            f"{type(observation).__name__}"
        )


def kinematic_likelihood(
    observation,
    *,
    velocity=None,
    velocity_sigma=None,
    velocity_ivar=None,
    dispersion=None,
    dispersion_sigma=None,
    dispersion_ivar=None,
    flux=None,
    flux_sigma=None,
    flux_ivar=None,
    mask=None,
    nu=None,
    names=("velocity", "dispersion", "flux"),
    model=None,
) -> dict:
    """Observed velocity, dispersion and (optionally) flux maps against the model's.

    Parameters
    ----------
    observation : KinematicObservation
        From :func:`~pymc_tracers.observe_kinematics`.
    velocity, dispersion : ndarray, optional
        Observed maps in km/s, ``(ny, nx)`` or ``(N, ny, nx)``; NaN pixels are left out. The
        dispersion must be in the same convention as the model: with the instrumental
        broadening in it when ``lsf_sigma`` was given to ``observe_kinematics``, without it
        otherwise.
    velocity_sigma, dispersion_sigma : float or ndarray, optional
        1-sigma errors (km/s); or give ``*_ivar``, inverse variances ((km/s)^-2, 0 = unusable).
    flux, flux_sigma, flux_ivar : ndarray, optional
        The line flux map per pixel (model units) and its errors.
    mask : bool ndarray, optional
        True = use the pixel; applies to every map.
    nu : float or variable, optional
        Student-t degrees of freedom for every map (robust to outliers); Gaussian when None.
    names : tuple of str
        Names of the velocity, dispersion and flux observed variables.

    Returns
    -------
    dict
        The observed random variables by name (only the maps given).
    """
    _check_observation(observation)
    if velocity is None and dispersion is None and flux is None:
        raise ValueError("give at least one observed map: velocity=, dispersion= or flux=")
    found = {}
    pairs = [
        ("velocity", velocity, velocity_sigma, velocity_ivar, observation.velocity, names[0]),
        (
            "dispersion",
            dispersion,
            dispersion_sigma,
            dispersion_ivar,
            observation.dispersion,
            names[1],
        ),
    ]
    for what, data, sigma, ivar, model_map, name in pairs:
        if data is None:
            continue
        found[name] = tracer_likelihood(
            name, model_map, data, sigma=_errors(what, sigma, ivar), mask=mask, nu=nu, model=model
        )
    if flux is not None:
        found[names[2]] = image_likelihood(
            names[2],
            observation.flux,
            flux,
            sigma=_errors("flux", flux_sigma, flux_ivar),
            mask=mask,
            nu=nu,
            model=model,
        )
    return found


def _sums(observation, bin_map, ids):
    light = bin_sums(pt.maximum(observation.light_sum, 0.0), bin_map, ids=ids)
    tiny = np.finfo(np.float64).tiny
    light = pt.maximum(light, tiny)
    first = bin_sums(observation.first_sum, bin_map, ids=ids) / light
    second = bin_sums(observation.second_sum, bin_map, ids=ids) / light
    return light, first, second


def binned_velocity(observation, bin_map, *, ids=None):
    """Model velocity (km/s) of each bin: the first moment of the bin's summed cube."""
    _check_observation(observation)
    _, first, _ = _sums(observation, bin_map, ids)
    reference = pt.as_tensor_variable(observation.reference)
    return reference.reshape((-1,))[0] + first if reference.ndim else reference + first


def binned_dispersion(observation, bin_map, *, ids=None):
    """Model dispersion (km/s) of each bin, with the light-weighted mean LSF^2 of the bin."""
    _check_observation(observation)
    light, first, second = _sums(observation, bin_map, ids)
    variance = pt.maximum(second - first**2, 0.0)
    lsf = observation.lsf
    if lsf is not None:
        lsf = pt.as_tensor_variable(lsf)
        if lsf.ndim >= 2:
            weighted = pt.maximum(observation.light_sum, 0.0) * lsf**2
            variance = variance + bin_sums(weighted, bin_map, ids=ids) / light
        else:
            variance = variance + lsf**2
    return pt.sqrt(variance + VARIANCE_FLOOR)


def binned_kinematic_likelihood(
    observation,
    bin_map,
    *,
    velocity=None,
    velocity_sigma=None,
    velocity_ivar=None,
    dispersion=None,
    dispersion_sigma=None,
    dispersion_ivar=None,
    mask=None,
    nu=None,
    names=("velocity", "dispersion"),
    model=None,
) -> dict:
    """Binned (e.g. Voronoi) velocity and dispersion maps against the model's bins.

    Parameters
    ----------
    observation : KinematicObservation
        One galaxy's model, ``(ny, nx)``, on the data's pixel grid.
    bin_map : ndarray of int, shape (ny, nx)
        Bin index per pixel, -1 for none (MaNGA ``BINID``, vorbin).
    velocity, dispersion : ndarray
        One value per bin id (1-D) or maps holding each bin's value in its pixels (km/s).
    velocity_sigma, dispersion_sigma, velocity_ivar, dispersion_ivar
        Per-bin errors (km/s) or inverse variances, in the same forms.
    mask, nu, names, model
        As for :func:`kinematic_likelihood`; ``mask`` only selects the pixels from which
        per-bin values are read.

    Returns
    -------
    dict
        The observed random variables by name, dims ``("<name>_bin",)``.
    """
    _check_observation(observation)
    shape = tuple(observation.light_sum.type.shape)
    if len(shape) != 2 or None in shape:
        raise ValueError(
            f"binned kinematic likelihoods need one galaxy's (ny, nx) model; got {shape}"
        )
    if isinstance(velocity_sigma, Variable) or isinstance(dispersion_sigma, Variable):
        raise TypeError("binned errors must be numbers (one per bin), not variables")
    found = {}
    pairs = [
        ("velocity", velocity, velocity_sigma, velocity_ivar, binned_velocity, names[0]),
        ("dispersion", dispersion, dispersion_sigma, dispersion_ivar, binned_dispersion, names[1]),
    ]
    for what, data, sigma, ivar, model_of, name in pairs:
        if data is None:
            continue
        found[name] = binned_likelihood(
            name,
            shape,
            lambda ids, model_of=model_of: model_of(observation, bin_map, ids=ids),
            data,
            bin_map,
            sigma=_errors(what, sigma, ivar),
            mask=mask,
            nu=nu,
            model=model,
        )
    if not found:
        raise ValueError("give at least one binned map: velocity= or dispersion=")
    return found
