"""The driver side of a survey: plan a run, fit every galaxy on a Dask cluster (or one after
another in this process), and write the run's tables."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from astropy.table import Table
from tqdm.auto import tqdm

from pymc_tracers.atomic import atomic_write, clean_leftovers
from pymc_tracers.config.errors import one_line
from pymc_tracers.survey.catalogue import Catalogue, read_catalogue
from pymc_tracers.survey.worker import DONE_FILE, WorkerState, fit_galaxy

__all__ = [
    "SERIAL",
    "MissingExtraError",
    "SampleInterrupted",
    "SampleReport",
    "finished_galaxies",
    "fit_sample",
    "require_dask",
]

#: ``scheduler=SERIAL`` fits the galaxies one after another in this process, without Dask.
SERIAL = "serial"
#: The environment of the worker processes of a LocalCluster this module starts: Dask logs
#: errors only, and PyTensor's BLAS notice is not repeated by every worker.
_QUIET_WORKERS = {
    "DASK_LOGGING__DISTRIBUTED": "error",
    "PYTHONWARNINGS": "ignore:PyTensor could not link to a BLAS",
}
#: Loggers that print tracebacks while an interrupted cluster shuts down.
_NOISY_LOGGERS = ("distributed", "tornado", "asyncio")


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the ``pip install`` command."""


class SampleInterrupted(KeyboardInterrupt):
    """The run was stopped before every galaxy was fitted; rerun the same command to resume."""


def require_dask():
    """Import ``distributed`` or raise :class:`MissingExtraError` naming the extra."""
    try:
        import distributed
    except ImportError:
        raise MissingExtraError(
            "fit-sample runs on Dask, which is not installed: pip install "
            '"pymc_tracers[survey]" (or use --scheduler serial to fit the galaxies one after '
            "another in this process)"
        ) from None
    return distributed


@dataclass
class SampleReport:
    """What one :func:`fit_sample` run did.

    Attributes
    ----------
    output : Path
        The output folder.
    fitted : list of str
        Galaxies fitted and written in this run (including replaced ones).
    skipped : list of str
        Galaxies that already had a result.
    failed : dict
        ``{name: one-line error}`` of this run's failures (also in ``failures.ecsv``).
    duplicates : list of str
        Galaxies whose result another attempt wrote first (this attempt was discarded).
    unconverged : list of str
        Galaxies fitted in this run whose posterior failed the convergence check (R-hat,
        ESS, divergences; recorded in their ``done.json`` and in ``galaxies.ecsv``).
    reused : int
        Fits that reused a sampler compiled for an earlier galaxy of the same structure.
    seconds : float
        Wall time of the run, s.
    dashboard : str or None
        The Dask dashboard link.
    """

    output: Path
    fitted: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    duplicates: list = field(default_factory=list)
    unconverged: list = field(default_factory=list)
    reused: int = 0
    seconds: float = 0.0
    dashboard: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def finished_galaxies(output) -> list[str]:
    """Names of the galaxies with a complete result in ``output/galaxies``."""
    galaxies = Path(output) / "galaxies"
    if not galaxies.is_dir():
        return []
    return sorted(
        p.name
        for p in galaxies.iterdir()
        if not p.name.startswith(".") and (p / DONE_FILE).is_file()
    )


