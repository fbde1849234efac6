"""Speed and recovery, a lensed Figure-3-like galaxy: pymc_tracers + nutpie versus lenstronomy
PSO + emcee through a fixed lens, then a joint lens + tracer fit (ours).

Run: ``python benchmarks/lensing.py`` (``--quick`` for a ~10x smaller smoke test)

Data (both codes fit the same map with the same errors): an exponential source (R_e = 0.3",
amplitude 1) at (0.08", 0.05") in the source plane with a linear metallicity gradient
(Z_c = 8.0, -0.5 dex per source-plane arcsec, linear averaging as in lenstronomy's fits) behind
an SIE (theta_E = 1", q = 0.75, phi = 0.4) plus external shear (0.03, -0.02): four images
merging into an arc. 61 x 61 pixels of 0.066" (NIRISS), supersampling 3, Gaussian PSF FWHM
0.3". Errors follow the paper's model, sigma_Z^2 = c1 + c2 / I with I the observed light:
0.01 at the brightest pixel, 0.02 where the light is e^-b1 of it; pixels fainter than 1% of the
peak are left out.

Part 1, fixed lens (the speed target): free are the central value (uniform on [7, 9]) and the
gradient (uniform on [-2, 1] dex/arcsec); light and lens fixed to the truth. Ours takes the
linear-basis path with source-plane radii (the lens ray-shoots the sample points once).
lenstronomy: ``TracerModelSource`` with ``lens_model_class`` = SIE + SHEAR (ray shooting every
sub-pixel at every evaluation, as it does in a fit), ``SERSIC`` light and ``LINEAR`` tracer;
PSO + emcee as in ``benchmarks/fig3.py`` (machinery and speedup definition in ``_common.py``).

Part 2, joint lens + tracer (ours only): the SIE's theta_E, q, phi and the shear (gamma1, gamma2)
are free with the tracer's central value and gradient; the light image (errors 1% of the peak
plus 2% of the pixel) and the metallicity map constrain them together, on the full path
(free lens: every evaluation ray-shoots, renders and convolves). Its own data, same truth, on a
45 x 45 field (3") at supersampling 2, as rendering dominates its cost. Reported: time (build + compile + sample), ESS, R-hat and the recovery of each
parameter (posterior mean, sd, and whether the truth lies in the central 95%).

The last line printed is one JSON object.
"""

from __future__ import annotations

import time

import _common as C  # benchmarks/ is on sys.path when run as a script
import arviz as az
import numpy as np
import pymc as pm
from lenstronomy.ImSim.tracer_model import TracerModelSource
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Util import param_util

import pymc_tracers as pmt
from pymc_tracers import lensing

NAMES = ["central", "gradient"]
LOWER = np.array([7.0, -2.0])
UPPER = np.array([9.0, 1.0])
SIGMA_START = np.array([0.01, 0.01])

TRUTH = dict(
    x0=0.08, y0=0.05, r_eff=0.3, amplitude=1.0, central=8.0, gradient=-0.5,
    theta_E=1.0, q=0.75, phi=0.4, gamma1=0.03, gamma2=-0.02,
)  # fmt: skip
GRID = pmt.PixelGrid((61, 61), pixel_scale=0.066, supersampling=3)
#: the joint fit renders every evaluation (free lens): a 3" field, supersampling 2
JOINT_GRID = pmt.PixelGrid((45, 45), pixel_scale=0.066, supersampling=2)
PSF = pmt.GaussianPSF(0.3)


def lens_of(theta_E, q, phi, gamma1, gamma2):
    return [
        lensing.SIE(theta_E=theta_E, q=q, phi=phi),
        lensing.ExternalShear(gamma1=gamma1, gamma2=gamma2),
    ]


def source(central, gradient):
    t = TRUTH
    light = pmt.Exponential(x0=t["x0"], y0=t["y0"], r_eff=t["r_eff"], amplitude=t["amplitude"])
    tracer = pmt.LinearGradient(x0=t["x0"], y0=t["y0"], central=central, gradient=gradient)
    return pmt.Component(light, tracer)


def simulate(seed, grid=GRID):
    t = TRUTH
    lens = lens_of(t["theta_E"], t["q"], t["phi"], t["gamma1"], t["gamma2"])
    obs = pmt.observe(source(t["central"], t["gradient"]), grid, PSF, "linear", lens=lens,
                      method="full")  # fmt: skip
    image, tracer = pmt.evaluate([obs.image, obs.tracer_map])
    peak = image.max()
    c2 = 0.01 / (np.exp(1.678) - 1) * peak  # sigma^2 = 0.01 at the peak, 0.02 at e^-b1 of it
    c1 = 0.01 - c2 / peak
    with np.errstate(divide="ignore"):
        sigma = np.sqrt(c1 + c2 / image)
    sigma[image < 0.01 * peak] = np.nan
    rng = np.random.default_rng(seed)
    data = tracer + sigma * rng.normal(size=tracer.shape)
    sigma_image = 0.01 * peak + 0.02 * image
    image_data = image + sigma_image * rng.normal(size=image.shape)
    return dict(tracer=tracer, data=data, sigma=sigma, image=image, image_data=image_data,
                sigma_image=sigma_image)  # fmt: skip


