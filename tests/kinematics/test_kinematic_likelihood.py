"""Velocity, dispersion and flux likelihoods: logp against scipy on numpy model maps, inverse
variances, masks, Student-t, binned maps against numpy sums over bins, and clear errors."""

import numpy as np
import pymc as pm
import pytest
from kinematics_reference import convolve_bin, subpixel_points
from scipy import stats

import pymc_tracers as pmt
from pymc_tracers.model.kinematic_likelihood import (
    binned_dispersion,
    binned_kinematic_likelihood,
    binned_velocity,
    kinematic_likelihood,
    sigma_from_ivar,
)
from pymc_tracers.profiles.light import sersic_numpy

GRID = pmt.PixelGrid((12, 14), pixel_scale=0.25, supersampling=2)
PSF = pmt.GaussianPSF(0.6)
LIGHT = dict(x0=0.0, y0=0.0, r_eff=0.8, n=1.0, amplitude=2.0, q=0.6, phi=0.2)
GEOMETRY = dict(phi=0.2, inclination=1.0)


def _observation(v_max, sigma0, *, lsf=None):
    geometry = pmt.DiscGeometry(**GEOMETRY)
    velocity = pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=v_max, r_t=0.3), v_sys=1200.0)
    component = pmt.KinematicComponent(pmt.Sersic(**LIGHT), velocity, sigma0)
    return pmt.observe_kinematics(component, GRID, PSF, lsf_sigma=lsf, method="full")


def _maps(v_max, sigma0, lsf=None):
    return pmt.evaluate(_observation(v_max, sigma0, lsf=lsf))


def test_joint_logp_equals_scipy_with_ivar_mask_and_nans(rng):
    flux_true, v_true, s_true = _maps(200.0, 40.0)
    v_data = v_true + rng.normal(0, 5, v_true.shape)
    s_data = s_true + rng.normal(0, 4, s_true.shape)
    f_data = flux_true * (1 + 0.05 * rng.normal(size=flux_true.shape))
    v_ivar = np.full(v_data.shape, 1 / 5.0**2)
    v_ivar[0, :3] = 0.0  # unusable (MaNGA convention)
    s_data[5, 5] = np.nan
    mask = np.ones(GRID.shape, bool)
    mask[-1] = False
    with pm.Model() as model:
        v_max = pm.Normal("v_max", 200, 30)
        sigma0 = pm.HalfNormal("sigma0", 50)
        obs = _observation(v_max, sigma0)
        rvs = kinematic_likelihood(
            obs,
            velocity=v_data,
            velocity_ivar=v_ivar,
            dispersion=s_data,
            dispersion_sigma=4.0,
            flux=f_data,
            flux_sigma=0.05 * flux_true + 1e-6,
            mask=mask,
        )
    assert set(rvs) == {"velocity", "dispersion", "flux"}
    point = {"v_max": 180.0, "sigma0": 30.0}
    flux_m, v_m, s_m = _maps(180.0, 30.0)
    used_v = mask & (v_ivar > 0)
    used_s = mask & np.isfinite(s_data)
    expected = (
        stats.norm.logpdf(v_data[used_v], v_m[used_v], 5.0).sum()
        + stats.norm.logpdf(s_data[used_s], s_m[used_s], 4.0).sum()
        + stats.norm.logpdf(f_data[mask], flux_m[mask], (0.05 * flux_true + 1e-6)[mask]).sum()
    )
    values = model.initial_point()
    values.update({"v_max": point["v_max"], "sigma0_log__": np.log(point["sigma0"])})
    logp_terms = model.compile_fn(model.observedlogp)(values)
    np.testing.assert_allclose(logp_terms, expected, rtol=1e-9)
    assert model["velocity"].eval().size == used_v.sum()


def test_student_t_likelihood(rng):
    _, v_true, _ = _maps(200.0, 40.0)
    v_data = v_true + rng.standard_t(3, v_true.shape) * 5
    with pm.Model() as model:
        v_max = pm.Normal("v_max", 200, 30)
        kinematic_likelihood(_observation(v_max, 40.0), velocity=v_data, velocity_sigma=5.0, nu=3)
    values = {"v_max": 210.0}
    _, v_m, _ = _maps(210.0, 40.0)
    expected = stats.t.logpdf(v_data, 3, v_m, 5.0).sum()
    np.testing.assert_allclose(model.compile_fn(model.observedlogp)(values), expected, rtol=1e-9)


