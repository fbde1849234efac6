"""The resolution limit of gradient fits (Metha et al. 2024, Figure 4), with many realisations.

Nyquist-sampled data (pixel = FWHM / 2 = 0.2 arcsec) of a face-on exponential disc with a
linear metallicity gradient of -0.2 dex per R_e, for R_e = 1, 1.4, 2, 3, 5 and 8 pixels
(FWHM / R_e = 2 ... 0.25), the field reaching 4 R_e from the centre. For every setup, all noise
realisations are fitted at once, as ONE batched PyMC model: each realisation is a "galaxy" with
its own central value and gradient (``dims="galaxy"``). As in the paper, the light profile and
the PSF are fixed to the truth and the tracer is averaged linearly (``tracer_scale="linear"``,
the paper's lenstronomy fits averaged the dex values themselves), so :func:`pymc_tracers.observe`
takes its exact linear fast path. The weighted least-squares gradient that ignores the PSF
(:func:`pymc_tracers.baselines.wls_gradient`) is fitted to each realisation for comparison.

Run it::

    python scripts/resolution_limit.py                      # 6 setups x 100 realisations
    python scripts/resolution_limit.py --n-realisations 8 --setups 2 5 --json out.json

or import it (``notebooks/resolution_limit.ipynb`` does)::

    from resolution_limit import run_setup, summarise, plot_figure4

Gradients are reported in dex per R_e (the truth is -0.2 dex/R_e in every setup).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

#: The paper's setups: R_e in data pixels (FWHM / R_e = 2 / R_e[pixels] at Nyquist sampling).
R_EFF_PIXELS = (1.0, 1.4, 2.0, 3.0, 5.0, 8.0)
#: PSF FWHM in arcsec; the pixel is FWHM / 2.
FWHM = 0.4
#: Seeds of consecutive setups are this far apart, so that no two realisations share noise.
SEED_STRIDE = 10_000
#: Posterior percentiles kept for every realisation.
QUANTILES = (2.5, 16.0, 50.0, 84.0, 97.5)

logger = logging.getLogger("pymc_tracers")


@dataclass
class SetupResult:
    """Per-realisation results of one setup; gradients in dex per R_e.

    Attributes
    ----------
    r_eff_pixels, fwhm_over_r_eff : float
        Effective radius in pixels and FWHM / R_e.
    n_realisations, shape : int, tuple
        Number of realisations and the stamp shape (ny, nx).
    true_gradient : float
        -0.2 dex/R_e.
    posterior : ndarray, shape (5, N)
        Posterior 2.5/16/50/84/97.5th percentiles of each realisation's gradient.
    posterior_sd : ndarray, shape (N,)
        Posterior standard deviation of each realisation's gradient.
    wls, wls_err : ndarray, shape (N,)
        WLS gradient and its formal 1-sigma error.
    path : str
        The forward model's rendering path (``"linear"`` expected).
    seconds : dict
        Wall time of ``simulate``, ``build`` (model and linear basis), ``sample`` (nutpie
        compile + tuning + draws, as measured by ``pmt.fit``), ``fit_total`` (the whole
        ``pmt.fit`` call), ``wls`` and ``total``; ``cpu`` is the process CPU time (all threads)
        of the whole setup.
    diagnostics : dict
        Worst R-hat, smallest bulk/tail ESS and divergences over all realisations.
    settings : dict
        Sampler settings and priors.
    exact_mean, exact_sd : ndarray, shape (N,)
        Closed-form posterior mean and sd of each gradient (:func:`exact_posterior`).
    expected_median : float
        The closed-form posterior median for the noiseless map: its average over noise
        realisations (the posterior mean is linear in the data), which differs from the truth
        only by the priors' pull.
    example_map, true_map, error_map : ndarray, shape (ny, nx)
        The first realisation's noisy tracer map, the noiseless map and the 1-sigma error
        map (dex), for display.
    """

    r_eff_pixels: float
    fwhm_over_r_eff: float
    n_realisations: int
    shape: tuple
    true_gradient: float
    posterior: np.ndarray
    posterior_sd: np.ndarray
    wls: np.ndarray
    wls_err: np.ndarray
    path: str
    seconds: dict
    diagnostics: dict
    settings: dict = field(default_factory=dict)
    exact_mean: np.ndarray | None = None
    exact_sd: np.ndarray | None = None
    expected_median: float | None = None
    example_map: np.ndarray | None = None
    true_map: np.ndarray | None = None
    error_map: np.ndarray | None = None

    @property
    def median(self) -> np.ndarray:
        """Posterior median gradient of each realisation (dex/R_e)."""
        return self.posterior[2]

    def covered(self, level: int = 68) -> np.ndarray:
        """Whether each realisation's central ``level``% interval contains the truth."""
        lo, hi = {68: (1, 3), 95: (0, 4)}[level]
        return (self.posterior[lo] <= self.true_gradient) & (
            self.true_gradient <= self.posterior[hi]
        )

    def to_json(self) -> dict:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, np.ndarray):
                out[key] = value.tolist()
        return out


