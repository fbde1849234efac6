"""A Tully-Fisher relation fitted to 100 galaxies' velocity and dispersion maps in one posterior.

Run: ``python benchmarks/tully_fisher.py [--galaxies 100] [--quick]``

Each simulated galaxy has a stellar mass ``log M*`` in [9, 11], a rotation speed on the
relation ``log10 V_max = a + b (log M* - 10)`` with intrinsic scatter (truth a = 2.3,
b = 0.27, scatter 0.05 dex), an arctan rotation curve (r_t in [0.2, 0.6]"), a constant
dispersion in [20, 60] km/s, an exponential light profile (R_e in [0.8, 1.6]"), an inclination
in [40, 70] deg and a PA known from the light, its own Gaussian PSF (FWHM 0.6-1.2"), on a
20x20 stamp of 0.25" pixels with 8 km/s noise on velocity and dispersion. The data are
simulated with the exact full path (supersampling 4).

The fit: fixed light and geometry (from photometry) and one PSF per galaxy, so
``observe_kinematics`` takes the ``disc_radial`` path for the whole batch; per galaxy V_max
(centred on the relation), r_t, sigma0 and v_sys; the relation's a, b and scatter.
``pmt.fit`` (nutpie) from the MAP point, 2 chains x (1000 tune + 1000 draws) (``--quick``:
200 + 200).

The last line is one JSON object: build and fit (MAP + sampling) seconds (``seconds`` is their sum,
the simulation apart), ESS, R-hat,
divergences, the relation's posterior against the truth, and the node count and measured
error of the disc_radial path against the full path.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pymc as pm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pymc_tracers as pmt  # noqa: E402


def run_fit(build_model, *, draws, tune, chains, seed, backend):
    """Build, then ``pmt.fit(map_start=True)`` (timed in parts), with ESS/R-hat over every
    vector.

    The chains start at the maximum a posteriori point: from nutpie's jittered starts, one
    chain in a batch of 100 galaxies lands in a poor local mode of some galaxy (a rotation
    curve with r_t of 0.02" whose beam smearing stands in for sigma0 ~ 0, or a solid-body
    curve with r_t of 4") and stays there (measured: R-hat ~ 1.9, trees of depth 10).
    """
    import arviz as az

    t0 = time.perf_counter()
    model = build_model()
    t1 = time.perf_counter()
    result = pmt.fit(
        model,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        backend=backend,
        progressbar=False,
        log_likelihood=False,
        map_start=True,
    )
    t3 = time.perf_counter()
    trace = result.idata
    names = [rv.name for rv in model.free_RVs]
    ess = az.ess(trace, var_names=names, method="bulk")
    rhat = az.rhat(trace, var_names=names)
    stats = trace.sample_stats
    return dict(
        trace=trace,
        build_seconds=t1 - t0,
        fit_seconds=t3 - t1,
        seconds=t3 - t0,
        ess_min=float(min(ess[n].values.min() for n in names)),
        rhat_max=float(max(rhat[n].values.max() for n in names)),
        divergences=int(stats["diverging"].values.sum()),
        mean_leapfrog_draws=float(stats["n_steps"].values.mean()),
    )


RELATION = dict(a=2.3, b=0.27, scatter=0.05)
NOISE = 8.0
SHAPE, PIXEL = (20, 20), 0.25


def sample_galaxies(n, seed=3):
    rng = np.random.default_rng(seed)
    log_mass = rng.uniform(9.0, 11.0, n)
    log_v = (
        RELATION["a"] + RELATION["b"] * (log_mass - 10) + RELATION["scatter"] * rng.normal(size=n)
    )
    return dict(
        log_mass=log_mass,
        v_max=10**log_v,
        r_t=rng.uniform(0.2, 0.6, n),
        sigma0=rng.uniform(20.0, 60.0, n),
        v_sys=rng.normal(0.0, 10.0, n),
        r_eff=rng.uniform(0.8, 1.6, n),
        inclination=np.deg2rad(rng.uniform(40.0, 70.0, n)),
        phi=rng.uniform(-np.pi / 2, np.pi / 2, n),
        fwhm=rng.uniform(0.6, 1.2, n),
    )


def component(galaxies, v_max, r_t, sigma0, v_sys):
    q = np.sqrt(np.cos(galaxies["inclination"]) ** 2 * (1 - 0.2**2) + 0.2**2)
    light = pmt.Exponential(r_eff=galaxies["r_eff"], q=q, phi=galaxies["phi"])
    geometry = pmt.DiscGeometry(phi=galaxies["phi"], inclination=galaxies["inclination"])
    velocity = pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=v_max, r_t=r_t), v_sys=v_sys)
    return pmt.KinematicComponent(light, velocity, sigma0)


def simulate(galaxies, seed=4):
    rng = np.random.default_rng(seed)
    psfs = [pmt.GaussianPSF(f) for f in galaxies["fwhm"]]
    grid = pmt.PixelGrid(SHAPE, PIXEL, supersampling=4)
    truth = component(
        galaxies, galaxies["v_max"], galaxies["r_t"], galaxies["sigma0"], galaxies["v_sys"]
    )
    _, v, s = pmt.evaluate(pmt.observe_kinematics(truth, grid, psfs, method="full"))
    return v + NOISE * rng.normal(size=v.shape), s + NOISE * rng.normal(size=s.shape)


def build(galaxies, v_data, s_data, info):
    n = len(galaxies["v_max"])
    psfs = [pmt.GaussianPSF(f) for f in galaxies["fwhm"]]
    grid = pmt.PixelGrid(SHAPE, PIXEL, supersampling=2)

    def model():
        with pm.Model(coords={"galaxy": range(n)}) as m:
            a = pm.Normal("a", 2.2, 0.3)
            b = pm.Normal("b", 0.3, 0.2)
            scatter = pm.HalfNormal("scatter", 0.15)
            # centred: each galaxy's maps pin its V_max far better than the scatter does
            log_v = pm.Normal(
                "log_v_max", a + b * (galaxies["log_mass"] - 10), scatter, dims="galaxy"
            )
            v_max = pm.Deterministic("v_max", 10**log_v, dims="galaxy")
            r_t = pm.LogNormal("r_t", np.log(0.4), 0.5, dims="galaxy")
            sigma0 = pm.HalfNormal("sigma0", 80, dims="galaxy")
            v_sys = pm.Normal("v_sys", 0, 30, dims="galaxy")
            obs = pmt.observe_kinematics(
                component(galaxies, v_max, r_t, sigma0, v_sys),
                grid,
                psfs,
                convolve_at="pixel",
                tolerance=0.1,
            )
            info.update(
                path=obs.path,
                reason=obs.reason,
                nodes=obs.renderer.node_count if obs.path == "disc_radial" else None,
                max_error_km_s=float(obs.max_error),
            )
            pmt.kinematic_likelihood(
                obs,
                velocity=v_data,
                velocity_sigma=NOISE,
                dispersion=s_data,
                dispersion_sigma=NOISE,
            )
        return m

    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="2 x (200 + 200)")
    parser.add_argument("--backend", default="jax", choices=["jax", "numba"])
    args = parser.parse_args()
    galaxies = sample_galaxies(args.galaxies)
    start = time.perf_counter()
    v_data, s_data = simulate(galaxies)
    simulate_seconds = time.perf_counter() - start
    info = {}
    draws = 200 if args.quick else 1000
    result = run_fit(
        build(galaxies, v_data, s_data, info),
        draws=draws,
        tune=draws,
        chains=2,
        seed=11,
        backend=args.backend,
    )
    posterior = result["trace"].posterior
    relation = {
        name: dict(
            mean=float(posterior[name].mean()),
            sd=float(posterior[name].std()),
            truth=RELATION[name],
        )
        for name in RELATION
    }
    v_post = posterior["v_max"].mean(("chain", "draw")).values
    report = dict(
        galaxies=args.galaxies,
        stamp=list(SHAPE),
        pixel_scale=PIXEL,
        quick=args.quick,
        backend=args.backend,
        simulate_seconds=simulate_seconds,
        forward=info,
        relation=relation,
        v_max_median_relative_error=float(np.median(np.abs(v_post / galaxies["v_max"] - 1))),
        **{
            k: result[k]
            for k in (
                "build_seconds",
                "fit_seconds",
                "seconds",
                "ess_min",
                "rhat_max",
                "divergences",
                "mean_leapfrog_draws",
            )
        },
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
