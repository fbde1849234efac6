"""``pymc-tracers init-example``: a simulated galaxy (FITS maps with a rotated WCS, a PSF file)
and a commented configuration that fits it. The truth is written into the FITS headers
(``TRUE_*`` keywords of the primary HDU) and into the configuration's comments."""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from pymc_tracers import io
from pymc_tracers.forward import Component, evaluate, observe
from pymc_tracers.profiles import Exponential, LinearGradient
from pymc_tracers.psf import GaussianPSF, PixelPSF

__all__ = ["EXAMPLE_CONFIG", "EXAMPLE_TRUTH", "example_wcs", "write_example"]

#: The simulated galaxy of ``pymc-tracers init-example`` (arcsec, dex, dex/arcsec, degrees).
EXAMPLE_TRUTH = {
    "central": 8.6,
    "gradient": -0.15,
    "r_eff": 0.6,
    "q": 0.7,
    "pa": 40.0,
    "psf_fwhm": 0.3,
    "pixel_scale": 0.1,
    "shape": (31, 31),
}

#: The commented configuration ``init-example`` writes (a ``str.format`` template).
EXAMPLE_CONFIG = """\
# pymc-tracers fit configuration (written by `pymc-tracers init-example`).
# Run it with:   pymc-tracers fit {config_path}
# Every option is described in docs/config.md. Paths are relative to this file.
#
# The truth of this simulated galaxy (also in galaxy.fits's primary header, TRUE_* keywords):
#   central metallicity {central} dex, gradient {gradient} dex/arcsec of elliptical radius,
#   exponential disc r_eff = {r_eff} arcsec, q = {q}, PA = {pa} deg east of north,
#   Gaussian PSF FWHM {psf_fwhm} arcsec, pixels of {pixel_scale} arcsec, north {rotation} deg
#   from the map's +y axis, noise seed {seed}.

[data]
file = "galaxy.fits"          # one multi-extension FITS file (or give files per map)
tracer = "OH"                 # extension holding the tracer map: 12+log(O/H), BUNIT = dex
tracer_error = "OH_ERR"       # its 1-sigma error map (error_type = "variance"/"ivar" also work)
image = "HALPHA"              # light image (read, reported; not fitted here)
image_error = "HALPHA_ERR"
{bins_line}# mask = "DQ"                # a mask extension (nonzero = bad pixel)
# snr_min = 3                 # leave out pixels with H-alpha S/N < 3
supersampling = 2             # sub-pixels per pixel along each axis
# pixel_scale = 0.1           # arcsec; only needed for files without a celestial WCS

[psf]
type = "file"                 # "gaussian" / "moffat" (fwhm, beta), "moffat_wavelength", "file"
file = "psf.fits"             # PIXELSCL in the header gives its pixel scale (arcsec)
# type = "gaussian"
# fwhm = 0.3                  # arcsec

[model]
tracer_scale = "log"          # average 10**Z (the default for BUNIT = dex); "linear" for
                              # velocities (a tracer that is not in dex must say which)
name = "OH"                   # name of the likelihood (and of the maps in the outputs)

[[components]]
name = "disc"

[components.light]            # known from photometry: fixed numbers
profile = "Exponential"       # Sersic (adds n), Exponential, Gaussian (sigma instead of r_eff)
center = "{center}"           # sky position (deg); or x0, y0 in arcsec from the field centre
r_eff = {r_eff}                  # arcsec
q = {q}                       # axis ratio b/a
pa = {pa}                      # position angle, degrees east of north (or phi in radians)
amplitude = 1.0

[components.tracer]
profile = "LinearGradient"    # Constant (value), LinearGradient, BrokenGradient
x0 = "light.x0"               # tied to the light profile's centre and shape
y0 = "light.y0"
q = "light.q"
phi = "light.phi"
# priors are pymc_extras.prior.Prior dictionaries: a distribution and its parameters
central = {{distribution = "Normal", mu = 8.5, sigma = 0.5}}     # dex; truth {central}
gradient = {{distribution = "Normal", mu = 0.0, sigma = 0.2}}    # dex / arcsec; truth {gradient}

[sampler]
draws = 300                   # per chain; use 1000+ for publication
tune = 300
chains = 2
seed = 1
sampler = "nutpie"            # or "pymc", "numpyro", "blackjax"

[output]
folder = "results"            # refused if it exists, unless `pymc-tracers fit --overwrite`
"""


