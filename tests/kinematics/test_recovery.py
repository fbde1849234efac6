"""Parameter recovery on simulated galaxies, against the classical PSF-blind estimates.

The data are simulated with the exact sub-pixel path at a finer supersampling than the fit
uses, plus Gaussian noise. The fast test finds the maximum a posteriori point of noiseless
data; the other samples with NUTS at two PSF sizes and checks that the 99% intervals cover
the truth while the classical estimates (median observed sigma; outer velocity / sin i) are
biased.
"""

import warnings

import numpy as np
import pymc as pm
import pytest

import pymc_tracers as pmt

TRUTH = dict(v_max=180.0, r_t=0.4, sigma0=35.0, inclination=np.deg2rad(55.0))
PIXEL = 0.25
R_EFF = 1.0


def _component(values, *, phi=0.3):
    geometry = pmt.DiscGeometry(phi=phi, inclination=values["inclination"])
    velocity = pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=values["v_max"], r_t=values["r_t"]))
    light = pmt.Exponential(r_eff=R_EFF, q=0.6, phi=phi)
    return pmt.KinematicComponent(light, velocity, values["sigma0"])


def _simulate(fwhm, shape, noise, rng):
    fine = pmt.PixelGrid(shape, PIXEL, supersampling=5)
    obs = pmt.observe_kinematics(_component(TRUTH), fine, pmt.GaussianPSF(fwhm), method="full")
    _, v, s = pmt.evaluate(obs)
    return v + noise * rng.normal(size=v.shape), s + noise * rng.normal(size=s.shape)


def _model(v_data, s_data, fwhm, noise, shape):
    grid = pmt.PixelGrid(shape, PIXEL, supersampling=2)
    with pm.Model() as model:
        values = dict(
            v_max=pm.HalfNormal("v_max", 400),
            r_t=pm.LogNormal("r_t", np.log(0.5), 1.0),
            sigma0=pm.HalfNormal("sigma0", 100),
            inclination=pm.Uniform("inclination", 0.2, 1.4),
        )
        obs = pmt.observe_kinematics(
            _component(values), grid, pmt.GaussianPSF(fwhm), convolve_at="pixel"
        )
        pmt.kinematic_likelihood(
            obs, velocity=v_data, velocity_sigma=noise, dispersion=s_data, dispersion_sigma=noise
        )
    return model, obs


def _classical(v_data, s_data, shape):
    """Median observed sigma; mean velocity of the outer 20% of the major axis / sin i."""
    grid = pmt.PixelGrid(shape, PIXEL)
    x, y = grid.coordinates()
    along = np.cos(0.3) * x + np.sin(0.3) * y
    across = -np.sin(0.3) * x + np.cos(0.3) * y
    slit = np.abs(across) < PIXEL
    outer = slit & (along > 0.8 * along[slit].max())
    return np.median(s_data), np.mean(v_data[outer]) / np.sin(TRUTH["inclination"])


@pytest.mark.slow  # ~150 s on the shared 2-core machine (compilation and the optimiser)
def test_map_recovers_a_beam_smeared_disc_where_the_classical_estimate_fails(rng):
    shape, fwhm = (20, 20), 1.2  # FWHM / R_e = 1.2
    v_data, s_data = _simulate(fwhm, shape, 1e-3, rng)
    model, obs = _model(v_data, s_data, fwhm, 1.0, shape)
    assert obs.path == "pixel"  # free inclination: the full path
    with model:
        start = {"v_max": 150.0, "r_t": 0.6, "sigma0": 50.0, "inclination": 0.8}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            best = pm.find_MAP(start=start, progressbar=False)
    # pixel-scale convolution with s = 2 against the exact s = 5 simulation: percent-level
    assert best["v_max"] == pytest.approx(TRUTH["v_max"], rel=0.01)
    assert best["r_t"] == pytest.approx(TRUTH["r_t"], rel=0.03)
    assert best["sigma0"] == pytest.approx(TRUTH["sigma0"], rel=0.01)
    assert best["inclination"] == pytest.approx(TRUTH["inclination"], abs=0.02)
    sigma_median, v_outer = _classical(v_data, s_data, shape)
    assert sigma_median > 1.2 * TRUTH["sigma0"]  # beam smearing inflates the dispersion
    assert v_outer < 0.95 * TRUTH["v_max"]  # and flattens the outer velocities


@pytest.mark.slow
@pytest.mark.parametrize("fwhm", [0.5, 1.5])
def test_nuts_intervals_cover_the_truth_and_the_classical_estimate_is_biased(fwhm):
    rng = np.random.default_rng(int(fwhm * 10))
    shape, noise = (24, 24), 8.0
    v_data, s_data = _simulate(fwhm, shape, noise, rng)
    model, _ = _model(v_data, s_data, fwhm, noise, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pmt.fit(
            model,
            draws=500,
            tune=500,
            chains=2,
            random_seed=1,
            progressbar=False,
            map_draws=10,
            log_likelihood=False,
        )
    for name, truth in TRUTH.items():
        low, high = result.percentiles(name, (0.5, 99.5))
        assert low <= truth <= high, (name, low, truth, high)
    sigma_median, _ = _classical(v_data, s_data, shape)
    low, high = result.percentiles("sigma0", (0.5, 99.5))
    if fwhm / R_EFF >= 1.0:
        assert sigma_median > high  # the classical estimate lies outside our 99% interval
