"""Command line: ``pymc-tracers demo`` fits the paper's Figure-3 galaxy end to end; ``fit``,
``init-example`` and ``fit-sample`` (a catalogue of galaxies on Dask) fit real data."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from importlib.metadata import version

import pymc_tracers.cli.demo_command as demo_command
from pymc_tracers.cli.config_commands import add_config_commands, run_config_command
from pymc_tracers.cli.memory import (
    DEFAULT_MAX_MEMORY_GIB,
    GIB,
    psf_size_warning,
    render_memory_problem,
)
from pymc_tracers.cli.survey_command import add_survey_command, run_survey_command

__all__ = ["build_parser", "main"]

MIN_TUNE = 10
MIN_DRAWS = 10
MAX_SEED = 2**32 - 1


def build_parser() -> argparse.ArgumentParser:
    """The ``pymc-tracers`` argument parser (subcommands in ``parser.subcommands``)."""
    parser = argparse.ArgumentParser(prog="pymc-tracers", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"pymc-tracers {version('pymc_tracers')}"
    )
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
        default=DEFAULT_MAX_MEMORY_GIB,
        metavar="GiB",
        help="refuse to render a field estimated to need more memory "
        f"(default {DEFAULT_MAX_MEMORY_GIB:g} GiB)",
    )
    d.add_argument(
        "--output", default="pymc_tracers_demo.png", help="PNG of the maps ('' for none)"
    )
    d.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.subcommands = {"demo": d, **add_config_commands(sub), **add_survey_command(sub)}
    return parser


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
        error(f"--max-memory must be a number of GiB > 0; got {args.max_memory}")


def main(argv=None):
    # PyTensor warns at import when it links NumPy's BLAS; nothing a demo user can act on
    warnings.filterwarnings("ignore", message=".*BLAS.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser.subcommands[args.command]
    if args.command in ("fit", "init-example"):
        return run_config_command(args)
    if args.command == "fit-sample":
        return run_survey_command(args, sub)

    _check_demo_arguments(args, sub.error)
    grid, psf = demo_command.demo_setup(fwhm=args.fwhm, supersampling=args.supersampling)
    problem = render_memory_problem(grid, psf, args.max_memory * GIB)
    if problem:
        sub.error(problem)
    warning = psf_size_warning(grid, psf)
    if warning:
        print(f"pymc-tracers demo: warning: {warning}", file=sys.stderr)

    with warnings.catch_warnings():
        if warning:  # already said, before the slow part: not again from the forward model
            warnings.filterwarnings("ignore", message="the PSF stamp")
        try:
            out = demo_command.demo(
                fwhm=args.fwhm,
                seed=args.seed,
                draws=args.draws,
                tune=args.tune,
                tracer_scale=args.tracer_scale,
                output=args.output,
                supersampling=args.supersampling,
                max_memory_gib=args.max_memory,
                progressbar=not args.json,
            )
        except ValueError as error:  # the library's messages say what is wrong and what to do
            sub.error(str(error))
    out["seconds"], timed = demo_command.wall_seconds()
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
    print(f"  forward model    {out['path_detail']}")
    print(f"  wall time {out['seconds']:.1f} s {timed}; sampling {out['sampling_seconds']:.1f} s")
    if out.get("figure"):
        print(f"  maps written to {out['figure']}")
    return 0
