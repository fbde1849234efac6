"""FITS and WCS primitives shared by the map readers (:mod:`pymc_tracers.io`) and the PSF files
(:mod:`pymc_tracers.psf.files`): listing and finding HDUs, the pixel scale of a celestial WCS.

It imports nothing of the package, so both sides can use it without an import cycle.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

__all__ = ["celestial", "describe_hdus", "hdu_index", "pixel_scale_from_wcs"]


def describe_hdus(hdus) -> str:
    """One line listing a FITS file's HDUs: index, name and shape (for error messages)."""
    parts = []
    for i, hdu in enumerate(hdus):
        shape = getattr(hdu, "shape", None) if hdu.is_image else None
        what = "x".join(str(n) for n in shape) if shape else ("empty" if hdu.is_image else "table")
        parts.append(f"{i} {hdu.name!r} ({what})")
    return "; ".join(parts)


def hdu_index(hdus, ext):
    """Index of an HDU given by number or EXTNAME, or None when the file has no such HDU."""
    try:
        index = hdus.index_of(ext)
    except (KeyError, IndexError):
        return None
    return index if 0 <= index < len(hdus) else None


def celestial(wcs):
    """The 2-D celestial part of a WCS, or None when it has none."""
    if wcs is None:
        return None
    if not wcs.has_celestial:
        return None
    return wcs.celestial


def pixel_scale_from_wcs(
    wcs, *, square_rtol: float = 1e-4, skew_tol: float = 1e-4, source: str = "WCS"
) -> float:
    """Side of a (square) pixel in arcsec from a 2-D WCS.

    Uses :func:`astropy.wcs.utils.proj_plane_pixel_scales`, so a rotated ``CD`` matrix or
    ``PC`` + ``CDELT`` gives the true scale (a rotated ``CD`` reads ``CD1_1 = s cos(rho)``
    alone, which is not the scale).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A WCS with two pixel axes (or a celestial part). Axis units are taken from ``CUNIT``;
        empty units are degrees (the FITS default for celestial axes).
    square_rtol : float
        Largest relative difference of the two axis scales accepted as square.
    skew_tol : float
        Largest ``|cos|`` of the angle between the two pixel axes on the sky accepted as
        perpendicular.
    source : str
        Named in error messages.

    Returns
    -------
    float
        Pixel side in arcsec.

    Raises
    ------
    ValueError
        Non-square or skewed pixels, or a WCS that is not 2-D.
    """
    w = celestial(wcs) or wcs
    if w.pixel_n_dim != 2 or w.world_n_dim != 2:
        raise ValueError(
            f"{source}: the WCS has {w.pixel_n_dim} pixel axes; a 2-D map needs a 2-D WCS"
        )
    factors = []
    for cunit in w.wcs.cunit:
        unit = u.deg if str(cunit) == "" else u.Unit(cunit)
        try:
            factors.append(float((1.0 * unit).to_value(u.arcsec)))
        except u.UnitConversionError:
            raise ValueError(
                f"{source}: WCS axis unit {unit} is not an angle; pass pixel_scale=<arcsec>"
            ) from None
    matrix = np.asarray(w.pixel_scale_matrix, dtype=float) * np.array(factors)[:, None]
    scales = np.asarray(proj_plane_pixel_scales(w), dtype=float) * np.array(factors)
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(f"{source}: the WCS gives pixel scales {scales} arcsec; is it complete?")
    if abs(scales[0] - scales[1]) > square_rtol * scales.mean():
        raise ValueError(
            f"{source}: pixels are not square ({scales[0]:.6g} x {scales[1]:.6g} arcsec along "
            "FITS axes 1 and 2); resample the map onto square pixels (e.g. with the reproject "
            "package) before fitting"
        )
    cos = float(matrix[:, 0] @ matrix[:, 1] / (scales[0] * scales[1]))
    if abs(cos) > skew_tol:
        raise ValueError(
            f"{source}: the pixel axes are skewed on the sky (they meet at "
            f"{math.degrees(math.acos(np.clip(cos, -1, 1))):.4f} deg, not 90); resample the map "
            "onto an orthogonal pixel grid first"
        )
    return float(scales.mean())
