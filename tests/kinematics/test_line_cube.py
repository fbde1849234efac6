"""Cube tools (pmt.simulate_cube, moment_maps, gaussian_fit_maps) against independent truths:
analytic Gaussian moments, scipy's curve_fit, Monte Carlo noise, observe_kinematics."""

import numpy as np
import pytest
from scipy.optimize import curve_fit

import pymc_tracers as pmt

RNG = np.random.default_rng(11)


def gaussian_cube(flux, centre, width, velocities):
    """Unsmeared Gaussian lines per spaxel, sampled at the channel centres (per km/s)."""
    u = velocities[:, None, None]
    return flux * np.exp(-0.5 * ((u - centre) / width) ** 2) / (np.sqrt(2 * np.pi) * width)


def test_moments_of_gaussian_lines_are_their_parameters():
    flux = RNG.uniform(0.5, 2.0, (5, 6))
    centre = RNG.uniform(-150, 150, (5, 6))
    width = RNG.uniform(20, 80, (5, 6))
    for velocities in (
        np.arange(-700.0, 700.1, 5.0),  # uniform
        np.arange(700.0, -700.1, -5.0),  # decreasing (wavelength axes can run either way)
    ):
        maps = pmt.moment_maps(gaussian_cube(flux, centre, width, velocities), velocities)
        np.testing.assert_allclose(maps.flux, flux, rtol=1e-10)
        np.testing.assert_allclose(maps.velocity, centre, rtol=0, atol=1e-8)
        np.testing.assert_allclose(maps.dispersion, width, rtol=1e-9)


def test_moment_errors_match_monte_carlo():
    velocities = np.arange(-300.0, 300.1, 20.0)
    line = gaussian_cube(np.array([[3.0]]), np.array([[25.0]]), np.array([[50.0]]), velocities)
    noise = 0.0003  # peak S/N 80: the linear propagation holds
    # 4000 noisy copies of one spectrum, laid out as spaxels
    cube = line + noise * RNG.normal(size=(velocities.size, 40, 100))
    maps = pmt.moment_maps(cube, velocities, noise=noise)
    for value, error in [
        (maps.flux, maps.flux_error),
        (maps.velocity, maps.velocity_error),
        (maps.dispersion, maps.dispersion_error),
    ]:
        assert np.std(value) == pytest.approx(np.median(error), rel=0.06)