def simulate_setup(r_eff_pixels, n_realisations, *, seed=0, supersampling=3):
    """The noisy maps of one setup: :func:`pymc_tracers.simulate.figure4_realisations`."""
    from pymc_tracers.simulate import figure4_realisations

    return figure4_realisations(
        r_eff_pixels,
        n_realisations,
        seed=seed,
        fwhm=FWHM,
        supersampling=supersampling,
        tracer_scale="linear",
    )


def smeared_radius(sim):
    """The observed map of a unit gradient: the light-weighted, PSF-smeared radius (arcsec).

    With linear averaging the model map is exactly ``central + gradient * B`` with this ``B``
    (shape (ny, nx)), computed here by the forward model's full path.
    """
    from pymc_tracers import Component, Exponential, LinearGradient, evaluate, observe

    t = sim.truth
    unit = Component(
        Exponential(x0=t["x0"], y0=t["y0"], r_eff=t["r_eff"], amplitude=t["amplitude"]),
        LinearGradient(x0=t["x0"], y0=t["y0"], central=0.0, gradient=1.0),
    )
    _, radius = evaluate(observe(unit, sim.grid, sim.psf, tracer_scale="linear", method="full"))
    return radius


def decorrelating_radius(sim, smeared=None):
    """Radius (arcsec) at which the tracer and the gradient are uncorrelated in the likelihood.

    Writing the model map ``central + gradient * B`` (:func:`smeared_radius`) as
    ``Z(r_p) + gradient * (B - r_p)`` with ``r_p = sum(B / sigma^2) / sum(1 / sigma^2)``
    makes the two coefficients exactly uncorrelated in the Gaussian likelihood.
    """
    smeared = smeared_radius(sim) if smeared is None else smeared
    weight = 1.0 / np.asarray(sim.tracer_error, dtype=float) ** 2
    return float(np.sum(weight * smeared) / np.sum(weight))


def exact_posterior(sim, *, central_prior=(8.0, 1.0), gradient_prior_sd=1.0, smeared=None):
    """Closed-form posterior of each realisation's gradient under :func:`build_model`.

    The model is linear in (pivot value, gradient) with Gaussian noise and Gaussian priors, so
    the posterior is Gaussian: precision ``X^T W X + prior precision`` with design
    ``X = [1, B - r_p]`` and ``W = 1 / sigma^2``. An independent check of the sampler.

    Returns
    -------
    mean, sd : ndarray, shape (N,)
        Posterior mean (= median) and standard deviation of the gradient in dex per R_e.
    """
    smeared = smeared_radius(sim) if smeared is None else smeared
    r_eff = sim.truth["r_eff"]
    pivot_radius = decorrelating_radius(sim, smeared)
    weight = 1.0 / np.asarray(sim.tracer_error, dtype=float).ravel() ** 2
    design = np.stack([np.ones(weight.size), smeared.ravel() - pivot_radius], axis=1)
    prior_precision = np.diag([1.0 / central_prior[1] ** 2, (r_eff / gradient_prior_sd) ** 2])
    precision = design.T @ (design * weight[:, None]) + prior_precision
    covariance = np.linalg.inv(precision)
    data = sim.tracer_map.reshape(sim.tracer_map.shape[0], -1)
    rhs = (data * weight) @ design + prior_precision @ np.array([central_prior[0], 0.0])
    mean = rhs @ covariance.T
    return mean[:, 1] * r_eff, np.sqrt(covariance[1, 1]) * r_eff * np.ones(len(mean))


