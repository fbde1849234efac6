import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import integrate, special

import pymc_tracers as pmt
from pymc_tracers.profiles.light import sersic_bn, sersic_numpy


def _eval(profile, x, y):
    return profile.surface_brightness(np.asarray(x, float), np.asarray(y, float)).eval()


def _compiled(profile):
    """A numpy-callable f(x, y) compiled once (quadrature calls it thousands of times)."""
    x, y = pt.dvector("x"), pt.dvector("y")
    fn = pytensor.function([x, y], profile.surface_brightness(x, y))
    return lambda xs, ys: fn(
        np.atleast_1d(np.asarray(xs, float)), np.atleast_1d(np.asarray(ys, float))
    )


@pytest.mark.parametrize("n", [0.5, 1.0, 2.5, 4.0])
def test_half_of_the_light_lies_inside_r_eff(n):
    # independent of the code's b_n: integrate the profile radially with quadrature
    profile = pmt.Sersic(x0=0.0, y0=0.0, r_eff=1.3, n=n, amplitude=2.0, q=0.6, phi=0.4)
    sb = _compiled(profile)
    radial = lambda r: float(sb(r * np.cos(0.4), r * np.sin(0.4))[0]) * r  # noqa: E731
    inside = integrate.quad(radial, 0, 1.3, epsrel=1e-10, limit=200)[0]
    total = integrate.quad(radial, 0, np.inf, epsrel=1e-10, limit=400)[0]
    assert inside / total == pytest.approx(0.5, rel=1e-7)
    # the analytic total flux: ellipse area factor 2 pi q
    assert float(profile.total_flux()) == pytest.approx(2 * np.pi * 0.6 * total, rel=1e-7)


def test_amplitude_is_the_surface_brightness_at_r_eff_on_both_axes():
    phi, q, r_eff = 0.7, 0.5, 0.8
    profile = pmt.Sersic(x0=0.3, y0=-0.2, r_eff=r_eff, n=2.0, amplitude=5.0, q=q, phi=phi)
    major = (0.3 + r_eff * np.cos(phi), -0.2 + r_eff * np.sin(phi))
    minor = (0.3 - q * r_eff * np.sin(phi), -0.2 + q * r_eff * np.cos(phi))
    values = _eval(profile, [major[0], minor[0]], [major[1], minor[1]])
    np.testing.assert_allclose(values, 5.0, rtol=1e-12)


def test_profiles_match_their_numpy_twins(rng):
    x, y = rng.uniform(-2, 2, (2, 50))
    args = dict(x0=0.1, y0=-0.3, r_eff=0.7, n=3.2, amplitude=1.5, q=0.4, phi=2.0)
    np.testing.assert_allclose(
        _eval(pmt.Sersic(**args), x, y), sersic_numpy(x, y, **args), rtol=1e-12
    )
    expo = pmt.Exponential(x0=0.1, y0=-0.3, r_eff=0.7, amplitude=1.5, q=0.4, phi=2.0)
    np.testing.assert_allclose(
        _eval(expo, x, y), sersic_numpy(x, y, **{**args, "n": 1.0}), rtol=1e-12
    )
    gauss = pmt.Gaussian(x0=0.1, y0=-0.3, sigma=0.5, amplitude=2.0, q=0.4, phi=2.0)
    c, s = np.cos(2.0), np.sin(2.0)
    dx, dy = x - 0.1, y + 0.3
    r2 = (c * dx + s * dy) ** 2 + ((-s * dx + c * dy) / 0.4) ** 2
    np.testing.assert_allclose(_eval(gauss, x, y), 2.0 * np.exp(-0.5 * r2 / 0.25), rtol=1e-12)


def test_gaussian_total_flux():
    gauss = pmt.Gaussian(x0=0.0, y0=0.0, sigma=0.3, amplitude=2.0, q=0.7)
    sb = _compiled(gauss)
    numeric = integrate.dblquad(lambda y, x: float(sb(x, y)[0]), -3, 3, -3, 3, epsrel=1e-10)[0]
    assert gauss.total_flux() == pytest.approx(numeric, rel=1e-7)


def test_sersic_bn_and_its_gradient():
    n = pt.dscalar("n")
    bn = sersic_bn(n)
    fn = pytensor.function([n], [bn, pytensor.grad(bn, n)])
    for value in [0.5, 1.0, 2.7, 6.0]:
        b, db = fn(value)
        assert b == pytest.approx(special.gammaincinv(2 * value, 0.5), rel=1e-12)
        h = 1e-6
        fd = (
            special.gammaincinv(2 * (value + h), 0.5) - special.gammaincinv(2 * (value - h), 0.5)
        ) / (2 * h)
        assert db == pytest.approx(fd, rel=1e-7)
    assert sersic_bn(1.0) == pytest.approx(1.678346990, rel=1e-9)


def test_sersic_gradients_in_every_parameter(rng):
    x, y = rng.uniform(-1.5, 1.5, (2, 30))

    def sb(x0, y0, r_eff, n, amplitude, q, phi):
        return pmt.Sersic(
            x0=x0, y0=y0, r_eff=r_eff, n=n, amplitude=amplitude, q=q, phi=phi
        ).surface_brightness(x, y)

    # verify_grad raises if the analytic and finite-difference gradients differ

    verify_grad(
        sb, [0.1, -0.2, 0.8, 1.7, 2.0, 0.6, 0.3], rng=rng, eps=1e-7, abs_tol=1e-5, rel_tol=1e-5
    )

    def gauss(x0, y0, sigma, amplitude, q, phi):
        return pmt.Gaussian(
            x0=x0, y0=y0, sigma=sigma, amplitude=amplitude, q=q, phi=phi
        ).surface_brightness(x, y)

    # verify_grad raises if the analytic and finite-difference gradients differ

    verify_grad(
        gauss, [0.1, -0.2, 0.8, 2.0, 0.6, 0.3], rng=rng, eps=1e-7, abs_tol=1e-5, rel_tol=1e-5
    )


def test_tracers(rng):
    x, y = rng.uniform(-1, 1, (2, 20))
    grad = pmt.LinearGradient(x0=0.2, y0=0.1, central=8.0, gradient=-0.2, q=0.5, phi=1.0)
    r = pmt.PixelGrid((1, 1), 1.0)  # noqa: F841  (grid conventions are tested elsewhere)
    from pymc_tracers.grid import elliptical_radius_numpy

    expected = 8.0 - 0.2 * elliptical_radius_numpy(x, y, 0.2, 0.1, 0.5, 1.0)
    np.testing.assert_allclose(grad(pt.as_tensor(x), pt.as_tensor(y)).eval(), expected, rtol=1e-12)
    np.testing.assert_allclose(pmt.Constant(7.6)(pt.as_tensor(x), pt.as_tensor(y)).eval(), 7.6)
    expr = pmt.Expression(lambda x, y: 1.0 + x * y)
    np.testing.assert_allclose(expr(pt.as_tensor(x), pt.as_tensor(y)).eval(), 1.0 + x * y)


def test_bad_profile_parameters_raise():
    with pytest.raises(ValueError, match="r_eff"):
        pmt.Sersic(r_eff=-1.0)
    with pytest.raises(ValueError, match="q"):
        pmt.Sersic(q=1.5)
    with pytest.raises(ValueError, match="n"):
        pmt.Sersic(n=0.0)
    with pytest.raises(ValueError, match="sigma"):
        pmt.Gaussian(sigma=0.0)
    with pytest.raises(ValueError, match="finite"):
        pmt.LinearGradient(central=np.nan)
    with pytest.raises(TypeError, match="two arguments"):
        pmt.Expression(lambda r: r)
