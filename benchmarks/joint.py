"""Speed, joint light + tracer fit of the Figure-3 galaxy: pymc_tracers + nutpie versus
lenstronomy PSO + emcee.

Run: ``python benchmarks/joint.py`` (``--quick`` for a ~10x smaller smoke test)

Data: ``pmt.simulate.figure3_galaxy(1.5, seed=0)`` (tracer_scale "linear"): the light image
(``light_image``, ``light_error``) and the metallicity map (``tracer_map``, ``tracer_error``)
of an exponential disc (R_e = 1", A = 1, Z_c = 8.0, gradient -0.2 dex/arcsec), Gaussian PSF
FWHM 1.5", 121x121 pixels of 0.066", supersampling 3.

Model (both codes), six free parameters with uniform priors (= the PSO bounds):
``x0, y0`` in [-0.5, 0.5] arcsec (light centre; the tracer gradient is centred on it too),
``r_eff`` in [0.5, 2] arcsec, ``amplitude`` in [0.5, 2], ``central`` in [7, 9],
``gradient`` in [-1, 1] dex/arcsec. The Sersic index is FIXED at n = 1 (exponential), the disc
is circular. Log-likelihood = light-image chi^2 term + tracer-map chi^2 term.

lenstronomy is fitted in its own parametrisation (``SERSIC``: ``center_x, center_y, R_sersic,
amp``; ``LINEAR`` tracer: ``amp = central, k = gradient``, centred on the light), with bounds
converted exactly (``R_sersic = r_eff (b'/b)``, ``amp = A exp(b - b')`` for n = 1, linear maps,
so the uniform priors are the same); samples are converted back to ``r_eff, amplitude`` for the
report. Each lenstronomy likelihood call evaluates ``source_surface_brightness`` (light image)
and ``tracer_model`` (tracer map), as lenstronomy's image + tracer likelihoods do.

ours: ``pmt.observe`` takes its full path (light free): render on the padded supersampled
grid, one batched FFT convolution of light and light x Z per evaluation, gradients by autodiff.

The paper's lenstronomy budget (PSO 100x100 + emcee 100x(50+200)) is predicted from the cost of
one likelihood call; if it exceeds ``--max-lenstronomy-seconds`` (default 1800 here, none in fig3/clumps) the PSO
iterations and emcee steps are reduced proportionally (particles and walkers kept) and the
times (and the post-burn-in ESS) are extrapolated linearly back to the paper's budget; the
output says so. ours defaults to 2 chains x (500 tune + 500 draws) here (rerun with more draws
if the bulk ESS is below 400).

Timing, ESS and speedup definitions: see ``benchmarks/_common.py``; in short
``speedup = (t_pso + t_burn + t_run * max(1, 400 / ess_min)) / (build + compile + sample)``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import _common as C  # benchmarks/ is on sys.path when run as a script
import numpy as np
import pymc as pm

import pymc_tracers as pmt

NAMES = ["x0", "y0", "r_eff", "amplitude", "central", "gradient"]
LOWER = np.array([-0.5, -0.5, 0.5, 0.5, 7.0, -1.0])
UPPER = np.array([0.5, 0.5, 2.0, 2.0, 9.0, 1.0])
N_SERSIC = 1.0


def to_lenstronomy(values):
    """(x0, y0, r_eff, amplitude, central, gradient) -> lenstronomy's parameter vector."""
    values = np.array(values, float)
    R_s, amp = C.sersic_to_lenstronomy(values[..., 2], values[..., 3], n=N_SERSIC)
    values[..., 2], values[..., 3] = R_s, amp
    return values


def from_lenstronomy(values):
    values = np.array(values, float)
    r_eff, amplitude = C.sersic_from_lenstronomy(values[..., 2], values[..., 3], n=N_SERSIC)
    values[..., 2], values[..., 3] = r_eff, amplitude
    return values


LENS_NAMES = ["center_x", "center_y", "R_sersic", "amp", "central", "gradient"]
LENS_LOWER, LENS_UPPER = to_lenstronomy(LOWER), to_lenstronomy(UPPER)
# emcee start ball around the PSO best fit (lenstronomy units)
SIGMA_START = np.array([0.005, 0.005, 0.005, 0.005, 0.01, 0.01])


