"""Sky frames: the pixel scale of a WCS, and where north and east point in a map's pixels.

Position angles (PA) on the sky are measured from north through east, in degrees. The
profiles' ``phi`` is the angle of the major axis in radians, counter-clockwise from +x in the
pixel frame, so ``phi = north_angle + east_sign * PA`` (see :mod:`pymc_tracers.io`).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning, InconsistentAxisTypesError

from pymc_tracers.fitsutil import celestial, pixel_scale_from_wcs
from pymc_tracers.grid import PixelGrid

logger = logging.getLogger("pymc_tracers.io")

__all__ = ["SkyFrame", "pixel_scale_from_wcs", "sky_frame", "wcs_from_header", "wcs_header"]


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
        require_skycoord(coord)
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
        require_skycoord(at)
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
        north, sign = self.north_east(at)
        pa = sign * (float(phi) - north)
        return Angle(math.degrees(pa) % 360.0, "deg")


def _wrap_pi(angle: float) -> float:
    wrapped = math.remainder(float(angle), 2.0 * math.pi)  # in [-pi, pi]
    return math.pi if wrapped == -math.pi else wrapped


def _angle_radians(value) -> float:
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


def require_skycoord(coord):
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
    sky = celestial(wcs)
    if sky is None:
        raise ValueError(
            f"{source}: no celestial WCS (CTYPE RA---TAN/DEC--TAN...); pass pixel_scale=<arcsec>"
        )
    scale = pixel_scale_from_wcs(sky, source=source)
    if pixel_scale is not None and not math.isclose(float(pixel_scale), scale, rel_tol=1e-3):
        raise ValueError(
            f"{source}: pixel_scale={pixel_scale} arcsec contradicts the WCS ({scale:.6g} arcsec);"
            " leave pixel_scale out to use the WCS"
        )
    if sky.has_distortion:
        logger.info("%s: the WCS has distortion terms; the grid uses its linear part", source)
    grid = PixelGrid(tuple(shape), scale, supersampling, center)
    centre = sky.pixel_to_world((grid.nx - 1) / 2.0, (grid.ny - 1) / 2.0)
    north, sign = _north_east(sky, centre, scale)
    return SkyFrame(wcs=sky, grid=grid, north_angle=north, east_sign=sign)


def wcs_from_header(header, label):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except (ValueError, KeyError, MemoryError, InconsistentAxisTypesError) as error:
            raise ValueError(f"{label}: cannot read its WCS ({error})") from None
    return celestial(wcs)


def same_grid(wcs_a, wcs_b, shape, scale) -> float:
    """Largest sky separation (in pixels) of the corners and centre under two WCSs."""
    ny, nx = shape
    xs = np.array([0.0, nx - 1, 0.0, nx - 1, (nx - 1) / 2])
    ys = np.array([0.0, 0.0, ny - 1, ny - 1, (ny - 1) / 2])
    a = wcs_a.pixel_to_world(xs, ys)
    b = wcs_b.pixel_to_world(xs, ys)
    return float(np.max(a.separation(b).arcsec) / scale)


def wcs_header(wcs):
    if wcs is None:
        return fits.Header()
    if isinstance(wcs, fits.Header):
        wcs = wcs_from_header(wcs, "header")
        if wcs is None:
            raise ValueError("the header given as wcs= has no celestial WCS")
    if not isinstance(wcs, WCS):
        raise TypeError(f"wcs must be an astropy WCS or FITS header; got {type(wcs).__name__}")
    return wcs.to_header(relax=True)
