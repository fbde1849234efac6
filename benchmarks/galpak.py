"""GalPaK3D on a model cube against our fit of that cube's moment maps, in one run.

Run: ``python benchmarks/galpak.py [--iterations N] [--draws N] [--quick]`` (needs
``pip install galpak``, or the ``bench`` extra).

The cube: one rotating disc made by GalPaK3D itself (``create_convolved_cube``), so that
GalPaK's model represents it exactly: exponential light (half-light radius 6 pixels =
1.5"), arctan rotation curve (V_max 200 km/s, r_t 2 pixels = 0.5"), constant dispersion
sigma0 = 40 km/s, inclination 60 deg, PA 30 deg; 30 x 30 spaxels of 0.25", 48 channels of
0.5 A at 6563 A (22.9 km/s); Gaussian PSF FWHM 1.0" (FWHM / R_e = 0.67) and Gaussian LSF
FWHM 1.0 A (sigma 19.4 km/s). GalPaK's thick-disc dispersion term (``hz V(R) / R``) is
turned off (a subclass of its ``ModelSersic`` returns 0 for it), so that sigma0 means the
same in both models; its disc keeps its default thickness (aspect 0.15), whose line-of-sight
velocity mixing adds ~1 km/s to the dispersion and which our thin disc does not have.
Gaussian noise of 1/100 of the cube's peak is added to every voxel.

* **GalPaK3D**: its own MCMC (``run_mcmc``, the default Metropolis sampler with Cauchy
  jumps, ``random_scale=0.3``; ``--iterations`` accepted steps, default 5000; the posterior
  is the last 60% of the chain, and its two halves are compared as a convergence check) on
  the noisy cube with the true variance, 10 free parameters (x, y, z, flux, radius,
  inclination, PA, r_t, V_max, sigma0), its default uniform priors, started from rough
  guesses (centre of the field, systemic channel, inclination 45 deg, PA 0).
* **ours**: ``pmt.moment_maps`` of the same cube (channels within 300 km/s of each
  spaxel's peak; errors propagated analytically from the voxel noise; spaxels with flux
  S/N > 10), then NUTS (nutpie, 2 x (1000 + 1000)) on the flux, velocity and dispersion
  maps with ``observe_kinematics`` (``lsf_sigma`` = GalPaK's LSF; supersampling 1, as
  GalPaK samples its model at pixel centres), 11 free parameters (x0, y0, phi, inclination,
  v_sys, V_max, r_t, sigma0, and the light's r_eff, q, amplitude; thin disc).

What differs: GalPaK fits every voxel of the cube with its line-shape model; we fit three
moment maps, which are exact summaries for a model whose moments are exact, but throw away
the line shapes. GalPaK's disc is thick with its light and velocities integrated along the
line of sight; ours is thin, with the light's axis ratio free. Two diagnostics separate the
causes of our offsets: our MAP on the noise-free cube's moments (the thin-against-thick
model difference alone) and the noisy moments against the noise-free ones (bias and error
pulls over the spaxels used).

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pymc as pm

# this file is named like the package it compares with: import the real galpak first, with
# the benchmarks folder (which Python puts first on sys.path for a script) out of the way
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
logging.disable(logging.WARNING)  # galpak logs every optional import at INFO/WARNING
import galpak  # noqa: E402
from astropy.io import fits  # noqa: E402
from galpak.hyperspectral_cube import HyperspectralCube  # noqa: E402

logging.disable(logging.NOTSET)
sys.path.insert(0, str(_HERE.parent))
import pymc_tracers as pmt  # noqa: E402

sys.path.insert(0, str(_HERE))
from _common import run_ours  # noqa: E402

NZ, NY, NX = 48, 30, 30
PIXEL = 0.25  # arcsec
LAMBDA0, DLAMBDA = 6563.0, 0.5  # Angstrom
PSF_FWHM = 1.0  # arcsec
LSF_FWHM = 1.0  # Angstrom
TRUTH = dict(
    x=14.6,
    y=15.2,
    z=23.5,
    flux=1.0,
    radius=6.0,
    inclination=60.0,
    pa=30.0,
    turnover_radius=2.0,
    maximum_velocity=200.0,
    velocity_dispersion=40.0,
)
NOISE_FRACTION = 1 / 100  # of the cube's peak
#: GalPaK's jump sizes scale with the cube's size, not its S/N: at scale 1 it accepted 10% of
#: its jumps on this cube and stopped (its default floor is 10%); 0.3 gives ~30% (its advice)
RANDOM_SCALE = 0.3
WINDOW = 300.0  # km/s around each spaxel's peak for the moments
SNR_MIN = 10.0


class ThinDispersionModel(galpak.ModelSersic):
    """GalPaK's disc without its thick-disc dispersion term hz V / R."""

    def set_dispersion_profile(self, hz, vtot, radius_cube):
        return np.zeros_like(radius_cube)


