"""Measure maps from a line cube: moment maps or single-Gaussian fits (numpy).

A cube here is an array ``(n_channels, ny, nx)`` of line flux density per unit velocity
(any flux unit per km/s) on a velocity axis ``velocities`` (km/s, channel centres, strictly
increasing or decreasing). Channel widths are ``|numpy.gradient(velocities)|``, so a
velocity axis need not be uniform.

* :func:`moment_maps`: flux, velocity and dispersion from the zeroth, first and second
  moments, with an optional channel mask and threshold, and errors propagated from the
  cube's noise.
* :func:`gaussian_fit_maps`: a single-Gaussian fit to every spaxel (as most IFU pipelines
  report). Where beam smearing skews the line, its width is smaller than the second moment
  (docs/kinematics.md).

Simulate a cube with :mod:`~pymc_tracers.kinematics.cube_simulation`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pymc_tracers.kinematics.cube_checks import (
    _channel_widths,
    _check_cube,
    _check_mask,
    _check_noise,
    _velocity_axis,
)

__all__ = ["GaussianFitMaps", "MomentMaps", "gaussian_fit_maps", "moment_maps"]

_SQRT_2PI = np.sqrt(2 * np.pi)


class MomentMaps(NamedTuple):
    """Moment maps of a line cube (:func:`moment_maps`).

    Attributes
    ----------
    flux : ndarray (ny, nx)
        Zeroth moment ``sum_k c_k dv_k`` (cube units x km/s).
    velocity : ndarray (ny, nx)
        First moment (km/s).
    dispersion : ndarray (ny, nx)
        Square root of the second central moment (km/s); includes the instrumental
        line spread the cube contains.
    flux_error, velocity_error, dispersion_error : ndarray (ny, nx) or None
        1-sigma errors propagated linearly from independent channel noise, when ``noise``
        was given.
    """

    flux: np.ndarray
    velocity: np.ndarray
    dispersion: np.ndarray
    flux_error: np.ndarray | None = None
    velocity_error: np.ndarray | None = None
    dispersion_error: np.ndarray | None = None


class GaussianFitMaps(NamedTuple):
    """Single-Gaussian fits to every spaxel (:func:`gaussian_fit_maps`).

    Attributes
    ----------
    flux : ndarray (ny, nx)
        Integral of the fitted Gaussian, ``amplitude * sqrt(2 pi) * dispersion``
        (cube units x km/s).
    velocity, dispersion : ndarray (ny, nx)
        Centre and width (standard deviation) of the fitted Gaussian (km/s).
    amplitude : ndarray (ny, nx)
        Peak of the fitted Gaussian (cube units).
    velocity_error, dispersion_error : ndarray (ny, nx)
        1-sigma errors from the fit's covariance (km/s) for the noise given (with
        ``noise=None`` they assume a noise of 1 cube unit per voxel).
    converged : ndarray of bool (ny, nx)
        Whether the fit met its tolerance. Spaxels with no positive flux are NaN and False.
    """

    flux: np.ndarray
    velocity: np.ndarray
    dispersion: np.ndarray
    amplitude: np.ndarray
    velocity_error: np.ndarray
    dispersion_error: np.ndarray
    converged: np.ndarray


def moment_maps(cube, velocities, *, mask=None, threshold=None, noise=None) -> MomentMaps:
    """Flux, velocity and dispersion maps from the moments of a line cube.

    ``F = sum c dv``, ``v = sum c u dv / F``, ``sigma^2 = sum c (u - v)^2 dv / F`` over the
    voxels kept, with ``u`` the channel centres and ``dv`` the channel widths.

    Parameters
    ----------
    cube : array (n_channels, ny, nx)
        Line flux density per unit velocity (continuum subtracted). NaNs are refused: set
        them to 0 and leave them out with ``mask``.
    velocities : array (n_channels,)
        Channel centres in km/s, strictly monotonic.
    mask : bool array (n_channels,) or (n_channels, ny, nx), optional
        Voxels to use (True). E.g. a velocity window around the line; channels far from
        the line add only noise, which the second moment weights by ``(u - v)^2``.
    threshold : float, optional
        Voxels below it (cube units) are left out ("clipped moments"). Clipping removes
        the line wings too and biases the dispersion low: prefer a velocity window.
    noise : number or array broadcasting to the cube, optional
        1-sigma noise per voxel (cube units), independent between voxels. The errors are
        propagated linearly (valid where the flux is detected well)::

            var F     = sum n^2 dv^2
            var v     = sum n^2 dv^2 (u - v)^2 / F^2
            var sigma = sum n^2 dv^2 ((u - v)^2 - sigma^2)^2 / (4 sigma^2 F^2)

    Returns
    -------
    MomentMaps
        Spaxels with no positive flux among the kept voxels are NaN in velocity and
        dispersion (and their errors); spaxels whose second moment comes out <= 0 (noise
        in a faint spaxel) are NaN in dispersion.
    """
    c = _check_cube(cube)
    u = _velocity_axis(velocities, c.shape[0])
    dv = _channel_widths(u)[:, None, None]
    u = u[:, None, None]
    keep = np.ones(c.shape, bool) if mask is None else _check_mask(mask, c.shape)
    if threshold is not None:
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number (cube units); got {threshold!r}")
        keep = keep & (c >= threshold)
    weight = np.where(keep, dv, 0.0)
    flux = (c * weight).sum(axis=0)
    good = flux > 0
    safe = np.where(good, flux, 1.0)
    velocity = (c * u * weight).sum(axis=0) / safe
    offset = u - velocity
    variance = (c * offset**2 * weight).sum(axis=0) / safe
    # noise can make the second moment of a faint spaxel negative: not measured there
    measured = good & (variance > 0)
    dispersion = np.where(measured, np.sqrt(np.where(measured, variance, 1.0)), np.nan)
    velocity = np.where(good, velocity, np.nan)
    if noise is None:
        return MomentMaps(flux, velocity, dispersion)
    n2w2 = _check_noise(noise, c.shape) ** 2 * weight**2
    flux_error = np.sqrt(n2w2.sum(axis=0))
    velocity_error = np.sqrt((n2w2 * offset**2).sum(axis=0)) / safe
    dispersion_error = np.sqrt((n2w2 * (offset**2 - variance) ** 2).sum(axis=0)) / (
        2 * np.where(measured, dispersion, 1.0) * safe
    )
    return MomentMaps(
        flux,
        velocity,
        dispersion,
        flux_error,
        np.where(good, velocity_error, np.nan),
        np.where(measured, dispersion_error, np.nan),
    )


# --------------------------------------------------------------------------- Gaussian fits


def _gaussian_model(u, amplitude, centre, width):
    z = (u - centre) / width
    g = np.exp(-0.5 * z**2)
    model = amplitude * g
    # derivatives with respect to amplitude, centre, width
    jac = np.stack([g, model * z / width, model * z**2 / width], axis=-1)
    return model, jac


def gaussian_fit_maps(
    cube,
    velocities,
    *,
    noise=None,
    mask=None,
    max_iterations: int = 100,
    tolerance: float = 1e-10,
) -> GaussianFitMaps:
    """Fit one Gaussian ``A exp(-(u - v)^2 / 2 sigma^2)`` to the spectrum of every spaxel.

    All spaxels are fitted together by Levenberg-Marquardt with a damping factor per
    spaxel (numpy, a few ms for 40 x 40 x 100), started from the peak channel and the width
    that gives the spectrum's positive flux. The fit is
    weighted least squares with weights ``1 / noise^2``.

    Parameters
    ----------
    cube : array (n_channels, ny, nx)
        Line flux density per unit velocity (continuum subtracted), no NaNs.
    velocities : array (n_channels,)
        Channel centres in km/s, strictly monotonic.
    noise : number or array broadcasting to the cube, optional
        1-sigma noise per voxel (cube units); default 1 everywhere.
    mask : bool array (n_channels,) or (n_channels, ny, nx), optional
        Voxels to fit (True).
    max_iterations : int
        Levenberg-Marquardt iterations at most.
    tolerance : float
        Relative change of the chi-square below which a spaxel has converged.

    Returns
    -------
    GaussianFitMaps
        ``dispersion`` is the fitted width: it contains the instrumental line spread if the
        cube does (subtract ``sigma_LSF`` in quadrature to compare with intrinsic widths).
    """
    c = _check_cube(cube)
    u_axis = _velocity_axis(velocities, c.shape[0])
    nv, ny, nx = c.shape
    weight = 1.0 / _check_noise(1.0 if noise is None else noise, c.shape) ** 2
    if mask is not None:
        weight = np.where(_check_mask(mask, c.shape), weight, 0.0)
    # spaxels last -> (n_spaxels, n_channels)
    data = c.reshape(nv, -1).T
    w = weight.reshape(nv, -1).T
    params, fit_ok = _initial_parameters(data, w, u_axis)
    params, jac, converged = _levenberg_marquardt(
        data, w, u_axis[None, :], params, ~fit_ok, max_iterations, tolerance
    )
    errors = _parameter_errors(jac, w)
    amplitude, centre, width = params.T
    nan = np.where(fit_ok, 1.0, np.nan)

    def as_map(values):
        return (values * nan).reshape(ny, nx)

    return GaussianFitMaps(
        flux=as_map(amplitude * _SQRT_2PI * width),
        velocity=as_map(centre),
        dispersion=as_map(width),
        amplitude=as_map(amplitude),
        velocity_error=as_map(errors[:, 1]),
        dispersion_error=as_map(errors[:, 2]),
        converged=(converged & fit_ok).reshape(ny, nx),
    )


def _initial_parameters(data, w, u_axis):
    """Start of every fit ``(amplitude, centre, width)``: the peak channel, and the width of a
    Gaussian of that peak and the line's positive flux; and which spaxels can be fitted."""
    dv = _channel_widths(u_axis)
    positive = np.clip(data, 0.0, None) * (w > 0)
    peak = positive.argmax(axis=1)
    amplitude0 = positive.max(axis=1)
    fit_ok = amplitude0 > 0
    flux0 = (positive * dv).sum(axis=1)
    span = np.ptp(u_axis)
    params = np.zeros((data.shape[0], 3))
    params[:, 0] = amplitude0
    params[:, 1] = u_axis[peak]
    width0 = flux0 / (_SQRT_2PI * np.where(fit_ok, amplitude0, 1.0))
    params[:, 2] = np.clip(width0, dv.min(), span / 2)
    return params, fit_ok


