"""Tabulated deflection fields: the standard product of cluster lens models.

Cluster models (e.g. the public Hubble Frontier Fields models) publish the deflection
``alpha_x``, ``alpha_y`` on a pixel grid with a WCS, usually for ``D_ls / D_s = 1``. A source at
redshift ``z_s`` behind a lens at ``z_l`` is deflected by the maps times ``D_ls / D_s``
(:func:`~pymc_tracers.lensing.distances.distance_ratio`).

:class:`DeflectionMap` interpolates the maps **bilinearly** (lenstronomy's ``INTERPOL`` default,
a linear ``RectBivariateSpline``): continuous in position, differentiable in position almost
everywhere and linear in the scale factor, which may be a free variable.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.lensing.base import LensModel, check_lens_parameter
from pymc_tracers.profiles.light import per_galaxy

__all__ = ["DeflectionMap", "bilinear", "bilinear_numpy"]

#: Largest relative deviation of a map's axis from equal spacing.
SPACING_RTOL = 1e-6
#: Units accepted for deflection maps (BUNIT or ``unit=``): arcsec, or map pixels.
ARCSEC_UNITS = ("arcsec", "arcsecond", "arcseconds", '"')
PIXEL_UNITS = ("pixel", "pixels", "pix")


def _axis(values, name):
    axis = np.asarray(values, dtype=float)
    if axis.ndim != 1 or axis.size < 2 or not np.all(np.isfinite(axis)):
        raise ValueError(f"{name} must be a 1-D array of at least 2 finite positions (arcsec)")
    step = np.diff(axis)
    if not np.all(step > 0) or not np.allclose(step, step[0], rtol=SPACING_RTOL, atol=0):
        raise ValueError(f"{name} must be increasing and equally spaced (arcsec)")
    return axis


def _cell(position, axis):
    """Index of the cell's first node and the fraction across it (tensors)."""
    step = (axis[-1] - axis[0]) / (axis.size - 1)
    u = (position - axis[0]) / step
    first = pt.clip(pt.floor(u), 0, axis.size - 2)
    return pt.cast(first, "int64"), u - first


def bilinear(table, x_axis, y_axis, x, y):
    """Bilinear interpolation of ``table`` ``(ny, nx)`` (rows along ``y_axis``) at ``x, y``
    (tensors of any shape; arcsec): a tensor of their shape, differentiable in ``x, y``."""
    table = pt.as_tensor_variable(np.asarray(table, dtype=float))
    i, s = _cell(pt.as_tensor_variable(y), y_axis)
    j, t = _cell(pt.as_tensor_variable(x), x_axis)
    return (1 - s) * ((1 - t) * table[i, j] + t * table[i, j + 1]) + s * (
        (1 - t) * table[i + 1, j] + t * table[i + 1, j + 1]
    )


