"""The lensed forward model on every renderer: a fixed lens keeps the fast paths (equal to
the full path), a free lens takes the full path with gradients, batches equal loops, a PSF
swap keeps the lens, and lensing conserves surface brightness (point-mass magnification)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad

import pymc_tracers as pmt
from pymc_tracers import lensing

GRID = pmt.PixelGrid((31, 31), pixel_scale=0.08, supersampling=3)
PSF = pmt.GaussianPSF(0.15)
LENS = [
    lensing.SIE(theta_E=0.8, q=0.7, phi=0.4, x0=0.02, y0=-0.01),
    lensing.ExternalShear(gamma1=0.03, gamma2=-0.02),
]


def _source(central=8.4, gradient=-0.3):
    light = pmt.Sersic(x0=0.05, y0=0.03, r_eff=0.15, n=1.2, q=0.8, phi=0.3)
    tracer = pmt.LinearGradient(
        x0=0.05, y0=0.03, central=central, gradient=gradient, q=0.8, phi=0.3
    )
    return pmt.Component(light, tracer)


def _maps(obs, **values):
    return pmt.evaluate([obs.image, obs.tracer_map], **values)


@pytest.mark.parametrize(
    "scale, fast", [("linear", "linear"), ("log", "radial")], ids=["linear", "radial"]
)
def test_fixed_lens_keeps_the_fast_paths_equal_to_the_full_path(scale, fast):
    with pm.Model():
        central = pm.Normal("central", 8.4, 0.1)
        gradient = pm.Normal("gradient", -0.3, 0.1)
        component = _source(central, gradient)
        auto = pmt.observe(component, GRID, PSF, scale, lens=LENS)
        full = pmt.observe(component, GRID, PSF, scale, lens=LENS, method="full")
    assert auto.path == fast
    assert full.path == "subpixel"
    values = {"central": 8.3, "gradient": -0.45}
    a_image, a_tracer = _maps(auto, **values)
    f_image, f_tracer = _maps(full, **values)
    np.testing.assert_allclose(a_image, f_image, rtol=1e-12, atol=1e-14 * f_image.max())
    bright = f_image > 1e-6 * f_image.max()
    assert bright.sum() > 100
    # linear: exact; radial: within its tolerance (1e-7 dex)
    tolerance = 1e-11 if fast == "linear" else 1e-7
    assert np.max(np.abs(a_tracer - f_tracer)[bright]) < tolerance
    # the lensed image differs from the unlensed one (the lens is not ignored)
    plain = pmt.evaluate(pmt.observe(_source(8.3, -0.45), GRID, PSF, scale).image)
    assert np.max(np.abs(plain - f_image)) > 0.1 * f_image.max()


def test_pixel_scale_numerics_are_lensed_too():
    """convolve_at='pixel' ray-shoots both of its point sets: with a PSF much wider than a
    pixel it approaches the exact sub-pixel convolution."""
    psf = pmt.GaussianPSF(0.4)
    exact = _maps(pmt.observe(_source(), GRID, psf, "log", lens=LENS, method="full"))
    pixel = _maps(
        pmt.observe(_source(), GRID, psf, "log", lens=LENS, method="full", convolve_at="pixel")
    )
    bright = exact[0] > 1e-3 * exact[0].max()
    assert np.max(np.abs(pixel[0] - exact[0])) < 0.02 * exact[0].max()
    assert np.max(np.abs(pixel[1] - exact[1])[bright]) < 2e-3


def test_free_lens_takes_the_full_path_with_gradients():
    with pm.Model() as model:
        theta_E = pm.TruncatedNormal("theta_E", 0.8, 0.05, lower=0.5)
        gamma1 = pm.Normal("gamma1", 0.03, 0.02)
        lens = [
            lensing.SIE(theta_E=theta_E, q=0.7, phi=0.4, x0=0.02, y0=-0.01),
            lensing.ExternalShear(gamma1=gamma1, gamma2=-0.02),
        ]
        obs = pmt.observe(_source(), GRID, PSF, "log", lens=lens)
        with pytest.raises(ValueError, match=r"the lens has free parameters \(0.theta_E"):
            pmt.observe(_source(), GRID, PSF, "log", lens=lens, method="radial")
    assert obs.path == "subpixel"
    assert "the lens has free parameters (0.theta_E, 1.gamma1)" in obs.reason
    # at the fixed lens's values the free-lens maps equal the fixed-lens maps
    fixed = _maps(pmt.observe(_source(), GRID, PSF, "log", lens=LENS, method="full"))
    free = _maps(obs, theta_E=0.8, gamma1=0.03)
    np.testing.assert_allclose(free[0], fixed[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(free[1], fixed[1], rtol=1e-13)
    assert model  # built inside a model: pmt.fit can sample it

    # gradients of the maps with respect to the lens parameters (finite differences)
    small = pmt.PixelGrid((13, 13), pixel_scale=0.12, supersampling=1)
    weights = np.random.default_rng(3).normal(size=small.shape)

    def tracer_sum(theta_E, gamma1):
        lens = [
            lensing.SIE(theta_E=theta_E, q=0.7, phi=0.4),
            lensing.ExternalShear(gamma1=gamma1, gamma2=-0.02),
        ]
        image, tracer = pmt.observe(_source(), small, PSF, "log", lens=lens)
        return pt.sum(tracer * weights) + pt.sum(image * weights)

    mode = pytensor.compile.mode.Mode(linker="cvm", optimizer="fast_compile")
    verify_grad(
        tracer_sum,
        [np.array(0.8), np.array(0.03)],
        rng=np.random.default_rng(1),
        eps=1e-7,
        mode=mode,
    )


def test_a_batch_of_lensed_galaxies_equals_a_loop():
    """Per-galaxy lens and source parameters: one batched graph, each galaxy as if alone."""
    theta_E = np.array([0.7, 0.9])
    gradient = np.array([-0.2, -0.5])
    lens = lensing.SIE(theta_E=theta_E, q=np.array([0.6, 0.8]), phi=0.3)
    batch = pmt.observe(_source(8.4, gradient), GRID, PSF, "log", lens=lens)
    # no free parameters: one exact column per galaxy (the linear path, either scale)
    assert batch.path == "linear" and batch.n_galaxies == 2
    image, tracer = _maps(batch)
    for i in range(2):
        one = lensing.SIE(theta_E=theta_E[i], q=[0.6, 0.8][i], phi=0.3)
        ref = _maps(
            pmt.observe(_source(8.4, gradient[i]), GRID, PSF, "log", lens=one, method="full")
        )
        np.testing.assert_allclose(image[i], ref[0], rtol=1e-12, atol=1e-14 * ref[0].max())
        bright = ref[0] > 1e-6 * ref[0].max()
        assert np.max(np.abs(tracer[i] - ref[1])[bright]) < 1e-7
    with pytest.raises(ValueError, match="per-galaxy parameters for 2 galaxies"):
        pmt.observe(_source(8.4, np.zeros(3)), GRID, PSF, "log", lens=lens)


def test_psf_swap_keeps_the_lens():
    data = np.full(GRID.shape, 8.4)
    with pm.Model():
        gradient = pm.Normal("gradient", -0.3, 0.1)
        obs = pmt.observe(_source(8.4, gradient), GRID, PSF, "linear", lens=LENS)
        pmt.tracer_likelihood("z", obs, data, sigma=0.1)
    other = pmt.GaussianPSF(0.3)
    updates = obs.renderer.psf_updates(other)
    for name, value in updates.items():
        obs.renderer._model[name].set_value(value)
    swapped = _maps(obs, gradient=-0.4)
    fresh = _maps(pmt.observe(_source(8.4, -0.4), GRID, other, "linear", lens=LENS, method="full"))
    np.testing.assert_allclose(swapped[0], fresh[0], rtol=1e-12, atol=1e-14 * fresh[0].max())
    bright = fresh[0] > 1e-6 * fresh[0].max()
    assert np.max(np.abs(swapped[1] - fresh[1])[bright]) < 1e-11


def test_a_null_lens_changes_nothing():
    none = _maps(pmt.observe(_source(), GRID, PSF, "log", method="full"))
    null = _maps(
        pmt.observe(
            _source(), GRID, PSF, "log", method="full", lens=lensing.ConvergenceSheet(kappa=0.0)
        )
    )
    np.testing.assert_array_equal(none[0], null[0])
    np.testing.assert_array_equal(none[1], null[1])


def test_point_mass_magnifies_total_flux_as_predicted():
    """Surface brightness is conserved, so a small source at u = beta / theta_E from a point
    mass appears u-dependently brighter: mu = (u^2 + 2) / (u sqrt(u^2 + 4)) summed over both
    images (Paczynski 1986). The PSF conserves flux; the grid is fine enough to resolve both
    images."""
    theta_E, beta, sigma = 0.5, 0.25, 0.01
    grid = pmt.PixelGrid((81, 81), pixel_scale=0.02, supersampling=5)
    light = pmt.Gaussian(x0=beta, y0=0.0, sigma=sigma, amplitude=1.0)
    component = pmt.Component(light, 1.0)
    image, _ = pmt.observe(
        component,
        grid,
        pmt.GaussianPSF(0.04),
        "linear",
        lens=lensing.PointMass(theta_E=theta_E),
        method="full",
    )
    flux = pmt.evaluate(image).sum()
    u = beta / theta_E
    mu = (u**2 + 2) / (u * np.sqrt(u**2 + 4))
    assert flux == pytest.approx(mu * light.total_flux(), rel=2e-3)
    assert mu > 2  # a strongly magnified configuration


def test_deflection_map_must_cover_the_padded_field():
    x_axis = np.linspace(-1.0, 1.0, 21)
    table = lensing.DeflectionMap(np.zeros((21, 21)), np.zeros((21, 21)), x=x_axis, y=x_axis)
    with pytest.raises(ValueError, match="padded by the PSF half-width"):
        pmt.observe(_source(), GRID, PSF, "log", lens=table)


def test_lensed_and_unlensed_galaxies_share_one_relation():
    """Two lensed galaxies and one unlensed one, their gradients drawn from one relation: each
    galaxy's maps in the joint model equal those of the galaxy observed alone."""
    lens = lensing.SIE(theta_E=np.array([0.7, 0.9]), q=np.array([0.6, 0.8]), phi=0.3)
    log_mass = np.array([9.5, 10.2, 10.8])
    with pm.Model(coords={"galaxy": range(3)}) as model:
        slope = pm.Normal("slope", 0.0, 0.3)
        gradient = pmt.population.linear_relation(
            "gradient", log_mass, intercept=-0.3, slope=slope, scatter=0.05
        )
        lensed = pmt.observe(_source(8.4, gradient[:2]), GRID, PSF, "log", lens=lens)
        unlensed = pmt.observe(_source(8.4, gradient[2]), GRID, PSF, "log")
    assert lensed.path == "radial" and unlensed.path == "radial"
    values = {"slope": -0.1, "gradient_offset": np.array([0.3, -1.0, 0.5])}
    point = pmt.evaluate(model["gradient"], values)
    joint = [_maps(lensed, **values), _maps(unlensed, **values)]
    for i in range(3):
        lens_i = None if i == 2 else lensing.SIE(theta_E=[0.7, 0.9][i], q=[0.6, 0.8][i], phi=0.3)
        alone = _maps(
            pmt.observe(_source(8.4, point[i]), GRID, PSF, "log", lens=lens_i, method="full")
        )
        ours = [m[i] for m in joint[0]] if i < 2 else joint[1]
        bright = alone[0] > 1e-6 * alone[0].max()
        np.testing.assert_allclose(ours[0], alone[0], rtol=1e-10, atol=1e-14 * alone[0].max())
        assert np.max(np.abs(ours[1] - alone[1])[bright]) < 1e-7
