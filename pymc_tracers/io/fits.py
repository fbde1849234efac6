"""Reading galaxy maps from FITS files: one multi-extension file or several files."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

from pymc_tracers.fitsutil import describe_hdus, hdu_index
from pymc_tracers.io.checks import MapOptions
from pymc_tracers.io.galaxy_data import GalaxyData
from pymc_tracers.io.units import parse_unit
from pymc_tracers.io.wcs import pixel_scale_from_wcs, same_grid, wcs_from_header

__all__ = ["read_maps"]

logger = logging.getLogger("pymc_tracers.io")

#: The maps a galaxy can have, in the order their WCSs are compared.
MAP_ROLES = ("tracer", "image", "tracer_error", "image_error", "mask", "bins")


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
    file, ext, plane = _resolve(role, spec, path)
    if not file.exists():
        raise FileNotFoundError(f"{role} map: file {str(file)!r} does not exist")
    with fits.open(file) as hdus:
        if ext is None:
            index = next((i for i, h in enumerate(hdus) if h.is_image and h.data is not None), None)
            if index is None:
                raise ValueError(f"{file.name}: no image HDU holds data ({describe_hdus(hdus)})")
            if index != 0:
                logger.info("%s: primary HDU is empty; %s map read from HDU %d", file, role, index)
        else:
            index = hdu_index(hdus, ext)
            if index is None:
                raise ValueError(
                    f"{file.name} has no extension {ext!r} for the {role} map; its HDUs: "
                    f"{describe_hdus(hdus)}"
                )
        hdu = hdus[index]
        if not hdu.is_image or hdu.data is None:
            raise ValueError(
                f"{file.name}[{ext if ext is not None else index}] holds no image for the {role} "
                f"map; its HDUs: {describe_hdus(hdus)}"
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
    options: MapOptions | None = None,
    **option_values,
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
    options : MapOptions, optional
        How errors, masks, the S/N cut and the grid are read (see :class:`MapOptions`).
    **option_values
        Fields of :class:`MapOptions` given directly: ``check_dex``, ``error_type``,
        ``bad_errors``, ``mask_means``, ``mask_bits``, ``snr_min``, ``snr_of``,
        ``pixel_scale`` (arcsec), ``supersampling``, ``center`` (SkyCoord), ``cutout_size``.

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
    options = _options(options, option_values)
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
            with fits.open(path) as hdus:
                hint = f"; HDUs of {Path(path).name}: {describe_hdus(hdus)}"
        raise ValueError(
            "name the maps to read, e.g. read_maps(path, tracer='OH', tracer_error='OH_ERR', "
            f"image='HA_FLUX'){hint}"
        )
    arrays, headers, sources = {}, {}, {}
    for role, spec in specs.items():
        if spec is not None:
            arrays[role], headers[role], sources[role] = _read_hdu(role, spec, path)
    shapes = {role: a.shape for role, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            "the maps have different shapes: "
            + ", ".join(f"{role} {sources[role]} {shape}" for role, shape in shapes.items())
            + "; reproject them onto one pixel grid first"
        )
    wcs = _common_wcs(headers, sources, next(iter(shapes.values())))
    tracer_header = headers.get("tracer")
    if tracer_name is None and tracer_header is not None:
        tracer_name = tracer_header.get("EXTNAME") or tracer_header.get("BTYPE")
    overrides = {"tracer": tracer_unit, "image": image_unit}
    units = {}
    for role, override in overrides.items():
        if role in headers or override is not None:
            raw = override if override is not None else headers[role].get("BUNIT")
            units[role] = parse_unit(raw, sources.get(role, role))
    if options.error_type == "sigma":
        _errors_in_map_units(arrays, headers, sources, units, overrides)
    return GalaxyData.from_arrays(
        **{role: arrays.get(role) for role in MAP_ROLES},
        wcs=wcs,
        tracer_name=tracer_name,
        units=units,
        sources=sources,
        options=options,
    )


def _options(options, values) -> MapOptions:
    """A :class:`MapOptions` from an object and/or keywords, with a clear unknown-key error."""
    names = set(MapOptions.__dataclass_fields__)
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(
            f"read_maps() got unknown option(s) {unknown}; its options are {sorted(names)}"
        )
    if options is None:
        return MapOptions(**values)
    return replace(options, **values) if values else options


def _common_wcs(headers: dict, sources: dict, shape):
    """The celestial WCS the maps share (None without one); ValueError when they differ."""
    wcs, wcs_source = None, None
    for role in MAP_ROLES:
        if role not in headers:
            continue
        this = wcs_from_header(headers[role], sources[role])
        if this is None:
            continue
        if wcs is None:
            wcs, wcs_source = this, sources[role]
            continue
        scale = pixel_scale_from_wcs(wcs, source=wcs_source)
        offset = same_grid(wcs, this, shape, scale)
        if offset > 0.01:
            raise ValueError(
                f"{sources[role]} and {wcs_source} have different WCSs (positions differ by up "
                f"to {offset:.3g} pixels); reproject them onto one grid first"
            )
    return wcs


def _errors_in_map_units(arrays, headers, sources, units, overrides) -> None:
    """Convert 1-sigma error maps whose own BUNIT differs from their map's (in place)."""
    for base in ("tracer", "image"):
        role = f"{base}_error"
        if role not in arrays or units.get(base) is None or overrides[base] is not None:
            continue
        own = parse_unit(headers[role].get("BUNIT"), sources[role])
        if own is None or own == units[base]:
            continue
        try:
            factor = float((1.0 * own).to_value(units[base]))
        except (u.UnitsError, TypeError, ValueError):
            raise ValueError(
                f"{sources[role]} has BUNIT {own} but its map {sources.get(base, base)} "
                f"has {units[base]}; they must match (or pass {base}_unit=)"
            ) from None
        arrays[role] = arrays[role] * factor
