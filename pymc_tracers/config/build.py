"""Building the PyMC model of a configuration: profiles from the checked components, the
forward model, and the likelihood of the tracer map (and of the light image when asked)."""

from __future__ import annotations

import astropy.units as u
import pymc as pm

from pymc_tracers.config.auto import auto_prior, light_estimates
from pymc_tracers.config.data import sky_position
from pymc_tracers.config.errors import ConfigError, one_line
from pymc_tracers.config.lens import build_lens
from pymc_tracers.config.registry import profile_specs
from pymc_tracers.config.schema import FitConfig
from pymc_tracers.forward import Component, observe
from pymc_tracers.model.binned import binned_tracer_likelihood
from pymc_tracers.model.likelihood import image_likelihood, tracer_likelihood

__all__ = ["build_model", "tracer_scale_of", "unit_text"]


def unit_text(unit, tracer_unit) -> str:
    """A parameter's unit code (``"T"``, ``"T/arcsec"``, ``"arcsec"``...) as a unit string."""
    t = "" if tracer_unit is None else tracer_unit.to_string()
    if unit == "T":
        return t
    if unit == "T/arcsec":
        return f"{t} / arcsec" if t else "1 / arcsec"
    return unit


def tracer_scale_of(config: FitConfig, data) -> str:
    """``[model] tracer_scale``, or its default from the tracer's unit: ``"log"`` for dex.

    Any other unit needs an explicit choice (a velocity is averaged linearly, a linear line
    ratio too, a metallicity in dex as ``10**Z``), so a missing ``tracer_scale`` with a unit
    that is not dex is a ConfigError.
    """
    scale = config.model.get("tracer_scale")
    if scale is not None:
        return scale
    unit = data.units.get("tracer")
    if unit == u.dex:
        return "log"
    said = "no unit (no BUNIT)" if unit is None else f"unit {unit.to_string()!r}"
    raise ConfigError(
        f"[model] tracer_scale: the tracer {data.tracer_name!r} has {said}, not dex, so say how "
        'it is averaged over the light: tracer_scale = "linear" (velocities, linear ratios) '
        "or \"log\" (quantities in dex; the default for BUNIT = 'dex')"
    )


class _ModelBuilder:
    """Adds one configuration's variables to a PyMC model (see :func:`build_model`)."""

    def __init__(self, config, data, *, prefix, overrides):
        self.config, self.data, self.prefix = config, data, prefix
        self.overrides = dict(overrides or {})
        self.tracer_unit = data.units.get("tracer")
        self.units, self.fixed, self.auto = {}, {}, {}
        wants_auto = any(
            kind == "auto" for c in config.components for kind, _ in c["light"]["params"].values()
        )
        self.estimates = light_estimates(data) if wants_auto else None

    def component(self, component, index) -> Component:
        where = f"components[{index}]" + (f" ({component['name']})" if component["name"] else "")
        stem = f"{component['name']}_" if component["name"] else ""
        light = self.profile(component["light"], "light", f"{stem}light_", where, {})
        tracer = self.profile(component["tracer"], "tracer", stem, where, light.values)
        return Component(light.profile, tracer.profile)

    def profile(self, spec, kind, stem, where, light_values, *, table=None):
        """A built profile (``.profile``) with the values it was given (``.values``);
        ``table`` names its table in messages (default ``<where>.<kind>``)."""
        table = table or f"{where}.{kind}"
        registry = profile_specs(kind)[spec["profile"]]
        values = {}
        for key, (how, value) in spec["params"].items():
            label = stem + key
            if how == "profile":
                values[key] = self.profile(value, kind, f"{label}_", where, light_values).profile
            elif how == "tie":
                values[key] = self.tie(value, key, table, where, light_values)
            elif key == "pa" and "phi" in registry.parameters:
                values["phi"] = self._phi_from_pa(value, table)
                self.fixed[label] = value
            elif key == "center" and "center" not in registry.parameters:
                values["x0"], values["y0"] = self._grid_position(value, table)
                self.fixed[label] = value
            else:
                values[key] = self.parameter(how, value, key, label, registry, spec)
        try:
            profile = registry.make(dict(values))
        except (ValueError, TypeError) as error:
            raise ConfigError(f"[{table}] {spec['profile']}: {one_line(error)}") from None
        return _Built(profile, values)

    @staticmethod
    def tie(value, key, table, where, light_values):
        """The light parameter ``value`` that ``key`` of ``[table]`` is tied to."""
        if value not in light_values:
            raise ConfigError(
                f"[{table}] {key} = 'light.{value}': the light profile does not set {value} "
                f"(give it in [{where}.light])"
            )
        return light_values[value]

    def parameter(self, how, value, key, label, registry, spec):
        """The value of one parameter: a number, a setting, or a new random variable."""
        name = self.prefix + label
        if how == "fixed":
            self.fixed[label] = value
            return value
        self.units[name] = unit_text(registry.unit(key), self.tracer_unit)
        if how == "auto":
            prior = auto_prior(key, self.estimates, self.data.pixel_scale)
            self.auto[label] = {"estimate": self.estimates[key], "prior": prior.to_dict()}
            return prior.create_variable(name)
        if label in self.overrides:
            return self.overrides.pop(label)
        shape = spec.get("shapes", {}).get(key)
        if shape is None:
            return value.create_variable(name)
        dim = f"{name}_index"
        model = pm.modelcontext(None)
        if dim not in model.coords:
            model.add_coord(dim, list(range(shape)))
        return value.__class__(value.distribution, **value.parameters, dims=dim).create_variable(
            name
        )

    def _phi_from_pa(self, pa, where):
        try:
            return self.data.phi_from_pa(pa)
        except ValueError as error:
            raise ConfigError(f"[{where}] pa: {one_line(error)}") from None

    def _grid_position(self, text, where):
        coord = sky_position(text, f"[{where}] center")
        try:
            x0, y0 = self.data.to_grid(coord)
        except ValueError as error:
            raise ConfigError(f"[{where}] center: {one_line(error)}") from None
        return float(x0), float(y0)


