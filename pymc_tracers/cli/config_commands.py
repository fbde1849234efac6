"""``pymc-tracers fit`` and ``init-example`` (:mod:`pymc_tracers.config` does the work)."""

from __future__ import annotations

import sys

from pymc_tracers import config

__all__ = ["EXIT_NOT_CONVERGED", "add_config_commands", "run_config_command"]

#: Exit status of a run that wrote its results but did not pass the convergence check.
EXIT_NOT_CONVERGED = 3


def add_config_commands(sub) -> dict:
    """The ``fit`` and ``init-example`` subcommands (pymc_tracers.config does the work)."""
    f = sub.add_parser(
        "fit",
        help="fit FITS maps described by a TOML configuration",
        description="Fit the maps named in CONFIG.toml (data, PSF, components with priors, "
        "sampler, output folder; or a [kinematics] section: velocity and dispersion maps of a "
        "rotating disc; docs/config.md) and write maps.fits, posterior.nc, summary.ecsv and PNG "
        "reports into the output folder.",
        epilog="Exit status: 0 fitted and converged, 2 a bad configuration or file, 3 fitted "
        "but the posterior failed the convergence check (R-hat, ESS, divergences; the results "
        "are written and flagged).",
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
    e.add_argument(
        "--kinematics",
        action="store_true",
        help="a rotating disc instead: DIR/kinematics.fits (velocity and dispersion maps with "
        "errors, km/s) and a config.toml with a [kinematics] section",
    )
    return {"fit": f, "init-example": e}


def run_config_command(args) -> int:
    """Run ``fit`` / ``init-example``: exit 0, 2 (a bad configuration: one line on stderr) or
    3 (``fit``: results written, but the fit did not pass the convergence check)."""
    prog = f"pymc-tracers {args.command}"
    try:
        if args.command == "init-example":
            write = config.write_kinematic_example if args.kinematics else config.write_example
            path = write(
                args.dir, rotation_deg=args.rotation, seed=args.seed, overwrite=args.overwrite
            )
            files = ["kinematics.fits"] if args.kinematics else ["galaxy.fits", "psf.fits"]
            print(f"wrote {', '.join(str(path.parent / n) for n in files)} and {path}")
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
        if name.endswith("_per_re"):  # tracer units per effective radius
            unit = f"{unit} / R_e".strip()
        print(f"  {name:<24s} {mean:+.4f} +/- {sd:.4f} {unit}")
    print(
        f"  R-hat max {d['r_hat_max']:.3f}, bulk ESS min {d['ess_bulk_min']:.0f}, "
        f"divergences {d['divergences']}; {out['seconds']:.1f} s"
    )
    print(f"results in {out['output']}")
    convergence = out["convergence"]
    if not convergence["converged"]:
        print(
            f"{prog}: warning: the fit did not converge: {'; '.join(convergence['problems'])}; "
            "its posterior is unreliable (recorded in summary.ecsv; exit status 3)",
            file=sys.stderr,
        )
        return EXIT_NOT_CONVERGED
    return 0
