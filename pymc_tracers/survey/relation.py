"""The population relation of one per-galaxy parameter with a covariate:
``y_n = intercept + slope (x_n - pivot) + scatter eps_n``, by the joint hierarchical model or by
importance reweighting of the stored per-galaxy posteriors (see :mod:`pymc_tracers.survey`)."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

from pymc_tracers.config import load_config
from pymc_tracers.config.run import build_galaxy
from pymc_tracers.inference.convergence import check_convergence
from pymc_tracers.inference.samplers import NUTPIE_SETTINGS, nutpie_backend
from pymc_tracers.model.population import linear_mean, linear_relation
from pymc_tracers.survey.catalogue import Catalogue, read_catalogue
from pymc_tracers.survey.interim import (
    importance_ess,
    importance_log_likelihood,
    kde_bandwidth,
    read_markers,
    relation_samples,
)
from pymc_tracers.survey.plots import write_relation
from pymc_tracers.survey.worker import WorkerState

__all__ = [
    "HYPERPARAMETERS",
    "JOINT_MAX_GALAXIES",
    "MIN_GALAXIES_FOR_SCATTER",
    "MIN_IMPORTANCE_ESS",
    "RelationResult",
    "choose_method",
    "infer_relation",
    "joint_model",
    "reweighted_relation",
]

#: ``method="auto"`` fits the joint hierarchical model up to this many galaxies (the loop-form
#: graph, and its compile time, grow with the sample) and reweights above it.
JOINT_MAX_GALAXIES = 50
#: Warn when a galaxy's importance weights have fewer effective draws than this.
MIN_IMPORTANCE_ESS = 20.0
#: Below this many galaxies the intrinsic scatter is not constrained (its posterior follows
#: its prior), and the relation says so.
MIN_GALAXIES_FOR_SCATTER = 5
#: The relation's parameters.
HYPERPARAMETERS = ("intercept", "slope", "scatter")
#: Bytes per GiB: memory limits are in GiB, as in :mod:`pymc_tracers.numerics`.
GIB = 2**30


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
        ``importance_ess_min`` (reweighting), ``convergence`` (the report of
        :func:`pymc_tracers.inference.convergence.convergence_report`),
        ``scatter_constrained`` (False below :data:`MIN_GALAXIES_FOR_SCATTER` galaxies),
        ``seconds``.
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
        """``az.summary`` of intercept, slope and scatter."""
        return az.summary(self.idata, var_names=list(HYPERPARAMETERS))

    @property
    def converged(self) -> bool:
        """Whether the relation's posterior passed the convergence check."""
        return bool(self.info["convergence"]["converged"])


def hyperpriors(interim, x, priors):
    """Hyperpriors scaled by the interim prior (mean m, sd s): intercept ~ Normal(m, s),
    slope ~ Normal(0, s / sd(x)), scatter ~ HalfNormal(s) (its density is largest at zero, so
    a relation without intrinsic scatter is allowed); ``priors`` overrides."""
    m, s = interim
    spread = float(np.std(x)) if np.std(x) > 0 else 1.0
    widths = {"intercept": (m, s), "slope": (0.0, s / spread), "scatter": s, **(priors or {})}
    intercept = pm.Normal("intercept", *widths["intercept"])
    slope = pm.Normal("slope", *widths["slope"])
    scatter = pm.HalfNormal("scatter", widths["scatter"])
    return intercept, slope, scatter, widths


