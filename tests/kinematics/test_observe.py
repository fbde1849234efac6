"""observe_kinematics against a brute-force line cube and numpy moment sums; beam smearing."""

import numpy as np
import pytest
from kinematics_reference import cube_moments, moments_numpy, subpixel_points

import pymc_tracers as pmt
from pymc_tracers.profiles.light import sersic_numpy

GRID = pmt.PixelGrid((24, 22), pixel_scale=0.2, supersampling=3, center=(0.05, -0.1))


def _disc(v_sys=1000.0, inclination=1.0, phi=0.4, x0=0.1, y0=-0.05, dispersion=None):
    geometry = pmt.DiscGeometry(x0=x0, y0=y0, phi=phi, inclination=inclination)
    velocity = pmt.DiscVelocity(
        geometry, pmt.ArctanCurve(v_max=220.0, r_t=0.4), v_sys=v_sys, radial=15.0
    )
    if dispersion is None:
        dispersion = pmt.ExponentialDispersion(sigma0=40.0, r_sigma=0.8, floor=20.0)
    return velocity, pmt.DiscDispersion(geometry, dispersion)


LIGHT = dict(x0=0.0, y0=0.0, r_eff=1.0, n=1.0, amplitude=3.0, q=0.6, phi=0.35)


def _full(*args, **options):
    """The full path (with everything fixed, "auto" takes disc_radial: test_disc_transfer)."""
    return pmt.observe_kinematics(*args, method="full", **options)


def test_moments_equal_those_of_a_psf_smeared_line_cube():
    psf = pmt.GaussianPSF(0.7)
    velocity, dispersion = _disc()
    component = pmt.KinematicComponent(pmt.Sersic(**LIGHT), velocity, dispersion)
    flux, v_obs, s_obs = pmt.evaluate(_full(component, GRID, psf))

    (x, y), kernel = subpixel_points(GRID, psf)
    light = sersic_numpy(x, y, **LIGHT)
    cube_flux, cube_v, cube_s, n_channels = cube_moments(
        light, velocity.numpy(x, y), dispersion.numpy(x, y), kernel, GRID, channel_width=4.0
    )
    assert n_channels > 200
    # the bound: 1e-6 relative in km/s (round-off is ~1e-11 here)
    np.testing.assert_allclose(v_obs, cube_v, rtol=1e-6, atol=0)
    np.testing.assert_allclose(s_obs, cube_s, rtol=1e-6, atol=0)
    np.testing.assert_allclose(flux, cube_flux * GRID.subpixel_scale**2, rtol=1e-9)


def test_lsf_adds_in_quadrature_as_number_or_map():
    psf = pmt.GaussianPSF(0.5)
    velocity, dispersion = _disc(v_sys=0.0)
    component = pmt.KinematicComponent(pmt.Sersic(**LIGHT), velocity, dispersion)
    _, v0, s0 = pmt.evaluate(_full(component, GRID, psf))
    _, v1, s1 = pmt.evaluate(_full(component, GRID, psf, lsf_sigma=30.0))
    lsf_map = np.linspace(20, 40, GRID.nx)[None, :] * np.ones(GRID.shape)
    _, _, s2 = pmt.evaluate(_full(component, GRID, psf, lsf_sigma=lsf_map))
    np.testing.assert_allclose(v1, v0)
    np.testing.assert_allclose(s1, np.sqrt(s0**2 + 30.0**2), rtol=1e-12)
    np.testing.assert_allclose(s2, np.sqrt(s0**2 + lsf_map**2), rtol=1e-12)
    with pytest.raises(ValueError, match="lsf_sigma has shape"):
        _full(component, GRID, psf, lsf_sigma=np.ones((3, 3)))
    with pytest.raises(ValueError, match="finite and >= 0"):
        _full(component, GRID, psf, lsf_sigma=-1.0)


def test_two_components_and_a_batch_equal_numpy_references():
    psfs = [pmt.GaussianPSF(0.5), pmt.GaussianPSF(0.9)]
    v_sys = np.array([500.0, 2000.0])
    inclination = np.array([0.6, 1.2])
    geometry = pmt.DiscGeometry(phi=np.array([0.3, -0.5]), inclination=inclination)
    disc_v = pmt.DiscVelocity(geometry, pmt.TanhCurve(v_max=200.0, r_t=0.5), v_sys=v_sys)
    # a non-rotating bulge offset by 30 km/s, hotter, with its own light
    bulge_light = dict(x0=0.0, y0=0.0, r_eff=0.3, n=2.0, amplitude=5.0, q=0.9, phi=0.0)
    disc_light = dict(LIGHT, amplitude=np.array([3.0, 1.0]))
    components = [
        pmt.KinematicComponent(pmt.Sersic(**disc_light), disc_v, 25.0),
        pmt.KinematicComponent(pmt.Sersic(**bulge_light), pmt.Constant(v_sys + 30.0), 120.0),
    ]
    obs = _full(components, GRID, psfs)
    assert obs.n_galaxies == 2 and obs.path == "subpixel"
    flux, v_obs, s_obs = pmt.evaluate(obs)
    assert v_obs.shape == (2, *GRID.shape)
    for n in range(2):
        (x, y), kernel = subpixel_points(GRID, psfs[n])
        light_d = sersic_numpy(x, y, **dict(disc_light, amplitude=disc_light["amplitude"][n]))
        light_b = sersic_numpy(x, y, **bulge_light)
        one = pmt.DiscVelocity(
            pmt.DiscGeometry(phi=[0.3, -0.5][n], inclination=inclination[n]),
            pmt.TanhCurve(v_max=200.0, r_t=0.5),
            v_sys=v_sys[n],
        )
        v_d = one.numpy(x, y)
        light = light_d + light_b
        # the mixture's mean and variance, from each component's own moments
        mean = (light_d * v_d + light_b * (v_sys[n] + 30.0)) / light
        second = (
            light_d * (v_d**2 + 25.0**2) + light_b * ((v_sys[n] + 30) ** 2 + 120.0**2)
        ) / light
        expected = moments_numpy(light, mean, np.sqrt(second - mean**2), kernel, GRID)
        np.testing.assert_allclose(v_obs[n], expected[1], rtol=1e-9)
        np.testing.assert_allclose(s_obs[n], expected[2], rtol=1e-8)