def _levenberg_marquardt(data, w, u, params, converged, max_iterations, tolerance):
    """Weighted least-squares Gaussian fits of all spaxels (rows of ``data``), one damping
    factor per spaxel; returns the parameters, the final Jacobian and which converged."""
    params = params.copy()
    converged = converged.copy()

    def chi2_of(p, rows):
        model, jac = _gaussian_model(u, p[:, :1], p[:, 1:2], p[:, 2:3])
        resid = data[rows] - model
        return (w[rows] * resid**2).sum(axis=1), resid, jac

    everything = np.arange(data.shape[0])
    chi2, resid, jac = chi2_of(params, everything)
    damping = np.full(data.shape[0], 1e-3)
    for _ in range(max_iterations):
        active = ~converged
        if not active.any():
            break
        jw = jac[active] * w[active][..., None]
        hessian = np.einsum("nki,nkj->nij", jw, jac[active])
        gradient = np.einsum("nki,nk->ni", jw, resid[active])
        diag = np.einsum("nii->ni", hessian)
        lhs = hessian + (damping[active][:, None] * np.maximum(diag, 1e-300))[..., None] * np.eye(3)
        step = np.linalg.solve(lhs, gradient[..., None])[..., 0]
        trial = params[active] + step
        trial[:, 2] = np.abs(trial[:, 2])
        idx = np.flatnonzero(active)
        new_chi2, new_resid, new_jac = chi2_of(trial, idx)
        better = np.isfinite(new_chi2) & (new_chi2 <= chi2[active])
        take = idx[better]
        change = (chi2[take] - new_chi2[better]) / np.maximum(chi2[take], 1e-300)
        params[take] = trial[better]
        chi2[take], resid[take], jac[take] = new_chi2[better], new_resid[better], new_jac[better]
        damping[take] = np.maximum(damping[take] / 10, 1e-12)
        damping[idx[~better]] *= 10
        done = np.zeros(data.shape[0], bool)
        done[take] = change < tolerance
        # a rejected step with huge damping cannot move: converged to the precision reachable
        done[idx[~better]] = damping[idx[~better]] > 1e10
        converged |= done
    return params, jac, converged


def _parameter_errors(jac, w):
    """1-sigma errors of ``(amplitude, centre, width)`` from the inverse of the Gauss-Newton
    Hessian (NaN where it is singular)."""
    jw = jac * w[..., None]
    hessian = np.einsum("nki,nkj->nij", jw, jac)
    with np.errstate(invalid="ignore"):
        det_ok = np.abs(np.linalg.det(hessian)) > 0
        covariance = np.full_like(hessian, np.nan)
        covariance[det_ok] = np.linalg.inv(hessian[det_ok])
    return np.sqrt(np.abs(np.einsum("nii->ni", covariance)))
