"""The profiles a configuration can name, read from the profile classes themselves.

There is no second table of profiles: every light and tracer profile that
:mod:`pymc_tracers.profiles` exports is available by its class name, with the keyword
parameters of its constructor (``inspect.signature``), and so is every public class method
that builds one (``"RadialProfile.spline"``, ``"Azimuthal.from_components"``). A constructor
that needs a Python callable (``Expression``, ``RadialProfile(function)``) cannot be written in
TOML and is left out; its class methods are still offered.

The kinematic parts are read the same way: every :class:`~pymc_tracers.RadialFunction` that
:mod:`pymc_tracers.kinematics` exports (``ArctanCurve``, ``TanhCurve``,
``ExponentialDiscCurve``, ``ExponentialDispersion``, ``RadialConstant``) and the
``RadialProfile`` class methods (a spline in disc radius, its sky geometry left out: the
disc's geometry sets where R is) are the ``"radial"`` profiles of rotation curves and
dispersion profiles, and :class:`~pymc_tracers.DiscGeometry` gives the disc's parameters.

Units of parameters follow their names (:data:`PARAMETER_UNITS`): ``T`` stands for the
tracer's unit (dex, km/s), ``T/arcsec`` for a gradient.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from pymc_tracers import kinematics, profiles
from pymc_tracers.kinematics import DiscGeometry, RadialFunction
from pymc_tracers.profiles import LightProfile, RadialProfile, TracerProfile

__all__ = [
    "DISC_PARAMETERS",
    "LIGHT_PROFILES",
    "PARAMETER_UNITS",
    "RADIAL_PROFILES",
    "TRACER_PROFILES",
    "ProfileSpec",
    "disc_spec",
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
    # kinematics (T = km/s)
    "v_max": "T",
    "v_sys": "T",
    "sigma0": "T",
    "floor": "T",
    "r_t": "arcsec",
    "r_d": "arcsec",
    "r_sigma": "arcsec",
    "inclination": "rad",
}
#: Units that depend on the kind of profile: a light profile's ``sigma`` is a width, a tracer
#: profile's ``amplitude`` (a GP residual's) is in tracer units.
_KIND_UNITS = {
    "light": {"sigma": "arcsec", "amplitude": "", "center": "arcsec"},
    "tracer": {"amplitude": "T", "center": "arcsec"},
    "radial": {},
    "disc": {},
}
#: Sky-geometry parameters of a ``RadialProfile``, left out when it is a function of disc
#: radius (:func:`pymc_tracers.kinematics.as_radial_function` needs them at their defaults).
_SKY_GEOMETRY = ("x0", "y0", "q", "phi")
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
    """``{name: ProfileSpec}`` of every ``kind`` profile and of its public class methods.

    ``kind`` is ``"light"`` or ``"tracer"`` (what :mod:`pymc_tracers.profiles` exports) or
    ``"radial"``: the functions of disc radius (km/s against arcsec) that
    :mod:`pymc_tracers.kinematics` exports, for rotation curves and dispersion profiles,
    and the ``RadialProfile`` class methods without their sky geometry.
    """
    if kind == "radial":
        return _radial_specs()
    base = {"light": LightProfile, "tracer": TracerProfile}[kind]
    return _specs_of(profiles, base, kind)


def _specs_of(module, base, kind) -> dict:
    specs = {}
    for class_name in module.__all__:
        cls = getattr(module, class_name)
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


def _radial_specs() -> dict:
    specs = _specs_of(kinematics, RadialFunction, "radial")
    for name, spec in _specs_of(profiles, TracerProfile, "radial").items():
        if not name.startswith(f"{RadialProfile.__name__}."):
            continue
        parameters = {p: u for p, u in spec.parameters.items() if p not in _SKY_GEOMETRY}
        specs[name] = ProfileSpec(
            name, "radial", spec.build, parameters, spec.required, spec.positional
        )
    return specs


def disc_spec() -> ProfileSpec:
    """The parameters of a disc: :class:`~pymc_tracers.DiscGeometry`'s (centre, kinematic
    position angle, inclination) and the systemic velocity ``v_sys`` of
    :class:`~pymc_tracers.DiscVelocity` (km/s)."""
    spec = _spec("DiscGeometry", "disc", DiscGeometry)
    parameters = {**spec.parameters, "v_sys": PARAMETER_UNITS["v_sys"]}
    return ProfileSpec("disc", "disc", DiscGeometry, parameters, spec.required, ())


#: Light profiles by name: ``{name: {parameter: unit}}`` (read from the classes).
LIGHT_PROFILES = {name: spec.parameters for name, spec in profile_specs("light").items()}
#: Tracer profiles by name: ``{name: {parameter: unit}}``; ``T`` is the tracer's unit.
TRACER_PROFILES = {name: spec.parameters for name, spec in profile_specs("tracer").items()}
#: Rotation curves and dispersion profiles by name: ``{name: {parameter: unit}}``, ``T`` = km/s.
RADIAL_PROFILES = {name: spec.parameters for name, spec in profile_specs("radial").items()}
#: Parameters of ``[kinematics.disc]``: ``{parameter: unit}``.
DISC_PARAMETERS = disc_spec().parameters
