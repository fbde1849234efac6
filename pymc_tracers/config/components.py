"""Checking ``[[components]]``: each component's light and tracer profile, their parameters
(fixed values, priors, ``"auto"`` estimates, ties to the light profile) and their priors.

A parameter is stored as ``(kind, value)`` with ``kind`` one of ``"fixed"``, ``"prior"``
(a ``pymc_extras.prior.Prior``), ``"auto"``, ``"tie"`` (the name of a light parameter) or
``"profile"`` (a nested profile table, e.g. the radial profile of ``Azimuthal``).
"""

from __future__ import annotations

import pymc as pm
from pymc_extras.prior import Prior

from pymc_tracers.config.errors import ConfigError, check_keys, closest, is_number, one_line
from pymc_tracers.config.registry import ProfileSpec, profile_specs

__all__ = [
    "AUTO_PARAMETERS",
    "EXTRA_KEYS",
    "POSITIVE_PRIOR_PARAMETERS",
    "check_component",
    "check_profile",
    "prior_from",
]

#: Light parameters that accept ``"auto"``: a prior centred on photutils' estimate from the
#: light image (centroid, orientation, axis ratio; half-light radius from the growth curve).
AUTO_PARAMETERS = ("x0", "y0", "q", "phi", "r_eff", "sigma", "amplitude")
#: Keys of a profile table besides its parameters: ``profile``, ``pa`` (instead of ``phi``)
#: and ``center`` (a sky position, instead of ``x0``/``y0``).
EXTRA_KEYS = ("profile", "pa", "center")
#: Parameters of PyMC distributions that must be > 0 when given as numbers.
POSITIVE_PRIOR_PARAMETERS = ("sigma", "tau", "beta", "lam", "alpha", "b", "kappa", "nu")


def prior_from(value, where):
    """A ``pymc_extras.prior.Prior`` from a config table, or ConfigError naming ``where``.

    ``shape = n`` in the table makes a vector of ``n`` values (returned as ``prior.shape``
    in the ``(prior, shape)`` pair by :func:`prior_and_shape`).
    """
    return prior_and_shape(value, where)[0]


def prior_and_shape(value, where):
    """``(Prior, shape or None)`` from a config table; see :func:`prior_from`."""
    table = dict(value)
    dist = table.pop("distribution", table.pop("dist", None))
    if dist is None:
        raise ConfigError(
            f'{where} = {value!r} is not a prior: give distribution = "Normal" and its '
            'parameters, e.g. {distribution = "Normal", mu = 8.5, sigma = 1}'
        )
    shape = table.pop("shape", None)
    if shape is not None and not (isinstance(shape, int) and shape >= 1):
        raise ConfigError(f"{where}: shape must be an integer >= 1; got {shape!r}")
    kwargs = dict(table.pop("kwargs", {}))
    kwargs.update(table)
    for key, inner in list(kwargs.items()):
        if isinstance(inner, dict):
            kwargs[key] = prior_from(inner, f"{where}.{key}")
        elif key in POSITIVE_PRIOR_PARAMETERS and is_number(inner) and inner <= 0:
            raise ConfigError(f"{where}: the {dist} prior has {key} = {inner!r}; {key} must be > 0")
    if is_number(kwargs.get("lower")) and is_number(kwargs.get("upper")):
        if not kwargs["lower"] < kwargs["upper"]:
            raise ConfigError(
                f"{where}: the {dist} prior has lower = {kwargs['lower']!r} >= upper = "
                f"{kwargs['upper']!r}"
            )
    try:
        prior = Prior(str(dist), **kwargs)
    except Exception as error:  # noqa: BLE001  (pymc-extras raises several types)
        names = [n for n in dir(pm.distributions) if n[:1].isupper()]
        hint = closest(dist, names) if str(dist) not in names else ""
        raise ConfigError(
            f"{where}: {{distribution = {dist!r}, ...}} is not a valid prior{hint}: "
            f"{one_line(error)}"
        ) from None
    return prior, shape


