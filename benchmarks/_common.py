"""Shared machinery of the side-by-side benchmarks (``fig3.py``, ``joint.py``, ``clumps.py``).

Each benchmark fits the SAME simulated data, in ONE process, with

* **ours**: ``pymc_tracers`` (``pmt.observe`` + ``pmt.tracer_likelihood`` [+
  ``pmt.image_likelihood``]) sampled with NUTS by nutpie. Timed cold, in three parts: building
  the PyMC model (this includes ``pmt.observe``'s precomputation), ``nutpie.compile_pymc_model``
  (numba backend, the default) and ``nutpie.sample`` (diagonal mass matrix, nutpie's default;
  ``--low-rank-mass-matrix`` switches to the low-rank one that ``pmt.fit`` uses).
  ``ours_seconds`` is the sum of all three, ``ours_compile_seconds`` the first two. ESS is
  ArviZ's bulk ESS of the nutpie trace. If the smallest bulk ESS is below 400 the sampler is run
  again (same compiled model) with proportionally more draws, and the second run's sampling time
  is the one reported.
* **lenstronomy**: its ``TracerModelSource`` (lenstronomy's own forward model, set up exactly as
  in ``tests/test_lenstronomy.py``: LINEAR tracer averaging, supersampling as ours, the PIXEL PSF
  kernel ``psf.kernel(grid.subpixel_scale)`` with ``supersampling_kernel_size`` covering the whole
  kernel and ``supersampling_convolution=True``), a log-likelihood
  ``lnL = -0.5 sum(((model - data) / sigma)**2)`` over the same pixels and with the same error
  maps as ours, hard parameter bounds (lenstronomy's own ``-1e18`` penalty outside them, i.e. a
  uniform prior; ours uses the same uniform priors), and lenstronomy's own samplers as the
  paper ran them: ``lenstronomy.Sampling.sampler.Sampler.pso`` (its ``ParticleSwarmOptimizer``,
  100 particles x 100 iterations) then ``emcee.EnsembleSampler`` (100 walkers, 50 burn-in + 200
  steps) started from ``sampling_util.sample_ball_truncated`` around the PSO best fit, exactly as
  ``Sampler.mcmc_emcee`` does (called directly only so that burn-in and sampling are timed
  separately).

ESS of lenstronomy: ArviZ bulk ESS of the post-burn-in emcee chain, treating each walker as a
chain (``az.ess`` on an array of shape ``(walkers, steps)``), minimum over parameters. Walkers of
an affine-invariant ensemble are not independent chains, so this is an approximation; emcee's own
integrated-autocorrelation estimate (``walkers * steps / tau``, with ``quiet=True`` because 200
steps are fewer than the 50 tau emcee asks for) is reported next to it.

Time to ESS 400 (the ``speedup`` numerator), with ``t_pso``, ``t_burn`` and ``t_run`` the
measured PSO, emcee burn-in and emcee post-burn-in seconds and ``ess`` the minimum bulk ESS::

    t_400 = t_pso + t_burn + t_run * max(1, 400 / ess)

i.e. the post-burn-in emcee part is extrapolated linearly in the number of steps when its ESS
falls short of 400 (never scaled down when it exceeds 400). If the lenstronomy budget was reduced
to keep the run short (``--max-lenstronomy-seconds``; only ``joint.py`` sets a default, 1800 s:
PSO iterations and emcee burn-in/steps are scaled down by the same factor, particles and walkers
kept), every part is first scaled back up to the paper's budget linearly in the number of
likelihood evaluations, the post-burn-in ESS is scaled up by the same factor as the post-burn-in
steps, and the JSON says so (``lenstronomy_extrapolated``, ``lenstronomy_budget_run``).

``speedup = t_400(lenstronomy) / ours_seconds`` (ours includes model building and compilation).

``--quick`` shrinks both runs ~10x (PSO 30 particles x 30 iterations, emcee 20 walkers x
(10 + 40) steps; NUTS 2 x (100 tune + 100 draws)) for smoke tests; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

logging.getLogger("emcee").setLevel(logging.ERROR)  # tau warnings: reported in the JSON instead
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import arviz as az
import emcee
import nutpie
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF as LensPSF
from lenstronomy.ImSim.tracer_model import TracerModelSource
from lenstronomy.LensModel.Profiles.sersic_utils import SersicUtil
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Sampling.sampler import Sampler
from lenstronomy.Util import sampling_util
from scipy import special

TARGET_ESS = 400
_LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]

#: the paper's lenstronomy budget (Metha et al. 2024 tutorial)
PAPER_BUDGET = dict(n_particles=100, n_iterations=100, n_walkers=100, n_burn=50, n_run=200)
QUICK_BUDGET = dict(n_particles=30, n_iterations=30, n_walkers=20, n_burn=10, n_run=40)
OURS_FULL = dict(draws=1000, tune=1000, chains=2)
OURS_QUICK = dict(draws=100, tune=100, chains=2)

#: lenstronomy's log-likelihood outside the parameter bounds (LikelihoodModule.logL)
OUT_OF_BOUNDS = -(10.0**18)


# --------------------------------------------------------------------------- command line


def parse_args(description, extra=None, max_lenstronomy_seconds=None, draws=None, tune=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="shrink both runs ~10x (smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated data")
    parser.add_argument("--sampler-seed", type=int, default=1, help="seed of both samplers")
    parser.add_argument("--draws", type=int, default=None, help="NUTS draws per chain (ours)")
    parser.add_argument("--tune", type=int, default=None, help="NUTS tuning steps per chain (ours)")
    parser.add_argument(
        "--max-lenstronomy-seconds",
        type=float,
        default=max_lenstronomy_seconds,
        help="if the paper's PSO+emcee budget is predicted to take longer, run a proportionally "
        f"reduced budget and extrapolate its time linearly (default {max_lenstronomy_seconds})",
    )
    parser.add_argument(
        "--low-rank-mass-matrix",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ours: nutpie's low-rank modified mass matrix (pmt.fit's default); "
        "--no-low-rank-mass-matrix uses the diagonal one",
    )
    parser.add_argument(
        "--backend",
        choices=["jax", "numba"],
        default="jax",
        help="ours: nutpie's compilation backend (jax, pmt.fit's default, compiles in <1 s; "
        "numba takes ~6 s)",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    args.default_draws, args.default_tune = draws, tune
    return args


def budgets(args):
    lens = dict(QUICK_BUDGET if args.quick else PAPER_BUDGET)
    ours = dict(OURS_QUICK if args.quick else OURS_FULL)
    if not args.quick:
        if args.default_draws is not None:
            ours["draws"] = args.default_draws
        if args.default_tune is not None:
            ours["tune"] = args.default_tune
    ours["rerun"] = not args.quick
    ours["low_rank"] = bool(args.low_rank_mass_matrix)
    ours["backend"] = args.backend
    if args.draws is not None:
        ours["draws"] = args.draws
    if args.tune is not None:
        ours["tune"] = args.tune
    return lens, ours


def machine():
    return dict(
        cpu_count=os.cpu_count(),
        load_average_at_start=_LOAD_AT_START,
        load_average_at_end=[round(x, 2) for x in os.getloadavg()],
        python=platform.python_version(),
        platform=platform.platform(),
    )


# --------------------------------------------------------------------------- lenstronomy scene


def lenstronomy_data(grid):
    """lenstronomy ``ImageData`` with the same pixel centres as a ``pmt.PixelGrid``."""
    d = grid.pixel_scale
    ny, nx = grid.shape
    cx, cy = grid.center
    return ImageData(
        image_data=np.zeros((ny, nx)),
        transform_pix2angle=np.diag([d, d]),
        ra_at_xy_0=cx - (nx - 1) / 2 * d,
        dec_at_xy_0=cy - (ny - 1) / 2 * d,
    )


def lenstronomy_psf(psf, grid):
    """PIXEL PSF with our kernel on the sub-pixel grid; numerics convolving all of it there."""
    s = grid.supersampling
    kernel = psf.kernel(grid.subpixel_scale)
    lens_psf = LensPSF(
        psf_type="PIXEL", kernel_point_source=kernel, point_source_supersampling_factor=s
    )
    size = math.ceil(kernel.shape[0] / s)
    size += size % 2 == 0  # odd, >= the whole kernel in data pixels
    numerics = {
        "supersampling_factor": s,
        "supersampling_convolution": s > 1,
        "supersampling_kernel_size": size,
    }
    return lens_psf, numerics, kernel


def tracer_model_source(galaxy, light_types, tracer_types, partition):
    """lenstronomy's ``TracerModelSource`` for a simulated galaxy (LINEAR averaging)."""
    if galaxy.tracer_scale != "linear":
        raise ValueError("the benchmarks use tracer_scale='linear' (lenstronomy's fitting default)")
    data = lenstronomy_data(galaxy.grid)
    lens_psf, numerics, kernel = lenstronomy_psf(galaxy.psf, galaxy.grid)
    light = LightModel(light_types)
    tracer = LightModel(tracer_types)
    model = TracerModelSource(
        data,
        psf_class=lens_psf,
        source_model_class=light,
        tracer_source_class=tracer,
        kwargs_numerics=numerics,
        tracer_partition=partition,
        tracer_type="LINEAR",
    )
    conv = model.ImageNumerics.convolution_class
    if galaxy.grid.supersampling > 1:
        # the whole kernel reaches lenstronomy's supersampled convolution unchanged
        assert np.allclose(conv._high_res_conv._kernel, kernel, rtol=1e-12, atol=0)
        assert not np.any(conv._low_res_conv._kernel)
    return model, numerics


