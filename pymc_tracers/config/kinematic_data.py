"""Read the maps named in a checked ``[kinematics]`` section (:func:`read_kinematic_data`).

The section is checked by :mod:`pymc_tracers.config.kinematics`; the result,
:class:`KinematicInput`, is what :mod:`pymc_tracers.config.kinematic_model` fits: velocity
and dispersion maps in km/s on their sky frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.io import fits

from pymc_tracers import io
from pymc_tracers.config.errors import ConfigError, one_line
from pymc_tracers.io.kinematic_maps import KinematicData, read_kinematic_maps

__all__ = ["KinematicInput", "read_kinematic_data"]


@dataclass(eq=False)
class KinematicInput:
    """The maps of ``[kinematics]`` on their sky frame (km/s), in the form the single-galaxy
    pipeline reads (the same attribute names as :class:`~pymc_tracers.io.GalaxyData`).

    Attributes
    ----------
    maps : pymc_tracers.io.KinematicData
        Velocity, dispersion (km/s), flux, their 1-sigma errors (NaN where unusable), the
        instrumental dispersion and the bin map.
    frame : SkyFrame
        The WCS and the pixel grid (with the configuration's supersampling).
    lsf_sigma : float, ndarray or None
        ``sigma_LSF`` in km/s added in quadrature to the model dispersion.
    sources : dict
        Where each map came from (``file[EXT]``).
    """

    maps: KinematicData
    frame: object
    lsf_sigma: object = None
    sources: dict = field(default_factory=dict)
    tracer_name: str = "velocity"
    image = None

    @property
    def grid(self):
        return self.frame.grid

    @property
    def wcs(self):
        return self.frame.wcs

    @property
    def shape(self):
        return self.grid.shape

    @property
    def pixel_scale(self) -> float:
        return self.grid.pixel_scale

    @property
    def bin_map(self):
        return self.maps.bin_map

    @property
    def tracer_mask(self):
        """Pixels whose velocity is fitted (finite value and error)."""
        return np.isfinite(self.maps.velocity) & np.isfinite(self.maps.velocity_sigma)

    @property
    def units(self) -> dict:
        return {"tracer": u.km / u.s}

    def phi_from_pa(self, pa, *, at=None):
        return self.frame.phi_from_pa(pa, at=at)

    def to_grid(self, coord):
        return self.frame.to_grid(coord)


def read_kinematic_data(spec) -> KinematicInput:
    """Read the maps named in a checked ``[kinematics]`` section (values in km/s).

    Raises
    ------
    ConfigError
        For a map that cannot be read (missing channel, shapes that differ, bad inverse
        variances, no celestial WCS), one line.
    """
    path = spec["file"]
    lsf = spec.get("lsf")
    try:
        maps = read_kinematic_maps(
            path,
            channel=spec["channel"],
            velocity=spec["velocity"],
            dispersion=spec.get("dispersion"),
            flux=spec.get("flux"),
            instrumental=lsf if isinstance(lsf, str) else None,
            bin_id=spec.get("bins"),
            bin_channel=spec["bin_channel"],
            error_suffix=spec["error_suffix"],
            ivar_suffix=spec["ivar_suffix"],
            mask_suffix=spec["mask_suffix"],
        )
        frame = io.sky_frame(
            maps.wcs, maps.velocity.shape, supersampling=spec["supersampling"], source=path.name
        )
    except (ValueError, OSError) as error:
        raise ConfigError(f"[kinematics]: {one_line(error)}") from None
    factors = spec["units"]
    for key, attributes in (
        ("velocity", ("velocity", "velocity_sigma")),
        ("dispersion", ("dispersion", "dispersion_sigma")),
        ("lsf", ("lsf_sigma",)),
    ):
        for attribute in attributes:
            if factors.get(key, 1.0) != 1.0 and getattr(maps, attribute) is not None:
                setattr(maps, attribute, getattr(maps, attribute) * factors[key])
    if spec.get("mask") is not None:
        _apply_mask(maps, path, spec["mask"])
    if not np.isfinite(maps.velocity).any():
        raise ConfigError(
            f"[kinematics] velocity = {spec['velocity']!r}: no pixel of {path.name} has a finite "
            "velocity and error; check the mask and the errors"
        )
    sources = {
        key: f"{path.name}[{spec[key]}]"
        for key in ("velocity", "dispersion", "flux", "bins", "mask")
        if spec.get(key) is not None
    }
    lsf_sigma = maps.lsf_sigma if isinstance(lsf, str) else lsf
    return KinematicInput(maps, frame, lsf_sigma=lsf_sigma, sources=sources)


def _apply_mask(maps, path, name) -> None:
    """Leave out the pixels where the mask extension ``name`` is nonzero (every map)."""
    mask = np.asarray(fits.getdata(path, extname=name))
    if mask.shape != maps.velocity.shape:
        raise ConfigError(
            f"[kinematics] mask = {name!r} has shape {mask.shape}; the velocity map has "
            f"{maps.velocity.shape}"
        )
    bad = mask != 0
    for attribute in (
        "velocity",
        "velocity_sigma",
        "dispersion",
        "dispersion_sigma",
        "flux",
        "flux_sigma",
    ):
        values = getattr(maps, attribute)
        if values is not None:
            setattr(maps, attribute, np.where(bad, np.nan, values))
