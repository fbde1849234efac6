"""The ``[lens]`` section: a gravitational lens in front of the galaxy.

Analytic lens models, each a ``[[lens.models]]`` table whose parameters are numbers (fixed) or
prior tables (free, as for components), and/or a deflection map from FITS::

    [model]
    redshift = 2.1                      # the source (the galaxy): gradients in dex/kpc

    [lens]
    z_lens = 0.35
    deflection_x = "alpha_x.fits"       # for D_ls/D_s = 1 unless map_distance_ratio is given
    deflection_y = "alpha_y.fits"

    [[lens.models]]
    profile = "SIE"
    theta_E = {distribution = "Uniform", lower = 0.5, upper = 1.5}
    q = 0.8
    phi = 0.3

The deflection maps are placed on the data through both WCSs (the data file's and the maps')
and scaled by ``D_ls / D_s`` of ``z_lens`` and the source redshift (``z_source``, default
``[model] redshift``).
"""

from __future__ import annotations

from pymc_tracers.config.components import prior_from
from pymc_tracers.config.errors import (
    ConfigError,
    check_keys,
    closest,
    existing_file,
    is_number,
    one_line,
)

__all__ = ["LENS_KEYS", "LENS_PROFILES", "build_lens", "check_lens"]

#: Keys of ``[lens]``.
LENS_KEYS = (
    "models",
    "deflection_x",
    "deflection_y",
    "deflection_unit",
    "z_lens",
    "z_source",
    "map_distance_ratio",
)


def _profiles():
    from pymc_tracers import lensing

    return {
        "SIE": (lensing.SIE, ("theta_E", "q", "phi", "x0", "y0"), ("theta_E",)),
        "NIE": (lensing.NIE, ("theta_E", "core", "q", "phi", "x0", "y0"), ("theta_E", "core")),
        "SIS": (lensing.SIS, ("theta_E", "x0", "y0"), ("theta_E",)),
        "SHEAR": (lensing.ExternalShear, ("gamma1", "gamma2", "x0", "y0"), ("gamma1", "gamma2")),
        "CONVERGENCE": (lensing.ConvergenceSheet, ("kappa", "x0", "y0"), ("kappa",)),
        "POINT_MASS": (lensing.PointMass, ("theta_E", "x0", "y0"), ("theta_E",)),
        "NFW": (lensing.NFW, ("Rs", "alpha_Rs", "x0", "y0"), ("Rs", "alpha_Rs")),
    }


#: ``profile`` names of ``[[lens.models]]`` (lenstronomy's names).
LENS_PROFILES = ("SIE", "NIE", "SIS", "SHEAR", "CONVERGENCE", "POINT_MASS", "NFW")


