"""``pymc-tracers init-example --kinematics``: a simulated rotating disc (velocity and
dispersion maps with errors, a rotated WCS) and a commented ``[kinematics]`` configuration
that fits it. The truth is written into the primary header (``TRUE_*`` keywords) and the
configuration's comments."""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from pymc_tracers import io
from pymc_tracers.config.example import example_wcs
from pymc_tracers.forward import evaluate
from pymc_tracers.kinematics import (
    ArctanCurve,
    DiscDispersion,
    DiscGeometry,
    DiscVelocity,
    KinematicComponent,
    inclination_from_axis_ratio,
    observe_kinematics,
)
from pymc_tracers.profiles import Exponential
from pymc_tracers.psf import GaussianPSF

__all__ = ["KINEMATIC_EXAMPLE_CONFIG", "KINEMATIC_EXAMPLE_TRUTH", "write_kinematic_example"]

#: The simulated disc of ``init-example --kinematics`` (km/s, arcsec, degrees).
KINEMATIC_EXAMPLE_TRUTH = {
    "v_max": 180.0,
    "r_t": 0.5,
    "sigma": 40.0,
    "v_sys": 15.0,
    "lsf": 30.0,
    "r_eff": 1.2,
    "q": 0.6,
    "q0": 0.2,
    "pa": 50.0,
    "psf_fwhm": 0.8,
    "pixel_scale": 0.25,
    "shape": (24, 24),
    "velocity_error": 5.0,
    "dispersion_error": 6.0,
    "simulation_supersampling": 4,
}

#: The commented configuration (a ``str.format`` template).
KINEMATIC_EXAMPLE_CONFIG = """\
# pymc-tracers kinematic fit (written by `pymc-tracers init-example --kinematics`).
# Run it with:   pymc-tracers fit {config_path}
# Every option is described in docs/config.md ([kinematics]). Paths are relative to this file.
#
# The truth of this simulated disc (also in kinematics.fits's primary header, TRUE_* keywords):
#   arctan rotation curve v_max = {v_max} km/s, r_t = {r_t} arcsec; constant intrinsic
#   dispersion {sigma} km/s; v_sys = {v_sys} km/s; instrumental dispersion {lsf} km/s kept in the
#   SIGMA map; exponential light r_eff = {r_eff} arcsec, q = {q}; kinematic PA = {pa} deg east
#   of north (receding side); inclination {inclination_deg:.2f} deg (q0 = {q0}); Gaussian PSF
#   FWHM {psf_fwhm} arcsec; pixels of {pixel_scale} arcsec, north {rotation} deg from +y;
#   noise seed {seed}.

[kinematics]
file = "kinematics.fits"      # one FITS file: every map in its own extension
velocity = "V"                # km/s (BUNIT); 1-sigma errors in V_ERR (or inverse variances V_IVAR)
dispersion = "SIGMA"          # km/s; this file gives SIGMA_IVAR (inverse variances)
lsf = {lsf}                     # km/s still in SIGMA (a number, or an extension such as
                              # "EMLINE_INSTSIGMA"); leave out if the pipeline subtracted it
# bins = "BINID"              # Voronoi bins (-1 = none): one likelihood term per bin
# mask = "MASK"               # nonzero = leave the pixel out
supersampling = 2             # sub-pixels per pixel along each axis
method = "auto"               # "disc_radial" for fixed light, PSF and disc geometry, else "full"

[kinematics.light]            # where the line emission is: any light profile
profile = "Exponential"
center = "{center}"           # sky position (deg); or x0, y0 in arcsec
r_eff = {r_eff}                  # arcsec
q = {q}
pa = {pa}                      # degrees east of north (or phi in radians)
amplitude = 1.0

[kinematics.disc]             # geometry of the disc and its systemic velocity
x0 = "light.x0"               # the kinematic centre at the light's (or a prior, arcsec)
y0 = "light.y0"
pa = {pa}                      # kinematic PA of the receding side, deg east of north (fixed);
                              # phi = {{distribution = "Normal", mu = ..., sigma = 0.2}} frees it
q0 = {q0}                      # inclination from the light's q: cos^2 i = (q^2 - q0^2)/(1 - q0^2)
                              # (or inclination = <radians or prior>, not both)
v_sys = {{distribution = "Normal", mu = 0, sigma = 50}}          # km/s; truth {v_sys}

[kinematics.rotation]         # ArctanCurve, TanhCurve, ExponentialDiscCurve, RadialProfile.spline
profile = "ArctanCurve"
v_max = {{distribution = "HalfNormal", sigma = 400}}             # km/s; truth {v_max}
r_t = {{distribution = "LogNormal", mu = -0.7, sigma = 1}}       # arcsec; truth {r_t}

[kinematics.dispersion_profile]       # RadialConstant, ExponentialDispersion, RadialProfile.spline
profile = "RadialConstant"
value = {{distribution = "HalfNormal", sigma = 100}}             # km/s; truth {sigma}

[psf]
type = "gaussian"
fwhm = {psf_fwhm}                  # arcsec

[model]
convolve_at = "pixel"         # convolve at the data-pixel scale: ~0.02 km/s from exact, faster
# nu = 5                      # Student-t likelihood (robust to outliers)

[sampler]
draws = 500                   # per chain; use 1000+ for publication
tune = 500
chains = 2
seed = 1

[output]
folder = "results"            # refused if it exists, unless `pymc-tracers fit --overwrite`
"""


