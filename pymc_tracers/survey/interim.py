"""What the population relation is inferred from: each galaxy's stored posterior draws of one
parameter, the interim prior they were drawn under, and the importance-sampled likelihood of a
Gaussian population over them (Hogg, Myers & Bovy 2010, ApJ 725, 2166)."""

from __future__ import annotations

import contextlib
import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc_extras.prior import Prior
from pytensor.graph.basic import Variable
from scipy.special import logsumexp

from pymc_tracers.config import prior_from
from pymc_tracers.config.components import check_component
from pymc_tracers.config.derived import gradient_labels
from pymc_tracers.config.kinematics import kinematic_parameters
from pymc_tracers.cosmology import arcsec_per_kpc
from pymc_tracers.survey.worker import DONE_FILE

__all__ = [
    "InterimLogDensity",
    "importance_ess",
    "importance_log_likelihood",
    "interim_moments",
    "interim_prior",
    "kde_bandwidth",
    "read_markers",
    "relation_samples",
    "resolve_parameter",
    "shrink_draws",
]


class InterimLogDensity:
    """Log densities of interim priors, each compiled once (held by the caller, not the
    module)."""

    def __init__(self):
        self._functions = {}

    def __call__(self, prior, values) -> np.ndarray:
        """Natural log density of ``prior`` at ``values``."""
        key = json.dumps(prior.to_dict(), sort_keys=True, default=str)
        if key not in self._functions:
            dist = getattr(pm, prior.distribution).dist(**prior.parameters)
            x = pt.vector("x")
            self._functions[key] = pytensor.function([x], pm.logp(dist, x))
        return np.asarray(self._functions[key](np.asarray(values, dtype=float)), dtype=float)


def read_markers(output: Path, names) -> dict:
    """``{name: done.json content}`` of the galaxies with a result."""
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
    for text, value in _parameter_tables(config_raw):
        if text != label:
            continue
        if not isinstance(value, dict):
            raise ValueError(
                f"{label} has no prior table in the config ({value!r}); importance "
                "reweighting needs the interim prior as a Prior table with fixed numbers"
            )
        prior = prior_from(value, f"[{label}]")
        if any(isinstance(v, Prior) for v in prior.parameters.values()):
            raise ValueError(
                f"the prior of {label} is hierarchical ({prior}); importance reweighting "
                "needs a fixed interim prior (numbers only)"
            )
        return prior
    raise ValueError(f"no parameter {label!r} in the configuration's components")


def _parameter_tables(config_raw):
    """``(label, value as written)`` of every parameter of a raw configuration: its
    components', or its ``[kinematics]`` tables' (:func:`kinematic_parameters`)."""
    if "kinematics" in config_raw:
        yield from kinematic_parameters(config_raw["kinematics"])
        return
    components = config_raw.get("components", [])
    components = [components] if isinstance(components, dict) else list(components)
    for index, component in enumerate(components):
        name = component.get("name", f"c{index}" if len(components) > 1 else "")
        for part in ("light", "tracer"):
            for key, value in dict(component.get(part, {})).items():
                if key == "profile":
                    continue
                yield (
                    f"{name + '_' if name else ''}{'light_' if part == 'light' else ''}{key}",
                    value,
                )


def interim_moments(prior) -> tuple[float, float]:
    """Mean and standard deviation of a prior (from 4000 draws)."""
    draws = pm.draw(getattr(pm, prior.distribution).dist(**prior.parameters), 4000, random_seed=0)
    return float(np.mean(draws)), float(np.std(draws))