def test_channel_mask_and_threshold():
    velocities = np.arange(-500.0, 500.1, 10.0)
    cube = gaussian_cube(np.array([[1.0]]), np.array([[0.0]]), np.array([[40.0]]), velocities)
    cube = cube + gaussian_cube(  # a second, unrelated line at +400 km/s
        np.array([[0.5]]), np.array([[400.0]]), np.array([[20.0]]), velocities
    )
    window = np.abs(velocities) < 300
    maps = pmt.moment_maps(cube, velocities, mask=window)
    # (the other line's wing inside the window: 4e-6 of its flux)
    assert maps.velocity[0, 0] == pytest.approx(0.0, abs=1e-4)
    assert maps.dispersion[0, 0] == pytest.approx(40.0, rel=1e-5)
    # a threshold clips the wings: the dispersion comes out low
    clipped = pmt.moment_maps(cube, velocities, mask=window, threshold=0.5 * cube.max())
    assert clipped.dispersion[0, 0] < 0.6 * 40.0
    # noise that makes a faint spaxel's second moment negative: not measured (NaN), not 0
    spectrum = np.zeros((velocities.size, 1, 1))
    spectrum[50], spectrum[0], spectrum[-1] = 2.0, -0.5, -0.5
    odd = pmt.moment_maps(spectrum, velocities, noise=0.1)
    assert odd.velocity[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(odd.dispersion[0, 0]) and np.isnan(odd.dispersion_error[0, 0])


def test_gaussian_fit_recovers_an_unsmeared_line():
    velocities = np.arange(-400.0, 400.1, 8.0)
    flux = RNG.uniform(0.5, 2.0, (4, 5))
    centre = RNG.uniform(-100, 100, (4, 5))
    width = RNG.uniform(25, 70, (4, 5))
    cube = gaussian_cube(flux, centre, width, velocities)
    fit = pmt.gaussian_fit_maps(cube, velocities)
    assert fit.converged.all()
    np.testing.assert_allclose(fit.velocity, centre, atol=1e-6)
    np.testing.assert_allclose(fit.dispersion, width, rtol=1e-7)
    np.testing.assert_allclose(fit.flux, flux, rtol=1e-7)
    # with noise: within its errors (chi-square of the pulls ~ 1)
    noise = 0.01 * cube.max()
    noisy = cube + noise * RNG.normal(size=cube.shape)
    fit = pmt.gaussian_fit_maps(noisy, velocities, noise=noise)
    pulls = np.concatenate(
        [
            ((fit.velocity - centre) / fit.velocity_error).ravel(),
            ((fit.dispersion - width) / fit.dispersion_error).ravel(),
        ]
    )
    assert np.all(np.abs(pulls) < 4) and 0.3 < np.mean(pulls**2) < 2.5


def test_gaussian_fit_equals_curve_fit_on_skewed_lines():
    """Two-component (skewed) spectra: the batched fit finds what scipy finds."""
    velocities = np.arange(-400.0, 400.1, 10.0)
    a = gaussian_cube(np.array([[1.0, 1.0, 0.5]]), np.array([[0.0, 50, -30]]), 40.0, velocities)
    b = gaussian_cube(np.array([[0.4, 0.8, 0.5]]), np.array([[120.0, -60, 90]]), 30.0, velocities)
    cube = a + b
    fit = pmt.gaussian_fit_maps(cube, velocities)
    moments = pmt.moment_maps(cube, velocities)

    def gauss(u, amplitude, centre, width):
        return amplitude * np.exp(-0.5 * ((u - centre) / width) ** 2)

    for j in range(3):
        p0 = [cube[:, 0, j].max(), moments.velocity[0, j], moments.dispersion[0, j]]
        tight = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15)
        best, _ = curve_fit(gauss, velocities, cube[:, 0, j], p0=p0, **tight)
        # the same minimum: parameters to 1e-5 and a chi-square no worse than scipy's
        assert fit.velocity[0, j] == pytest.approx(best[1], abs=1e-3)
        assert fit.dispersion[0, j] == pytest.approx(abs(best[2]), rel=1e-5)
        assert fit.amplitude[0, j] == pytest.approx(best[0], rel=1e-5)
        ours = gauss(velocities, fit.amplitude[0, j], fit.velocity[0, j], fit.dispersion[0, j])
        chi2_ours = np.sum((cube[:, 0, j] - ours) ** 2)
        chi2_scipy = np.sum((cube[:, 0, j] - gauss(velocities, *best)) ** 2)
        assert chi2_ours <= chi2_scipy * (1 + 1e-8)
    # the skewed lines (first and last): the Gaussian follows the peak, the moment the mean
    assert np.all(np.abs(fit.velocity - moments.velocity)[0, [0, 2]] > 5.0)