def test_pixel_scale_convolution_is_close_to_the_exact_path():
    psf = pmt.GaussianPSF(0.8)  # 4 pixels FWHM
    velocity, dispersion = _disc(v_sys=0.0)
    component = pmt.KinematicComponent(pmt.Sersic(**LIGHT), velocity, dispersion)
    exact = pmt.evaluate(_full(component, GRID, psf))
    pixel_obs = _full(component, GRID, psf, convolve_at="pixel")
    assert pixel_obs.path == "pixel"
    pixel = pmt.evaluate(pixel_obs)
    # second order in pixel / PSF: well below typical IFU errors (5-10 km/s)
    assert np.abs(pixel[1] - exact[1]).max() < 1.0
    assert np.abs(pixel[2] - exact[2]).max() < 1.0
    assert np.abs(pixel[1] - exact[1]).max() > 1e-6  # it is an approximation


def test_beam_smearing_raises_central_dispersion_with_fwhm_over_re():
    """A pure rotator with constant sigma = 30 km/s: the observed sigma peaks at the centre
    and grows with FWHM / R_e; outer velocities are flattened; the classical estimate
    (the median of the observed sigma map) is biased high."""
    grid = pmt.PixelGrid((31, 31), pixel_scale=0.15, supersampling=3)
    geometry = pmt.DiscGeometry(phi=0.0, inclination=np.deg2rad(60.0))
    velocity = pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=200.0, r_t=0.3))
    light = dict(x0=0.0, y0=0.0, r_eff=1.0, n=1.0, amplitude=1.0, q=0.5, phi=0.0)
    component = pmt.KinematicComponent(pmt.Sersic(**light), velocity, 30.0)
    peaks, medians, outer = [], [], []
    for fwhm in [0.3, 0.6, 1.0, 1.5]:
        psf = pmt.GaussianPSF(fwhm)
        _, v_obs, s_obs = pmt.evaluate(_full(component, grid, psf))
        (x, y), kernel = subpixel_points(grid, psf)
        _, v_ref, s_ref = moments_numpy(
            sersic_numpy(x, y, **light), velocity.numpy(x, y), 30.0, kernel, grid
        )
        np.testing.assert_allclose(v_obs, v_ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(s_obs, s_ref, rtol=1e-9)
        centre = np.unravel_index(np.argmax(s_obs), s_obs.shape)
        assert abs(centre[0] - 15) <= 1 and abs(centre[1] - 15) <= 1  # peak at the centre
        peaks.append(s_obs.max())
        medians.append(np.median(s_obs))
        outer.append(v_obs[15, -1])  # major axis at 2.25"
    assert all(p > 30.0 for p in peaks) and np.all(np.diff(peaks) > 0)
    assert peaks[-1] > 2 * 30.0  # FWHM 1.5 R_e: more than twice the true dispersion
    assert np.all(np.diff(medians) > 0) and medians[0] > 30.0
    intrinsic = velocity.numpy(np.array([2.25]), np.array([0.0]))[0]
    assert np.all(np.diff(outer) < 0) and outer[-1] < 0.95 * intrinsic


def test_full_path_psf_swap_equals_a_fresh_model():
    """A kinematic model on the full path (free inclination) built with a wide PSF and given a
    narrower one has the logp and gradient of a model built with the narrower one (the
    metallicity tests cover both convolution scales: tests/forward/test_renderers.py)."""
    convolve_at = "pixel"
    import pymc as pm

    from pymc_tracers.forward.transfer import BUILD_MODE

    rng = np.random.default_rng(3)
    grid = pmt.PixelGrid((12, 11), pixel_scale=0.25, supersampling=2)
    data = 200.0 * rng.normal(size=grid.shape)

    def build(psf):
        with pm.Model() as model:
            inclination = pm.Uniform("inclination", 0.5, 1.3)
            v_max = pm.Normal("v_max", 220.0, 20.0)
            geometry = pmt.DiscGeometry(phi=0.4, inclination=inclination)
            velocity = pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=v_max, r_t=0.4))
            component = pmt.KinematicComponent(pmt.Sersic(**LIGHT), velocity, 40.0)
            obs = pmt.observe_kinematics(component, grid, psf, convolve_at=convolve_at)
            pmt.kinematic_likelihood(obs, velocity=data, velocity_sigma=10.0)
        return model, obs

    swapped, obs = build(pmt.GaussianPSF(0.9))
    fresh, fresh_obs = build(pmt.MoffatPSF(0.6, 4.0))
    assert obs.path == fresh_obs.path == convolve_at
    for name, value in obs.renderer.psf_updates(pmt.MoffatPSF(0.6, 4.0)).items():
        swapped[name].set_value(value)
    point = {"inclination_interval__": 0.3, "v_max": 210.0}
    results = [
        model.compile_fn([model.logp(), model.dlogp()], mode=BUILD_MODE)(point)
        for model in (swapped, fresh)
    ]
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-9)
