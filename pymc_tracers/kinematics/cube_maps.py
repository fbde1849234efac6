"""Line cubes: simulate one from the model, reduce one to moment or Gaussian-fit maps (numpy).

A cube here is an array ``(n_channels, ny, nx)`` of line flux density per unit velocity
(any flux unit per km/s) on a velocity axis ``velocities`` (km/s, channel centres, strictly
increasing or decreasing). Channel widths are ``|numpy.gradient(velocities)|``, so a
velocity axis need not be uniform.

* :func:`simulate_cube`: Gaussian lines of centre ``v`` and width ``sigma`` on every
  sub-pixel, each channel convolved with the PSF and binned to data pixels. Its moments are
  what :func:`~pymc_tracers.observe_kinematics` computes.
* :func:`moment_maps`: flux, velocity and dispersion from the zeroth, first and second
  moments, with an optional channel mask and threshold, and errors propagated from the
  cube's noise.
* :func:`gaussian_fit_maps`: a single-Gaussian fit to every spaxel (as most IFU pipelines
  report). Where beam smearing skews the line, its width is smaller than the second moment
  (docs/kinematics.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import signal

__all__ = [
    "GaussianFitMaps",
    "MomentMaps",
    "gaussian_fit_maps",
    "line_cube",
    "moment_maps",
    "simulate_cube",
]

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


# --------------------------------------------------------------------------- checks


def _velocity_axis(velocities, n_channels=None) -> np.ndarray:
    """Channel centres (km/s) as a float array, checked; ``n_channels`` must match if given."""
    v = np.asarray(velocities, dtype=float)
    if v.ndim != 1 or v.size < 3:
        raise ValueError(
            f"velocities must be a 1-D array of at least 3 channel centres (km/s); got shape "
            f"{v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError("velocities (km/s) must be finite")
    step = np.diff(v)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError("velocities (km/s) must be strictly increasing or strictly decreasing")
    if n_channels is not None and v.size != n_channels:
        raise ValueError(
            f"velocities has {v.size} channels but the cube has {n_channels} along axis 0 "
            "(cubes are (n_channels, ny, nx))"
        )
    return v


def _channel_widths(v: np.ndarray) -> np.ndarray:
    return np.abs(np.gradient(v))


def _check_cube(cube) -> np.ndarray:
    c = np.asarray(cube, dtype=float)
    if c.ndim != 3:
        raise ValueError(f"cube must be 3-D (n_channels, ny, nx); got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        bad = np.argwhere(~np.isfinite(c))[0]
        raise ValueError(
            f"cube has {int((~np.isfinite(c)).sum())} NaN or infinite values (first at "
            f"channel, y, x = {tuple(int(i) for i in bad)}); set them to 0 and leave them out "
            "with mask= (or give them a huge noise)"
        )
    return c


def _check_noise(noise, shape) -> np.ndarray:
    n = np.asarray(noise, dtype=float)
    try:
        n = np.broadcast_to(n, shape)
    except ValueError:
        raise ValueError(
            f"noise has shape {np.shape(noise)}; it must broadcast to the cube's {shape} "
            "(a number, a spectrum (n_channels, 1, 1), a map (ny, nx) or a cube)"
        ) from None
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ValueError("noise (1-sigma per voxel, cube units) must be finite and > 0")
    return n


def _check_mask(mask, shape) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != bool:
        raise ValueError(f"mask must be boolean (True: use the voxel); got dtype {m.dtype}")
    if m.ndim == 1:
        m = m[:, None, None]
    try:
        return np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(
            f"mask has shape {np.shape(mask)}; it must be (n_channels,) or broadcast to the "
            f"cube's {shape}"
        ) from None


# --------------------------------------------------------------------------- simulation


def _field(value, x, y, name):
    """A field on the padded sub-pixel grid from an array, a number or a callable f(x, y)."""
    if callable(value):
        value = value(x, y)
    field = np.asarray(value, dtype=float)
    try:
        field = np.broadcast_to(field, x.shape)
    except ValueError:
        raise ValueError(
            f"{name} has shape {np.shape(value)}; it must be a number, a callable f(x, y) of "
            f"arcsec or an array on the padded sub-pixel grid {x.shape} (one galaxy)"
        ) from None
    if not np.all(np.isfinite(field)):
        raise ValueError(f"{name} is not finite everywhere on the sub-pixel grid")
    return field


def _component_fields(component, x, y):
    """Light, velocity and dispersion of a KinematicComponent with fixed parameters (numpy).

    Numpy twins where the profiles have them (Sersic light, constants, discs); anything else
    is evaluated through its PyTensor graph.
    """
    from pytensor.graph.basic import Variable

    from pymc_tracers.forward.evaluate import evaluate
    from pymc_tracers.profiles.light import Sersic, sersic_numpy
    from pymc_tracers.profiles.tracer import Constant

    def numeric(value):
        return not isinstance(value, Variable) and np.ndim(value) == 0

    light = component.light
    if isinstance(light, Sersic) and all(numeric(v) for v in light.parameters().values()):
        light_f = sersic_numpy(x, y, **light.parameters())
    else:
        light_f = evaluate(light.surface_brightness(x, y))

    def tracer(profile, name):
        if isinstance(profile, Constant) and numeric(profile.constant):
            return _field(profile.constant, x, y, name)
        if hasattr(profile, "numpy"):
            return _field(profile.numpy, x, y, name)
        return _field(evaluate(profile(x, y)), x, y, name)

    return (
        _field(light_f, x, y, "light"),
        tracer(component.velocity, "velocity"),
        tracer(component.dispersion, "dispersion"),
    )


def simulate_cube(
    components=None,
    grid=None,
    psf=None,
    *,
    velocities,
    light=None,
    velocity=None,
    dispersion=None,
    lsf_sigma=None,
) -> np.ndarray:
    """Line cube of a PSF-smeared, pixelised galaxy: a Gaussian line on every sub-pixel.

    Each sub-pixel of the padded supersampled grid (as in
    :func:`~pymc_tracers.observe_kinematics`) emits a Gaussian line of centre ``v``, width
    ``sqrt(sigma^2 + sigma_LSF^2)`` and integral ``I * subpixel_area``. Every channel is
    convolved with the PSF and summed over each data pixel's sub-pixels. The line is
    sampled at channel centres, so the cube's moments equal the maps of
    ``observe_kinematics`` to ``~exp(-2 pi^2 sigma^2 / dv^2)`` relative (Poisson summation):
    round-off for channels narrower than half the line width, if the velocity axis covers
    the lines' wings (say 6 sigma beyond the extreme velocities).

    Parameters
    ----------
    components : KinematicComponent or list of KinematicComponent, optional
        The model, with fixed (numeric) parameters for one galaxy; each component adds its
        own lines (a disc and a hot bulge give a two-Gaussian spectrum). Or give ``light``,
        ``velocity`` and ``dispersion`` instead.
    grid : PixelGrid
        Data pixels and supersampling.
    psf : PSF
        A fixed PSF.
    velocities : array (n_channels,)
        Channel centres in km/s, strictly monotonic.
    light, velocity, dispersion : number, callable or array, optional
        Instead of ``components``: line surface brightness, line-of-sight velocity (km/s) and
        intrinsic dispersion (km/s) as numbers, callables ``f(x, y)`` of arcsec (e.g.
        ``pmt.DiscVelocity(...).numpy``) or arrays on the padded sub-pixel grid
        ``grid.supersampled_coordinates(psf.half_width(grid.subpixel_scale))``.
    lsf_sigma : float, optional
        Gaussian instrumental line spread (km/s), added in quadrature to every line.

    Returns
    -------
    ndarray (n_channels, ny, nx)
        Flux density per km/s: ``sum_k cube[k] * dv_k`` is the flux map of
        ``observe_kinematics`` (light units x arcsec^2).
    """
    if grid is None or psf is None:
        raise ValueError("simulate_cube needs a grid and a psf")
    if not psf.is_fixed:
        raise ValueError("simulate_cube needs a fixed PSF (numeric FWHM)")
    pad = psf.half_width(grid.subpixel_scale)
    x, y = grid.supersampled_coordinates(pad)
    if components is None:
        if light is None or velocity is None or dispersion is None:
            raise ValueError("give components, or all of light, velocity and dispersion")
        fields = [
            (
                _field(light, x, y, "light"),
                _field(velocity, x, y, "velocity"),
                _field(dispersion, x, y, "dispersion"),
            )
        ]
    else:
        from pymc_tracers.kinematics.components import as_kinematic_components

        if light is not None or velocity is not None or dispersion is not None:
            raise ValueError("give either components or light/velocity/dispersion, not both")
        fields = [_component_fields(c, x, y) for c in as_kinematic_components(components)]
    kernel = psf.kernel(grid.subpixel_scale)
    return sum(
        line_cube(*f, kernel=kernel, grid=grid, velocities=velocities, lsf_sigma=lsf_sigma)
        for f in fields
    )


def line_cube(light, velocity, dispersion, *, kernel, grid, velocities, lsf_sigma=None):
    """The cube of :func:`simulate_cube` from fields on the padded sub-pixel grid.

    Parameters
    ----------
    light, velocity, dispersion : array (ny * s + 2 p, nx * s + 2 p)
        Line surface brightness, line-of-sight velocity (km/s) and intrinsic dispersion
        (km/s) on the supersampled grid padded by ``p`` sub-pixels on every side (``2 p + 1``
        the kernel's side).
    kernel : array (2 p + 1, 2 p + 1)
        The PSF on sub-pixels of side ``grid.subpixel_scale``, normalised.
    grid : PixelGrid
    velocities : array (n_channels,)
        Channel centres in km/s, strictly monotonic.
    lsf_sigma : float, optional
        Gaussian instrumental line spread (km/s), added in quadrature.

    Returns
    -------
    ndarray (n_channels, ny, nx)
        Flux density per km/s (light units x arcsec^2 per km/s).
    """
    v_axis = _velocity_axis(velocities)
    lsf = 0.0 if lsf_sigma is None else float(lsf_sigma)
    if not (np.isfinite(lsf) and lsf >= 0):
        raise ValueError(f"lsf_sigma must be a finite number >= 0 (km/s); got {lsf_sigma!r}")
    kernel = np.asarray(kernel, dtype=float)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 != 1:
        raise ValueError(f"kernel must be square with an odd side; got shape {kernel.shape}")
    pad = kernel.shape[0] // 2
    s = grid.supersampling
    shape = (grid.ny * s + 2 * pad, grid.nx * s + 2 * pad)
    fields = [np.asarray(f, dtype=float) for f in (light, velocity, dispersion)]
    for name, f in zip(("light", "velocity", "dispersion"), fields):
        if f.shape != shape:
            raise ValueError(
                f"{name} has shape {f.shape}; the grid padded by the kernel's half-width "
                f"({pad} sub-pixels) is {shape}"
            )
        if not np.all(np.isfinite(f)):
            raise ValueError(f"{name} is not finite everywhere on the sub-pixel grid")
    light, velocity, dispersion = fields
    width = np.sqrt(dispersion**2 + lsf**2)
    if np.any(width <= 0):
        raise ValueError("the line width sqrt(dispersion^2 + lsf_sigma^2) must be > 0 km/s")
    weight = light * grid.subpixel_scale**2 / (_SQRT_2PI * width)
    planes = np.empty((v_axis.size, *shape))
    for k, u in enumerate(v_axis):
        planes[k] = weight * np.exp(-0.5 * ((u - velocity) / width) ** 2)
    convolved = signal.fftconvolve(planes, kernel[None], mode="valid", axes=(1, 2))
    return grid.bin(convolved)


# --------------------------------------------------------------------------- moments


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
    u = u_axis[None, :]
    # start: the peak channel, and the width of a Gaussian of that peak and the line's flux
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

    def chi2_of(p, rows):
        model, jac = _gaussian_model(u, p[:, :1], p[:, 1:2], p[:, 2:3])
        resid = data[rows] - model
        return (w[rows] * resid**2).sum(axis=1), resid, jac

    everything = np.arange(data.shape[0])
    chi2, resid, jac = chi2_of(params, everything)
    damping = np.full(data.shape[0], 1e-3)
    converged = ~fit_ok
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
    jw = jac * w[..., None]
    hessian = np.einsum("nki,nkj->nij", jw, jac)
    with np.errstate(invalid="ignore"):
        det_ok = np.abs(np.linalg.det(hessian)) > 0
        covariance = np.full_like(hessian, np.nan)
        covariance[det_ok] = np.linalg.inv(hessian[det_ok])
    errors = np.sqrt(np.abs(np.einsum("nii->ni", covariance)))
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
