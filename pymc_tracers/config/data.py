"""Reading what ``[data]`` and ``[psf]`` name: the galaxy's maps and its PSF."""

from __future__ import annotations

import astropy.units as u
from astropy.coordinates import SkyCoord

from pymc_tracers import io
from pymc_tracers.config.errors import ConfigError, is_number, one_line
from pymc_tracers.config.schema import FitConfig
from pymc_tracers.psf import GaussianPSF, MoffatPSF, read_psf
from pymc_tracers.psf.chromatic import moffat_psf_at

__all__ = ["make_psf", "read_data", "sky_position"]


def read_data(config: FitConfig):
    """The :class:`~pymc_tracers.io.GalaxyData` named by ``[data]``."""
    spec = dict(config.data)
    path = spec.pop("file", None)
    if "center" in spec:
        spec["center"] = sky_position(spec["center"], "[data] center")
    if "cutout_size" in spec:
        size = spec["cutout_size"]
        spec["cutout_size"] = size * u.arcsec if is_number(size) else size
    for role in ("tracer", "tracer_error", "image", "image_error", "mask", "bins"):
        if isinstance(spec.get(role), tuple):
            spec[role] = tuple(spec[role])
    try:
        return io.read_maps(path, **spec)
    except (ValueError, FileNotFoundError, OSError, TypeError) as error:
        raise ConfigError(f"[data]: {one_line(error)}") from None


def sky_position(text, where):
    """A SkyCoord from ``"150.1 2.2"`` (degrees) or a sexagesimal string; ConfigError naming
    ``where`` otherwise."""
    try:
        parts = text.split()
        if len(parts) == 2 and all(_float_or_none(p) is not None for p in parts):
            return SkyCoord(float(parts[0]), float(parts[1]), unit="deg")
        return SkyCoord(text)
    except Exception:  # noqa: BLE001  (astropy raises several types)
        raise ConfigError(
            f'{where} = {text!r} is not a sky position; use "150.1 2.2" (degrees) or '
            '"10h00m28.6s +02d12m21s"'
        ) from None


def _float_or_none(text):
    try:
        return float(text)
    except ValueError:
        return None


def make_psf(config: FitConfig):
    """The PSF named by ``[psf]``."""
    p = config.psf
    try:
        if p["type"] == "gaussian":
            return GaussianPSF(fwhm=p["fwhm"])
        if p["type"] == "moffat":
            return MoffatPSF(p["fwhm"], p.get("beta", 2.5))
        if p["type"] == "moffat_wavelength":
            return moffat_psf_at(
                p["wavelength"],
                fwhm_ref=p["fwhm_ref"],
                wavelength_ref=p["wavelength_ref"],
                slope=p.get("slope", 0.0),
                curvature=p.get("curvature", 0.0),
                beta=p.get("beta", 2.5),
                beta_slope=p.get("beta_slope", 0.0),
            )
        return read_psf(
            p["file"],
            ext=p.get("ext"),
            pixel_scale=p.get("pixel_scale"),
            oversampled=p.get("oversampled", True),
        )
    except (ValueError, FileNotFoundError, OSError, TypeError) as error:
        raise ConfigError(f"[psf]: {one_line(error)}") from None
