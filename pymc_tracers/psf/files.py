"""Reading PSF images from FITS files: stpsf/webbpsf output or any PSF image.

:func:`read_psf_image` returns the image and its pixel scale;
:meth:`pymc_tracers.PixelPSF.from_fits` (and :func:`pymc_tracers.psf.read_psf`) make the PSF.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from pymc_tracers.fitsutil import describe_hdus, hdu_index, pixel_scale_from_wcs
from pymc_tracers.validation import positive_number

__all__ = ["read_psf_image"]

logger = logging.getLogger("pymc_tracers.psf")

_STPSF_NAMES = {
    (True, False): "OVERSAMP",
    (False, False): "DET_SAMP",
    (True, True): "OVERDIST",
    (False, True): "DET_DIST",
}


def _psf_scale_from_header(header, label) -> float:
    for key in ("PIXELSCL", "PIXSCALE"):
        if key in header:
            scale = float(header[key])
            if not math.isfinite(scale) or scale <= 0:
                raise ValueError(f"{label}: {key} = {header[key]!r} is not a pixel scale")
            return scale
    has_matrix = any(k in header for k in ("CD1_1", "CD2_2", "CDELT1", "CDELT2"))
    if has_matrix:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
        return pixel_scale_from_wcs(wcs, source=label)
    raise ValueError(
        f"{label}: no pixel scale in the header (PIXELSCL, PIXSCALE, CD or CDELT keywords); "
        "pass pixel_scale=<arcsec per PSF pixel>"
    )


def read_psf_image(
    path,
    *,
    ext=None,
    pixel_scale=None,
    oversampled: bool = True,
    distorted: bool = False,
) -> tuple[np.ndarray, float, str]:
    """Read a PSF image from a FITS file (stpsf/webbpsf output or any PSF image).

    Parameters
    ----------
    path : str or path-like
    ext : int or str, optional
        The HDU to read. By default: for stpsf/webbpsf files, the extension named
        ``OVERSAMP`` (oversampled, ``oversampled=True``) or ``DET_SAMP`` (detector-sampled),
        or ``OVERDIST``/``DET_DIST`` with ``distorted=True``; files without these names but
        with ``OVERSAMP`` keywords are matched by keyword (``OVERSAMP > 1`` is oversampled,
        ``OVERSAMP = 1`` detector-sampled); otherwise the only image HDU (an empty primary HDU
        is skipped).
    pixel_scale : float, optional
        Arcsec per PSF pixel. By default ``PIXELSCL`` (stpsf/webbpsf, arcsec), ``PIXSCALE``
        (arcsec), or the WCS's ``CD``/``CDELT``+``PC`` (degrees unless ``CUNIT``; via
        ``proj_plane_pixel_scales``, so rotated matrices give the true scale).
    oversampled : bool
        For stpsf-shaped files: the oversampled PSF (default; the forward model resamples it
        to its sub-pixels) or the detector-sampled one.
    distorted : bool
        For stpsf files: the versions with geometric distortion and detector effects
        (``OVERDIST``/``DET_DIST``).

    Returns
    -------
    image : ndarray (n, n)
        The PSF image as stored (not normalised; an even size is re-centred by
        :meth:`pymc_tracers.PixelPSF.from_fits`).
    pixel_scale : float
        Arcsec per PSF pixel.
    label : str
        ``file[EXTNAME]``, for messages.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; no image where expected (the message lists the HDUs); the asked-for
        sampling is not in the file; no pixel scale; non-square or skewed pixels.

    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"PSF file {str(path)!r} does not exist")
    with fits.open(path) as hdus:
        listing = describe_hdus(hdus)
        index = _select_psf_hdu(hdus, ext, bool(oversampled), bool(distorted), path.name, listing)
        hdu = hdus[index]
        data = np.array(hdu.data, dtype=float)
        header = hdu.header.copy()
    label = f"{path.name}[{hdu.name if hdu.name and hdu.name != 'PRIMARY' else index}]"
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f"{label} has shape {data.shape}; a PSF image must be 2-D")
    scale = (
        _psf_scale_from_header(header, label)
        if pixel_scale is None
        else positive_number(pixel_scale, "pixel_scale")
    )
    if data.shape[0] != data.shape[1]:
        raise ValueError(f"{label}: the PSF image must be square; got shape {data.shape}")
    return data, scale, label


def _select_psf_hdu(hdus, ext, oversampled, distorted, name, listing) -> int:
    def has_image(h):
        return h.is_image and h.data is not None and h.data.size > 0

    if ext is not None:
        index = hdu_index(hdus, ext)
        if index is None:
            raise ValueError(f"{name} has no extension {ext!r}; its HDUs: {listing}")
        if not has_image(hdus[index]):
            images = [i for i, h in enumerate(hdus) if has_image(h)]
            hint = f"; pass ext={images[0]}" if images else ""
            raise ValueError(f"{name}: HDU {ext!r} holds no image (its HDUs: {listing}){hint}")
        return index
    names = {h.name.upper(): i for i, h in enumerate(hdus) if has_image(h)}
    wanted = _STPSF_NAMES[(oversampled, distorted)]
    if wanted in names:
        return names[wanted]
    known = [n for n in _STPSF_NAMES.values() if n in names]
    if known:
        raise ValueError(
            f"{name} has the stpsf extensions {known} but not {wanted!r} (asked for "
            f"oversampled={oversampled}, distorted={distorted}); change those or pass ext="
        )
    images = [i for i, h in enumerate(hdus) if has_image(h)]
    if not images:
        raise ValueError(f"{name}: no HDU holds an image; its HDUs: {listing}")
    keyed = {i: hdus[i].header.get("OVERSAMP") for i in images if "OVERSAMP" in hdus[i].header}
    if keyed and not distorted:
        if oversampled:
            over = {i: f for i, f in keyed.items() if float(f) > 1}
            if over:
                return max(over, key=lambda i: float(over[i]))
            raise ValueError(
                f"{name} holds only detector-sampled PSFs (OVERSAMP = 1); pass oversampled=False"
            )
        det = [i for i, f in keyed.items() if float(f) == 1]
        if det:
            return det[0]
        factors = sorted({float(f) for f in keyed.values()})
        raise ValueError(
            f"{name} holds only an oversampled PSF (OVERSAMP = {factors}); pass oversampled=True"
            " (the forward model resamples it to its grid)"
        )
    if len(images) > 1:
        raise ValueError(
            f"{name} holds several images and none is named OVERSAMP/DET_SAMP; pass ext= "
            f"(its HDUs: {listing})"
        )
    if images[0] != 0:
        logger.info("%s: primary HDU is empty; PSF read from HDU %d", name, images[0])
    return images[0]
