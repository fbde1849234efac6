"""Disc geometry, rotation curves, dispersion profiles and velocity fields: PyTensor graphs
against independent numpy/scipy references, and their gradients (verify_grad)."""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import special

import pymc_tracers as pmt
from pymc_tracers.kinematics.rotation_curves import FREEMAN_PEAK


def _disc_to_sky(radius, theta, phi, inclination, x0=0.0, y0=0.0):
    """Sky positions and line-of-sight unit vectors of disc-plane points, by 3-D rotation.

    The disc lies in its (x_d, y_d) plane, tilted about its x_d axis (the line of nodes) by
    the inclination, then turned by phi on the sky; z points away from the observer.
    """
    x_d, y_d = radius * np.cos(theta), radius * np.sin(theta)
    tilt = np.array([[1, 0, 0], [0, np.cos(inclination), 0], [0, np.sin(inclination), 0]])
    sky = tilt @ np.stack([x_d, y_d, np.zeros_like(x_d)])
    turn = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    x, y = turn @ sky[:2]
    return x + x0, y + y0, tilt


def test_velocity_field_matches_a_rotating_tilted_disc_in_3d(rng):
    radius, theta = rng.uniform(0.05, 3.0, 200), rng.uniform(-np.pi, np.pi, 200)
    phi, inclination, x0, y0 = 0.7, 1.1, 0.2, -0.3
    x, y, tilt = _disc_to_sky(radius, theta, phi, inclination, x0, y0)
    v_circ = 180.0 * np.tanh(radius / 0.6)
    v_rad = 25.0 * np.ones_like(radius)
    # circular plus radial motion in the disc plane, tilted: the z component is line of sight
    motion = np.stack(
        [
            -v_circ * np.sin(theta) + v_rad * np.cos(theta),
            v_circ * np.cos(theta) + v_rad * np.sin(theta),
            np.zeros_like(radius),
        ]
    )
    expected = 1500.0 + (tilt @ motion)[2]
    geometry = pmt.DiscGeometry(x0=x0, y0=y0, phi=phi, inclination=inclination)
    field = pmt.DiscVelocity(
        geometry, pmt.TanhCurve(v_max=180.0, r_t=0.6), v_sys=1500.0, radial=25.0
    )
    got = field(x[None], y[None]).eval()[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(field.numpy(x, y), expected, rtol=0, atol=1e-9)
    # the disc-plane radius is recovered from the sky position
    r_sky, cos_t, sin_t = geometry.coordinates_numpy(x, y)
    np.testing.assert_allclose(r_sky, radius, rtol=1e-12)
    np.testing.assert_allclose(np.arctan2(sin_t, cos_t), theta, atol=1e-10)


def test_rotation_curves_against_their_formulas():
    radius = np.linspace(0.0, 5.0, 51)
    arctan = pmt.ArctanCurve(v_max=220.0, r_t=0.4)
    np.testing.assert_allclose(
        arctan(pt.as_tensor(radius)).eval(), 2 / np.pi * 220 * np.arctan(radius / 0.4), atol=1e-10
    )
    np.testing.assert_allclose(arctan.numpy(radius), arctan(pt.as_tensor(radius)).eval())
    tanh = pmt.TanhCurve(v_max=150.0, r_t=0.7)
    np.testing.assert_allclose(tanh(pt.as_tensor(radius)).eval(), 150 * np.tanh(radius / 0.7))
    np.testing.assert_allclose(tanh.numpy(radius), 150 * np.tanh(radius / 0.7))


def test_freeman_disc_against_unscaled_bessel_functions_and_kepler():
    r_d, v_max = 0.8, 200.0
    curve = pmt.ExponentialDiscCurve(v_max=v_max, r_d=r_d)
    radius = np.linspace(0.01, 8.0, 200)
    y = radius / (2 * r_d)
    shape = y**2 * (special.i0(y) * special.k0(y) - special.i1(y) * special.k1(y))
    expected = v_max * np.sqrt(shape / FREEMAN_PEAK)
    np.testing.assert_allclose(curve(pt.as_tensor(radius)).eval(), expected, rtol=1e-10)
    np.testing.assert_allclose(curve.numpy(radius), expected, rtol=1e-10)
    # peak speed v_max at R = 2.15 r_d (Freeman 1970; Binney & Tremaine fig. 2.17)
    fine = np.linspace(1.5, 3.0, 30001) * r_d
    speeds = curve.numpy(fine)
    assert abs(fine[np.argmax(speeds)] / r_d - 2.15) < 0.01
    np.testing.assert_allclose(speeds.max(), v_max, rtol=1e-9)
    # far outside, the disc's whole mass M = 2 pi Sigma_0 r_d^2 acts as a point:
    # V^2 -> G M / R, with G Sigma_0 = v_max^2 / (4 pi r_d FREEMAN_PEAK)
    far = 400.0 * r_d
    kepler = v_max**2 * r_d / (2 * FREEMAN_PEAK * far)
    np.testing.assert_allclose(curve(pt.as_tensor(far)).eval() ** 2, kepler, rtol=1e-4)
    # no overflow where unscaled I0 would (y = 1000)
    assert np.isfinite(curve(pt.as_tensor(2000.0 * r_d)).eval())


def test_gradients_of_curves_velocity_field_and_dispersion(rng):
    x, y = rng.uniform(-2, 2, (2, 1, 25))
    radius = np.abs(rng.uniform(0.05, 4.0, 25))

    def freeman(v_max, r_d):
        return pmt.ExponentialDiscCurve(v_max=v_max, r_d=r_d)(pt.as_tensor(radius))

    def arctan(v_max, r_t):
        return pmt.ArctanCurve(v_max=v_max, r_t=r_t)(pt.as_tensor(radius))

    def velocity(x0, y0, phi, inclination, v_sys, v_max, r_t, v_r):
        geometry = pmt.DiscGeometry(x0=x0, y0=y0, phi=phi, inclination=inclination)
        curve = pmt.TanhCurve(v_max=v_max, r_t=r_t)
        return pmt.DiscVelocity(geometry, curve, v_sys=v_sys, radial=v_r)(x, y)

    def dispersion(sigma0, r_sigma, floor, inclination):
        geometry = pmt.DiscGeometry(phi=0.4, inclination=inclination)
        profile = pmt.ExponentialDispersion(sigma0=sigma0, r_sigma=r_sigma, floor=floor)
        return pmt.DiscDispersion(geometry, profile)(x, y)

    options = dict(rng=rng, eps=1e-7, abs_tol=1e-5, rel_tol=1e-5)
    verify_grad(freeman, [210.0, 0.7], **options)
    verify_grad(arctan, [210.0, 0.3], **options)
    verify_grad(velocity, [0.1, -0.1, 0.5, 0.9, 30.0, 200.0, 0.5, 20.0], **options)
    verify_grad(dispersion, [40.0, 0.8, 15.0, 0.7], **options)
    verify_grad(lambda q: pmt.inclination_from_axis_ratio(q, 0.2), [0.55], **options)


def test_inclination_from_axis_ratio():
    inclination = np.deg2rad([0.0, 30.0, 60.0, 85.0])
    q0 = 0.2
    # an oblate spheroid of thickness q0 seen at inclination i has q^2 = cos^2 i + q0^2 sin^2 i
    q = np.sqrt(np.cos(inclination) ** 2 + q0**2 * np.sin(inclination) ** 2)
    np.testing.assert_allclose(pmt.inclination_from_axis_ratio(q, q0), inclination, atol=1e-7)
    tensor = pmt.inclination_from_axis_ratio(pt.as_tensor(q[1]) * pt.ones(()), q0)
    np.testing.assert_allclose(tensor.eval(), inclination[1], rtol=1e-12)
    with pytest.raises(ValueError, match="below the intrinsic thickness q0"):
        pmt.inclination_from_axis_ratio(0.15, q0=0.2)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        pmt.inclination_from_axis_ratio(1.2)
    with pytest.raises(ValueError, match="q0"):
        pmt.inclination_from_axis_ratio(0.5, q0=1.0)


def test_batched_parameters_and_radial_profiles():
    x, y = np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-2, 2, 5))
    geometry = pmt.DiscGeometry(phi=np.array([0.0, 1.0]), inclination=np.array([0.5, 1.0]))
    field = pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=np.array([100.0, 250.0]), r_t=0.5))
    got = field(x, y).eval()
    assert got.shape == (2, 5, 7)
    np.testing.assert_allclose(got, field.numpy(x, y), atol=1e-10)
    for n in range(2):
        one = pmt.DiscVelocity(
            pmt.DiscGeometry(phi=[0.0, 1.0][n], inclination=[0.5, 1.0][n]),
            pmt.ArctanCurve(v_max=[100.0, 250.0][n], r_t=0.5),
        )
        np.testing.assert_allclose(got[n], one.numpy(x, y), atol=1e-10)
    # a spline rotation curve (free knots are allowed), and any expression of R
    spline = pmt.RadialProfile.spline(radii=[0, 1, 2, 4], values=[0.0, 150.0, 190.0, 200.0])
    curve = pmt.as_radial_function(spline)
    assert curve(pt.as_tensor(np.array([1.0, 2.0]))).eval() == pytest.approx([150.0, 190.0])
    expr = pmt.as_radial_function(lambda r: 100.0 * r / (1.0 + r))
    assert expr.numpy(np.array([1.0]))[0] == pytest.approx(50.0)
    with pm.Model():
        knots = pm.Normal("knots", 150, 50, shape=4)
        free = pmt.as_radial_function(pmt.RadialProfile.spline(radii=[0, 1, 2, 4], values=knots))
        assert "values" in free.parameters()


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"inclination must be in \[0, pi/2\) radians"):
        pmt.DiscGeometry(inclination=95.0)
    with pytest.raises(ValueError, match="default geometry"):
        pmt.as_radial_function(pmt.RadialProfile(lambda r: r, q=0.5))
    with pytest.raises(TypeError, match="must be a number"):
        pmt.as_radial_function("fast")
    with pytest.raises(TypeError, match="DiscGeometry"):
        pmt.DiscVelocity(None, 100.0)
    with pytest.raises(ValueError, match="r_t must be > 0"):
        pmt.ArctanCurve(v_max=100.0, r_t=-1.0)
