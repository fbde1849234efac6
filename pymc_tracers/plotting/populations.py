"""Population figures: a relation with its credible band over the per-galaxy posteriors, and
the shrinkage of a hierarchical fit against independent ones."""

from __future__ import annotations

import arviz as az
import numpy as np
from matplotlib.figure import Figure

from pymc_tracers.model import population

__all__ = ["plot_relation", "plot_shrinkage"]


def _idata_of(source):
    """The InferenceData of a Result, or the object itself."""
    return getattr(source, "idata", source)


def _draws_of(source, value):
    """Posterior draws of a parameter: a name looked up in ``source``, or an array / number.

    Returns an array whose LAST axis runs over draws (for a per-galaxy variable: (N, S)).
    """
    if not isinstance(value, str):
        return np.asarray(value, dtype=float)
    if isinstance(source, dict):
        if value not in source:
            raise ValueError(f"no {value!r} among the posterior arrays {sorted(source)}")
        array = np.asarray(source[value], dtype=float)
        return np.moveaxis(array, 0, -1)  # dict arrays are (draws, ...) like pm.draw
    idata = _idata_of(source)
    if value not in idata.posterior:
        raise ValueError(
            f"no {value!r} in the posterior; it has {sorted(idata.posterior.data_vars)}"
        )
    return np.asarray(az.extract(idata, var_names=[value]).values, dtype=float)


def _galaxy_percentiles(source, var_name, q):
    """Per-galaxy percentiles, shape (len(q), N), from a joint posterior or a list of fits.

    ``source``: an InferenceData / Result / dict holding a per-galaxy variable ``var_name``;
    an array of draws (S, N) or point values (N,); or a list with one entry per galaxy (a
    Result / InferenceData with a scalar ``var_name``, or a 1-D array of draws).
    """
    if isinstance(source, (list, tuple)):
        columns = []
        for item in source:
            draws = (
                np.asarray(item, dtype=float)
                if not hasattr(_idata_of(item), "posterior")
                else _draws_of(item, var_name)
            )
            columns.append(np.percentile(np.ravel(draws), q))
        return np.array(columns).T
    if hasattr(source, "dims") and "chain" in source.dims:  # an xarray DataArray of draws
        source = source.stack(sample=("chain", "draw")).transpose("sample", ...).values
    if isinstance(source, np.ndarray):
        array = np.asarray(source, dtype=float)
        if array.ndim == 1:
            return np.tile(array, (len(q), 1))
        if array.ndim != 2:
            raise ValueError(f"expected draws of shape (draws, galaxies); got {array.shape}")
        return np.percentile(array, q, axis=0)
    draws = _draws_of(source, var_name)
    if draws.ndim != 2:
        raise ValueError(
            f"{var_name!r} should have one value per galaxy; draws have shape {draws.shape}"
        )
    return np.percentile(draws, q, axis=-1)


def _as_row(value):
    return np.reshape(value, (1, -1)) if np.ndim(value) else value


_MEANS = {
    "linear": "linear_mean",
    "quadratic": "quadratic_mean",
    "broken_linear": "broken_linear_mean",
}


