"""FITS in, FITS out: galaxy maps with their WCS, PSF files, binned maps and result files.

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

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pymc_tracers.grid import PixelGrid
from pymc_tracers.psf import MoffatPSF, PixelPSF, resample_kernel

__all__ = [
    "BadDataWarning",
    "GalaxyData",
    "SkyFrame",
    "bin_average_numpy",
    "bin_ids",
    "bin_values",
    "is_abundance",
    "moffat_fwhm_at",
    "moffat_psf_at",
    "pixel_scale_from_wcs",
    "read_maps",
    "read_psf",
    "sky_frame",
    "summary_table",
    "validate_bin_map",
    "write_maps",
    "write_summary",
]

logger = logging.getLogger(__name__)

MAP_ROLES = ("tracer", "tracer_error", "image", "image_error", "mask", "bins")
_ERROR_TYPES = ("sigma", "variance", "ivar")
_ABUNDANCE = re.compile(r"metal|abund|o/h|fe/h|n/o|12\s*\+\s*log", re.IGNORECASE)


class BadDataWarning(UserWarning):
    """Infinite values (or other bad data) were found in an input map and masked."""


# ---------------------------------------------------------------------------------- units
def is_abundance(name) -> bool:
    """True when a tracer name reads like an abundance (metallicity, 12+log(O/H), [Fe/H]...)."""
    return bool(name) and bool(_ABUNDANCE.search(str(name)))


def _parse_unit(value, source: str):
    """An astropy unit from a BUNIT string (None when absent).

    ``dex`` and ``12+log(O/H)`` (any case) read as :data:`astropy.units.dex`; unparseable strings
    become an ``UnrecognizedUnit`` with a warning.
    """
    import astropy.units as u

    if value is None:
        return None
    if isinstance(value, u.UnitBase):
        return value
    text = str(value).strip()
    if text.lower() in ("dex", "12+log(o/h)", "12 + log(o/h)"):
        return u.dex
    for fmt in ("fits", None):
        try:
            return u.Unit(text, format=fmt) if fmt else u.Unit(text)
        except ValueError:
            continue
    warnings.warn(
        f"{source}: BUNIT {text!r} is not a unit astropy understands; kept as an unrecognised "
        "unit (pass the *_unit= argument to set it)",
        stacklevel=3,
    )
    return u.Unit(text, parse_strict="silent")


def _unit_string(unit) -> str:
    import astropy.units as u

    if unit is None:
        return ""
    unit = unit if isinstance(unit, u.UnitBase) else _parse_unit(unit, "unit")
    try:
        return unit.to_string("fits")
    except ValueError:
        return unit.to_string()


# ---------------------------------------------------------------------------------- WCS
def _celestial(wcs):
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
    import astropy.units as u
    from astropy.wcs.utils import proj_plane_pixel_scales

    w = _celestial(wcs) or wcs
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


@dataclass(frozen=True)
class SkyFrame:
    """How a map's pixel grid sits on the sky.

    Attributes
    ----------
    wcs : astropy.wcs.WCS
        The celestial WCS of the map (0-based pixel coordinates as astropy uses them).
    grid : PixelGrid
        The data grid in arcsec (x along columns, y along rows).
    north_angle : float
        Direction of north at the field centre in the pixel frame, radians counter-clockwise
        from +x (``pi/2`` when north is up).
    east_sign : int
        ``+1`` when east is 90 deg counter-clockwise from north in the pixel frame (the usual
        sky image, ``det(CD) < 0``), ``-1`` when the image is mirrored.
    """

    wcs: object
    grid: PixelGrid
    north_angle: float
    east_sign: int

    # ------------------------------------------------------------------ positions
    def to_grid(self, coord):
        """Sky position(s) -> ``(x, y)`` in arcsec in the grid's frame.

        Parameters
        ----------
        coord : astropy.coordinates.SkyCoord
            Scalar or array.

        Returns
        -------
        x, y : float or ndarray
            Arcsec, with the grid's conventions (x along columns, origin at ``grid.center``).
        """
        _require_skycoord(coord)
        px, py = self.wcs.world_to_pixel(coord)
        grid = self.grid
        x = (np.asarray(px) - (grid.nx - 1) / 2.0) * grid.pixel_scale + grid.center[0]
        y = (np.asarray(py) - (grid.ny - 1) / 2.0) * grid.pixel_scale + grid.center[1]
        return _scalar_or_array(x), _scalar_or_array(y)

    def to_sky(self, x, y):
        """Grid position(s) ``(x, y)`` in arcsec -> :class:`~astropy.coordinates.SkyCoord`."""
        grid = self.grid
        px = (np.asarray(x, dtype=float) - grid.center[0]) / grid.pixel_scale + (grid.nx - 1) / 2
        py = (np.asarray(y, dtype=float) - grid.center[1]) / grid.pixel_scale + (grid.ny - 1) / 2
        return self.wcs.pixel_to_world(px, py)

    @property
    def field_center(self):
        """Sky position of the centre of the field (:class:`~astropy.coordinates.SkyCoord`)."""
        return self.wcs.pixel_to_world((self.grid.nx - 1) / 2.0, (self.grid.ny - 1) / 2.0)

    # ------------------------------------------------------------------ angles
    def north_east(self, at=None) -> tuple[float, int]:
        """``(north_angle, east_sign)`` measured at a sky position (default: field centre).

        North drifts across wide fields (meridians converge towards the poles); measuring at
        the galaxy makes position angles exact there.
        """
        if at is None:
            return self.north_angle, self.east_sign
        _require_skycoord(at)
        return _north_east(self.wcs, at, self.grid.pixel_scale)

    def phi_from_pa(self, pa, *, at=None) -> float:
        """Sky position angle (east of north) -> the profiles' ``phi`` (radians).

        Parameters
        ----------
        pa : astropy Quantity/Angle or float
            Position angle from north through east. Plain numbers are **degrees** (as PAs are
            quoted in catalogues).
        at : SkyCoord, optional
            Where on the sky the angle is measured (the galaxy centre); default the field
            centre.

        Returns
        -------
        float
            ``phi = north_angle + east_sign * PA`` in radians, counter-clockwise from +x (the
            x axis along columns), wrapped to ``(-pi, pi]``. An ellipse is unchanged by
            ``phi + pi``; a kinematic PA keeps its direction.
        """
        north, sign = self.north_east(at)
        return _wrap_pi(north + sign * _angle_radians(pa))

    def pa_from_phi(self, phi, *, at=None):
        """Inverse of :meth:`phi_from_pa`: ``phi`` (radians) -> PA east of north in ``[0, 360)``
        degrees, as an :class:`~astropy.coordinates.Angle`."""
        from astropy.coordinates import Angle

        north, sign = self.north_east(at)
        pa = sign * (float(phi) - north)
        return Angle(math.degrees(pa) % 360.0, "deg")


def _wrap_pi(angle: float) -> float:
    wrapped = math.remainder(float(angle), 2.0 * math.pi)  # in [-pi, pi]
    return math.pi if wrapped == -math.pi else wrapped


def _angle_radians(value) -> float:
    import astropy.units as u

    if isinstance(value, u.Quantity):
        try:
            return float(value.to_value(u.rad))
        except u.UnitConversionError:
            raise ValueError(f"a position angle must be an angle; got {value!r}") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"a position angle must be a number of degrees; got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"a position angle must be finite; got {value!r}")
    return math.radians(number)


def _require_skycoord(coord):
    from astropy.coordinates import SkyCoord

    if not isinstance(coord, SkyCoord):
        raise TypeError(
            f"sky positions must be astropy SkyCoord objects; got {type(coord).__name__} "
            "(e.g. SkyCoord(ra=150.1, dec=2.2, unit='deg'))"
        )


def _scalar_or_array(value):
    value = np.asarray(value, dtype=float)
    return float(value) if value.ndim == 0 else value


def _north_east(wcs, coord, pixel_scale: float) -> tuple[float, int]:
    """North's angle (radians, from +x) and east's sense in the pixel frame at ``coord``."""
    import astropy.units as u

    step = 0.01 * pixel_scale * u.arcsec

    def direction(pa_deg):
        ahead = wcs.world_to_pixel(coord.directional_offset_by(pa_deg * u.deg, step))
        behind = wcs.world_to_pixel(coord.directional_offset_by(pa_deg * u.deg, -step))
        return np.array(ahead, dtype=float) - np.array(behind, dtype=float)

    north, east = direction(0.0), direction(90.0)
    cross = north[0] * east[1] - north[1] * east[0]
    return float(math.atan2(north[1], north[0])), (1 if cross > 0 else -1)


def sky_frame(
    wcs, shape, *, supersampling: int = 1, center=(0.0, 0.0), pixel_scale=None, source="WCS"
) -> SkyFrame:
    """Build the :class:`PixelGrid` of a map from its WCS, with the sky orientation.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The map's WCS (its celestial part is used).
    shape : tuple of int
        ``(ny, nx)`` of the map.
    supersampling : int
        Passed to :class:`PixelGrid`.
    center : tuple of float
        ``(x, y)`` in arcsec of the field centre in the grid frame (default the origin).
    pixel_scale : float, optional
        Arcsec. When given it must agree with the WCS (to 1e-3 relative).
    source : str
        Named in error messages.

    Raises
    ------
    ValueError
        No celestial WCS, non-square or skewed pixels, or a pixel scale that contradicts it.
    """
    celestial = _celestial(wcs)
    if celestial is None:
        raise ValueError(
            f"{source}: no celestial WCS (CTYPE RA---TAN/DEC--TAN...); pass pixel_scale=<arcsec>"
        )
    scale = pixel_scale_from_wcs(celestial, source=source)
    if pixel_scale is not None and not math.isclose(float(pixel_scale), scale, rel_tol=1e-3):
        raise ValueError(
            f"{source}: pixel_scale={pixel_scale} arcsec contradicts the WCS ({scale:.6g} arcsec);"
            " leave pixel_scale out to use the WCS"
        )
    if celestial.has_distortion:
        logger.info("%s: the WCS has distortion terms; the grid uses its linear part", source)
    grid = PixelGrid(tuple(shape), scale, supersampling, center)
    centre = celestial.pixel_to_world((grid.nx - 1) / 2.0, (grid.ny - 1) / 2.0)
    north, sign = _north_east(celestial, centre, scale)
    return SkyFrame(wcs=celestial, grid=grid, north_angle=north, east_sign=sign)


# ---------------------------------------------------------------------------------- reading
def _describe_hdus(hdus) -> str:
    parts = []
    for i, hdu in enumerate(hdus):
        shape = getattr(hdu, "shape", None) if hdu.is_image else None
        what = "x".join(str(n) for n in shape) if shape else ("empty" if hdu.is_image else "table")
        parts.append(f"{i} {hdu.name!r} ({what})")
    return "; ".join(parts)


def _hdu_index(hdus, ext):
    """Index of an HDU given by number or EXTNAME, or None when the file has no such HDU."""
    try:
        index = hdus.index_of(ext)
    except (KeyError, IndexError):
        return None
    return index if 0 <= index < len(hdus) else None


def _resolve(role: str, spec, path):
    """``(file, ext, plane)`` of a map given by extension, file, or tuple."""
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3):
            raise ValueError(
                f"{role}={spec!r}: give (file, extension) or (file, extension, plane index)"
            )
        return (Path(spec[0]), spec[1], spec[2] if len(spec) == 3 else None)
    if isinstance(spec, os.PathLike):
        return Path(spec), None, None
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if path is None:
            raise ValueError(f"{role}={spec!r} is an extension number but no file was given")
        return Path(path), int(spec), None
    if isinstance(spec, str):
        if path is None:
            return Path(spec), None, None
        return Path(path), spec, None
    raise ValueError(
        f"{role}={spec!r}: give an extension name or number (of the file passed first), "
        "a file path, or a (file, extension) tuple"
    )


def _read_hdu(role: str, spec, path):
    """Read one map: ``(array, header, source label)``."""
    from astropy.io import fits

    file, ext, plane = _resolve(role, spec, path)
    if not file.exists():
        raise FileNotFoundError(f"{role} map: file {str(file)!r} does not exist")
    with fits.open(file) as hdus:
        if ext is None:
            index = next((i for i, h in enumerate(hdus) if h.is_image and h.data is not None), None)
            if index is None:
                raise ValueError(f"{file.name}: no image HDU holds data ({_describe_hdus(hdus)})")
            if index != 0:
                logger.info("%s: primary HDU is empty; %s map read from HDU %d", file, role, index)
        else:
            index = _hdu_index(hdus, ext)
            if index is None:
                raise ValueError(
                    f"{file.name} has no extension {ext!r} for the {role} map; its HDUs: "
                    f"{_describe_hdus(hdus)}"
                )
        hdu = hdus[index]
        if not hdu.is_image or hdu.data is None:
            raise ValueError(
                f"{file.name}[{ext if ext is not None else index}] holds no image for the {role} "
                f"map; its HDUs: {_describe_hdus(hdus)}"
            )
        data = np.array(hdu.data)
        header = hdu.header.copy()
        label = f"{file.name}[{hdu.name if hdu.name and hdu.name != 'PRIMARY' else index}]"
    while data.ndim > 2 and data.shape[0] == 1 and plane is None:
        data = data[0]
    if plane is not None:
        if data.ndim != 3:
            raise ValueError(f"{label}: a plane index was given but the data are {data.ndim}-D")
        data = data[int(plane)]
        label = f"{label}[{plane}]"
    if data.ndim != 2:
        raise ValueError(
            f"{label} has shape {data.shape}; a map must be 2-D (for a cube, pick a plane: "
            f"{role}=(file, extension, index))"
        )
    data = data.astype(data.dtype.newbyteorder("="))
    return data, header, label


def _wcs_from_header(header, label):
    from astropy.wcs import WCS, FITSFixedWarning, InconsistentAxisTypesError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except (ValueError, KeyError, MemoryError, InconsistentAxisTypesError) as error:
            raise ValueError(f"{label}: cannot read its WCS ({error})") from None
    return _celestial(wcs)


def _same_grid(wcs_a, wcs_b, shape, scale) -> float:
    """Largest sky separation (in pixels) of the corners and centre under two WCSs."""
    ny, nx = shape
    xs = np.array([0.0, nx - 1, 0.0, nx - 1, (nx - 1) / 2])
    ys = np.array([0.0, 0.0, ny - 1, ny - 1, (ny - 1) / 2])
    a = wcs_a.pixel_to_world(xs, ys)
    b = wcs_b.pixel_to_world(xs, ys)
    return float(np.max(a.separation(b).arcsec) / scale)


def read_maps(
    path=None,
    *,
    tracer=None,
    tracer_error=None,
    image=None,
    image_error=None,
    mask=None,
    bins=None,
    tracer_name=None,
    tracer_unit=None,
    image_unit=None,
    check_dex: bool = True,
    error_type: str = "sigma",
    bad_errors: str = "raise",
    mask_means: str = "bad",
    mask_bits=None,
    snr_min=None,
    snr_of: str = "image",
    pixel_scale=None,
    supersampling: int = 1,
    center=None,
    cutout_size=None,
) -> GalaxyData:
    """Read a galaxy's maps from one multi-extension FITS file or several files.

    Each map is given as an extension name (``"OH"``) or number (``1``) of ``path``, a file
    (``Path("err.fits")``, or a string when ``path`` is omitted: first HDU with data), or a
    tuple ``(file, extension)`` / ``(file, extension, plane)`` (a plane of a cube).

    Parameters
    ----------
    path : str or path-like, optional
        The multi-extension file that extension names/numbers refer to.
    tracer, tracer_error : map spec, optional
        The tracer map (metallicity in dex, velocity in km/s, ...) and its 1-sigma error.
    image, image_error : map spec, optional
        The light image and its 1-sigma error.
    mask : map spec, optional
        A mask extension; see ``mask_means`` and ``mask_bits``.
    bins : map spec, optional
        Bin indices (Voronoi or segmentation bins), ``-1`` for pixels in no bin.
    tracer_name : str, optional
        Name of the tracer (default: the tracer extension's EXTNAME); an abundance name
        (metallicity, abundance, 12+log(O/H), [Fe/H]...) requires dex.
    tracer_unit, image_unit : str or astropy unit, optional
        Override ``BUNIT`` (for files without it or with a wrong one). Error maps take the unit
        of their map.
    check_dex : bool
        Refuse an abundance tracer whose unit is not dex (default). ``False`` skips the check.
    error_type : {"sigma", "variance", "ivar"}
        What the error maps hold; variances and inverse variances are turned into sigma
        (``ivar = 0`` means "no data" and is masked).
    bad_errors : {"raise", "mask"}
        Error values that are 0, negative or infinite in pixels that would otherwise be
        fitted raise a ValueError (default) or, with ``"mask"``, are masked and reported.
    mask_means : {"bad", "good"}
        ``"bad"``: nonzero mask values flag pixels to leave out (DQ arrays, bitmasks);
        ``"good"``: nonzero marks pixels to use.
    mask_bits : int, optional
        With ``mask_means="bad"``, only these bits flag a pixel (``mask & mask_bits != 0``).
    snr_min : float, optional
        Leave out pixels whose signal-to-noise is below this (or undefined).
    snr_of : {"image", "tracer"}
        The S/N of the light image (``image / image_error``, the default: line-flux S/N for a
        metallicity map) or of the tracer itself (for linear tracers only).
    pixel_scale : float, optional
        Arcsec per pixel, required when the files have no celestial WCS; otherwise checked
        against it.
    supersampling : int
        Supersampling of the returned :class:`PixelGrid`.
    center : SkyCoord, optional
        The galaxy centre; stored, and used for ``cutout_size``.
    cutout_size : astropy Quantity (angle) or int or (ny, nx), optional
        Cut all maps to this size around ``center`` (``astropy.nddata.Cutout2D``; the WCS is
        cut with them).

    Returns
    -------
    GalaxyData

    Raises
    ------
    FileNotFoundError
        A file does not exist.
    ValueError
        Unknown extension, empty HDU, maps of different shapes or on different pixel grids,
        no WCS and no ``pixel_scale``, non-square pixels, a non-dex abundance, bad error
        values, invalid bin maps. Each message says which map and how to fix it.

    Notes
    -----
    ``inf`` in a map is bad data: each is counted, reported with a :class:`BadDataWarning`
    (which map, how many), replaced by NaN and masked. NaN pixels are masked.
    """
    specs = {
        "tracer": tracer,
        "tracer_error": tracer_error,
        "image": image,
        "image_error": image_error,
        "mask": mask,
        "bins": bins,
    }
    if tracer is None and image is None:
        hint = ""
        if path is not None and Path(path).exists():
            from astropy.io import fits

            with fits.open(path) as hdus:
                hint = f"; HDUs of {Path(path).name}: {_describe_hdus(hdus)}"
        raise ValueError(
            "name the maps to read, e.g. read_maps(path, tracer='OH', tracer_error='OH_ERR', "
            f"image='HA_FLUX'){hint}"
        )
    arrays, headers, sources = {}, {}, {}
    for role, spec in specs.items():
        if spec is None:
            continue
        arrays[role], headers[role], sources[role] = _read_hdu(role, spec, path)

    shapes = {role: a.shape for role, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            "the maps have different shapes: "
            + ", ".join(f"{role} {sources[role]} {shape}" for role, shape in shapes.items())
            + "; reproject them onto one pixel grid first"
        )
    shape = next(iter(shapes.values()))

    wcs, wcs_source = None, None
    for role in ("tracer", "image", "tracer_error", "image_error", "mask", "bins"):
        if role not in headers:
            continue
        this = _wcs_from_header(headers[role], sources[role])
        if this is None:
            continue
        if wcs is None:
            wcs, wcs_source = this, sources[role]
            continue
        scale = pixel_scale_from_wcs(wcs, source=wcs_source)
        offset = _same_grid(wcs, this, shape, scale)
        if offset > 0.01:
            raise ValueError(
                f"{sources[role]} and {wcs_source} have different WCSs (positions differ by up "
                f"to {offset:.3g} pixels); reproject them onto one grid first"
            )

    tracer_header = headers.get("tracer")
    if tracer_name is None and tracer_header is not None:
        tracer_name = tracer_header.get("EXTNAME") or tracer_header.get("BTYPE")
    units = {}
    for role, override in (("tracer", tracer_unit), ("image", image_unit)):
        if role in headers or override is not None:
            raw = override if override is not None else headers[role].get("BUNIT")
            units[role] = _parse_unit(raw, sources.get(role, role))
    import astropy.units as u

    for role in ("tracer_error", "image_error"):
        base = role.removesuffix("_error")
        if role in arrays and error_type == "sigma" and base in units and units[base] is not None:
            own = None
            if (base == "tracer" and tracer_unit is None) or (
                base == "image" and image_unit is None
            ):
                own = _parse_unit(headers[role].get("BUNIT"), sources[role])
            if own is not None and own != units[base]:
                try:
                    factor = float((1.0 * own).to_value(units[base]))
                except (u.UnitsError, TypeError, ValueError):
                    raise ValueError(
                        f"{sources[role]} has BUNIT {own} but its map {sources.get(base, base)} "
                        f"has {units[base]}; they must match (or pass {base}_unit=)"
                    ) from None
                arrays[role] = arrays[role] * factor

    return GalaxyData.from_arrays(
        tracer=arrays.get("tracer"),
        tracer_error=arrays.get("tracer_error"),
        image=arrays.get("image"),
        image_error=arrays.get("image_error"),
        mask=arrays.get("mask"),
        bins=arrays.get("bins"),
        wcs=wcs,
        pixel_scale=pixel_scale,
        supersampling=supersampling,
        tracer_name=tracer_name,
        units=units,
        check_dex=check_dex,
        error_type=error_type,
        bad_errors=bad_errors,
        mask_means=mask_means,
        mask_bits=mask_bits,
        snr_min=snr_min,
        snr_of=snr_of,
        center=center,
        cutout_size=cutout_size,
        sources=sources,
    )


# ---------------------------------------------------------------------------------- GalaxyData
@dataclass(eq=False)
class GalaxyData:
    """A galaxy's maps on one pixel grid, validated and masked, with its sky frame.

    Build it with :func:`read_maps` (FITS files) or :meth:`from_arrays` (numpy arrays).

    Attributes
    ----------
    grid : PixelGrid
        Arcsec; x along columns, the origin at the field centre.
    tracer_map, tracer_error : ndarray or None
        Tracer values (unit ``units["tracer"]``: dex, km/s, ...) and 1-sigma errors; ``inf``
        input values are NaN here.
    tracer_mask : ndarray of bool or None
        ``True`` = use the pixel (the likelihoods' convention): finite value and error, not
        flagged by the mask extension, above the S/N cut, in a bin when a bin map is given.
    image, image_error, image_mask : ndarray or None
        The light image, its error and its mask, likewise.
    bin_map : ndarray of int or None
        Bin index of each pixel, ``-1`` for none.
    frame : SkyFrame or None
        WCS, north angle and east sense; ``None`` for maps without a celestial WCS.
    tracer_name : str
    units : dict
        ``{"tracer": unit, "image": unit}`` (astropy units; ``None`` when unknown).
    report : dict
        Per map: counts of ``nan``, ``inf``, ``flagged`` (mask extension), ``below_snr`` and
        ``used`` pixels.
    sources : dict
        Where each map came from (``file[EXT]``).
    center : SkyCoord or None
        The galaxy centre, when given.
    """

    grid: PixelGrid
    tracer_map: np.ndarray | None = None
    tracer_error: np.ndarray | None = None
    tracer_mask: np.ndarray | None = None
    image: np.ndarray | None = None
    image_error: np.ndarray | None = None
    image_mask: np.ndarray | None = None
    bin_map: np.ndarray | None = None
    frame: SkyFrame | None = None
    tracer_name: str = "tracer"
    units: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    center: object = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        *,
        tracer=None,
        tracer_error=None,
        image=None,
        image_error=None,
        mask=None,
        bins=None,
        wcs=None,
        pixel_scale=None,
        supersampling: int = 1,
        tracer_name=None,
        units=None,
        check_dex: bool = True,
        error_type: str = "sigma",
        bad_errors: str = "raise",
        mask_means: str = "bad",
        mask_bits=None,
        snr_min=None,
        snr_of: str = "image",
        center=None,
        cutout_size=None,
        sources=None,
    ) -> GalaxyData:
        """Validate maps given as arrays (the arguments of :func:`read_maps`).

        ``wcs`` is an :class:`astropy.wcs.WCS` (or ``None`` with ``pixel_scale`` in arcsec);
        ``units`` maps ``"tracer"``/``"image"`` to units (strings or astropy units). ``mask``
        follows ``mask_means`` (default: nonzero = bad pixel).
        """
        if error_type not in _ERROR_TYPES:
            raise ValueError(f"error_type must be one of {_ERROR_TYPES}; got {error_type!r}")
        if bad_errors not in ("raise", "mask"):
            raise ValueError(f"bad_errors must be 'raise' or 'mask'; got {bad_errors!r}")
        if mask_means not in ("bad", "good"):
            raise ValueError(f"mask_means must be 'bad' or 'good'; got {mask_means!r}")
        if snr_of not in ("image", "tracer"):
            raise ValueError(f"snr_of must be 'image' or 'tracer'; got {snr_of!r}")
        sources = dict(sources or {})
        raw = {
            "tracer": tracer,
            "tracer_error": tracer_error,
            "image": image,
            "image_error": image_error,
            "mask": mask,
            "bins": bins,
        }
        raw = {role: np.asarray(a) for role, a in raw.items() if a is not None}
        if "tracer" not in raw and "image" not in raw:
            raise ValueError("give at least a tracer map or a light image")
        for role in raw:
            sources.setdefault(role, f"{role} array")
        shapes = {role: a.shape for role, a in raw.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"the maps have different shapes: {shapes}")
        shape = next(iter(shapes.values()))
        if len(shape) != 2:
            raise ValueError(f"maps must be 2-D; got shape {shape}")

        # ---------------------------------------------------------- mask -> bool "good"
        if "mask" in raw:
            flags = raw["mask"]
            if flags.dtype.kind == "f":
                if not np.all(np.isfinite(flags)):
                    raise ValueError(f"{sources['mask']}: the mask contains NaN/inf values")
                if np.any(flags != np.round(flags)):
                    raise ValueError(f"{sources['mask']}: mask values must be integers or bools")
                flags = flags.astype(np.int64)
            if mask_bits is not None:
                if mask_means != "bad":
                    raise ValueError("mask_bits needs mask_means='bad' (the bits flag bad pixels)")
                flagged = (flags.astype(np.int64) & int(mask_bits)) != 0
            else:
                flagged = flags != 0 if mask_means == "bad" else flags == 0
            raw["mask"] = ~np.asarray(flagged, dtype=bool)
        if "bins" in raw:
            raw["bins"] = validate_bin_map(raw["bins"], source=sources["bins"])

        # ---------------------------------------------------------- grid, frame, cut-out
        if wcs is not None and _celestial(wcs) is not None:
            frame = sky_frame(wcs, shape, pixel_scale=pixel_scale, source=_first(sources))
        elif pixel_scale is not None:
            frame = None
        else:
            where = ", ".join(sorted(set(sources.values())))
            raise ValueError(
                f"{where}: no celestial WCS in the header and no pixel scale given; pass "
                "pixel_scale=<arcsec per pixel>"
            )
        if cutout_size is not None:
            if frame is None:
                raise ValueError("a cut-out needs a WCS (or cut the arrays yourself)")
            if center is None:
                raise ValueError("cutout_size needs center=SkyCoord(...) of the galaxy")
            raw, frame = _cutout(raw, frame, center, cutout_size)
            shape = frame.grid.shape
        if frame is not None:
            grid = PixelGrid(shape, frame.grid.pixel_scale, supersampling)
            frame = SkyFrame(frame.wcs, grid, frame.north_angle, frame.east_sign)
        else:
            grid = PixelGrid(shape, pixel_scale, supersampling)
        if center is not None:
            _require_skycoord(center)

        # ---------------------------------------------------------- units
        units = {k: _parse_unit(v, k) for k, v in dict(units or {}).items()}
        if tracer_name is None:
            tracer_name = "tracer"
        tracer_name = str(tracer_name).strip()
        if "tracer" in raw and check_dex and is_abundance(tracer_name):
            import astropy.units as u

            unit = units.get("tracer")
            if unit != u.dex:
                raise ValueError(
                    f"the tracer {tracer_name!r} ({sources['tracer']}) looks like an abundance, "
                    f"so its map must be in dex (12+log(O/H)), but its unit is "
                    f"{'missing (no BUNIT)' if unit is None else repr(str(unit))}. If the values "
                    "are dex, pass tracer_unit='dex'; if the name misleads, pass check_dex=False"
                )

        # ---------------------------------------------------------- values and errors
        report = {}
        values = {}
        for role in ("tracer", "tracer_error", "image", "image_error"):
            if role not in raw:
                continue
            a = np.array(raw[role], dtype=float)
            nan, inf = np.isnan(a), np.isinf(a)
            report[role] = {"nan": int(nan.sum()), "inf": int(inf.sum())}
            if role.endswith("_error"):
                a = _to_sigma(a, error_type, sources[role], report[role])
            elif inf.any():
                first = tuple(int(i) for i in np.argwhere(inf)[0])
                warnings.warn(
                    f"{sources[role]}: {int(inf.sum())} infinite value(s) in the {role} map "
                    f"(first at row, column {first}); they are bad data and are masked",
                    BadDataWarning,
                    stacklevel=2,
                )
                a[inf] = np.nan
            values[role] = a

        good = raw.get("mask", np.ones(shape, dtype=bool))
        snr_ok = np.ones(shape, dtype=bool)
        if snr_min is not None:
            snr_ok = _snr_cut(values, snr_min, snr_of, units, sources)

        masks = {}
        for base in ("tracer", "image"):
            if base not in values:
                continue
            data = values[base]
            candidate = good & snr_ok & np.isfinite(data)
            if base == "tracer" and "bins" in raw:
                candidate &= raw["bins"] >= 0
            error = values.get(f"{base}_error")
            if error is not None:
                bad = candidate & (np.isinf(error) | (error <= 0))
                if bad.any():
                    message = _bad_error_message(
                        error, bad, f"{base}_error", sources[f"{base}_error"]
                    )
                    if bad_errors == "raise":
                        raise ValueError(
                            message + "; errors must be finite and > 0. Mask those pixels, set "
                            "them to NaN, or pass bad_errors='mask' to leave them out"
                        )
                    warnings.warn(message + "; masked", BadDataWarning, stacklevel=2)
                    report[f"{base}_error"]["masked_bad_error"] = int(bad.sum())
                candidate &= np.isfinite(error) & (error > 0)
            masks[base] = candidate
            report[base].update(
                flagged=int((~good).sum()),
                below_snr=int((~snr_ok).sum()),
                used=int(candidate.sum()),
            )
            if not candidate.any():
                raise ValueError(
                    f"{sources[base]}: no usable pixels in the {base} map (NaN/inf: "
                    f"{report[base]['nan'] + report[base]['inf']}, flagged by the mask: "
                    f"{report[base]['flagged']}, below the S/N cut: {report[base]['below_snr']})"
                )
        if "bins" in raw:
            ids = bin_ids(raw["bins"])
            used_ids = bin_ids(np.where(masks.get("tracer", raw["bins"] >= 0), raw["bins"], -1))
            report["bins"] = {"n_bins": int(ids.size), "empty": int(ids.size - used_ids.size)}
        return cls(
            grid=grid,
            tracer_map=values.get("tracer"),
            tracer_error=values.get("tracer_error"),
            tracer_mask=masks.get("tracer"),
            image=values.get("image"),
            image_error=values.get("image_error"),
            image_mask=masks.get("image"),
            bin_map=raw.get("bins"),
            frame=frame,
            tracer_name=tracer_name,
            units=units,
            report=report,
            sources=sources,
            center=center,
        )

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def pixel_scale(self) -> float:
        """Arcsec per pixel."""
        return self.grid.pixel_scale

    @property
    def wcs(self):
        """The celestial WCS (``None`` without one)."""
        return None if self.frame is None else self.frame.wcs

    def _frame(self) -> SkyFrame:
        if self.frame is None:
            raise ValueError(
                "these maps have no celestial WCS, so sky positions and position angles cannot "
                "be converted; give centres as (x0, y0) arcsec and phi in radians"
            )
        return self.frame

    def to_grid(self, coord):
        """Sky position(s) -> ``(x, y)`` arcsec in :attr:`grid` (see :meth:`SkyFrame.to_grid`)."""
        return self._frame().to_grid(coord)

    def to_sky(self, x, y):
        """Grid ``(x, y)`` arcsec -> SkyCoord."""
        return self._frame().to_sky(x, y)

    @property
    def center_offset(self) -> tuple[float, float]:
        """``(x0, y0)`` in arcsec of :attr:`center` in the grid frame."""
        if self.center is None:
            raise ValueError("no galaxy centre was given (center=SkyCoord(...))")
        return self.to_grid(self.center)

    def phi_from_pa(self, pa) -> float:
        """Position angle east of north (degrees or an angle Quantity) -> the profiles' ``phi``
        in radians (counter-clockwise from +x, x along columns), measured at :attr:`center`
        when given. See :meth:`SkyFrame.phi_from_pa`."""
        return self._frame().phi_from_pa(pa, at=self.center)

    def pa_from_phi(self, phi):
        """The profiles' ``phi`` (radians) -> position angle east of north (``Angle``)."""
        return self._frame().pa_from_phi(phi, at=self.center)

    def cutout(self, size, *, center=None) -> GalaxyData:
        """A new GalaxyData cut to ``size`` around ``center`` (default :attr:`center`).

        ``size`` is an angle Quantity, a number of pixels or ``(ny, nx)``; pixels outside the
        input are NaN (masked) and ``-1`` in the bin map. The WCS is cut with the maps.
        """
        center = self.center if center is None else center
        if center is None:
            raise ValueError("a cut-out needs center=SkyCoord(...) (or GalaxyData.center)")
        arrays = {}
        for role, name in (
            ("tracer", "tracer_map"),
            ("tracer_error", "tracer_error"),
            ("image", "image"),
            ("image_error", "image_error"),
            ("bins", "bin_map"),
        ):
            if getattr(self, name) is not None:
                arrays[role] = getattr(self, name)
        masks = {"tracer": self.tracer_mask, "image": self.image_mask}
        arrays.update({f"_{k}_mask": v for k, v in masks.items() if v is not None})
        cut, frame = _cutout(arrays, self._frame(), center, size)
        grid = PixelGrid(frame.grid.shape, frame.grid.pixel_scale, self.grid.supersampling)
        frame = SkyFrame(frame.wcs, grid, frame.north_angle, frame.east_sign)
        report = {k: dict(v) for k, v in self.report.items()}
        for base in ("tracer", "image"):
            if f"_{base}_mask" in cut:
                report[base]["used"] = int(cut[f"_{base}_mask"].sum())
        return GalaxyData(
            grid=grid,
            tracer_map=cut.get("tracer"),
            tracer_error=cut.get("tracer_error"),
            tracer_mask=cut.get("_tracer_mask"),
            image=cut.get("image"),
            image_error=cut.get("image_error"),
            image_mask=cut.get("_image_mask"),
            bin_map=cut.get("bins"),
            frame=frame,
            tracer_name=self.tracer_name,
            units=dict(self.units),
            report=report,
            sources=dict(self.sources),
            center=center,
        )

    # ------------------------------------------------------------------ for likelihoods
    def tracer_data(self) -> dict:
        """``dict(data=..., sigma=..., mask=...)`` for :func:`pymc_tracers.tracer_likelihood`."""
        if self.tracer_map is None:
            raise ValueError("no tracer map was read")
        return {"data": self.tracer_map, "sigma": self.tracer_error, "mask": self.tracer_mask}

    def image_data(self) -> dict:
        """``dict(data=..., sigma=..., mask=...)`` for :func:`pymc_tracers.image_likelihood`."""
        if self.image is None:
            raise ValueError("no light image was read")
        return {"data": self.image, "sigma": self.image_error, "mask": self.image_mask}

    def summary(self) -> str:
        """A few lines: grid, orientation, units and the bad-data report."""
        lines = [
            (
                f"{self.tracer_name}: {self.shape[0]} x {self.shape[1]} pixels of "
                f"{self.pixel_scale:.5g} arcsec"
            )
        ]
        if self.frame is not None:
            lines.append(
                f"north at {math.degrees(self.frame.north_angle):.2f} deg from +x (columns), "
                f"east {'counter-clockwise' if self.frame.east_sign > 0 else 'clockwise'} "
                "from north"
            )
        for role, counts in self.report.items():
            text = ", ".join(f"{k} {v}" for k, v in counts.items())
            lines.append(f"{role} ({self.sources.get(role, role)}): {text}")
        return "\n".join(lines)


def _first(sources: dict) -> str:
    for role in ("tracer", "image"):
        if role in sources:
            return sources[role]
    return next(iter(sources.values()), "maps")


def _to_sigma(a, error_type, source, report):
    """Turn an error map into 1-sigma values (NaN kept; ivar = 0 -> NaN, "no data")."""
    if error_type == "sigma":
        return a
    negative = a < 0
    if negative.any():
        raise ValueError(
            f"{source}: {int(negative.sum())} negative {error_type} values; a {error_type} "
            "must be >= 0"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        if error_type == "variance":
            return np.sqrt(a)
        no_data = a == 0
        report["ivar_zero"] = int(no_data.sum())
        sigma = 1.0 / np.sqrt(a)
        sigma[no_data] = np.nan
        return sigma


def _bad_error_message(error, bad, role, source) -> str:
    zero = int((bad & (error == 0)).sum())
    negative = int((bad & (error < 0)).sum())
    inf = int((bad & np.isinf(error)).sum())
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    parts = [f"{n} {what}" for n, what in ((zero, "zero"), (negative, "negative"), (inf, "inf"))]
    return (
        f"{source}: the {role} map has {', '.join(p for p in parts if not p.startswith('0 '))} "
        f"value(s) in pixels that would be fitted (first at row, column {first})"
    )


def _snr_cut(values, snr_min, snr_of, units, sources):
    import astropy.units as u

    snr_min = float(snr_min)
    if not math.isfinite(snr_min):
        raise ValueError(f"snr_min must be a finite number; got {snr_min!r}")
    if snr_of not in values or f"{snr_of}_error" not in values:
        raise ValueError(
            f"snr_min with snr_of={snr_of!r} needs both the {snr_of} map and its error "
            f"({snr_of}_error=...)"
        )
    if snr_of == "tracer" and units.get("tracer") == u.dex:
        raise ValueError(
            "a S/N of a dex quantity is meaningless; cut on the light S/N instead "
            "(snr_of='image', with image= and image_error=)"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.abs(values[snr_of]) / values[f"{snr_of}_error"]
    return np.isfinite(snr) & (snr >= snr_min)


def _cutout(arrays: dict, frame: SkyFrame, center, size):
    """Cut every array to the same Cutout2D footprint; returns (arrays, new frame)."""
    import astropy.units as u
    from astropy.nddata import Cutout2D, NoOverlapError

    if isinstance(size, u.Quantity):
        size = size.to(u.arcsec)
    try:
        cut = Cutout2D(np.zeros(frame.grid.shape), center, size, wcs=frame.wcs, mode="partial")
    except NoOverlapError:
        raise ValueError(f"the cut-out around {center} does not overlap the maps") from None
    out = {}
    for role, a in arrays.items():
        if role == "bins":
            fill, dtype = -1, np.int64
        elif a.dtype == bool:
            fill, dtype = False, bool
        else:
            fill, dtype = np.nan, float
        new = np.full(cut.shape, fill, dtype=dtype)
        new[cut.slices_cutout] = a[cut.slices_original]
        out[role] = new
    new_frame = sky_frame(cut.wcs, cut.shape, center=frame.grid.center)
    return out, new_frame


# ---------------------------------------------------------------------------------- bins
def validate_bin_map(bin_map, *, shape=None, source: str = "bin map") -> np.ndarray:
    """Check a bin-index map and return it as ``int64``.

    Parameters
    ----------
    bin_map : array_like, 2-D
        One bin index (>= 0) per pixel, ``-1`` for pixels in no bin. Float arrays are accepted
        when every value is an integer (FITS files often store them as floats).
    shape : tuple, optional
        Required shape.

    Raises
    ------
    ValueError
        NaN/inf, non-integer values, indices below -1, no bins at all, or a wrong shape.
    """
    a = np.asarray(bin_map)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{source} has shape {a.shape}; the maps have shape {tuple(shape)}")
    if a.dtype == bool or a.dtype.kind not in "iuf":
        raise ValueError(f"{source} must hold integer bin indices; got dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"{source} has {int((~np.isfinite(a)).sum())} NaN/inf values; use -1 for pixels "
                "in no bin"
            )
        if np.any(a != np.round(a)):
            raise ValueError(f"{source} has non-integer values; bin indices must be integers")
    a = a.astype(np.int64)
    if np.any(a < -1):
        raise ValueError(
            f"{source} has indices below -1 (min {int(a.min())}); use -1 for pixels in no bin"
        )
    if not np.any(a >= 0):
        raise ValueError(f"{source} has no bins: every pixel is -1")
    return a


def bin_ids(bin_map) -> np.ndarray:
    """The sorted bin indices (>= 0) present in a bin map: the order of per-bin arrays."""
    a = np.asarray(bin_map)
    return np.unique(a[a >= 0])


def bin_average_numpy(weighted, light, bin_map) -> np.ndarray:
    """Light-weighted tracer of each bin: ``sum_bin(K * I Z) / sum_bin(K * I)``.

    The numpy reference for binned likelihoods: the model value of a bin is the ratio of the
    *sums* over its pixels, not the mean of the pixel ratios.

    Parameters
    ----------
    weighted : ndarray, shape (..., ny, nx)
        The PSF-convolved, pixel-integrated ``I * Z`` (``I * 10**Z`` for log averaging).
    light : ndarray, shape (..., ny, nx)
        The PSF-convolved, pixel-integrated light ``I``.
    bin_map : ndarray of int, shape (ny, nx)
        Bin index per pixel, ``-1`` for none.

    Returns
    -------
    ndarray, shape (..., n_bins)
        One value per bin, in the order of :func:`bin_ids`.
    """
    weighted = np.asarray(weighted, dtype=float)
    light = np.asarray(light, dtype=float)
    bins = validate_bin_map(bin_map)
    if weighted.shape != light.shape or weighted.shape[-2:] != bins.shape:
        raise ValueError(
            f"shapes differ: weighted {weighted.shape}, light {light.shape}, bins {bins.shape}"
        )
    ids = bin_ids(bins)
    inside = bins >= 0
    index = np.searchsorted(ids, bins[inside])
    lead = weighted.shape[:-2]
    w = weighted.reshape((-1, bins.size))[:, inside.ravel()]
    lum = light.reshape((-1, bins.size))[:, inside.ravel()]
    top = np.stack([np.bincount(index, weights=row, minlength=ids.size) for row in w])
    bottom = np.stack([np.bincount(index, weights=row, minlength=ids.size) for row in lum])
    if np.any(bottom == 0):
        empty = ids[np.any(bottom == 0, axis=0)]
        raise ValueError(f"bins {empty.tolist()[:10]} hold no light; the ratio is undefined")
    return (top / bottom).reshape((*lead, ids.size))


def bin_values(values, bin_map, *, mask=None, rtol: float = 1e-6, source: str = "map"):
    """Per-bin values of a binned map (each pixel holding its bin's value).

    Parameters
    ----------
    values : ndarray, shape (ny, nx)
        A binned data or error map.
    bin_map : ndarray of int
        Bin index per pixel (``-1``: none).
    mask : ndarray of bool, optional
        ``True`` = use the pixel; unused pixels (and NaNs) are ignored.
    rtol : float
        Pixels of one bin must agree to this relative tolerance.

    Returns
    -------
    ids, per_bin : ndarray
        The bin indices (as :func:`bin_ids`) and one value per bin; NaN for bins with no usable
        pixel.

    Raises
    ------
    ValueError
        When the pixels of a bin disagree (the map is not binned by this bin map).
    """
    values = np.asarray(values, dtype=float)
    bins = validate_bin_map(bin_map, shape=values.shape)
    ids = bin_ids(bins)
    use = np.isfinite(values) & (bins >= 0)
    if mask is not None:
        use &= np.asarray(mask, dtype=bool)
    index = np.searchsorted(ids, bins[use])
    v = values[use]
    count = np.bincount(index, minlength=ids.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(index, weights=v, minlength=ids.size) / count
    spread = np.zeros(ids.size)
    np.maximum.at(spread, index, np.abs(v - mean[index]))
    scale = np.maximum(np.abs(mean), np.finfo(float).tiny)
    bad = count > 0
    bad &= spread > rtol * scale
    if bad.any():
        raise ValueError(
            f"{source}: the pixels of {int(bad.sum())} bin(s) (e.g. bin {int(ids[bad][0])}) hold "
            "different values; the map is not binned by this bin map"
        )
    return ids, np.where(count > 0, mean, np.nan)


# ---------------------------------------------------------------------------------- PSFs
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
    from astropy.wcs import WCS, FITSFixedWarning

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


def read_psf(
    path,
    *,
    ext=None,
    pixel_scale=None,
    oversampled: bool = True,
    distorted: bool = False,
) -> PixelPSF:
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
    PixelPSF

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; no image where expected (the message lists the HDUs); the asked-for
        sampling is not in the file; no pixel scale; non-square or skewed pixels.

    Notes
    -----
    An even-sized PSF (stpsf writes them centred on the corner between the four middle
    pixels) is re-centred onto an odd grid, flux-conserving, with
    :func:`pymc_tracers.psf.resample_kernel`; the log (``pymc_tracers.io``, INFO) says so.
    """
    from astropy.io import fits

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"PSF file {str(path)!r} does not exist")
    with fits.open(path) as hdus:
        listing = _describe_hdus(hdus)
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
        else _positive(pixel_scale, "pixel_scale")
    )
    if data.shape[0] != data.shape[1]:
        raise ValueError(f"{label}: the PSF image must be square; got shape {data.shape}")
    if data.shape[0] % 2 == 0:
        n = data.shape[0]
        data = resample_kernel(data, scale, scale, allow_even=True)
        logger.info(
            "%s: even-sized PSF (%d x %d) re-centred onto an odd %d x %d grid (flux conserved)",
            label,
            n,
            n,
            data.shape[0],
            data.shape[1],
        )
    return PixelPSF(data, scale)


def _positive(value, name) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number in arcsec; got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive, finite number in arcsec; got {value!r}")
    return number


def _select_psf_hdu(hdus, ext, oversampled, distorted, name, listing) -> int:
    def has_image(h):
        return h.is_image and h.data is not None and h.data.size > 0

    if ext is not None:
        index = _hdu_index(hdus, ext)
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


def _wavelength_angstrom(value, name) -> float:
    import astropy.units as u

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
    import astropy.units as u

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
    import astropy.units as u

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


# ---------------------------------------------------------------------------------- writing
def _atomic_write(path: Path, overwrite: bool, write) -> Path:
    """Write through a temporary file in the same folder, then move it into place."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _wcs_header(wcs):
    from astropy.io import fits
    from astropy.wcs import WCS

    if wcs is None:
        return fits.Header()
    if isinstance(wcs, fits.Header):
        wcs = _wcs_from_header(wcs, "header")
        if wcs is None:
            raise ValueError("the header given as wcs= has no celestial WCS")
    if not isinstance(wcs, WCS):
        raise TypeError(f"wcs must be an astropy WCS or FITS header; got {type(wcs).__name__}")
    return wcs.to_header(relax=True)


def write_maps(
    path,
    maps,
    *,
    wcs=None,
    name=None,
    unit=None,
    overwrite: bool = False,
    meta: dict | None = None,
) -> Path:
    """Write model, data, residual and normalised-residual maps as FITS with the input WCS.

    Parameters
    ----------
    path : str or path-like
        Output file (written to a temporary file first, then moved into place).
    maps : dict or object with ``.maps(name)``
        Arrays of shape (ny, nx): ``model`` (required), and any of ``data``, ``sigma``,
        ``used`` (bool, True = fitted pixel), ``residual``. A result object's ``maps(name)``
        dict is accepted too.
    wcs : astropy.wcs.WCS or astropy.io.fits.Header, optional
        The input maps' WCS (e.g. ``GalaxyData.wcs``); copied into every extension.
    name : str, optional
        Tracer (likelihood) name, passed to ``maps.maps(name)`` and stored as ``TRACER``.
    unit : str or astropy unit, optional
        Unit of data/model/sigma/residual (``BUNIT``); the normalised residual is unitless.
    overwrite : bool
        Replace an existing file.
    meta : dict, optional
        Extra primary-header keywords.

    Returns
    -------
    Path
        Extensions: ``MODEL``, then when available ``DATA``, ``SIGMA``, ``RESIDUAL``
        (data - model in used pixels, NaN elsewhere), ``NORM_RESIDUAL`` (residual / sigma)
        and ``USED`` (uint8).
    """
    from astropy.io import fits

    if hasattr(maps, "maps") and callable(maps.maps):
        maps = maps.maps(name)
    if not isinstance(maps, dict) or "model" not in maps:
        raise ValueError("maps must be a dict with at least a 'model' array (or a result object)")
    model = np.asarray(maps["model"], dtype=float)
    if model.ndim != 2:
        raise ValueError(
            f"maps must be 2-D images; the model has shape {model.shape} (write one galaxy of a "
            "batch at a time)"
        )
    arrays = {"MODEL": model}
    for key in ("data", "sigma", "used", "residual"):
        if maps.get(key) is not None:
            arr = np.asarray(maps[key])
            if arr.shape != model.shape:
                raise ValueError(f"maps[{key!r}] has shape {arr.shape}; the model {model.shape}")
            arrays[key] = arr
    used = np.asarray(arrays.pop("used"), dtype=bool) if "used" in arrays else None
    data = arrays.pop("data", None)
    sigma = arrays.pop("sigma", None)
    residual = arrays.pop("residual", None)
    if data is not None:
        data = np.asarray(data, dtype=float)
        keep = np.isfinite(data) if used is None else used & np.isfinite(data)
        residual = np.where(keep, data - model, np.nan)
    if data is not None:
        arrays["DATA"] = data
    if sigma is not None:
        arrays["SIGMA"] = np.asarray(sigma, dtype=float)
    if residual is not None:
        arrays["RESIDUAL"] = np.asarray(residual, dtype=float)
        if sigma is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                norm = arrays["RESIDUAL"] / arrays["SIGMA"]
            arrays["NORM_RESIDUAL"] = np.where(np.isfinite(norm), norm, np.nan)
    if used is not None:
        arrays["USED"] = used.astype(np.uint8)
    wcs_header = _wcs_header(wcs)
    shape_of_wcs = getattr(wcs, "pixel_shape", None)
    if shape_of_wcs is not None and tuple(shape_of_wcs[::-1]) != model.shape:
        raise ValueError(
            f"the WCS is for {tuple(shape_of_wcs[::-1])} pixels; the maps are "
            f"{model.shape} (pass the cut-out's WCS)"
        )
    bunit = _unit_string(unit)

    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "pymc_tracers"
    if name is not None:
        primary.header["TRACER"] = str(name)
    for key, value in (meta or {}).items():
        primary.header[key] = value
    hdus = [primary]
    for extname, arr in arrays.items():
        header = wcs_header.copy()
        header["EXTNAME"] = extname
        if extname in ("MODEL", "DATA", "SIGMA", "RESIDUAL") and bunit:
            header["BUNIT"] = bunit
        hdus.append(fits.ImageHDU(arr, header=header))
    hdul = fits.HDUList(hdus)
    return _atomic_write(Path(path), overwrite, lambda p: hdul.writeto(p, overwrite=True))


_VALUE_STATS = re.compile(r"^(mean|sd|median|mad|mcse_\w+|hdi_.*|eti_.*|q\d.*|\d.*%)$")


def _unit_of(param: str, units: dict):
    base = param.split("[", 1)[0]
    for key in (param, base):
        if key in units:
            return _parse_unit(units[key], f"unit of {key}")
    return None


def summary_table(summary, *, units: dict, layout: str = "long"):
    """An astropy Table of a posterior summary with units.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per parameter (e.g. ``arviz.summary`` or ``Result.summary()``); columns are
        statistics (``mean``, ``sd``, ``hdi_3%``, ..., ``ess_bulk``, ``r_hat``).
    units : dict
        ``{parameter: unit}`` (string or astropy unit; ``""`` for dimensionless). A name
        without an index (``"central"``) covers its elements (``"central[0]"``). Parameters
        missing from it are written with an empty unit and a warning.
    layout : {"long", "wide"}
        ``"long"``: one row per parameter with a ``unit`` column (value statistics are in that
        unit, ESS and R-hat unitless). ``"wide"``: one row, one column per
        ``<parameter>__<statistic>`` carrying its unit (handy to stack galaxies).

    Returns
    -------
    astropy.table.Table
    """
    import astropy.units as u
    from astropy.table import Table

    if layout not in ("long", "wide"):
        raise ValueError(f"layout must be 'long' or 'wide'; got {layout!r}")
    if not hasattr(summary, "index") or not hasattr(summary, "columns"):
        raise ValueError("summary must be a pandas DataFrame (e.g. from arviz.summary)")
    params = [str(p) for p in summary.index]
    param_units = {p: _unit_of(p, units) for p in params}
    missing = [p for p, un in param_units.items() if un is None]
    if missing:
        warnings.warn(
            f"no unit given for {missing}; written without a unit (pass units={{name: ''}} for "
            "dimensionless parameters)",
            stacklevel=2,
        )
    stats = [str(c) for c in summary.columns]
    if layout == "long":
        table = Table()
        table["parameter"] = params
        table["unit"] = [_unit_string(param_units[p]) for p in params]
        for column, stat in zip(summary.columns, stats):
            table[stat] = np.asarray(summary[column], dtype=float)
        table.meta["value_columns"] = [s for s in stats if _VALUE_STATS.match(s)]
        table.meta["note"] = "value columns are in each row's unit; ESS and R-hat are unitless"
        return table
    table = Table()
    for param, (_, row) in zip(params, summary.iterrows()):
        for column, stat in zip(summary.columns, stats):
            unit = param_units[param] if _VALUE_STATS.match(stat) else None
            value = float(row[column])
            if unit is not None and not isinstance(unit, u.UnrecognizedUnit):
                table[f"{param}__{stat}"] = [value] * unit
            else:
                table[f"{param}__{stat}"] = [value]
    return table


def write_summary(
    path, summary, *, units: dict, layout: str = "long", overwrite: bool = False, meta=None
) -> Path:
    """Write a posterior summary as an ECSV table with units (see :func:`summary_table`).

    The file is written to a temporary file and moved into place; read it back with
    ``astropy.table.Table.read(path)``.
    """
    table = summary_table(summary, units=units, layout=layout)
    table.meta.update(dict(meta or {}))
    return _atomic_write(
        Path(path),
        overwrite,
        lambda p: table.write(p, format="ascii.ecsv", overwrite=True),
    )