def bilinear_numpy(table, x_axis, y_axis, x, y):
    """Numpy twin of :func:`bilinear`, by searching the axes (not assuming equal spacing)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    j = np.clip(np.searchsorted(x_axis, x, side="right") - 1, 0, x_axis.size - 2)
    i = np.clip(np.searchsorted(y_axis, y, side="right") - 1, 0, y_axis.size - 2)
    t = (x - x_axis[j]) / (x_axis[j + 1] - x_axis[j])
    s = (y - y_axis[i]) / (y_axis[i + 1] - y_axis[i])
    return (
        (1 - s) * (1 - t) * table[i, j]
        + (1 - s) * t * table[i, j + 1]
        + s * (1 - t) * table[i + 1, j]
        + s * t * table[i + 1, j + 1]
    )


class DeflectionMap(LensModel):
    """A deflection field tabulated on a regular grid, interpolated bilinearly.

    Parameters
    ----------
    alpha_x, alpha_y : array, shape (ny, nx)
        Deflection along +x (columns) and +y (rows) in arcsec at the grid nodes, for the
        distance ratio the maps were made for (usually ``D_ls / D_s = 1``).
    x, y : array
        The nodes' positions in arcsec in the data grid's frame: 1-D, increasing, equally
        spaced, of lengths ``nx`` and ``ny``.
    scale : float, array (N,) or variable
        Multiplies the deflection: ``D_ls / D_s`` of the source over that of the maps
        (:func:`~pymc_tracers.lensing.distances.distance_ratio`); free to fit a source redshift
        or a mass-scaling.

    Notes
    -----
    The maps must cover every image-plane position the forward model renders (the field
    padded by the PSF half-width): :meth:`check_coverage` refuses anything else rather than
    extrapolate.
    """

    def __init__(self, alpha_x, alpha_y, *, x, y, scale=1.0):
        alpha_x = np.asarray(alpha_x, dtype=float)
        alpha_y = np.asarray(alpha_y, dtype=float)
        if alpha_x.ndim != 2 or alpha_x.shape != alpha_y.shape:
            raise ValueError(
                f"alpha_x and alpha_y must be 2-D maps of one shape (ny, nx); got "
                f"{alpha_x.shape} and {alpha_y.shape}"
            )
        if not (np.all(np.isfinite(alpha_x)) and np.all(np.isfinite(alpha_y))):
            raise ValueError(
                "the deflection maps hold NaN or inf; fill or crop them to a finite region"
            )
        self._x = _axis(x, "x")
        self._y = _axis(y, "y")
        if (self._y.size, self._x.size) != alpha_x.shape:
            raise ValueError(
                f"the maps are {alpha_x.shape} (ny, nx) but the axes have {self._y.size} (y) "
                f"and {self._x.size} (x) positions"
            )
        self._alpha_x, self._alpha_y = alpha_x, alpha_y
        self.scale = check_lens_parameter(scale, "scale", unit="D_ls/D_s relative to the maps")

    @property
    def axes(self):
        """``(x, y)``: the nodes' positions in arcsec."""
        return self._x, self._y

    @property
    def maps(self):
        """``(alpha_x, alpha_y)`` at the nodes, arcsec, before :attr:`scale`."""
        return self._alpha_x, self._alpha_y

    @property
    def extent(self):
        """``(x_min, x_max, y_min, y_max)`` covered by the nodes, arcsec."""
        return (self._x[0], self._x[-1], self._y[0], self._y[-1])

    def deflection(self, x, y):
        scale = per_galaxy(self.scale)
        alpha_x = bilinear(self._alpha_x, self._x, self._y, x, y)
        alpha_y = bilinear(self._alpha_y, self._x, self._y, x, y)
        return scale * alpha_x, scale * alpha_y

    def deflection_numpy(self, x, y):
        scale = np.asarray(getattr(self.scale, "data", self.scale), dtype=float)
        scale = scale[..., None, None] if scale.ndim else scale
        return (
            scale * bilinear_numpy(self._alpha_x, self._x, self._y, x, y),
            scale * bilinear_numpy(self._alpha_y, self._x, self._y, x, y),
        )

    def check_coverage(self, x, y):
        x, y = np.asarray(x), np.asarray(y)
        x_min, x_max, y_min, y_max = self.extent
        tol = 1e-9 * max(abs(x_max - x_min), abs(y_max - y_min))
        if (
            x.min() < x_min - tol
            or x.max() > x_max + tol
            or y.min() < y_min - tol
            or y.max() > y_max + tol
        ):
            raise ValueError(
                f"the deflection map covers x in [{x_min:.4g}, {x_max:.4g}], y in "
                f"[{y_min:.4g}, {y_max:.4g}] arcsec, but the forward model renders x in "
                f"[{x.min():.4g}, {x.max():.4g}], y in [{y.min():.4g}, {y.max():.4g}] "
                "(the field padded by the PSF half-width); give maps that cover it or a "
                "smaller field or PSF stamp"
            )

    def parameters(self):
        return {"scale": self.scale}

    def __repr__(self):
        ny, nx = self._alpha_x.shape
        extent = ", ".join(f"{v:.4g}" for v in self.extent)
        return f"DeflectionMap({ny}x{nx}, extent=({extent}) arcsec)"

    # ------------------------------------------------------------------ FITS
    @classmethod
    def from_fits(
        cls,
        alpha_x,
        alpha_y,
        *,
        frame=None,
        z_lens=None,
        z_source=None,
        map_distance_ratio=1.0,
        cosmology=None,
        unit=None,
        hdu=0,
        scale=None,
    ):
        """Read ``alpha_x`` and ``alpha_y`` maps from FITS files with a celestial WCS.

        Parameters
        ----------
        alpha_x, alpha_y : str or pathlib.Path
            FITS files (or ``(path, hdu)`` pairs) of the deflection along the map's +x
            (columns) and +y (rows) pixel axes.
        frame : pymc_tracers.io.SkyFrame, optional
            The data's sky frame (:func:`pymc_tracers.io.wcs.sky_frame`): the maps' nodes are
            placed in the data grid's frame through both WCSs. The maps' axes must be parallel
            to the data's (reproject them otherwise). Without it the maps are centred on the
            grid origin.
        z_lens, z_source : float, optional
            Lens and source redshifts: the deflection is scaled by ``D_ls / D_s`` over
            ``map_distance_ratio`` (astropy ``cosmology``, default Planck18).
        map_distance_ratio : float
            ``D_ls / D_s`` the maps were made for (1 for the usual convention).
        unit : {"arcsec", "pixel"}, optional
            Units of the maps; by default the header's ``BUNIT`` (arcsec when absent).
        hdu : int or str
            Extension to read when a plain path is given.
        scale : float or variable, optional
            The scale factor itself (instead of the redshifts).
        """
        from pymc_tracers.lensing.distances import distance_ratio

        (ax, header_x), (ay, header_y) = _read(alpha_x, hdu), _read(alpha_y, hdu)
        if ax.shape != ay.shape:
            raise ValueError(f"alpha_x is {ax.shape} but alpha_y is {ay.shape}: give one grid")
        wcs, map_scale = _map_wcs(header_x, str(alpha_x))
        for values, header, label in ((ax, header_x, alpha_x), (ay, header_y, alpha_y)):
            values *= _unit_factor(unit, header, map_scale, str(label))
        x_axis, y_axis = _node_axes(wcs, ax.shape, map_scale, frame, str(alpha_x))
        if scale is None:
            if (z_lens is None) != (z_source is None):
                raise ValueError("give both z_lens and z_source (or neither, or scale=...)")
            scale = 1.0
            if z_lens is not None:
                scale = distance_ratio(z_lens, z_source, cosmology=cosmology)
            scale = scale / float(map_distance_ratio)
        elif z_lens is not None or z_source is not None:
            raise ValueError("give either scale= or z_lens and z_source, not both")
        return cls(ax, ay, x=x_axis, y=y_axis, scale=scale)

    def write_fits(self, path_x, path_y, wcs, *, overwrite=False):
        """Write the unscaled maps (arcsec) with ``wcs`` (astropy WCS) to two FITS files."""
        from astropy.io import fits

        header = wcs.to_header()
        header["BUNIT"] = "arcsec"
        for path, values, axis in ((path_x, self._alpha_x, "x"), (path_y, self._alpha_y, "y")):
            header["COMMENT"] = f"deflection along +{axis} pixel axis, for D_ls/D_s = 1"
            fits.PrimaryHDU(values, header=header).writeto(path, overwrite=overwrite)