def example_wcs(shape, pixel_scale, rotation_deg, *, center=(150.1, 2.2)):
    """A TAN WCS with square pixels (arcsec), north rotated by ``rotation_deg`` from up, east
    left of north (``det(CD) < 0``, as sky images are)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(center)
    wcs.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    s = pixel_scale / 3600.0
    t = math.radians(rotation_deg)
    wcs.wcs.cd = [[-s * math.cos(t), s * math.sin(t)], [s * math.sin(t), s * math.cos(t)]]
    wcs.pixel_shape = (shape[1], shape[0])
    return wcs


def write_example(
    folder, *, rotation_deg=25.0, seed=0, bin_map=None, overwrite=False, truth=None
) -> Path:
    """Write a simulated galaxy (FITS maps with a WCS, error maps, light image, PSF FITS) and a
    commented ``config.toml`` that fits it; return the config's path.

    Parameters
    ----------
    folder : path-like
        Created if missing; existing example files are refused unless ``overwrite``.
    rotation_deg : float
        Angle of north from the map's +y axis (degrees): a rotated WCS.
    seed : int
        Noise realisation.
    bin_map : ndarray of int, optional
        Bin the tracer map with it (each bin's value is its light-weighted ratio, errors
        combined in inverse variance) and write it as extension ``BINID``.
    truth : dict, optional
        Overrides of :data:`EXAMPLE_TRUTH`.
    """
    truth = {**EXAMPLE_TRUTH, **(truth or {})}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("galaxy.fits", "psf.fits", "config.toml")
    existing = [n for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{str(folder)!r} already holds {', '.join(existing)}; pass --overwrite to replace"
        )
    shape, scale = tuple(truth["shape"]), truth["pixel_scale"]
    wcs = example_wcs(shape, scale, rotation_deg)
    frame = io.sky_frame(wcs, shape, supersampling=2)
    # the galaxy sits a little off the field centre
    centre = wcs.pixel_to_world((shape[1] - 1) / 2 + 1.3, (shape[0] - 1) / 2 - 0.8)
    x0, y0 = frame.to_grid(centre)
    phi = frame.phi_from_pa(truth["pa"], at=centre)
    geometry = {"x0": x0, "y0": y0, "q": truth["q"], "phi": phi}
    light = Exponential(r_eff=truth["r_eff"], amplitude=1.0, **geometry)
    tracer = LinearGradient(central=truth["central"], gradient=truth["gradient"], **geometry)
    psf_scale = scale / 3
    kernel = GaussianPSF(fwhm=truth["psf_fwhm"]).kernel(psf_scale)
    psf = PixelPSF(kernel, psf_scale)
    obs = observe(Component(light, tracer), frame.grid, psf, tracer_scale="log")
    image, tracer_map, weighted, light_sum = evaluate(
        [obs.image, obs.tracer_map, obs.weighted_sum, obs.light_sum]
    )
    maps, extra = _noisy_maps(image, tracer_map, weighted, light_sum, seed=seed, bin_map=bin_map)
    header = wcs.to_header()
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["OBJECT"] = "pymc-tracers example galaxy"
    for key, value, comment in _truth_cards(truth, rotation_deg, seed, centre):
        hdus[0].header[key] = (value, comment)
    for extname, array, unit in [*maps, *extra]:
        h = header.copy()
        h["EXTNAME"] = extname
        if unit:
            h["BUNIT"] = unit
        hdus.append(fits.ImageHDU(np.asarray(array), header=h))
    fits.HDUList(hdus).writeto(folder / "galaxy.fits", overwrite=True)
    psf_hdu = fits.PrimaryHDU(kernel)
    psf_hdu.header["PIXELSCL"] = (psf_scale, "arcsec per PSF pixel")
    psf_hdu.header["FWHM"] = (truth["psf_fwhm"], "Gaussian FWHM, arcsec")
    psf_hdu.header["TRUEFWHM"] = (truth["psf_fwhm"], "true Gaussian FWHM of the PSF, arcsec")
    psf_hdu.writeto(folder / "psf.fits", overwrite=True)
    ra, dec = centre.ra.to_value(u.deg), centre.dec.to_value(u.deg)
    text = EXAMPLE_CONFIG.format(
        config_path=folder / "config.toml",
        center=f"{ra:.8f} {dec:.8f}",
        r_eff=truth["r_eff"],
        q=truth["q"],
        pa=truth["pa"],
        central=truth["central"],
        gradient=truth["gradient"],
        psf_fwhm=truth["psf_fwhm"],
        pixel_scale=truth["pixel_scale"],
        rotation=rotation_deg,
        seed=seed,
        bins_line='bins = "BINID"               # Voronoi bin map: one likelihood term per bin\n'
        if bin_map is not None
        else '# bins = "BINID"             # a Voronoi/segmentation bin map (-1 = no bin)\n',
    )
    (folder / "config.toml").write_text(text)
    return folder / "config.toml"


def _noisy_maps(image, tracer_map, weighted, light_sum, *, seed, bin_map):
    """The observed maps of the example: ``([(EXTNAME, array, BUNIT)], [extra extensions])``;
    with a bin map the tracer is binned (each bin's light-weighted ratio, errors combined in
    inverse variance)."""
    shape = image.shape
    rng = np.random.default_rng(seed)
    peak = image.max()
    faint = image < 2e-3 * peak
    sigma = np.sqrt(0.02**2 + 0.02**2 * peak / np.maximum(image, 1e-300))
    sigma = np.where(faint, np.nan, sigma)
    extra = []
    if bin_map is not None:
        bins = io.validate_bin_map(bin_map, shape=shape)
        bins = np.where(faint, -1, bins)
        ids = io.bin_ids(bins)
        values = np.log10(io.bin_average_numpy(weighted, light_sum, bins))
        position = np.searchsorted(ids, np.clip(bins, 0, None))
        weights = np.where(bins >= 0, 1.0 / np.where(faint, np.inf, sigma) ** 2, 0.0)
        per_bin_sigma = 1.0 / np.sqrt(np.bincount(position[bins >= 0], weights[bins >= 0]))
        noisy = values + per_bin_sigma * rng.normal(size=ids.size)
        tracer_data = np.where(bins >= 0, noisy[position], np.nan)
        sigma = np.where(bins >= 0, per_bin_sigma[position], np.nan)
        extra.append(("BINID", bins.astype(np.int32), None))
    else:
        tracer_data = np.where(faint, np.nan, tracer_map + sigma * rng.normal(size=shape))
    image_error = 0.01 * peak * np.ones(shape)
    image_data = image + image_error * rng.normal(size=shape)
    maps = [
        ("OH", tracer_data, "dex"),
        ("OH_ERR", sigma, "dex"),
        ("HALPHA", image_data, "1e-17 erg / (s cm2)"),
        ("HALPHA_ERR", image_error, "1e-17 erg / (s cm2)"),
    ]
    return maps, extra


def _truth_cards(truth, rotation_deg, seed, centre):
    """FITS header cards ``(keyword, value, comment)`` of the simulation's truth."""
    return [
        ("TRUE_Z0", truth["central"], "true central metallicity, dex"),
        ("TRUE_GRD", truth["gradient"], "true gradient, dex/arcsec (elliptical radius)"),
        ("TRUE_REF", truth["r_eff"], "true r_eff of the exponential disc, arcsec"),
        ("TRUE_Q", truth["q"], "true axis ratio b/a"),
        ("TRUE_PA", truth["pa"], "true position angle, deg east of north"),
        ("TRUE_RA", float(centre.ra.to_value(u.deg)), "true centre RA, deg"),
        ("TRUE_DEC", float(centre.dec.to_value(u.deg)), "true centre Dec, deg"),
        ("TRUE_FWH", truth["psf_fwhm"], "true Gaussian PSF FWHM, arcsec"),
        ("TRUE_ROT", rotation_deg, "north's angle from the map's +y axis, deg"),
        ("SEED", seed, "noise realisation"),
    ]
