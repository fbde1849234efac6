"""The PyMC model of a ``[kinematics]`` configuration, and its output files and figures.

:func:`build_kinematic_model` turns the checked section (:mod:`pymc_tracers.config.kinematics`)
into a :class:`~pymc_tracers.KinematicComponent` observed with
:func:`~pymc_tracers.observe_kinematics` and velocity / dispersion (/ flux) likelihoods;
:func:`write_kinematic_galaxy` writes what ``pymc-tracers fit`` writes for a metallicity fit,
with the kinematic figures of :mod:`pymc_tracers.plotting.kinematics`.

Free parameters are named ``light_<p>`` (the light profile), ``x0``, ``y0``, ``phi``,
``inclination``, ``v_sys`` (the disc), ``rotation_<p>``, ``dispersion_<p>`` and
``radial_flow_<p>`` (the radial functions), each with the configuration's ``prefix``.
"""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from astropy.io import fits

from pymc_tracers import io
from pymc_tracers.config.build import _ModelBuilder
from pymc_tracers.config.errors import ConfigError, one_line
from pymc_tracers.config.kinematics import TABLE_STEMS
from pymc_tracers.config.registry import disc_spec, profile_specs
from pymc_tracers.kinematics import (
    DiscDispersion,
    DiscGeometry,
    DiscVelocity,
    KinematicComponent,
    as_radial_function,
    inclination_from_axis_ratio,
    observe_kinematics,
)
from pymc_tracers.model.kinematic_likelihood import (
    binned_kinematic_likelihood,
    kinematic_likelihood,
)

__all__ = [
    "CURVE_POINTS",
    "KINEMATIC_TRUTH_CARDS",
    "build_kinematic_model",
    "kinematic_truth",
    "write_kinematic_galaxy",
]

#: Radii at which V(R) and sigma(R) are drawn in ``report_rotation_curve.png``.
CURVE_POINTS = 60
#: Primary-header cards of a simulated galaxy's truth (``init-example --kinematics``) and the
#: parameter each one is the truth of.
KINEMATIC_TRUTH_CARDS = {
    "TRUE_VMX": "rotation_v_max",
    "TRUE_RT": "rotation_r_t",
    "TRUE_SIG": "dispersion_value",
    "TRUE_INC": "inclination",
    "TRUE_PHI": "phi",
    "TRUE_VSY": "v_sys",
    "TRUE_X0": "x0",
    "TRUE_Y0": "y0",
}


def build_kinematic_model(config, data, psf, *, model=None, prefix="", overrides=None):
    """The PyMC model of a kinematic configuration; returns ``(model, info)``.

    Parameters
    ----------
    config : FitConfig
        With ``config.kinematics`` (the checked section).
    data : KinematicInput
        From :func:`pymc_tracers.config.kinematic_data.read_kinematic_data` (km/s).
    psf : PSF
    model, prefix, overrides
        As for :func:`pymc_tracers.config.build_model`.

    Returns
    -------
    model : pm.Model
    info : dict
        As :func:`~pymc_tracers.config.build_model`'s (``name`` is the velocity likelihood's,
        ``tracer_scale`` is ``"linear"``), plus ``kind = "kinematics"``, ``likelihoods`` (the
        names of the observed maps) and ``curves`` (tensors of the disc's geometry and of
        V(R), sigma(R) at ``radii`` arcsec, for the figures).
    """
    spec = config.kinematics
    builder = _ModelBuilder(config, data, prefix=prefix, overrides=overrides)
    with pm.Model() if model is None else model as model:
        light = builder.profile(
            spec["light"], "light", TABLE_STEMS["light"], "kinematics", {}, table="kinematics.light"
        )
        geometry, v_sys = _disc(builder, spec["disc"], light.values)
        radial = {}
        for part, table in (
            ("rotation", "rotation"),
            ("dispersion", "dispersion_profile"),
            ("radial_flow", "radial_flow"),
        ):
            if spec[table] is not None:
                radial[part] = builder.profile(
                    spec[table],
                    "radial",
                    TABLE_STEMS[table],
                    "kinematics",
                    light.values,
                    table=f"kinematics.{table}",
                ).profile
        if builder.overrides:
            raise ConfigError(
                f"no parameter with a prior is labelled {sorted(builder.overrides)}; the free "
                f"parameters are {sorted(builder.units)}"
            )
        try:
            velocity = DiscVelocity(
                geometry, radial["rotation"], v_sys=v_sys, radial=radial.get("radial_flow")
            )
            dispersion = (
                DiscDispersion(geometry, radial["dispersion"]) if "dispersion" in radial else 0.0
            )
            component = KinematicComponent(light.profile, velocity, dispersion)
            observation = observe_kinematics(
                component,
                data.grid,
                psf,
                lsf_sigma=data.lsf_sigma,
                method=spec["method"],
                convolve_at=config.model.get("convolve_at", "subpixel"),
                tolerance=spec["tolerance"],
            )
            names = tuple(prefix + n for n in ("velocity", "dispersion", "flux"))
            observed = _likelihoods(observation, data, config.model.get("nu"), names)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"[kinematics]: {one_line(error)}") from None
        curves = _curves(velocity, dispersion, data.grid)
    info = {
        "kind": "kinematics",
        "name": names[0],
        "likelihoods": [n for n in names if n in observed],
        "binned": data.bin_map is not None,
        "units": builder.units,
        "fixed": builder.fixed,
        "auto": {},
        "tracer_scale": "linear",
        "observation": observation,
        "observations": [],
        "curves": curves,
    }
    return model, info