def main():
    def extra(parser):
        parser.add_argument(
            "--convolve-at",
            choices=["subpixel", "pixel"],
            default="subpixel",
            help="ours: exact sub-pixel convolution (default, the same model lenstronomy runs) or "
            "pmt's pixel-scale convolution (s^2 smaller FFTs, errors in docs/forward_model.md)",
        )

    args = C.parse_args(
        __doc__.splitlines()[0], extra=extra, max_lenstronomy_seconds=1800.0, draws=500, tune=500
    )
    lens_budget, ours_budget = C.budgets(args)
    galaxy = pmt.simulate.figure3_galaxy(1.5, seed=args.seed, tracer_scale="linear")
    truth = galaxy.truth
    t_data, t_sigma = galaxy.tracer_map, galaxy.tracer_error
    i_data, i_sigma = galaxy.light_image, galaxy.light_error
    t_used, i_used = C.used_pixels(t_data, t_sigma), C.used_pixels(i_data, i_sigma)

    # ------------------------------------------------------------------ ours
    def build():
        with pm.Model() as model:
            p = {n: pm.Uniform(n, lo, hi) for n, lo, hi in zip(NAMES, LOWER, UPPER)}
            disc = pmt.Component(
                pmt.Exponential(x0=p["x0"], y0=p["y0"], r_eff=p["r_eff"], amplitude=p["amplitude"]),
                pmt.LinearGradient(
                    x0=p["x0"], y0=p["y0"], central=p["central"], gradient=p["gradient"]
                ),
            )
            image, metallicity = pmt.observe(
                disc, galaxy.grid, galaxy.psf, tracer_scale="linear", convolve_at=args.convolve_at
            )
            pmt.image_likelihood("light", image, i_data, sigma=i_sigma)
            pmt.tracer_likelihood("metallicity", metallicity, t_data, sigma=t_sigma)
        return model

    ours = C.run_ours(build, seed=args.sampler_seed, **ours_budget)

    # ------------------------------------------------------------------ lenstronomy
    model, _ = C.tracer_model_source(galaxy, ["SERSIC"], ["LINEAR"], [[[0], [0]]])

    def maps(q):
        x0, y0, R_s, amp, central, gradient = q
        kwargs_light = [dict(amp=amp, R_sersic=R_s, n_sersic=N_SERSIC, center_x=x0, center_y=y0)]
        kwargs_tracer = [dict(amp=central, k=gradient, center_x=x0, center_y=y0)]
        image = model.source_surface_brightness(kwargs_light, de_lensed=True)
        tracer = model.tracer_model(kwargs_tracer, [], kwargs_light, de_lensed=True)
        return image, tracer

    def loglike(q):
        image, tracer = maps(q)
        return C.chi2_loglike(image, i_data, i_sigma, i_used) + C.chi2_loglike(
            tracer, t_data, t_sigma, t_used
        )

    likelihood = C.GenericLikelihood(
        LENS_NAMES, LENS_LOWER, LENS_UPPER, loglike, t_used.sum() + i_used.sum()
    )
    lens = C.run_lenstronomy(
        likelihood,
        budget=lens_budget,
        sigma_start=SIGMA_START,
        seed=args.sampler_seed,
        max_seconds=args.max_lenstronomy_seconds,
        quick=args.quick,
    )
    t_true = to_lenstronomy([truth[n] for n in NAMES])
    image_true, tracer_true = maps(t_true)
    mismatch_image = -2 * C.chi2_loglike(image_true, galaxy.true_light_image, i_sigma, i_used)
    mismatch_tracer = -2 * C.chi2_loglike(tracer_true, galaxy.true_tracer_map, t_sigma, t_used)

    # ------------------------------------------------------------------ report
    ours_s = {n: C.ours_samples(ours, n) for n in NAMES}
    converted = from_lenstronomy(lens["samples"])
    lens_s = {n: converted[:, i] for i, n in enumerate(NAMES)}
    lens["names"] = NAMES  # ESS is invariant under the linear conversion
    rows = C.compare_parameters(NAMES, truth, ours_s, lens_s)
    C.print_table(
        f"joint: light + tracer, 6 free (n = 1 fixed), {t_used.sum()} + {i_used.sum()} pixels"
        f"{' (QUICK)' if args.quick else ''}",
        rows,
        ours,
        lens,
    )
    print(
        f"  forward-model mismatch at the truth: chi2(lenstronomy vs noiseless pmt) image = {mismatch_image:.3g},"
        f" tracer = {mismatch_tracer:.3g}"
    )
    C.final_json(
        "joint",
        args,
        rows,
        ours,
        lens,
        extra=dict(
            n_pixels=dict(light=int(i_used.sum()), metallicity=int(t_used.sum())),
            sersic_n="fixed at 1",
            lenstronomy_truth_chi2_vs_pmt_model=dict(image=mismatch_image, tracer=mismatch_tracer),
            lenstronomy_pso_best=dict(zip(NAMES, from_lenstronomy(lens["best"]).tolist())),
        ),
    )


if __name__ == "__main__":
    main()
