"""The forward model against an independent numpy/scipy reference and physical limits."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import integrate, signal, special

import pymc_tracers as pmt


# ---------------------------------------------------------------- independent reference
def ref_sersic(x, y, x0, y0, r_eff, n, amplitude, q, phi):
    dx, dy = x - x0, y - y0
    along = dx * np.cos(phi) + dy * np.sin(phi)
    across = -dx * np.sin(phi) + dy * np.cos(phi)
    r = np.hypot(along, across / q)
    return amplitude * np.exp(-special.gammaincinv(2 * n, 0.5) * ((r / r_eff) ** (1 / n) - 1))


def ref_observe(scene, shape, pixel_scale, s, kernel, tracer_scale, center=(0.0, 0.0)):
    """Brute force: sub-pixels from pixel edges, direct convolution, explicit pixel sums.

    ``scene`` is a list of (light(x, y), tracer(x, y)) numpy callables; ``kernel`` is on the
    sub-pixel scale.
    """
    ny, nx = shape
    sub = pixel_scale / s
    h = kernel.shape[0] // 2

    def axis(n, c):
        left_edges = c - n * pixel_scale / 2 + np.arange(n) * pixel_scale
        centres = (left_edges[:, None] + (np.arange(s) + 0.5) * sub).ravel()
        return np.concatenate(
            [
                centres[0] - sub * np.arange(h, 0, -1),
                centres,
                centres[-1] + sub * np.arange(1, h + 1),
            ]
        )

    x, y = np.meshgrid(axis(nx, center[0]), axis(ny, center[1]))
    light = sum(f(x, y) for f, _ in scene)
    to_linear = (lambda z: z) if tracer_scale == "linear" else (lambda z: 10.0**z)
    weighted = sum(f(x, y) * to_linear(z(x, y)) for f, z in scene)
    conv_light = (
        signal.convolve2d(light, kernel, mode="valid", method="direct")
        if hasattr(signal, "x")
        else signal.convolve2d(light, kernel, mode="valid")
    )
    conv_weighted = signal.convolve2d(weighted, kernel, mode="valid")
    image = np.zeros(shape)
    num = np.zeros(shape)
    for i in range(ny):
        for j in range(nx):
            image[i, j] = conv_light[i * s : (i + 1) * s, j * s : (j + 1) * s].sum()
            num[i, j] = conv_weighted[i * s : (i + 1) * s, j * s : (j + 1) * s].sum()
    ratio = num / image
    tracer = ratio if tracer_scale == "linear" else np.log10(ratio)
    return image * sub**2, tracer


def asymmetric_kernel(size, rng):
    """A lopsided, centred-enough kernel: any flip or transpose shows up."""
    h = size // 2
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1]
    kernel = (
        np.exp(-(xx**2 + 2 * yy**2 + xx * yy) / (0.3 * size**2))
        * (1 + 0.3 * (xx > 0))
        * (1 + 0.2 * rng.uniform(size=xx.shape))
    )
    return kernel / kernel.sum()


def as_numpy_scene(params):
    scene = []
    for light, tracer in params:
        lf = lambda x, y, p=light: ref_sersic(x, y, **p)  # noqa: E731
        if "gradient" in tracer:
            t = tracer

            def zf(x, y, t=t):
                dx, dy = x - t["x0"], y - t["y0"]
                c, s = np.cos(t["phi"]), np.sin(t["phi"])
                return t["central"] + t["gradient"] * np.hypot(
                    c * dx + s * dy, (c * dy - s * dx) / t["q"]
                )

        else:
            zf = lambda x, y, v=tracer["value"]: np.full_like(x, v)  # noqa: E731
        scene.append((lf, zf))
    return scene


def as_components(params):
    comps = []
    for light, tracer in params:
        t = pmt.LinearGradient(**tracer) if "gradient" in tracer else pmt.Constant(tracer["value"])
        comps.append(pmt.Component(pmt.Sersic(**light), t))
    return comps


SCENES = {
    "one galaxy with a gradient": [
        (
            dict(x0=0.05, y0=-0.03, r_eff=0.5, n=1.0, amplitude=1.0, q=0.7, phi=0.5),
            dict(x0=0.05, y0=-0.03, central=8.5, gradient=-0.3, q=0.7, phi=0.5),
        ),
    ],
    "three clumps with constants": [
        (dict(x0=0.0, y0=0.0, r_eff=0.25, n=1.0, amplitude=1.0, q=1.0, phi=0.0), dict(value=7.6)),
        (dict(x0=0.25, y0=0.0, r_eff=0.25, n=1.0, amplitude=1.0, q=1.0, phi=0.0), dict(value=7.8)),
        (
            dict(x0=-0.25, y0=0.25, r_eff=0.25, n=1.0, amplitude=1.0, q=1.0, phi=0.0),
            dict(value=7.9),
        ),
    ],
    "bulge plus disc": [
        (dict(x0=0.0, y0=0.1, r_eff=0.2, n=4.0, amplitude=3.0, q=0.9, phi=1.0), dict(value=8.9)),
        (
            dict(x0=0.02, y0=0.1, r_eff=0.7, n=1.0, amplitude=0.5, q=0.4, phi=2.5),
            dict(x0=0.02, y0=0.1, central=8.6, gradient=-0.5, q=0.4, phi=2.5),
        ),
    ],
}


@pytest.mark.parametrize("scene_name", list(SCENES))
@pytest.mark.parametrize("tracer_scale", ["linear", "log"])
@pytest.mark.parametrize("s, shape", [(1, (15, 19)), (3, (15, 19)), (2, (16, 22)), (4, (12, 9))])
def test_matches_brute_force_reference(scene_name, tracer_scale, s, shape, rng):
    params = SCENES[scene_name]
    pixel_scale = 0.1
    kernel = asymmetric_kernel(4 * s + 1 if s > 1 else 7, rng)
    grid = pmt.PixelGrid(shape, pixel_scale, supersampling=s, center=(0.03, -0.02))
    psf = pmt.PixelPSF(kernel, pixel_scale / s)
    image, tracer = pmt.evaluate(pmt.observe(as_components(params), grid, psf, tracer_scale))
    ref_image, ref_tracer = ref_observe(
        as_numpy_scene(params), shape, pixel_scale, s, kernel, tracer_scale, center=(0.03, -0.02)
    )
    np.testing.assert_allclose(image, ref_image, rtol=1e-10, atol=1e-14 * ref_image.max())
    np.testing.assert_allclose(tracer, ref_tracer, rtol=1e-10)


def test_continuum_limit_with_a_delta_psf():
    """A 1x1 kernel leaves the light-weighted pixel mean, compared with 2-D quadrature."""
    light = dict(x0=0.02, y0=0.01, r_eff=0.3, n=1.5, amplitude=1.0, q=0.6, phi=0.4)
    z = dict(x0=0.02, y0=0.01, central=8.0, gradient=-0.4, q=0.6, phi=0.4)
    grid = pmt.PixelGrid((5, 5), 0.1, supersampling=15)
    delta = pmt.PixelPSF(np.ones((1, 1)), grid.subpixel_scale)
    _, tracer = pmt.evaluate(pmt.observe(as_components([(light, z)]), grid, delta, "log"))
    ((lf, zf),) = as_numpy_scene([(light, z)])
    x, y = grid.coordinates()
    for i, j in [(0, 0), (2, 2), (1, 3), (4, 2)]:
        a, b = x[i, j] - 0.05, x[i, j] + 0.05
        c, d = y[i, j] - 0.05, y[i, j] + 0.05
        num = integrate.dblquad(
            lambda yy, xx: lf(xx, yy) * 10 ** zf(xx, yy), a, b, c, d, epsrel=1e-10
        )[0]
        den = integrate.dblquad(lambda yy, xx: lf(xx, yy), a, b, c, d, epsrel=1e-10)[0]
        # midpoint rule on 15x15 sub-pixels; the cusp in the centre pixel limits it to ~3e-5 dex
        assert tracer[i, j] == pytest.approx(np.log10(num / den), abs=5e-5)


@pytest.mark.parametrize(
    "psf", [pmt.GaussianPSF(0.4), pmt.MoffatPSF(0.3, 2.5), pmt.PixelPSF(np.ones((1, 1)), 0.05)]
)
@pytest.mark.parametrize("tracer_scale", ["linear", "log"])
def test_constant_tracer_gives_a_constant_map(psf, tracer_scale):
    grid = pmt.PixelGrid((21, 21), 0.1, supersampling=2)
    if isinstance(psf, pmt.PixelPSF):
        psf = pmt.PixelPSF(np.ones((1, 1)), grid.subpixel_scale)
    comps = [
        pmt.Component(
            pmt.Sersic(x0=0.3, y0=0.1, r_eff=0.3, n=2.0, amplitude=1.0, q=0.5, phi=1.0),
            pmt.Constant(8.3),
        ),
        pmt.Component(pmt.Gaussian(x0=-0.4, y0=0.0, sigma=0.2, amplitude=5.0), 8.3),
    ]
    _, tracer = pmt.evaluate(pmt.observe(comps, grid, psf, tracer_scale))
    np.testing.assert_allclose(tracer, 8.3, rtol=1e-10)  # FFT round-off in the faint corners


def test_total_flux_is_conserved():
    galaxy = pmt.Sersic(x0=0.05, y0=-0.05, r_eff=0.2, n=1.0, amplitude=2.0, q=0.7, phi=0.3)
    grid = pmt.PixelGrid((101, 101), 0.05, supersampling=5)
    # the field edge is > 11 r_eff from the galaxy: < 1e-7 of the light lies beyond it, and a
    # FWHM <= 0.8" PSF scatters < 1e-5 of it out
    outside = 1 - special.gammainc(2.0, special.gammaincinv(2.0, 0.5) * (2.4 / 0.2))
    assert outside < 1e-7
    totals = []
    for psf in [
        pmt.PixelPSF(np.ones((1, 1)), grid.subpixel_scale),
        pmt.GaussianPSF(0.1),
        pmt.GaussianPSF(0.8),
    ]:
        image, _ = pmt.evaluate(pmt.observe(pmt.Component(galaxy, 0.0), grid, psf))
        totals.append(image.sum())
    # convolution moves light but neither creates nor destroys it
    np.testing.assert_allclose(totals, totals[0], rtol=1e-6)  # ~1e-7 scattered out by the widest
    # and pixel integration (midpoint rule, 25 samples per pixel) gets the analytic total
    assert totals[0] == pytest.approx(float(galaxy.total_flux()), rel=1e-4)


def test_light_outside_the_field_scatters_in_and_nothing_wraps():
    grid = pmt.PixelGrid((20, 20), 0.1, supersampling=1)
    outside = pmt.Gaussian(x0=-1.1, y0=0.0, sigma=0.05, amplitude=1.0)  # 0.15" beyond the left edge
    image, _ = pmt.evaluate(pmt.observe(pmt.Component(outside, 0.0), grid, pmt.GaussianPSF(0.4)))
    assert image[:, 0].max() > 1e-3 * float(outside.total_flux())  # scattered in
    np.testing.assert_array_less(np.abs(image[:, -1]), 1e-15)  # no wrap-around to the right edge


def test_empty_sky_is_finite_with_finite_gradients():
    grid = pmt.PixelGrid((31, 31), 0.1, supersampling=2)
    central = pt.dscalar("central")
    gradient = pt.dscalar("gradient")
    tiny = pmt.Gaussian(x0=0.0, y0=0.0, sigma=0.05, amplitude=1.0)  # zero light far from centre
    comp = pmt.Component(tiny, pmt.LinearGradient(central=central, gradient=gradient))
    for scale in ["linear", "log"]:
        _, tracer = pmt.observe(comp, grid, pmt.GaussianPSF(0.15), scale)
        cost = pt.sum(tracer)
        fn = pytensor.function(
            [central, gradient], [tracer, *pytensor.grad(cost, [central, gradient])]
        )
        tracer_v, g1, g2 = fn(8.0, -0.2)
        assert np.all(np.isfinite(tracer_v)) and np.isfinite(g1) and np.isfinite(g2)
        # in empty sky the map tends to the unweighted pixel mean of the intrinsic tracer
        assert tracer_v[0, 0] == pytest.approx(8.0 - 0.2 * np.hypot(1.5, 1.5), abs=1e-3)


def test_gradients_with_respect_to_every_parameter(rng):
    grid = pmt.PixelGrid((9, 10), 0.12, supersampling=2, center=(0.02, 0.0))
    w_image = rng.normal(size=grid.shape)
    w_tracer = rng.normal(size=grid.shape)

    def model(x0, y0, r_eff, n, amplitude, q, phi, central, gradient, tq, tphi, fwhm, clump_z):
        comps = [
            pmt.Component(
                pmt.Sersic(x0=x0, y0=y0, r_eff=r_eff, n=n, amplitude=amplitude, q=q, phi=phi),
                pmt.LinearGradient(
                    x0=x0, y0=y0, central=central, gradient=gradient, q=tq, phi=tphi
                ),
            ),
            pmt.Component(
                pmt.Gaussian(x0=0.2, y0=0.1, sigma=0.1, amplitude=0.5), pmt.Constant(clump_z)
            ),
        ]
        image, tracer = pmt.observe(comps, grid, pmt.GaussianPSF(fwhm, max_fwhm=0.4), "log")
        return pt.sum(w_image * image) + pt.sum(w_tracer * tracer)

    point = [0.03, -0.02, 0.35, 1.3, 1.0, 0.7, 0.4, 8.4, -0.3, 0.8, 0.2, 0.3, 8.0]
    # verify_grad raises if the analytic and finite-difference gradients differ
    verify_grad(model, point, rng=rng, eps=1e-6, abs_tol=1e-5, rel_tol=1e-5)


def test_moffat_width_and_beta_gradients(rng):
    grid = pmt.PixelGrid((7, 7), 0.1, supersampling=1)
    w = rng.normal(size=grid.shape)

    def model(fwhm, beta):
        comp = pmt.Component(
            pmt.Exponential(x0=0.0, y0=0.0, r_eff=0.2, amplitude=1.0),
            pmt.LinearGradient(central=1.0, gradient=2.0),
        )
        image, tracer = pmt.observe(comp, grid, pmt.MoffatPSF(fwhm, beta, radius=0.4), "linear")
        return pt.sum(w * tracer) + pt.sum(w * image)

    # verify_grad raises if the analytic and finite-difference gradients differ

    verify_grad(model, [0.25, 3.0], rng=rng, eps=1e-6, abs_tol=1e-5, rel_tol=1e-5)


def test_user_expression_tracer():
    grid = pmt.PixelGrid((11, 11), 0.1, supersampling=3)
    comp = pmt.Component(pmt.Exponential(r_eff=0.4), lambda x, y: 8.0 + 0.5 * x)
    _, tracer = pmt.evaluate(pmt.observe(comp, grid, pmt.GaussianPSF(0.2), "linear"))
    # symmetric light, tracer linear in x: the light-weighted mean is exactly 8 + 0.5 x_pixel
    # along the middle row (symmetric in y) and the centre pixel is 8
    assert tracer[5, 5] == pytest.approx(8.0, abs=1e-12)
    np.testing.assert_allclose(tracer[5, 6] - 8.0, -(tracer[5, 4] - 8.0), rtol=1e-10)


def test_evaluate_with_pymc_variables():
    pm = pytest.importorskip("pymc")
    grid = pmt.PixelGrid((11, 11), 0.1, supersampling=1)
    with pm.Model():
        gradient = pm.Normal("gradient", 0.0, 1.0)
        comp = pmt.Component(
            pmt.Exponential(r_eff=0.4), pmt.LinearGradient(central=8.0, gradient=gradient)
        )
        image, tracer = pmt.observe(comp, grid, pmt.GaussianPSF(0.2), "log")
    flat = pmt.evaluate(tracer, gradient=0.0)
    np.testing.assert_allclose(flat, 8.0, rtol=1e-12)
    steep = pmt.evaluate(tracer, {"gradient": -1.0})
    assert steep[5, 5] > steep[0, 0]
    with pytest.raises(ValueError, match="gradient"):
        pmt.evaluate(tracer)
    with pytest.raises(ValueError, match="no variable named"):
        pmt.evaluate(tracer, slope=1.0)


def test_bad_inputs_raise_clear_errors():
    grid = pmt.PixelGrid((5, 5), 0.1)
    comp = pmt.Component(pmt.Exponential(), 8.0)
    with pytest.raises(ValueError, match="tracer_scale"):
        pmt.observe(comp, grid, pmt.GaussianPSF(0.2), tracer_scale="dex")
    with pytest.raises(TypeError, match="grid"):
        pmt.observe(comp, (5, 5), pmt.GaussianPSF(0.2))
    with pytest.raises(TypeError, match="psf"):
        pmt.observe(comp, grid, np.ones((3, 3)))
    with pytest.raises(ValueError, match="components is empty"):
        pmt.observe([], grid, pmt.GaussianPSF(0.2))
    with pytest.raises(TypeError, match="light profile"):
        pmt.Component(8.0, 8.0)
    wrong_shape = pmt.Component(pmt.Exponential(), lambda x, y: pt.ones((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        pmt.observe(wrong_shape, grid, pmt.GaussianPSF(0.2))


@pytest.mark.parametrize(
    "fwhm, s, image_tol, tracer_tol",
    [(1.5, 3, 3e-4, 1e-4), (0.5, 3, 3e-4, 1e-4), (0.2, 2, 1e-3, 2e-4)],
)
def test_pixel_scale_convolution_error_is_as_documented(fwhm, s, image_tol, tracer_tol):
    """convolve_at="pixel" errors (docs/forward_model.md): PSF of 3 pixels FWHM, image <= 1e-3
    and tracer <= 2e-4 dex; >= 7 pixels, <= 3e-4 and <= 1e-4 dex."""
    grid = pmt.PixelGrid((61, 61), 0.066, supersampling=s)
    comp = pmt.Component(
        pmt.Sersic(x0=0.03, y0=0.0, r_eff=0.6, n=1.5, amplitude=1.0, q=0.7, phi=0.4),
        pmt.LinearGradient(x0=0.03, y0=0.0, central=8.0, gradient=-0.3, q=0.7, phi=0.4),
    )
    psf = pmt.GaussianPSF(fwhm)
    exact = pmt.evaluate(pmt.observe(comp, grid, psf, "log", method="full"))
    fast = pmt.evaluate(pmt.observe(comp, grid, psf, "log", method="full", convolve_at="pixel"))
    bright = exact[0] > 1e-3 * exact[0].max()
    assert np.abs(fast[0] / exact[0] - 1)[bright].max() < image_tol
    assert np.abs(fast[1] - exact[1])[bright].max() < tracer_tol
    assert fast[0].sum() == pytest.approx(exact[0].sum(), rel=1e-5)


def test_pixel_scale_convolution_without_supersampling_is_exact():
    grid = pmt.PixelGrid((21, 17), 0.1, supersampling=1)
    comp = pmt.Component(
        pmt.Exponential(x0=0.1, y0=0.0, r_eff=0.3),
        pmt.LinearGradient(x0=0.1, y0=0.0, central=8.0, gradient=-0.3),
    )
    a = pmt.evaluate(pmt.observe(comp, grid, pmt.MoffatPSF(0.3, 2.5), "linear", method="full"))
    b = pmt.evaluate(
        pmt.observe(
            comp, grid, pmt.MoffatPSF(0.3, 2.5), "linear", method="full", convolve_at="pixel"
        )
    )
    np.testing.assert_allclose(b[0], a[0], rtol=1e-10)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-10)
    with pytest.raises(ValueError, match="convolve_at"):
        pmt.observe(comp, grid, pmt.GaussianPSF(0.3), convolve_at="fine")


def test_pixel_scale_convolution_gradients(rng):
    grid = pmt.PixelGrid((9, 8), 0.1, supersampling=3)
    w = rng.normal(size=grid.shape)

    def model(r_eff, gradient, fwhm):
        comp = pmt.Component(
            pmt.Exponential(x0=0.02, y0=0.0, r_eff=r_eff),
            pmt.LinearGradient(x0=0.02, y0=0.0, central=8.0, gradient=gradient),
        )
        image, tracer = pmt.observe(
            comp, grid, pmt.GaussianPSF(fwhm, max_fwhm=0.5), "log", convolve_at="pixel"
        )
        return pt.sum(w * image) + pt.sum(w * tracer)

    # verify_grad raises if the analytic and finite-difference gradients differ

    verify_grad(model, [0.3, -0.2, 0.3], rng=rng, eps=1e-6, abs_tol=1e-5, rel_tol=1e-5)