def _read(spec, hdu):
    from astropy.io import fits

    path, ext = spec if isinstance(spec, tuple) else (spec, hdu)
    with fits.open(path) as hdus:
        try:
            chosen = hdus[ext]
        except (KeyError, IndexError):
            raise ValueError(f"{path}: no extension {ext!r}") from None
        if chosen.data is None or chosen.data.ndim != 2:
            raise ValueError(f"{path}[{ext!r}]: not a 2-D image; name the extension with hdu=")
        return np.array(chosen.data, dtype=float), chosen.header.copy()


def _map_wcs(header, label):
    from pymc_tracers.fitsutil import pixel_scale_from_wcs
    from pymc_tracers.io.wcs import wcs_from_header

    wcs = wcs_from_header(header, label)
    if wcs is None:
        raise ValueError(
            f"{label}: no celestial WCS in the header; deflection maps need one to be placed "
            "on the data (or build pmt.lensing.DeflectionMap(alpha_x, alpha_y, x=..., y=...))"
        )
    return wcs, pixel_scale_from_wcs(wcs, source=label)


def _unit_factor(unit, header, map_scale, label):
    name = unit if unit is not None else str(header.get("BUNIT", "arcsec"))
    key = name.strip().lower()
    if key in ARCSEC_UNITS:
        return 1.0
    if key in PIXEL_UNITS:
        return map_scale
    raise ValueError(
        f"{label}: unknown deflection unit {name!r}; the maps must be in arcsec or map pixels "
        "(set BUNIT, or pass unit='arcsec' or unit='pixel')"
    )


def _node_axes(wcs, shape, map_scale, frame, label):
    """The nodes' x and y axes (arcsec) in the data grid's frame."""
    ny, nx = shape
    if frame is None:
        return (
            (np.arange(nx) - (nx - 1) / 2) * map_scale,
            (np.arange(ny) - (ny - 1) / 2) * map_scale,
        )
    centre = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
    step_x = wcs.pixel_to_world((nx - 1) / 2.0 + 1, (ny - 1) / 2.0)
    step_y = wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0 + 1)
    cx, cy = frame.to_grid(centre)
    xx, xy = frame.to_grid(step_x)
    yx, yy = frame.to_grid(step_y)
    # the map's pixel axes, seen in the data frame: parallel to x and y, same handedness
    misaligned = max(abs(xy - cy), abs(yx - cx)) > 1e-3 * map_scale
    if misaligned or xx <= cx or yy <= cy:
        raise ValueError(
            f"{label}: the map's pixel axes are rotated or flipped relative to the data's; "
            "reproject the deflection maps onto the data's orientation (and rotate the "
            "deflection vectors with them)"
        )
    if not math.isclose(xx - cx, map_scale, rel_tol=1e-3):
        raise ValueError(f"{label}: the map's WCS gives inconsistent pixel scales")
    return (
        cx + (np.arange(nx) - (nx - 1) / 2) * map_scale,
        cy + (np.arange(ny) - (ny - 1) / 2) * map_scale,
    )