def galpak_objects(cube_data, variance):
    logging.disable(logging.WARNING)
    header = fits.Header()
    header.update(
        CDELT1=PIXEL,
        CDELT2=PIXEL,
        CUNIT1="arcsec",
        CUNIT2="arcsec",
        CDELT3=DLAMBDA,
        CUNIT3="Angstrom",
        CRPIX3=NZ // 2,
        CRVAL3=LAMBDA0,
    )
    cube = HyperspectralCube(data=cube_data, header=header)
    instrument = galpak.Generic(psf_fwhm=PSF_FWHM, psf_pa=0, psf_ba=1, lsf_fwhm=LSF_FWHM)
    model = ThinDispersionModel(flux_profile="exponential", rotation_curve="arctan")
    runner = galpak.GalPaK3D(
        cube, variance=variance, instrument=instrument, model=model, quiet=True
    )
    return runner


def make_cube(seed=3):
    runner = galpak_objects(np.zeros((NZ, NY, NX)), 1.0)
    truth = galpak.GalaxyParameters(**TRUTH)
    clean = runner.create_convolved_cube(truth, (NZ, NY, NX)).data.copy()
    dv = runner.instrument.z_step_kms
    noise = NOISE_FRACTION * clean.max()
    rng = np.random.default_rng(seed)
    return clean, clean + noise * rng.normal(size=clean.shape), noise, dv


def to_ours(params, dv):
    """GalPaK parameters (pixels, degrees, channels) in our conventions (arcsec, radians,
    km/s). GalPaK's PA is counted from +y towards -x and points to the approaching side:
    our phi (from +x to the receding side) is PA - 90 deg."""
    return dict(
        x0=(params["x"] - (NX - 1) / 2) * PIXEL,
        y0=(params["y"] - (NY - 1) / 2) * PIXEL,
        phi=np.deg2rad(params["pa"] - 90.0),
        inclination=np.deg2rad(params["inclination"]),
        v_sys=(params["z"] - TRUTH["z"]) * dv,
        v_max=params["maximum_velocity"],
        r_t=params["turnover_radius"] * PIXEL,
        sigma0=params["velocity_dispersion"],
        r_eff=params["radius"] * PIXEL,
    )


def lsf_sigma_kms(dv):
    return LSF_FWHM / 2.35482 / DLAMBDA * dv


def velocity_axis(dv):
    return (np.arange(NZ) - TRUTH["z"]) * dv


def reduce_to_moments(cube, noise, dv):
    velocities = velocity_axis(dv)
    smooth = np.apply_along_axis(lambda s: np.convolve(s, np.ones(3) / 3, "same"), 0, cube)
    peak = velocities[np.argmax(smooth, axis=0)]
    window = np.abs(velocities[:, None, None] - peak[None]) <= WINDOW
    maps = pmt.moment_maps(cube, velocities, mask=window, noise=noise)
    errors = np.stack([maps.flux_error, maps.velocity_error, maps.dispersion_error])
    good = (maps.flux / maps.flux_error > SNR_MIN) & np.all(np.isfinite(errors) & (errors > 0), 0)
    return maps, good


GRID = pmt.PixelGrid((NY, NX), pixel_scale=PIXEL, supersampling=1)
PSF = pmt.GaussianPSF(PSF_FWHM)


def component(values):
    geometry = pmt.DiscGeometry(
        x0=values["x0"], y0=values["y0"], phi=values["phi"], inclination=values["inclination"]
    )
    light = pmt.Exponential(
        x0=values["x0"],
        y0=values["y0"],
        r_eff=values["r_eff"],
        q=values["q"],
        phi=values["phi"],
        amplitude=values["amplitude"],
    )
    velocity = pmt.DiscVelocity(
        geometry, pmt.ArctanCurve(v_max=values["v_max"], r_t=values["r_t"]), v_sys=values["v_sys"]
    )
    return pmt.KinematicComponent(light, velocity, values["sigma0"])


