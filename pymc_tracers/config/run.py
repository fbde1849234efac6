"""One galaxy from configuration to result folder: the pipeline ``pymc-tracers fit`` and each
galaxy of ``pymc-tracers fit-sample`` share.

:func:`prepare_galaxy` reads the configuration, data and PSF and builds the model;
:func:`finish_result` turns the sampler's output into the :class:`~pymc_tracers.Result`
(binned maps, derived gradients, the convergence check); :func:`write_galaxy` writes the
output files. :func:`run_fit` strings them together around :func:`pymc_tracers.fit`.
"""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from pymc_tracers import io
from pymc_tracers.atomic import partial_folder, publish_folder
from pymc_tracers.config.build import build_model
from pymc_tracers.config.data import make_psf, read_data
from pymc_tracers.config.derived import add_derived_gradients
from pymc_tracers.config.errors import ConfigError, one_line
from pymc_tracers.config.kinematic_data import read_kinematic_data
from pymc_tracers.config.kinematic_model import build_kinematic_model, write_kinematic_galaxy
from pymc_tracers.config.schema import FitConfig, load_config
from pymc_tracers.inference.convergence import ConvergenceWarning
from pymc_tracers.inference.results import Result
from pymc_tracers.inference.sampling import fit
from pymc_tracers.model.binned import binned_likelihoods_of

__all__ = [
    "GalaxyRun",
    "build_galaxy",
    "Progress",
    "finish_result",
    "prepare_galaxy",
    "run_fit",
    "write_galaxy",
]


class Progress:
    """One-line progress messages, each with the seconds since this object was made.

    Parameters
    ----------
    say : callable or None
        Receives each message (``print``); ``None`` says nothing.
    """

    def __init__(self, say=print):
        self.say = say
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.started

    def __call__(self, text: str) -> None:
        if self.say is not None:
            self.say(f"[{self.seconds:6.1f} s] {text}")


@dataclass
class GalaxyRun:
    """One galaxy's configuration, data, PSF and model (from :func:`prepare_galaxy`)."""

    config: FitConfig
    data: object  # io.GalaxyData, or a KinematicInput for [kinematics]
    psf: object
    model: object
    info: dict

    def record(self, **extra) -> dict:
        """What the result stores about its configuration (``Result.config``)."""
        return {
            "config_file": str(self.config.path),
            "config": self.config.raw,
            "units": self.info["units"],
            "fixed": self.info["fixed"],
            "auto_priors": self.info["auto"],
            "tracer_name": self.data.tracer_name,
            "tracer_scale": self.info["tracer_scale"],
            **extra,
        }


def prepare_galaxy(config) -> GalaxyRun:
    """Load a configuration (a path or a :class:`FitConfig`), read its data and PSF and build
    its model.

    Raises
    ------
    ConfigError
        Any problem with the configuration, its files or its model (one line).
    """
    if not isinstance(config, FitConfig):
        config = load_config(config)
    data, psf, model, info = build_galaxy(config)
    if not model.free_RVs:
        raise ConfigError("no parameter has a prior: give at least one prior table to fit")
    return GalaxyRun(config, data, psf, model, info)


def build_galaxy(config: FitConfig, *, model=None, prefix="", overrides=None):
    """Read a configuration's data and PSF and build its model (a tracer map, or moment maps
    for ``[kinematics]``): ``(data, psf, model, info)``.

    ``model``, ``prefix`` and ``overrides`` put several galaxies into one model, as for
    :func:`~pymc_tracers.config.build_model`.
    """
    psf = make_psf(config)
    if config.kinematics is not None:
        data = read_kinematic_data(config.kinematics)
        build = build_kinematic_model
    else:
        data = read_data(config)
        build = build_model
    model, info = build(config, data, psf, model=model, prefix=prefix, overrides=overrides)
    return data, psf, model, info


