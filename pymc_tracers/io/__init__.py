"""FITS in, FITS out: galaxy maps with their WCS, PSF files, binned maps and result files.

Modules: :mod:`~pymc_tracers.io.units` (BUNIT), :mod:`~pymc_tracers.io.wcs` (``SkyFrame``),
:mod:`~pymc_tracers.io.fits` (``read_maps``), :mod:`~pymc_tracers.io.checks` (``MapOptions``,
usable pixels), :mod:`~pymc_tracers.io.galaxy_data` (``GalaxyData``),
:mod:`~pymc_tracers.io.bins` (bin maps), :mod:`~pymc_tracers.io.writing` (result files). PSF
files and wavelength-dependent PSFs live on the PSF side (:mod:`pymc_tracers.psf.files`,
:mod:`pymc_tracers.psf.chromatic`) and are re-exported here.

Everything here uses astropy (``astropy.io.fits``, ``astropy.wcs``, ``astropy.units``,
``astropy.coordinates``, ``astropy.nddata.Cutout2D``, ``astropy.table``); nothing parses FITS by
hand.

Conventions
-----------
* The pixel grid is :class:`pymc_tracers.PixelGrid`: arcsec, ``x`` along columns (FITS axis 1),
  ``y`` along rows (FITS axis 2), the origin at the centre of the field (for the default
  ``center=(0, 0)``). Pixel ``(row i, column j)`` is at
  ``x = (j - (nx - 1) / 2) * pixel_scale``, ``y = (i - (ny - 1) / 2) * pixel_scale``. With
  ``imshow(origin="lower")`` +x points right and +y up.
* The grid axes are the *pixel* axes, not the sky's: when north is not up in the map, the
  grid is not rotated to north. Instead :class:`SkyFrame` records where north points in the
  pixel frame (``north_angle``, radians counter-clockwise from +x) and whether east lies
  counter-clockwise from north (``east_sign = +1``, the usual orientation of sky images,
  ``det(CD) < 0``) or clockwise (``-1``, a mirrored image).
* Position angles (PA) on the sky are measured from north through east, in degrees.
  The profiles' ``phi`` is the angle of the major axis in radians, counter-clockwise from
  +x in the pixel frame, so ``phi = north_angle + east_sign * PA``. For north up and east
  left (the common case) that is ``phi = pi/2 + PA``: PA = 0 (major axis north-south) gives
  ``phi = pi/2`` (along +y), PA = 90 deg (east-west) gives ``phi = pi`` (along x).
* Masks held by :class:`GalaxyData` follow the likelihoods' convention: ``True`` = use the
  pixel. Mask *extensions* in FITS files usually flag bad pixels (DQ arrays, MaNGA bitmasks,
  astropy's NDData): ``mask_means="bad"`` (the default) reads nonzero as "leave out".
* Bin maps hold one integer bin index per pixel, ``-1`` for pixels in no bin.
"""

from pymc_tracers.fitsutil import pixel_scale_from_wcs
from pymc_tracers.io.bins import bin_average_numpy, bin_ids, bin_values, validate_bin_map
from pymc_tracers.io.checks import MapOptions
from pymc_tracers.io.fits import read_maps
from pymc_tracers.io.galaxy_data import GalaxyData
from pymc_tracers.io.kinematic_maps import KinematicData, read_kinematic_maps
from pymc_tracers.io.units import BadDataWarning, UnitWarning, is_abundance, parse_unit
from pymc_tracers.io.wcs import SkyFrame, sky_frame
from pymc_tracers.io.writing import summary_table, write_maps, write_summary
from pymc_tracers.psf import read_psf
from pymc_tracers.psf.chromatic import moffat_fwhm_at, moffat_psf_at

__all__ = [
    "BadDataWarning",
    "GalaxyData",
    "KinematicData",
    "MapOptions",
    "SkyFrame",
    "UnitWarning",
    "bin_average_numpy",
    "bin_ids",
    "bin_values",
    "is_abundance",
    "moffat_fwhm_at",
    "moffat_psf_at",
    "parse_unit",
    "read_kinematic_maps",
    "pixel_scale_from_wcs",
    "read_maps",
    "read_psf",
    "sky_frame",
    "summary_table",
    "validate_bin_map",
    "write_maps",
    "write_summary",
]