def write_kinematic_example(
    folder, *, rotation_deg=25.0, seed=0, overwrite=False, truth=None, bin_map=None
) -> Path:
    """Write a simulated rotating disc (``kinematics.fits``) and a commented ``config.toml``
    that fits it; return the config's path.

    The maps are the exact moments of the PSF-smeared cube (``observe_kinematics`` on the full
    sub-pixel path, ``simulation_supersampling`` sub-pixels per pixel) plus Gaussian noise:
    ``V`` with 1-sigma errors ``V_ERR`` and ``SIGMA`` (which keeps the instrumental ``lsf``)
    with inverse variances ``SIGMA_IVAR``, all in km/s.

    Parameters
    ----------
    folder : path-like
        Created if missing; existing example files are refused unless ``overwrite``.
    rotation_deg : float
        Angle of north from the map's +y axis (degrees).
    seed : int
        Noise realisation.
    truth : dict, optional
        Overrides of :data:`KINEMATIC_EXAMPLE_TRUTH`.
    bin_map : ndarray of int, optional
        Bin the maps with it (-1 = no bin) as an IFU pipeline bins spectra: each bin's
        velocity and dispersion are the moments of its summed cube (ratios of the moment sums
        over its pixels), repeated in its pixels, with one noise draw per bin; written as
        extension ``BINID`` and named in the configuration (``bins = "BINID"``).
    """
    truth = {**KINEMATIC_EXAMPLE_TRUTH, **(truth or {})}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("kinematics.fits", "config.toml")
    existing = [n for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{str(folder)!r} already holds {', '.join(existing)}; pass --overwrite to replace"
        )
    shape, scale = tuple(truth["shape"]), truth["pixel_scale"]
    wcs = example_wcs(shape, scale, rotation_deg)
    frame = io.sky_frame(wcs, shape, supersampling=truth["simulation_supersampling"])
    centre = wcs.pixel_to_world((shape[1] - 1) / 2 + 0.6, (shape[0] - 1) / 2 - 0.4)
    x0, y0 = frame.to_grid(centre)
    phi = frame.phi_from_pa(truth["pa"], at=centre)
    inclination = float(inclination_from_axis_ratio(truth["q"], truth["q0"]))
    geometry = DiscGeometry(x0=x0, y0=y0, phi=phi, inclination=inclination)
    light = Exponential(r_eff=truth["r_eff"], q=truth["q"], phi=phi, x0=x0, y0=y0, amplitude=1.0)
    velocity = DiscVelocity(
        geometry, ArctanCurve(v_max=truth["v_max"], r_t=truth["r_t"]), v_sys=truth["v_sys"]
    )
    component = KinematicComponent(light, velocity, DiscDispersion(geometry, truth["sigma"]))
    observation = observe_kinematics(
        component, frame.grid, GaussianPSF(truth["psf_fwhm"]), lsf_sigma=truth["lsf"], method="full"
    )
    rng = np.random.default_rng(seed)
    v_err = np.full(shape, float(truth["velocity_error"]))
    s_err = np.full(shape, float(truth["dispersion_error"]))
    extra = []
    if bin_map is None:
        _, v_true, s_true = evaluate(observation)
        v_noise, s_noise = rng.normal(size=shape), rng.normal(size=shape)
    else:
        bins = io.validate_bin_map(bin_map, shape=shape)
        v_true, s_true = _binned_moments(observation, bins, truth["lsf"])
        position = np.searchsorted(io.bin_ids(bins), np.clip(bins, 0, None))
        v_noise = rng.normal(size=position.max() + 1)[position]
        s_noise = rng.normal(size=position.max() + 1)[position]
        v_err = np.where(bins >= 0, v_err, np.nan)
        s_err = np.where(bins >= 0, s_err, np.nan)
        extra.append(("BINID", bins.astype(np.int32), ""))
    header = wcs.to_header()
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["OBJECT"] = "pymc-tracers kinematic example"
    cards = _truth_cards(truth, inclination, phi, x0, y0, rotation_deg, seed)
    for key, value, comment in cards:
        hdus[0].header[key] = (value, comment)
    for extname, array, unit in [
        ("V", v_true + v_err * v_noise, "km/s"),
        ("V_ERR", v_err, "km/s"),
        ("SIGMA", s_true + s_err * s_noise, "km/s"),
        ("SIGMA_IVAR", np.nan_to_num(1.0 / s_err**2), "s2 / km2"),
        *extra,
    ]:
        h = header.copy()
        h["EXTNAME"] = extname
        if unit:
            h["BUNIT"] = unit
        hdus.append(fits.ImageHDU(np.asarray(array), header=h))
    fits.HDUList(hdus).writeto(folder / "kinematics.fits", overwrite=True)
    ra, dec = centre.ra.to_value(u.deg), centre.dec.to_value(u.deg)
    text = KINEMATIC_EXAMPLE_CONFIG.format(
        config_path=folder / "config.toml",
        center=f"{ra:.8f} {dec:.8f}",
        inclination_deg=math.degrees(inclination),
        rotation=rotation_deg,
        seed=seed,
        **{k: v for k, v in truth.items() if k != "shape"},
    )
    if bin_map is not None:
        text = text.replace('# bins = "BINID"             ', 'bins = "BINID"               ')
    (folder / "config.toml").write_text(text)
    return folder / "config.toml"


