"""Simulate a line cube from the model: a Gaussian line on every sub-pixel (numpy).

A cube here is an array ``(n_channels, ny, nx)`` of line flux density per unit velocity
(any flux unit per km/s) on a velocity axis ``velocities`` (km/s, channel centres, strictly
increasing or decreasing).

* :func:`simulate_cube`: Gaussian lines of centre ``v`` and width ``sigma`` on every
  sub-pixel, each channel convolved with the PSF and binned to data pixels. Its moments are
  what :func:`~pymc_tracers.observe_kinematics` computes.
* :func:`line_cube`: the same from fields already on the padded sub-pixel grid.

Measure maps from a cube with :mod:`~pymc_tracers.kinematics.cube_maps`.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from pymc_tracers.kinematics.cube_checks import _velocity_axis

__all__ = ["line_cube", "simulate_cube"]

_SQRT_2PI = np.sqrt(2 * np.pi)


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