def sample_relation(model, *, draws, tune, chains, seed, target_accept=0.99):
    """NUTS (nutpie) on a relation's model. The hyperparameters are few and cheap, so a high
    ``target_accept`` (small steps) costs little and keeps NUTS clear of the narrow region at
    small scatter, where the intercept and slope are pinned by the precise galaxies."""
    backend = nutpie_backend("auto")
    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            nuts_sampler="nutpie",
            random_seed=seed,
            progressbar=False,
            target_accept=target_accept,
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

    Each galaxy's draws are smoothed by their kernel-density bandwidth
    (:func:`~pymc_tracers.survey.interim.kde_bandwidth`), so the likelihood is smooth down to
    zero intrinsic scatter and the model has no per-galaxy latent variables: no funnel.

    Returns ``(idata, widths of the hyperpriors)``.
    """
    bandwidth = kde_bandwidth(samples)
    with pm.Model() as model:
        intercept, slope, scatter, widths = hyperpriors(interim, x, priors)
        mean = linear_mean(np.asarray(x, dtype=float), intercept, slope, pivot)
        pm.Potential(
            "importance_likelihood",
            importance_log_likelihood(samples, log_interim, mean, scatter, bandwidth=bandwidth),
        )
    idata = sample_relation(model, draws=draws, tune=tune, chains=chains, seed=seed)
    return idata, widths


def joint_model(configs, names, label, x, *, pivot, interim, scale=None, priors=None):
    """The joint hierarchical model: every galaxy's config model in one PyMC model, parameter
    ``label`` of galaxy n set to ``y_n / scale_n`` with ``y`` on the linear relation
    (:func:`pymc_tracers.model.population.linear_relation`, non-centred); returns
    ``(model, widths)``.

    Variables of galaxy ``name`` are prefixed ``"<name>::"``; ``y`` (dims ``galaxy``) is in the
    relation's units (per kpc when ``scale`` = arcsec_per_kpc(z)).
    """
    scale = np.ones(len(names)) if scale is None else np.asarray(scale, dtype=float)
    with pm.Model(coords={"galaxy": list(names)}) as model:
        intercept, slope, scatter, widths = hyperpriors(interim, x, priors)
        y = linear_relation("y", x, intercept=intercept, slope=slope, scatter=scatter, pivot=pivot)
        for i, (name, path) in enumerate(zip(names, configs)):
            build_galaxy(
                load_config(path),
                model=model,
                prefix=f"{name}::",
                overrides={label: y[i] / scale[i]},
            )
    return model, widths


def choose_method(n_galaxies, *, memory_bytes, max_memory_gib=4.0) -> str:
    """``"joint"`` for at most :data:`JOINT_MAX_GALAXIES` galaxies whose summed rendering
    memory (bytes, stored in each ``done.json``) is at most ``max_memory_gib`` GiB; else
    ``"reweight"``."""
    small = n_galaxies <= JOINT_MAX_GALAXIES and memory_bytes <= max_memory_gib * GIB
    return "joint" if small else "reweight"


def _galaxies(output, catalogue, covariate):
    """Names, configs and covariates of the galaxies with a result and a finite covariate."""
    markers = read_markers(output, catalogue.names)
    x_all = catalogue.covariate(covariate)
    use = [i for i, n in enumerate(catalogue.names) if n in markers and np.isfinite(x_all[i])]
    if len(use) < 3:
        raise ValueError(
            f"only {len(use)} galaxies have a result and a finite {covariate}; a relation needs "
            "at least 3"
        )
    names = [catalogue.names[i] for i in use]
    return names, [catalogue.configs[i] for i in use], x_all[use], markers


def infer_relation(
    output,
    catalogue,
    *,
    parameter="gradient",
    covariate="log_mass",
    per_kpc=False,
    per_re=False,
    redshift_column="redshift",
    method="auto",
    pivot=None,
    priors=None,
    draws=1000,
    tune=1000,
    chains=2,
    seed=0,
    max_draws=1000,
    max_memory_gib=4.0,
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
    per_re : bool
        Convert ``y`` from per-arcsec to per effective radius of its component's light profile
        (its fixed ``r_eff`` in each galaxy's configuration): dex/arcsec -> dex/R_e.
    method : {"auto", "joint", "reweight"}
        ``"joint"``: the joint hierarchical model (re-reads every galaxy's data; the sample
        must fit in memory). ``"reweight"``: importance reweighting of the stored draws (needs
        a known, broad interim prior in each config; see the module docstring). ``"auto"``:
        joint for at most :data:`JOINT_MAX_GALAXIES` galaxies whose estimated rendering memory
        sums to at most ``max_memory_gib``, else reweight.
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
    max_memory_gib : float
        GiB (2^30 bytes) of rendering memory up to which ``"auto"`` picks the joint model.
    write, plot : bool
        Write ``output/population/`` (``relation.nc``, ``relation_summary.ecsv``, and
        ``relation.png`` when ``plot``), replacing an earlier one atomically.
    say : callable or None
        One-line messages.

    Returns
    -------
    RelationResult
        Its ``info["convergence"]`` records the convergence check (a
        :class:`~pymc_tracers.ConvergenceWarning` is raised too when it fails).
    """
    say = say or (lambda text: None)
    started = time.perf_counter()
    output = Path(output)
    if not isinstance(catalogue, Catalogue):
        catalogue = read_catalogue(catalogue)
    if method not in ("auto", "joint", "reweight"):
        raise ValueError(f"method must be 'auto', 'joint' or 'reweight'; got {method!r}")
    names, configs, x, markers = _galaxies(output, catalogue, covariate)
    redshift = None
    if per_kpc:
        rows = [catalogue.names.index(n) for n in names]
        redshift = catalogue.covariate(redshift_column)[rows]
    pivot = float(np.round(np.median(x), 1)) if pivot is None else float(pivot)
    state = WorkerState()
    stored = relation_samples(
        output,
        names,
        parameter,
        redshift=redshift,
        per_re=per_re,
        max_draws=max_draws,
        file_lock=state.file_locks,
    )
    label, unit = stored["label"], stored["unit"]
    if method == "auto":
        memory = sum(markers[n].get("render_bytes", 0) for n in names)
        method = choose_method(len(names), memory_bytes=memory, max_memory_gib=max_memory_gib)
    say(
        f"population: {label} ({unit}) against {covariate} over {len(names)} galaxies, "
        f"method {method}"
    )
    info = _info(stored, catalogue, covariate, pivot, per_kpc, names, say)
    info["per_re"] = bool(per_re)
    settings = dict(draws=draws, tune=tune, chains=chains, seed=seed)
    idata, widths, y_draws = _sample(method, stored, x, pivot, priors, configs, names, settings)
    info.update(_checks(idata, stored, x, pivot, method, names, say))
    info["hyperpriors"] = {k: list(np.atleast_1d(v).astype(float)) for k, v in widths.items()}
    info["seconds"] = time.perf_counter() - started
    post = idata.posterior
    idata = az.InferenceData(
        posterior=post.drop_vars([v for v in post.data_vars if "::" in v]),
        sample_stats=idata.sample_stats,
    )
    idata.attrs["pymc_tracers_relation"] = json.dumps(
        {**info, "method": method, "names": names, "covariate_values": x.tolist()}
    )
    result = RelationResult(idata, method, names, x, y_draws, info)
    if write:
        with state.file_locks():
            result.folder = write_relation(output, result, plot=plot)
    s = result.summary()
    for k in HYPERPARAMETERS:
        say(f"  {k:<9s} {s.loc[k, 'mean']:+.4f} +/- {s.loc[k, 'sd']:.4f}")
    return result


