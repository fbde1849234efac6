"""Kinematic populations: V_2.2 and V_flat, a batched Tully-Fisher model, V/sigma and the
rotation- against dispersion-dominated comparison."""

import json
import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import optimize, special, stats

import pymc_tracers as pmt
from pymc_tracers.model.kinematic_population import (
    EXPONENTIAL_R_EFF_OVER_R_D,
    rotation_speed_numpy,
    velocity_22_numpy,
)

V_MAX = np.array([120.0, 180.0, 240.0])
SHAPE_PARAMETER = np.array([0.3, 0.6, 1.1])  # r_t or r_d, arcsec
R_D = np.array([0.5, 0.8, 1.2])  # light scale lengths, arcsec


def _freeman_reference(v_max, r_d, radius):
    """Freeman (1970) with unscaled Bessel functions and a peak found on a dense grid."""
    y_grid = np.linspace(0.01, 5.0, 200_001)
    shape = y_grid**2 * (
        special.iv(0, y_grid) * special.kv(0, y_grid)
        - special.iv(1, y_grid) * special.kv(1, y_grid)
    )
    y = radius / (2 * r_d)
    value = y**2 * (special.iv(0, y) * special.kv(0, y) - special.iv(1, y) * special.kv(1, y))
    return v_max * np.sqrt(value / shape.max())


REFERENCES = {
    pmt.ArctanCurve: ("r_t", lambda v, a, r: 2 / np.pi * v * np.arctan(r / a)),
    pmt.TanhCurve: ("r_t", lambda v, a, r: v * np.tanh(r / a)),
    pmt.ExponentialDiscCurve: ("r_d", _freeman_reference),
}


@pytest.mark.parametrize("curve_type", list(REFERENCES))
def test_velocity_22_matches_a_numpy_reference_for_each_curve(curve_type):
    name, reference = REFERENCES[curve_type]
    curve = curve_type(v_max=V_MAX, **{name: SHAPE_PARAMETER})
    expected = reference(V_MAX, SHAPE_PARAMETER, 2.2 * R_D)
    graph = pmt.velocity_22(curve, r_d=R_D).eval()
    assert graph.shape == (3,)
    np.testing.assert_allclose(graph, expected, rtol=1e-8)
    np.testing.assert_allclose(velocity_22_numpy(curve, r_d=R_D), expected, rtol=1e-8)
    # r_eff of an exponential light profile: r_d = r_eff / b_1
    b1 = optimize.brentq(lambda b: special.gammainc(2, b) - 0.5, 1, 2)
    from_r_eff = pmt.velocity_22(curve, r_eff=R_D * b1).eval()
    np.testing.assert_allclose(from_r_eff, expected, rtol=1e-8)
    assert EXPONENTIAL_R_EFF_OVER_R_D == pytest.approx(b1, rel=1e-12)


def test_freeman_v22_is_nearly_its_peak_and_one_galaxy_gives_a_scalar():
    # the exponential disc's curve peaks at 2.15 r_d: V_2.2 is within 0.1% of v_max there
    curve = pmt.ExponentialDiscCurve(v_max=200.0, r_d=0.7)
    v22 = pmt.velocity_22(curve, r_d=0.7).eval()
    assert np.ndim(v22) == 0
    assert 0.999 * 200 < v22 < 200.0


def test_rotation_speed_one_radius_for_all_galaxies_and_bad_inputs():
    curve = pmt.TanhCurve(v_max=V_MAX, r_t=SHAPE_PARAMETER)
    np.testing.assert_allclose(
        pmt.rotation_speed(curve, 1.0).eval(), V_MAX * np.tanh(1.0 / SHAPE_PARAMETER)
    )
    np.testing.assert_allclose(
        rotation_speed_numpy(curve, 1.0), V_MAX * np.tanh(1 / SHAPE_PARAMETER)
    )
    with pytest.raises(ValueError, match="finite and >= 0"):
        pmt.rotation_speed(curve, -1.0)
    with pytest.raises(TypeError, match="rotation curve"):
        pmt.rotation_speed(lambda r: r, 1.0)
    with pytest.raises(ValueError, match="exactly one of r_d"):
        pmt.velocity_22(curve)