def build(maps, good, dv):
    def model():
        with pm.Model() as m:
            values = dict(
                x0=pm.Normal("x0", 0, 0.5),
                y0=pm.Normal("y0", 0, 0.5),
                phi=pm.Normal("phi", np.deg2rad(-90.0), 0.5),
                inclination=pm.Uniform("inclination", 0.1, 1.5),
                v_sys=pm.Normal("v_sys", 0, 50),
                v_max=pm.HalfNormal("v_max", 400),
                r_t=pm.LogNormal("r_t", np.log(0.5), 1.0),
                sigma0=pm.HalfNormal("sigma0", 100),
                r_eff=pm.LogNormal("r_eff", np.log(1.0), 1.0),
                q=pm.Uniform("q", 0.1, 1.0),
                amplitude=pm.LogNormal("amplitude", np.log(0.01), 3.0),
            )
            obs = pmt.observe_kinematics(component(values), GRID, PSF, lsf_sigma=lsf_sigma_kms(dv))
            pmt.kinematic_likelihood(
                obs,
                velocity=maps.velocity,
                velocity_sigma=maps.velocity_error,
                dispersion=maps.dispersion,
                dispersion_sigma=maps.dispersion_error,
                flux=maps.flux,
                flux_sigma=maps.flux_error,
                mask=good,
            )
        return m

    return model


def model_check(clean, dv):
    """Our maps at GalPaK's truth against the noise-free cube's moments (km/s): how well our
    thin disc represents GalPaK's galaxy (and a check of the convention mapping)."""
    truth = to_ours(TRUTH, dv)
    cos_i = np.cos(truth["inclination"])
    truth.update(q=float(np.sqrt(cos_i**2 + (0.15 * np.sin(truth["inclination"])) ** 2)))
    truth.update(amplitude=1.0)
    _, v_model, s_model = pmt.evaluate(
        pmt.observe_kinematics(component(truth), GRID, PSF, lsf_sigma=lsf_sigma_kms(dv))
    )
    maps = pmt.moment_maps(clean, velocity_axis(dv))
    bright = maps.flux > 0.02 * maps.flux.max()
    return dict(
        velocity_rms=float(np.sqrt(np.mean((v_model - maps.velocity)[bright] ** 2))),
        dispersion_rms=float(np.sqrt(np.mean((s_model - maps.dispersion)[bright] ** 2))),
        velocity_max=float(np.abs(v_model - maps.velocity)[bright].max()),
        dispersion_max=float(np.abs(s_model - maps.dispersion)[bright].max()),
    )


def noise_free_map(clean, cube, noise, dv):
    """Our model's MAP on the noise-free cube's moment maps (with the noisy fit's errors and
    spaxels): what the thin disc makes of GalPaK's thick one, without noise."""
    exact = pmt.moment_maps(clean, velocity_axis(dv))
    noisy_maps, good = reduce_to_moments(cube, noise, dv)
    maps = noisy_maps._replace(
        flux=exact.flux, velocity=exact.velocity, dispersion=exact.dispersion
    )
    start = dict(to_ours(TRUTH, dv), q=0.5, amplitude=0.01)
    with build(maps, good, dv)():
        best = pm.find_MAP(start=start, progressbar=False)
    return dict(
        v_max=float(best["v_max"]),
        sigma0=float(best["sigma0"]),
        inclination_deg=float(np.rad2deg(best["inclination"])),
        r_t_arcsec=float(best["r_t"]),
    )


def moment_noise_bias(clean, cube, noise, dv):
    """Mean (noisy - noise-free) moment maps over the spaxels used (km/s)."""
    maps, good = reduce_to_moments(cube, noise, dv)
    exact = pmt.moment_maps(clean, velocity_axis(dv))
    return dict(
        dispersion=float(np.mean((maps.dispersion - exact.dispersion)[good])),
        velocity_abs=float(np.mean(np.abs(maps.velocity - exact.velocity)[good])),
        dispersion_pull_sd=float(
            np.std(((maps.dispersion - exact.dispersion) / maps.dispersion_error)[good])
        ),
        velocity_pull_sd=float(
            np.std(((maps.velocity - exact.velocity) / maps.velocity_error)[good])
        ),
    )


