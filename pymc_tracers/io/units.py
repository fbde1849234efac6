"""Units of FITS maps: BUNIT strings to astropy units, and which tracers are abundances."""

from __future__ import annotations

import re
import warnings

import astropy.units as u

__all__ = ["BadDataWarning", "is_abundance", "parse_unit", "unit_string"]

_ABUNDANCE = re.compile(r"metal|abund|o/h|fe/h|n/o|12\s*\+\s*log", re.IGNORECASE)


class BadDataWarning(UserWarning):
    """Infinite values (or other bad data) were found in an input map and masked."""


# ---------------------------------------------------------------------------------- units
def is_abundance(name) -> bool:
    """True when a tracer name reads like an abundance (metallicity, 12+log(O/H), [Fe/H]...)."""
    return bool(name) and bool(_ABUNDANCE.search(str(name)))


def parse_unit(value, source: str):
    """An astropy unit from a BUNIT string (None when absent).

    ``dex`` and ``12+log(O/H)`` (any case) read as :data:`astropy.units.dex`; unparseable strings
    become an ``UnrecognizedUnit`` with a warning.
    """
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


def unit_string(unit) -> str:
    if unit is None:
        return ""
    unit = unit if isinstance(unit, u.UnitBase) else parse_unit(unit, "unit")
    try:
        return unit.to_string("fits")
    except ValueError:
        return unit.to_string()
