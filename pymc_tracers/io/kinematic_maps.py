"""Moment maps from IFU pipelines: velocity, dispersion, their errors and the instrument's LSF.

:func:`read_kinematic_maps` reads

* **MaNGA DAP** ``MAPS`` files (the defaults): ``EMLINE_GVEL``, ``EMLINE_GSIGMA`` and
  ``EMLINE_GFLUX`` cubes of one map per emission line, with ``*_IVAR`` inverse variances and
  ``*_MASK`` bitmasks beside them, ``EMLINE_INSTSIGMA`` (the instrumental dispersion, which
  the DAP's ``EMLINE_GSIGMA`` still contains) and ``BINID``. The line is chosen by its name in
  the header's channel keys (``C1 = 'Ha-6564'``, ...).
* **MUSE-style** or any other file with one 2-D extension per quantity: pass the extension
  names (e.g. ``velocity="V", velocity_error="V_ERR", dispersion="SIGMA", ...``).

The result plugs into :func:`~pymc_tracers.model.kinematic_likelihood.kinematic_likelihood`
(errors as 1-sigma maps, NaN where unusable) and ``observe_kinematics(lsf_sigma=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from pymc_tracers.fitsutil import pixel_scale_from_wcs
from pymc_tracers.grid import PixelGrid

__all__ = ["KinematicData", "read_kinematic_maps"]


@dataclass
class KinematicData:
    """Observed moment maps on one pixel grid (km/s unless stated).

    Attributes
    ----------
    grid : PixelGrid
        The maps' pixels (arcsec from the WCS), centred on the field.
    velocity, velocity_sigma : ndarray
        Line-of-sight velocity and its 1-sigma error; NaN where unusable (masked, ivar = 0).
    dispersion, dispersion_sigma : ndarray or None
        Observed dispersion (with the instrumental broadening when the pipeline keeps it,
        as the MaNGA DAP does) and its error.
    lsf_sigma : ndarray or None
        Instrumental dispersion per pixel (``EMLINE_INSTSIGMA``), NaN-free (unusable pixels
        hold the median); pass it as ``observe_kinematics(lsf_sigma=...)``.
    flux, flux_sigma : ndarray or None
        Line flux per pixel and its error (file units).
    bin_map : ndarray of int or None
        Bin index per pixel (-1: none), for binned likelihoods.
    wcs : astropy.wcs.WCS
    channel : str, int or None
        The ``channel`` asked for (used only for multi-line extensions).
    """

    grid: PixelGrid
    velocity: np.ndarray
    velocity_sigma: np.ndarray
    dispersion: np.ndarray | None
    dispersion_sigma: np.ndarray | None
    lsf_sigma: np.ndarray | None
    flux: np.ndarray | None
    flux_sigma: np.ndarray | None
    bin_map: np.ndarray | None
    wcs: WCS
    channel: str | None = None


def _channel_index(header, channel, name):
    """The plane of a multi-line extension holding ``channel`` (name or index)."""
    if isinstance(channel, (int, np.integer)):
        return int(channel)
    names = {
        str(header[key]).strip(): int(key[1:]) - 1
        for key in header
        if key.startswith("C") and key[1:].isdigit()
    }
    if channel not in names:
        raise ValueError(
            f"{name} has no channel {channel!r}; its channels are {sorted(names)} (give the "
            "name, e.g. 'Ha-6564', or a 0-based index)"
        )
    return names[channel]


def _plane(hdus, name, channel, path, *, required=True):
    if name is None:
        return None, None
    if name not in hdus:
        if not required:
            return None, None
        found = [h.name for h in hdus if h.data is not None]
        raise ValueError(f"{path} has no extension {name!r}; it has {found}")
    hdu = hdus[name]
    data = np.asarray(hdu.data, dtype=float)
    if data.ndim == 3:
        if channel is None:
            raise ValueError(
                f"{name} in {path} holds {data.shape[0]} lines: choose one with channel="
            )
        index = _channel_index(hdu.header, channel, name)
        data = data[index]
    elif data.ndim != 2:
        raise ValueError(f"{name} in {path} has shape {data.shape}; expected a 2-D map")
    return data, hdu.header


def _errors(hdus, name, channel, path, error_name, ivar_name, mask_name, values):
    """1-sigma errors from an error or an inverse-variance extension, NaN where unusable."""
    error, _ = _plane(hdus, error_name, channel, path, required=False)
    if error is None:
        ivar, _ = _plane(hdus, ivar_name, channel, path, required=False)
        if ivar is None:
            raise ValueError(
                f"{path} has neither {error_name!r} nor {ivar_name!r} for {name}: give the "
                "error extension's name"
            )
        if np.any(ivar < 0):
            raise ValueError(f"{ivar_name} in {path} has negative inverse variances")
        with np.errstate(divide="ignore"):
            error = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)
    elif np.any(error <= 0):
        error = np.where(error > 0, error, np.nan)  # zero or negative: unusable
    bad = ~np.isfinite(values) | ~np.isfinite(error)
    mask, _ = _plane(hdus, mask_name, channel, path, required=False)
    if mask is not None:
        bad |= mask != 0  # bitmasks flag bad pixels (MaNGA DAP)
    values = np.where(bad, np.nan, values)
    return values, np.where(bad, np.nan, error)


def read_kinematic_maps(
    path,
    *,
    channel="Ha-6564",
    velocity="EMLINE_GVEL",
    dispersion="EMLINE_GSIGMA",
    flux="EMLINE_GFLUX",
    instrumental="EMLINE_INSTSIGMA",
    bin_id="BINID",
    bin_channel=3,
    error_suffix="_ERR",
    ivar_suffix="_IVAR",
    mask_suffix="_MASK",
) -> KinematicData:
    """Read velocity and dispersion maps with their errors, LSF and bins from a FITS file.

    Parameters
    ----------
    path : str or Path
        A MaNGA DAP ``MAPS`` file (defaults), or any file with those quantities in extensions.
    channel : str, int or None
        The emission line of multi-line extensions, by its header name (``'Ha-6564'``) or
        0-based index; ignored for 2-D extensions.
    velocity, dispersion, flux, instrumental, bin_id : str or None
        Extension names; None skips a quantity (velocity is required). Errors are read from
        ``<name><error_suffix>`` (1-sigma) or else ``<name><ivar_suffix>``; bitmasks from
        ``<name><mask_suffix>`` (nonzero = leave out).
    bin_channel : int
        Plane of a 3-D ``BINID`` extension (MaNGA: 3 = the emission-line bins).

    Returns
    -------
    KinematicData

    Raises
    ------
    ValueError
        For a missing extension or channel, maps of different shapes, negative inverse
        variances, or a WCS without a square pixel scale.
    """
    with fits.open(path) as hdus:
        v, header = _plane(hdus, velocity, channel, path)
        shape = v.shape
        v, v_err = _errors(
            hdus,
            velocity,
            channel,
            path,
            velocity + error_suffix,
            velocity + ivar_suffix,
            velocity + mask_suffix,
            v,
        )
        s = s_err = f = f_err = lsf = bins = None
        if dispersion is not None:
            s, _ = _plane(hdus, dispersion, channel, path)
            s, s_err = _errors(
                hdus,
                dispersion,
                channel,
                path,
                dispersion + error_suffix,
                dispersion + ivar_suffix,
                dispersion + mask_suffix,
                s,
            )
        if flux is not None and flux in hdus:
            f, _ = _plane(hdus, flux, channel, path)
            f, f_err = _errors(
                hdus,
                flux,
                channel,
                path,
                flux + error_suffix,
                flux + ivar_suffix,
                flux + mask_suffix,
                f,
            )
        if instrumental is not None and instrumental in hdus:
            lsf, _ = _plane(hdus, instrumental, channel, path)
            finite = np.isfinite(lsf) & (lsf >= 0)
            lsf = np.where(finite, lsf, np.median(lsf[finite]) if finite.any() else 0.0)
        if bin_id is not None and bin_id in hdus:
            raw = np.asarray(hdus[bin_id].data)
            bins = (raw[bin_channel] if raw.ndim == 3 else raw).astype(np.int64)
        for name, array in [
            ("dispersion", s),
            ("flux", f),
            ("instrumental", lsf),
            ("bin_id", bins),
        ]:
            if array is not None and array.shape != shape:
                raise ValueError(
                    f"{name} has shape {array.shape} in {path}; the velocity map has {shape}"
                )
        wcs = WCS(header).celestial
    scale = pixel_scale_from_wcs(wcs, source=f"{velocity} of {path}")
    return KinematicData(
        grid=PixelGrid(shape, scale),
        velocity=v,
        velocity_sigma=v_err,
        dispersion=s,
        dispersion_sigma=s_err,
        lsf_sigma=lsf,
        flux=f,
        flux_sigma=f_err,
        bin_map=bins,
        wcs=wcs,
        channel=channel,
    )