def run_galpak(cube, noise, iterations):
    runner = galpak_objects(cube, float(noise**2))
    start = galpak.GalaxyParameters(
        x=(NX - 1) / 2,
        y=(NY - 1) / 2,
        z=NZ / 2,
        flux=float(cube.sum()),
        radius=4.0,
        inclination=45.0,
        pa=0.0,
        turnover_radius=2.0,
        maximum_velocity=150.0,
        velocity_dispersion=60.0,
    )
    t0 = time.perf_counter()
    runner.run_mcmc(
        max_iterations=iterations,
        initial_parameters=start,
        random_scale=RANDOM_SCALE,
        min_acceptance_rate=1,
        verbose=False,
    )
    seconds = time.perf_counter() - t0
    sub = runner.sub_chain
    half = len(sub) // 2
    summary, drift = {}, {}
    for name in ("maximum_velocity", "velocity_dispersion", "inclination", "turnover_radius"):
        values = np.asarray(sub[name], dtype=float)
        summary[name] = dict(median=float(np.median(values)), sd=float(np.std(values)))
        # convergence: the two halves of the retained chain agree (in posterior sd)
        drift[name] = float(
            (np.median(values[half:]) - np.median(values[:half])) / max(np.std(values), 1e-12)
        )
    return dict(
        seconds=seconds,
        accepted_iterations=iterations,
        acceptance_rate_percent=float(runner.acceptance_rate),
        retained=len(sub),
        posterior=summary,
        half_chain_drift_in_sd=drift,
        reduced_chi2=float(runner.chi_at_p),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000, help="GalPaK accepted steps")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1000 GalPaK steps, NUTS 2x(100+100)"
    )
    parser.add_argument("--draws", type=int, default=1000, help="NUTS tune = draws per chain")
    args = parser.parse_args()
    iterations = 1000 if args.quick else args.iterations
    draws = tune = 100 if args.quick else args.draws

    clean, cube, noise, dv = make_cube()
    truth_ours = to_ours(TRUTH, dv)
    report = dict(
        truth=dict(
            v_max=TRUTH["maximum_velocity"],
            sigma0=TRUTH["velocity_dispersion"],
            inclination_deg=TRUTH["inclination"],
            r_t_arcsec=truth_ours["r_t"],
        ),
        cube=dict(
            shape=[NZ, NY, NX],
            channel_kms=dv,
            pixel_arcsec=PIXEL,
            psf_fwhm=PSF_FWHM,
            lsf_sigma_kms=lsf_sigma_kms(dv),
            noise=noise,
            peak=float(clean.max()),
        ),
        our_model_at_truth_vs_cube_moments_kms=model_check(clean, dv),
        quick=args.quick,
        nuts_draws=draws,
        galpak_iterations=iterations,
    )
    print("model check", json.dumps(report["our_model_at_truth_vs_cube_moments_kms"]), flush=True)
    report["ours_map_on_noise_free_moments"] = noise_free_map(clean, cube, noise, dv)
    report["moment_noise_bias_kms"] = moment_noise_bias(clean, cube, noise, dv)
    report["load_average_start"] = os.getloadavg()
    print("noise-free MAP", json.dumps(report["ours_map_on_noise_free_moments"]), flush=True)
    print("moment noise", json.dumps(report["moment_noise_bias_kms"]), flush=True)

    t0 = time.perf_counter()
    maps, good = reduce_to_moments(cube, noise, dv)
    reduce_seconds = time.perf_counter() - t0
    result = run_ours(
        build(maps, good, dv), draws=draws, tune=tune, chains=2, seed=7, rerun=False, backend="jax"
    )
    posterior = result["trace"].posterior

    def stat(name, scale=1.0):
        values = np.asarray(posterior[name]).ravel() * scale
        return dict(median=float(np.median(values)), sd=float(np.std(values)))

    report["ours"] = dict(
        seconds=reduce_seconds + result["seconds"],
        moment_seconds=reduce_seconds,
        build_seconds=result["build_seconds"],
        compile_seconds=result["compile_seconds"],
        sample_seconds=result["sample_seconds"],
        spaxels_used=int(good.sum()),
        median_errors_kms=dict(
            velocity=float(np.median(maps.velocity_error[good])),
            dispersion=float(np.median(maps.dispersion_error[good])),
        ),
        ess_min=result["ess_min"],
        rhat_max=result["rhat_max"],
        divergences=result["divergences"],
        posterior=dict(
            v_max=stat("v_max"),
            sigma0=stat("sigma0"),
            inclination_deg=stat("inclination", 180 / np.pi),
            r_t_arcsec=stat("r_t"),
        ),
    )
    print("ours", json.dumps(report["ours"]), flush=True)

    gp = run_galpak(cube, noise, iterations)
    p = gp["posterior"]
    report["galpak"] = dict(
        gp,
        posterior=dict(
            v_max=p["maximum_velocity"],
            sigma0=p["velocity_dispersion"],
            inclination_deg=p["inclination"],
            r_t_arcsec={k: v * PIXEL for k, v in p["turnover_radius"].items()},
        ),
    )
    print("galpak", json.dumps(report["galpak"]), flush=True)
    report["load_average_end"] = os.getloadavg()
    report["stamp"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