def sersic_to_lenstronomy(r_eff, amplitude, n=1.0):
    """pmt circular Sersic (exact b_n) -> lenstronomy ``SERSIC`` (``b'_n = 1.9992 n - 0.3271``).

    ``R_sersic = r_eff (b'/b)^n`` and ``amp = A exp(b - b')`` give the same profile pointwise.
    """
    b_lens = float(SersicUtil.b_n(n))
    b_exact = float(special.gammaincinv(2 * n, 0.5))
    return r_eff * (b_lens / b_exact) ** n, amplitude * math.exp(b_exact - b_lens)


def sersic_from_lenstronomy(R_sersic, amp, n=1.0):
    b_lens = float(SersicUtil.b_n(n))
    b_exact = float(special.gammaincinv(2 * n, 0.5))
    return R_sersic * (b_exact / b_lens) ** n, amp * math.exp(b_lens - b_exact)


def chi2_loglike(model_map, data, sigma, used):
    """``-0.5 sum(((model - data) / sigma)^2)`` over the used pixels."""
    r = (model_map[used] - data[used]) / sigma[used]
    return -0.5 * float(r @ r)


def used_pixels(data, sigma):
    """Pixels ``pmt.tracer_likelihood`` / ``image_likelihood`` keep (finite data and sigma)."""
    return np.isfinite(data) & np.isfinite(sigma)