def test_flat_velocity_is_the_asymptote_and_refused_for_a_declining_curve():
    curve = pmt.ArctanCurve(v_max=V_MAX, r_t=SHAPE_PARAMETER)
    np.testing.assert_allclose(pmt.flat_velocity(curve), V_MAX)
    far = pmt.rotation_speed(curve, 1e7).eval()
    np.testing.assert_allclose(far, V_MAX, rtol=1e-6)
    with pytest.raises(TypeError, match="no flat part"):
        pmt.flat_velocity(pmt.ExponentialDiscCurve(v_max=200.0, r_d=1.0))


@pytest.mark.parametrize("curve_type", list(REFERENCES))
def test_curve_with_speed_at_has_that_speed_there(curve_type):
    name, _ = REFERENCES[curve_type]
    speed = np.array([90.0, 150.0, 210.0])
    curve = pmt.curve_with_speed_at(
        curve_type, speed=speed, radius=2.2 * R_D, **{name: SHAPE_PARAMETER}
    )
    assert isinstance(curve, curve_type)
    np.testing.assert_allclose(pmt.velocity_22(curve, r_d=R_D).eval(), speed, rtol=1e-10)
    with pytest.raises(ValueError, match="> 0 arcsec"):
        pmt.curve_with_speed_at(curve_type, speed=speed, radius=0.0, **{name: 1.0})
    with pytest.raises(TypeError, match="curve_type"):
        pmt.curve_with_speed_at(pmt.RadialConstant, speed=speed, radius=1.0)


def test_hierarchical_lognormal_population_draws():
    n = 4000
    with pm.Model(coords={"galaxy": np.arange(n)}):
        sigma0 = pmt.population.hierarchical_lognormal("sigma0", np.log10(40.0), 0.15)
    draws = pm.draw(sigma0, random_seed=1)
    assert draws.shape == (n,) and np.all(draws > 0)
    assert np.median(draws) == pytest.approx(40.0, rel=0.02)
    assert np.std(np.log10(draws)) == pytest.approx(0.15, rel=0.05)
    with pm.Model(coords={"galaxy": np.arange(3)}):
        with pytest.raises(ValueError, match="tau must be finite and > 0"):
            pmt.population.hierarchical_lognormal("sigma0", 1.6, 0.0)


# ---------------------------------------------------------------------------- a TF sample
TF_TRUTH = dict(intercept=2.25, slope=0.28, scatter=0.04)
NOISE = 6.0
PIXEL = 0.3


def _tf_galaxies(n, seed):
    rng = np.random.default_rng(seed)
    log_mass = np.sort(rng.uniform(9.2, 10.8, n))
    r_eff = rng.uniform(1.0, 1.6, n)
    log_v22 = (
        TF_TRUTH["intercept"]
        + TF_TRUTH["slope"] * (log_mass - 10.0)
        + TF_TRUTH["scatter"] * rng.normal(size=n)
    )
    return dict(
        log_mass=log_mass,
        r_eff=r_eff,
        r_d=r_eff / EXPONENTIAL_R_EFF_OVER_R_D,
        v22=10**log_v22,
        r_t=rng.uniform(0.2, 0.5, n),
        sigma0=10 ** rng.normal(np.log10(35.0), 0.1, n),
        inclination=np.deg2rad(rng.uniform(45.0, 70.0, n)),
        phi=rng.uniform(-1.5, 1.5, n),
        fwhm=rng.uniform(0.6, 1.0, n),
    )


def _tf_component(g, curve, sigma0):
    geometry = pmt.DiscGeometry(phi=g["phi"], inclination=g["inclination"])
    q = np.sqrt(np.cos(g["inclination"]) ** 2 * (1 - 0.2**2) + 0.2**2)
    light = pmt.Exponential(r_eff=g["r_eff"], q=q, phi=g["phi"])
    return pmt.KinematicComponent(light, pmt.DiscVelocity(geometry, curve), sigma0)


def _tf_data(g, shape, seed):
    rng = np.random.default_rng(seed)
    curve = pmt.curve_with_speed_at(
        pmt.ArctanCurve, speed=g["v22"], radius=2.2 * g["r_d"], r_t=g["r_t"]
    )
    obs = pmt.observe_kinematics(
        _tf_component(g, curve, g["sigma0"]),
        pmt.PixelGrid(shape, PIXEL, supersampling=4),
        [pmt.GaussianPSF(f) for f in g["fwhm"]],
        method="full",
    )
    _, v, s = pmt.evaluate(obs)
    return v + NOISE * rng.normal(size=v.shape), s + NOISE * rng.normal(size=s.shape)