class _Built:
    def __init__(self, profile, values):
        self.profile, self.values = profile, values


def variable_name(text) -> str:
    """``text`` as a PyMC variable name (alphanumerics and underscores)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in str(text)).strip("_")
    return cleaned or "tracer"


def build_model(config: FitConfig, data, psf, *, model=None, prefix="", overrides=None):
    """The PyMC model of the configuration; returns ``(model, info)``.

    ``info`` holds ``name`` (the likelihood), ``binned`` (bool), ``units`` (free parameter ->
    unit string), ``fixed`` (fixed parameters in grid units), ``auto`` (the ``"auto"``
    priors), ``tracer_scale``, ``observation`` and ``observations`` (what
    :func:`pymc_tracers.fit` checks after sampling).

    ``model``, ``prefix`` and ``overrides`` put several galaxies into one model (the joint
    population model of :mod:`pymc_tracers.survey`): the variables are added to ``model``
    instead of a new one, every variable and likelihood name starts with ``prefix``, and a
    parameter whose (unprefixed) label is in ``overrides`` takes that tensor instead of its
    prior (e.g. ``{"disc_gradient": population_gradient[i]}``).
    """
    name = prefix + (config.model.get("name") or variable_name(data.tracer_name))
    tracer_scale = tracer_scale_of(config, data)
    builder = _ModelBuilder(config, data, prefix=prefix, overrides=overrides)
    with pm.Model() if model is None else model as model:
        components = [builder.component(c, i) for i, c in enumerate(config.components)]
        if builder.overrides:
            raise ConfigError(
                f"no parameter with a prior is labelled {sorted(builder.overrides)}; the free "
                f"parameters are {sorted(builder.units)}"
            )
        lens = None
        if config.lens is not None:
            lens, lens_units = build_lens(config.lens, data, prefix)
            builder.units.update(lens_units)
        try:
            observation = observe(
                components,
                data.grid,
                psf,
                tracer_scale,
                convolve_at=config.model.get("convolve_at", "subpixel"),
                lens=lens,
            )
            _likelihoods(name, observation, data, config)
        except ValueError as error:
            raise ConfigError(one_line(error)) from None
    info = {
        "name": name,
        "binned": data.bin_map is not None,
        "units": builder.units,
        "fixed": builder.fixed,
        "auto": builder.auto,
        "tracer_scale": tracer_scale,
        "observation": observation,
        "observations": [observation],
    }
    return model, info


def _likelihoods(name, observation, data, config) -> None:
    nu = config.model.get("nu")
    if data.bin_map is not None:
        binned_tracer_likelihood(
            name,
            observation,
            data.tracer_map,
            data.bin_map,
            sigma=data.tracer_error,
            mask=data.tracer_mask,
            nu=nu,
        )
    else:
        tracer_likelihood(name, observation, nu=nu, **data.tracer_data())
    if config.model.get("fit_image"):
        if data.image is None or data.image_error is None:
            raise ConfigError("[model] fit_image = true needs [data] image and image_error")
        image_likelihood(f"{name}_image", observation, **data.image_data())