# --------------------------------------------------------------------------- lenstronomy sampling


class _Param:
    def __init__(self, names):
        self.names = list(names)

    def num_param(self):
        return len(self.names), list(self.names)

    def args2kwargs(self, args):
        return dict(zip(self.names, np.asarray(args, float)))


class GenericLikelihood:
    """Duck-types lenstronomy's ``LikelihoodModule`` for ``lenstronomy.Sampling.sampler.Sampler``.

    ``loglike(args)`` is the data log-likelihood; outside ``[lower, upper]`` the value is
    lenstronomy's bound penalty ``-1e18`` (a uniform prior on the box).
    """

    def __init__(self, names, lower, upper, loglike, n_data):
        self.param = _Param(names)
        self.lower = np.asarray(lower, float)
        self.upper = np.asarray(upper, float)
        self._loglike = loglike
        self._n_data = int(n_data)
        self.n_calls = 0

    @property
    def param_limits(self):
        return self.lower, self.upper

    def logL(self, args):
        args = np.asarray(args, float)
        self.n_calls += 1
        if np.any(args < self.lower) or np.any(args > self.upper):
            return OUT_OF_BOUNDS
        return self._loglike(args)

    def negativelogL(self, args):
        return -self.logL(args)

    def effective_num_data_points(self, **kwargs):
        return self._n_data


