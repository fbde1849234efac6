"""The ``[kinematics]`` section: a velocity (and dispersion) fit of a thin rotating disc.

A configuration with ``[kinematics]`` fits moment maps instead of a tracer map: it has no
``[data]`` or ``[[components]]`` section (the maps are named in ``[kinematics]``, the light in
``[kinematics.light]``)::

    [kinematics]
    file = "maps.fits"          # velocity, dispersion, errors (read_kinematic_maps)
    velocity = "V"              # km/s; 1-sigma errors in V_ERR, or inverse variances V_IVAR
    dispersion = "SIGMA"        # optional; errors in SIGMA_ERR or SIGMA_IVAR
    lsf = 30.0                  # km/s, or an extension (EMLINE_INSTSIGMA); omit if subtracted

    [kinematics.light]          # any light profile, fixed numbers or priors
    profile = "Exponential"
    r_eff = 1.5
    q = 0.55
    phi = 0.5

    [kinematics.disc]           # centre, kinematic PA (receding side), inclination, v_sys
    phi = {distribution = "Normal", mu = 0.5, sigma = 0.3}
    q0 = 0.2                    # inclination from the light's q; or inclination = <radians>
    v_sys = {distribution = "Normal", mu = 0, sigma = 50}

    [kinematics.rotation]       # a rotation curve by class name
    profile = "ArctanCurve"
    v_max = {distribution = "HalfNormal", sigma = 400}
    r_t = {distribution = "LogNormal", mu = 0, sigma = 1}

    [kinematics.dispersion_profile]     # optional: the intrinsic dispersion profile
    profile = "RadialConstant"
    value = {distribution = "HalfNormal", sigma = 100}

Rotation curves and dispersion profiles are the radial functions of
:mod:`pymc_tracers.kinematics`, read from the classes
(:func:`pymc_tracers.config.registry.profile_specs` ``("radial")``). This module checks the
section (:func:`check_kinematics`); :mod:`pymc_tracers.config.kinematic_data` reads its maps
(:func:`~pymc_tracers.config.kinematic_data.read_kinematic_data`) and
:mod:`pymc_tracers.config.kinematic_model` builds the model and writes the outputs.
"""

from __future__ import annotations

import math

import astropy.units as u
from astropy.io import fits

from pymc_tracers.config.components import _parameter, check_profile
from pymc_tracers.config.errors import (
    ConfigError,
    check_keys,
    closest,
    existing_file,
    is_number,
    one_line,
)
from pymc_tracers.config.registry import disc_spec, profile_specs
from pymc_tracers.kinematics.observe import KINEMATIC_METHODS

__all__ = [
    "DISC_EXTRA_KEYS",
    "KINEMATICS_KEYS",
    "KINEMATIC_MODEL_KEYS",
    "KINEMATIC_TABLES",
    "check_kinematics",
    "kinematic_parameters",
]
#: The stem of the variables of each table: ``rotation_v_max``, ``dispersion_value``, ``x0``.
TABLE_STEMS = {
    "light": "light_",
    "disc": "",
    "rotation": "rotation_",
    "dispersion_profile": "dispersion_",
    "radial_flow": "radial_flow_",
}

#: The tables inside ``[kinematics]``.
KINEMATIC_TABLES = ("light", "disc", "rotation", "dispersion_profile", "radial_flow")
#: Keys of ``[kinematics]`` (the maps, how they are read and rendered) and its tables.
KINEMATICS_KEYS = (
    "file",
    "velocity",
    "dispersion",
    "flux",
    "lsf",
    "bins",
    "mask",
    "channel",
    "bin_channel",
    "error_suffix",
    "ivar_suffix",
    "mask_suffix",
    "supersampling",
    "method",
    "tolerance",
    *KINEMATIC_TABLES,
)
#: The ``[model]`` keys a kinematic fit reads: the convolution scale and Student-t's nu.
KINEMATIC_MODEL_KEYS = ("convolve_at", "nu")
#: Keys of ``[kinematics.disc]`` besides the parameters of the disc: ``pa`` (degrees east of
#: north of the receding half, instead of ``phi``), ``center`` (a sky position, instead of
#: ``x0``/``y0``) and ``q0`` (the intrinsic thickness tying the inclination to the light's q).
DISC_EXTRA_KEYS = ("pa", "center", "q0")
#: What the map options default to (MaNGA DAP names for the line and the suffixes).
_READER_DEFAULTS = {
    "channel": "Ha-6564",
    "bin_channel": 3,
    "error_suffix": "_ERR",
    "ivar_suffix": "_IVAR",
    "mask_suffix": "_MASK",
}
#: Largest inclination (radians): edge-on, where a thin disc cannot be deprojected.
_EDGE_ON = math.pi / 2


