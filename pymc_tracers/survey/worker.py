"""The worker side of a survey: fit one galaxy of a catalogue and publish its result folder.

Each galaxy runs the single-galaxy pipeline of ``pymc-tracers fit``
(:func:`pymc_tracers.config.prepare_galaxy`, :func:`~pymc_tracers.config.finish_result`,
:func:`~pymc_tracers.config.write_galaxy`); only the sampling differs: galaxies whose models
differ only in their data share one compiled :class:`~pymc_tracers.Fitter`, kept by the
worker's :class:`WorkerState`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import warnings
from collections import OrderedDict
from importlib.metadata import version
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

from pymc_tracers.atomic import partial_folder, publish_folder
from pymc_tracers.config import ConfigError, finish_result, prepare_galaxy, write_galaxy
from pymc_tracers.config.errors import one_line
from pymc_tracers.inference.convergence import ConvergenceWarning
from pymc_tracers.inference.fitter import Fitter
from pymc_tracers.inference.sampling import fit
from pymc_tracers.model.likelihood import likelihoods_of
from pymc_tracers.numerics import estimate_render_bytes
from pymc_tracers.survey.fingerprint import model_fingerprint

__all__ = [
    "DONE_FILE",
    "FITTER_CACHE_SIZE",
    "WorkerState",
    "field_render_bytes",
    "fit_galaxy",
    "swap_model_data",
]

#: The completion marker inside each galaxy's result folder.
DONE_FILE = "done.json"
#: Compiled Fitters kept per worker process (least recently used dropped first).
FITTER_CACHE_SIZE = 8


class WorkerState:
    """What a worker process keeps between galaxies: compiled Fitters and a write lock.

    One object per Dask worker (:meth:`current` attaches it to the worker); a caller outside
    Dask makes its own and passes it to :func:`fit_galaxy` to share compiled models.

    Parameters
    ----------
    size : int
        Compiled Fitters kept (least recently used dropped first).
    """

    def __init__(self, size: int = FITTER_CACHE_SIZE):
        self.size = size
        self.fitters: OrderedDict = OrderedDict()  # fingerprint -> (Fitter, Lock)
        self._cache_lock = threading.Lock()
        #: Writing results is serialised within a process: HDF5 (netCDF) and pyplot are not
        #: thread-safe.
        self.write_lock = threading.Lock()

    @classmethod
    def current(cls) -> WorkerState:
        """The state of the Dask worker running this task, or a new one outside Dask."""
        try:
            from distributed import get_worker

            worker = get_worker()
        except (ImportError, ValueError):
            return cls()
        state = getattr(worker, "_pymc_tracers_state", None)
        if state is None:
            state = cls()
            worker._pymc_tracers_state = state
        return state

    def fitter(self, model, key):
        """The Fitter compiled for fingerprint ``key``: ``(fitter, lock, reused)``."""
        with self._cache_lock:
            entry = self.fitters.get(key)
            if entry is not None:
                self.fitters.move_to_end(key)
                return entry[0], entry[1], True
        fitter = Fitter(model, backend="jax")
        with self._cache_lock:
            if key not in self.fitters:  # another thread may have compiled it meanwhile
                self.fitters[key] = (fitter, threading.Lock())
                while len(self.fitters) > self.size:
                    self.fitters.popitem(last=False)
            entry = self.fitters[key]
        return entry[0], entry[1], entry[0] is not fitter

    @contextlib.contextmanager
    def file_locks(self):
        """Serialise file writes in this process, with xarray's plain threading lock.

        Inside a Dask worker xarray guards netCDF writes with a ``distributed.Lock``, held by
        the scheduler: one round trip per file, and a write hangs forever once the scheduler
        is gone. With the synchronous scheduler set for the write, xarray takes a local lock.
        """
        with self.write_lock, _synchronous_dask():
            yield


@contextlib.contextmanager
def _synchronous_dask():
    try:
        import dask
    except ImportError:
        yield
        return
    with dask.config.set(scheduler="synchronous"):
        yield


def swap_model_data(fitter, model, records):
    """Give ``fitter``'s model the values of every ``pm.Data`` of ``model`` besides the
    likelihood maps (which :meth:`Fitter.fit` swaps itself): the renderers' basis maps."""
    own = {f"{r.name}_{part}" for r in records for part in ("observed", "sigma")}
    updates = {
        v.name: v.get_value() for v in model.data_vars if v.name not in own and v.name is not None
    }
    if updates:
        with fitter.model:
            pm.set_data(updates)
        fitter.swap_data(updates)


def field_render_bytes(grid, psf) -> int:
    """Working memory (bytes) of rendering and convolving one galaxy's field on its grid
    padded by the PSF (:func:`pymc_tracers.numerics.estimate_render_bytes`)."""
    h = int(psf.half_width(grid.subpixel_scale))
    ny, nx = grid.shape
    s = grid.supersampling
    samples = (ny * s + 2 * h) * (nx * s + 2 * h)
    return estimate_render_bytes(samples, 1, (2 * h + 1) ** 2)


