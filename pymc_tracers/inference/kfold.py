"""K-fold cross-validation by exact refits: how well a model predicts galaxies it has not seen.

Galaxy-level PSIS-LOO (:func:`~pymc_tracers.compare` with ``level="galaxy"``) is often
unreliable for hierarchical models (Pareto k > 0.7): leaving a galaxy's maps out sends its own
parameters back to the population prior, further than importance sampling can follow. K-fold
cross-validation refits the model K times, each time without the maps of one group (fold) of
galaxies, and scores the held-out maps by their log predictive density (Vehtari, Gelman &
Gabry 2017, sect. 4)::

    elpd_i = log( 1/S sum_s p(y_i | theta_s) ),   theta_s ~ p(theta | y without i's fold)

summed over each held-out galaxy's pixels in every ``pymc_tracers`` likelihood.

Each fold reuses the one compiled model: a held-out galaxy's error map is multiplied by
:data:`HOLD_OUT_FACTOR` (1e12) in the compiled sampler, which leaves its likelihood a constant
to float64 precision (its gradient is ~1e-24 of a normal pixel's), so its own parameters are
drawn from the population given the other galaxies, exactly as if its maps were removed. Other
observed variables (e.g. measured covariates) stay in, as in regression: the held-out galaxy's
maps are predicted from its covariates.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
from scipy.special import logsumexp

from pymc_tracers.inference.fitter import Fitter
from pymc_tracers.model.likelihood import likelihoods_of

__all__ = ["HOLD_OUT_FACTOR", "KFoldResult", "compare_kfold", "galaxy_folds", "kfold"]

#: error maps of held-out galaxies are multiplied by this in the compiled sampler
HOLD_OUT_FACTOR = 1e12


@dataclass
class KFoldResult:
    """Expected log predictive density of held-out galaxies, from K refits.

    Attributes
    ----------
    elpd : float
        ``sum_i elpd_i`` over galaxies (log density of the held-out maps; higher is better).
    se : float
        Its standard error, ``sqrt(N var(elpd_i))``.
    pointwise : ndarray, shape (n_galaxies,)
        ``elpd_i`` of each galaxy, from the fold that held it out.
    folds : list of ndarray
        Galaxy indices held out in each fold.
    diagnostics : list of dict
        Each refit's convergence: ``r_hat_max``, ``ess_bulk_min``, ``divergences``.
    seconds : float
        Wall time of all refits.
    """

    elpd: float
    se: float
    pointwise: np.ndarray
    folds: list
    diagnostics: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def k(self) -> int:
        return len(self.folds)

    def __repr__(self):
        return (
            f"KFoldResult(elpd={self.elpd:.2f} +/- {self.se:.2f}, k={self.k}, "
            f"galaxies={self.pointwise.size})"
        )


#: Held while a fold builds and compiles a graph (see ``kfold``).
_GRAPH_BUILDING = threading.Lock()


def galaxy_folds(n_galaxies: int, k: int | None = None, *, random_seed=None) -> list:
    """Galaxies ``0..n_galaxies-1`` dealt at random into ``k`` folds of near-equal size.

    Parameters
    ----------
    n_galaxies : int
    k : int, optional
        Number of folds, ``2 <= k <= n_galaxies``; default ``min(n_galaxies, 10)`` (one galaxy
        per fold up to ten galaxies: leave-one-galaxy-out).
    random_seed : int, optional
    """
    if int(n_galaxies) < 2:
        raise ValueError(f"K-fold needs at least 2 galaxies; got {n_galaxies}")
    k = min(int(n_galaxies), 10) if k is None else int(k)
    if not 2 <= k <= n_galaxies:
        raise ValueError(f"k must be between 2 and the number of galaxies ({n_galaxies}); got {k}")
    order = np.random.default_rng(random_seed).permutation(int(n_galaxies))
    return [np.sort(order[i::k]) for i in range(k)]


def _galaxy_of_pixels(record, galaxy_of) -> np.ndarray:
    """Galaxy index of each used pixel of a likelihood (in the order of its observed vector)."""
    index = np.flatnonzero(record.used)
    if record.name in (galaxy_of or {}):
        return np.full(index.size, int(galaxy_of[record.name]))
    if record.batched:
        return np.unravel_index(index, record.shape)[0]
    raise ValueError(
        f"likelihood {record.name!r} holds one {len(record.shape)}-D map, so the galaxy it "
        "belongs to is not in its shape; for models with one likelihood per galaxy pass "
        f"galaxy_of={{{record.name!r}: <galaxy index>, ...}}"
    )


def _check_sigma_maps(records):
    for record in records:
        if not isinstance(record.sigma, np.ndarray):
            raise ValueError(
                f"likelihood {record.name!r} has a noise model with free parameters; K-fold "
                "holds galaxies out through their error maps, so it needs likelihoods built "
                "with sigma= maps"
            )


def _held_out_updates(records, galaxies, held_out) -> dict:
    updates = {}
    for record in records:
        sigma = record.sigma[record.used].astype(float)
        sigma[np.isin(galaxies[record.name], held_out)] *= HOLD_OUT_FACTOR
        updates[f"{record.name}_sigma"] = sigma
    return updates


def _diagnostics(idata) -> dict:
    import arviz as az

    summary = az.summary(idata, kind="diagnostics")
    divergences = int(np.asarray(idata.sample_stats["diverging"]).sum())
    return {
        "r_hat_max": float(np.nanmax(summary["r_hat"])) if len(summary) else float("nan"),
        "ess_bulk_min": float(np.nanmin(summary["ess_bulk"])) if len(summary) else float("nan"),
        "divergences": divergences,
    }


def kfold(
    model_or_fitter=None,
    *,
    k=None,
    folds=None,
    galaxy_of=None,
    n_jobs=1,
    draws=1000,
    tune=1000,
    chains=2,
    random_seed=None,
    progressbar=True,
) -> KFoldResult:
    """Galaxy-level K-fold cross-validation by exact refits of one compiled model.

    Parameters
    ----------
    model_or_fitter : pm.Model or Fitter, optional
        The model (default: the one on the context stack; compiled once here) or a
        :class:`~pymc_tracers.Fitter` already compiled for it (reused as it is). Its
        ``pymc_tracers`` likelihoods must have error maps (``sigma=``).
    k : int, optional
        Number of folds (default ``min(n_galaxies, 10)``); galaxies are dealt into folds at
        random with ``random_seed``.
    folds : list of array_like, optional
        Galaxy indices held out in each fold, instead of ``k`` (every galaxy exactly once).
    galaxy_of : dict, optional
        ``{likelihood name: galaxy index}`` for models with one likelihood per galaxy (the
        loop form). Batched likelihoods (data ``(N, ny, nx)``) need nothing.
    n_jobs : int
        Folds refitted at once, in threads (nutpie samples outside Python's lock). Each fold
        already samples its ``chains`` in parallel: more jobs than cores / chains only queue.
    draws, tune, chains, random_seed, progressbar
        Sampler settings of every refit (nutpie).

    Returns
    -------
    KFoldResult
        ``elpd``, ``se``, per-galaxy ``pointwise`` values and each refit's diagnostics; compare
        models with :func:`compare_kfold`.
    """
    fitter = model_or_fitter if isinstance(model_or_fitter, Fitter) else None
    model = fitter.model if fitter is not None else pm.modelcontext(model_or_fitter)
    records = likelihoods_of(model)
    if not records:
        raise ValueError("the model has no pymc_tracers likelihoods to hold out")
    _check_sigma_maps(records)
    galaxies = {r.name: _galaxy_of_pixels(r, galaxy_of) for r in records}
    n_galaxies = int(max(g.max() for g in galaxies.values())) + 1
    if folds is None:
        folds = galaxy_folds(n_galaxies, k, random_seed=random_seed)
    else:
        folds = [np.unique(np.asarray(f, dtype=int)) for f in folds]
        covered = np.sort(np.concatenate(folds))
        if not np.array_equal(covered, np.arange(n_galaxies)):
            raise ValueError(
                f"folds must hold out every galaxy 0..{n_galaxies - 1} exactly once; they hold "
                f"{covered.tolist()}"
            )
    names = [r.name for r in records]
    if fitter is None:
        fitter = Fitter(model)  # compiled once, after the checks
    seeds = np.random.default_rng(random_seed).integers(2**31, size=len(folds))

    def refit(i):
        idata = fitter.sample_with(
            _held_out_updates(records, galaxies, folds[i]),
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=int(seeds[i]),
            progressbar=progressbar,
        )
        # the held-out maps scored with their real errors (the model's own data). Building and
        # compiling that graph runs one fold at a time: PyTensor's shape inference switches
        # its global C-compiler flag off and on, which is not thread-safe (a race left one
        # process without C code); the sampling itself still runs in parallel
        with _GRAPH_BUILDING, fitter.model:
            log_likelihood = pm.compute_log_likelihood(
                idata, var_names=names, extend_inferencedata=False, progressbar=False
            )
        per_galaxy = np.zeros((idata.posterior.sizes["chain"] * draws, n_galaxies))
        for name in names:
            values = log_likelihood[name].values.reshape(per_galaxy.shape[0], -1)
            np.add.at(per_galaxy.T, galaxies[name], values.T)
        held_out = per_galaxy[:, folds[i]]
        elpd = logsumexp(held_out, axis=0) - np.log(held_out.shape[0])
        return elpd, _diagnostics(idata)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, int(n_jobs))) as pool:
        outcomes = list(pool.map(refit, range(len(folds))))
    pointwise = np.empty(n_galaxies)
    for fold, (elpd, _) in zip(folds, outcomes):
        pointwise[fold] = elpd
    return KFoldResult(
        elpd=float(pointwise.sum()),
        se=float(np.sqrt(n_galaxies * np.var(pointwise))),
        pointwise=pointwise,
        folds=folds,
        diagnostics=[d for _, d in outcomes],
        seconds=time.perf_counter() - started,
    )


def compare_kfold(results: dict) -> pd.DataFrame:
    """Rank models by K-fold elpd, with paired standard errors of the differences.

    Parameters
    ----------
    results : dict
        ``{model name: KFoldResult}`` of the same galaxies.

    Returns
    -------
    pandas.DataFrame
        Indexed by model, best first: ``elpd``, ``se``, ``elpd_diff`` (from the best, <= 0) and
        ``dse``, the standard error of that difference, ``sqrt(N var(elpd_i - elpd_best,i))``
        (paired over galaxies, so much smaller than the two ``se`` combined).
    """
    if not isinstance(results, dict) or len(results) < 2:
        raise ValueError("give a dict {model name: KFoldResult} of at least two models")
    sizes = {name: r.pointwise.size for name, r in results.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the results hold different numbers of galaxies: {sizes}")
    order = sorted(results, key=lambda name: -results[name].elpd)
    best = results[order[0]].pointwise
    rows = []
    for name in order:
        difference = results[name].pointwise - best
        rows.append(
            {
                "elpd": results[name].elpd,
                "se": results[name].se,
                "elpd_diff": float(difference.sum()),
                "dse": float(np.sqrt(difference.size * np.var(difference))),
            }
        )
    return pd.DataFrame(rows, index=pd.Index(order, name="model"))