# ------------------------------------------------------------------------------ checking
def check_kinematics(table, folder, model_section) -> dict:
    """The checked ``[kinematics]`` section (files must exist and hold the extensions named).

    Returns
    -------
    dict
        ``file`` (Path), the map options, ``supersampling``, ``method``, ``tolerance``,
        ``units`` (factors to km/s) and the checked tables ``light``, ``disc``, ``rotation``,
        ``dispersion_profile`` and ``radial_flow`` (None when absent).

    Raises
    ------
    ConfigError
        One line naming the key and the fix.
    """
    check_keys(table, KINEMATICS_KEYS, "kinematics")
    out = {**_READER_DEFAULTS, **{k: v for k, v in table.items() if k not in KINEMATIC_TABLES}}
    if "file" not in out:
        raise ConfigError('[kinematics] needs file = "<FITS file with the velocity map>"')
    out["file"] = existing_file(out["file"], folder, "[kinematics] file")
    if "velocity" not in out:
        raise ConfigError('[kinematics] needs velocity = "<extension of the velocity map>"')
    _check_options(out)
    out["units"] = _check_extensions(out)
    _check_model_keys(model_section)
    _check_tables(table, out)
    return out


def _check_options(out) -> None:
    """Check the map options of ``[kinematics]`` and fill in ``supersampling``, ``method`` and
    ``tolerance``."""
    for key in ("velocity", "dispersion", "flux", "bins", "mask"):
        value = out.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise ConfigError(
                f"[kinematics] {key} must be an extension name (a string); got {value!r}"
            )
    for key in ("error_suffix", "ivar_suffix", "mask_suffix"):
        if not isinstance(out[key], str):
            raise ConfigError(f"[kinematics] {key} must be a string; got {out[key]!r}")
    channel = out["channel"]
    if isinstance(channel, bool) or not isinstance(channel, (str, int)):
        raise ConfigError(
            f'[kinematics] channel must be a line name ("Ha-6564") or a 0-based index; got '
            f"{channel!r}"
        )
    if isinstance(out["bin_channel"], bool) or not isinstance(out["bin_channel"], int):
        raise ConfigError(
            f"[kinematics] bin_channel must be an integer plane; got {out['bin_channel']!r}"
        )
    lsf = out.get("lsf")
    if lsf is not None and not (isinstance(lsf, str) and lsf) and not (is_number(lsf) and lsf >= 0):
        raise ConfigError(
            f"[kinematics] lsf must be the instrumental dispersion in km/s (a number >= 0) or the "
            f'extension holding its map (e.g. "EMLINE_INSTSIGMA"); got {lsf!r}'
        )
    supersampling = out.setdefault("supersampling", 2)
    if isinstance(supersampling, bool) or not isinstance(supersampling, int) or supersampling < 1:
        raise ConfigError(
            f"[kinematics] supersampling must be an integer >= 1; got {supersampling!r}"
        )
    method = out.setdefault("method", "auto")
    if method not in KINEMATIC_METHODS:
        raise ConfigError(
            f"[kinematics] method = {method!r}{closest(method, KINEMATIC_METHODS)}; choose one "
            "of " + ", ".join(KINEMATIC_METHODS)
        )
    tolerance = out.setdefault("tolerance", 1e-2)
    if not (is_number(tolerance) and tolerance > 0):
        raise ConfigError(f"[kinematics] tolerance must be a number of km/s > 0; got {tolerance!r}")