def _sample(run, record, state: WorkerState, *, reuse_compiled):
    """Sample one galaxy's model, through a cached Fitter when possible: ``(result, how)``
    with ``how`` in {"compiled", "reused", "uncached"}."""
    s = run.config.sampler
    settings = dict(
        draws=s["draws"],
        tune=s["tune"],
        chains=s["chains"],
        random_seed=s["seed"],
        progressbar=False,
        map_draws=s.get("map_draws", 100),
        grid=run.data.grid,
        log_likelihood=False,
    )
    if run.info["binned"] or not reuse_compiled:
        observations = run.info["observations"]
        return fit(run.model, config=record, observations=observations, **settings), "uncached"
    records = likelihoods_of(run.model)
    key = model_fingerprint(run.model, records)
    fitter, lock, reused = state.fitter(run.model, key)
    new_data = {
        r.name: (r.data, r.sigma) if isinstance(r.sigma, np.ndarray) else r.data for r in records
    }
    with lock:
        if reused:
            swap_model_data(fitter, run.model, records)
        result = fitter.fit(new_data, config=dict(record, fingerprint=key), **settings)
    return result, "reused" if reused else "compiled"


def fit_galaxy(
    name,
    config,
    galaxies_dir,
    *,
    reports=False,
    reuse_compiled=True,
    replace=False,
    state: WorkerState | None = None,
):
    """Fit one galaxy of a catalogue and write its result folder atomically (a Dask task).

    Parameters
    ----------
    name : str
        The galaxy's name (its folder ``galaxies_dir/name``).
    config : str or path-like
        Its TOML configuration (``pymc-tracers fit`` format; its ``[output]`` is ignored).
    galaxies_dir : str or path-like
        The folder of per-galaxy results (created if missing).
    reports : bool
        Also write the PNG reports (maps and corner plot; ~1-2 s per galaxy).
    reuse_compiled : bool
        Share compiled samplers between galaxies of identical model structure in this process.
    replace : bool
        Refit a galaxy that already has a result and replace it (atomically).
    state : WorkerState, optional
        Compiled models and locks to share (default: the Dask worker's).

    Returns
    -------
    dict
        ``name``, ``status`` ("written", "replaced", "duplicate", "skipped" or "failed"),
        ``error`` (one line, for failures), ``seconds``, ``compiled`` and ``converged``.
        Errors are returned, not raised, so one bad galaxy never stops the others.
    """
    started = time.perf_counter()
    galaxies = Path(galaxies_dir)
    final = galaxies / name
    if (final / DONE_FILE).is_file() and not replace:
        return {"name": name, "status": "skipped", "seconds": 0.0}
    state = WorkerState.current() if state is None else state
    try:
        galaxies.mkdir(parents=True, exist_ok=True)
        outcome = _fit_and_publish(
            name, Path(config), galaxies, reports, reuse_compiled, replace, state, started
        )
        outcome["seconds"] = time.perf_counter() - started
        return outcome
    except Exception as error:  # noqa: BLE001  (reported per galaxy, the others go on)
        text = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
        return {
            "name": name,
            "status": "failed",
            "error": one_line(text),
            "seconds": time.perf_counter() - started,
        }


def _fit_and_publish(name, config_path, galaxies, reports, reuse_compiled, replace, state, t0):
    run = prepare_galaxy(config_path)
    built = time.perf_counter()
    record = run.record(survey_name=name)
    with warnings.catch_warnings(), quiet_arviz():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in done.json
        result, how = _sample(run, record, state, reuse_compiled=reuse_compiled)
        result = finish_result(run, result)
    fitted = time.perf_counter()
    with partial_folder(galaxies, name) as temporary:
        with warnings.catch_warnings(), quiet_arviz(), state.file_locks():
            warnings.simplefilter("ignore", ConvergenceWarning)
            write_galaxy(temporary, run, result, reports=reports)
            marker = _marker(name, run, result, how)
        marker["seconds"] = {
            "build": built - t0,
            "fit": fitted - built,
            "write": time.perf_counter() - fitted,
        }
        (temporary / DONE_FILE).write_text(json.dumps(marker, indent=1, default=jsonable))
        status = publish_folder(
            temporary, galaxies / name, replace=replace, is_complete=is_finished
        )
    return {"name": name, "status": status, "compiled": how, "converged": marker["converged"]}


def _marker(name, run, result, how) -> dict:
    """The completion marker ``done.json`` of a galaxy (without its timings)."""
    summary = result.summary()
    convergence = result.convergence
    units = {**run.info["units"], **result.config.get("derived_units", {})}
    return {
        "name": name,
        "config": str(run.config.path),
        "likelihood": run.info["name"],
        "parameters": {
            p: [float(summary.loc[p, "mean"]), float(summary.loc[p, "sd"]), units[p]]
            for p in summary.index
            if p in units
        },
        "diagnostics": result.diagnostics(),
        "convergence": convergence,
        "converged": bool(convergence["converged"]),
        "compiled": how,
        "render_bytes": int(field_render_bytes(run.data.grid, run.psf)),
        "n_pixels": int(result.n_data()),
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pymc_tracers": version("pymc_tracers"),
    }


def is_finished(folder) -> bool:
    """Whether a galaxy's result folder is complete (holds its completion marker)."""
    return (Path(folder) / DONE_FILE).is_file()


@contextlib.contextmanager
def quiet_arviz():
    """Silence ArviZ's per-call warning that one chain is too few for R-hat (the convergence
    check in done.json says so once). ArviZ logs through its own ``Logger("arviz")`` object,
    not the one ``logging.getLogger("arviz")`` returns, so both are quietened."""
    loggers = {id(x): x for x in (getattr(az, "_log", None), logging.getLogger("arviz"))}
    loggers = [x for x in loggers.values() if x is not None]
    levels = [x.level for x in loggers]
    for x in loggers:
        x.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for x, level in zip(loggers, levels):
            x.setLevel(level)


def jsonable(value):
    """``value`` as something ``json.dumps`` writes (numpy numbers and arrays, sets)."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (np.ndarray, tuple, set)):
        return list(np.asarray(list(value) if isinstance(value, set) else value).tolist())
    return str(value)