def check_lens(table, folder, model_section) -> dict:
    """The checked ``[lens]`` section: ``{"models": [(profile, {key: (kind, value)})], ...}``."""
    check_keys(table, LENS_KEYS, "lens")
    out = {"models": [], "map": None}
    models = table.get("models", [])
    if isinstance(models, dict):
        models = [models]
    specs = _profiles()
    for index, model in enumerate(models):
        where = f"lens.models[{index}]"
        if not isinstance(model, dict):
            raise ConfigError(f"[{where}] must be a table with profile = ...; got {model!r}")
        model = dict(model)
        profile = model.pop("profile", None)
        if profile not in specs:
            raise ConfigError(
                f"[{where}] profile = {profile!r}{closest(profile, LENS_PROFILES)}: lens "
                "profiles are " + ", ".join(LENS_PROFILES)
            )
        _, allowed, required = specs[profile]
        params = {}
        for key, value in model.items():
            if key not in allowed:
                raise ConfigError(
                    f"unknown parameter {key!r} of {profile} in [{where}]{closest(key, allowed)}"
                    "; its parameters are " + ", ".join(allowed)
                )
            if isinstance(value, dict):
                params[key] = ("prior", prior_from(value, f"[{where}] {key}"))
            elif is_number(value):
                params[key] = ("fixed", float(value))
            else:
                raise ConfigError(
                    f"[{where}] {key} = {value!r} is neither a number nor a prior table like "
                    '{distribution = "Normal", mu = 0, sigma = 1}'
                )
        missing = [k for k in required if k not in params]
        if missing:
            raise ConfigError(f"[{where}] {profile} needs {', '.join(missing)} = <number or prior>")
        out["models"].append((profile, params))
    has_x, has_y = "deflection_x" in table, "deflection_y" in table
    if has_x != has_y:
        raise ConfigError("[lens] give both deflection_x and deflection_y (FITS files), or neither")
    if has_x:
        z_source = table.get("z_source", model_section.get("redshift"))
        z_lens = table.get("z_lens")
        for key, z in (("z_lens", z_lens), ("z_source", z_source)):
            if not (is_number(z) and z > 0):
                raise ConfigError(
                    f"[lens] deflection maps need {key} = <redshift > 0> (z_source defaults to "
                    f"[model] redshift); got {z!r}"
                )
        if not z_source > z_lens:
            raise ConfigError(
                f"[lens] the source (z = {z_source}) must lie behind the lens (z = {z_lens})"
            )
        ratio = table.get("map_distance_ratio", 1.0)
        if not (is_number(ratio) and ratio > 0):
            raise ConfigError(f"[lens] map_distance_ratio must be a number > 0; got {ratio!r}")
        out["map"] = {
            "x": existing_file(table["deflection_x"], folder, "[lens] deflection_x"),
            "y": existing_file(table["deflection_y"], folder, "[lens] deflection_y"),
            "unit": table.get("deflection_unit"),
            "z_lens": float(z_lens),
            "z_source": float(z_source),
            "ratio": float(ratio),
        }
    elif "z_lens" in table or "z_source" in table:
        raise ConfigError("[lens] z_lens and z_source scale deflection maps; give deflection_x/y")
    if not out["models"] and out["map"] is None:
        raise ConfigError("[lens] needs [[lens.models]] tables or deflection_x/deflection_y maps")
    redshift = model_section.get("redshift")
    if out["map"] and redshift is not None and out["map"]["z_source"] != float(redshift):
        raise ConfigError(
            f"[lens] z_source = {out['map']['z_source']} differs from [model] redshift = "
            f"{redshift}: the galaxy is the source; give one of them"
        )
    return out


def build_lens(checked, data, prefix=""):
    """The lens of a checked ``[lens]`` section inside the current PyMC model: its free
    parameters become variables ``<prefix>lens<i>_<parameter>``; returns ``(lens, units)``."""
    from pymc_tracers.lensing import DeflectionMap, LensSum

    specs = _profiles()
    models, units = [], {}
    for index, (profile, params) in enumerate(checked["models"]):
        values = {}
        for key, (kind, value) in params.items():
            if kind == "prior":
                name = f"{prefix}lens{index}_{key}"
                values[key] = value.create_variable(name)
                units[name] = (
                    "radians"
                    if key == "phi"
                    else ("" if key in ("q", "gamma1", "gamma2", "kappa") else "arcsec")
                )
            else:
                values[key] = value
        try:
            models.append(specs[profile][0](**values))
        except (ValueError, TypeError) as error:
            raise ConfigError(f"[lens.models[{index}]] {profile}: {one_line(error)}") from None
    if checked["map"] is not None:
        spec = checked["map"]
        try:
            models.append(
                DeflectionMap.from_fits(
                    spec["x"],
                    spec["y"],
                    frame=getattr(data, "frame", None),
                    z_lens=spec["z_lens"],
                    z_source=spec["z_source"],
                    map_distance_ratio=spec["ratio"],
                    unit=spec["unit"],
                )
            )
        except (ValueError, OSError) as error:
            raise ConfigError(f"[lens] deflection maps: {one_line(error)}") from None
    return (models[0] if len(models) == 1 else LensSum(models)), units