def build_model(sim, *, central_prior=(8.0, 1.0), gradient_prior_sd=1.0, smeared=None):
    """One PyMC model for all realisations of a setup.

    Parameters
    ----------
    sim : SimulatedGalaxy
        From :func:`simulate_setup`: ``tracer_map`` of shape (N, ny, nx).
    central_prior : (float, float)
        Mean and standard deviation (dex) of the Normal prior on each realisation's tracer at
        the pivot radius (:func:`decorrelating_radius`).
    gradient_prior_sd : float
        Standard deviation of the zero-mean Normal prior on each gradient, in dex per R_e
        (converted to dex/arcsec for the model variable ``gradient``).
    smeared : ndarray, optional
        :func:`smeared_radius` of ``sim``, if already computed.

    Returns
    -------
    model : pm.Model
        Free variables ``pivot`` (dex, the tracer at the pivot radius) and ``gradient``
        (dex/arcsec), and the deterministic ``central`` (dex), all ``dims="galaxy"``.
    observation : Observation
        The forward model; ``observation.path`` is ``"linear"``.
    """
    import pymc as pm

    import pymc_tracers as pmt

    t = sim.truth
    n = sim.tracer_map.shape[0]
    pivot_radius = decorrelating_radius(sim, smeared)
    with pm.Model(coords={"galaxy": np.arange(n)}) as model:
        pm.Data("pivot_radius", pivot_radius)
        # sampled: the tracer at the pivot radius and the gradient, nearly uncorrelated
        # (central and gradient themselves are correlated at r ~ -0.9 in every realisation,
        # which would cost NUTS ~4x more leapfrog steps per draw)
        pivot = pm.Normal("pivot", central_prior[0], central_prior[1], dims="galaxy")
        gradient = pm.Normal("gradient", 0.0, gradient_prior_sd / t["r_eff"], dims="galaxy")
        central = pm.Deterministic("central", pivot - gradient * pivot_radius, dims="galaxy")
        # one light profile shared by all realisations; only the tracer is per galaxy
        disc = pmt.Component(
            pmt.Exponential(x0=t["x0"], y0=t["y0"], r_eff=t["r_eff"], amplitude=t["amplitude"]),
            pmt.LinearGradient(x0=t["x0"], y0=t["y0"], central=central, gradient=gradient),
        )
        observation = pmt.observe(disc, sim.grid, sim.psf, tracer_scale="linear")
        if observation.path != "linear":
            raise RuntimeError(
                f"expected the exact linear fast path, got path={observation.path!r}: the light "
                "and the PSF must be fixed and the tracer averaged linearly"
            )
        pmt.tracer_likelihood(
            "metallicity", observation.tracer_map, sim.tracer_map, sigma=sim.tracer_error
        )
    return model, observation