def _disc(builder, spec, light_values):
    """The :class:`DiscGeometry` and ``v_sys`` of ``[kinematics.disc]``."""
    registry = disc_spec()
    table = "kinematics.disc"
    values = {}
    for key, (how, value) in spec["params"].items():
        if how == "tie":
            values[key] = builder.tie(value, key, table, "kinematics", light_values)
        elif key == "pa":
            values["phi"] = builder._phi_from_pa(value, table)
            builder.fixed[key] = value
        elif key == "center":
            values["x0"], values["y0"] = builder._grid_position(value, table)
            builder.fixed[key] = value
        else:
            values[key] = builder.parameter(how, value, key, key, registry, spec)
    if spec["q0"] is not None:
        try:
            values["inclination"] = inclination_from_axis_ratio(light_values["q"], spec["q0"])
        except ValueError as error:
            raise ConfigError(f"[{table}] q0: {one_line(error)}") from None
    v_sys = values.pop("v_sys", 0.0)
    try:
        return DiscGeometry(**values), v_sys
    except (ValueError, TypeError) as error:
        raise ConfigError(f"[{table}]: {one_line(error)}") from None


def _likelihoods(observation, data, nu, names) -> dict:
    """The velocity, dispersion (and flux) likelihoods of the maps that were read."""
    maps = data.maps
    if data.bin_map is not None:
        if maps.flux is not None:
            raise ValueError("flux with bins: binned flux maps are not fitted; remove flux or bins")
        return binned_kinematic_likelihood(
            observation,
            data.bin_map,
            velocity=maps.velocity,
            velocity_sigma=maps.velocity_sigma,
            dispersion=maps.dispersion,
            dispersion_sigma=maps.dispersion_sigma,
            nu=nu,
            names=names[:2],
        )
    return kinematic_likelihood(
        observation,
        velocity=maps.velocity,
        velocity_sigma=maps.velocity_sigma,
        dispersion=maps.dispersion,
        dispersion_sigma=maps.dispersion_sigma,
        flux=maps.flux,
        flux_sigma=maps.flux_sigma,
        nu=nu,
        names=names,
    )


def _curves(velocity, dispersion, grid) -> dict:
    """Tensors for the figures: the disc's geometry and ``v_sys``, V(R) and the intrinsic
    sigma(R) at disc radii out to the field's half-diagonal (arcsec)."""
    half = 0.5 * grid.pixel_scale * float(np.hypot(*grid.shape))
    radii = np.linspace(0.0, half, CURVE_POINTS)
    r = pt.as_tensor_variable(radii)
    curves = {"radii": radii, **velocity.geometry.parameters(), "v_sys": velocity.v_sys}
    curves["rotation"] = velocity.rotation(r)
    if isinstance(dispersion, DiscDispersion):
        curves["dispersion"] = dispersion.profile(r)
    return curves


# ------------------------------------------------------------------------------ outputs
def curve_draws(run, result, *, draws=200, seed=0) -> dict:
    """The figures' quantities at up to ``draws`` posterior draws: ``{name: (S, ...)}``
    (V(R), sigma(R) in km/s; geometry in arcsec and radians) and ``radii`` (arcsec)."""
    curves = run.info["curves"]
    names = [k for k in curves if k != "radii"]
    outputs = [pt.as_tensor_variable(curves[k]) for k in names]
    model = run.model
    function = model.compile_fn(
        outputs, inputs=model.free_RVs, on_unused_input="ignore", point_fn=True
    )
    posterior = az.extract(result.idata, group="posterior")
    total = posterior.sizes["sample"]
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(total, size=min(draws, total), replace=False))
    free = [rv.name for rv in model.free_RVs]
    values = {k: [] for k in names}
    for i in picks:
        point = {name: np.asarray(posterior[name].isel(sample=int(i)).values) for name in free}
        for k, v in zip(names, function(point)):
            values[k].append(np.asarray(v, dtype=float))
    out = {k: np.array(v) for k, v in values.items()}
    out["radii"] = curves["radii"]
    return out


