"""The configuration file's schema: sections and keys, loading and checking a TOML file.

Every problem with a configuration is a :class:`ConfigError` whose message is one line saying
what is wrong and how to fix it (unknown names come with the closest valid one).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pymc_tracers.config.components import check_component
from pymc_tracers.config.errors import (
    ConfigError,
    check_keys,
    closest,
    existing_file,
    is_number,
    one_line,
)
from pymc_tracers.config.kinematics import check_kinematics
from pymc_tracers.config.lens import check_lens

__all__ = ["PSF_TYPES", "SECTIONS", "TOP_LEVEL", "ConfigError", "FitConfig", "load_config"]

#: The keys each section accepts (``[[components]]`` is checked by
#: :mod:`pymc_tracers.config.components`).

SECTIONS = {
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
    "model": ("tracer_scale", "name", "nu", "convolve_at", "fit_image", "redshift"),
    "sampler": ("draws", "tune", "chains", "seed", "sampler", "target_accept", "map_draws"),
    "output": ("folder",),
}
#: The top-level sections (``[lens]`` is checked by :mod:`pymc_tracers.config.lens`,
#: ``[kinematics]`` by :mod:`pymc_tracers.config.kinematics`).
TOP_LEVEL = (*SECTIONS, "components", "lens", "kinematics")
#: ``[psf] type`` values.
PSF_TYPES = ("gaussian", "moffat", "moffat_wavelength", "file")


@dataclass
class FitConfig:
    """A parsed, checked configuration (paths resolved against the config file's folder).

    A kinematic configuration (``kinematics`` set) has empty ``data`` and ``components``.
    """

    path: Path
    raw: dict
    data: dict
    psf: dict
    components: list
    model: dict = field(default_factory=dict)
    sampler: dict = field(default_factory=dict)
    output: Path | None = None
    lens: dict | None = None
    kinematics: dict | None = None

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
        raise ConfigError(f"{path.name} is not valid TOML: {one_line(error)}") from None
    check_keys(raw, TOP_LEVEL, "top level")
    kinematic = "kinematics" in raw
    for section in ("psf", "kinematics") if kinematic else ("data", "psf", "components"):
        if section not in raw:
            raise ConfigError(f"{path.name} has no [{section}] section; see docs/config.md")
    for section, allowed in SECTIONS.items():
        check_keys(raw.get(section, {}), allowed, section)
    folder = path.parent
    if kinematic:
        return _load_kinematic(path, raw, folder)
    data = dict(raw["data"])
    _check_data(data, folder)
    psf = dict(raw["psf"])
    _check_psf(psf, folder)
    components = raw["components"]
    if isinstance(components, dict):
        components = [components]
    if not isinstance(components, list) or not components:
        raise ConfigError("[[components]] must list at least one component (light + tracer)")
    checked = [check_component(c, i, len(components)) for i, c in enumerate(components)]
    model = dict(raw.get("model", {}))
    scale = model.get("tracer_scale")  # None: chosen from the tracer's unit when data are read
    if scale is not None and scale not in ("linear", "log"):
        raise ConfigError(
            f"[model] tracer_scale = {scale!r}{closest(scale, ('linear', 'log'))}; use 'log' "
            "for quantities in dex (12+log(O/H)) or 'linear' (velocity, linear ratios)"
        )
    redshift = model.get("redshift")
    if redshift is not None and not (is_number(redshift) and redshift > 0):
        raise ConfigError(
            f"[model] redshift must be a number > 0 (the galaxy's redshift, for gradients in "
            f"dex/kpc); got {redshift!r}"
        )
    sampler = _sampler(raw)
    output = _output(raw, folder)
    lens = None
    if "lens" in raw:
        lens = check_lens(raw["lens"], folder, model)
    return FitConfig(path, raw, data, psf, checked, model, sampler, output, lens)


def _load_kinematic(path, raw, folder) -> FitConfig:
    """The checked kinematic configuration: ``[kinematics]``, ``[psf]``, ``[model]``..."""
    for section in ("data", "components", "lens"):
        if section in raw:
            raise ConfigError(
                f"{path.name}: a kinematic configuration reads its maps and light from "
                f"[kinematics]; remove [{section}] (see docs/config.md, [kinematics])"
            )
    psf = dict(raw["psf"])
    _check_psf(psf, folder)
    model = dict(raw.get("model", {}))
    nu = model.get("nu")
    if nu is not None and not (is_number(nu) and nu > 0):
        raise ConfigError(f"[model] nu (Student-t degrees of freedom) must be > 0; got {nu!r}")
    kinematics = check_kinematics(raw["kinematics"], folder, model)
    return FitConfig(
        path,
        raw,
        {},
        psf,
        [],
        model,
        _sampler(raw),
        _output(raw, folder),
        None,
        kinematics,
    )


def _sampler(raw) -> dict:
    sampler = {"draws": 1000, "tune": 1000, "chains": 2, "seed": 0, "sampler": "nutpie"}
    sampler.update(raw.get("sampler", {}))
    for key in ("draws", "tune", "chains", "seed", "map_draws"):
        if key in sampler and (
            isinstance(sampler[key], bool) or not isinstance(sampler[key], int) or sampler[key] < 0
        ):
            raise ConfigError(f"[sampler] {key} must be an integer >= 0; got {sampler[key]!r}")
    return sampler


def _output(raw, folder):
    folder_out = raw.get("output", {}).get("folder")
    return None if folder_out is None else (folder / folder_out)


def _check_data(data, folder):
    if "file" in data:
        data["file"] = existing_file(data["file"], folder, "[data] file")
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
            data[role] = (existing_file(spec[0], folder, f"[data] {role}"), *spec[1:])
        elif isinstance(spec, (str, int)) and not isinstance(spec, bool):
            if "file" not in data:
                data[role] = existing_file(spec, folder, f"[data] {role}")
        else:
            raise ConfigError(f"[data] {role} must be an extension name or number; got {spec!r}")
    scale = data.get("pixel_scale")
    if scale is not None and not (is_number(scale) and scale > 0):
        raise ConfigError(f"[data] pixel_scale must be a number of arcsec > 0; got {scale!r}")


def _check_psf(psf, folder):
    kind = psf.get("type")
    if kind not in PSF_TYPES:
        raise ConfigError(
            f"[psf] type = {kind!r}{closest(kind, PSF_TYPES)}; choose one of "
            + ", ".join(PSF_TYPES)
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
        psf["file"] = existing_file(psf["file"], folder, "[psf] file")
    for key in ("fwhm", "beta", "wavelength", "fwhm_ref", "wavelength_ref", "pixel_scale"):
        if key in psf and not (is_number(psf[key]) and psf[key] > 0):
            raise ConfigError(f"[psf] {key} must be a number > 0; got {psf[key]!r}")