def finish_result(run: GalaxyRun, result: Result) -> Result:
    """The sampled result with the binned maps (when the data are binned), the gradients in
    dex/R_e (and dex/kpc with ``[model] redshift``) and the convergence check recorded in its
    ``config["convergence"]`` (no warning: the caller reports it)."""
    s = run.config.sampler
    if run.info["binned"]:
        result = Result.from_model(
            result.idata,
            run.model,
            records=binned_likelihoods_of(run.model),
            map_draws=s.get("map_draws", 100),
            config=result.config,
            random_seed=s["seed"],
        )
    add_derived_gradients(result, run.config, run.info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result.check_convergence()
    return result


def write_galaxy(folder, run: GalaxyRun, result: Result, *, reports: bool = True) -> None:
    """Write ``maps.fits``, ``posterior.nc``, ``summary.ecsv`` (with units and the convergence
    report in its metadata), the PNG reports (``reports``) and ``config.toml`` into
    ``folder``."""
    if run.config.kinematics is not None:
        write_kinematic_galaxy(folder, run, result, reports=reports)
        shutil.copyfile(run.config.path, Path(folder) / "config.toml")
        return
    folder = Path(folder)
    name = run.info["name"]
    unit = run.data.units.get("tracer")
    maps = result.maps(name)
    io.write_maps(folder / "maps.fits", maps, wcs=run.data.wcs, name=name, unit=unit)
    result.save(folder / "posterior.nc")
    meta = {"convergence": result.convergence, "tracer_scale": run.info["tracer_scale"]}
    units = {**run.info["units"], **result.config.get("derived_units", {})}
    io.write_summary(folder / "summary.ecsv", result.summary(), units=units, meta=meta)
    if reports:
        figure = result.plot_maps(name, frame=run.data.frame, unit=unit)
        figure.savefig(folder / "report_maps.png", dpi=90)
        corner = result.plot_corner(units=units, truth=simulated_truth(run))
        corner.savefig(folder / "report_corner.png", dpi=80)
    shutil.copyfile(run.config.path, folder / "config.toml")


def simulated_truth(run: GalaxyRun) -> dict | None:
    """The truth of a simulated galaxy (``pymc-tracers init-example``: ``TRUE_Z0`` and
    ``TRUE_GRD`` in the primary header of ``[data] file``) as ``{parameter: value}`` for the
    single component's ``central`` and ``gradient``; None for real data."""
    path = run.config.data.get("file")
    if path is None or len(run.config.components) != 1:
        return None
    header = fits.getheader(path, 0)
    stem = run.config.components[0]["name"]
    stem = f"{stem}_" if stem else ""
    truth = {
        f"{stem}{key}": float(header[card])
        for key, card in (("central", "TRUE_Z0"), ("gradient", "TRUE_GRD"))
        if card in header and f"{stem}{key}" in run.info["units"]
    }
    return truth or None


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
        ``output`` (Path), ``name``, ``parameters`` ({name: (mean, sd, unit)}),
        ``diagnostics``, ``convergence`` (the report of
        :func:`pymc_tracers.inference.convergence.convergence_report`), ``seconds`` and ``result``.

    Raises
    ------
    ConfigError
        Any problem with the configuration or its files (one-line message). An existing
        output folder without ``overwrite`` raises ``FileExistsError``.
    """
    say = Progress(progress)
    config = load_config(path)
    out = _output_folder(config, output, overwrite)
    say(f"reading data ({config.path.name}) and building the model")
    run = prepare_galaxy(config)
    data = run.data
    say(
        f"  {data.tracer_name}: {data.shape[0]}x{data.shape[1]} pixels of "
        f"{data.pixel_scale:.4g} arcsec, {int(data.tracer_mask.sum())} used"
        + (f", {len(io.bin_ids(data.bin_map))} bins" if data.bin_map is not None else "")
        + f"; tracer_scale {run.info['tracer_scale']}"
    )
    for label, entry in run.info["auto"].items():
        say(f"  auto prior {label}: estimate {entry['estimate']:.4g}, {entry['prior']}")
    say(f"  {len(run.model.free_RVs)} free parameters, path: {run.info['observation'].path}")
    s = config.sampler
    say(
        f"compiling and sampling ({s['sampler']}: {s['chains']} chains x {s['tune']} tune + "
        f"{s['draws']} draws)"
    )
    kwargs = {"target_accept": s["target_accept"]} if "target_accept" in s else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported once, below
        try:
            result = fit(
                run.model,
                draws=s["draws"],
                tune=s["tune"],
                chains=s["chains"],
                sampler=s["sampler"],
                random_seed=s["seed"],
                progressbar=progressbar,
                map_draws=s.get("map_draws", 100),
                grid=data.grid,
                config=run.record(),
                observations=run.info["observations"],
                **kwargs,
            )
        except ValueError as error:
            raise ConfigError(f"[sampler]: {one_line(error)}") from None
    result = finish_result(run, result)
    convergence = result.convergence
    say("converged" if convergence["converged"] else _not_converged(convergence))
    say("writing results")
    with partial_folder(out.parent, out.name) as temporary:
        write_galaxy(temporary, run, result)
        publish_folder(temporary, out, replace=overwrite)
    summary = result.summary()
    units = {**run.info["units"], **result.config.get("derived_units", {})}
    parameters = {
        p: (float(summary.loc[p, "mean"]), float(summary.loc[p, "sd"]), units.get(p, ""))
        for p in summary.index
    }
    return {
        "output": out,
        "name": run.info["name"],
        "parameters": parameters,
        "diagnostics": result.diagnostics(),
        "convergence": convergence,
        "seconds": say.seconds,
        "result": result,
    }


def _not_converged(convergence) -> str:
    return (
        "WARNING: the fit did not converge: "
        + "; ".join(convergence["problems"])
        + " (recorded in summary.ecsv and posterior.nc; run more draws/tuning)"
    )


def _output_folder(config: FitConfig, output, overwrite) -> Path:
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
    return out
