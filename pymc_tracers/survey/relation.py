"""Survey scale: fit a catalogue of galaxies on a Dask cluster, then their population relation.

``pymc-tracers fit-sample CATALOG --output DIR`` (and :func:`fit_sample`) fits every galaxy of
a catalogue, one Dask task per galaxy, on a ``distributed.LocalCluster`` or on any scheduler
(dask-jobqueue's ``SLURMCluster`` / ``PBSCluster``, a ``dask scheduler`` started by hand);
:func:`infer_relation` then infers the relation of one per-galaxy parameter (e.g. the
metallicity gradient, dex/arcsec or dex/kpc) with a covariate (e.g. log10 M*, dex).
``docs/survey.md`` is the user guide.

Catalogue
    A CSV or ECSV table (:func:`read_catalogue`), one row per galaxy: ``name`` (unique; the
    name of its result folder), ``config`` (its TOML configuration as for ``pymc-tracers
    fit``, relative paths resolved against the catalogue's folder) and covariates (e.g.
    ``log_mass`` in dex, ``redshift``).

What gets written (``DIR`` = the output folder)
    ``DIR/galaxies/<name>/``: ``maps.fits``, ``posterior.nc``, ``summary.ecsv``,
    ``config.toml`` (a copy) and the completion marker ``done.json`` (timings, diagnostics,
    how the model was compiled). Each galaxy is written into a hidden temporary folder
    ``DIR/galaxies/.<name>.*.partial`` and renamed into place when complete, so a folder
    ``DIR/galaxies/<name>`` is always a finished result. ``DIR/failures.ecsv``: the galaxies
    that failed in the last run and why (absent when none failed). ``DIR/galaxies.ecsv``:
    status, covariates and the fitted parameters of every galaxy. ``DIR/population/``:
    ``relation.nc`` (the relation's posterior), ``relation_summary.ecsv`` and
    ``relation.png``.

Resume semantics
    A rerun skips every galaxy with a result and fits the others (failed galaxies are always
    retried). A crash, a killed worker or an interrupted run (Ctrl-C) loses only the fits in
    flight and never leaves a folder that looks finished; temporary folders of an earlier run
    are removed when the next one starts. Two fits of the same galaxy (a task rescheduled
    while the first attempt still runs) race for one ``rename``: the first wins, the second
    is discarded, so every galaxy ends with exactly one result.

Compiling once per model structure
    Within a worker process, galaxies whose PyMC models differ only in their data share one
    compiled :class:`~pymc_tracers.Fitter` (nutpie, JAX backend): :func:`model_fingerprint`
    hashes the model's graph (operations, constants, shapes, used pixels, priors) leaving out
    the values of ``pm.Data`` (observed maps, error maps, linear-path basis maps), and a cached
    Fitter receives the new values of all of them. On this machine a 11x11-pixel galaxy took
    ~7 s to compile and sample the first time and ~0.8 s per galaxy afterwards. Shared: same
    stamp shape and mask, profiles, priors and fixed values, any maps and (linear path) any
    PSF. Not shared: other shapes or masks, other fixed light parameters under log averaging
    (the log series takes another number of terms), other priors, ``"auto"`` priors, the FFT
    path with another PSF; binned data (Voronoi bins) is fitted without the cache.

Population relation
    ``y_n = intercept + slope (x_n - pivot) + scatter eps_n`` for the chosen parameter ``y``
    (optionally converted from per-arcsec to per-kpc with each galaxy's redshift,
    :func:`pymc_tracers.cosmology.gradient_per_kpc`) and covariate ``x``, with two methods:

    ``"joint"``
        The joint hierarchical model (:func:`pymc_tracers.population.linear_relation`): all
        galaxies' likelihoods in one PyMC model, each galaxy's parameter drawn from the
        relation, its other parameters keeping their config priors. Exact, but the model
        holds every galaxy's data and its graph grows with the sample. ``"auto"`` uses it
        up to :data:`JOINT_MAX_GALAXIES` galaxies whose rendering fits in ``max_memory_gb``.
    ``"reweight"``
        Importance reweighting of the stored per-galaxy posterior samples (Hogg, Myers &
        Bovy 2010, ApJ 725, 2166): ``L(theta) = prod_n mean_k p(y_nk | theta) / p_0(y_nk)``,
        with ``y_nk`` the K posterior draws of galaxy n and ``p_0`` the prior they were
        drawn under (the interim prior), sampled with NUTS on the hyperparameters (a PyTensor
        ``logsumexp``). It needs only the stored draws, so it scales to any sample size.
        **Interim-prior requirement:** ``p_0`` must be known and broad. It is read from each
        galaxy's config (a ``Prior`` table with fixed numbers, e.g. ``{distribution =
        "Normal", mu = 0, sigma = 0.2}``; a tied or hierarchical prior is refused), and it
        must cover the relation with room to spare: where ``p_0`` is narrow compared with the
        posterior, few draws carry the weight. The effective number of draws per galaxy at
        the posterior-median relation is reported (``importance_ess_min``) and a warning
        raised below :data:`MIN_IMPORTANCE_ESS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import tomllib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DONE_FILE",
    "JOINT_MAX_GALAXIES",
    "MIN_IMPORTANCE_ESS",
    "Catalogue",
    "CatalogueError",
    "choose_method",
    "RelationResult",
    "SampleInterrupted",
    "SampleReport",
    "fit_galaxy",
    "fit_sample",
    "importance_log_likelihood",
    "infer_relation",
    "model_fingerprint",
    "finished_galaxies",
    "importance_ess",
    "interim_prior",
    "joint_model",
    "read_catalogue",
    "relation_samples",
    "resolve_parameter",
    "reweighted_relation",
]

#: The completion marker inside each galaxy's result folder.
DONE_FILE = "done.json"
#: ``method="auto"`` fits the joint hierarchical model up to this many galaxies (the loop-form
#: graph, and its compile time, grow with the sample) and reweights above it.
JOINT_MAX_GALAXIES = 50
#: Warn when a galaxy's importance weights have fewer effective draws than this.
MIN_IMPORTANCE_ESS = 20.0
#: Compiled Fitters kept per worker process (least recently used dropped first).
FITTER_CACHE_SIZE = 8

_PARTIAL = ".partial"
_OLD = ".old"


class CatalogueError(ValueError):
    """A problem with the catalogue; the message names the row and the fix."""


class SampleInterrupted(KeyboardInterrupt):
    """The run was stopped before every galaxy was fitted; rerun the same command to resume."""


def _one_line(text) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------ catalogue
@dataclass
class Catalogue:
    """A catalogue of galaxies: names, config paths (resolved) and covariates.

    Attributes
    ----------
    path : Path
        The catalogue file.
    table : astropy.table.Table
        The table as read (covariate columns keep their units, e.g. ``dex``).
    names : list of str
        Galaxy names, unique, in the catalogue's order.
    configs : list of Path
        Each galaxy's configuration, resolved against the catalogue's folder (not checked:
        a missing file is reported as that galaxy's failure).
    """

    path: Path
    table: object
    names: list
    configs: list

    def __len__(self) -> int:
        return len(self.names)

    def covariate(self, column) -> np.ndarray:
        """The values of ``column`` (float array in the catalogue's order)."""
        if column not in self.table.colnames:
            raise CatalogueError(
                f"catalogue {self.path.name} has no column {column!r}; its columns are "
                f"{', '.join(self.table.colnames)}"
            )
        try:
            values = np.asarray(self.table[column], dtype=float)
        except (TypeError, ValueError):
            raise CatalogueError(
                f"catalogue column {column!r} is not numeric; give one number per galaxy"
            ) from None
        mask = getattr(self.table[column], "mask", None)
        if mask is not None:
            values = np.where(np.asarray(mask), np.nan, values)
        return values

    def unit(self, column) -> str:
        """The unit string of a column ('' without one)."""
        unit = getattr(self.table[column], "unit", None)
        return "" if unit is None else unit.to_string()


def read_catalogue(path, *, covariates=()) -> Catalogue:
    """Read a CSV or ECSV catalogue with one row per galaxy.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` (plain comma-separated, header line first) or ``.ecsv`` (astropy's ECSV,
        which keeps units: a ``log_mass`` column in dex, ``redshift`` dimensionless).
    covariates : sequence of str
        Columns that must exist and hold finite numbers in every row (e.g. ``("log_mass",
        "redshift")``).

    Returns
    -------
    Catalogue

    Raises
    ------
    FileNotFoundError
        If the catalogue does not exist.
    CatalogueError
        For a missing ``name`` or ``config`` column, an empty or duplicate name, a name that
        cannot be a folder name, an empty config, or a missing / non-finite covariate; the
        message names the row (1 = the first galaxy).
    """
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalogue {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    formats = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}
    if suffix not in formats:
        raise CatalogueError(
            f"catalogue {path.name}: unknown format {suffix!r}; give a .csv or .ecsv table"
        )
    try:
        table = Table.read(path, format=formats[suffix])
    except Exception as error:  # noqa: BLE001  (astropy raises several types)
        raise CatalogueError(f"cannot read catalogue {path.name}: {_one_line(error)}") from None
    for column in ("name", "config"):
        if column not in table.colnames:
            raise CatalogueError(
                f"catalogue {path.name} has no {column!r} column (its columns: "
                f"{', '.join(table.colnames)}); give one row per galaxy with name, config (its "
                "TOML file) and covariates"
            )
    if len(table) == 0:
        raise CatalogueError(f"catalogue {path.name} has no rows")
    names, configs, seen = [], [], {}
    for i, row in enumerate(table, start=1):
        name = "" if _is_masked(row["name"]) else str(row["name"]).strip()
        if not name:
            raise CatalogueError(f"catalogue {path.name}, row {i}: empty name")
        if name.startswith(".") or any(c in name for c in '/\\\0:*?"<>|') or name != name.strip():
            raise CatalogueError(
                f"catalogue {path.name}, row {i}: name {name!r} cannot be a folder name (no "
                'leading dot, no / \\ : * ? " < > |)'
            )
        if name in seen:
            raise CatalogueError(
                f"catalogue {path.name}: name {name!r} appears in rows {seen[name]} and {i}; "
                "names must be unique (they name the result folders)"
            )
        seen[name] = i
        config = "" if _is_masked(row["config"]) else str(row["config"]).strip()
        if not config:
            raise CatalogueError(f"catalogue {path.name}, row {i} ({name}): empty config")
        config = Path(config).expanduser()
        names.append(name)
        configs.append(config if config.is_absolute() else (path.parent / config).absolute())
    catalogue = Catalogue(path, table, names, configs)
    for column in covariates:
        values = catalogue.covariate(column)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise CatalogueError(
                f"catalogue {path.name}, row {i + 1} ({names[i]}): {column} = {values[i]} is not "
                "a finite number; give it a value or remove the row"
            )
    return catalogue


def _is_masked(value) -> bool:
    return value is np.ma.masked or (isinstance(value, np.ma.MaskedArray) and value.mask.all())


# ------------------------------------------------------------------------------ fingerprint
def _digest(value) -> str:
    array = np.ascontiguousarray(value)
    if array.dtype.hasobject:  # slices, None...: bytes would be pointers; their repr is the value
        return f"object:{value!r}"
    return f"{array.dtype.str}{array.shape}:{hashlib.sha1(array.tobytes()).hexdigest()}"


def _op_text(op) -> str:
    props = getattr(op, "_props_dict", None)
    text = f"{type(op).__module__}.{type(op).__qualname__}|{op}"
    if props is not None:
        text += "|" + repr(sorted(props().items(), key=lambda kv: kv[0]))
    if " at 0x" in text:  # an object without a value-based repr: never shared
        text += f"|id{id(op)}"
    return text


def model_fingerprint(model, records=None) -> str:
    """A hash of a PyMC model's graph, leaving out the values of its ``pm.Data``.

    Two models with the same fingerprint differ at most in the values of their data variables
    (observed maps, error maps, linear-path basis maps) and may share one compiled sampler:
    swapping those values into one gives the other. The hash covers every operation of the
    log-probability, the deterministics and the likelihoods' model maps, every constant (used
    pixels, fixed parameters, priors, PSF kernels of the FFT path), the names, types and shapes
    of the free variables and of the data variables.

    Parameters
    ----------
    model : pm.Model
    records : list of LikelihoodRecord, optional
        Defaults to :func:`pymc_tracers.likelihood.likelihoods_of` ``(model)``.

    Returns
    -------
    str
        A hex digest.
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant, Variable
    from pytensor.graph.traversal import graph_inputs, io_toposort

    from pymc_tracers.likelihood import likelihoods_of

    records = likelihoods_of(model) if records is None else records
    extra = [r.model_map for r in records]
    extra += [r.sigma for r in records if isinstance(r.sigma, Variable)]
    outputs = [model.logp(), *model.replace_rvs_by_values([*model.deterministics, *extra])]
    data_names = {v.name for v in model.data_vars}
    labels = {}

    def label(var):
        if var in labels:
            return labels[var]
        if isinstance(var, Constant):
            text = f"const:{var.type}:{_digest(var.data)}"
        elif isinstance(var, SharedVariable):
            value = var.get_value(borrow=True)
            if var.name in data_names:
                text = f"data:{var.name}:{var.type}:{np.shape(value)}"
            elif isinstance(value, np.ndarray):
                text = f"shared:{var.name}:{var.type}:{_digest(value)}"
            else:
                text = f"shared:{var.name}:{var.type}:id{id(var)}"
        else:
            text = f"input:{var.name}:{var.type}"
        labels[var] = text
        return text

    h = hashlib.sha256()
    inputs = list(graph_inputs(outputs))
    for i, node in enumerate(io_toposort(inputs, outputs)):
        h.update(_op_text(node.op).encode())
        h.update(("(" + ",".join(label(v) for v in node.inputs) + ")").encode())
        for j, out in enumerate(node.outputs):
            labels[out] = f"n{i}.{j}:{out.type}"
    for out in outputs:
        h.update(label(out).encode())
    h.update(repr(sorted(data_names)).encode())
    h.update(repr([(r.name, r.kind, tuple(r.shape)) for r in records]).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------ worker side
_CACHE: OrderedDict = OrderedDict()  # fingerprint -> (Fitter, Lock); one per worker process
_CACHE_LOCK = threading.Lock()
#: Writing results is serialised within a process: HDF5 (netCDF) and pyplot are not
#: thread-safe.
_WRITE_LOCK = threading.Lock()


@contextlib.contextmanager
def _local_file_locks():
    """Serialise file writes in this process, with xarray's plain threading lock.

    Inside a Dask worker xarray guards netCDF writes with a ``distributed.Lock``, held by the
    scheduler: one round trip per file, and a write hangs forever once the scheduler is gone
    (seen when an interrupted run closed its cluster while a cancelled fit was still writing).
    With the synchronous scheduler set for the write, xarray takes a local threading lock.
    """
    import dask

    with _WRITE_LOCK, dask.config.set(scheduler="synchronous"):
        yield


def _cached_fitter(model, key):
    """The Fitter compiled for fingerprint ``key`` in this process: ``(fitter, lock, reused)``."""
    from pymc_tracers.sampling import Fitter

    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
            return entry[0], entry[1], True
    fitter = Fitter(model, backend="jax")
    with _CACHE_LOCK:
        if key not in _CACHE:  # another thread may have compiled the same structure meanwhile
            _CACHE[key] = (fitter, threading.Lock())
            while len(_CACHE) > FITTER_CACHE_SIZE:
                _CACHE.popitem(last=False)
        entry = _CACHE[key]
    return entry[0], entry[1], entry[0] is not fitter


def _swap_model_data(fitter, model, records):
    """Give ``fitter``'s model the values of every ``pm.Data`` of ``model`` besides the
    likelihood maps (which :meth:`Fitter.fit` swaps itself): the linear-path bases."""
    import pymc as pm

    own = {f"{r.name}_{part}" for r in records for part in ("observed", "sigma")}
    updates = {
        v.name: v.get_value() for v in model.data_vars if v.name not in own and v.name is not None
    }
    if updates:
        with fitter.model:
            pm.set_data(updates)
        fitter.compiled = fitter._compiled_with(updates)


def _fit_model(model, info, cfg, data, record, *, reuse_compiled):
    """Sample one galaxy's model: through a cached Fitter when possible. Returns
    ``(result, how)`` with ``how`` in {"compiled", "reused", "uncached"}."""
    import pymc_tracers as pmt
    from pymc_tracers.binned import binned_likelihoods_of
    from pymc_tracers.likelihood import likelihoods_of

    s = cfg.sampler
    # the same sampling settings whether the model is compiled here or reused
    settings = dict(
        draws=s["draws"],
        tune=s["tune"],
        chains=s["chains"],
        random_seed=s["seed"],
        progressbar=False,
        map_draws=s.get("map_draws", 100),
        grid=data.grid,
        log_likelihood=False,
    )
    if info["binned"] or not reuse_compiled:
        result = pmt.fit(model, config=record, **settings)
        if info["binned"]:
            result = pmt.Result.from_model(
                result.idata,
                model,
                records=binned_likelihoods_of(model),
                map_draws=s.get("map_draws", 100),
                config=result.config,
                random_seed=s["seed"],
            )
        return result, "uncached"
    records = likelihoods_of(model)
    key = model_fingerprint(model, records)
    fitter, lock, reused = _cached_fitter(model, key)
    new_data = {
        r.name: (r.data, r.sigma) if isinstance(r.sigma, np.ndarray) else r.data for r in records
    }
    with lock:
        if reused:
            _swap_model_data(fitter, model, records)
        result = fitter.fit(new_data, config=dict(record, fingerprint=key), **settings)
    return result, "reused" if reused else "compiled"


def _write_galaxy(folder, result, data, info, cfg, *, reports):
    from pymc_tracers import config as config_module
    from pymc_tracers import io

    if reports:
        config_module._write_outputs(folder, result, data, info, cfg)
        return
    name = info["name"]
    unit = data.units.get("tracer")
    io.write_maps(folder / "maps.fits", result.maps(name), wcs=data.wcs, name=name, unit=unit)
    result.save(folder / "posterior.nc")
    io.write_summary(folder / "summary.ecsv", result.summary(), units=dict(info["units"]))
    shutil.copyfile(cfg.path, folder / "config.toml")


def _publish(temporary: Path, final: Path, *, replace: bool) -> str:
    """Move a finished temporary folder into place: "written", "replaced" or "duplicate"."""
    if final.exists() and replace:
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=_OLD, dir=final.parent))
        os.rename(final, old / final.name)
        os.rename(temporary, final)
        shutil.rmtree(old, ignore_errors=True)
        return "replaced"
    try:
        os.rename(temporary, final)  # fails on an existing, non-empty result: first one wins
    except OSError:
        if (final / DONE_FILE).is_file():
            shutil.rmtree(temporary, ignore_errors=True)
            return "duplicate"
        raise
    return "written"


def fit_galaxy(name, config, galaxies_dir, *, reports=False, reuse_compiled=True, replace=False):
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
        Share compiled samplers between galaxies of identical model structure in this process
        (see the module docstring).
    replace : bool
        Refit a galaxy that already has a result and replace it (atomically).

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
    temporary = None
    try:
        galaxies.mkdir(parents=True, exist_ok=True)
        outcome = _fit_and_write(name, Path(config), galaxies, reports, reuse_compiled, started)
        temporary = outcome.pop("temporary")
        outcome["status"] = _publish(temporary, final, replace=replace)
        temporary = None
        outcome["seconds"] = time.perf_counter() - started
        return outcome
    except Exception as error:  # noqa: BLE001  (reported per galaxy, the others go on)
        from pymc_tracers.config import ConfigError

        text = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
        return {
            "name": name,
            "status": "failed",
            "error": _one_line(text),
            "seconds": time.perf_counter() - started,
        }
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _fit_and_write(name, config_path, galaxies, reports, reuse_compiled, started) -> dict:
    from pymc_tracers import __version__
    from pymc_tracers import config as config_module
    from pymc_tracers.cli import estimate_render_bytes
    from pymc_tracers.results import ConvergenceWarning

    cfg = config_module.load_config(config_path)
    data = config_module.read_data(cfg)
    psf = config_module.make_psf(cfg)
    model, info = config_module.build_model(cfg, data, psf)
    if not model.free_RVs:
        raise config_module.ConfigError("no parameter has a prior: give at least one to fit")
    built = time.perf_counter()
    record = {
        "config_file": str(cfg.path),
        "config": cfg.raw,
        "units": info["units"],
        "fixed": info["fixed"],
        "auto_priors": info["auto"],
        "tracer_name": data.tracer_name,
        "survey_name": name,
    }
    with warnings.catch_warnings(), _quiet_arviz():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result, how = _fit_model(model, info, cfg, data, record, reuse_compiled=reuse_compiled)
    fitted = time.perf_counter()
    temporary = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=_PARTIAL, dir=galaxies))
    try:
        _shareable(temporary)
        with warnings.catch_warnings(), _quiet_arviz(), _local_file_locks():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _write_galaxy(temporary, result, data, info, cfg, reports=reports)
            summary = result.summary()
            diagnostics = result.diagnostics()
            converged = bool(result.check_convergence())
        marker = {
            "name": name,
            "config": str(cfg.path),
            "likelihood": info["name"],
            "parameters": {
                p: [float(summary.loc[p, "mean"]), float(summary.loc[p, "sd"]), info["units"][p]]
                for p in summary.index
                if p in info["units"]
            },
            "diagnostics": diagnostics,
            "converged": converged,
            "compiled": how,
            "render_bytes": int(estimate_render_bytes(data.grid, psf)),
            "n_pixels": int(result.n_data()),
            "seconds": {
                "build": built - started,
                "fit": fitted - built,
                "write": time.perf_counter() - fitted,
            },
            "worker": {"host": socket.gethostname(), "pid": os.getpid()},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pymc_tracers": __version__,
        }
        (temporary / DONE_FILE).write_text(json.dumps(marker, indent=1, default=_jsonable))
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {"name": name, "temporary": temporary, "compiled": how, "converged": converged}


@contextlib.contextmanager
def _quiet_arviz():
    """Silence ArviZ's per-call warning that one chain is too few for R-hat (the convergence
    check in done.json says so once)."""
    logger = logging.getLogger("arviz")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _shareable(path, mode=0o777):
    """Give a mkdtemp/mkstemp path (private by default) the permissions of the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (np.ndarray, tuple, set)):
        return list(np.asarray(list(value) if isinstance(value, set) else value).tolist())
    return str(value)


