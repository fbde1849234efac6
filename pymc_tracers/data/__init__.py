"""Data files shipped with ``pymc_tracers``.

Currently one file: an approximate JWST/NIRISS F150W point-spread function, built with ``poppy``
by ``scripts/make_niriss_psf.py`` so that examples and tests can use a realistic space-telescope
PSF without the ``stpsf`` data files. For science, compute the real PSF with
:meth:`pymc_tracers.psf.PixelPSF.from_stpsf`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["niriss_f150w_psf", "niriss_f150w_psf_path"]

_NIRISS_F150W_PSF = "niriss_f150w_psf.fits"


def niriss_f150w_psf_path() -> Path:
    """Path of the shipped approximate NIRISS F150W PSF FITS file.

    Returns
    -------
    pathlib.Path
        ``niriss_f150w_psf.fits`` inside the installed ``pymc_tracers.data`` package. The primary
        HDU holds a 175 x 175 float32 image with unit sum; the header keyword ``PIXELSCL`` gives
        the pixel scale in arcsec (0.01312).
    """
    return Path(__file__).resolve().parent / _NIRISS_F150W_PSF


def niriss_f150w_psf():
    """Approximate JWST/NIRISS F150W PSF, 5x oversampled, as a :class:`~pymc_tracers.psf.PixelPSF`.

    Returns
    -------
    pymc_tracers.psf.PixelPSF
        A 175 x 175 pixel image normalised to unit sum, centred on its middle pixel, with
        ``pixel_scale = 0.01312`` arcsec (the NIRISS detector scale of 0.0656 arcsec/pixel
        oversampled 5 times), covering about 2.3 arcsec. Its FWHM is about 0.050 arcsec.
        ``kernel(scale)`` resamples it (flux-conserving) to any other pixel scale in arcsec.

    Notes
    -----
    Provenance: computed with ``poppy`` alone (``scripts/make_niriss_psf.py``), not with the
    ``stpsf`` optical models. The pupil is an 18-segment hexagonal JWST-like primary (1.32 m
    segments, 7 mm gaps) with a 0.74 m secondary obscuration and three 0.10 m struts; the F150W
    band is a flat spectrum sampled at 9 wavelengths from 1.33 to 1.67 micron. The PSF is
    diffraction-limited: no wavefront error, distortion, detector charge diffusion/IPC or jitter,
    so the real PSF has a slightly lower peak and more light in its wings.

    It is meant for examples and tests. If ``stpsf`` and its data files are installed, use the
    real PSF instead::

        psf = PixelPSF.from_stpsf("NIRISS", "F150W", oversample=5)

    Examples
    --------
    >>> from pymc_tracers.data import niriss_f150w_psf
    >>> psf = niriss_f150w_psf()
    >>> psf.pixel_scale
    0.01312
    >>> psf.kernel(0.0656 / 3).shape  # resampled to 3x sub-pixels of the detector
    (105, 105)
    """
    from pymc_tracers.psf import PixelPSF

    return PixelPSF.from_fits(niriss_f150w_psf_path())
