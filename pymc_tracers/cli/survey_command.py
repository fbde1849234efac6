"""``pymc-tracers fit-sample`` (:mod:`pymc_tracers.survey` does the work)."""

from __future__ import annotations

import sys
import warnings

from pymc_tracers import survey
from pymc_tracers.cli.config_commands import EXIT_NOT_CONVERGED
from pymc_tracers.cli.memory import DEFAULT_MAX_MEMORY_GIB
from pymc_tracers.inference.convergence import ConvergenceWarning

__all__ = ["add_survey_command", "run_survey_command"]


def add_survey_command(sub) -> dict:
    """The ``fit-sample`` subcommand (pymc_tracers.survey does the work)."""
    s = sub.add_parser(
        "fit-sample",
        help="fit a catalogue of galaxies on a Dask cluster, then their population relation",
        description="Fit every galaxy of CATALOG (CSV/ECSV: name, config, covariates) on a Dask "
        "cluster, writing DIR/galaxies/<name>/ as each finishes (a rerun skips finished "
        "galaxies), then infer the relation of one parameter with a covariate "
        "(docs/survey.md).",
        epilog='Needs Dask: pip install "pymc_tracers[survey]" (or --scheduler serial). '
        "Exit status: 0 all galaxies fitted and converged, 1 some failed (listed in "
        "DIR/failures.ecsv; the others are fitted), 2 a bad catalogue or option, or Dask "
        "missing, 3 everything fitted but a galaxy or the relation failed the convergence "
        "check (flagged in DIR/galaxies.ecsv and the relation's summary), 130 interrupted "
        "(rerun to resume).",
    )
    s.add_argument("catalog", metavar="CATALOG", help="the catalogue (.csv or .ecsv)")
    s.add_argument("--output", required=True, metavar="DIR", help="output folder (resumed)")
    s.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786; e.g. from dask-jobqueue), or 'serial' "
        "to fit the galaxies one after another in this process without Dask; default: a "
        "LocalCluster on this machine",
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
    s.add_argument(
        "--per-re",
        action="store_true",
        help="convert the parameter from per-arcsec to per effective radius (the light "
        "profile's fixed r_eff in each config): dex/R_e",
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
        default=DEFAULT_MAX_MEMORY_GIB,
        metavar="GiB",
        help="auto: the joint model only when its rendering fits in this (default "
        f"{DEFAULT_MAX_MEMORY_GIB:g} GiB)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    return {"fit-sample": s}


def run_survey_command(args, sub) -> int:
    """Run ``fit-sample``: exit 0 (all fitted and converged), 1 (some failed), 2 (bad input,
    Dask missing), 3 (a fit or the relation did not converge), 130 (stopped)."""
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
    covariates = []
    if args.population != "none":
        covariates.append(args.covariate)
        if args.per_kpc:
            covariates.append(args.redshift_column)
    try:
        if args.scheduler != survey.SERIAL:
            survey.require_dask()
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
        )
    except (survey.CatalogueError, survey.MissingExtraError, FileNotFoundError) as error:
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
    for name in report.unconverged:
        print(f"{prog}: warning: {name} did not converge (see its done.json)", file=sys.stderr)
    relation_converged = True
    if args.population != "none":
        relation_converged = _relation(args, catalogue, say, prog)
        if relation_converged is None:
            return 2
    if report.failed:
        print(
            f"{prog}: {len(report.failed)} of {len(catalogue)} galaxies failed (see "
            f"{report.output / 'failures.ecsv'}); the others are in {report.output / 'galaxies'}",
            file=sys.stderr,
        )
        return 1
    if report.unconverged or not relation_converged:
        return EXIT_NOT_CONVERGED
    return 0


def _relation(args, catalogue, say, prog):
    """Infer the population relation: True/False (converged), None after a bad input (one line
    on stderr)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # said in one line below
            relation = survey.infer_relation(
                args.output,
                catalogue,
                parameter=args.relation_param,
                covariate=args.covariate,
                per_kpc=args.per_kpc,
                per_re=args.per_re,
                redshift_column=args.redshift_column,
                method=args.population,
                draws=args.population_draws,
                tune=args.population_draws,
                chains=args.population_chains,
                max_draws=args.max_draws,
                max_memory_gib=args.max_memory,
                say=say,
            )
    except ValueError as error:
        print(f"{prog}: population relation: {' '.join(str(error).split())}", file=sys.stderr)
        return None
    if not relation.converged:
        problems = "; ".join(relation.info["convergence"]["problems"])
        print(
            f"{prog}: warning: the population relation did not converge: {problems}; its "
            "numbers are unreliable (raise --population-draws)",
            file=sys.stderr,
        )
    return relation.converged
