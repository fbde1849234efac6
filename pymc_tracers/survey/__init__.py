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
        The joint hierarchical model (:func:`pymc_tracers.model.population.linear_relation`): all
        galaxies' likelihoods in one PyMC model, each galaxy's parameter drawn from the
        relation, its other parameters keeping their config priors. Exact, but the model
        holds every galaxy's data and its graph grows with the sample. ``"auto"`` uses it
        up to :data:`JOINT_MAX_GALAXIES` galaxies whose rendering fits in ``max_memory_gib``.
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

Convergence
    Every galaxy's fit and the relation run the one convergence check of
    :func:`pymc_tracers.inference.convergence.convergence_report` (R-hat, bulk ESS,
    divergences). Each galaxy's ``done.json`` and ``galaxies.ecsv`` record it, the relation's
    ``relation_summary.ecsv`` and ``relation.nc`` too, and ``pymc-tracers fit-sample`` exits 3
    when everything ran but a fit did not converge.

Modules
    :mod:`~pymc_tracers.survey.catalogue` (the catalogue),
    :mod:`~pymc_tracers.survey.fingerprint` (model fingerprints),
    :mod:`~pymc_tracers.survey.worker` (one galaxy: fit and publish, the worker's compiled
    models), :mod:`~pymc_tracers.survey.dask_driver` (the run on Dask or serially),
    :mod:`~pymc_tracers.survey.interim` (stored draws, interim priors, importance weights),
    :mod:`~pymc_tracers.survey.relation` (the relation's models and inference) and
    :mod:`~pymc_tracers.survey.plots` (writing and plotting it).
"""

from pymc_tracers.survey.catalogue import Catalogue, CatalogueError, read_catalogue
from pymc_tracers.survey.dask_driver import (
    SERIAL,
    MissingExtraError,
    SampleInterrupted,
    SampleReport,
    finished_galaxies,
    fit_sample,
    require_dask,
)
from pymc_tracers.survey.fingerprint import model_fingerprint
from pymc_tracers.survey.interim import (
    importance_ess,
    importance_log_likelihood,
    interim_prior,
    kde_bandwidth,
    relation_samples,
    resolve_parameter,
)
from pymc_tracers.survey.relation import (
    JOINT_MAX_GALAXIES,
    MIN_GALAXIES_FOR_SCATTER,
    MIN_IMPORTANCE_ESS,
    RelationResult,
    choose_method,
    infer_relation,
    joint_model,
    reweighted_relation,
)
from pymc_tracers.survey.worker import DONE_FILE, WorkerState, fit_galaxy, swap_model_data

__all__ = [
    "DONE_FILE",
    "JOINT_MAX_GALAXIES",
    "MIN_GALAXIES_FOR_SCATTER",
    "MIN_IMPORTANCE_ESS",
    "SERIAL",
    "Catalogue",
    "CatalogueError",
    "MissingExtraError",
    "RelationResult",
    "SampleInterrupted",
    "SampleReport",
    "WorkerState",
    "choose_method",
    "finished_galaxies",
    "fit_galaxy",
    "fit_sample",
    "importance_ess",
    "importance_log_likelihood",
    "infer_relation",
    "interim_prior",
    "joint_model",
    "kde_bandwidth",
    "model_fingerprint",
    "read_catalogue",
    "relation_samples",
    "require_dask",
    "resolve_parameter",
    "reweighted_relation",
    "swap_model_data",
]
