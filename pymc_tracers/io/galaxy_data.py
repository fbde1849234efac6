"""``GalaxyData``: a galaxy's maps on one pixel grid, validated and masked, with its sky frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import astropy.units as u
import numpy as np

from pymc_tracers.grid import PixelGrid
from pymc_tracers.io.bins import bin_ids, validate_bin_map
from pymc_tracers.io.checks import (
    MapOptions,
    cutout_arrays,
    error_values,
    good_pixels,
    usable_masks,
)
from pymc_tracers.io.units import is_abundance, parse_unit
from pymc_tracers.io.wcs import SkyFrame, celestial, require_skycoord, sky_frame

__all__ = ["GalaxyData", "MapOptions"]


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
        tracer_name=None,
        units=None,
        sources=None,
        options: MapOptions | None = None,
        **option_values,
    ) -> GalaxyData:
        """Validate maps given as arrays.

        Parameters
        ----------
        tracer, tracer_error, image, image_error : array_like (ny, nx), optional
            The tracer map (its unit: dex, km/s, ...), the light image and their 1-sigma
            errors (or variances / inverse variances, see :class:`MapOptions`).
        mask : array_like (ny, nx), optional
            Pixel flags, read as ``options.mask_means`` says (default: nonzero = bad pixel).
        bins : array_like of int (ny, nx), optional
            Bin index of each pixel, ``-1`` for none.
        wcs : astropy.wcs.WCS, optional
            The maps' WCS (or ``None`` with ``pixel_scale`` in arcsec).
        tracer_name : str, optional
        units : dict, optional
            ``{"tracer": unit, "image": unit}`` (strings or astropy units).
        sources : dict, optional
            Where each map came from, for messages (``file[EXT]``).
        options : MapOptions, optional
            How to read errors, masks, the S/N cut and the grid.
        **option_values
            Fields of :class:`MapOptions` given directly (``pixel_scale=0.2``, ...).
        """
        if options is None:
            options = MapOptions(**option_values)
        elif option_values:
            options = replace(options, **option_values)
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
        if "mask" in raw:
            raw["mask"] = good_pixels(raw["mask"], options, sources["mask"])
        if "bins" in raw:
            raw["bins"] = validate_bin_map(raw["bins"], source=sources["bins"])
        raw, grid, frame = _grid_and_frame(raw, shape, wcs, options, sources)
        if options.center is not None:
            require_skycoord(options.center)
        units = {k: parse_unit(v, k) for k, v in dict(units or {}).items()}
        tracer_name = "tracer" if tracer_name is None else str(tracer_name).strip()
        if "tracer" in raw and options.check_dex and is_abundance(tracer_name):
            _require_dex(tracer_name, units.get("tracer"), sources["tracer"])
        values, report = error_values(raw, options.error_type, sources)
        masks = usable_masks(values, raw, units, sources, options, report)
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
            center=options.center,
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
        cut, frame = cutout_arrays(arrays, self._frame(), center, size)
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


def _grid_and_frame(raw: dict, shape, wcs, options: MapOptions, sources: dict):
    """``(arrays, PixelGrid, SkyFrame or None)``: the grid of the maps, cut out when asked."""
    if wcs is not None and celestial(wcs) is not None:
        frame = sky_frame(wcs, shape, pixel_scale=options.pixel_scale, source=_first(sources))
    elif options.pixel_scale is not None:
        frame = None
    else:
        where = ", ".join(sorted(set(sources.values())))
        raise ValueError(
            f"{where}: no celestial WCS in the header and no pixel scale given; pass "
            "pixel_scale=<arcsec per pixel>"
        )
    if options.cutout_size is not None:
        if frame is None:
            raise ValueError("a cut-out needs a WCS (or cut the arrays yourself)")
        if options.center is None:
            raise ValueError("cutout_size needs center=SkyCoord(...) of the galaxy")
        raw, frame = cutout_arrays(raw, frame, options.center, options.cutout_size)
        shape = frame.grid.shape
    if frame is None:
        return raw, PixelGrid(shape, options.pixel_scale, options.supersampling), None
    grid = PixelGrid(shape, frame.grid.pixel_scale, options.supersampling)
    return raw, grid, SkyFrame(frame.wcs, grid, frame.north_angle, frame.east_sign)


def _require_dex(tracer_name: str, unit, source: str) -> None:
    if unit != u.dex:
        raise ValueError(
            f"the tracer {tracer_name!r} ({source}) looks like an abundance, so its map must be "
            f"in dex (12+log(O/H)), but its unit is "
            f"{'missing (no BUNIT)' if unit is None else repr(str(unit))}. If the values are "
            "dex, pass tracer_unit='dex'; if the name misleads, pass check_dex=False"
        )


def _first(sources: dict) -> str:
    for role in ("tracer", "image"):
        if role in sources:
            return sources[role]
    return next(iter(sources.values()), "maps")