def test_simulated_cube_moments_equal_observe_kinematics():
    """The moment identity: moments of the simulated cube are the moment path's maps (two
    components, LSF in quadrature)."""
    grid = pmt.PixelGrid((14, 12), pixel_scale=0.25, supersampling=2, center=(0.05, 0.0))
    psf = pmt.GaussianPSF(0.8)
    geometry = pmt.DiscGeometry(x0=0.05, y0=-0.1, phi=0.5, inclination=1.0)
    disc = pmt.KinematicComponent(
        pmt.Exponential(r_eff=1.0, q=0.6, phi=0.5, amplitude=2.0),
        pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=180.0, r_t=0.3), v_sys=30.0),
        pmt.DiscDispersion(geometry, pmt.ExponentialDispersion(sigma0=30, r_sigma=0.7, floor=20)),
    )
    bulge = pmt.KinematicComponent(pmt.Sersic(r_eff=0.3, n=2.0, amplitude=3.0), 30.0, 90.0)
    velocities = np.arange(-700.0, 760.1, 5.0)
    cube = pmt.simulate_cube([disc, bulge], grid, psf, velocities=velocities, lsf_sigma=25.0)
    maps = pmt.moment_maps(cube, velocities)
    flux, velocity, dispersion = pmt.evaluate(
        tuple(pmt.observe_kinematics([disc, bulge], grid, psf, lsf_sigma=25.0, method="full"))
    )
    np.testing.assert_allclose(maps.flux, flux, rtol=1e-9)
    np.testing.assert_allclose(maps.velocity, velocity, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(maps.dispersion, dispersion, rtol=1e-8)


def test_simulate_cube_from_fields_equals_from_components():
    grid = pmt.PixelGrid((8, 8), pixel_scale=0.3, supersampling=1)
    psf = pmt.GaussianPSF(0.6)
    geometry = pmt.DiscGeometry(phi=0.2, inclination=0.8)
    velocity = pmt.DiscVelocity(geometry, pmt.TanhCurve(v_max=150.0, r_t=0.4))
    light = pmt.Exponential(r_eff=0.8, q=0.7, phi=0.2)
    velocities = np.arange(-300.0, 300.1, 10.0)
    a = pmt.simulate_cube(
        pmt.KinematicComponent(light, velocity, 35.0), grid, psf, velocities=velocities
    )
    from pymc_tracers.profiles.light import sersic_numpy

    b = pmt.simulate_cube(
        grid=grid,
        psf=psf,
        velocities=velocities,
        light=lambda x, y: sersic_numpy(x, y, 0.0, 0.0, 0.8, 1.0, 1.0, 0.7, 0.2),
        velocity=velocity.numpy,
        dispersion=35.0,
    )
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_bad_inputs_are_refused_with_reasons():
    velocities = np.arange(-100.0, 100.1, 10.0)
    cube = gaussian_cube(np.ones((2, 2)), np.zeros((2, 2)), 30.0, velocities)
    with pytest.raises(ValueError, match="3-D"):
        pmt.moment_maps(cube[0], velocities)
    with pytest.raises(ValueError, match="channels but the cube has"):
        pmt.moment_maps(cube, velocities[:-1])
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        pmt.moment_maps(cube, np.r_[velocities[:5], velocities[3], velocities[6:]])
    nan_cube = cube.copy()
    nan_cube[3, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN .*channel, y, x = \(3, 1, 0\)"):
        pmt.moment_maps(nan_cube, velocities)
    with pytest.raises(ValueError, match="NaN"):
        pmt.gaussian_fit_maps(nan_cube, velocities)
    with pytest.raises(ValueError, match="noise"):
        pmt.moment_maps(cube, velocities, noise=-1.0)
    with pytest.raises(ValueError, match="mask must be boolean"):
        pmt.moment_maps(cube, velocities, mask=np.ones(velocities.size))
    with pytest.raises(ValueError, match="mask has shape"):
        pmt.moment_maps(cube, velocities, mask=np.ones(3, bool))
    grid = pmt.PixelGrid((4, 4), pixel_scale=0.3)
    with pytest.raises(ValueError, match="light has shape"):
        pmt.simulate_cube(
            grid=grid,
            psf=pmt.GaussianPSF(0.5),
            velocities=velocities,
            light=np.ones((4, 4)),
            velocity=0.0,
            dispersion=30.0,
        )
    with pytest.raises(ValueError, match="line width"):
        pmt.simulate_cube(
            grid=grid,
            psf=pmt.GaussianPSF(0.5),
            velocities=velocities,
            light=1.0,
            velocity=0.0,
            dispersion=0.0,
        )