def time_per_call(fn, x, repeats=5):
    fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return (time.perf_counter() - start) / repeats


def n_evaluations(budget):
    b = budget
    return (
        b["n_particles"] * (b["n_iterations"] + 1) + 1 + b["n_walkers"] * (b["n_burn"] + b["n_run"])
    )


def reduce_budget(budget, seconds_per_call, max_seconds):
    """Scale iterations and steps (not particles or walkers) so the run fits ``max_seconds``."""
    predicted = n_evaluations(budget) * seconds_per_call
    if max_seconds is None or predicted <= max_seconds:
        return dict(budget), 1.0, predicted
    f = max_seconds / predicted
    reduced = dict(budget)
    for key in ("n_iterations", "n_burn", "n_run"):
        reduced[key] = max(5, int(round(budget[key] * f)))
    return reduced, f, predicted


def run_lenstronomy(likelihood, *, budget, sigma_start, seed, max_seconds, quick):
    """PSO (lenstronomy's Sampler) then emcee, as ``Sampler.mcmc_emcee``; timed in parts."""
    paper = dict(budget)
    x_mid = 0.5 * (likelihood.lower + likelihood.upper)
    t_call = time_per_call(likelihood.logL, x_mid)
    run_budget, factor, predicted = (
        (dict(budget), 1.0, n_evaluations(budget) * t_call)
        if quick
        else reduce_budget(budget, t_call, max_seconds)
    )
    b = run_budget
    np.random.seed(seed)
    ndim = len(likelihood.lower)
    likelihood.n_calls = 0
    sampler = Sampler(likelihood)
    t0 = time.perf_counter()
    best, (logl_history, _, _) = sampler.pso(
        b["n_particles"],
        b["n_iterations"],
        lower_start=likelihood.lower,
        upper_start=likelihood.upper,
        verbose=False,
    )
    t1 = time.perf_counter()
    pso_calls = likelihood.n_calls
    best = np.asarray(best, float)
    initpos = sampling_util.sample_ball_truncated(
        best,
        np.asarray(sigma_start, float),
        likelihood.lower,
        likelihood.upper,
        size=b["n_walkers"],
    )
    ensemble = emcee.EnsembleSampler(b["n_walkers"], ndim, likelihood.logL)
    state = ensemble.run_mcmc(initpos, b["n_burn"], progress=False)
    t2 = time.perf_counter()
    ensemble.run_mcmc(state, b["n_run"], progress=False)
    t3 = time.perf_counter()
    chain = ensemble.get_chain(discard=b["n_burn"])  # (steps, walkers, ndim)
    per_walker = np.transpose(chain, (1, 0, 2))  # (walkers, steps, ndim)
    ess = np.array(
        [
            float(az.ess(np.ascontiguousarray(per_walker[:, :, i]), method="bulk"))
            for i in range(ndim)
        ]
    )
    tau = np.asarray(ensemble.get_autocorr_time(discard=b["n_burn"], quiet=True), float)
    ess_tau = b["n_walkers"] * b["n_run"] / tau
    rhat = np.array(
        [float(az.rhat(np.ascontiguousarray(per_walker[:, :, i]))) for i in range(ndim)]
    )

    t_pso, t_burn, t_run = t1 - t0, t2 - t1, t3 - t2
    measured = t_pso + t_burn + t_run
    # scale each part back to the paper's budget (linear in likelihood evaluations)
    s_pso = (paper["n_particles"] * (paper["n_iterations"] + 1)) / (
        b["n_particles"] * (b["n_iterations"] + 1)
    )
    s_burn = (paper["n_walkers"] * paper["n_burn"]) / (b["n_walkers"] * b["n_burn"])
    s_run = (paper["n_walkers"] * paper["n_run"]) / (b["n_walkers"] * b["n_run"])
    extrapolated = factor < 1.0
    if extrapolated:
        full_pso, full_burn, full_run = t_pso * s_pso, t_burn * s_burn, t_run * s_run
        # ESS grows linearly with the number of post-burn-in steps (same walkers)
        ess_full = ess * s_run
    else:
        full_pso, full_burn, full_run, ess_full = t_pso, t_burn, t_run, ess
    ess_min = float(ess_full.min())
    t400 = full_pso + full_burn + full_run * max(1.0, TARGET_ESS / ess_min)
    return dict(
        names=list(likelihood.param.names),
        samples=chain.reshape(-1, ndim),
        best=best,
        best_logl=float(logl_history[-1]) if logl_history else float("nan"),
        seconds_per_logl=t_call,
        budget_run=run_budget,
        budget_paper=paper,
        budget_factor=factor,
        predicted_paper_seconds=predicted,
        extrapolated=extrapolated,
        pso_calls=pso_calls,
        t_pso=t_pso,
        t_burn=t_burn,
        t_run=t_run,
        measured_seconds=measured,
        seconds=full_pso + full_burn + full_run,
        t_pso_full=full_pso,
        t_emcee_full=full_burn + full_run,
        ess_measured=ess,
        ess=ess_full,
        ess_min=ess_min,
        ess_tau=ess_tau,
        tau=tau,
        rhat_walkers=rhat,
        acceptance=float(np.mean(ensemble.acceptance_fraction)),
        seconds_to_ess400=t400,
    )