def relation_samples(
    output, names, parameter, *, redshift=None, per_re=False, max_draws=1000, file_lock=None
) -> dict:
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
    per_re : bool
        Convert a gradient from per-arcsec to per effective radius of its component's light
        profile (``y_re = y * r_eff``, r_eff fixed in each galaxy's configuration, arcsec).
    max_draws : int
        Draws kept per galaxy, K (evenly thinned; every galaxy gets the same K, the smallest
        available if fewer).
    file_lock : callable, optional
        Returns the context manager held while each posterior file is read.

    Returns
    -------
    dict
        ``label``, ``unit``, ``samples`` (N, K), ``log_interim`` (N, K; natural log density of
        the interim prior at each draw, in the returned units), ``interim`` (mean, sd of the
        interim prior in returned units, averaged over galaxies), ``scale`` (N,) the factor
        applied (1 without redshift).
    """
    output = Path(output)
    file_lock = contextlib.nullcontext if file_lock is None else file_lock
    logp = InterimLogDensity()
    markers = read_markers(output, names)
    missing = [n for n in names if n not in markers]
    if missing:
        raise ValueError(f"no result for {missing}; run fit-sample first")
    label = resolve_parameter(parameter, markers[names[0]]["parameters"])
    unit = markers[names[0]]["parameters"][label][2]
    if per_re and redshift is not None:
        raise ValueError("give per-kpc or per-R_e gradients, not both")
    scale = np.ones(len(names)) if redshift is None else arcsec_per_kpc(redshift)
    if redshift is not None:
        unit = unit.replace("/ arcsec", "/ kpc") if "/ arcsec" in unit else f"{unit} arcsec / kpc"
    if per_re:
        scale = np.array([_fixed_r_eff(output / "galaxies" / n, label) for n in names])
        unit = unit.replace("/ arcsec", "/ R_e") if "/ arcsec" in unit else f"{unit} arcsec / R_e"
    draws, log_interim, moments = [], [], []
    for name, factor in zip(names, scale):
        folder = output / "galaxies" / name
        with (
            file_lock(),
            xr.open_dataset(folder / "posterior.nc", group="posterior") as posterior,
        ):
            if label not in posterior:
                raise ValueError(f"{name}: no {label!r} in its posterior")
            values = np.asarray(posterior[label].values, dtype=float).ravel()
        raw = tomllib.loads((folder / "config.toml").read_text())
        prior = interim_prior(raw, label)
        draws.append(values * factor)
        log_interim.append(logp(prior, values) - np.log(factor))
        mean, sd = interim_moments(prior)
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


#: Kernel width of each galaxy's draws as a fraction of their standard deviation.
SMOOTHING = 0.5


def kde_bandwidth(samples, fraction: float = SMOOTHING) -> np.ndarray:
    """The kernel width of each galaxy's draws, ``(N,)``: ``fraction`` of their standard
    deviation (units of the draws)."""
    return fraction * np.asarray(samples, dtype=float).std(axis=1)


def shrink_draws(samples, bandwidth) -> np.ndarray:
    """Draws pulled towards their mean by ``sqrt(1 - h^2 / var)``, so that a kernel density of
    width ``h`` over them has the draws' own mean and variance (West 1993)."""
    samples = np.asarray(samples, dtype=float)
    mean = samples.mean(axis=1, keepdims=True)
    var = samples.var(axis=1, keepdims=True)
    h2 = np.asarray(bandwidth, dtype=float)[:, None] ** 2
    factor = np.sqrt(np.clip(1.0 - h2 / np.where(var > 0, var, np.inf), 0.0, 1.0))
    return mean + factor * (samples - mean)


def _fixed_r_eff(folder: Path, label: str) -> float:
    """The fixed effective radius (arcsec) of the component whose gradient is ``label``."""
    raw = tomllib.loads((folder / "config.toml").read_text())
    components = raw.get("components", [])
    components = [components] if isinstance(components, dict) else list(components)
    checked = [check_component(c, i, len(components)) for i, c in enumerate(components)]
    sources = dict(gradient_labels(SimpleNamespace(components=checked)))
    if label not in sources:
        raise ValueError(f"{folder.name}: {label!r} is not a gradient (per-R_e needs one)")
    source = sources[label]
    if source is None or source[0] != "fixed":
        raise ValueError(
            f"{folder.name}: the r_eff of {label!r}'s light profile is not a fixed number, so "
            "its per-R_e gradient has no fixed scale; use the per-arcsec or per-kpc relation"
        )
    return float(source[1])


def importance_log_likelihood(samples, log_interim, mean, scatter, *, bandwidth=None):
    """The importance-sampled log-likelihood of a Gaussian population (Hogg et al. 2010).

    ``sum_n log[(1/K) sum_k Normal(y_nk | mean_n, sqrt(scatter_n^2 + h_n^2)) / p_0(y_nk)]``.

    With ``bandwidth`` ``h_n`` each galaxy's draws stand for a kernel density estimate of its
    posterior (Gaussian kernels of width ``h_n``, :func:`kde_bandwidth`, over the draws pulled
    in by :func:`shrink_draws` so the estimate keeps their variance) instead of K points: the
    likelihood then stays smooth as the intrinsic scatter goes to zero. Without it, it becomes
    a sum of ever narrower spikes at the draws, which NUTS cannot sample (divergences, R-hat
    far above 1 for samples without intrinsic scatter).

    Parameters
    ----------
    samples : array (N, K)
        Posterior draws of each galaxy's parameter (units of ``y``).
    log_interim : array (N, K)
        Natural log of the interim prior density at each draw (per unit of ``y``).
    mean : array (N,) or tensor
        The relation's mean at each galaxy (units of ``y``).
    scatter : float, array (N,) or tensor
        Intrinsic scatter (units of ``y``, >= 0; > 0 without a bandwidth).
    bandwidth : array (N,), optional
        Kernel width of each galaxy's draws (units of ``y``).

    Returns
    -------
    float, or a PyTensor scalar when ``mean`` or ``scatter`` is a tensor.
    """
    samples = np.asarray(samples, dtype=float)
    log_interim = np.asarray(log_interim, dtype=float)
    if samples.ndim != 2 or samples.shape != log_interim.shape:
        raise ValueError(
            f"samples and log_interim must both be (N galaxies, K draws); got {samples.shape} "
            f"and {log_interim.shape}"
        )
    k = samples.shape[1]
    if bandwidth is not None:
        samples = shrink_draws(samples, bandwidth)
    if isinstance(mean, Variable) or isinstance(scatter, Variable):
        mu = pt.as_tensor_variable(mean)
        sigma = pt.as_tensor_variable(scatter)
        mu = mu[:, None] if mu.ndim == 1 else mu
        sigma = sigma[:, None] if sigma.ndim == 1 else sigma
        if bandwidth is not None:
            sigma = pt.sqrt(sigma**2 + np.asarray(bandwidth, dtype=float)[:, None] ** 2)
        z = (samples - mu) / sigma
        terms = -0.5 * z**2 - pt.log(sigma) - 0.5 * np.log(2 * np.pi) - log_interim
        return pt.sum(pt.logsumexp(terms, axis=1)) - samples.shape[0] * np.log(k)
    mu = np.asarray(mean, dtype=float)
    sigma = np.asarray(scatter, dtype=float)
    mu = mu[:, None] if mu.ndim == 1 else mu
    sigma = sigma[:, None] if sigma.ndim == 1 else sigma
    if bandwidth is not None:
        sigma = np.sqrt(sigma**2 + np.asarray(bandwidth, dtype=float)[:, None] ** 2)
    z = (samples - mu) / sigma
    terms = -0.5 * z**2 - np.log(sigma) - 0.5 * np.log(2 * np.pi) - log_interim
    return float(np.sum(logsumexp(terms, axis=1)) - samples.shape[0] * np.log(k))


def importance_ess(samples, log_interim, mean, scatter, *, bandwidth=None) -> np.ndarray:
    """Effective number of draws of each galaxy's importance weights, ``(sum w)^2 / sum w^2``."""
    mu = np.asarray(mean, dtype=float)[:, None]
    width = np.asarray(scatter, dtype=float)
    if bandwidth is not None:
        samples = shrink_draws(samples, bandwidth)
        width = np.sqrt(width**2 + np.asarray(bandwidth, dtype=float)[:, None] ** 2)
    log_w = -0.5 * ((samples - mu) / width) ** 2 - log_interim
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return w.sum(axis=1) ** 2 / (w**2).sum(axis=1)
