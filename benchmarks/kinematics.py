"""A 40x40 velocity + dispersion fit with 8 free disc parameters and fixed light.

Run: ``python benchmarks/kinematics.py [--quick] [--backend jax|numba]``

One simulated galaxy (exponential line emission R_e = 1.5", arctan rotation curve
V_max = 200 km/s, r_t = 0.5", constant sigma = 40 km/s, inclination 60 deg, kinematic PA
offset from the photometric one by 0.1 rad, centre offset 0.05"), observed on 40x40 pixels of
0.25" with a Gaussian PSF of FWHM 1.0", Gaussian noise of 5 km/s on the
velocity and 5 km/s on the dispersion. The model fits x0, y0, phi, inclination, v_sys, V_max,
r_t and sigma0 (fixed light), sampled by nutpie (2 chains x (1000 tune + 1000 draws)), once
with ``convolve_at="subpixel"`` (exact) and once with ``convolve_at="pixel"`` (s^2 = 9 times
smaller FFTs), both with supersampling 2; the simulation uses the exact sub-pixel path with
supersampling 5, and each model's maps at the truth are compared with it
(``max_map_error_km_s``: the model error, to set against the 5 km/s noise). For each: build,
compile and
sampling seconds, ESS, R-hat, divergences and the posterior of V_max, r_t, sigma0 and the
inclination against the truth, next to the classical estimates (the median of the observed
dispersion map; the outermost major-axis velocity / sin i) that ignore the PSF.

The last line is one JSON object with every number.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_ours  # noqa: E402

TRUTH = dict(
    x0=0.05,
    y0=-0.05,
    phi=0.6,
    inclination=np.deg2rad(60.0),
    v_sys=20.0,
    v_max=200.0,
    r_t=0.5,
    sigma0=40.0,
)
PHOTOMETRIC_PHI = 0.5
GRID = pmt.PixelGrid((40, 40), pixel_scale=0.25, supersampling=2)
#: The simulation: exact sub-pixel path, finer supersampling.
TRUE_GRID = pmt.PixelGrid((40, 40), pixel_scale=0.25, supersampling=5)
PSF = pmt.GaussianPSF(1.0)
NOISE = 5.0  # km/s on velocity and dispersion
Q0 = 0.2


def light():
    cos_i = np.cos(TRUTH["inclination"])
    q = np.sqrt(cos_i**2 * (1 - Q0**2) + Q0**2)
    return pmt.Exponential(r_eff=1.5, amplitude=1.0, q=q, phi=PHOTOMETRIC_PHI)


def component(values):
    geometry = pmt.DiscGeometry(
        x0=values["x0"], y0=values["y0"], phi=values["phi"], inclination=values["inclination"]
    )
    velocity = pmt.DiscVelocity(
        geometry, pmt.ArctanCurve(v_max=values["v_max"], r_t=values["r_t"]), v_sys=values["v_sys"]
    )
    return pmt.KinematicComponent(light(), velocity, values["sigma0"])


def simulate(seed=1):
    rng = np.random.default_rng(seed)
    _, v, s = pmt.evaluate(pmt.observe_kinematics(component(TRUTH), TRUE_GRID, PSF))
    return v + NOISE * rng.normal(size=v.shape), s + NOISE * rng.normal(size=s.shape)


def build(v_data, s_data, convolve_at):
    def model():
        i_photometric = float(pmt.inclination_from_axis_ratio(light().q, Q0))
        with pm.Model() as m:
            values = dict(
                x0=pm.Normal("x0", 0, 0.3),
                y0=pm.Normal("y0", 0, 0.3),
                phi=pm.Normal("phi", PHOTOMETRIC_PHI, 0.3),
                inclination=pm.TruncatedNormal(
                    "inclination", i_photometric, 0.15, lower=0.1, upper=1.5
                ),
                v_sys=pm.Normal("v_sys", 0, 50),
                v_max=pm.HalfNormal("v_max", 400),
                r_t=pm.LogNormal("r_t", np.log(0.5), 1.0),
                sigma0=pm.HalfNormal("sigma0", 100),
            )
            obs = pmt.observe_kinematics(component(values), GRID, PSF, convolve_at=convolve_at)
            pmt.kinematic_likelihood(
                obs,
                velocity=v_data,
                velocity_sigma=NOISE,
                dispersion=s_data,
                dispersion_sigma=NOISE,
            )
        return m

    return model


def classical(v_data, s_data):
    """PSF-blind estimates: the median observed sigma; the outermost major-axis velocity."""
    x, y = GRID.coordinates()
    along = np.cos(TRUTH["phi"]) * x + np.sin(TRUTH["phi"]) * y
    across = -np.sin(TRUTH["phi"]) * x + np.cos(TRUTH["phi"]) * y
    slit = np.abs(across) < GRID.pixel_scale
    outer = slit & (along > 0.8 * along[slit].max())
    v_outer = (np.mean(v_data[outer]) - TRUTH["v_sys"]) / np.sin(TRUTH["inclination"])
    return dict(sigma0_median_map=float(np.median(s_data)), v_max_outer=float(v_outer))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 x (100 + 100): smoke test")
    parser.add_argument("--backend", default="jax", choices=["jax", "numba"])
    args = parser.parse_args()
    draws = tune = 100 if args.quick else 1000
    v_data, s_data = simulate()
    report = dict(
        truth={k: float(v) for k, v in TRUTH.items()},
        grid=dict(shape=GRID.shape, pixel_scale=GRID.pixel_scale, supersampling=2),
        psf_fwhm=PSF.fwhm,
        classical=classical(v_data, s_data),
        backend=args.backend,
        quick=args.quick,
        runs={},
    )
    _, v_exact, s_exact = pmt.evaluate(pmt.observe_kinematics(component(TRUTH), TRUE_GRID, PSF))
    for convolve_at in ("pixel", "subpixel"):
        _, v_model, s_model = pmt.evaluate(
            pmt.observe_kinematics(component(TRUTH), GRID, PSF, convolve_at=convolve_at)
        )
        map_error = max(np.abs(v_model - v_exact).max(), np.abs(s_model - s_exact).max())
        result = run_ours(
            build(v_data, s_data, convolve_at),
            draws=draws,
            tune=tune,
            chains=2,
            seed=7,
            rerun=False,
            backend=args.backend,
        )
        posterior = result["trace"].posterior
        summary = {
            name: dict(
                mean=float(posterior[name].mean()),
                sd=float(posterior[name].std()),
                truth=float(TRUTH[name]),
            )
            for name in ("v_max", "r_t", "sigma0", "inclination", "phi")
        }
        report["runs"][convolve_at] = {
            k: result[k]
            for k in (
                "build_seconds",
                "compile_seconds",
                "sample_seconds",
                "seconds",
                "ess_min",
                "rhat_max",
                "divergences",
                "mean_leapfrog_draws",
                "gradient_evaluations",
            )
        } | dict(posterior=summary, max_map_error_km_s=float(map_error))
        print(convolve_at, json.dumps(report["runs"][convolve_at]), flush=True)
    report["stamp"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