def _check_model_keys(model_section) -> None:
    """Only the ``[model]`` keys a kinematic fit reads (:data:`KINEMATIC_MODEL_KEYS`)."""
    for key in model_section:
        if key not in KINEMATIC_MODEL_KEYS:
            hint = {
                "tracer_scale": "velocities and dispersions are averaged linearly",
                "fit_image": 'give the flux map as [kinematics] flux = "<extension>"',
            }.get(key, "remove it")
            raise ConfigError(
                f"[model] {key} does not apply to a kinematic fit ({hint}); a kinematic fit "
                "reads " + " and ".join(KINEMATIC_MODEL_KEYS) + " from [model]"
            )


def _check_extensions(spec) -> dict:
    """Check that the extensions named exist (with errors for the fitted maps); return the
    factor to km/s of each velocity-like map from its ``BUNIT`` (1 without one)."""
    path = spec["file"]
    try:
        with fits.open(path) as hdus:
            headers = {h.name.upper(): h.header for h in hdus}
    except OSError as error:
        raise ConfigError(f"[kinematics] file {path.name}: {one_line(error)}") from None
    found = ", ".join(n for n in headers if n != "PRIMARY")
    factors = {}
    for key in ("velocity", "dispersion", "flux", "lsf", "bins", "mask"):
        name = spec.get(key)
        if not isinstance(name, str):
            continue
        if name.upper() not in headers:
            raise ConfigError(
                f"[kinematics] {key} = {name!r}: {path.name} has no extension {name!r}"
                f"{closest(name, headers)}; its extensions are {found}"
            )
        if key in ("velocity", "dispersion", "flux"):
            error, ivar = name + spec["error_suffix"], name + spec["ivar_suffix"]
            if error.upper() not in headers and ivar.upper() not in headers:
                raise ConfigError(
                    f"[kinematics] {key} = {name!r}: {path.name} has neither {error!r} (1-sigma "
                    f"errors) nor {ivar!r} (inverse variances); add one, or name their suffix "
                    "with error_suffix / ivar_suffix"
                )
        if key in ("velocity", "dispersion", "lsf"):
            factors[key] = _to_km_per_s(headers[name.upper()].get("BUNIT"), key, name)
    return factors


def _to_km_per_s(bunit, key, name) -> float:
    """The factor that turns a map with ``BUNIT = bunit`` into km/s (1 without a unit)."""
    if bunit is None or not str(bunit).strip():
        return 1.0
    try:
        return float(u.Unit(str(bunit)).to(u.km / u.s))
    except (ValueError, u.UnitConversionError):
        raise ConfigError(
            f"[kinematics] {key} = {name!r} has BUNIT = {bunit!r}, not a velocity: give the "
            "extension of a map in km/s (or m/s), or fix its BUNIT"
        ) from None


def _check_tables(table, out) -> None:
    """Check ``light``, ``disc``, ``rotation``, ``dispersion`` and ``radial_flow``."""
    for name in ("light", "disc", "rotation"):
        if name not in table:
            example = {
                "light": 'profile = "Exponential", r_eff, q, phi',
                "disc": "phi (or pa), inclination (or q0), v_sys",
                "rotation": 'profile = "ArctanCurve", v_max, r_t',
            }[name]
            raise ConfigError(f"[kinematics] needs a [kinematics.{name}] table ({example})")
    light = check_profile(table["light"], "light", "kinematics.light")
    for key, (how, _) in light["params"].items():
        if how == "auto":
            raise ConfigError(
                f'[kinematics.light] {key} = "auto": a kinematic fit has no light image to '
                "estimate it from; give a number or a prior table"
            )
    out["light"] = light
    light_params = tuple(profile_specs("light")[light["profile"]].parameters)
    out["disc"] = _check_disc(table["disc"], light, light_params)
    out["rotation"] = check_profile(
        table["rotation"], "radial", "kinematics.rotation", light_params
    )
    out["dispersion_profile"] = None
    if "dispersion_profile" in table:
        out["dispersion_profile"] = check_profile(
            table["dispersion_profile"], "radial", "kinematics.dispersion_profile", light_params
        )
    elif out.get("dispersion") is not None:
        raise ConfigError(
            f"[kinematics] dispersion = {out['dispersion']!r} is fitted: add a "
            '[kinematics.dispersion_profile] table (e.g. profile = "RadialConstant", value = '
            "<prior>)"
        )
    out["radial_flow"] = None
    if "radial_flow" in table:
        out["radial_flow"] = check_profile(
            table["radial_flow"], "radial", "kinematics.radial_flow", light_params
        )


