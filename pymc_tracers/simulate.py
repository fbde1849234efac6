"""Mock galaxies from Metha et al. (2024): the setups behind the paper's figures and Table 1.

Every function takes a ``seed`` and returns a :class:`SimulatedGalaxy` holding the noisy light
image and tracer map, their error maps, the noiseless maps, the truth, and the grid and PSF
used, so a fit can be set up exactly as the data were made.

Noise follows the paper: ``sigma_Z^2 = c1 + c2 / I`` with ``I`` the PSF-convolved light and
``(c1, c2)`` chosen so that ``sigma_Z^2`` is 0.01 dex^2 at the galaxy (or clump) centre and
0.02 dex^2 one effective radius away. The light image gets Gaussian noise with S/N = 100 at its
brightest pixel (``sigma_I^2 = (I_peak / 100)^2 * (0.5 + 0.5 I / I_peak)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from pymc_tracers.forward import Component, evaluate, observe
from pymc_tracers.grid import PixelGrid
from pymc_tracers.model.likelihood import paper_noise_coefficients
from pymc_tracers.profiles.light import Exponential
from pymc_tracers.profiles.radial import LinearGradient
from pymc_tracers.profiles.tracer import Constant, Expression
from pymc_tracers.psf import PSF, GaussianPSF

__all__ = [
    "SimulatedGalaxy",
    "figure3_galaxy",
    "figure4_galaxy",
    "clumpy_galaxy",
    "toy_map",
    "TOY_MAPS",
]

PAPER_PIXEL_SCALE = 0.066  # arcsec, JWST/NIRISS as rounded in the paper


@dataclass
class SimulatedGalaxy:
    """A mock observation and the truth behind it.

    Attributes
    ----------
    grid, psf : PixelGrid, PSF
        The pixels and PSF of the observation.
    components : list of Component
        The true galaxy (numeric parameters).
    tracer_scale : str
        How the tracer was averaged ("linear" or "log").
    light_image, light_error : ndarray
        Noisy light (flux per pixel) and its 1-sigma error.
    tracer_map, tracer_error : ndarray
        Noisy light-weighted tracer map (dex) and its 1-sigma error (dex).
    true_light_image, true_tracer_map : ndarray
        The noiseless forward model.
    truth : dict
        True parameter values (arcsec, dex, dex/arcsec).
    noise_coefficients : tuple
        ``(c1, c2)`` of the tracer noise model.
    """

    grid: PixelGrid
    psf: PSF
    components: list
    tracer_scale: str
    light_image: np.ndarray
    light_error: np.ndarray
    tracer_map: np.ndarray
    tracer_error: np.ndarray
    true_light_image: np.ndarray
    true_tracer_map: np.ndarray
    truth: dict
    noise_coefficients: tuple
    extra: dict = field(default_factory=dict)


def _light_at(image, grid, x, y):
    x_axis = grid.coordinates()[0][0]
    y_axis = grid.coordinates()[1][:, 0]
    return float(RegularGridInterpolator((y_axis, x_axis), image)((y, x)))


def _observe_with_noise(
    components, grid, psf, tracer_scale, centre, reff_point, seed, truth, **extra
):
    rng = np.random.default_rng(seed)
    image, tracer = evaluate(observe(components, grid, psf, tracer_scale))
    c1, c2 = paper_noise_coefficients(
        _light_at(image, grid, *centre), _light_at(image, grid, *reff_point)
    )
    tracer_error = np.sqrt(c1 + c2 / image)
    peak = image.max()
    light_error = (peak / 100.0) * np.sqrt(0.5 + 0.5 * image / peak)
    return SimulatedGalaxy(
        grid=grid,
        psf=psf,
        components=list(components),
        tracer_scale=tracer_scale,
        light_image=image + rng.normal(size=image.shape) * light_error,
        light_error=light_error,
        tracer_map=tracer + rng.normal(size=tracer.shape) * tracer_error,
        tracer_error=tracer_error,
        true_light_image=image,
        true_tracer_map=tracer,
        truth=truth,
        noise_coefficients=(c1, c2),
        extra=extra,
    )


def figure3_galaxy(fwhm=1.5, *, seed=0, supersampling=3, tracer_scale="linear", psf=None):
    """The paper's use case 1: a face-on exponential disc with a linear metallicity gradient.

    R_e = 1", Z_c = 8.0, gradient -0.2 dex/arcsec, 0.066" pixels over 8"x8" (121x121), a
    Gaussian PSF of the given FWHM (arcsec).

    ``tracer_scale="linear"`` reproduces the paper, whose lenstronomy fits averaged dex values
    linearly; use ``"log"`` to average 10**Z (physically right for 12+log(O/H)) and fit the
    same way.
    """
    grid = PixelGrid((121, 121), PAPER_PIXEL_SCALE, supersampling=supersampling)
    psf = GaussianPSF(fwhm) if psf is None else psf
    truth = dict(x0=0.0, y0=0.0, r_eff=1.0, n=1.0, amplitude=1.0, central=8.0, gradient=-0.2)
    galaxy = Component(
        Exponential(r_eff=1.0, amplitude=1.0),
        LinearGradient(central=8.0, gradient=-0.2),
    )
    return _observe_with_noise(
        [galaxy], grid, psf, tracer_scale, (0.0, 0.0), (1.0, 0.0), seed, truth, fwhm=fwhm
    )


def figure4_galaxy(r_eff_pixels, *, seed=0, fwhm=0.4, supersampling=5, tracer_scale="linear"):
    """The paper's use case 1b: Nyquist-sampled data (pixel = FWHM / 2) at a given R_e in pixels.

    The field reaches 4 R_e from the centre on each side; the gradient is -0.2 dex per R_e
    scaled to arcsec (so it is comparable across sizes) and Z_c = 8.0.
    """
    if not r_eff_pixels > 0:
        raise ValueError(f"r_eff_pixels must be > 0; got {r_eff_pixels!r}")
    pixel_scale = fwhm / 2.0
    r_eff = r_eff_pixels * pixel_scale
    n = int(2 * np.ceil(4 * r_eff_pixels) + 1)
    grid = PixelGrid((n, n), pixel_scale, supersampling=supersampling)
    gradient = -0.2 / r_eff
    truth = dict(x0=0.0, y0=0.0, r_eff=r_eff, n=1.0, amplitude=1.0, central=8.0, gradient=gradient)
    galaxy = Component(
        Exponential(r_eff=r_eff, amplitude=1.0),
        LinearGradient(central=8.0, gradient=gradient),
    )
    return _observe_with_noise(
        [galaxy],
        grid,
        GaussianPSF(fwhm),
        tracer_scale,
        (0.0, 0.0),
        (r_eff, 0.0),
        seed,
        truth,
        fwhm=fwhm,
        r_eff_pixels=r_eff_pixels,
    )


CLUMP_POSITIONS = ((0.0, 0.0), (0.25, 0.0), (-0.25, 0.25))
CLUMP_METALLICITIES = (7.6, 7.8, 7.9)


def clumpy_galaxy(psf=None, *, seed=0, supersampling=3, tracer_scale="linear", shape=(31, 31)):
    """The paper's use case 2 (Table 1): three exponential clumps of constant metallicity.

    Clumps of R_e = 0.25" and equal brightness at (0, 0), (+0.25", 0) and (-0.25", +0.25")
    with 12+log(O/H) = 7.6, 7.8, 7.9; 0.066" pixels over ~2"x2". The default PSF is the
    approximate NIRISS F150W PSF shipped with the package (``pymc_tracers.data``).

    ``tracer_scale="linear"`` reproduces the paper (its fits averaged dex values); averaging
    ``10**Z`` (``"log"``, physically right) changes pixels by up to ~0.02 dex here.
    """
    if psf is None:
        from pymc_tracers.data import niriss_f150w_psf

        psf = niriss_f150w_psf()
    grid = PixelGrid(shape, PAPER_PIXEL_SCALE, supersampling=supersampling)
    components = [
        Component(Exponential(x0=x, y0=y, r_eff=0.25, amplitude=1.0), Constant(z))
        for (x, y), z in zip(CLUMP_POSITIONS, CLUMP_METALLICITIES)
    ]
    truth = {f"z{i}": z for i, z in enumerate(CLUMP_METALLICITIES)}
    truth.update(positions=CLUMP_POSITIONS, r_eff=0.25)
    return _observe_with_noise(
        components, grid, psf, tracer_scale, (0.0, 0.0), (0.0, -0.25), seed, truth
    )


# ------------------------------------------------------------------ Figure 1 toy maps
def _toy_tracer(kind, rng):
    """Intrinsic 12+log(O/H) fields with the same radial trend, 8.5 - 0.1 dex/arcsec."""
    import pytensor.tensor as pt

    r = lambda x, y: pt.sqrt(x**2 + y**2 + 1e-16)  # noqa: E731
    if kind == "smooth":
        return Expression(lambda x, y: 8.5 - 0.1 * r(x, y))
    if kind == "merger":
        # a metal-poor companion has mixed into one side: -0.3 dex on the left half, smoothly
        return Expression(lambda x, y: 8.5 - 0.1 * r(x, y) - 0.15 * (1 - pt.tanh(x / 0.5)) + 0.15)
    if kind == "spiral":
        # +0.2 dex along two logarithmic spiral arms
        def spiral(x, y):
            theta = pt.arctan2(y, x)
            phase = 2 * theta - 2.5 * pt.log(r(x, y) + 0.05)
            return 8.5 - 0.1 * r(x, y) + 0.2 * pt.exp(-((1 - pt.cos(phase)) / 0.15)) - 0.2 * 0.094

        return Expression(spiral)
    if kind == "fluctuations":
        # correlated small-scale fluctuations: a sum of random plane waves, 0.1 dex rms
        k = rng.uniform(2.0, 4.0, 40)
        angle = rng.uniform(0, 2 * np.pi, 40)
        phase = rng.uniform(0, 2 * np.pi, 40)
        kx, ky = k * np.cos(angle), k * np.sin(angle)
        amp = 0.1 * np.sqrt(2.0 / 40)

        def fluct(x, y):
            waves = [pt.cos(kx[i] * x + ky[i] * y + phase[i]) for i in range(40)]
            return 8.5 - 0.1 * r(x, y) + amp * sum(waves)

        return Expression(fluct)
    raise ValueError(f"unknown toy map {kind!r}; choose one of {TOY_MAPS}")


TOY_MAPS = ("smooth", "merger", "spiral", "fluctuations")


def toy_map(
    kind, *, fwhm=0.1, seed=0, r_eff=2.0, pixel_scale=0.1, shape=(81, 81), tracer_scale="log"
):
    """The four Figure-1 maps: same radial profile, different 2-D structure.

    Parameters
    ----------
    kind : {"smooth", "merger", "spiral", "fluctuations"}
        (a) smooth negative gradient, (b) merger asymmetry, (c) +0.2 dex spiral-arm enrichment,
        (d) correlated small-scale fluctuations.
    fwhm : float
        Gaussian PSF FWHM in arcsec (the paper smooths with ~0.6 and ~1.3 R_e).
    """
    if kind not in TOY_MAPS:
        raise ValueError(f"unknown toy map {kind!r}; choose one of {TOY_MAPS}")
    rng = np.random.default_rng(seed)
    grid = PixelGrid(shape, pixel_scale, supersampling=2)
    galaxy = Component(Exponential(r_eff=r_eff, amplitude=1.0), _toy_tracer(kind, rng))
    truth = dict(kind=kind, r_eff=r_eff, central=8.5, gradient=-0.1)
    return _observe_with_noise(
        [galaxy],
        grid,
        GaussianPSF(fwhm),
        tracer_scale,
        (0.0, 0.0),
        (r_eff, 0.0),
        seed + 1,
        truth,
        fwhm=fwhm,
    )


# ------------------------------------------------------------------ Figure 4: many realisations
def figure4_realisations(
    r_eff_pixels, n_realisations, *, seed=0, fwhm=0.4, supersampling=5, tracer_scale="linear"
):
    """``n_realisations`` independent noisy copies of :func:`figure4_galaxy`, as one batch.

    The noiseless model is computed once; realisation ``k`` carries exactly the noise of
    ``figure4_galaxy(r_eff_pixels, seed=seed + k, ...)`` (same generator, same draws), so each
    one can be checked against a single-galaxy simulation.

    Parameters
    ----------
    r_eff_pixels : float
        Effective radius in data pixels (pixel = FWHM / 2, Nyquist sampling).
    n_realisations : int
        Number of noise realisations (>= 1).
    seed : int
        Seed of the first realisation; realisation ``k`` uses ``seed + k``. Give different
        setups seeds at least ``n_realisations`` apart so that their noise is independent.
    fwhm : float
        Gaussian PSF FWHM in arcsec.
    supersampling : int
        Sub-pixels per pixel side used to compute the noiseless model.
    tracer_scale : {"linear", "log"}

    Returns
    -------
    SimulatedGalaxy
        As :func:`figure4_galaxy`, except that ``light_image`` and ``tracer_map`` have shape
        ``(n_realisations, ny, nx)`` (the noiseless maps and the error maps, identical for
        every realisation, stay ``(ny, nx)``) and ``extra`` holds ``n_realisations`` and
        ``seeds``.
    """
    if (
        isinstance(n_realisations, bool)
        or not isinstance(n_realisations, (int, np.integer))
        or n_realisations < 1
    ):
        raise ValueError(f"n_realisations must be an integer >= 1; got {n_realisations!r}")
    base = figure4_galaxy(
        r_eff_pixels, seed=seed, fwhm=fwhm, supersampling=supersampling, tracer_scale=tracer_scale
    )
    seeds = [int(seed) + k for k in range(int(n_realisations))]
    light, tracer = [], []
    for s in seeds:
        rng = np.random.default_rng(s)  # the draws of _observe_with_noise, in the same order
        light.append(base.true_light_image + rng.normal(size=base.grid.shape) * base.light_error)
        tracer.append(base.true_tracer_map + rng.normal(size=base.grid.shape) * base.tracer_error)
    return SimulatedGalaxy(
        grid=base.grid,
        psf=base.psf,
        components=base.components,
        tracer_scale=base.tracer_scale,
        light_image=np.stack(light),
        light_error=base.light_error,
        tracer_map=np.stack(tracer),
        tracer_error=base.tracer_error,
        true_light_image=base.true_light_image,
        true_tracer_map=base.true_tracer_map,
        truth=base.truth,
        noise_coefficients=base.noise_coefficients,
        extra={**base.extra, "n_realisations": int(n_realisations), "seeds": seeds},
    )


__all__ += ["figure4_realisations"]
