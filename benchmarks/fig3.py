"""Speed, paper Figure 3 (FWHM 1.5"): pymc_tracers + nutpie versus lenstronomy PSO + emcee.

Run: ``python benchmarks/fig3.py`` (``--quick`` for a ~10x smaller smoke test)

Data: ``pmt.simulate.figure3_galaxy(1.5, seed=0)`` (tracer_scale "linear", as in the paper):
exponential disc R_e = 1", Z_c = 8.0, gradient -0.2 dex/arcsec, Gaussian PSF FWHM 1.5",
121x121 pixels of 0.066", supersampling 3. Both codes fit the same metallicity map with the
same error map.

Model (both codes): the light is fixed to the truth, the tracer centre is fixed at (0, 0); free
are the central value (uniform prior on [7, 9]) and the gradient (uniform on [-1, 1] dex/arcsec);
these are also the PSO bounds. lenstronomy: ``SERSIC`` light (R_sersic and amp converted exactly
from r_eff = 1, A = 1) and a ``LINEAR`` tracer (amp = central, k = gradient).

ours: ``pmt.observe`` takes its exact linear-basis path here (fixed light and tracer geometry),
so one log-density evaluation is a 2-term linear combination of precomputed maps.

Timing, ESS and speedup definitions: see ``benchmarks/_common.py``; in short
``speedup = (t_pso + t_burn + t_run * max(1, 400 / ess_min)) / (build + compile + sample)``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import _common as C  # benchmarks/ is on sys.path when run as a script
import numpy as np
import pymc as pm

import pymc_tracers as pmt

NAMES = ["central", "gradient"]
LOWER = np.array([7.0, -1.0])
UPPER = np.array([9.0, 1.0])
SIGMA_START = np.array([0.01, 0.01])  # emcee start ball around the PSO best fit


def main():
    args = C.parse_args(__doc__.splitlines()[0])
    lens_budget, ours_budget = C.budgets(args)
    galaxy = pmt.simulate.figure3_galaxy(1.5, seed=args.seed, tracer_scale="linear")
    truth = galaxy.truth
    data, sigma = galaxy.tracer_map, galaxy.tracer_error
    used = C.used_pixels(data, sigma)

    # ------------------------------------------------------------------ ours
    def build():
        with pm.Model() as model:
            central = pm.Uniform("central", LOWER[0], UPPER[0])
            gradient = pm.Uniform("gradient", LOWER[1], UPPER[1])
            disc = pmt.Component(
                pmt.Exponential(
                    x0=truth["x0"],
                    y0=truth["y0"],
                    r_eff=truth["r_eff"],
                    amplitude=truth["amplitude"],
                ),
                pmt.LinearGradient(
                    x0=truth["x0"], y0=truth["y0"], central=central, gradient=gradient
                ),
            )
            _, metallicity = pmt.observe(disc, galaxy.grid, galaxy.psf, tracer_scale="linear")
            pmt.tracer_likelihood("metallicity", metallicity, data, sigma=sigma)
        return model

    ours = C.run_ours(build, seed=args.sampler_seed, **ours_budget)

    # ------------------------------------------------------------------ lenstronomy
    model, _ = C.tracer_model_source(galaxy, ["SERSIC"], ["LINEAR"], [[[0], [0]]])
    R_s, amp = C.sersic_to_lenstronomy(truth["r_eff"], truth["amplitude"], n=1.0)
    kwargs_light = [
        dict(amp=amp, R_sersic=R_s, n_sersic=1.0, center_x=truth["x0"], center_y=truth["y0"])
    ]

    def tracer_map(p):
        kwargs_tracer = [dict(amp=p[0], k=p[1], center_x=truth["x0"], center_y=truth["y0"])]
        return model.tracer_model(kwargs_tracer, [], kwargs_light, de_lensed=True)

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

    # how far apart the two forward models are at the truth (lenstronomy zero-pads the field
    # edge, pmt renders light from beyond it), in chi^2 units of the data errors
    t_true = np.array([truth["central"], truth["gradient"]])
    mismatch = -2 * C.chi2_loglike(tracer_map(t_true), galaxy.true_tracer_map, sigma, used)

    # ------------------------------------------------------------------ report
    ours_s = {n: C.ours_samples(ours, n) for n in NAMES}
    lens_s = {n: lens["samples"][:, i] for i, n in enumerate(NAMES)}
    rows = C.compare_parameters(NAMES, truth, ours_s, lens_s)
    C.print_table(
        f'fig3: FWHM 1.5", central + gradient free, {used.sum()} pixels{" (QUICK)" if args.quick else ""}',
        rows,
        ours,
        lens,
    )
    print(
        f"  forward-model mismatch at the truth: chi2(lenstronomy model vs noiseless pmt map) = {mismatch:.3g}"
    )
    C.final_json(
        "fig3",
        args,
        rows,
        ours,
        lens,
        extra=dict(
            n_pixels=int(used.sum()),
            lenstronomy_truth_chi2_vs_pmt_model=mismatch,
            lenstronomy_pso_best=dict(zip(NAMES, lens["best"].tolist())),
        ),
    )


if __name__ == "__main__":
    main()
