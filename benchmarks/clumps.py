"""Speed, paper Table 1 (three clumps): pymc_tracers + nutpie versus lenstronomy PSO + emcee.

Run: ``python benchmarks/clumps.py`` (``--quick`` for a ~10x smaller smoke test)

Data: ``pmt.simulate.clumpy_galaxy(seed=0, tracer_scale="linear")``: three exponential clumps
(R_e = 0.25", equal brightness) at (0, 0), (+0.25", 0), (-0.25", +0.25") with constant
metallicities 7.6, 7.8, 7.9; the shipped approximate NIRISS F150W PSF; 31x31 pixels of 0.066",
supersampling 3. Both codes fit the same metallicity map with the same error map.

Model (both codes): the clumps' light is fixed to the truth; free are the three constant
metallicities ``z0, z1, z2`` with uniform priors on [7, 9] (also the PSO bounds). lenstronomy:
three ``SERSIC`` lights (R_sersic and amp converted exactly from r_eff = 0.25, A = 1) each
paired with a ``UNIFORM`` tracer through ``tracer_partition``.

ours: ``pmt.observe`` takes its exact linear-basis path here (fixed light, constant tracers).

Timing, ESS and speedup definitions: see ``benchmarks/_common.py``; in short
``speedup = (t_pso + t_burn + t_run * max(1, 400 / ess_min)) / (build + compile + sample)``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import _common as C  # benchmarks/ is on sys.path when run as a script
import numpy as np
import pymc as pm

import pymc_tracers as pmt
from pymc_tracers.simulate import CLUMP_POSITIONS

NAMES = ["z0", "z1", "z2"]
LOWER = np.array([7.0, 7.0, 7.0])
UPPER = np.array([9.0, 9.0, 9.0])
SIGMA_START = np.array([0.01, 0.01, 0.01])  # emcee start ball around the PSO best fit
AMPLITUDE = 1.0


def main():
    args = C.parse_args(__doc__.splitlines()[0])
    lens_budget, ours_budget = C.budgets(args)
    galaxy = pmt.simulate.clumpy_galaxy(seed=args.seed, tracer_scale="linear")
    truth = galaxy.truth
    r_eff = truth["r_eff"]
    data, sigma = galaxy.tracer_map, galaxy.tracer_error
    used = C.used_pixels(data, sigma)

    # ------------------------------------------------------------------ ours
    def build():
        with pm.Model() as model:
            clumps = []
            for name, lo, hi, (x, y) in zip(NAMES, LOWER, UPPER, CLUMP_POSITIONS):
                z = pm.Uniform(name, lo, hi)
                clumps.append(
                    pmt.Component(
                        pmt.Exponential(x0=x, y0=y, r_eff=r_eff, amplitude=AMPLITUDE),
                        pmt.Constant(z),
                    )
                )
            _, metallicity = pmt.observe(clumps, galaxy.grid, galaxy.psf, tracer_scale="linear")
            pmt.tracer_likelihood("metallicity", metallicity, data, sigma=sigma)
        return model

    ours = C.run_ours(build, seed=args.sampler_seed, **ours_budget)

    # ------------------------------------------------------------------ lenstronomy
    partition = [[[i], [i]] for i in range(3)]
    model, _ = C.tracer_model_source(galaxy, ["SERSIC"] * 3, ["UNIFORM"] * 3, partition)
    R_s, amp = C.sersic_to_lenstronomy(r_eff, AMPLITUDE, n=1.0)
    kwargs_light = [
        dict(amp=amp, R_sersic=R_s, n_sersic=1.0, center_x=x, center_y=y)
        for x, y in CLUMP_POSITIONS
    ]

    def tracer_map(p):
        return model.tracer_model([dict(amp=v) for v in p], [], kwargs_light, de_lensed=True)

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
    t_true = np.array([truth[n] for n in NAMES])
    mismatch = -2 * C.chi2_loglike(tracer_map(t_true), galaxy.true_tracer_map, sigma, used)

    # ------------------------------------------------------------------ report
    ours_s = {n: C.ours_samples(ours, n) for n in NAMES}
    lens_s = {n: lens["samples"][:, i] for i, n in enumerate(NAMES)}
    rows = C.compare_parameters(NAMES, truth, ours_s, lens_s)
    C.print_table(
        f"clumps: three constant metallicities free, {used.sum()} pixels{' (QUICK)' if args.quick else ''}",
        rows,
        ours,
        lens,
    )
    print(
        f"  forward-model mismatch at the truth: chi2(lenstronomy model vs noiseless pmt map) = {mismatch:.3g}"
    )
    C.final_json(
        "clumps",
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
