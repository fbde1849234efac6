"""Units of FITS maps: BUNIT strings to astropy units, and which tracers are abundances."""

from __future__ import annotations

import re
import warnings

import astropy.units as u

__all__ = ["BadDataWarning", "UnitWarning", "is_abundance", "parse_unit", "unit_string"]

_ABUNDANCE = re.compile(r"metal|abund|o/h|fe/h|n/o|12\s*\+\s*log", re.IGNORECASE)


class BadDataWarning(UserWarning):
    """Infinite values (or other bad data) were found in an input map and masked."""


class UnitWarning(UserWarning):
    """A map's BUNIT is not a unit astropy understands; it is kept as an unrecognised unit."""


#: IFU names of a pixel in flux units (``erg/s/cm^2/spaxel``), read as astropy's ``pix``.
_IFU_PIXEL = re.compile(r"\b(spaxel|spaxels|spx)\b", re.IGNORECASE)


# ---------------------------------------------------------------------------------- units
def is_abundance(name) -> bool:
    """True when a tracer name reads like an abundance (metallicity, 12+log(O/H), [Fe/H]...)."""
    return bool(name) and bool(_ABUNDANCE.search(str(name)))


def parse_unit(value, source: str):
    """An astropy unit from a BUNIT string (None when absent).

    ``dex`` and ``12+log(O/H)`` (any case) read as :data:`astropy.units.dex`. The IFU
    conventions ``spaxel`` and ``spx`` read as pixels, so MaNGA's
    ``1E-17 erg/s/cm^2/spaxel`` is ``1e-17 erg / (s cm2 pix)``. A string astropy cannot parse
    becomes an ``UnrecognizedUnit`` with one :class:`UnitWarning` naming ``source``.
    """
    if value is None:
        return None
    if isinstance(value, u.UnitBase):
        return value
    text = str(value).strip()
    if text.lower() in ("dex", "12+log(o/h)", "12 + log(o/h)"):
        return u.dex
    candidates = [text]
    ifu = _IFU_PIXEL.sub("pix", text)
    if ifu != text:
        candidates.append(ifu)
    for candidate in candidates:
        for fmt in ("fits", None):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", u.UnitsWarning)  # multiple slashes
                try:
                    return u.Unit(candidate, format=fmt) if fmt else u.Unit(candidate)
                except ValueError:
                    continue
    warnings.warn(
        f"{source}: BUNIT {text!r} is not a unit astropy understands; kept as an unrecognised "
        "unit (pass tracer_unit= / image_unit=, or [data] tracer_unit in a configuration, to "
        "set it)",
        UnitWarning,
        stacklevel=2,
    )
    return u.Unit(text, parse_strict="silent")


def unit_string(unit) -> str:
    """A unit as a FITS BUNIT string (astropy's generic form when FITS has none)."""
    if unit is None:
        return ""
    unit = unit if isinstance(unit, u.UnitBase) else parse_unit(unit, "unit")
    try:
        return unit.to_string("fits")
    except ValueError:
        return unit.to_string()