def _info(stored, catalogue, covariate, pivot, per_kpc, names, say) -> dict:
    """What the relation records about itself; says when the scatter cannot be constrained."""
    info = {
        "parameter": stored["label"],
        "unit": stored["unit"],
        "covariate": covariate,
        "covariate_unit": catalogue.unit(covariate),
        "pivot": pivot,
        "per_kpc": bool(per_kpc),
        "n_galaxies": len(names),
        "draws_per_galaxy": int(stored["samples"].shape[1]),
        "scatter_constrained": len(names) >= MIN_GALAXIES_FOR_SCATTER,
    }
    if not info["scatter_constrained"]:
        say(
            f"  note: {len(names)} galaxies are too few to constrain an intrinsic scatter "
            f"(fewer than {MIN_GALAXIES_FOR_SCATTER}); its posterior follows its prior"
        )
    return info


def _sample(method, stored, x, pivot, priors, configs, names, settings):
    """``(idata, hyperprior widths, per-galaxy draws of y (S, N))`` of one method."""
    if method == "reweight":
        idata, widths = reweighted_relation(
            stored["samples"],
            stored["log_interim"],
            x,
            pivot=pivot,
            interim=stored["interim"],
            priors=priors,
            **settings,
        )
        return idata, widths, stored["samples"].T
    model, widths = joint_model(
        configs,
        names,
        stored["label"],
        x,
        pivot=pivot,
        interim=stored["interim"],
        scale=stored["scale"],
        priors=priors,
    )
    idata = sample_relation(model, **settings)
    y_draws = idata.posterior["y"].stack(s=("chain", "draw")).transpose("s", ...).values
    return idata, widths, y_draws


def _checks(idata, stored, x, pivot, method, names, say) -> dict:
    """The convergence report and the importance weights' effective draws."""
    convergence = check_convergence(
        idata,
        var_names=list(HYPERPARAMETERS),
        what="the population relation",
        hints=False,  # the relation's parametrisation is the package's, not the user's
    )
    if not convergence["converged"]:
        say("  WARNING: the relation did not converge: " + "; ".join(convergence["problems"]))
    post = idata.posterior
    medians = {k: float(post[k].median()) for k in HYPERPARAMETERS}
    ess = importance_ess(
        stored["samples"],
        stored["log_interim"],
        medians["intercept"] + medians["slope"] * (x - pivot),
        medians["scatter"],
        bandwidth=kde_bandwidth(stored["samples"]),
    )
    if method == "reweight" and ess.min() < MIN_IMPORTANCE_ESS:
        worst = names[int(np.argmin(ess))]
        warnings.warn(
            f"importance reweighting: {worst} has only {ess.min():.1f} effective draws at the "
            "median relation; its interim prior may be too narrow or its draws too few (raise "
            "--max-draws or the per-galaxy draws)",
            stacklevel=3,
        )
    return {"convergence": convergence, "importance_ess_min": float(ess.min())}
