"""Wavelength-dependent PSFs: a Moffat whose FWHM and beta follow a polynomial in wavelength
(MUSE-style seeing, ``FWHM(lambda)``)."""

from __future__ import annotations

import math

import astropy.units as u

from pymc_tracers.psf.models import MoffatPSF

__all__ = ["moffat_fwhm_at", "moffat_psf_at"]


def _wavelength_angstrom(value, name) -> float:
    if isinstance(value, u.Quantity):
        try:
            return float(value.to_value(u.AA, equivalencies=u.spectral()))
        except u.UnitConversionError:
            raise ValueError(f"{name} must be a wavelength; got {value!r}") from None
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive wavelength in Angstrom; got {value!r}")
    return number


def _per_angstrom(value, unit, name) -> float:
    if isinstance(value, u.Quantity):
        try:
            return float(value.to_value(unit))
        except u.UnitConversionError:
            raise ValueError(f"{name} must be in units of {unit}; got {value!r}") from None
    return float(value)


def moffat_fwhm_at(wavelength, *, fwhm_ref, wavelength_ref, slope=0.0, curvature=0.0):
    """FWHM of a wavelength-dependent PSF, MUSE-style: a polynomial in ``lambda - lambda_ref``.

    ``FWHM(lambda) = fwhm_ref + slope (lambda - lambda_ref) + curvature (lambda - lambda_ref)^2``

    Parameters
    ----------
    wavelength, wavelength_ref : float or astropy Quantity
        Wavelengths; plain numbers are Angstrom.
    fwhm_ref : float or PyTensor variable
        FWHM at ``wavelength_ref`` in arcsec (may be a fitted variable).
    slope : float or Quantity
        arcsec per Angstrom (MUSE WFM is typically about -3e-5 arcsec/Angstrom: the seeing
        improves to the red).
    curvature : float or Quantity
        arcsec per Angstrom^2.

    Returns
    -------
    float or tensor
        FWHM in arcsec.
    """
    d = _wavelength_angstrom(wavelength, "wavelength") - _wavelength_angstrom(
        wavelength_ref, "wavelength_ref"
    )
    slope = _per_angstrom(slope, u.arcsec / u.AA, "slope")
    curvature = _per_angstrom(curvature, u.arcsec / u.AA**2, "curvature")
    if isinstance(fwhm_ref, u.Quantity):
        fwhm_ref = float(fwhm_ref.to_value(u.arcsec))
    fwhm = fwhm_ref + slope * d + curvature * d * d
    if isinstance(fwhm, (int, float)) and not fwhm > 0:
        raise ValueError(
            f"the FWHM polynomial gives {fwhm:.4g} arcsec at {wavelength}; check slope/curvature"
        )
    return fwhm


def moffat_psf_at(
    wavelength,
    *,
    fwhm_ref,
    wavelength_ref,
    slope=0.0,
    curvature=0.0,
    beta=2.5,
    beta_slope=0.0,
    **kwargs,
) -> MoffatPSF:
    """A :class:`~pymc_tracers.MoffatPSF` at one wavelength from a FWHM(lambda) polynomial.

    ``FWHM`` from :func:`moffat_fwhm_at`; ``beta(lambda) = beta + beta_slope (lambda -
    lambda_ref)`` (``beta_slope`` per Angstrom). Other keywords (``radius``, ``max_fwhm``)
    go to MoffatPSF.

    Examples
    --------
    A MUSE-like seeing of 0.8 arcsec at 7000 Angstrom, improving to the red, at H-alpha of a
    z = 0.05 galaxy::

        psf = moffat_psf_at(6563 * 1.05, fwhm_ref=0.8, wavelength_ref=7000, slope=-3e-5)
    """
    fwhm = moffat_fwhm_at(
        wavelength,
        fwhm_ref=fwhm_ref,
        wavelength_ref=wavelength_ref,
        slope=slope,
        curvature=curvature,
    )
    d = _wavelength_angstrom(wavelength, "wavelength") - _wavelength_angstrom(
        wavelength_ref, "wavelength_ref"
    )
    return MoffatPSF(fwhm, beta + float(beta_slope) * d, **kwargs)