def check_component(component, index, count) -> dict:
    """The checked form of one ``[[components]]`` table: ``{"name", "light", "tracer"}``, each
    profile as ``{"profile": name, "params": {key: (kind, value)}, "shapes": {key: n}}``."""
    where = f"components[{index}]"
    check_keys(component, ("name", "light", "tracer"), where)
    for part in ("light", "tracer"):
        if part not in component:
            raise ConfigError(f"[{where}] needs a [{where}.{part}] table with profile = ...")
    name = component.get("name", f"c{index}" if count > 1 else "")
    if not isinstance(name, str):
        raise ConfigError(f"[{where}] name must be a string; got {name!r}")
    out = {"name": name}
    light_params = ()
    for part in ("light", "tracer"):
        out[part] = check_profile(component[part], part, f"{where}.{part}", light_params)
        if part == "light":
            light_params = tuple(profile_specs("light")[out[part]["profile"]].parameters)
    return out


def check_profile(table, kind: str, where: str, light_params=()) -> dict:
    """Check one profile table (``kind`` "light" or "tracer") at ``[where]``."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table with profile = ...; got {table!r}")
    specs = profile_specs(kind)
    table = dict(table)
    profile = table.pop("profile", None)
    if profile not in specs:
        raise ConfigError(
            f"[{where}] profile = {profile!r}{closest(profile, specs)}: {kind} profiles are "
            + ", ".join(specs)
        )
    spec = specs[profile]
    allowed = tuple(spec.parameters) + _extra_keys(spec)
    params, shapes = {}, {}
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(
                f"unknown parameter {key!r} of {profile} in [{where}]{closest(key, allowed)}; "
                "its parameters are " + ", ".join(allowed)
            )
        params[key], shape = _parameter(spec, key, value, where, kind, light_params)
        if shape is not None:
            shapes[key] = shape
    if "pa" in params and "phi" in params:
        raise ConfigError(f"[{where}] give pa (deg east of north) or phi, not both")
    if "center" in params and ("x0" in params or "y0" in params) and "x0" in spec.parameters:
        raise ConfigError(f"[{where}] give center or x0/y0, not both")
    missing = [p for p in spec.required if p not in params]
    if missing:
        raise ConfigError(
            f"[{where}] {profile} needs {', '.join(missing)} = <number or prior table>"
        )
    return {"profile": profile, "params": params, "shapes": shapes}


def _extra_keys(spec: ProfileSpec) -> tuple:
    """Keys besides the constructor's: ``pa`` (deg east of north, instead of ``phi``) and
    ``center`` (a sky position, instead of ``x0``/``y0``)."""
    extra = ()
    if "phi" in spec.parameters:
        extra += ("pa",)
    if "x0" in spec.parameters and "center" not in spec.parameters:
        extra += ("center",)
    return extra


def _parameter(spec: ProfileSpec, key, value, where, kind, light_params):
    """``((kind, value), shape or None)`` of one parameter of the profile at ``[where]``."""
    label = f"[{where}] {key}"
    if key == "center" and "center" not in spec.parameters:
        if not isinstance(value, str):
            raise ConfigError(
                f'{label} must be a sky position string, e.g. "150.1 2.2" (degrees) or '
                f'"10h00m28.6s +02d12m21s"; got {value!r}'
            )
        return ("fixed", value), None
    if isinstance(value, dict) and "profile" in value:
        if kind != "tracer":
            raise ConfigError(f"{label}: only tracer profiles take a nested profile table")
        nested = check_profile(value, "tracer", f"{where}.{key}", light_params)
        return ("profile", nested), None
    if isinstance(value, dict):
        if key == "pa":
            raise ConfigError(f"{label}: pa must be a fixed number of degrees")
        prior, shape = prior_and_shape(value, label)
        return ("prior", prior), shape
    if is_number(value):
        return ("fixed", value), None
    if value == "auto":
        if kind != "light" or key not in AUTO_PARAMETERS:
            raise ConfigError(
                f'{label} = "auto": auto priors exist for light parameters '
                + ", ".join(AUTO_PARAMETERS)
            )
        return ("auto", None), None
    if isinstance(value, str) and value.startswith("light."):
        if kind == "light" or value[6:] not in light_params:
            raise ConfigError(
                f"{label} = {value!r}: only tracer (and disc) parameters can be tied to the same "
                "component's light parameter (light.x0, light.y0, light.q, light.phi...)"
            )
        return ("tie", value[6:]), None
    if isinstance(value, (str, list)) and not isinstance(value, bool):
        # fixed settings: a GP kernel name, knot radii, a box half-width pair ...
        return ("fixed", tuple(value) if isinstance(value, list) else value), None
    raise ConfigError(
        f"{label} = {value!r} is neither a number nor a prior table like "
        '{distribution = "Normal", mu = 0, sigma = 1}'
    )