def test_bad_errors_say_what_is_wrong():
    _, v_true, _ = _maps(200.0, 40.0)
    with pm.Model():
        obs = _observation(200.0, 40.0)
        with pytest.raises(ValueError, match="negative values"):
            kinematic_likelihood(obs, velocity=v_true, velocity_ivar=-np.ones(GRID.shape))
        with pytest.raises(ValueError, match="exactly one of velocity_sigma"):
            kinematic_likelihood(obs, velocity=v_true, velocity_sigma=5.0, velocity_ivar=1.0)
        with pytest.raises(ValueError, match="non-positive values"):
            kinematic_likelihood(obs, velocity=v_true, velocity_sigma=np.zeros(GRID.shape))
        with pytest.raises(ValueError, match="has shape"):
            kinematic_likelihood(obs, velocity=v_true[:5], velocity_sigma=5.0)
        with pytest.raises(TypeError, match="KinematicObservation"):
            kinematic_likelihood(obs.velocity, velocity=v_true, velocity_sigma=5.0)
        with pytest.raises(ValueError, match="at least one"):
            kinematic_likelihood(obs)
    np.testing.assert_allclose(sigma_from_ivar([4.0, 0.0])[0], 0.5)
    assert np.isnan(sigma_from_ivar([4.0, 0.0])[1])


def _numpy_bins(bin_map, lsf_map):
    """Each bin's moments from numpy sums over its pixels of the binned moment sums."""
    (x, y), kernel = subpixel_points(GRID, PSF)
    light = sersic_numpy(x, y, **LIGHT)
    geometry = pmt.DiscGeometry(**GEOMETRY)
    curve = pmt.ArctanCurve(v_max=200.0, r_t=0.3)
    v = pmt.DiscVelocity(geometry, curve, v_sys=1200.0).numpy(x, y)
    sums = [convolve_bin(light * f, kernel, GRID) for f in (1.0, v, v**2 + 40.0**2)]
    ids = np.unique(bin_map[bin_map >= 0])
    velocity, dispersion = [], []
    for b in ids:
        inside = bin_map == b
        total = sums[0][inside].sum()
        mean = sums[1][inside].sum() / total
        lsf2 = (sums[0][inside] * lsf_map[inside] ** 2).sum() / total
        velocity.append(mean)
        dispersion.append(np.sqrt(sums[2][inside].sum() / total - mean**2 + lsf2))
    return ids, np.array(velocity), np.array(dispersion)


def test_binned_moments_are_those_of_the_summed_cube(rng):
    bin_map = (np.arange(GRID.ny)[:, None] // 3) * 10 + np.arange(GRID.nx)[None, :] // 4
    bin_map[0, 0] = -1
    lsf_map = rng.uniform(20, 30, GRID.shape)
    obs = _observation(200.0, 40.0, lsf=lsf_map)
    ids, v_ref, s_ref = _numpy_bins(bin_map, lsf_map)
    np.testing.assert_allclose(binned_velocity(obs, bin_map).eval(), v_ref, rtol=1e-10)
    np.testing.assert_allclose(binned_dispersion(obs, bin_map).eval(), s_ref, rtol=1e-9)
    # one pixel per bin: the binned maps are the pixel maps
    single = np.arange(GRID.ny * GRID.nx).reshape(GRID.shape)
    _, v_map, s_map = pmt.evaluate(obs)
    np.testing.assert_allclose(binned_velocity(obs, single).eval(), v_map.ravel(), rtol=1e-10)
    np.testing.assert_allclose(binned_dispersion(obs, single).eval(), s_map.ravel(), rtol=1e-9)

    v_data = v_ref + rng.normal(0, 5, v_ref.size)
    s_ivar = np.full(ids.max() + 1, np.nan)
    s_ivar[ids] = 1 / 6.0**2
    s_data = np.full(ids.max() + 1, np.nan)
    s_data[ids] = s_ref + rng.normal(0, 6, ids.size)
    v_full = np.full(ids.max() + 1, np.nan)
    v_full[ids] = v_data
    with pm.Model() as model:
        v_max = pm.Normal("v_max", 200, 30)
        rvs = binned_kinematic_likelihood(
            _observation(v_max, 40.0, lsf=lsf_map),
            bin_map,
            velocity=v_full,
            velocity_sigma=5.0,
            dispersion=s_data,
            dispersion_ivar=np.nan_to_num(s_ivar),
        )
    assert list(model.coords["velocity_bin"]) == list(ids)
    expected = (
        stats.norm.logpdf(v_data, v_ref, 5.0).sum() + stats.norm.logpdf(s_data[ids], s_ref, 6).sum()
    )
    logp = model.compile_fn(model.observedlogp)({"v_max": 200.0})
    np.testing.assert_allclose(logp, expected, rtol=1e-9)
    assert set(rvs) == {"velocity", "dispersion"}