# --------------------------------------------------------------------------- ours


def run_ours(build_model, *, draws, tune, chains, seed, rerun=True, low_rank=False, backend="jax"):
    """Build, compile (nutpie, ``backend``) and sample; rerun longer if ESS_bulk < 400.

    With ``rerun=False`` (``--quick``) a short ESS is reported as it is.
    """
    t0 = time.perf_counter()
    model = build_model()
    t1 = time.perf_counter()
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    compiled = nutpie.compile_pymc_model(
        model, backend=backend, gradient_backend="jax" if backend == "jax" else "pytensor"
    )
    t2 = time.perf_counter()
    names = [rv.name for rv in model.free_RVs]

    def sample(n_draws):
        start = time.perf_counter()
        trace = nutpie.sample(
            compiled,
            draws=n_draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=False,
            low_rank_modified_mass_matrix=low_rank,
        )
        return trace, time.perf_counter() - start

    trace, t_sample = sample(draws)
    ess = az.ess(trace, var_names=names, method="bulk")
    ess_min = min(float(ess[n].values) for n in names)
    first = dict(draws=draws, sample_seconds=t_sample, ess_bulk_min=ess_min)
    reran = None
    if rerun and ess_min < TARGET_ESS:
        draws = math.ceil(draws * 1.25 * TARGET_ESS / max(ess_min, 1.0))
        trace, t_sample = sample(draws)
        ess = az.ess(trace, var_names=names, method="bulk")
        ess_min = min(float(ess[n].values) for n in names)
        reran = first
    rhat = az.rhat(trace, var_names=names)
    stats = trace.sample_stats
    n_steps = stats["n_steps"].values if "n_steps" in stats else np.array([np.nan])
    warm = getattr(trace, "warmup_sample_stats", None)
    n_steps_tune = (
        warm["n_steps"].values if warm is not None and "n_steps" in warm else np.array([np.nan])
    )
    return dict(
        model=model,
        trace=trace,
        names=names,
        build_seconds=t1 - t0,
        compile_seconds=t2 - t1,
        sample_seconds=t_sample,
        seconds=(t1 - t0) + (t2 - t1) + t_sample,
        draws=draws,
        tune=tune,
        chains=chains,
        ess={n: float(ess[n].values) for n in names},
        ess_min=ess_min,
        rhat_max=max(float(rhat[n].values) for n in names),
        divergences=int(stats["diverging"].values.sum()) if "diverging" in stats else 0,
        mean_leapfrog_draws=float(np.mean(n_steps)),
        mean_leapfrog_tune=float(np.mean(n_steps_tune)),
        gradient_evaluations=int(np.sum(n_steps) + np.sum(n_steps_tune)),
        first_run=reran,
        low_rank_mass_matrix=low_rank,
        backend=backend,
    )