def kinematic_truth(run) -> dict | None:
    """The truth of a simulated galaxy (``TRUE_*`` cards of the maps file's primary header,
    :data:`KINEMATIC_TRUTH_CARDS`) for the free parameters it names; None for real data."""
    header = fits.getheader(run.config.kinematics["file"], 0)
    truth = {
        name: float(header[card])
        for card, name in KINEMATIC_TRUTH_CARDS.items()
        if card in header and name in run.info["units"]
    }
    return truth or None


def _truth_curves(spec, truth, radii) -> dict | None:
    """The true V(R) and sigma(R) (km/s) of a simulated galaxy at ``radii`` (arcsec): each
    profile whose free parameters all have a truth, rebuilt with those values (numpy twin)."""
    if not truth:
        return None
    curves = {}
    for part, table in (("rotation", "rotation"), ("dispersion", "dispersion_profile")):
        checked = spec[table]
        if checked is None:
            continue
        values = {}
        for key, (how, value) in checked["params"].items():
            label = TABLE_STEMS[table] + key
            if how == "fixed":
                values[key] = value
            elif label in truth:
                values[key] = truth[label]
            else:
                break
        else:
            function = profile_specs("radial")[checked["profile"]].make(values)
            curves[part] = as_radial_function(function).numpy(radii)
    return curves or None


def write_kinematic_galaxy(folder, run, result, *, reports=True) -> None:
    """Write a kinematic fit's files into ``folder``: ``maps_<map>.fits`` (data, model,
    residual per fitted map, with the input WCS), ``posterior.nc``, ``summary.ecsv`` and,
    with ``reports``, ``report_kinematic_maps.png`` (velocity and dispersion: data, model,
    residual), ``report_rotation_curve.png`` (V(R), sigma(R) with 68 and 95% bands),
    ``report_position_velocity.png`` (major-axis cut, data and model) and
    ``report_corner.png``."""
    from pymc_tracers.plotting.kinematics import (  # matplotlib: only when writing
        plot_kinematic_maps,
        plot_position_velocity,
        plot_rotation_curve,
    )

    folder = Path(folder)
    km_s = "km / s"
    for name in run.info["likelihoods"]:
        unit = None if name.endswith("flux") else km_s
        io.write_maps(
            folder / f"maps_{name}.fits", result.maps(name), wcs=run.data.wcs, name=name, unit=unit
        )
    result.save(folder / "posterior.nc")
    meta = {"convergence": result.convergence, "kind": "kinematics"}
    units = {**run.info["units"], **result.config.get("derived_units", {})}
    io.write_summary(folder / "summary.ecsv", result.summary(), units=units, meta=meta)
    if not reports:
        return
    draws = curve_draws(run, result, seed=run.config.sampler["seed"])
    median = {k: float(np.median(v)) for k, v in draws.items() if np.ndim(v) == 1 and k != "radii"}
    grid = run.data.grid
    names = run.info["likelihoods"]
    velocity = result.maps(names[0])
    if len(names) > 1 and names[1].endswith("dispersion"):
        figure = plot_kinematic_maps(
            velocity, result.maps(names[1]), grid=grid, v_sys=median["v_sys"]
        )
    else:  # velocity alone: data, model, residual of the one map
        figure = result.plot_maps(names[0], frame=run.data.frame, unit=km_s)
    figure.savefig(folder / "report_kinematic_maps.png", dpi=80)
    truth = kinematic_truth(run)
    figure = plot_rotation_curve(
        draws["radii"],
        draws["rotation"],
        draws.get("dispersion"),
        truth=_truth_curves(run.config.kinematics, truth, draws["radii"]),
    )
    figure.savefig(folder / "report_rotation_curve.png", dpi=80)
    figure = plot_position_velocity(
        velocity["data"],
        velocity["model"],
        grid,
        phi=median["phi"],
        x0=median["x0"],
        y0=median["y0"],
        v_sys=median["v_sys"],
        sigma=velocity["sigma"],
    )
    figure.savefig(folder / "report_position_velocity.png", dpi=80)
    corner = result.plot_corner(units=units, truth=truth)
    corner.savefig(folder / "report_corner.png", dpi=80)