def plot_relation(
    posterior,
    covariate,
    *,
    y="gradient",
    relation="linear",
    params=None,
    scatter=None,
    scatter_slope=None,
    covariate_error=None,
    truth=None,
    y_true=None,
    level=0.95,
    ax=None,
    xlabel="covariate",
    ylabel=None,
    n_grid=200,
    random_seed=0,
):
    """A population relation with its credible band over the per-galaxy posteriors.

    Parameters
    ----------
    posterior : az.InferenceData, Result or dict
        The joint fit; a dict maps names to arrays of draws (draws first, as ``pm.draw``).
    covariate : array_like, shape (N,)
        The covariate of each galaxy (e.g. log10 M*, dex).
    y : str or array
        The per-galaxy variable (name, or draws of shape (S, N)); points with 16-84% bars.
    relation : {"linear", "quadratic", "broken_linear"}
        The mean function (see :mod:`pymc_tracers.model.population`).
    params : dict, optional
        The mean function's arguments: names of posterior variables, draw arrays or numbers.
        Default ``{"intercept": "intercept", "slope": "slope"}`` (pivot 0).
    scatter, scatter_slope : str, array or float, optional
        Intrinsic scatter (at ``params["pivot"]``): adds a lighter band where a new galaxy's
        value falls with probability ``level``.
    covariate_error : array_like, optional
        Horizontal error bars (covariate units).
    truth : dict, optional
        True mean-function arguments (numbers; numbers in ``params``, such as the pivot, are
        shared), drawn as a dashed line.
    y_true : array_like, optional
        True per-galaxy values, drawn as open markers.
    level : float
        Probability of the bands (default 0.95).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if relation not in _MEANS:
        raise ValueError(f"relation must be one of {sorted(_MEANS)}; got {relation!r}")
    mean_fn = getattr(population, _MEANS[relation])
    params = {"intercept": "intercept", "slope": "slope"} if params is None else dict(params)
    x = np.asarray(covariate, dtype=float)
    if ax is None:
        fig = Figure(figsize=(6, 4.5), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    span = x.max() - x.min()
    grid = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, n_grid)
    # draws (S,) become rows (1, S) and broadcast against the grid column (n_grid, 1)
    draws = {k: _as_row(_draws_of(posterior, v)) for k, v in params.items()}
    mean = mean_fn(grid[:, None], **draws)
    mean = np.broadcast_to(mean, (grid.size, np.shape(mean)[-1]))
    tails = [50 * (1 - level), 50, 100 - 50 * (1 - level)]
    lo, mid, hi = np.percentile(mean, tails, axis=1)
    if scatter is not None:
        rng = np.random.default_rng(random_seed)
        sigma = _as_row(_draws_of(posterior, scatter))
        s_slope = None if scatter_slope is None else _as_row(_draws_of(posterior, scatter_slope))
        pivot = draws.get("pivot", 0.0)
        sigma = population.scatter_at(grid[:, None], sigma, s_slope, pivot)
        # one deviate per draw, shared along the grid, keeps the band's edges smooth
        predictive = mean + sigma * rng.standard_normal((1, mean.shape[1]))
        plo, phi = np.percentile(predictive, [tails[0], tails[2]], axis=1)
        ax.fill_between(
            grid,
            plo,
            phi,
            color="C0",
            alpha=0.12,
            lw=0,
            label=f"{level:.0%} of galaxies (intrinsic scatter)",
        )
    ax.fill_between(
        grid, lo, hi, color="C0", alpha=0.35, lw=0, label=f"{level:.0%} credible relation"
    )
    ax.plot(grid, mid, color="C0", lw=2, label="posterior median relation")
    if truth is not None:
        fixed = {k: v for k, v in params.items() if not isinstance(v, str) and np.ndim(v) == 0}
        ax.plot(grid, mean_fn(grid, **{**fixed, **truth}), "k--", lw=1.5, label="true relation")
    p16, p50, p84 = _galaxy_percentiles(posterior if isinstance(y, str) else y, y, [16, 50, 84])
    xerr = None if covariate_error is None else np.broadcast_to(covariate_error, x.shape)
    ax.errorbar(
        x,
        p50,
        yerr=[p50 - p16, p84 - p50],
        xerr=xerr,
        fmt="o",
        ms=4,
        color="k",
        elinewidth=0.8,
        label="per-galaxy posterior (16-84%)",
    )
    if y_true is not None:
        ax.scatter(x, y_true, s=25, facecolors="none", edgecolors="C3", label="truth", zorder=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or (y if isinstance(y, str) else "y"))
    ax.legend(fontsize="small")
    return fig


def plot_shrinkage(
    independent,
    hierarchical,
    *,
    var_name="gradient",
    truth=None,
    covariate=None,
    labels=("independent fits", "hierarchical fit"),
    xlabel="covariate",
    figsize=None,
):
    """Independent per-galaxy fits against the hierarchical fit (and the truth, if known).

    Parameters
    ----------
    independent : list, array or InferenceData
        One posterior per galaxy (a list of Results / InferenceData with a scalar ``var_name``,
        or of 1-D draw arrays), or draws of shape (S, N).
    hierarchical : InferenceData, Result, dict or array
        The joint fit holding the per-galaxy ``var_name`` (or its draws, shape (S, N)).
    var_name : str
        The per-galaxy variable (e.g. ``"gradient"``).
    truth : array_like, shape (N,), optional
        True values: the first panel plots estimates against them (with the 1:1 line) and
        reports each method's mean-squared error of the posterior medians.
    covariate : array_like, shape (N,), optional
        Adds a panel of both estimates against the covariate.

    Returns
    -------
    matplotlib.figure.Figure
    """
    q = [16, 50, 84]
    ind = _galaxy_percentiles(independent, var_name, q)
    hie = _galaxy_percentiles(hierarchical, var_name, q)
    if ind.shape != hie.shape:
        raise ValueError(
            f"{ind.shape[1]} independent fits but {hie.shape[1]} galaxies in the hierarchical fit"
        )
    n_panels = 1 + (covariate is not None)
    fig = Figure(figsize=figsize or (5.5 * n_panels, 4.5), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    if truth is not None:
        x0 = np.asarray(truth, dtype=float)
        xlabel0 = f"true {var_name}"
    else:
        x0 = np.arange(ind.shape[1])
        xlabel0 = "galaxy"
    offset = 0.01 * np.ptp(x0) if truth is not None else 0.15
    ax = axes[0]
    for k, (stats, label, color) in enumerate([(ind, labels[0], "0.5"), (hie, labels[1], "C0")]):
        if truth is not None:
            mse = float(np.mean((stats[1] - x0) ** 2))
            label = f"{label} (MSE {mse:.3g})"
        ax.errorbar(
            x0 + (k - 0.5) * offset,
            stats[1],
            yerr=[stats[1] - stats[0], stats[2] - stats[1]],
            fmt="o",
            ms=4,
            color=color,
            elinewidth=0.8,
            label=label,
        )
    for xi, a, b in zip(x0, ind[1], hie[1]):
        ax.annotate(
            "",
            xy=(xi, b),
            xytext=(xi, a),
            arrowprops={"arrowstyle": "->", "color": "C0", "alpha": 0.4, "lw": 0.8},
        )
    if truth is not None:
        lim = [min(x0.min(), ind[1].min(), hie[1].min()), max(x0.max(), ind[1].max(), hie[1].max())]
        ax.plot(lim, lim, "k--", lw=1, label="1:1")
    ax.set_xlabel(xlabel0)
    ax.set_ylabel(f"estimated {var_name} (median, 16-84%)")
    ax.legend(fontsize="small")
    ax.set_title("shrinkage")
    if covariate is not None:
        ax = axes[1]
        x = np.asarray(covariate, dtype=float)
        for stats, label, color in [(ind, labels[0], "0.5"), (hie, labels[1], "C0")]:
            ax.errorbar(
                x,
                stats[1],
                yerr=[stats[1] - stats[0], stats[2] - stats[1]],
                fmt="o",
                ms=4,
                color=color,
                elinewidth=0.8,
                label=label,
            )
        if truth is not None:
            ax.scatter(x, x0, s=25, facecolors="none", edgecolors="C3", label="truth", zorder=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(var_name)
        ax.legend(fontsize="small")
    return fig
