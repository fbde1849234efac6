"""``pymc-tracers demo``: simulate the paper's Figure-3 galaxy and fit its metallicity gradient
with the forward model and with weighted least squares."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pymc as pm

from pymc_tracers.baselines import wls_gradient
from pymc_tracers.cli.memory import DEFAULT_MAX_MEMORY_GIB, GIB, render_memory_problem
from pymc_tracers.forward import Component, observe
from pymc_tracers.grid import PixelGrid
from pymc_tracers.inference.convergence import ConvergenceWarning
from pymc_tracers.inference.sampling import fit
from pymc_tracers.model.likelihood import tracer_likelihood
from pymc_tracers.profiles import Exponential, LinearGradient
from pymc_tracers.psf import GaussianPSF
from pymc_tracers.simulate import PAPER_PIXEL_SCALE, figure3_galaxy

__all__ = ["DEMO_SHAPE", "demo", "demo_setup", "wall_seconds"]

DEMO_SHAPE = (121, 121)

_STARTED = time.perf_counter()


def _seconds_since_process_start() -> float | None:
    """Wall time since this process started (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def wall_seconds() -> tuple[float, str]:
    """``(seconds, what they count)``: from process start, else from loading the CLI."""
    seconds = _seconds_since_process_start()
    if seconds is not None:
        return seconds, "since the process started (imports included)"
    return time.perf_counter() - _STARTED, "since the command line was loaded"


def demo_setup(*, fwhm, supersampling=3):
    """The Figure-3 grid (121x121 pixels of 0.066 arcsec) and Gaussian PSF (FWHM arcsec)."""
    return PixelGrid(DEMO_SHAPE, PAPER_PIXEL_SCALE, supersampling=supersampling), GaussianPSF(fwhm)


def demo(
    *,
    fwhm=1.5,
    seed=0,
    draws=1000,
    tune=1000,
    tracer_scale="log",
    output="pymc_tracers_demo.png",
    supersampling=3,
    max_memory_gib=DEFAULT_MAX_MEMORY_GIB,
    progressbar=True,
):
    """Simulate the Figure-3 galaxy, fit it with the forward model and with WLS.

    Light is fixed to the truth and the tracer's central value and gradient are free, as in
    the paper. Returns a dict of results (see ``--json``); ``fit_seconds`` is the wall time of
    this function (simulation, model building, compilation, sampling, maps and figure),
    ``sampling_seconds`` that of sampling alone.

    Raises
    ------
    ValueError
        If rendering the field would need more than ``max_memory_gib`` GiB.
    """
    start = time.perf_counter()
    grid, psf = demo_setup(fwhm=fwhm, supersampling=supersampling)
    problem = render_memory_problem(grid, psf, max_memory_gib * GIB)
    if problem:
        raise ValueError(problem)
    galaxy = figure3_galaxy(
        fwhm, seed=seed, tracer_scale=tracer_scale, psf=psf, supersampling=supersampling
    )
    truth = galaxy.truth
    wls = wls_gradient(galaxy.tracer_map, galaxy.tracer_error, galaxy.grid)
    with pm.Model() as model:
        central = pm.Normal("central", 8.5, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = Component(
            Exponential(r_eff=truth["r_eff"], amplitude=truth["amplitude"]),
            LinearGradient(central=central, gradient=gradient),
        )
        observation = observe(disc, galaxy.grid, galaxy.psf, tracer_scale)
        tracer_likelihood("metallicity", observation, galaxy.tracer_map, sigma=galaxy.tracer_error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = fit(
            model,
            draws=draws,
            tune=tune,
            random_seed=seed,
            progressbar=progressbar,
            grid=galaxy.grid,
            log_likelihood=False,
            config={"demo": "figure3", "fwhm": fwhm, "seed": seed},
            observations=[observation],
        )
    p16, p50, p84 = result.percentiles("gradient")
    diagnostics = result.diagnostics()
    out = {
        "fwhm": fwhm,
        "seed": seed,
        "tracer_scale": tracer_scale,
        "supersampling": supersampling,
        "truth_gradient": truth["gradient"],
        "truth_central": truth["central"],
        "wls_gradient": wls.gradient,
        "wls_gradient_err": wls.gradient_err,
        "gradient_median": float(p50),
        "gradient_p16": float(p16),
        "gradient_p84": float(p84),
        "central_median": float(np.median(result.idata.posterior["central"].values)),
        "r_hat_max": diagnostics["r_hat_max"],
        "ess_bulk_min": diagnostics["ess_bulk_min"],
        "divergences": diagnostics["divergences"],
        "n_pixels": result.n_data(),
        "path": observation.path,
        "path_detail": observation.renderer.describe(),
        "radial_error_posterior": result.config.get("radial_error"),
        "sampling_seconds": result.config["sampling_seconds"],
    }
    if output:
        radii = np.linspace(0.0, float(np.hypot(*galaxy.grid.shape)) * galaxy.grid.pixel_scale / 2)
        intrinsic = truth["central"] + truth["gradient"] * radii  # 12+log(O/H) before smearing
        fig = result.plot_maps(
            "metallicity", grid=galaxy.grid, unit="dex", truth=(radii, intrinsic)
        )
        fig.savefig(output, dpi=110)
        out["figure"] = output
    out["fit_seconds"] = time.perf_counter() - start
    return out
