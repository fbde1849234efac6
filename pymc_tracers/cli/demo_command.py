"""Command line: ``pymc-tracers demo`` fits the paper's Figure-3 galaxy end to end; ``fit``,
``init-example`` and ``fit-sample`` (a catalogue of galaxies on Dask) fit real data."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

from pymc_tracers.numerics import RENDER_FIELD_COPIES, RENDER_KERNEL_COPIES

#: Default refusal threshold of the demo, GB (10^9 bytes).
DEFAULT_MAX_MEMORY_GB = 4.0
#: Warn when the PSF stamp is this many times wider than the field.
PSF_TO_FIELD_WARNING = 4.0
#: Fewest tuning steps the demo accepts (nutpie needs >= 1; fewer than ~100 adapt poorly).
MIN_TUNE = 10
MIN_DRAWS = 10
MAX_SEED = 2**32 - 1
DEMO_SHAPE = (121, 121)

_STARTED = time.perf_counter()


def estimate_render_bytes(grid, psf, *, convolve_at="subpixel") -> int:
    """Approximate peak memory (bytes) of rendering and convolving one field.

    The profiles are rendered on the supersampled grid padded by the PSF half-width ``h``
    (in sub-pixels) on every side, and convolved there by FFT, so memory grows as
    ``(ny s + 2 h) (nx s + 2 h)``: quadratically in the PSF size. The estimate counts
    ``RENDER_FIELD_COPIES`` float64 copies of that padded field plus
    ``RENDER_KERNEL_COPIES`` of the PSF stamp ``(2 h + 1)^2``; it leaves out the fixed cost of
    the imported libraries (~0.5 GB).

    Parameters
    ----------
    grid : PixelGrid
        Uses ``grid.shape``, ``grid.supersampling`` and ``grid.subpixel_scale``.
    psf : PSF
        Uses ``psf.half_width(grid.subpixel_scale)``.
    convolve_at : {"subpixel", "pixel"}
        As in :func:`pymc_tracers.observe`: ``"pixel"`` pads and convolves at the data-pixel
        scale (the stamp is still drawn on sub-pixels).

    Returns
    -------
    int
        Bytes.
    """
    if convolve_at not in ("subpixel", "pixel"):
        raise ValueError(f"unknown convolve_at {convolve_at!r}; use 'subpixel' or 'pixel'")
    ny, nx = grid.shape
    s = grid.supersampling
    h = int(psf.half_width(grid.subpixel_scale))
    if convolve_at == "subpixel":
        field = (ny * s + 2 * h) * (nx * s + 2 * h)
    else:
        pad = h // s
        field = (ny + 2 * pad) * (nx + 2 * pad) + ny * nx * s * s
    stamp = (2 * h + 1) ** 2
    return 8 * (RENDER_FIELD_COPIES * field + RENDER_KERNEL_COPIES * stamp)


def render_memory_problem(grid, psf, max_bytes) -> str | None:
    """A message naming the levers when rendering would need more than ``max_bytes``."""
    needed = estimate_render_bytes(grid, psf)
    if needed <= max_bytes:
        return None
    h = psf.half_width(grid.subpixel_scale)
    return (
        f"rendering this field would need about {needed / 1e9:.1f} GB (limit "
        f"{max_bytes / 1e9:.1f} GB): the {grid.shape[0]}x{grid.shape[1]}-pixel field is "
        f"supersampled {grid.supersampling}x and padded by the PSF half-width, {h} sub-pixels "
        f"({h * grid.subpixel_scale:.1f} arcsec), on every side. Levers: a lower supersampling "
        "(PixelGrid(..., supersampling=1); demo: --supersampling 1), observe(..., "
        'convolve_at="pixel") to convolve at the data-pixel scale, or a smaller PSF stamp '
        "(GaussianPSF(fwhm, radius=<arcsec>), a cropped PixelPSF); or raise the limit "
        "(demo: --max-memory GB)"
    )


def psf_size_warning(grid, psf) -> str | None:
    """A warning when the PSF stamp is much wider than the field, else None."""
    stamp = 2 * psf.half_width(grid.subpixel_scale) + 1
    field = max(grid.shape) * grid.supersampling
    if stamp <= PSF_TO_FIELD_WARNING * field:
        return None
    scale = grid.subpixel_scale
    return (
        f"the PSF stamp ({stamp * scale:.1f} arcsec across) is {stamp / field:.0f}x wider than "
        f"the field ({field * scale:.1f} arcsec): nearly all the light is smeared over the "
        "field, the maps are almost flat and the gradient is barely constrained"
    )


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
    from pymc_tracers.grid import PixelGrid
    from pymc_tracers.psf import GaussianPSF
    from pymc_tracers.simulate import PAPER_PIXEL_SCALE

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
    max_memory_gb=DEFAULT_MAX_MEMORY_GB,
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
        If rendering the field would need more than ``max_memory_gb`` GB.
    """
    import numpy as np
    import pymc as pm

    import pymc_tracers as pmt

    start = time.perf_counter()
    grid, psf = demo_setup(fwhm=fwhm, supersampling=supersampling)
    problem = render_memory_problem(grid, psf, max_memory_gb * 1e9)
    if problem:
        raise ValueError(problem)
    galaxy = pmt.simulate.figure3_galaxy(
        fwhm, seed=seed, tracer_scale=tracer_scale, psf=psf, supersampling=supersampling
    )
    truth = galaxy.truth
    wls = pmt.baselines.wls_gradient(galaxy.tracer_map, galaxy.tracer_error, galaxy.grid)
    with pm.Model():
        central = pm.Normal("central", 8.5, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(
            pmt.Exponential(r_eff=truth["r_eff"], amplitude=truth["amplitude"]),
            # the range lets log averaging take its fast series (full path outside it)
            pmt.LinearGradient(central=central, gradient=gradient, gradient_range=(-0.5, 0.1)),
        )
        _, metallicity = pmt.observe(disc, galaxy.grid, galaxy.psf, tracer_scale)
        pmt.tracer_likelihood(
            "metallicity", metallicity, galaxy.tracer_map, sigma=galaxy.tracer_error
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pmt.ConvergenceWarning)
            result = pmt.fit(
                draws=draws,
                tune=tune,
                random_seed=seed,
                progressbar=progressbar,
                grid=galaxy.grid,
                log_likelihood=False,
                config={"demo": "figure3", "fwhm": fwhm, "seed": seed},
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
        "sampling_seconds": result.config["sampling_seconds"],
    }
    if output:
        fig = result.plot_maps("metallicity", grid=galaxy.grid)
        fig.savefig(output, dpi=110)
        out["figure"] = output
    out["fit_seconds"] = time.perf_counter() - start
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``pymc-tracers`` argument parser (subcommands in ``parser.subcommands``)."""
    from pymc_tracers import __version__

    parser = argparse.ArgumentParser(prog="pymc-tracers", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pymc-tracers {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser(
        "demo",
        help="fit the paper's Figure-3 galaxy (forward model vs WLS)",
        description="Simulate the paper's Figure-3 galaxy (exponential disc, R_e = 1 arcsec, "
        "gradient -0.2 dex/arcsec, 121x121 pixels of 0.066 arcsec) and fit its metallicity "
        "gradient with the forward model (2 NUTS chains) and with weighted least squares.",
        epilog="Reported times: 'wall' since the process started (imports included), "
        "'sampling' for the NUTS run alone.",
    )
    d.add_argument(
        "--fwhm", type=float, default=1.5, help="Gaussian PSF FWHM in arcsec (default 1.5)"
    )
    d.add_argument(
        "--seed",
        type=int,
        default=0,
        help=f"noise realisation and sampler seed, 0 to {MAX_SEED} (default 0)",
    )
    d.add_argument(
        "--draws",
        type=int,
        default=1000,
        help=f"posterior draws per chain, >= {MIN_DRAWS} (default 1000)",
    )
    d.add_argument(
        "--tune",
        type=int,
        default=1000,
        help=f"tuning steps per chain, >= {MIN_TUNE} (default 1000)",
    )
    d.add_argument(
        "--tracer-scale",
        choices=["linear", "log"],
        default="log",
        help="average 12+log(O/H) as 10**Z (default: the physically right choice) or linearly "
        "(as the paper's lenstronomy fits did: --tracer-scale linear for paper parity)",
    )
    d.add_argument(
        "--supersampling",
        type=int,
        default=3,
        help="sub-pixels per pixel along each axis, >= 1 (default 3)",
    )
    d.add_argument(
        "--max-memory",
        type=float,
        default=DEFAULT_MAX_MEMORY_GB,
        metavar="GB",
        help="refuse to render a field estimated to need more memory "
        f"(default {DEFAULT_MAX_MEMORY_GB:g} GB)",
    )
    d.add_argument(
        "--output", default="pymc_tracers_demo.png", help="PNG of the maps ('' for none)"
    )
    d.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.subcommands = {"demo": d, **_add_config_commands(sub), **_add_survey_command(sub)}
    return parser


#: Test hook: ``fit-sample`` stops (as if interrupted) after this many galaxies are written.
STOP_AFTER_ENV = "PYMC_TRACERS_STOP_AFTER"


def _add_survey_command(sub) -> dict:
    """The ``fit-sample`` subcommand (pymc_tracers.survey does the work)."""
    s = sub.add_parser(
        "fit-sample",
        help="fit a catalogue of galaxies on a Dask cluster, then their population relation",
        description="Fit every galaxy of CATALOG (CSV/ECSV: name, config, covariates) on a Dask "
        "cluster, writing DIR/galaxies/<name>/ as each finishes (a rerun skips finished "
        "galaxies), then infer the relation of one parameter with a covariate "
        "(docs/survey.md).",
        epilog="Exit status: 0 all galaxies fitted, 1 some failed (listed in DIR/failures.ecsv; "
        "the others are fitted), 2 a bad catalogue or option, 130 interrupted (rerun to resume).",
    )
    s.add_argument("catalog", metavar="CATALOG", help="the catalogue (.csv or .ecsv)")
    s.add_argument("--output", required=True, metavar="DIR", help="output folder (resumed)")
    s.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786; e.g. from dask-jobqueue); default: "
        "a LocalCluster on this machine",
    )
    s.add_argument(
        "--workers", type=int, default=None, help="LocalCluster worker processes (default: cores)"
    )
    s.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads per worker (default 1)"
    )
    s.add_argument(
        "--no-processes",
        action="store_true",
        help="LocalCluster workers as threads of this process (quicker to start, less isolated)",
    )
    s.add_argument(
        "--overwrite-failed",
        action="store_true",
        help="also refit galaxies whose stored result failed the convergence check (R-hat, "
        "ESS, divergences); galaxies whose fit raised an error are always retried",
    )
    s.add_argument("--reports", action="store_true", help="PNG reports for every galaxy")
    s.add_argument(
        "--relation-param",
        default="gradient",
        metavar="NAME",
        help="per-galaxy parameter of the relation: a full name (disc_gradient) or a unique "
        "suffix (default: gradient)",
    )
    s.add_argument(
        "--covariate", default="log_mass", metavar="COLUMN", help="covariate (default log_mass)"
    )
    s.add_argument(
        "--per-kpc",
        action="store_true",
        help="convert the parameter from per-arcsec to per-kpc with the redshift column",
    )
    s.add_argument("--redshift-column", default="redshift", metavar="COLUMN")
    s.add_argument(
        "--population",
        choices=["auto", "joint", "reweight", "none"],
        default="auto",
        help="relation method: joint hierarchical model, importance reweighting of the stored "
        "posteriors, auto (joint when the sample is small enough), none (default auto)",
    )
    s.add_argument(
        "--population-draws",
        type=int,
        default=1000,
        metavar="N",
        help="draws per chain of the relation's fit (default 1000; as many tuning steps)",
    )
    s.add_argument("--population-chains", type=int, default=2, metavar="N")
    s.add_argument(
        "--max-draws",
        type=int,
        default=1000,
        metavar="K",
        help="stored draws per galaxy used by the reweighting (default 1000)",
    )
    s.add_argument(
        "--max-memory",
        type=float,
        default=DEFAULT_MAX_MEMORY_GB,
        metavar="GB",
        help="auto: the joint model only when its rendering fits in this (default "
        f"{DEFAULT_MAX_MEMORY_GB:g} GB)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    return {"fit-sample": s}


def _run_survey_command(args, sub) -> int:
    """Run ``fit-sample``: exit 0 (all fitted), 1 (some failed), 2 (bad input), 130 (stopped)."""
    from pymc_tracers import survey

    prog = "pymc-tracers fit-sample"
    for option, value in [
        ("--workers", args.workers),
        ("--threads-per-worker", args.threads_per_worker),
        ("--population-draws", args.population_draws),
        ("--population-chains", args.population_chains),
        ("--max-draws", args.max_draws),
    ]:
        if value is not None and value < 1:
            sub.error(f"{option} must be an integer >= 1; got {value}")
    say = None if args.quiet else (lambda text: print(f"{prog}: {text}", flush=True))
    stop_after = os.environ.get(STOP_AFTER_ENV)
    covariates = []
    if args.population != "none":
        covariates.append(args.covariate)
        if args.per_kpc:
            covariates.append(args.redshift_column)
    try:
        catalogue = survey.read_catalogue(args.catalog, covariates=covariates)
        report = survey.fit_sample(
            catalogue,
            args.output,
            scheduler=args.scheduler,
            n_workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            processes=not args.no_processes,
            overwrite_unconverged=args.overwrite_failed,
            reports=args.reports,
            progressbar=not args.quiet,
            say=say,
            stop_after=int(stop_after) if stop_after else None,
        )
    except (survey.CatalogueError, FileNotFoundError) as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = len(survey.finished_galaxies(args.output))
        print(
            f"{prog}: interrupted; {done} galaxies have results in {args.output}; run the same "
            "command again to fit the rest",
            file=sys.stderr,
        )
        return 130
    for name, error in report.failed.items():
        print(f"{prog}: {name} failed: {error}", file=sys.stderr)
    if args.population != "none":
        try:
            survey.infer_relation(
                args.output,
                catalogue,
                parameter=args.relation_param,
                covariate=args.covariate,
                per_kpc=args.per_kpc,
                redshift_column=args.redshift_column,
                method=args.population,
                draws=args.population_draws,
                tune=args.population_draws,
                chains=args.population_chains,
                max_draws=args.max_draws,
                max_memory_gb=args.max_memory,
                say=say,
            )
        except ValueError as error:
            print(f"{prog}: population relation: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
    if report.failed:
        print(
            f"{prog}: {len(report.failed)} of {len(catalogue)} galaxies failed (see "
            f"{report.output / 'failures.ecsv'}); the others are in {report.output / 'galaxies'}",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_config_commands(sub) -> dict:
    """The ``fit`` and ``init-example`` subcommands (pymc_tracers.config does the work)."""
    f = sub.add_parser(
        "fit",
        help="fit FITS maps described by a TOML configuration",
        description="Fit the maps named in CONFIG.toml (data, PSF, components with priors, "
        "sampler, output folder; docs/config.md) and write maps.fits, posterior.nc, "
        "summary.ecsv and PNG reports into the output folder.",
    )
    f.add_argument("config", metavar="CONFIG.toml", help="the configuration file")
    f.add_argument("--output", default=None, help="output folder (default: [output] folder)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    f.add_argument("--quiet", action="store_true", help="no progress messages or progress bar")
    e = sub.add_parser(
        "init-example",
        help="write a simulated galaxy (FITS) and a config.toml that fits it",
        description="Write DIR/galaxy.fits (metallicity, error, H-alpha maps with a rotated WCS), "
        "DIR/psf.fits and a commented DIR/config.toml; then run: pymc-tracers fit "
        "DIR/config.toml",
    )
    e.add_argument("dir", metavar="DIR", help="folder to write (created if missing)")
    e.add_argument("--seed", type=int, default=0, help="noise realisation (default 0)")
    e.add_argument(
        "--rotation", type=float, default=25.0, help="north's angle from +y, degrees (default 25)"
    )
    e.add_argument("--overwrite", action="store_true", help="replace existing example files")
    return {"fit": f, "init-example": e}


def _run_config_command(args) -> int:
    """Run ``fit`` / ``init-example``: a bad configuration is one line on stderr, exit 2."""
    from pymc_tracers import config

    prog = f"pymc-tracers {args.command}"
    try:
        if args.command == "init-example":
            path = config.write_example(
                args.dir, rotation_deg=args.rotation, seed=args.seed, overwrite=args.overwrite
            )
            print(f"wrote {path.parent / 'galaxy.fits'}, {path.parent / 'psf.fits'} and {path}")
            print(f"next: pymc-tracers fit {path}")
            return 0
        say = None if args.quiet else (lambda text: print(f"{prog}: {text}", flush=True))
        out = config.run_fit(
            args.config,
            output=args.output,
            overwrite=args.overwrite,
            progress=say,
            progressbar=not args.quiet,
        )
    except (config.ConfigError, FileExistsError, FileNotFoundError) as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    d = out["diagnostics"]
    print(f"{out['name']}: posterior mean +/- sd")
    for name, (mean, sd, unit) in out["parameters"].items():
        print(f"  {name:<24s} {mean:+.4f} +/- {sd:.4f} {unit}")
    print(
        f"  R-hat max {d['r_hat_max']:.3f}, bulk ESS min {d['ess_bulk_min']:.0f}, "
        f"divergences {d['divergences']}; {out['seconds']:.1f} s"
    )
    print(f"results in {out['output']}")
    return 0


def _check_demo_arguments(args, error):
    if not (math.isfinite(args.fwhm) and args.fwhm > 0):
        error(f"--fwhm must be a finite number > 0 (arcsec); got {args.fwhm}")
    if not 0 <= args.seed <= MAX_SEED:
        error(f"--seed must be an integer from 0 to {MAX_SEED}; got {args.seed}")
    if args.draws < MIN_DRAWS:
        error(f"--draws must be >= {MIN_DRAWS}; got {args.draws}")
    if args.tune < MIN_TUNE:
        error(
            f"--tune must be >= {MIN_TUNE}; got {args.tune}. NUTS adapts its step size and mass "
            "matrix during tuning (nutpie cannot run without it); 1000 is the default"
        )
    if args.supersampling < 1:
        error(f"--supersampling must be an integer >= 1; got {args.supersampling}")
    if not (math.isfinite(args.max_memory) and args.max_memory > 0):
        error(f"--max-memory must be a number of GB > 0; got {args.max_memory}")


def main(argv=None):
    # PyTensor warns at import when it links NumPy's BLAS; nothing a demo user can act on
    warnings.filterwarnings("ignore", message=".*BLAS.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser.subcommands[args.command]
    if args.command in ("fit", "init-example"):
        return _run_config_command(args)
    if args.command == "fit-sample":
        return _run_survey_command(args, sub)

    _check_demo_arguments(args, sub.error)
    grid, psf = demo_setup(fwhm=args.fwhm, supersampling=args.supersampling)
    problem = render_memory_problem(grid, psf, args.max_memory * 1e9)
    if problem:
        sub.error(problem)
    warning = psf_size_warning(grid, psf)
    if warning:
        print(f"pymc-tracers demo: warning: {warning}", file=sys.stderr)

    with warnings.catch_warnings():
        if warning:  # already said, before the slow part: not again from the forward model
            warnings.filterwarnings("ignore", message="the PSF stamp")
        try:
            out = demo(
                fwhm=args.fwhm,
                seed=args.seed,
                draws=args.draws,
                tune=args.tune,
                tracer_scale=args.tracer_scale,
                output=args.output,
                supersampling=args.supersampling,
                max_memory_gb=args.max_memory,
                progressbar=not args.json,
            )
        except ValueError as error:  # the library's messages say what is wrong and what to do
            sub.error(str(error))
    out["seconds"], timed = wall_seconds()
    out["seconds_counts"] = timed
    if args.json:
        print(json.dumps(out))
        return 0
    print(f'Figure-3 galaxy, Gaussian PSF FWHM {out["fwhm"]}" (R_e = 1"), seed {out["seed"]}')
    print(f"  truth            gradient {out['truth_gradient']:+.4f} dex/arcsec")
    print(
        f"  WLS (no PSF)     gradient {out['wls_gradient']:+.4f} +/- {out['wls_gradient_err']:.4f}"
    )
    lo = out["gradient_median"] - out["gradient_p16"]
    hi = out["gradient_p84"] - out["gradient_median"]
    print(
        f"  forward model    gradient {out['gradient_median']:+.4f} -{lo:.4f} +{hi:.4f}  "
        f"(Z_c = {out['central_median']:.3f})"
    )
    print(
        f"  R-hat max {out['r_hat_max']:.3f}, bulk ESS min {out['ess_bulk_min']:.0f}, "
        f"divergences {out['divergences']}, {out['n_pixels']} pixels"
    )
    print(f"  wall time {out['seconds']:.1f} s {timed}; sampling {out['sampling_seconds']:.1f} s")
    if out.get("figure"):
        print(f"  maps written to {out['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