def ours_samples(result, name):
    return np.asarray(result["trace"].posterior[name].values).ravel()


# --------------------------------------------------------------------------- reporting


def interval(samples):
    lo, med, hi = np.percentile(samples, [16, 50, 84])
    return dict(
        median=float(med), lo=float(lo), hi=float(hi), minus=float(med - lo), plus=float(hi - med)
    )


def compare_parameters(names, truth, ours, lens):
    """Per parameter: truth, both intervals, and whether the medians agree within 2 sigma."""
    rows = {}
    for name in names:
        a, b = interval(ours[name]), interval(lens[name])
        sa, sb = 0.5 * (a["hi"] - a["lo"]), 0.5 * (b["hi"] - b["lo"])
        delta = a["median"] - b["median"]
        rows[name] = dict(
            truth=truth.get(name),
            ours=a,
            lenstronomy=b,
            delta_median=float(delta),
            delta_over_sigma=float(abs(delta) / math.hypot(sa, sb))
            if math.hypot(sa, sb) > 0
            else float("inf"),
            agree=bool(abs(delta) < 2.0 * math.hypot(sa, sb)),
        )
    return rows


def _fmt(v, digits):
    return f"{v:.{digits}f}"


def print_table(title, rows, ours, lens, *, digits=4):
    print()
    print(title)
    print("=" * len(title))
    head = f"{'parameter':<12} {'truth':>9} {'ours median (68%)':>30} {'lenstronomy median (68%)':>30} {'|d|/sig':>8} {'agree':>6}"
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        o, l_ = r["ours"], r["lenstronomy"]
        truth = "" if r["truth"] is None else _fmt(r["truth"], digits)
        os_ = f"{_fmt(o['median'], digits)} -{_fmt(o['minus'], digits)} +{_fmt(o['plus'], digits)}"
        ls_ = (
            f"{_fmt(l_['median'], digits)} -{_fmt(l_['minus'], digits)} +{_fmt(l_['plus'], digits)}"
        )
        print(
            f"{name:<12} {truth:>9} {os_:>30} {ls_:>30} {r['delta_over_sigma']:8.2f} {'yes' if r['agree'] else 'NO':>6}"
        )
    print()
    print(
        "timing (seconds)                 ours (pymc_tracers + nutpie)   lenstronomy (PSO + emcee)"
    )
    print(
        f"  set-up / compile               {ours['build_seconds'] + ours['compile_seconds']:10.1f}"
        f"  (build {ours['build_seconds']:.1f} + nutpie compile {ours['compile_seconds']:.1f})"
    )
    print(f"  optimise (PSO)                 {'-':>10}   {lens['t_pso_full']:10.1f}")
    print(
        f"  sample                         {ours['sample_seconds']:10.1f}   {lens['t_emcee_full']:10.1f}"
        f"   (ours {ours['chains']}x({ours['tune']}+{ours['draws']}) NUTS;"
        f" emcee {lens['budget_paper']['n_walkers']}x({lens['budget_paper']['n_burn']}+{lens['budget_paper']['n_run']}))"
    )
    print(f"  total                          {ours['seconds']:10.1f}   {lens['seconds']:10.1f}")
    print(
        f"  min bulk ESS                   {ours['ess_min']:10.0f}   {lens['ess_min']:10.0f}"
        f"   (emcee tau-based: {lens['ess_tau'].min():.0f})"
    )
    print(
        f"  time to ESS {TARGET_ESS}                {ours['seconds']:10.1f}   {lens['seconds_to_ess400']:10.1f}"
    )
    print(f"  speedup (lenstronomy / ours)   {lens['seconds_to_ess400'] / ours['seconds']:10.1f}")
    print(
        f"  one lenstronomy logL           {1e3 * lens['seconds_per_logl']:10.2f} ms;"
        f" ours: {ours['gradient_evaluations']} gradient evaluations"
        f" (mean leapfrog steps/draw: tune {ours['mean_leapfrog_tune']:.1f}, draws {ours['mean_leapfrog_draws']:.1f})"
    )
    if lens["extrapolated"]:
        b = lens["budget_run"]
        print(
            f"  NOTE: lenstronomy ran a reduced budget (PSO {b['n_particles']}x{b['n_iterations']},"
            f" emcee {b['n_walkers']}x({b['n_burn']}+{b['n_run']}), {lens['measured_seconds']:.0f} s measured);"
            " its times and ESS are extrapolated linearly to the paper's budget"
        )
    if ours["first_run"] is not None:
        print(
            f"  NOTE: ours was rerun with more draws: first run ESS {ours['first_run']['ess_bulk_min']:.0f}"
            f" with {ours['first_run']['draws']} draws"
        )


