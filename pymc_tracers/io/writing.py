"""Writing results: model/data/residual maps as FITS with the input WCS, summaries as ECSV."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from pymc_tracers.atomic import atomic_write
from pymc_tracers.io.units import parse_unit, unit_string
from pymc_tracers.io.wcs import wcs_header

__all__ = ["summary_table", "write_maps", "write_summary"]


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
    header_of_wcs = wcs_header(wcs)
    shape_of_wcs = getattr(wcs, "pixel_shape", None)
    if shape_of_wcs is not None and tuple(shape_of_wcs[::-1]) != model.shape:
        raise ValueError(
            f"the WCS is for {tuple(shape_of_wcs[::-1])} pixels; the maps are "
            f"{model.shape} (pass the cut-out's WCS)"
        )
    bunit = unit_string(unit)

    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "pymc_tracers"
    if name is not None:
        primary.header["TRACER"] = str(name)
    for key, value in (meta or {}).items():
        primary.header[key] = value
    hdus = [primary]
    for extname, arr in arrays.items():
        header = header_of_wcs.copy()
        header["EXTNAME"] = extname
        if extname in ("MODEL", "DATA", "SIGMA", "RESIDUAL") and bunit:
            header["BUNIT"] = bunit
        hdus.append(fits.ImageHDU(arr, header=header))
    hdul = fits.HDUList(hdus)
    return atomic_write(path, lambda p: hdul.writeto(p, overwrite=True), overwrite=overwrite)


_VALUE_STATS = re.compile(r"^(mean|sd|median|mad|mcse_\w+|hdi_.*|eti_.*|q\d.*|\d.*%)$")


def _unit_of(param: str, units: dict):
    base = param.split("[", 1)[0]
    for key in (param, base):
        if key in units:
            return parse_unit(units[key], f"unit of {key}")
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
        table["unit"] = [unit_string(param_units[p]) for p in params]
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
    return atomic_write(
        path, lambda p: table.write(p, format="ascii.ecsv", overwrite=True), overwrite=overwrite
    )