def run_setup(
    r_eff_pixels,
    *,
    n_realisations=100,
    seed=0,
    draws=300,
    tune=300,
    chains=2,
    supersampling=3,
    gradient_prior_sd=1.0,
    setup_index=None,
    backend="numba",
) -> SetupResult:
    """Simulate, fit (one batched model) and WLS-fit every realisation of one setup.

    ``seed`` is the base seed; setup ``setup_index`` (default: its position in
    :data:`R_EFF_PIXELS`) uses seeds ``seed + SEED_STRIDE * setup_index + k``.
    """
    import pymc_tracers as pmt
    from pymc_tracers.baselines import wls_gradient

    if setup_index is None:
        setup_index = R_EFF_PIXELS.index(r_eff_pixels) if r_eff_pixels in R_EFF_PIXELS else 0
    if n_realisations > SEED_STRIDE:
        raise ValueError(f"n_realisations must be <= {SEED_STRIDE}; got {n_realisations}")
    setup_seed = int(seed) + SEED_STRIDE * int(setup_index)
    seconds = {}
    started = time.perf_counter()
    cpu_started = time.process_time()

    sim = simulate_setup(r_eff_pixels, n_realisations, seed=setup_seed, supersampling=supersampling)
    seconds["simulate"] = time.perf_counter() - started
    r_eff = sim.truth["r_eff"]

    t = time.perf_counter()
    smeared = smeared_radius(sim)
    model, observation = build_model(sim, gradient_prior_sd=gradient_prior_sd, smeared=smeared)
    seconds["build"] = time.perf_counter() - t

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)  # diagnostics are reported
        result = pmt.fit(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=setup_seed,
            progressbar=False,
            log_likelihood=False,
            map_draws=5,
            grid=sim.grid,
            backend=backend,
        )
    seconds["fit_total"] = time.perf_counter() - t
    seconds["sample"] = float(result.config["sampling_seconds"])
    gradient = result.idata.posterior["gradient"].values.reshape(-1, n_realisations) * r_eff
    posterior = np.percentile(gradient, QUANTILES, axis=0)
    posterior_sd = gradient.std(axis=0)
    diagnostics = result.diagnostics()

    t = time.perf_counter()
    wls = [
        wls_gradient(sim.tracer_map[k], sim.tracer_error, sim.grid) for k in range(n_realisations)
    ]
    seconds["wls"] = time.perf_counter() - t
    exact_mean, exact_sd = exact_posterior(
        sim, gradient_prior_sd=gradient_prior_sd, smeared=smeared
    )
    # the posterior mean is linear in the data, so its average over noise realisations is its
    # value for the noiseless map: what remains of the truth after the priors' pull
    noiseless = dataclasses.replace(sim, tracer_map=sim.true_tracer_map[None])
    expected_median = exact_posterior(
        noiseless, gradient_prior_sd=gradient_prior_sd, smeared=smeared
    )[0][0]
    seconds["total"] = time.perf_counter() - started
    seconds["cpu"] = time.process_time() - cpu_started

    return SetupResult(
        r_eff_pixels=float(r_eff_pixels),
        fwhm_over_r_eff=float(FWHM / r_eff),
        n_realisations=int(n_realisations),
        shape=tuple(int(s) for s in sim.grid.shape),
        true_gradient=float(sim.truth["gradient"] * r_eff),
        posterior=posterior,
        posterior_sd=posterior_sd,
        wls=np.array([w.gradient for w in wls]) * r_eff,
        wls_err=np.array([w.gradient_err for w in wls]) * r_eff,
        path=observation.path,
        exact_mean=exact_mean,
        exact_sd=exact_sd,
        expected_median=float(expected_median),
        example_map=sim.tracer_map[0],
        true_map=sim.true_tracer_map,
        error_map=sim.tracer_error,
        seconds=seconds,
        diagnostics=diagnostics,
        settings={
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "sampler": "nutpie",
            "backend": result.config.get("backend"),
            "supersampling": supersampling,
            "seed": setup_seed,
            "central_prior": "Normal(8, 1) dex",
            "gradient_prior": f"Normal(0, {gradient_prior_sd}) dex/R_e",
            "tracer_scale": "linear",
        },
    )


def closed_form_study(
    r_eff_pixels,
    n_realisations=2000,
    *,
    seed=1_000_000,
    supersampling=3,
    gradient_prior_sd=1.0,
    setup_index=None,
):
    """The forward model's posterior for many more realisations, in closed form (no sampling).

    The batched model is linear with Gaussian noise and priors, so each realisation's
    posterior is :func:`exact_posterior`. This repeats a setup with ``n_realisations`` fresh
    noise realisations (seeds from ``seed + SEED_STRIDE * setup_index``, disjoint from the
    sampled study's) to measure biases and coverage an order of magnitude more precisely than
    100 realisations allow. WLS is fitted to the same maps.

    Returns
    -------
    dict
        ``fwhm_over_r_eff``, ``n``, ``fm_bias`` and ``fm_bias_err`` (mean posterior median
        minus truth, dex/R_e), ``cover68``/``cover95`` with binomial errors, ``wls_bias`` and
        ``wls_bias_err``, and ``seconds``.
    """
    from pymc_tracers.baselines import wls_gradient

    if setup_index is None:
        setup_index = R_EFF_PIXELS.index(r_eff_pixels) if r_eff_pixels in R_EFF_PIXELS else 0
    started = time.perf_counter()
    sim = simulate_setup(
        r_eff_pixels,
        n_realisations,
        seed=int(seed) + SEED_STRIDE * int(setup_index),
        supersampling=supersampling,
    )
    r_eff = sim.truth["r_eff"]
    truth = sim.truth["gradient"] * r_eff
    mean, sd = exact_posterior(sim, gradient_prior_sd=gradient_prior_sd)
    z68, z95 = 0.9944578832097535, 1.959963984540054  # 16-84% and 2.5-97.5% of a Gaussian
    c68 = float(np.mean(np.abs(mean - truth) <= z68 * sd))
    c95 = float(np.mean(np.abs(mean - truth) <= z95 * sd))
    wls = (
        np.array([wls_gradient(m, sim.tracer_error, sim.grid).gradient for m in sim.tracer_map])
        * r_eff
    )
    n = int(n_realisations)
    return {
        "FWHM/R_e": FWHM / r_eff,
        "n": n,
        "fm_bias": float(mean.mean() - truth),
        "fm_bias_err": float(mean.std(ddof=1) / np.sqrt(n)),
        "fm_sd": float(sd[0]),
        "cover68": c68,
        "cover68_err": binomial_error(c68, n),
        "cover95": c95,
        "cover95_err": binomial_error(c95, n),
        "wls_bias": float(wls.mean() - truth),
        "wls_bias_err": float(wls.std(ddof=1) / np.sqrt(n)),
        "seconds": time.perf_counter() - started,
    }