def part_fixed(args, sim, lens_budget, ours_budget):
    t = TRUTH
    data, sigma = sim["data"], sim["sigma"]
    used = C.used_pixels(data, sigma)
    fixed_lens = lens_of(t["theta_E"], t["q"], t["phi"], t["gamma1"], t["gamma2"])

    def build():
        with pm.Model() as model:
            central = pm.Uniform("central", LOWER[0], UPPER[0])
            gradient = pm.Uniform("gradient", LOWER[1], UPPER[1])
            obs = pmt.observe(source(central, gradient), GRID, PSF, "linear", lens=fixed_lens)
            assert obs.path == "linear", obs.reason
            pmt.tracer_likelihood("metallicity", obs, data, sigma=sigma)
        return model

    ours = C.run_ours(build, seed=args.sampler_seed, **ours_budget)

    lens_psf, numerics, _ = C.lenstronomy_psf(PSF, GRID)
    e1, e2 = param_util.phi_q2_ellipticity(t["phi"], t["q"])
    kwargs_lens = [
        dict(theta_E=t["theta_E"], e1=e1, e2=e2, center_x=0.0, center_y=0.0),
        dict(gamma1=t["gamma1"], gamma2=t["gamma2"], ra_0=0.0, dec_0=0.0),
    ]
    model = TracerModelSource(
        C.lenstronomy_data(GRID),
        psf_class=lens_psf,
        lens_model_class=LensModel(["SIE", "SHEAR"]),
        source_model_class=LightModel(["SERSIC"]),
        tracer_source_class=LightModel(["LINEAR"]),
        kwargs_numerics=numerics,
        tracer_partition=[[[0], [0]]],
        tracer_type="LINEAR",
    )
    R_s, amp = C.sersic_to_lenstronomy(t["r_eff"], t["amplitude"], n=1.0)
    kwargs_light = [dict(amp=amp, R_sersic=R_s, n_sersic=1.0, center_x=t["x0"], center_y=t["y0"])]

    def tracer_map(p):
        kwargs_tracer = [dict(amp=p[0], k=p[1], center_x=t["x0"], center_y=t["y0"])]
        return model.tracer_model(kwargs_tracer, kwargs_lens, kwargs_light)

    def loglike(p):
        return C.chi2_loglike(tracer_map(p), data, sigma, used)

    likelihood = C.GenericLikelihood(NAMES, LOWER, UPPER, loglike, used.sum())
    lens = C.run_lenstronomy(
        likelihood,
        budget=lens_budget,
        sigma_start=SIGMA_START,
        seed=args.sampler_seed,
        max_seconds=args.max_lenstronomy_seconds,
        quick=args.quick,
    )
    truth = np.array([t["central"], t["gradient"]])
    mismatch = -2 * C.chi2_loglike(tracer_map(truth), sim["tracer"], sigma, used)
    ours_s = {n: C.ours_samples(ours, n) for n in NAMES}
    lens_s = {n: lens["samples"][:, i] for i, n in enumerate(NAMES)}
    rows = C.compare_parameters(NAMES, t, ours_s, lens_s)
    C.print_table(
        f"lensing, fixed SIE + shear: central + gradient free, {used.sum()} pixels"
        + (" (QUICK)" if args.quick else ""),
        rows,
        ours,
        lens,
    )
    print(f"  forward-model mismatch at the truth: chi2(lenstronomy vs noiseless pmt) = "
          f"{mismatch:.3g}")  # fmt: skip
    return rows, ours, lens, dict(n_pixels=int(used.sum()), truth_chi2_lenstronomy_vs_pmt=mismatch)


JOINT = ["theta_E", "q", "phi", "gamma1", "gamma2", "central", "gradient"]