def _tf_model(g, v_data, s_data, shape):
    n = len(g["v22"])
    with pm.Model(coords={"galaxy": np.arange(n)}) as model:
        intercept = pm.Normal("intercept", 2.2, 0.3)  # log10(km/s) at log M* = 10
        slope = pm.Normal("slope", 0.3, 0.2)
        scatter = pm.HalfNormal("scatter", 0.1)  # dex
        log_v22 = pmt.population.linear_relation(
            "log_v22",
            g["log_mass"],
            intercept=intercept,
            slope=slope,
            scatter=scatter,
            pivot=10.0,
            centered=True,  # each galaxy's maps pin its V_2.2 far better than the scatter
        )
        r_t = pm.LogNormal("r_t", np.log(0.4), 0.5, dims="galaxy")
        curve = pmt.curve_with_speed_at(
            pmt.ArctanCurve, speed=10**log_v22, radius=2.2 * g["r_d"], r_t=r_t
        )
        pm.Deterministic("v_22", pmt.velocity_22(curve, r_d=g["r_d"]), dims="galaxy")
        sigma0 = pmt.population.hierarchical_lognormal(
            "sigma0",
            pm.Normal("log_sigma0_mu", 1.6, 0.3),
            pm.HalfNormal("log_sigma0_tau", 0.3),
            centered=True,
        )
        obs = pmt.observe_kinematics(
            _tf_component(g, curve, sigma0),
            pmt.PixelGrid(shape, PIXEL, supersampling=2),
            [pmt.GaussianPSF(f) for f in g["fwhm"]],
            convolve_at="pixel",
            tolerance=0.1,
        )
        pmt.kinematic_likelihood(
            obs, velocity=v_data, velocity_sigma=NOISE, dispersion=s_data, dispersion_sigma=NOISE
        )
    return model, obs


def test_batched_tully_fisher_model_builds_on_the_disc_radial_path():
    shape = (8, 8)
    g = _tf_galaxies(4, seed=2)
    v_data, s_data = _tf_data(g, shape, seed=3)
    model, obs = _tf_model(g, v_data, s_data, shape)
    assert obs.path == "disc_radial"
    assert obs.velocity.type.shape == (4, *shape)
    for name in ("log_v22", "v_22", "r_t", "sigma0", "log10_sigma0"):
        assert model.named_vars_to_dims[name] == ("galaxy",)
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    # the relation holds for V_2.2 itself: v_22 = 10**log_v22 at any point
    outputs = model.compile_fn(
        [model["log_v22"], model["v_22"]], inputs=model.value_vars, on_unused_input="ignore"
    )
    log_v22, v22 = outputs(point)
    np.testing.assert_allclose(v22, 10**log_v22, rtol=1e-10)