def binomial_error(fraction, n):
    """Standard error ``sqrt(p (1 - p) / n)`` of a fraction ``p`` measured from ``n`` trials."""
    return float(np.sqrt(fraction * (1.0 - fraction) / n))


def summarise(results):
    """One row per setup: recovered gradients, biases, coverage and wall times.

    Columns (gradients in dex/R_e):

    - ``fm_p16/fm_p50/fm_p84``, ``wls_p16/50/84``: percentiles across realisations of the
      forward model's posterior medians and of the WLS estimates;
    - ``fm_bias``, ``wls_bias``: mean offsets from the truth, with standard errors
      ``*_bias_err``; ``fm_expected_bias``: the offset the priors alone cause
      (``expected_median - truth``);
    - ``fm_sd``: median posterior standard deviation; ``fm_pull_mean``, ``fm_pull_sd``: mean
      and spread of ``(median - truth) / posterior sd`` (0 and 1 for unbiased, honest errors);
    - ``cover68``, ``cover95``: fractions of 68%/95% intervals that contain the truth, with
      binomial errors ``cover68_err``, ``cover95_err``; ``wls_cover68``: the same for WLS's
      +-1 formal-sigma intervals;
    - ``mcmc_vs_exact``: the largest ``|sampled median - exact mean| / exact sd`` and
      ``sd_vs_exact`` the largest relative error of the sampled posterior sd, against
      :func:`exact_posterior`;
    - sampler diagnostics, the rendering path and the wall/CPU seconds.
    """
    import pandas as pd

    rows = []
    for r in results:
        n = r.n_realisations
        fm, wls, truth = r.median, r.wls, r.true_gradient
        pull = (fm - truth) / r.posterior_sd
        c68, c95 = float(r.covered(68).mean()), float(r.covered(95).mean())
        fm_p = np.percentile(fm, (16, 50, 84))
        wls_p = np.percentile(wls, (16, 50, 84))
        exact = r.exact_mean is not None
        row = {
            "R_e [pix]": r.r_eff_pixels,
            "FWHM/R_e": r.fwhm_over_r_eff,
            "stamp": f"{r.shape[0]}x{r.shape[1]}",
            "N": n,
            "truth": truth,
            "fm_p16": fm_p[0],
            "fm_p50": fm_p[1],
            "fm_p84": fm_p[2],
            "fm_bias": float(fm.mean() - truth),
            "fm_bias_err": float(fm.std(ddof=1) / np.sqrt(n)),
            "fm_expected_bias": np.nan if r.expected_median is None else r.expected_median - truth,
            "fm_sd": float(np.median(r.posterior_sd)),
            "fm_pull_mean": float(pull.mean()),
            "fm_pull_sd": float(pull.std(ddof=1)),
            "wls_p16": wls_p[0],
            "wls_p50": wls_p[1],
            "wls_p84": wls_p[2],
            "wls_bias": float(wls.mean() - truth),
            "wls_bias_err": float(wls.std(ddof=1) / np.sqrt(n)),
            "cover68": c68,
            "cover68_err": binomial_error(c68, n),
            "cover95": c95,
            "cover95_err": binomial_error(c95, n),
            "wls_cover68": float(np.mean(np.abs(wls - truth) <= r.wls_err)),
            "mcmc_vs_exact": (
                float(np.max(np.abs(fm - r.exact_mean) / r.exact_sd)) if exact else np.nan
            ),
            "sd_vs_exact": (
                float(np.max(np.abs(r.posterior_sd / r.exact_sd - 1.0))) if exact else np.nan
            ),
            "r_hat_max": r.diagnostics["r_hat_max"],
            "ess_bulk_min": r.diagnostics["ess_bulk_min"],
            "divergences": r.diagnostics["divergences"],
            "path": r.path,
            "seconds_sample": r.seconds["sample"],
            "seconds_total": r.seconds["total"],
            "seconds_cpu": r.seconds["cpu"],
        }
        rows.append(row)
    return pd.DataFrame(rows).set_index("R_e [pix]")


