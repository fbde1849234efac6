"""``pymc-tracers fit CONFIG.toml``: fit FITS maps described by a TOML file, write the results.

The configuration names the data (files and extensions, read with
:func:`pymc_tracers.io.read_maps`), the PSF, the galaxy's components (light and tracer profiles
by name, each parameter fixed or given a prior as a ``pymc_extras.prior.Prior`` dictionary),
the noise model, the tracer scale, the sampler and the output folder. ``docs/config.md``
documents every option; ``pymc-tracers init-example DIR`` writes a complete example.

Every problem with a configuration is a :class:`ConfigError` whose message is one line saying
what is wrong and how to fix it (unknown names come with the closest valid one).

Outputs (in the output folder, written to a temporary folder next to it and moved into place
at the end, so a killed run leaves nothing that looks finished):

``maps.fits``
    Model, data, sigma, residual, normalised residual and used-pixel maps with the input WCS.
``posterior.nc``
    The :class:`pymc_tracers.Result` (``Result.load``).
``summary.ecsv``
    Posterior summary with units.
``report_maps.png``, ``report_corner.png``
    Data / model / residual / radial profile, and the corner plot.
``config.toml``
    A copy of the configuration.
"""

from __future__ import annotations

import difflib
import math
import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "LIGHT_PROFILES",
    "TRACER_PROFILES",
    "ConfigError",
    "FitConfig",
    "build_model",
    "load_config",
    "make_psf",
    "read_data",
    "run_fit",
]

#: Light profiles available by name, with their parameters and units.
LIGHT_PROFILES = {
    "Sersic": {
        "x0": "arcsec",
        "y0": "arcsec",
        "r_eff": "arcsec",
        "n": "",
        "amplitude": "",
        "q": "",
        "phi": "rad",
    },
    "Exponential": {
        "x0": "arcsec",
        "y0": "arcsec",
        "r_eff": "arcsec",
        "amplitude": "",
        "q": "",
        "phi": "rad",
    },
    "Gaussian": {
        "x0": "arcsec",
        "y0": "arcsec",
        "sigma": "arcsec",
        "amplitude": "",
        "q": "",
        "phi": "rad",
    },
}
#: Tracer profiles by name; ``T`` is the tracer's unit, ``T/arcsec`` a gradient.
TRACER_PROFILES = {
    "Constant": {"value": "T"},
    "LinearGradient": {
        "x0": "arcsec",
        "y0": "arcsec",
        "central": "T",
        "gradient": "T/arcsec",
        "q": "",
        "phi": "rad",
    },
    "BrokenGradient": {
        "x0": "arcsec",
        "y0": "arcsec",
        "central": "T",
        "inner": "T/arcsec",
        "outer": "T/arcsec",
        "r_break": "arcsec",
        "q": "",
        "phi": "rad",
    },
}
#: Keys besides parameters: ``profile``; ``pa`` (deg east of north, instead of ``phi``) and
#: ``center`` (sky position, instead of ``x0``/``y0``); ``gradient_range`` and
#: ``outside_range`` for LinearGradient.
_EXTRA_KEYS = ("profile", "pa", "center", "gradient_range", "outside_range")

_SECTIONS = {
    "data": (
        "file",
        "tracer",
        "tracer_error",
        "image",
        "image_error",
        "mask",
        "bins",
        "tracer_name",
        "tracer_unit",
        "image_unit",
        "check_dex",
        "error_type",
        "bad_errors",
        "mask_means",
        "mask_bits",
        "snr_min",
        "snr_of",
        "pixel_scale",
        "supersampling",
        "center",
        "cutout_size",
    ),
    "psf": (
        "type",
        "fwhm",
        "beta",
        "file",
        "ext",
        "pixel_scale",
        "oversampled",
        "wavelength",
        "fwhm_ref",
        "wavelength_ref",
        "slope",
        "curvature",
        "beta_slope",
    ),
    "model": ("tracer_scale", "name", "nu", "convolve_at", "fit_image"),
    "sampler": ("draws", "tune", "chains", "seed", "sampler", "target_accept", "map_draws"),
    "output": ("folder",),
}
_TOP = (*_SECTIONS, "components")
_PSF_TYPES = ("gaussian", "moffat", "moffat_wavelength", "file")