def _marker(galaxies: Path, name) -> dict:
    try:
        return json.loads((galaxies / name / DONE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def fit_sample(
    catalogue,
    output,
    *,
    scheduler=None,
    n_workers=None,
    threads_per_worker=1,
    processes=True,
    dashboard_address=":8787",
    overwrite_unconverged=False,
    reports=False,
    reuse_compiled=True,
    progressbar=True,
    say=print,
) -> SampleReport:
    """Fit every galaxy of a catalogue, writing each result as it finishes.

    Parameters
    ----------
    catalogue : Catalogue, str or path-like
        The catalogue (:func:`read_catalogue`).
    output : str or path-like
        Output folder (created; an existing one is resumed).
    scheduler : str, distributed.Client, Cluster or None
        ``None`` starts a ``distributed.LocalCluster`` (closed at the end); an address
        (``"tcp://10.0.0.1:8786"``), a ``Client`` or a cluster object (e.g. dask-jobqueue's
        ``SLURMCluster``) uses that cluster, whose workers must see the catalogue's files and
        the output folder (a shared file system) and have pymc_tracers installed.
        ``"serial"`` fits the galaxies one after another in this process, without Dask.
    n_workers, threads_per_worker, processes, dashboard_address
        The LocalCluster (``n_workers=None``: one per core). One thread per worker process is
        the fastest measured here: NUTS chains, JAX and the FFTs use their own threads.
    overwrite_unconverged : bool
        Also refit galaxies whose stored result failed the convergence check (R-hat, ESS,
        divergences), replacing it atomically. Failed fits (errors) are always retried.
    reports : bool
        Write each galaxy's PNG reports too.
    reuse_compiled : bool
        Share compiled samplers between galaxies of identical model structure (per worker).
    progressbar : bool
        A tqdm progress bar over finished galaxies (on stderr).
    say : callable or None
        Called with one-line messages (the dashboard link, a summary).

    Returns
    -------
    SampleReport

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C: the remaining tasks are cancelled, the tables are written, what finished
        is kept, and a rerun resumes.
    MissingExtraError
        Dask is needed (any ``scheduler`` but ``"serial"``) and not installed.
    """
    say = say or (lambda text: None)
    started = time.perf_counter()
    if not isinstance(catalogue, Catalogue):
        catalogue = read_catalogue(catalogue)
    output = Path(output)
    galaxies = output / "galaxies"
    galaxies.mkdir(parents=True, exist_ok=True)
    report = SampleReport(output=output)
    for leftover in clean_leftovers(galaxies):
        say(f"removed {leftover} (left by an interrupted run)")
    todo = []
    for name, config in zip(catalogue.names, catalogue.configs):
        marker = _marker(galaxies, name)
        unconverged = marker and not marker.get("converged", True)
        if marker and not (overwrite_unconverged and unconverged):
            report.skipped.append(name)
        else:
            todo.append((name, config, bool(marker)))
    say(
        f"{len(catalogue)} galaxies: {len(report.skipped)} already fitted, {len(todo)} to fit "
        f"(results in {galaxies})"
    )
    tasks = dict(reports=reports, reuse_compiled=reuse_compiled)
    bar = tqdm(total=len(todo), disable=not progressbar or not todo, unit="galaxy")
    outcomes = iter(())
    try:
        if todo and scheduler == SERIAL:
            outcomes = _run_serial(todo, galaxies, tasks)
        elif todo:
            cluster = dict(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                dashboard_address=dashboard_address,
            )
            outcomes = _run_on_dask(todo, galaxies, tasks, scheduler, cluster, report, say)
        for out in outcomes:
            _record(report, out)
            bar.update()
    finally:
        if hasattr(outcomes, "close"):
            outcomes.close()  # a generator stopped by Ctrl-C: cancel the tasks, close Dask
        bar.close()
        _write_tables(output, catalogue, report)
        report.seconds = time.perf_counter() - started
    say(
        f"fitted {len(report.fitted)} ({report.reused} with a reused compiled model), skipped "
        f"{len(report.skipped)}, failed {len(report.failed)}, not converged "
        f"{len(report.unconverged)} in {report.seconds:.1f} s"
    )
    return report


def _record(report: SampleReport, out: dict) -> None:
    name, status = out["name"], out["status"]
    if status == "failed":
        report.failed[name] = out["error"]
    elif status == "duplicate":
        report.duplicates.append(name)
    elif status == "skipped":
        report.skipped.append(name)
    else:
        report.fitted.append(name)
        report.reused += out.get("compiled") == "reused"
        if not out.get("converged", True):
            report.unconverged.append(name)


def _run_serial(todo, galaxies: Path, tasks):
    """Fit the galaxies one after another in this process (no Dask), sharing compiled models."""
    state = WorkerState()
    for name, config, done in todo:
        yield fit_galaxy(name, str(config), galaxies, replace=done, state=state, **tasks)


def _run_on_dask(todo, galaxies: Path, tasks, scheduler, cluster_options, report, say):
    """Submit one task per galaxy and yield their outcomes as they finish."""
    distributed = require_dask()
    client, cluster, own_client = _client(distributed, scheduler, cluster_options)
    report.dashboard = client.dashboard_link
    if importlib.util.find_spec("bokeh") is None and scheduler is None:
        say(f"Dask dashboard: {report.dashboard} (needs bokeh: pip install bokeh)")
    else:
        say(f"Dask dashboard: {report.dashboard}")
    token = hashlib.sha1(f"{galaxies.resolve()}{time.time()}".encode()).hexdigest()[:8]
    futures, finished = {}, False
    try:
        for name, config, done in todo:
            future = client.submit(
                fit_galaxy,
                name,
                str(config),
                str(galaxies.resolve()),
                replace=done,
                key=f"pmt-fit-{name}-{token}",
                pure=False,
                **tasks,
            )
            futures[future] = name
        for future in distributed.as_completed(list(futures)):
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001  (a killed worker: KilledWorker)
                outcome = {"name": futures[future], "status": "failed", "error": repr(error)}
                outcome["error"] = one_line(outcome["error"])
            yield outcome
        finished = True
    finally:  # also on Ctrl-C, and when the caller stops early
        with _quiet_shutdown():
            if not finished:
                client.cancel(list(futures))
            if own_client:
                client.close()
            if cluster is not None:
                cluster.close()


def _client(distributed, scheduler, options):
    """``(client, LocalCluster we started or None, whether we close the client)``."""
    if scheduler is None:
        # the workers inherit an ignored SIGINT: Ctrl-C reaches this process only, which
        # cancels the tasks and closes the cluster; and they log only errors (a cancelled
        # task is no news)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with _environment(_QUIET_WORKERS):
                cluster = distributed.LocalCluster(**options)
        finally:
            signal.signal(signal.SIGINT, previous)
        return distributed.Client(cluster), cluster, True
    if isinstance(scheduler, distributed.Client):
        return scheduler, None, False
    return distributed.Client(scheduler), None, True  # an address or a Cluster object


@contextlib.contextmanager
def _environment(values: dict):
    """Environment variables set while the block runs (the LocalCluster's processes inherit
    them), restored afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_shutdown():
    """Silence the connection errors Dask logs while a cluster is closed under it."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    except Exception:  # noqa: BLE001  (CommClosedError and friends while closing)
        pass
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _write_tables(output: Path, catalogue: Catalogue, report: SampleReport):
    """``failures.ecsv`` (this run's failures; removed when none) and ``galaxies.ecsv``."""
    failures = output / "failures.ecsv"
    if report.failed:
        index = {n: i for i, n in enumerate(catalogue.names)}
        table = Table(
            {
                "name": list(report.failed),
                "config": [str(catalogue.configs[index[n]]) for n in report.failed],
                "error": list(report.failed.values()),
            }
        )
        table.meta["note"] = "galaxies that failed in the last run; a rerun retries them"
        _write_table(table, failures)
    elif failures.exists():
        failures.unlink()
    rows = []
    galaxies = output / "galaxies"
    for name, config in zip(catalogue.names, catalogue.configs):
        marker = _marker(galaxies, name)
        status = "done" if marker else ("failed" if name in report.failed else "pending")
        rows.append(
            {
                "name": name,
                "status": status,
                "converged": bool(marker.get("converged", False)),
                "compiled": marker.get("compiled", ""),
                "error": report.failed.get(name, ""),
                "parameters": json.dumps(marker.get("parameters", {})),
            }
        )
    table = Table(rows=rows, names=list(rows[0]))
    for column in catalogue.table.colnames:
        if column not in ("name", "config") and column not in table.colnames:
            table[column] = catalogue.table[column]
    _write_table(table, output / "galaxies.ecsv")


def _write_table(table, path: Path) -> None:
    def write(temporary):
        table.write(temporary, format="ascii.ecsv", overwrite=True)

    atomic_write(path, write, overwrite=True)