def plot_figure4(results, ax=None):
    """Recovered gradient (dex/R_e) against FWHM / R_e, like the paper's Figure 4.

    Markers are the medians across realisations, error bars their 16th-84th percentiles, for
    the forward model's posterior medians and for WLS; the dashed line is the truth. The grey
    band shows the median posterior 68% interval around the truth (the forward model's stated
    uncertainty, which the scatter of its medians should match).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    x = np.array([r.fwhm_over_r_eff for r in results])
    order = np.argsort(x)
    x = x[order]
    results = [results[i] for i in order]
    truth = results[0].true_gradient
    dx = 0.025
    for method, values, style in [
        (
            "forward model (posterior medians)",
            [r.median for r in results],
            {"fmt": "o", "color": "C0"},
        ),
        ("WLS, no PSF", [r.wls for r in results], {"fmt": "s", "color": "C3"}),
    ]:
        p16, p50, p84 = np.percentile(np.array(values), (16, 50, 84), axis=1)
        shift = 1 - dx if style["fmt"] == "o" else 1 + dx
        ax.errorbar(
            x * shift,
            p50,
            yerr=[p50 - p16, p84 - p50],
            capsize=3,
            elinewidth=2,
            label=f"{method}: 16/50/84% over realisations",
            **style,
        )
    half_width = np.array([np.median(r.posterior[3] - r.posterior[1]) / 2 for r in results])
    ax.fill_between(
        x,
        truth - half_width,
        truth + half_width,
        color="C0",
        alpha=0.15,
        label="truth ± median posterior 68% half-width",
    )
    ax.axhline(truth, color="k", ls="--", lw=1.2, label="truth")
    ax.set_xscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{v:.2g}" for v in x])
    ax.minorticks_off()
    ax.set_xlabel("FWHM / R_e   (pixel = FWHM / 2)")
    ax.set_ylabel("recovered gradient [dex / R_e]")
    ax.legend(fontsize="small", loc="lower left")
    return ax


def run_all(r_eff_pixels=R_EFF_PIXELS, *, verbose=True, **kwargs):
    """:func:`run_setup` for each setup, in order; prints one line per setup."""
    results = []
    for index, r in enumerate(r_eff_pixels):
        setup_index = R_EFF_PIXELS.index(r) if r in R_EFF_PIXELS else index
        result = run_setup(r, setup_index=setup_index, **kwargs)
        if verbose:
            s = result.seconds
            print(
                f"R_e = {r:g} px (FWHM/R_e = {result.fwhm_over_r_eff:.2f}, {result.shape[0]}^2 "
                f"pixels x {result.n_realisations}): path={result.path}, "
                f"{s['total']:.1f} s wall, {s['cpu']:.1f} s CPU (simulate {s['simulate']:.1f}, "
                f"build {s['build']:.1f}, "
                f"sample {s['sample']:.1f}, WLS {s['wls']:.2f}); "
                f"cover68 = {result.covered(68).mean():.2f}",
                flush=True,
            )
        results.append(result)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--setups",
        type=float,
        nargs="+",
        default=list(R_EFF_PIXELS),
        help="R_e in pixels (default: the paper's six)",
    )
    parser.add_argument("--n-realisations", type=int, default=100)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--supersampling", type=int, default=3)
    parser.add_argument("--backend", default="numba", choices=("numba", "jax", "auto"))
    parser.add_argument("--json", help="write the per-realisation results here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run_all(
        args.setups,
        n_realisations=args.n_realisations,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
        supersampling=args.supersampling,
        backend=args.backend,
    )
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.precision", 3):
        print(summarise(results))
    print(f"total wall time {time.perf_counter() - started:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.to_json() for r in results], f)
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