def part_joint(args):
    sim = simulate(args.seed + 1, JOINT_GRID)
    data, sigma = sim["data"], sim["sigma"]
    t = TRUTH

    def build():
        with pm.Model() as model:
            theta_E = pm.Uniform("theta_E", 0.7, 1.3)
            q = pm.Uniform("q", 0.5, 0.95)
            phi = pm.Uniform("phi", 0.0, 0.8)
            gamma1 = pm.Normal("gamma1", 0.0, 0.05)
            gamma2 = pm.Normal("gamma2", 0.0, 0.05)
            central = pm.Uniform("central", LOWER[0], UPPER[0])
            gradient = pm.Uniform("gradient", LOWER[1], UPPER[1])
            obs = pmt.observe(source(central, gradient), JOINT_GRID, PSF, "linear",
                              lens=lens_of(theta_E, q, phi, gamma1, gamma2))  # fmt: skip
            assert obs.path == "subpixel", obs.reason
            pmt.tracer_likelihood("metallicity", obs, data, sigma=sigma)
            pmt.image_likelihood("light", obs.image, sim["image_data"], sigma=sim["sigma_image"])
        return model

    budget = dict(draws=100, tune=100) if args.quick else dict(draws=500, tune=500)
    print(f"\njoint fit: {int(np.isfinite(sigma).sum())} tracer pixels + {sigma.size} light "
          f"pixels, {budget['tune']} + {budget['draws']} draws x 2 chains", flush=True)  # fmt: skip
    ours = run_from_map(build, seed=args.sampler_seed, chains=2, **budget)
    post = ours["trace"].posterior
    recovery = {}
    print("\njoint lens + tracer fit (ours, full path):")
    for name in JOINT:
        s = np.asarray(post[name].values).ravel()
        lo, hi = np.percentile(s, [2.5, 97.5])
        recovery[name] = dict(truth=t[name], mean=float(s.mean()), sd=float(s.std()),
                              in_95=bool(lo <= t[name] <= hi))  # fmt: skip
        print(f"  {name:9s} truth {t[name]:+.4f}  posterior {s.mean():+.4f} +- {s.std():.4f}"
              f"  {'inside' if lo <= t[name] <= hi else 'OUTSIDE'} 95%")  # fmt: skip
    print(f"  time {ours['seconds']:.1f} s (build {ours['build_seconds']:.1f}, MAP "
          f"{ours['map_seconds']:.1f}, compile {ours['compile_seconds']:.1f}, sample "
          f"{ours['sample_seconds']:.1f}); ESS min "
          f"{ours['ess_min']:.0f}, R-hat max {ours['rhat_max']:.3f}, divergences "
          f"{ours['divergences']}")  # fmt: skip
    return dict(
        seconds=ours["seconds"],
        build_seconds=ours["build_seconds"],
        map_seconds=ours["map_seconds"],
        compile_seconds=ours["compile_seconds"],
        sample_seconds=ours["sample_seconds"],
        draws=ours["draws"],
        tune=ours["tune"],
        chains=ours["chains"],
        ess_bulk_min=ours["ess_min"],
        r_hat_max=ours["rhat_max"],
        divergences=ours["divergences"],
        gradient_evaluations=ours["gradient_evaluations"],
        recovery=recovery,
        all_in_95=all(r["in_95"] for r in recovery.values()),
    )


def run_from_map(build, *, seed, chains, draws, tune):
    """Build, find the MAP from the prior's central point (L-BFGS with gradients), compile
    nutpie (JAX) with the chains starting there, sample: a lens model fit starts from an
    optimum, since a free lens has distant local optima that a random start may fall into."""
    import jax
    import nutpie

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    model = build()
    t1 = time.perf_counter()
    start = pm.find_MAP(model=model, progressbar=False, seed=seed)
    names = [rv.name for rv in model.free_RVs]
    t2 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(
        model, backend="jax", gradient_backend="jax",
        initial_points={n: start[n] for n in names}, jitter_rvs=set(),
    )  # fmt: skip
    t3 = time.perf_counter()
    trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                          progress_bar=False, low_rank_modified_mass_matrix=True)  # fmt: skip
    t4 = time.perf_counter()
    ess = az.ess(trace, var_names=names, method="bulk")
    rhat = az.rhat(trace, var_names=names)
    stats = trace.sample_stats
    warm = trace.warmup_sample_stats
    return dict(
        trace=trace,
        seconds=t4 - t0,
        build_seconds=t1 - t0,
        map_seconds=t2 - t1,
        compile_seconds=t3 - t2,
        sample_seconds=t4 - t3,
        draws=draws,
        tune=tune,
        chains=chains,
        ess_min=min(float(ess[n].values) for n in names),
        rhat_max=max(float(rhat[n].values) for n in names),
        divergences=int(stats["diverging"].values.sum()),
        gradient_evaluations=int(stats["n_steps"].values.sum() + warm["n_steps"].values.sum()),
    )


def main():
    def extra(parser):
        parser.add_argument("--skip-joint", action="store_true", help="only the fixed-lens part")

    args = C.parse_args(__doc__.splitlines()[0], extra=extra, max_lenstronomy_seconds=900.0)
    lens_budget, ours_budget = C.budgets(args)
    sim = simulate(args.seed)
    rows, ours, lens, info = part_fixed(args, sim, lens_budget, ours_budget)
    joint = None if args.skip_joint else part_joint(args)
    C.final_json("lensing", args, rows, ours, lens, extra=dict(**info, joint=joint))


if __name__ == "__main__":
    main()