def _binned_moments(observation, bins, lsf):
    """Velocity and dispersion (km/s) of each bin's summed cube, repeated in its pixels (NaN
    outside bins): ``v_b = v_ref + sum M1 / sum L``, ``sigma_b^2 = sum M2 / sum L -
    (sum M1 / sum L)^2 + lsf^2`` with the moment sums of ``observation``."""
    light, first, second, reference = evaluate(
        [
            observation.light_sum,
            observation.first_sum,
            observation.second_sum,
            observation.reference,
        ]
    )
    ids = io.bin_ids(bins)
    inside = bins >= 0
    position = np.searchsorted(ids, bins[inside])
    totals = [np.bincount(position, m[inside], minlength=ids.size) for m in (light, first, second)]
    mean = totals[1] / totals[0]
    velocity = float(reference) + mean
    dispersion = np.sqrt(totals[2] / totals[0] - mean**2 + lsf**2)
    out = []
    for per_bin in (velocity, dispersion):
        values = np.full(bins.shape, np.nan)
        values[inside] = per_bin[position]
        out.append(values)
    return out


def _truth_cards(truth, inclination, phi, x0, y0, rotation_deg, seed):
    """FITS header cards ``(keyword, value, comment)`` of the simulation's truth; the names of
    :data:`pymc_tracers.config.kinematic_model.KINEMATIC_TRUTH_CARDS`."""
    return [
        ("TRUE_VMX", truth["v_max"], "true arctan v_max, km/s"),
        ("TRUE_RT", truth["r_t"], "true arctan turnover radius, arcsec"),
        ("TRUE_SIG", truth["sigma"], "true intrinsic dispersion, km/s"),
        ("TRUE_VSY", truth["v_sys"], "true systemic velocity, km/s"),
        ("TRUE_INC", inclination, "true inclination, radians"),
        ("TRUE_PHI", float(phi), "true kinematic phi in the grid, radians from +x"),
        ("TRUE_X0", float(x0), "true centre x in the grid, arcsec"),
        ("TRUE_Y0", float(y0), "true centre y in the grid, arcsec"),
        ("TRUE_PA", truth["pa"], "true kinematic PA (receding), deg east of north"),
        ("TRUE_LSF", truth["lsf"], "instrumental dispersion in SIGMA, km/s"),
        ("TRUE_FWH", truth["psf_fwhm"], "true Gaussian PSF FWHM, arcsec"),
        ("TRUE_ROT", rotation_deg, "north's angle from the map's +y axis, deg"),
        ("SEED", seed, "noise realisation"),
    ]
