"""Point-spread functions: models, PSF images from FITS, and wavelength-dependent PSFs.

* :mod:`~pymc_tracers.psf.models`: :class:`PSF` and its kinds (Gaussian, Moffat, pixel image)
  as normalised, odd-sized kernels at any sampling;
* :mod:`~pymc_tracers.psf.files`: reading PSF images from FITS (stpsf extensions, pixel scale);
* :mod:`~pymc_tracers.psf.chromatic`: Moffat PSFs whose FWHM and beta follow a polynomial in
  wavelength (an IFU's PSF at each emission line).
"""

from pymc_tracers.psf.chromatic import moffat_fwhm_at, moffat_psf_at
from pymc_tracers.psf.files import read_psf_image
from pymc_tracers.psf.models import (
    PSF,
    GaussianPSF,
    MoffatPSF,
    PixelPSF,
    read_psf,
    resample_kernel,
    validate_kernel,
)

__all__ = [
    "PSF",
    "GaussianPSF",
    "MoffatPSF",
    "PixelPSF",
    "moffat_fwhm_at",
    "moffat_psf_at",
    "read_psf",
    "read_psf_image",
    "resample_kernel",
    "validate_kernel",
]