def final_json(benchmark, args, rows, ours, lens, extra=None):
    out = dict(
        benchmark=benchmark,
        quick=bool(args.quick),
        ours_seconds=ours["seconds"],
        ours_compile_seconds=ours["build_seconds"] + ours["compile_seconds"],
        ours_build_seconds=ours["build_seconds"],
        ours_nutpie_compile_seconds=ours["compile_seconds"],
        ours_sample_seconds=ours["sample_seconds"],
        ours_ess_bulk_min=ours["ess_min"],
        ours_ess_bulk=ours["ess"],
        ours_r_hat_max=ours["rhat_max"],
        ours_divergences=ours["divergences"],
        ours_draws=ours["draws"],
        ours_tune=ours["tune"],
        ours_chains=ours["chains"],
        ours_gradient_evaluations=ours["gradient_evaluations"],
        ours_mean_leapfrog_tune=ours["mean_leapfrog_tune"],
        ours_mean_leapfrog_draws=ours["mean_leapfrog_draws"],
        ours_first_run=ours["first_run"],
        ours_low_rank_mass_matrix=ours["low_rank_mass_matrix"],
        ours_backend=ours.get("backend"),
        lenstronomy_seconds=lens["seconds"],
        lenstronomy_pso_seconds=lens["t_pso_full"],
        lenstronomy_emcee_seconds=lens["t_emcee_full"],
        lenstronomy_measured_seconds=lens["measured_seconds"],
        lenstronomy_ess_min=lens["ess_min"],
        lenstronomy_ess=dict(zip(lens["names"], lens["ess"].tolist())),
        lenstronomy_ess_emcee_tau_min=float(lens["ess_tau"].min()),
        lenstronomy_acceptance=lens["acceptance"],
        lenstronomy_seconds_per_logl=lens["seconds_per_logl"],
        lenstronomy_seconds_to_ess400=lens["seconds_to_ess400"],
        lenstronomy_budget_run=lens["budget_run"],
        lenstronomy_budget_paper=lens["budget_paper"],
        lenstronomy_extrapolated=lens["extrapolated"],
        speedup=lens["seconds_to_ess400"] / ours["seconds"],
        speedup_excluding_compile=lens["seconds_to_ess400"] / ours["sample_seconds"],
        speedup_formula="(t_pso + t_burn + t_run*max(1, 400/ess_min)) / (build + compile + sample)",
        all_agree=all(r["agree"] for r in rows.values()),
        parameters=rows,
        machine=machine(),
    )
    if extra:
        out.update(extra)
    print(json.dumps(out, default=_jsonable))


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return str(x)