#: Light parameters that accept ``"auto"``: a prior centred on photutils' estimate from the
#: light image (centroid, orientation, axis ratio; half-light radius from the growth curve).
_AUTO = ("x0", "y0", "q", "phi", "r_eff", "sigma", "amplitude")


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the key and the fix."""


def _closest(word, choices) -> str:
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _check_keys(table, allowed, where):
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table of keys; got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r} in [{where}]{_closest(key, allowed)}; valid keys: "
                + ", ".join(allowed)
            )


def _one_line(text) -> str:
    return " ".join(str(text).split())


@dataclass
class FitConfig:
    """A parsed, checked configuration (paths resolved against the config file's folder)."""

    path: Path
    raw: dict
    data: dict
    psf: dict
    components: list
    model: dict = field(default_factory=dict)
    sampler: dict = field(default_factory=dict)
    output: Path | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent


# ------------------------------------------------------------------------------ loading
def load_config(path) -> FitConfig:
    """Read and check a TOML configuration (structure, names, priors; files must exist).

    Raises
    ------
    ConfigError
        With a one-line message for every problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path.name} is not valid TOML: {_one_line(error)}") from None
    _check_keys(raw, _TOP, "top level")
    for section in ("data", "psf", "components"):
        if section not in raw:
            raise ConfigError(f"{path.name} has no [{section}] section; see docs/config.md")
    for section, allowed in _SECTIONS.items():
        _check_keys(raw.get(section, {}), allowed, section)
    folder = path.parent
    data = dict(raw["data"])
    _check_data(data, folder)
    psf = dict(raw["psf"])
    _check_psf(psf, folder)
    components = raw["components"]
    if isinstance(components, dict):
        components = [components]
    if not isinstance(components, list) or not components:
        raise ConfigError("[[components]] must list at least one component (light + tracer)")
    checked = [_check_component(c, i, len(components)) for i, c in enumerate(components)]
    model = dict(raw.get("model", {}))
    scale = model.setdefault("tracer_scale", "linear")
    if scale not in ("linear", "log"):
        raise ConfigError(
            f"[model] tracer_scale = {scale!r}{_closest(scale, ('linear', 'log'))}; use 'log' "
            "for quantities in dex (12+log(O/H)) or 'linear' (velocity, linear ratios)"
        )
    sampler = {"draws": 1000, "tune": 1000, "chains": 2, "seed": 0, "sampler": "nutpie"}
    sampler.update(raw.get("sampler", {}))
    for key in ("draws", "tune", "chains", "seed", "map_draws"):
        if key in sampler and (
            isinstance(sampler[key], bool) or not isinstance(sampler[key], int) or sampler[key] < 0
        ):
            raise ConfigError(f"[sampler] {key} must be an integer >= 0; got {sampler[key]!r}")
    folder_out = raw.get("output", {}).get("folder")
    output = None if folder_out is None else (folder / folder_out)
    return FitConfig(path, raw, data, psf, checked, model, sampler, output)


def _file(value, folder, where) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a file name (a string); got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise ConfigError(f"{where}: file {str(path)!r} does not exist")
    return path


def _check_data(data, folder):
    if "file" in data:
        data["file"] = _file(data["file"], folder, "[data] file")
    if "tracer" not in data:
        raise ConfigError("[data] needs tracer = <extension name or number> (the tracer map)")
    if "tracer_error" not in data:
        raise ConfigError(
            "[data] needs tracer_error = <extension> (the 1-sigma error map of the tracer)"
        )
    for role in ("tracer", "tracer_error", "image", "image_error", "mask", "bins"):
        spec = data.get(role)
        if spec is None:
            continue
        if isinstance(spec, list):  # ["other.fits", "EXT"] or ["cube.fits", "EXT", plane]
            if not 1 <= len(spec) <= 3:
                raise ConfigError(f"[data] {role} = {spec!r}: give [file, extension(, plane)]")
            data[role] = (_file(spec[0], folder, f"[data] {role}"), *spec[1:])
        elif isinstance(spec, (str, int)) and not isinstance(spec, bool):
            if "file" not in data:
                data[role] = _file(spec, folder, f"[data] {role}")
        else:
            raise ConfigError(f"[data] {role} must be an extension name or number; got {spec!r}")
    scale = data.get("pixel_scale")
    if scale is not None and not (_is_number(scale) and scale > 0):
        raise ConfigError(f"[data] pixel_scale must be a number of arcsec > 0; got {scale!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_psf(psf, folder):
    kind = psf.get("type")
    if kind not in _PSF_TYPES:
        raise ConfigError(
            f"[psf] type = {kind!r}{_closest(kind, _PSF_TYPES)}; choose one of "
            + ", ".join(_PSF_TYPES)
        )
    needs = {
        "gaussian": ("fwhm",),
        "moffat": ("fwhm",),
        "moffat_wavelength": ("wavelength", "fwhm_ref", "wavelength_ref"),
        "file": ("file",),
    }[kind]
    for key in needs:
        if key not in psf:
            raise ConfigError(f"[psf] type = {kind!r} needs {key} = ...; see docs/config.md")
    if kind == "file":
        psf["file"] = _file(psf["file"], folder, "[psf] file")
    for key in ("fwhm", "beta", "wavelength", "fwhm_ref", "wavelength_ref", "pixel_scale"):
        if key in psf and not (_is_number(psf[key]) and psf[key] > 0):
            raise ConfigError(f"[psf] {key} must be a number > 0; got {psf[key]!r}")


def _prior_from(value, where):
    """A ``pymc_extras.prior.Prior`` from a config table, or ConfigError."""
    from pymc_extras.prior import Prior

    table = dict(value)
    dist = table.pop("distribution", table.pop("dist", None))
    if dist is None:
        raise ConfigError(
            f'{where} = {value!r} is not a prior: give distribution = "Normal" and its '
            'parameters, e.g. {distribution = "Normal", mu = 8.5, sigma = 1}'
        )
    kwargs = dict(table.pop("kwargs", {}))
    kwargs.update(table)
    for key, inner in list(kwargs.items()):
        if isinstance(inner, dict):
            kwargs[key] = _prior_from(inner, f"{where}.{key}")
    try:
        prior = Prior(str(dist), **kwargs)
    except Exception as error:  # noqa: BLE001  (pymc-extras raises several types)
        names = _distribution_names()
        hint = _closest(dist, names) if str(dist) not in names else ""
        raise ConfigError(
            f"{where}: {{distribution = {dist!r}, ...}} is not a valid prior{hint}: "
            f"{_one_line(error)}"
        ) from None
    return prior


def _distribution_names():
    import pymc as pm

    return [n for n in dir(pm.distributions) if n[:1].isupper()]


def _check_component(component, index, count) -> dict:
    where = f"components[{index}]"
    _check_keys(component, ("name", "light", "tracer"), where)
    for part in ("light", "tracer"):
        if part not in component:
            raise ConfigError(f"[{where}] needs a [{where}.{part}] table with profile = ...")
    name = component.get("name", f"c{index}" if count > 1 else "")
    if not isinstance(name, str):
        raise ConfigError(f"[{where}] name must be a string; got {name!r}")
    out = {"name": name}
    for part, table_of in (("light", LIGHT_PROFILES), ("tracer", TRACER_PROFILES)):
        table = dict(component[part])
        profile = table.pop("profile", None)
        if profile not in table_of:
            raise ConfigError(
                f"[{where}.{part}] profile = {profile!r}{_closest(profile, table_of)}: "
                f"{part} profiles are " + ", ".join(table_of)
            )
        allowed = tuple(table_of[profile])
        extra = ("pa", "center") + (
            ("gradient_range", "outside_range") if profile == "LinearGradient" else ()
        )
        params = {}
        for key, value in table.items():
            if key not in allowed + extra:
                raise ConfigError(
                    f"unknown parameter {key!r} of {profile} in [{where}.{part}]"
                    f"{_closest(key, allowed + extra)}; its parameters are "
                    + ", ".join(allowed + extra)
                )
            label = f"[{where}.{part}] {key}"
            if key == "gradient_range":
                if not (
                    isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
                ):
                    raise ConfigError(f"{label} must be [low, high]; got {value!r}")
                params[key] = ("fixed", tuple(value))
            elif key == "outside_range":
                if value not in ("full", "reject"):
                    raise ConfigError(f'{label} must be "full" or "reject"; got {value!r}')
                params[key] = ("fixed", value)
            elif key == "center":
                if not isinstance(value, str):
                    raise ConfigError(
                        f'{label} must be a sky position string, e.g. "150.1 2.2" (degrees) or '
                        f'"10h00m28.6s +02d12m21s"; got {value!r}'
                    )
                params[key] = ("fixed", value)
            elif isinstance(value, dict):
                if key in ("pa",):
                    raise ConfigError(f"{label}: pa must be a fixed number of degrees")
                params[key] = ("prior", _prior_from(value, label))
            elif _is_number(value):
                params[key] = ("fixed", float(value))
            elif value == "auto":
                if part != "light" or key not in _AUTO:
                    raise ConfigError(
                        f'{label} = "auto": auto priors exist for light parameters '
                        + ", ".join(_AUTO)
                    )
                params[key] = ("auto", None)
            elif isinstance(value, str) and value.startswith("light."):
                if part != "tracer" or value[6:] not in LIGHT_PROFILES[out["light"]["profile"]]:
                    raise ConfigError(
                        f"{label} = {value!r}: only tracer parameters can be tied to the same "
                        "component's light parameter (light.x0, light.y0, light.q, light.phi...)"
                    )
                params[key] = ("tie", value[6:])
            else:
                raise ConfigError(
                    f"{label} = {value!r} is neither a number nor a prior table like "
                    '{distribution = "Normal", mu = 0, sigma = 1}'
                )
        if "pa" in params and "phi" in params:
            raise ConfigError(f"[{where}.{part}] give pa (deg east of north) or phi, not both")
        if "center" in params and ("x0" in params or "y0" in params):
            raise ConfigError(f"[{where}.{part}] give center or x0/y0, not both")
        if profile == "Constant" and "value" not in params:
            raise ConfigError(f"[{where}.tracer] Constant needs value = <number or prior>")
        out[part] = {"profile": profile, "params": params}
    return out


# ------------------------------------------------------------------------------ building
def read_data(config: FitConfig):
    """The :class:`~pymc_tracers.io.GalaxyData` named by ``[data]``."""
    from pymc_tracers import io

    spec = dict(config.data)
    path = spec.pop("file", None)
    if "center" in spec:
        spec["center"] = _sky(spec["center"], "[data] center")
    if "cutout_size" in spec:
        import astropy.units as u

        size = spec["cutout_size"]
        spec["cutout_size"] = size * u.arcsec if _is_number(size) else size
    for role in ("tracer", "tracer_error", "image", "image_error", "mask", "bins"):
        if isinstance(spec.get(role), tuple):
            spec[role] = tuple(spec[role])
    try:
        return io.read_maps(path, **spec)
    except (ValueError, FileNotFoundError, OSError, TypeError) as error:
        raise ConfigError(f"[data]: {_one_line(error)}") from None


def _sky(text, where):
    from astropy.coordinates import SkyCoord

    try:
        parts = text.split()
        if len(parts) == 2 and all(_float_or_none(p) is not None for p in parts):
            return SkyCoord(float(parts[0]), float(parts[1]), unit="deg")
        return SkyCoord(text)
    except Exception:  # noqa: BLE001  (astropy raises several types)
        raise ConfigError(
            f'{where} = {text!r} is not a sky position; use "150.1 2.2" (degrees) or '
            '"10h00m28.6s +02d12m21s"'
        ) from None


def _float_or_none(text):
    try:
        return float(text)
    except ValueError:
        return None


def make_psf(config: FitConfig):
    """The PSF named by ``[psf]``."""
    from pymc_tracers import io
    from pymc_tracers.psf import GaussianPSF, MoffatPSF

    p = config.psf
    try:
        if p["type"] == "gaussian":
            return GaussianPSF(fwhm=p["fwhm"])
        if p["type"] == "moffat":
            return MoffatPSF(p["fwhm"], p.get("beta", 2.5))
        if p["type"] == "moffat_wavelength":
            return io.moffat_psf_at(
                p["wavelength"],
                fwhm_ref=p["fwhm_ref"],
                wavelength_ref=p["wavelength_ref"],
                slope=p.get("slope", 0.0),
                curvature=p.get("curvature", 0.0),
                beta=p.get("beta", 2.5),
                beta_slope=p.get("beta_slope", 0.0),
            )
        return io.read_psf(
            p["file"],
            ext=p.get("ext"),
            pixel_scale=p.get("pixel_scale"),
            oversampled=p.get("oversampled", True),
        )
    except (ValueError, FileNotFoundError, OSError, TypeError) as error:
        raise ConfigError(f"[psf]: {_one_line(error)}") from None


def _unit_text(unit, tracer_unit) -> str:
    t = "" if tracer_unit is None else tracer_unit.to_string()
    if unit == "T":
        return t
    if unit == "T/arcsec":
        return f"{t} / arcsec" if t else "1 / arcsec"
    return unit


def build_model(config: FitConfig, data, psf, *, model=None, prefix="", overrides=None):
    """The PyMC model of the configuration; returns ``(model, info)``.

    ``info`` holds ``name`` (the likelihood), ``binned`` (bool), ``units`` (free parameter ->
    unit string), ``fixed`` (fixed parameters in grid units) and ``observation``.

    ``model``, ``prefix`` and ``overrides`` put several galaxies into one model (the joint
    population model of :mod:`pymc_tracers.survey`): the variables are added to ``model``
    instead of a new one, every variable and likelihood name starts with ``prefix``, and a
    parameter whose (unprefixed) label is in ``overrides`` takes that tensor instead of its
    prior (e.g. ``{"disc_gradient": population_gradient[i]}``).
    """
    import pymc as pm

    import pymc_tracers as pmt
    from pymc_tracers.binned import binned_tracer_likelihood

    tracer_unit = data.units.get("tracer")
    name = config.model.get("name") or _variable_name(data.tracer_name)
    units, fixed, auto = {}, {}, {}
    wants_auto = any(
        kind == "auto" for c in config.components for kind, _ in c["light"]["params"].values()
    )
    estimates = light_estimates(data) if wants_auto else None
    name = prefix + name
    overrides = dict(overrides or {})
    with pm.Model() if model is None else model as model:
        components = []
        for component in config.components:
            values = {}
            for part in ("light", "tracer"):
                spec = component[part]
                table = (LIGHT_PROFILES if part == "light" else TRACER_PROFILES)[spec["profile"]]
                kwargs = {}
                for key, (kind, value) in spec["params"].items():
                    label = f"{component['name'] + '_' if component['name'] else ''}"
                    label += f"{'light_' if part == 'light' else ''}{key}"
                    if key == "pa":
                        kwargs["phi"] = _phi_from_pa(data, value, part)
                        fixed[label] = value
                    elif key == "center":
                        x0, y0 = _grid_position(data, value, part)
                        kwargs["x0"], kwargs["y0"] = x0, y0
                        fixed[label] = value
                    elif kind == "auto":
                        prior = _auto_prior(key, estimates, data.pixel_scale)
                        auto[label] = {"estimate": estimates[key], "prior": prior.to_dict()}
                        kwargs[key] = prior.create_variable(prefix + label)
                        units[prefix + label] = _unit_text(table[key], tracer_unit)
                    elif kind == "prior" and label in overrides:
                        kwargs[key] = overrides.pop(label)
                        units[prefix + label] = _unit_text(table[key], tracer_unit)
                    elif kind == "prior":
                        kwargs[key] = value.create_variable(prefix + label)
                        units[prefix + label] = _unit_text(table[key], tracer_unit)
                    elif kind == "tie":
                        if value not in values["light"]:
                            raise ConfigError(
                                f"[components.tracer] {key} = 'light.{value}': the light profile "
                                f"does not set {value} (give it in [components.light])"
                            )
                        kwargs[key] = values["light"][value]
                    else:
                        kwargs[key] = value
                        if key not in ("gradient_range", "outside_range"):
                            fixed[label] = value
                if spec["profile"] == "LinearGradient" and "gradient_range" not in kwargs:
                    kwargs["gradient_range"] = _range_of(spec["params"].get("gradient"))
                values[part] = kwargs
            light_cls = getattr(classes_light(), component["light"]["profile"])
            tracer_cls = getattr(classes_tracer(), component["tracer"]["profile"])
            try:
                light = light_cls(**values["light"])
                tracer = (
                    tracer_cls(values["tracer"]["value"])
                    if component["tracer"]["profile"] == "Constant"
                    else tracer_cls(**values["tracer"])
                )
            except (ValueError, TypeError) as error:
                raise ConfigError(f"[components]: {_one_line(error)}") from None
            components.append(pmt.Component(light, tracer))
        if overrides:
            raise ConfigError(
                f"no parameter with a prior is labelled {sorted(overrides)}; the free "
                f"parameters are {sorted(units)}"
            )
        try:
            observation = pmt.observe(
                components,
                data.grid,
                psf,
                config.model["tracer_scale"],
                convolve_at=config.model.get("convolve_at", "subpixel"),
            )
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
                pmt.tracer_likelihood(name, observation.tracer_map, nu=nu, **data.tracer_data())
            if config.model.get("fit_image"):
                if data.image is None or data.image_error is None:
                    raise ConfigError("[model] fit_image = true needs [data] image and image_error")
                pmt.image_likelihood(f"{name}_image", observation.image, **data.image_data())
        except ValueError as error:
            raise ConfigError(_one_line(error)) from None
    info = {
        "name": name,
        "binned": data.bin_map is not None,
        "units": units,
        "fixed": fixed,
        "auto": auto,
        "observation": observation,
    }
    return model, info


def light_estimates(data) -> dict:
    """Light-profile estimates from the light image (photutils' ``data_properties``).

    Returns ``x0``, ``y0`` (arcsec in the grid), ``phi`` (rad, counter-clockwise from +x),
    ``q`` (b/a), ``r_eff`` (semi-major half-light radius from the elliptical growth curve,
    arcsec; PSF-broadened), ``sigma`` (the Gaussian equivalent, arcsec) and ``amplitude``
    (surface brightness at ``r_eff`` of an exponential disc of the measured flux, image units
    per arcsec^2).
    """
    if data.image is None:
        raise ConfigError('"auto" priors need a light image: add [data] image = <extension>')
    try:
        from photutils.morphology import data_properties
    except ImportError:
        raise ConfigError('"auto" priors need photutils: pip install photutils') from None
    use = data.image_mask & (data.image > 0)
    image = np.where(use, data.image, 0.0)
    props = data_properties(image, mask=~use)
    # photutils 3 renamed xcentroid -> x_centroid
    xc = float(getattr(props, "x_centroid", None) or props.xcentroid)
    yc = float(getattr(props, "y_centroid", None) or props.ycentroid)
    grid, s = data.grid, data.pixel_scale
    x0 = (xc - (grid.nx - 1) / 2) * s + grid.center[0]
    y0 = (yc - (grid.ny - 1) / 2) * s + grid.center[1]
    phi = math.radians(float(props.orientation.to_value("deg")))
    q = float(np.clip(1.0 - float(props.ellipticity), 0.05, 1.0))
    yy, xx = np.indices(image.shape)
    dx = (xx - xc) * s
    dy = (yy - yc) * s
    along = dx * math.cos(phi) + dy * math.sin(phi)
    across = -dx * math.sin(phi) + dy * math.cos(phi)
    radius = np.hypot(along, across / q)[use]
    order = np.argsort(radius)
    cumulative = np.cumsum(image[use][order])
    r_eff = float(radius[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
    r_eff = max(r_eff, 0.5 * s)
    flux = float(cumulative[-1])
    # exponential disc: total flux = 2 pi q r_eff^2 I_e e^b n Gamma(2n) / b^2n, n = 1, b = 1.678
    b = 1.678347
    amplitude = flux * b**2 / (2 * math.pi * q * r_eff**2 * math.exp(b))
    return {
        "x0": x0,
        "y0": y0,
        "phi": phi,
        "q": q,
        "r_eff": r_eff,
        "sigma": r_eff / 1.1774,
        "amplitude": amplitude,
    }


def _auto_prior(key, estimates, pixel_scale):
    from pymc_extras.prior import Prior

    value = estimates[key]
    if key in ("x0", "y0"):
        return Prior("Normal", mu=value, sigma=max(2 * pixel_scale, 0.1))
    if key == "phi":
        return Prior("Normal", mu=value, sigma=0.3)
    if key == "q":
        return Prior("TruncatedNormal", mu=value, sigma=0.15, lower=0.05, upper=1.0)
    width = 0.7 if key == "amplitude" else 0.4
    return Prior("LogNormal", mu=math.log(value), sigma=width)


def classes_light():
    from pymc_tracers.profiles import light

    return light


def classes_tracer():
    from pymc_tracers.profiles import tracer

    return tracer


def _variable_name(text) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in str(text)).strip("_")
    return cleaned or "tracer"


def _range_of(param):
    """A LinearGradient's ``gradient_range`` from a Uniform prior or a wide default."""
    if param is None or param[0] != "prior":
        return None
    prior = param[1]
    if prior.distribution == "Uniform":
        return (float(prior.parameters["lower"]), float(prior.parameters["upper"]))
    if prior.distribution == "Normal" and _is_number(prior.parameters.get("sigma")):
        mu, sigma = float(prior.parameters.get("mu", 0.0)), float(prior.parameters["sigma"])
        return (mu - 3 * sigma, mu + 3 * sigma)
    return None


def _phi_from_pa(data, pa, part):
    try:
        return data.phi_from_pa(pa)
    except ValueError as error:
        raise ConfigError(f"[components.{part}] pa: {_one_line(error)}") from None


def _grid_position(data, text, part):
    coord = _sky(text, f"[components.{part}] center")
    try:
        x0, y0 = data.to_grid(coord)
    except ValueError as error:
        raise ConfigError(f"[components.{part}] center: {_one_line(error)}") from None
    return float(x0), float(y0)


# ------------------------------------------------------------------------------ running
_CLOCK = {"start": None}


def _say(progress, text):
    if progress is not None:
        progress(f"[{time.perf_counter() - _CLOCK['start']:6.1f} s] {text}")


def run_fit(path, *, output=None, overwrite=False, progress=print, progressbar=True) -> dict:
    """Read a configuration, fit it, write the output folder; return a summary dict.

    Parameters
    ----------
    path : str or path-like
        The TOML configuration.
    output : str or path-like, optional
        The output folder (default ``[output] folder``, else ``<config name>_results`` next to
        the configuration).
    overwrite : bool
        Replace an existing output folder (only once the new one is complete).
    progress : callable or None
        Called with one-line progress messages.
    progressbar : bool
        The sampler's progress bar.

    Returns
    -------
    dict
        ``output`` (Path), ``parameters`` ({name: (median, sd, unit)}), ``diagnostics``,
        ``seconds``.

    Raises
    ------
    ConfigError
        Any problem with the configuration or its files (one-line message). An existing
        output folder without ``overwrite`` raises ``FileExistsError``.
    """
    import warnings

    import pymc_tracers as pmt
    from pymc_tracers import io
    from pymc_tracers.binned import binned_likelihoods_of

    started = _CLOCK["start"] = time.perf_counter()
    config = load_config(path)
    out = Path(output) if output is not None else config.output
    if out is None:
        out = config.folder / f"{config.path.stem}_results"
    out = out.resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"output folder {str(out)!r} exists; pass --overwrite to replace it or choose "
            "another with --output"
        )
    if not out.parent.is_dir():
        raise ConfigError(f"the output folder's parent {str(out.parent)!r} does not exist")

    _say(progress, f"reading data ({config.path.name})")
    data = read_data(config)
    psf = make_psf(config)
    _say(
        progress,
        f"  {data.tracer_name}: {data.shape[0]}x{data.shape[1]} pixels of "
        f"{data.pixel_scale:.4g} arcsec, {int(data.tracer_mask.sum())} used"
        + (f", {len(io.bin_ids(data.bin_map))} bins" if data.bin_map is not None else ""),
    )
    _say(progress, "building the model (rendering, PSF, basis maps)")
    model, info = build_model(config, data, psf)
    if not model.free_RVs:
        raise ConfigError("no parameter has a prior: give at least one prior table to fit")
    for label, entry in info["auto"].items():
        _say(progress, f"  auto prior {label}: estimate {entry['estimate']:.4g}, {entry['prior']}")
    _say(progress, f"  {len(model.free_RVs)} free parameters, path: {info['observation'].path}")
    s = config.sampler
    _say(
        progress,
        f"compiling and sampling ({s['sampler']}: {s['chains']} chains x {s['tune']} tune + "
        f"{s['draws']} draws)",
    )
    kwargs = {}
    if "target_accept" in s:
        kwargs["target_accept"] = s["target_accept"]
    record = {
        "config_file": str(config.path),
        "config": config.raw,
        "units": info["units"],
        "fixed": info["fixed"],
        "auto_priors": info["auto"],
        "tracer_name": data.tracer_name,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        try:
            result = pmt.fit(
                model,
                draws=s["draws"],
                tune=s["tune"],
                chains=s["chains"],
                sampler=s["sampler"],
                random_seed=s["seed"],
                progressbar=progressbar,
                map_draws=s.get("map_draws", 100),
                grid=data.grid,
                config=record,
                **kwargs,
            )
        except ValueError as error:
            raise ConfigError(f"[sampler]: {_one_line(error)}") from None
        if info["binned"]:
            result = pmt.Result.from_model(
                result.idata,
                model,
                records=binned_likelihoods_of(model),
                map_draws=s.get("map_draws", 100),
                config=result.config,
                random_seed=s["seed"],
            )
    _say(progress, "writing results")
    parent = out.parent
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o777 & ~umask)  # mkdtemp makes it private; results are for sharing
    try:
        _write_outputs(temporary, result, data, info, config)
        if out.exists():
            if not overwrite:
                raise FileExistsError(f"output folder {str(out)!r} appeared during the fit")
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
            os.replace(out, old / out.name)
            os.replace(temporary, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    summary = result.summary()
    parameters = {
        p: (float(summary.loc[p, "mean"]), float(summary.loc[p, "sd"]), info["units"].get(p, ""))
        for p in summary.index
    }
    return {
        "output": out,
        "name": info["name"],
        "parameters": parameters,
        "diagnostics": result.diagnostics(),
        "seconds": time.perf_counter() - started,
        "result": result,
    }


def _write_outputs(folder: Path, result, data, info, config):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pymc_tracers import io

    name = info["name"]
    unit = data.units.get("tracer")
    io.write_maps(folder / "maps.fits", result.maps(name), wcs=data.wcs, name=name, unit=unit)
    result.save(folder / "posterior.nc")
    units = dict(info["units"])
    io.write_summary(folder / "summary.ecsv", result.summary(), units=units)
    figure = result.plot_maps(name)
    figure.savefig(folder / "report_maps.png", dpi=90)
    plt.close(figure)
    axes = result.plot_corner()
    corner = np.ravel(axes)[0].figure if not hasattr(axes, "savefig") else axes
    corner.savefig(folder / "report_corner.png", dpi=80)
    plt.close(corner)
    shutil.copyfile(config.path, folder / "config.toml")


# ------------------------------------------------------------------------------ example
#: The simulated galaxy of ``pymc-tracers init-example`` (arcsec, dex, dex/arcsec, degrees).
EXAMPLE_TRUTH = {
    "central": 8.6,
    "gradient": -0.15,
    "r_eff": 0.6,
    "q": 0.7,
    "pa": 40.0,
    "psf_fwhm": 0.3,
    "pixel_scale": 0.1,
    "shape": (31, 31),
}

_EXAMPLE_CONFIG = """\
# pymc-tracers fit configuration (written by `pymc-tracers init-example`).
# Run it with:   pymc-tracers fit {config_path}
# Every option is described in docs/config.md. Paths are relative to this file.

[data]
file = "galaxy.fits"          # one multi-extension FITS file (or give files per map)
tracer = "OH"                 # extension holding the tracer map: 12+log(O/H), BUNIT = dex
tracer_error = "OH_ERR"       # its 1-sigma error map (error_type = "variance"/"ivar" also work)
image = "HALPHA"              # light image (read, reported; not fitted here)
image_error = "HALPHA_ERR"
{bins_line}# mask = "DQ"                # a mask extension (nonzero = bad pixel)
# snr_min = 3                 # leave out pixels with H-alpha S/N < 3
supersampling = 2             # sub-pixels per pixel along each axis
# pixel_scale = 0.1           # arcsec; only needed for files without a celestial WCS

[psf]
type = "file"                 # "gaussian" / "moffat" (fwhm, beta), "moffat_wavelength", "file"
file = "psf.fits"             # PIXELSCL in the header gives its pixel scale (arcsec)
# type = "gaussian"
# fwhm = 0.3                  # arcsec

[model]
tracer_scale = "log"          # average 10**Z (right for dex); "linear" for velocities
name = "OH"                   # name of the likelihood (and of the maps in the outputs)

[[components]]
name = "disc"

[components.light]            # known from photometry: fixed numbers
profile = "Exponential"       # Sersic (adds n), Exponential, Gaussian (sigma instead of r_eff)
center = "{center}"           # sky position (deg); or x0, y0 in arcsec from the field centre
r_eff = {r_eff}                  # arcsec
q = {q}                       # axis ratio b/a
pa = {pa}                      # position angle, degrees east of north (or phi in radians)
amplitude = 1.0

[components.tracer]
profile = "LinearGradient"    # Constant (value), LinearGradient, BrokenGradient
x0 = "light.x0"               # tied to the light profile's centre and shape
y0 = "light.y0"
q = "light.q"
phi = "light.phi"
# priors are pymc_extras.prior.Prior dictionaries: a distribution and its parameters
central = {{distribution = "Normal", mu = 8.5, sigma = 0.5}}     # dex
gradient = {{distribution = "Normal", mu = 0.0, sigma = 0.2}}    # dex / arcsec

[sampler]
draws = 300                   # per chain; use 1000+ for publication
tune = 300
chains = 2
seed = 1
sampler = "nutpie"            # or "pymc", "numpyro", "blackjax"

[output]
folder = "results"            # refused if it exists, unless `pymc-tracers fit --overwrite`
"""


def example_wcs(shape, pixel_scale, rotation_deg, *, center=(150.1, 2.2)):
    """A TAN WCS with square pixels (arcsec), north rotated by ``rotation_deg`` from up, east
    left of north (``det(CD) < 0``, as sky images are)."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(center)
    wcs.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    s = pixel_scale / 3600.0
    t = math.radians(rotation_deg)
    wcs.wcs.cd = [[-s * math.cos(t), s * math.sin(t)], [s * math.sin(t), s * math.cos(t)]]
    wcs.pixel_shape = (shape[1], shape[0])
    return wcs


def write_example(
    folder, *, rotation_deg=25.0, seed=0, bin_map=None, overwrite=False, truth=None
) -> Path:
    """Write a simulated galaxy (FITS maps with a WCS, error maps, light image, PSF FITS) and a
    commented ``config.toml`` that fits it; return the config's path.

    Parameters
    ----------
    folder : path-like
        Created if missing; existing example files are refused unless ``overwrite``.
    rotation_deg : float
        Angle of north from the map's +y axis (degrees): a rotated WCS.
    seed : int
        Noise realisation.
    bin_map : ndarray of int, optional
        Bin the tracer map with it (each bin's value is its light-weighted ratio, errors
        combined in inverse variance) and write it as extension ``BINID``.
    truth : dict, optional
        Overrides of :data:`EXAMPLE_TRUTH`.
    """
    import astropy.units as u
    from astropy.io import fits

    import pymc_tracers as pmt
    from pymc_tracers import io

    truth = {**EXAMPLE_TRUTH, **(truth or {})}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("galaxy.fits", "psf.fits", "config.toml")
    existing = [n for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{str(folder)!r} already holds {', '.join(existing)}; pass --overwrite to replace"
        )
    shape, scale = tuple(truth["shape"]), truth["pixel_scale"]
    wcs = example_wcs(shape, scale, rotation_deg)
    frame = io.sky_frame(wcs, shape, supersampling=2)
    # the galaxy sits a little off the field centre
    centre = wcs.pixel_to_world((shape[1] - 1) / 2 + 1.3, (shape[0] - 1) / 2 - 0.8)
    x0, y0 = frame.to_grid(centre)
    phi = frame.phi_from_pa(truth["pa"], at=centre)
    geometry = {"x0": x0, "y0": y0, "q": truth["q"], "phi": phi}
    light = pmt.Exponential(r_eff=truth["r_eff"], amplitude=1.0, **geometry)
    tracer = pmt.LinearGradient(central=truth["central"], gradient=truth["gradient"], **geometry)
    psf_scale = scale / 3
    kernel = pmt.GaussianPSF(fwhm=truth["psf_fwhm"]).kernel(psf_scale)
    psf = pmt.PixelPSF(kernel, psf_scale)
    obs = pmt.observe(pmt.Component(light, tracer), frame.grid, psf, tracer_scale="log")
    image, tracer_map, weighted, light_sum = pmt.evaluate(
        [obs.image, obs.tracer_map, obs.weighted_sum, obs.light_sum]
    )
    rng = np.random.default_rng(seed)
    peak = image.max()
    faint = image < 2e-3 * peak
    sigma = np.sqrt(0.02**2 + 0.02**2 * peak / np.maximum(image, 1e-300))
    sigma = np.where(faint, np.nan, sigma)
    extra = []
    if bin_map is not None:
        bins = io.validate_bin_map(bin_map, shape=shape)
        bins = np.where(faint, -1, bins)
        ids = io.bin_ids(bins)
        values = np.log10(io.bin_average_numpy(weighted, light_sum, bins))
        position = np.searchsorted(ids, np.clip(bins, 0, None))
        weights = np.where(bins >= 0, 1.0 / np.where(faint, np.inf, sigma) ** 2, 0.0)
        per_bin_sigma = 1.0 / np.sqrt(np.bincount(position[bins >= 0], weights[bins >= 0]))
        noisy = values + per_bin_sigma * rng.normal(size=ids.size)
        tracer_data = np.where(bins >= 0, noisy[position], np.nan)
        sigma = np.where(bins >= 0, per_bin_sigma[position], np.nan)
        extra.append(("BINID", bins.astype(np.int32), None))
    else:
        tracer_data = np.where(faint, np.nan, tracer_map + sigma * rng.normal(size=shape))
    image_error = 0.01 * peak * np.ones(shape)
    image_data = image + image_error * rng.normal(size=shape)

    header = wcs.to_header()
    hdus = [fits.PrimaryHDU()]
    hdus[0].header["OBJECT"] = "pymc-tracers example galaxy"
    for extname, array, unit in [
        ("OH", tracer_data, "dex"),
        ("OH_ERR", sigma, "dex"),
        ("HALPHA", image_data, "1e-17 erg / (s cm2)"),
        ("HALPHA_ERR", image_error, "1e-17 erg / (s cm2)"),
        *extra,
    ]:
        h = header.copy()
        h["EXTNAME"] = extname
        if unit:
            h["BUNIT"] = unit
        hdus.append(fits.ImageHDU(np.asarray(array), header=h))
    fits.HDUList(hdus).writeto(folder / "galaxy.fits", overwrite=True)
    psf_hdu = fits.PrimaryHDU(kernel)
    psf_hdu.header["PIXELSCL"] = (psf_scale, "arcsec per PSF pixel")
    psf_hdu.header["FWHM"] = (truth["psf_fwhm"], "Gaussian FWHM, arcsec")
    psf_hdu.writeto(folder / "psf.fits", overwrite=True)
    ra, dec = centre.ra.to_value(u.deg), centre.dec.to_value(u.deg)
    text = _EXAMPLE_CONFIG.format(
        config_path=folder / "config.toml",
        center=f"{ra:.8f} {dec:.8f}",
        r_eff=truth["r_eff"],
        q=truth["q"],
        pa=truth["pa"],
        bins_line='bins = "BINID"               # Voronoi bin map: one likelihood term per bin\n'
        if bin_map is not None
        else '# bins = "BINID"             # a Voronoi/segmentation bin map (-1 = no bin)\n',
    )
    (folder / "config.toml").write_text(text)
    return folder / "config.toml"