# ------------------------------------------------------------------------------ driver side
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


def _clean_leftovers(galaxies: Path) -> list[str]:
    """Remove temporary folders of interrupted runs; put back a result whose replacement was
    interrupted between its two renames. Returns what was removed."""
    removed = []
    if not galaxies.is_dir():
        return removed
    for path in sorted(galaxies.iterdir()):
        if not path.name.startswith("."):
            continue
        if path.name.endswith(_OLD) and path.is_dir():
            for child in path.iterdir():
                if not (galaxies / child.name).exists():
                    os.rename(child, galaxies / child.name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        elif path.name.endswith(_PARTIAL) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _unconverged(galaxies: Path, name) -> bool:
    try:
        return not json.loads((galaxies / name / DONE_FILE).read_text()).get("converged", True)
    except (OSError, ValueError):
        return False


def _client(scheduler, n_workers, threads_per_worker, processes, dashboard_address):
    """``(client, LocalCluster we started or None, whether we close the client)`` for a
    scheduler address, a Cluster, a Client or None."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=dashboard_address,
        )
        return Client(cluster), cluster, True
    if isinstance(scheduler, Client):
        return scheduler, None, False
    return Client(scheduler), None, True  # an address "tcp://host:8786" or a Cluster object


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
    stop_after=None,
) -> SampleReport:
    """Fit every galaxy of a catalogue on a Dask cluster, writing each result as it finishes.

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
    stop_after : int, optional
        Stop (raise :class:`SampleInterrupted`) once this many galaxies have been written in
        this run, as an interrupted run would: a test hook.

    Returns
    -------
    SampleReport

    Raises
    ------
    SampleInterrupted
        When stopped by ``stop_after`` (a ``KeyboardInterrupt`` subclass; Ctrl-C raises the
        plain ``KeyboardInterrupt``). Either way the remaining tasks are cancelled, the
        tables are written, what finished is kept, and a rerun resumes.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    say = say or (lambda text: None)
    started = time.perf_counter()
    if not isinstance(catalogue, Catalogue):
        catalogue = read_catalogue(catalogue)
    output = Path(output)
    galaxies = output / "galaxies"
    galaxies.mkdir(parents=True, exist_ok=True)
    report = SampleReport(output=output)
    for leftover in _clean_leftovers(galaxies):
        say(f"removed {leftover} (left by an interrupted run)")
    todo = []
    for name, config in zip(catalogue.names, catalogue.configs):
        done = (galaxies / name / DONE_FILE).is_file()
        if done and not (overwrite_unconverged and _unconverged(galaxies, name)):
            report.skipped.append(name)
        else:
            todo.append((name, config, done))
    say(
        f"{len(catalogue)} galaxies: {len(report.skipped)} already fitted, {len(todo)} to fit "
        f"(results in {galaxies})"
    )
    if not todo:
        _write_tables(output, catalogue, report)
        report.seconds = time.perf_counter() - started
        return report
    client, cluster, own_client = _client(
        scheduler, n_workers, threads_per_worker, processes, dashboard_address
    )
    report.dashboard = client.dashboard_link
    if importlib.util.find_spec("bokeh") is None and scheduler is None:
        say(f"Dask dashboard: {report.dashboard} (needs bokeh: pip install bokeh)")
    else:
        say(f"Dask dashboard: {report.dashboard}")
    token = hashlib.sha1(f"{output.resolve()}{time.time()}".encode()).hexdigest()[:8]
    futures = {}
    try:
        for name, config, done in todo:
            future = client.submit(
                fit_galaxy,
                name,
                str(config),
                str(galaxies.resolve()),
                reports=reports,
                reuse_compiled=reuse_compiled,
                replace=done,
                key=f"pmt-fit-{name}-{token}",
                pure=False,
            )
            futures[future] = name
        bar = tqdm(total=len(futures), disable=not progressbar, unit="galaxy", desc="fit-sample")
        written = 0
        for future in as_completed(list(futures)):
            name = futures[future]
            try:
                out = future.result()
            except Exception as error:  # noqa: BLE001  (a killed worker: KilledWorker)
                out = {"name": name, "status": "failed", "error": _one_line(repr(error))}
            status = out["status"]
            if status == "failed":
                report.failed[name] = out["error"]
            elif status == "duplicate":
                report.duplicates.append(name)
            elif status == "skipped":
                report.skipped.append(name)
            else:
                report.fitted.append(name)
                report.reused += out.get("compiled") == "reused"
                written += 1
            bar.update()
            if stop_after is not None and written >= stop_after:
                raise SampleInterrupted(
                    f"stopped after {written} galaxies (stop_after); rerun to resume"
                )
        bar.close()
    except KeyboardInterrupt:
        client.cancel(list(futures))
        _write_tables(output, catalogue, report)
        raise
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    _write_tables(output, catalogue, report)
    report.seconds = time.perf_counter() - started
    say(
        f"fitted {len(report.fitted)} ({report.reused} with a reused compiled model), skipped "
        f"{len(report.skipped)}, failed {len(report.failed)} in {report.seconds:.1f} s"
    )
    return report


def _write_tables(output: Path, catalogue: Catalogue, report: SampleReport):
    """``failures.ecsv`` (this run's failures; removed when none) and ``galaxies.ecsv``."""
    from astropy.table import Table

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
        _atomic_table(table, failures)
    elif failures.exists():
        failures.unlink()
    rows = []
    galaxies = output / "galaxies"
    for name, config in zip(catalogue.names, catalogue.configs):
        marker = {}
        try:
            marker = json.loads((galaxies / name / DONE_FILE).read_text())
        except (OSError, ValueError):
            pass
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
    _atomic_table(table, output / "galaxies.ecsv")


def _atomic_table(table, path: Path):
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        _shareable(tmp, 0o666)
        table.write(tmp, format="ascii.ecsv", overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ------------------------------------------------------------------------------ population
def _markers(output: Path, names) -> dict:
    galaxies = Path(output) / "galaxies"
    found = {}
    for name in names:
        try:
            found[name] = json.loads((galaxies / name / DONE_FILE).read_text())
        except (OSError, ValueError):
            continue
    return found


def resolve_parameter(parameter, labels) -> str:
    """The free-parameter label meant by ``parameter``: itself, or the one label ending in
    ``_<parameter>`` (``"gradient"`` -> ``"disc_gradient"``)."""
    labels = list(labels)
    if parameter in labels:
        return parameter
    matches = [lab for lab in labels if lab.endswith(f"_{parameter}")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ValueError(
            f"no fitted parameter {parameter!r}; the galaxies' free parameters are "
            f"{', '.join(sorted(labels))} (--relation-param)"
        )
    raise ValueError(
        f"parameter {parameter!r} is ambiguous: {', '.join(sorted(matches))}; give the full name"
    )


def interim_prior(config_raw: dict, label: str):
    """The prior of free parameter ``label`` in a raw (TOML) configuration, as a
    ``pymc_extras.prior.Prior`` with fixed numbers; ValueError if it is not one."""
    from pymc_extras.prior import Prior

    from pymc_tracers import config as config_module

    components = config_raw.get("components", [])
    components = [components] if isinstance(components, dict) else list(components)
    for index, component in enumerate(components):
        name = component.get("name", f"c{index}" if len(components) > 1 else "")
        for part in ("light", "tracer"):
            for key, value in dict(component.get(part, {})).items():
                if key == "profile":
                    continue
                text = f"{name + '_' if name else ''}{'light_' if part == 'light' else ''}{key}"
                if text != label:
                    continue
                if not isinstance(value, dict):
                    raise ValueError(
                        f"{label} has no prior table in the config ({value!r}); importance "
                        "reweighting needs the interim prior as a Prior table with fixed numbers"
                    )
                prior = config_module._prior_from(value, f"[{label}]")
                if any(isinstance(v, Prior) for v in prior.parameters.values()):
                    raise ValueError(
                        f"the prior of {label} is hierarchical ({prior}); importance reweighting "
                        "needs a fixed interim prior (numbers only)"
                    )
                return prior
    raise ValueError(f"no parameter {label!r} in the configuration's components")


_LOGP_FUNCTIONS: dict = {}


def _interim_logp(prior, values) -> np.ndarray:
    """Log density of ``prior`` at ``values`` (compiled once per distinct prior)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    key = json.dumps(prior.to_dict(), sort_keys=True, default=str)
    if key not in _LOGP_FUNCTIONS:
        dist = getattr(pm, prior.distribution).dist(**prior.parameters)
        x = pt.vector("x")
        _LOGP_FUNCTIONS[key] = pytensor.function([x], pm.logp(dist, x))
    return np.asarray(_LOGP_FUNCTIONS[key](np.asarray(values, dtype=float)), dtype=float)


def _interim_moments(prior) -> tuple[float, float]:
    import pymc as pm

    draws = pm.draw(getattr(pm, prior.distribution).dist(**prior.parameters), 4000, random_seed=0)
    return float(np.mean(draws)), float(np.std(draws))


def relation_samples(output, names, parameter, *, redshift=None, max_draws=1000) -> dict:
    """Stored posterior draws of one parameter per galaxy, with their interim log prior.

    Parameters
    ----------
    output : path-like
        A :func:`fit_sample` output folder.
    names : sequence of str
        Galaxies (each must have a result).
    parameter : str
        A free parameter (full label, or its suffix, e.g. ``"gradient"``).
    redshift : array_like, optional
        One per galaxy: convert from per-arcsec to per-kpc (``y_kpc = y * arcsec_per_kpc(z)``,
        the interim density divided by ``arcsec_per_kpc(z)``, its Jacobian).
    max_draws : int
        Draws kept per galaxy, K (evenly thinned; every galaxy gets the same K, the smallest
        available if fewer).

    Returns
    -------
    dict
        ``label``, ``unit``, ``samples`` (N, K), ``log_interim`` (N, K; natural log density of
        the interim prior at each draw, in the returned units), ``interim`` (mean, sd of the
        interim prior in returned units, averaged over galaxies), ``scale`` (N,) the factor
        applied (1 without redshift).
    """
    import xarray as xr

    from pymc_tracers.cosmology import arcsec_per_kpc

    output = Path(output)
    markers = _markers(output, names)
    missing = [n for n in names if n not in markers]
    if missing:
        raise ValueError(f"no result for {missing}; run fit-sample first")
    label = resolve_parameter(parameter, markers[names[0]]["parameters"])
    unit = markers[names[0]]["parameters"][label][2]
    scale = np.ones(len(names)) if redshift is None else arcsec_per_kpc(redshift)
    if redshift is not None:
        unit = unit.replace("/ arcsec", "/ kpc") if "/ arcsec" in unit else f"{unit} arcsec / kpc"
    draws, log_interim, moments = [], [], []
    for name, factor in zip(names, scale):
        folder = output / "galaxies" / name
        with (
            _local_file_locks(),
            xr.open_dataset(folder / "posterior.nc", group="posterior") as posterior,
        ):
            if label not in posterior:
                raise ValueError(f"{name}: no {label!r} in its posterior")
            values = np.asarray(posterior[label].values, dtype=float).ravel()
        raw = tomllib.loads((folder / "config.toml").read_text())
        prior = interim_prior(raw, label)
        draws.append(values * factor)
        log_interim.append(_interim_logp(prior, values) - np.log(factor))
        mean, sd = _interim_moments(prior)
        moments.append((mean * factor, sd * factor))
    k = min(max_draws, min(v.size for v in draws))
    picks = [np.linspace(0, v.size - 1, k).round().astype(int) for v in draws]
    return {
        "label": label,
        "unit": unit,
        "samples": np.stack([v[p] for v, p in zip(draws, picks)]),
        "log_interim": np.stack([v[p] for v, p in zip(log_interim, picks)]),
        "interim": tuple(np.mean(moments, axis=0)),
        "scale": scale,
    }


def importance_log_likelihood(samples, log_interim, mean, scatter):
    """The importance-sampled log-likelihood of a Gaussian population (Hogg et al. 2010).

    ``sum_n log[(1/K) sum_k Normal(y_nk | mean_n, scatter_n) / p_0(y_nk)]``.

    Parameters
    ----------
    samples : array (N, K)
        Posterior draws of each galaxy's parameter (units of ``y``).
    log_interim : array (N, K)
        Natural log of the interim prior density at each draw (per unit of ``y``).
    mean : array (N,) or tensor
        The relation's mean at each galaxy (units of ``y``).
    scatter : float, array (N,) or tensor
        Intrinsic scatter (units of ``y``, > 0).

    Returns
    -------
    float, or a PyTensor scalar when ``mean`` or ``scatter`` is a tensor.
    """
    from pytensor.graph.basic import Variable

    samples = np.asarray(samples, dtype=float)
    log_interim = np.asarray(log_interim, dtype=float)
    if samples.ndim != 2 or samples.shape != log_interim.shape:
        raise ValueError(
            f"samples and log_interim must both be (N galaxies, K draws); got {samples.shape} "
            f"and {log_interim.shape}"
        )
    k = samples.shape[1]
    if isinstance(mean, Variable) or isinstance(scatter, Variable):
        import pytensor.tensor as pt

        mu = pt.as_tensor_variable(mean)
        sigma = pt.as_tensor_variable(scatter)
        mu = mu[:, None] if mu.ndim == 1 else mu
        sigma = sigma[:, None] if sigma.ndim == 1 else sigma
        z = (samples - mu) / sigma
        terms = -0.5 * z**2 - pt.log(sigma) - 0.5 * np.log(2 * np.pi) - log_interim
        return pt.sum(pt.logsumexp(terms, axis=1)) - samples.shape[0] * np.log(k)
    from scipy.special import logsumexp

    mu = np.asarray(mean, dtype=float)
    sigma = np.asarray(scatter, dtype=float)
    mu = mu[:, None] if mu.ndim == 1 else mu
    sigma = sigma[:, None] if sigma.ndim == 1 else sigma
    z = (samples - mu) / sigma
    terms = -0.5 * z**2 - np.log(sigma) - 0.5 * np.log(2 * np.pi) - log_interim
    return float(np.sum(logsumexp(terms, axis=1)) - samples.shape[0] * np.log(k))


def importance_ess(samples, log_interim, mean, scatter) -> np.ndarray:
    """Effective number of draws of each galaxy's importance weights, ``(sum w)^2 / sum w^2``."""
    mu = np.asarray(mean, dtype=float)[:, None]
    log_w = -0.5 * ((samples - mu) / scatter) ** 2 - log_interim
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return w.sum(axis=1) ** 2 / (w**2).sum(axis=1)


@dataclass
class RelationResult:
    """The population relation ``y = intercept + slope (x - pivot) + scatter eps``.

    Attributes
    ----------
    idata : az.InferenceData
        Posterior of ``intercept``, ``slope``, ``scatter`` (and ``y`` per galaxy for the joint
        model); ``idata.attrs`` describe the method, parameter, covariate, pivot and units.
    method : {"joint", "reweight"}
    names : list of str
        The galaxies used.
    covariate : ndarray (N,)
    y_draws : ndarray (S, N)
        Per-galaxy draws of ``y`` (joint posterior, or the stored per-galaxy draws).
    info : dict
        ``parameter``, ``unit``, ``covariate``, ``covariate_unit``, ``pivot``, ``per_kpc``,
        ``importance_ess_min`` (reweighting), ``seconds``.
    folder : Path or None
        Where it was written.
    """

    idata: object
    method: str
    names: list
    covariate: np.ndarray
    y_draws: np.ndarray
    info: dict
    folder: Path | None = None

    def summary(self):
        import arviz as az

        return az.summary(self.idata, var_names=["intercept", "slope", "scatter"])


def _hyperpriors(interim, x, priors):
    """Hyperpriors scaled by the interim prior (mean m, sd s): intercept ~ Normal(m, s),
    slope ~ Normal(0, s / sd(x)), scatter ~ HalfNormal(s); ``priors`` overrides."""
    import pymc as pm

    m, s = interim
    spread = float(np.std(x)) if np.std(x) > 0 else 1.0
    widths = {"intercept": (m, s), "slope": (0.0, s / spread), "scatter": s, **(priors or {})}
    intercept = pm.Normal("intercept", *widths["intercept"])
    slope = pm.Normal("slope", *widths["slope"])
    scatter = pm.HalfNormal("scatter", widths["scatter"])
    return intercept, slope, scatter, widths


def _sample_nutpie(model, *, draws, tune, chains, seed):
    import pymc as pm

    from pymc_tracers.sampling import NUTPIE_SETTINGS, _nutpie_backend

    backend = _nutpie_backend("auto")
    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            nuts_sampler="nutpie",
            random_seed=seed,
            progressbar=False,
            nuts_sampler_kwargs={
                "backend": backend,
                "gradient_backend": "jax" if backend == "jax" else "pytensor",
                **NUTPIE_SETTINGS,
            },
        )


def reweighted_relation(
    samples, log_interim, x, *, pivot, interim, priors=None, draws, tune, chains, seed
):
    """Sample the relation's hyperparameters under :func:`importance_log_likelihood`.

    Returns ``(idata, widths of the hyperpriors)``.
    """
    import pymc as pm

    from pymc_tracers.population import linear_mean

    with pm.Model() as model:
        intercept, slope, scatter, widths = _hyperpriors(interim, x, priors)
        mean = linear_mean(np.asarray(x, dtype=float), intercept, slope, pivot)
        pm.Potential(
            "importance_likelihood", importance_log_likelihood(samples, log_interim, mean, scatter)
        )
    return _sample_nutpie(model, draws=draws, tune=tune, chains=chains, seed=seed), widths


def joint_model(configs, names, label, x, *, pivot, interim, scale=None, priors=None):
    """The joint hierarchical model: every galaxy's config model in one PyMC model, parameter
    ``label`` of galaxy n set to ``y_n / scale_n`` with ``y`` on the linear relation
    (:func:`pymc_tracers.population.linear_relation`, non-centred); returns ``(model, widths)``.

    Variables of galaxy ``name`` are prefixed ``"<name>::"``; ``y`` (dims ``galaxy``) is in the
    relation's units (per kpc when ``scale`` = arcsec_per_kpc(z)).
    """
    import pymc as pm

    from pymc_tracers import config as config_module
    from pymc_tracers.population import linear_relation

    scale = np.ones(len(names)) if scale is None else np.asarray(scale, dtype=float)
    with pm.Model(coords={"galaxy": list(names)}) as model:
        intercept, slope, scatter, widths = _hyperpriors(interim, x, priors)
        y = linear_relation("y", x, intercept=intercept, slope=slope, scatter=scatter, pivot=pivot)
        for i, (name, path) in enumerate(zip(names, configs)):
            cfg = config_module.load_config(path)
            data = config_module.read_data(cfg)
            psf = config_module.make_psf(cfg)
            config_module.build_model(
                cfg, data, psf, model=model, prefix=f"{name}::", overrides={label: y[i] / scale[i]}
            )
    return model, widths


def choose_method(n_galaxies, *, memory_bytes, max_memory_gb=4.0) -> str:
    """``"joint"`` for at most :data:`JOINT_MAX_GALAXIES` galaxies whose summed rendering
    memory (bytes, ``cli.estimate_render_bytes`` per galaxy, stored in ``done.json``) is at
    most ``max_memory_gb`` GB (10^9 bytes); else ``"reweight"``."""
    small = n_galaxies <= JOINT_MAX_GALAXIES and memory_bytes <= max_memory_gb * 1e9
    return "joint" if small else "reweight"


def infer_relation(
    output,
    catalogue,
    *,
    parameter="gradient",
    covariate="log_mass",
    per_kpc=False,
    redshift_column="redshift",
    method="auto",
    pivot=None,
    priors=None,
    draws=1000,
    tune=1000,
    chains=2,
    seed=0,
    max_draws=1000,
    max_memory_gb=4.0,
    write=True,
    plot=True,
    say=print,
) -> RelationResult:
    """Infer ``y = intercept + slope (x - pivot) + scatter eps`` over the fitted galaxies.

    Parameters
    ----------
    output : path-like
        The :func:`fit_sample` output folder; galaxies without a result are left out.
    catalogue : Catalogue or path-like
    parameter : str
        The per-galaxy free parameter ``y`` (full label such as ``"disc_gradient"``, or a
        unique suffix such as ``"gradient"``), in its config units (e.g. dex/arcsec).
    covariate : str
        Catalogue column of ``x`` (e.g. ``log_mass``, dex).
    per_kpc : bool
        Convert ``y`` from per-arcsec to per-kpc with the catalogue's ``redshift_column``
        (:func:`pymc_tracers.cosmology.gradient_per_kpc`, Planck18): dex/arcsec -> dex/kpc.
    method : {"auto", "joint", "reweight"}
        ``"joint"``: the joint hierarchical model (re-reads every galaxy's data; the sample
        must fit in memory). ``"reweight"``: importance reweighting of the stored draws (needs
        a known, broad interim prior in each config; see the module docstring). ``"auto"``:
        joint for at most :data:`JOINT_MAX_GALAXIES` galaxies whose estimated rendering memory
        sums to at most ``max_memory_gb``, else reweight.
    pivot : float, optional
        Covariate value of the intercept (default: the sample's median, rounded to 0.1).
    priors : dict, optional
        Hyperpriors: ``{"intercept": (mean, sd), "slope": (mean, sd), "scatter": sd}``
        (units of ``y``, per covariate unit for the slope). Default: scaled by the interim
        prior (mean m, sd s): Normal(m, s), Normal(0, s / sd(x)), HalfNormal(s).
    draws, tune, chains, seed
        NUTS settings of the relation's fit.
    max_draws : int
        Stored draws per galaxy used by the reweighting, K.
    write, plot : bool
        Write ``output/population/`` (``relation.nc``, ``relation_summary.ecsv``, and
        ``relation.png`` when ``plot``), replacing an earlier one atomically.
    say : callable or None
        One-line messages.

    Returns
    -------
    RelationResult
    """
    import arviz as az

    say = say or (lambda text: None)
    started = time.perf_counter()
    output = Path(output)
    if not isinstance(catalogue, Catalogue):
        catalogue = read_catalogue(catalogue)
    if method not in ("auto", "joint", "reweight"):
        raise ValueError(f"method must be 'auto', 'joint' or 'reweight'; got {method!r}")
    markers = _markers(output, catalogue.names)
    use = [i for i, n in enumerate(catalogue.names) if n in markers]
    x_all = catalogue.covariate(covariate)
    use = [i for i in use if np.isfinite(x_all[i])]
    if len(use) < 3:
        raise ValueError(
            f"only {len(use)} galaxies have a result and a finite {covariate}; a relation needs "
            "at least 3"
        )
    names = [catalogue.names[i] for i in use]
    configs = [catalogue.configs[i] for i in use]
    x = x_all[use]
    redshift = catalogue.covariate(redshift_column)[use] if per_kpc else None
    pivot = float(np.round(np.median(x), 1)) if pivot is None else float(pivot)
    stored = relation_samples(output, names, parameter, redshift=redshift, max_draws=max_draws)
    label, unit = stored["label"], stored["unit"]
    if method == "auto":
        memory = sum(markers[n].get("render_bytes", 0) for n in names)
        method = choose_method(len(names), memory_bytes=memory, max_memory_gb=max_memory_gb)
    say(
        f"population: {label} ({unit}) against {covariate} over {len(names)} galaxies, "
        f"method {method}"
    )
    info = {
        "parameter": label,
        "unit": unit,
        "covariate": covariate,
        "covariate_unit": catalogue.unit(covariate),
        "pivot": pivot,
        "per_kpc": bool(per_kpc),
        "n_galaxies": len(names),
        "draws_per_galaxy": int(stored["samples"].shape[1]),
    }
    if method == "reweight":
        idata, widths = reweighted_relation(
            stored["samples"],
            stored["log_interim"],
            x,
            pivot=pivot,
            interim=stored["interim"],
            priors=priors,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
        )
        y_draws = stored["samples"].T
    else:
        model, widths = joint_model(
            configs,
            names,
            label,
            x,
            pivot=pivot,
            interim=stored["interim"],
            scale=stored["scale"],
            priors=priors,
        )
        idata = _sample_nutpie(model, draws=draws, tune=tune, chains=chains, seed=seed)
        y_draws = idata.posterior["y"].stack(s=("chain", "draw")).transpose("s", ...).values
    post = idata.posterior
    medians = {k: float(post[k].median()) for k in ("intercept", "slope", "scatter")}
    ess = importance_ess(
        stored["samples"],
        stored["log_interim"],
        medians["intercept"] + medians["slope"] * (x - pivot),
        medians["scatter"],
    )
    info["importance_ess_min"] = float(ess.min())
    info["hyperpriors"] = {k: list(np.atleast_1d(v).astype(float)) for k, v in widths.items()}
    if method == "reweight" and ess.min() < MIN_IMPORTANCE_ESS:
        worst = names[int(np.argmin(ess))]
        warnings.warn(
            f"importance reweighting: {worst} has only {ess.min():.1f} effective draws at the "
            "median relation; its interim prior may be too narrow or its draws too few (raise "
            "--max-draws or the per-galaxy draws)",
            stacklevel=2,
        )
    info["seconds"] = time.perf_counter() - started
    idata = az.InferenceData(
        posterior=post.drop_vars([v for v in post.data_vars if "::" in v]),
        sample_stats=idata.sample_stats,
    )
    idata.attrs["pymc_tracers_relation"] = json.dumps(
        {**info, "method": method, "names": names, "covariate_values": x.tolist()}
    )
    result = RelationResult(idata, method, names, x, y_draws, info)
    if write:
        with _local_file_locks():
            result.folder = _write_relation(output, result, plot=plot)
    s = result.summary()
    for k in ("intercept", "slope", "scatter"):
        say(f"  {k:<9s} {s.loc[k, 'mean']:+.4f} +/- {s.loc[k, 'sd']:.4f}")
    return result


def _relation_units(info) -> dict:
    unit, cov = info["unit"], info["covariate_unit"]
    return {
        "intercept": unit,
        "slope": f"({unit}) / ({cov})" if cov and cov != "dex" else unit,
        "scatter": unit,
    }


def _write_relation(output: Path, result: RelationResult, *, plot: bool) -> Path:
    from pymc_tracers import io

    final = output / "population"
    temporary = Path(tempfile.mkdtemp(prefix=".population.", suffix=_PARTIAL, dir=output))
    try:
        _shareable(temporary)
        result.idata.to_netcdf(temporary / "relation.nc")
        meta = {k: v for k, v in result.info.items() if k != "hyperpriors"}
        meta["method"] = result.method
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's notes on composite units
            io.write_summary(
                temporary / "relation_summary.ecsv",
                result.summary(),
                units=_relation_units(result.info),
                meta=meta,
            )
        if plot:
            _plot_relation(result, temporary / "relation.png")
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=".population.", suffix=_OLD, dir=output))
            os.rename(final, old / final.name)
            os.rename(temporary, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return final


def _plot_relation(result: RelationResult, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pymc_tracers.plotting import plot_relation

    info = result.info
    figure = plot_relation(
        result.idata,
        result.covariate,
        y=result.y_draws,
        params={"intercept": "intercept", "slope": "slope", "pivot": info["pivot"]},
        scatter="scatter",
        xlabel=f"{info['covariate']}"
        + (f" [{info['covariate_unit']}]" if info["covariate_unit"] else ""),
        ylabel=f"{info['parameter']} [{info['unit']}] ({result.method})",
    )
    figure.savefig(path, dpi=90)
    plt.close(figure)