@pytest.mark.slow  # 105 s on the shared 2-core machine under load
def test_tully_fisher_relation_recovers_the_truth_with_coverage():
    shape = (14, 14)
    g = _tf_galaxies(12, seed=5)
    v_data, s_data = _tf_data(g, shape, seed=6)
    model, _ = _tf_model(g, v_data, s_data, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pmt.fit(
            model, draws=500, tune=500, chains=2, random_seed=3, progressbar=False,
            map_draws=2, log_likelihood=False,
        )  # fmt: skip
    for name, truth in TF_TRUTH.items():
        low, high = result.percentiles(name, (0.5, 99.5))
        assert low <= truth <= high, (name, low, truth, high)
    # the slope is measured: its 99% interval excludes 0
    assert result.percentiles("slope", (0.5,))[0] > 0
    # per-galaxy V_2.2 and sigma0: most 68% intervals contain the truth (coverage 0.68;
    # with 12 galaxies, >= 5 of 12 fails by chance with probability < 1%)
    for name, truth in (("v_22", g["v22"]), ("sigma0", g["sigma0"])):
        low, high = result.percentiles(name, (16, 84))
        covered = np.sum((low <= truth) & (truth <= high))
        assert covered >= 5, (name, covered)
        median = result.percentiles(name, (50,))[0]
        assert np.median(np.abs(median / truth - 1)) < 0.05


# ---------------------------------------------------------------------------- V / sigma
def _idata(posterior, log_likelihood=None, shape=None):
    groups = dict(posterior=xr.Dataset(posterior))
    if log_likelihood is not None:
        groups["log_likelihood"] = xr.Dataset(log_likelihood)
    idata = az.InferenceData(**groups)
    if shape is not None:
        n_used = int(np.prod(shape))
        idata.attrs["pymc_tracers"] = json.dumps(
            {"likelihoods": {"velocity": {"shape": list(shape), "n_used": n_used}}}
        )
    return idata


def test_v_over_sigma_probability_matches_the_normal_reference():
    rng = np.random.default_rng(0)
    chains, draws = 4, 5000
    # V/sigma0 = V / 50 with V ~ Normal(mean, 10): P(V/sigma0 > 1) = P(V > 50)
    means = np.array([200.0, 15.0, 52.0])
    v = means + 10.0 * rng.normal(size=(chains, draws, 3))
    posterior = {
        "v_22": (("chain", "draw", "galaxy"), v),
        "sigma0": (("chain", "draw", "galaxy"), np.full((chains, draws, 3), 50.0)),
    }
    table = pmt.v_over_sigma(_idata(posterior))
    expected = stats.norm.sf(50.0, loc=means, scale=10.0)
    np.testing.assert_allclose(table["p_rotation"], expected, atol=0.01)
    assert list(table["class"]) == ["rotation-dominated", "dispersion-dominated", "ambiguous"]
    np.testing.assert_allclose(table["median"], means / 50.0, rtol=0.01)
    with pytest.raises(ValueError, match="no 'v_flat'"):
        pmt.v_over_sigma(_idata(posterior), velocity="v_flat")
    with pytest.raises(ValueError, match="threshold"):
        pmt.v_over_sigma(_idata(posterior), threshold=0.0)


def test_rotation_or_dispersion_sums_pointwise_loo_per_galaxy():
    rng = np.random.default_rng(1)
    chains, draws, shape = 2, 400, (2, 3, 3)
    n = int(np.prod(shape))
    base_rotating = rng.normal(-3.0, 0.3, n)
    base_dispersion = base_rotating.copy()
    base_dispersion[:9] -= 2.0  # galaxy 0: the dispersion-only model fits its pixels badly
    base_dispersion[9:] += 0.01 * rng.normal(size=9)  # galaxy 1: the two fit equally

    def fit(base, with_ratio):
        ll = base + 1e-3 * rng.normal(size=(chains, draws, n))
        dims = ("chain", "draw", "velocity_pixel")
        log_likelihood = {"velocity": (dims, ll)}
        posterior = {"sigma0": (("chain", "draw", "galaxy"), np.full((chains, draws, 2), 40.0))}
        if with_ratio:
            v = np.stack([np.full((chains, draws), 160.0), np.full((chains, draws), 8.0)], -1)
            posterior["v_22"] = (("chain", "draw", "galaxy"), v)
        idata = _idata(posterior, log_likelihood, shape)
        return idata.assign_coords({"velocity_pixel": np.arange(n)}, groups="log_likelihood")

    table = pmt.rotation_or_dispersion(fit(base_rotating, True), fit(base_dispersion, False))
    assert table.loc[0, "n_pixels"] == 9
    np.testing.assert_allclose(table["elpd_diff"], [18.0, 0.0], atol=0.1)
    assert list(table["preferred"]) == ["rotating", "neither"]
    assert list(table["class"]) == ["rotation-dominated", "dispersion-dominated"]
    with pytest.raises(ValueError, match="different pixels"):
        pmt.rotation_or_dispersion(
            fit(base_rotating, True), fit(base_dispersion, False).sel(velocity_pixel=slice(0, 9))
        )


def test_rotation_or_dispersion_for_one_galaxy_needs_galaxy_of():
    rng = np.random.default_rng(2)
    chains, draws, n = 2, 300, 12
    base = rng.normal(-3.0, 0.3, n)

    def fit(offset):
        ll = base + offset + 1e-3 * rng.normal(size=(chains, draws, n))
        idata = _idata(
            {"sigma0": (("chain", "draw"), np.full((chains, draws), 40.0))},
            {"velocity": (("chain", "draw", "velocity_pixel"), ll)},
            shape=(3, 4),  # one galaxy's (ny, nx) map
        )
        return idata.assign_coords({"velocity_pixel": np.arange(n)}, groups="log_likelihood")

    with pytest.raises(ValueError, match="galaxy_of"):
        pmt.rotation_or_dispersion(fit(0.0), fit(-1.0))
    table = pmt.rotation_or_dispersion(fit(0.0), fit(-1.0), galaxy_of={"velocity": 0})
    assert len(table) == 1
    assert table["elpd_diff"].iloc[0] == pytest.approx(12.0, abs=0.1)
    assert table["preferred"].iloc[0] == "rotating"
    assert "class" not in table  # no V/sigma without the speed in the rotating fit


def _rotation_fits():
    """Two galaxies in one batch, one rotating, one not; fitted with both models."""
    shape, pixel, noise = (12, 12), 0.3, 6.0
    inclination, phi, r_eff = np.deg2rad([60.0, 60.0]), np.array([0.4, -0.8]), 1.2
    truth = dict(v_max=np.array([160.0, 0.0]), sigma0=np.array([35.0, 70.0]))
    psf = pmt.GaussianPSF(0.7)
    q = np.sqrt(np.cos(inclination) ** 2 * 0.96 + 0.04)

    def component(v_max, sigma0, v_sys=0.0, r_t=0.4):
        geometry = pmt.DiscGeometry(phi=phi, inclination=inclination)
        rotation = 0.0 if v_max is None else pmt.ArctanCurve(v_max=v_max, r_t=r_t)
        velocity = pmt.DiscVelocity(geometry, rotation, v_sys=v_sys)
        light = pmt.Exponential(r_eff=r_eff, q=q, phi=phi)
        return pmt.KinematicComponent(light, velocity, sigma0)

    rng = np.random.default_rng(7)
    fine = pmt.PixelGrid(shape, pixel, supersampling=4)
    obs = pmt.observe_kinematics(component(truth["v_max"], truth["sigma0"]), fine, psf)
    _, v, s = pmt.evaluate(obs)
    v_data, s_data = v + noise * rng.normal(size=v.shape), s + noise * rng.normal(size=v.shape)
    grid = pmt.PixelGrid(shape, pixel, supersampling=2)
    results = {}
    for rotating in (True, False):
        with pm.Model(coords={"galaxy": [0, 1]}) as model:
            sigma0 = pm.HalfNormal("sigma0", 100, dims="galaxy")
            v_sys = pm.Normal("v_sys", 0, 30, dims="galaxy")
            if rotating:
                v_max = pm.HalfNormal("v_max", 300, dims="galaxy")
                r_t = pm.LogNormal("r_t", np.log(0.4), 0.5, dims="galaxy")
                disc = component(v_max, sigma0, v_sys, r_t)
                curve = disc.velocity.rotation
                pm.Deterministic("v_22", pmt.velocity_22(curve, r_eff=r_eff), dims="galaxy")
            else:
                disc = component(None, sigma0, v_sys)
            obs = pmt.observe_kinematics(disc, grid, psf, convolve_at="pixel", tolerance=0.1)
            pmt.kinematic_likelihood(
                obs, velocity=v_data, velocity_sigma=noise, dispersion=s_data,
                dispersion_sigma=noise,
            )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[rotating] = pmt.fit(
                model, draws=400, tune=400, chains=2, random_seed=2, progressbar=False,
                map_draws=2,
            )  # fmt: skip
    return results[True], results[False]


@pytest.mark.slow  # two small batched fits: 290 s on the shared 2-core machine under load
def test_rotating_and_non_rotating_galaxies_are_told_apart():
    rotating, dispersion = _rotation_fits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pmt.rotation_or_dispersion(rotating, dispersion)
    # galaxy 0 rotates: LOO prefers the disc decisively and V/sigma0 > 1 with P > 0.95
    assert table.loc[0, "preferred"] == "rotating"
    assert table.loc[0, "elpd_diff"] > 50
    assert table.loc[0, "class"] == "rotation-dominated"
    # galaxy 1 does not: no preference for rotation, V/sigma0 < 1 with P > 0.95
    assert table.loc[1, "preferred"] != "rotating"
    assert table.loc[1, "class"] == "dispersion-dominated"
