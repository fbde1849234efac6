"""Gradients in the units the literature quotes: per effective radius and per kpc.

A configuration's gradients (``gradient``, ``inner``, ``outer``: tracer units per arcsec of
elliptical radius) are added to the posterior as ``<label>_per_re`` (tracer units per
effective radius of the same component's light profile: ``gradient * r_eff``, draw by draw
when ``r_eff`` is fitted) and, with ``[model] redshift``, ``<label>_per_kpc`` (``gradient *
arcsec_per_kpc(z)``, Planck18; :func:`pymc_tracers.cosmology.gradient_per_kpc`).
"""

from __future__ import annotations

import math

from pymc_tracers.config.registry import profile_specs
from pymc_tracers.cosmology import arcsec_per_kpc

__all__ = ["GRADIENT_UNIT", "add_derived_gradients", "gradient_labels"]

#: The unit code of a gradient in :data:`pymc_tracers.config.registry.PARAMETER_UNITS`.
GRADIENT_UNIT = "T/arcsec"
#: Half-light radius of a Gaussian light profile per ``sigma``: ``sqrt(2 ln 2)``.
GAUSSIAN_R_EFF_PER_SIGMA = math.sqrt(2.0 * math.log(2.0))


def gradient_labels(config) -> list:
    """``(gradient label, r_eff source)`` of every free gradient of the configuration; the
    source is ``("fixed", arcsec)``, ``("free", label, factor)`` or None (no r_eff known)."""
    found = []
    for component in config.components:
        stem = f"{component['name']}_" if component["name"] else ""
        r_eff = _r_eff_source(component["light"], f"{stem}light_")
        _collect(component["tracer"], stem, r_eff, found)
    return found


def _collect(spec, stem, r_eff, found):
    registry = profile_specs("tracer")[spec["profile"]]
    for key, (how, value) in spec["params"].items():
        if how == "profile":
            _collect(value, f"{stem}{key}_", r_eff, found)
        elif how == "prior" and registry.unit(key) == GRADIENT_UNIT:
            found.append((f"{stem}{key}", r_eff))


def _r_eff_source(light, stem):
    params = light["params"]
    for key, factor in (("r_eff", 1.0), ("sigma", GAUSSIAN_R_EFF_PER_SIGMA)):
        if key not in params:
            continue
        how, value = params[key]
        if how == "fixed":
            return ("fixed", float(value) * factor)
        if how in ("prior", "auto"):
            return ("free", f"{stem}{key}", factor)
    return None  # the profile's default r_eff was not written: no per-R_e gradient


def add_derived_gradients(result, config, info) -> dict:
    """Add ``<label>_per_re`` and (with a redshift) ``<label>_per_kpc`` to ``result``'s
    posterior; return ``{name: unit}`` (also stored as ``result.config["derived_units"]``)."""
    posterior = result.idata.posterior
    tracer_unit = _tracer_unit(info)
    redshift = config.model.get("redshift")
    units = {}
    for name, r_eff in gradient_labels(config):
        if name not in posterior:
            continue
        gradient = posterior[name]
        if r_eff is not None:
            factor = r_eff[1] if r_eff[0] == "fixed" else posterior[r_eff[1]] * r_eff[2]
            per_re = gradient * factor
            per_re.attrs = {"unit": f"{tracer_unit} per R_e".strip()}
            posterior[f"{name}_per_re"] = per_re
            units[f"{name}_per_re"] = tracer_unit
        if redshift is not None:
            per_kpc = gradient * float(arcsec_per_kpc(redshift))
            posterior[f"{name}_per_kpc"] = per_kpc
            units[f"{name}_per_kpc"] = f"{tracer_unit} / kpc" if tracer_unit else "1 / kpc"
    result.config["derived_units"] = units
    if redshift is not None:
        result.config["redshift"] = float(redshift)
    return units


def _tracer_unit(info) -> str:
    """The tracer's unit, read off a gradient's unit (``"dex / arcsec"`` -> ``"dex"``)."""
    for unit in info["units"].values():
        if unit.endswith(" / arcsec"):
            return unit[: -len(" / arcsec")]
    return ""