def _check_disc(table, light, light_params) -> dict:
    """The checked ``[kinematics.disc]``: ``{"params": {key: (kind, value)}, "shapes": {},
    "q0": float or None}``."""
    where = "kinematics.disc"
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table of disc parameters; got {table!r}")
    spec = disc_spec()
    allowed = (*spec.parameters, *DISC_EXTRA_KEYS)
    params = {}
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r} in [{where}]{closest(key, allowed)}; its keys are "
                + ", ".join(allowed)
            )
        if key == "q0":
            continue
        params[key], shape = _parameter(spec, key, value, where, "disc", light_params)
        if shape is not None:
            raise ConfigError(f"[{where}] {key}: a disc parameter is one number; remove shape")
    q0 = table.get("q0")
    if "pa" in params and "phi" in params:
        raise ConfigError(
            f"[{where}] give pa (degrees east of north, receding side) or phi (radians), not both"
        )
    if "pa" not in params and "phi" not in params:
        raise ConfigError(
            f"[{where}] needs the kinematic position angle of the receding side: phi = <radians "
            "or prior> or pa = <degrees east of north>"
        )
    if "center" in params and ("x0" in params or "y0" in params):
        raise ConfigError(f"[{where}] give center or x0/y0, not both")
    if q0 is not None and "inclination" in params:
        raise ConfigError(
            f"[{where}] inclination is given both ways: inclination = ... and q0 = {q0!r} (which "
            "ties it to the light's q); keep one"
        )
    if q0 is None and "inclination" not in params:
        raise ConfigError(
            f"[{where}] needs inclination = <radians or prior> or q0 = <intrinsic thickness, "
            "e.g. 0.2> to tie it to [kinematics.light] q"
        )
    if q0 is not None:
        if not (is_number(q0) and 0 <= q0 < 1):
            raise ConfigError(
                f"[{where}] q0 (intrinsic thickness c/a) must be in [0, 1); got {q0!r}"
            )
        if "q" not in light["params"]:
            raise ConfigError(
                f"[{where}] q0 ties the inclination to the light's axis ratio: give q in "
                "[kinematics.light]"
            )
    if "inclination" in params:
        _check_inclination(*params["inclination"])
    return {"params": params, "shapes": {}, "q0": None if q0 is None else float(q0)}


def _check_inclination(how, value) -> None:
    """Inclinations are radians in [0, pi/2): catch degrees and edge-on values."""
    label = "[kinematics.disc] inclination"
    if how == "fixed":
        if not is_number(value) or not 0 <= value < _EDGE_ON:
            hint = (
                f"; {value} looks like degrees: write {math.radians(value):.4f}"
                if is_number(value) and _EDGE_ON <= value < 90
                else ""
            )
            raise ConfigError(
                f"{label} = {value!r} must be in radians, 0 (face-on) <= i < pi/2 = 1.5708{hint}"
            )
    elif how == "prior":
        numbers = {k: v for k, v in value.parameters.items() if is_number(v)}
        big = {k: v for k, v in numbers.items() if k in ("mu", "lower", "upper") and v > _EDGE_ON}
        if big:
            key, number = next(iter(big.items()))
            raise ConfigError(
                f"{label}: the prior has {key} = {number}, beyond edge-on (pi/2 = 1.5708 "
                "radians); inclinations are in radians"
                + (f" ({number} deg = {math.radians(number):.4f})" if number < 90 else "")
            )
    elif how == "tie":
        raise ConfigError(
            f"{label} cannot be a light parameter; tie it to the light's q with q0 = <thickness>"
        )


def kinematic_parameters(table):
    """``(variable name, value as written)`` of every parameter of a raw ``[kinematics]``
    section's tables (the survey reads interim priors from them)."""
    for part, stem in TABLE_STEMS.items():
        for key, value in dict(table.get(part, {})).items():
            if key != "profile":
                yield f"{stem}{key}", value
