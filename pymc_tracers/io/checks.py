"""The checks of galaxy maps: how errors, masks and the S/N cut are read (:class:`MapOptions`),
which pixels are usable, and cut-outs around the galaxy."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.nddata import Cutout2D, NoOverlapError

from pymc_tracers.io.units import BadDataWarning
from pymc_tracers.io.wcs import SkyFrame, sky_frame

__all__ = ["MapOptions", "cutout_arrays", "error_values", "good_pixels", "usable_masks"]

ERROR_TYPES = ("sigma", "variance", "ivar")


@dataclass(frozen=True)
class MapOptions:
    """How :func:`~pymc_tracers.io.read_maps` and :meth:`GalaxyData.from_arrays` read maps.

    Attributes
    ----------
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
        The S/N of the light image (``image / image_error``, the default) or of the tracer
        itself (for linear tracers only).
    pixel_scale : float, optional
        Arcsec per pixel, required when the maps have no celestial WCS; otherwise checked
        against it.
    supersampling : int
        Supersampling of the :class:`~pymc_tracers.PixelGrid`.
    center : SkyCoord, optional
        The galaxy centre; stored, and used for ``cutout_size``.
    cutout_size : astropy Quantity (angle) or int or (ny, nx), optional
        Cut all maps to this size around ``center`` (``astropy.nddata.Cutout2D``).
    """

    check_dex: bool = True
    error_type: str = "sigma"
    bad_errors: str = "raise"
    mask_means: str = "bad"
    mask_bits: int | None = None
    snr_min: float | None = None
    snr_of: str = "image"
    pixel_scale: float | None = None
    supersampling: int = 1
    center: object = None
    cutout_size: object = None

    def __post_init__(self):
        for name, allowed in (
            ("error_type", ERROR_TYPES),
            ("bad_errors", ("raise", "mask")),
            ("mask_means", ("bad", "good")),
            ("snr_of", ("image", "tracer")),
        ):
            value = getattr(self, name)
            if value not in allowed:
                choices = " or ".join(repr(a) for a in allowed)
                raise ValueError(f"{name} must be {choices}; got {value!r}")
        if self.mask_bits is not None and self.mask_means != "bad":
            raise ValueError("mask_bits needs mask_means='bad' (the bits flag bad pixels)")


def good_pixels(flags, options: MapOptions, source: str) -> np.ndarray:
    """A mask array as ``True`` = use the pixel, following ``options.mask_means``/``mask_bits``."""
    flags = np.asarray(flags)
    if flags.dtype.kind == "f":
        if not np.all(np.isfinite(flags)):
            raise ValueError(f"{source}: the mask contains NaN/inf values")
        if np.any(flags != np.round(flags)):
            raise ValueError(f"{source}: mask values must be integers or bools")
        flags = flags.astype(np.int64)
    if options.mask_bits is not None:
        flagged = (flags.astype(np.int64) & int(options.mask_bits)) != 0
    else:
        flagged = flags != 0 if options.mask_means == "bad" else flags == 0
    return ~np.asarray(flagged, dtype=bool)


def error_values(raw: dict, error_type: str, sources: dict):
    """``(values, report)``: the maps as float arrays (``inf`` -> NaN, reported with a
    :class:`BadDataWarning`), error maps as 1-sigma; the report counts NaN and inf per map."""
    report, values = {}, {}
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
                stacklevel=4,
            )
            a[inf] = np.nan
        values[role] = a
    return values, report


def usable_masks(values, raw, units, sources, options: MapOptions, report) -> dict:
    """``{"tracer": mask, "image": mask}``, ``True`` = fitted: finite value and error, not
    flagged, above the S/N cut and (tracer) in a bin. Adds the counts to ``report``."""
    shape = next(iter(values.values())).shape
    good = raw.get("mask", np.ones(shape, dtype=bool))
    snr_ok = np.ones(shape, dtype=bool)
    if options.snr_min is not None:
        snr_ok = _snr_cut(values, options.snr_min, options.snr_of, units, sources)
    masks = {}
    for base in ("tracer", "image"):
        if base not in values:
            continue
        candidate = good & snr_ok & np.isfinite(values[base])
        if base == "tracer" and "bins" in raw:
            candidate &= raw["bins"] >= 0
        error = values.get(f"{base}_error")
        if error is not None:
            bad = candidate & (np.isinf(error) | (error <= 0))
            if bad.any():
                message = _bad_error_message(error, bad, f"{base}_error", sources[f"{base}_error"])
                if options.bad_errors == "raise":
                    raise ValueError(
                        message + "; errors must be finite and > 0. Mask those pixels, set "
                        "them to NaN, or pass bad_errors='mask' to leave them out"
                    )
                warnings.warn(message + "; masked", BadDataWarning, stacklevel=4)
                report[f"{base}_error"]["masked_bad_error"] = int(bad.sum())
            candidate &= np.isfinite(error) & (error > 0)
        masks[base] = candidate
        report[base].update(
            flagged=int((~good).sum()), below_snr=int((~snr_ok).sum()), used=int(candidate.sum())
        )
        if not candidate.any():
            raise ValueError(
                f"{sources[base]}: no usable pixels in the {base} map (NaN/inf: "
                f"{report[base]['nan'] + report[base]['inf']}, flagged by the mask: "
                f"{report[base]['flagged']}, below the S/N cut: {report[base]['below_snr']})"
            )
    return masks


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


def cutout_arrays(arrays: dict, frame: SkyFrame, center, size):
    """Cut every array to the same Cutout2D footprint; returns (arrays, new frame)."""
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
