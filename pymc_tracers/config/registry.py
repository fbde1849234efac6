"""The profiles a configuration can name, read from the profile classes themselves.

There is no second table of profiles: every light and tracer profile that
:mod:`pymc_tracers.profiles` exports is available by its class name, with the keyword
parameters of its constructor (``inspect.signature``), and so is every public class method
that builds one (``"RadialProfile.spline"``, ``"Azimuthal.from_components"``). A constructor
that needs a Python callable (``Expression``, ``RadialProfile(function)``) cannot be written in
TOML and is left out; its class methods are still offered.

Units of parameters follow their names (:data:`PARAMETER_UNITS`): ``T`` stands for the
tracer's unit (dex, km/s), ``T/arcsec`` for a gradient.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from pymc_tracers import profiles
from pymc_tracers.profiles import LightProfile, TracerProfile

__all__ = [
    "LIGHT_PROFILES",
    "PARAMETER_UNITS",
    "TRACER_PROFILES",
    "ProfileSpec",
    "profile_specs",
]

#: Unit of a profile parameter by its name; ``T`` is the tracer's unit. Names not listed are
#: dimensionless (shapes, indices, kernel names, standard-normal coefficients).
PARAMETER_UNITS = {
    "x0": "arcsec",
    "y0": "arcsec",
    "r_eff": "arcsec",
    "r_break": "arcsec",
    "scale_radius": "arcsec",
    "softening": "arcsec",
    "length_scale": "arcsec",
    "feature_scale": "arcsec",
    "L": "arcsec",
    "radii": "arcsec",
    "phi": "rad",
    "phase1": "rad",
    "phase2": "rad",
    "central": "T",
    "value": "T",
    "values": "T",
    "m1": "T",
    "m2": "T",
    "cos1": "T",
    "sin1": "T",
    "cos2": "T",
    "sin2": "T",
    "gradient": "T/arcsec",
    "inner": "T/arcsec",
    "outer": "T/arcsec",
}
#: Units that depend on the kind of profile: a light profile's ``sigma`` is a width, a tracer
#: profile's ``amplitude`` (a GP residual's) is in tracer units.
_KIND_UNITS = {
    "light": {"sigma": "arcsec", "amplitude": "", "center": "arcsec"},
    "tracer": {"amplitude": "T", "center": "arcsec"},
}
#: Constructor parameters that TOML cannot express.
_NOT_FROM_TOML = ("function", "profiles")


@dataclass(frozen=True)
class ProfileSpec:
    """How a configuration builds one profile.

    Attributes
    ----------
    name : str
        The name in a configuration: ``"LinearGradient"``, ``"RadialProfile.spline"``.
    kind : {"light", "tracer"}
    build : callable
        The class or class method.
    parameters : dict
        ``{parameter: unit}`` in constructor order (units as in :data:`PARAMETER_UNITS`).
    required : tuple of str
        Parameters without a default.
    positional : tuple of str
        Parameters passed by position (``Constant(value)``, ``Azimuthal(radial)``).
    """

    name: str
    kind: str
    build: object
    parameters: dict
    required: tuple
    positional: tuple

    def unit(self, parameter: str) -> str:
        """The unit code of ``parameter`` ("" when dimensionless)."""
        return self.parameters.get(parameter, "")

    def make(self, values: dict):
        """The profile built from ``{parameter: value}``."""
        args = [values.pop(p) for p in self.positional if p in values]
        return self.build(*args, **values)


def _spec(name: str, kind: str, build) -> ProfileSpec | None:
    try:
        signature = inspect.signature(build)
    except (TypeError, ValueError):
        return None
    parameters, required, positional = {}, [], []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in _NOT_FROM_TOML:
            return None
        parameters[p.name] = _KIND_UNITS[kind].get(p.name, PARAMETER_UNITS.get(p.name, ""))
        if p.default is p.empty:
            required.append(p.name)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional.append(p.name)
    return ProfileSpec(name, kind, build, parameters, tuple(required), tuple(positional))


def profile_specs(kind: str) -> dict:
    """``{name: ProfileSpec}`` of every ``kind`` ("light" or "tracer") profile exported by
    :mod:`pymc_tracers.profiles` and of their public class methods."""
    base = {"light": LightProfile, "tracer": TracerProfile}[kind]
    specs = {}
    for class_name in profiles.__all__:
        cls = getattr(profiles, class_name)
        if not (inspect.isclass(cls) and issubclass(cls, base)) or cls is base:
            continue
        spec = _spec(class_name, kind, cls)
        if spec is not None:
            specs[class_name] = spec
        for method_name, member in vars(cls).items():
            if isinstance(member, classmethod) and not method_name.startswith("_"):
                name = f"{class_name}.{method_name}"
                spec = _spec(name, kind, getattr(cls, method_name))
                if spec is not None:
                    specs[name] = spec
    return specs


#: Light profiles by name: ``{name: {parameter: unit}}`` (read from the classes).
LIGHT_PROFILES = {name: spec.parameters for name, spec in profile_specs("light").items()}
#: Tracer profiles by name: ``{name: {parameter: unit}}``; ``T`` is the tracer's unit.
TRACER_PROFILES = {name: spec.parameters for name, spec in profile_specs("tracer").items()}
