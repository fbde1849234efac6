"""Lens models: PyTensor graphs against their numpy twins and lenstronomy, gradients
(``verify_grad``), analytic limits, deflection maps and their FITS input, and bad input."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy.interpolate import RegularGridInterpolator

from pymc_tracers import lensing

RNG = np.random.default_rng(7)
X = RNG.uniform(-3, 3, (9, 11))
Y = RNG.uniform(-3, 3, (9, 11))


#: quick to compile (C, few rewrites): compilation, not evaluation, is what these tests cost
MODE = pytensor.compile.mode.Mode(linker="cvm", optimizer="fast_compile")


def _run(graphs):
    return [np.asarray(v) for v in pytensor.function([], list(graphs), mode=MODE)()]


MODELS = {
    "sie": lambda: lensing.SIE(theta_E=1.1, q=0.65, phi=0.7, x0=0.1, y0=-0.2),
    "sie_round": lambda: lensing.SIE(theta_E=1.1, q=0.99995, phi=0.7, x0=0.1, y0=-0.2),
    "sie_q1": lambda: lensing.SIE(theta_E=1.1, q=1.0, phi=0.0, x0=0.1, y0=-0.2),
    "nie": lambda: lensing.NIE(theta_E=0.9, core=0.2, q=0.5, phi=-1.0, x0=-0.3, y0=0.2),
    "sis": lambda: lensing.SIS(theta_E=0.7, x0=0.4, y0=0.1),
    "shear": lambda: lensing.ExternalShear(gamma1=0.06, gamma2=-0.02, x0=0.3, y0=-0.1),
    "sheet": lambda: lensing.ConvergenceSheet(kappa=0.12, x0=-0.2, y0=0.4),
    "point": lambda: lensing.PointMass(theta_E=0.6, x0=0.2, y0=0.3),
    "nfw": lambda: lensing.NFW(Rs=1.3, alpha_Rs=0.7, x0=-0.1, y0=0.2),
}


def _lenstronomy(name, model):
    from lenstronomy.Util import param_util

    p = {k: float(v) for k, v in model.parameters().items()}
    centre = {"center_x": p.get("x0", 0.0), "center_y": p.get("y0", 0.0)}
    origin = {"ra_0": p.get("x0", 0.0), "dec_0": p.get("y0", 0.0)}
    if name in ("sie", "sie_round", "sie_q1", "nie"):
        e1, e2 = param_util.phi_q2_ellipticity(p["phi"], p["q"])
        kw = {"theta_E": p["theta_E"], "e1": e1, "e2": e2, **centre}
        if name == "nie":
            return "NIE", {**kw, "s_scale": p["core"]}
        return "SIE", kw
    if name == "sis":
        return "SIS", {"theta_E": p["theta_E"], **centre}
    if name == "shear":
        return "SHEAR", {"gamma1": p["gamma1"], "gamma2": p["gamma2"], **origin}
    if name == "sheet":
        return "CONVERGENCE", {"kappa": p["kappa"], **origin}
    if name == "point":
        return "POINT_MASS", {"theta_E": p["theta_E"], **centre}
    return "NFW", {"Rs": p["Rs"], "alpha_Rs": p["alpha_Rs"], **centre}


@pytest.mark.parametrize("name", MODELS)
def test_graph_matches_numpy_twin_and_lenstronomy(name):
    lenstronomy = pytest.importorskip("lenstronomy.LensModel.lens_model")
    model = MODELS[name]()
    ours = _run(model.deflection(pt.as_tensor(X), pt.as_tensor(Y)))
    twin = model.deflection_numpy(X, Y)
    np.testing.assert_allclose(ours[0], twin[0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ours[1], twin[1], rtol=1e-13, atol=1e-14)
    kind, kwargs = _lenstronomy(name, model)
    ref = lenstronomy.LensModel([kind]).alpha(X.ravel(), Y.ravel(), [kwargs])
    # round-off (a round SIE included: both cap q at 1 - 1e-8)
    np.testing.assert_allclose(ours[0].ravel(), ref[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ours[1].ravel(), ref[1], rtol=1e-12, atol=1e-13)


def _free(model_factory, names, values):
    """verify_grad of the summed deflection with respect to the named parameters."""

    def function(*params):
        model = model_factory(**dict(zip(names, params)))
        ax, ay = model.deflection(pt.as_tensor(X), pt.as_tensor(Y))
        return pt.sum(ax * np.cos(X)) + pt.sum(ay * np.sin(Y))

    verify_grad(
        function, [np.asarray(v, dtype=float) for v in values], rng=RNG, eps=1e-7, mode=MODE
    )


GRADIENT_CASES = {
    "sie": (
        lambda theta_E, q, phi, x0, y0: lensing.SIE(theta_E=theta_E, q=q, phi=phi, x0=x0, y0=y0),
        ["theta_E", "q", "phi", "x0", "y0"],
        [1.1, 0.65, 0.7, 0.1, -0.2],
    ),
    "sie_series": (  # the series branch near q = 1
        lambda theta_E, q: lensing.SIE(theta_E=theta_E, q=q, phi=0.3),
        ["theta_E", "q"],
        [1.1, 0.9997],
    ),
    "nie": (
        lambda theta_E, core, q: lensing.NIE(theta_E=theta_E, core=core, q=q, phi=0.2),
        ["theta_E", "core", "q"],
        [0.9, 0.2, 0.5],
    ),
    "sis": (lambda theta_E, x0: lensing.SIS(theta_E=theta_E, x0=x0), ["theta_E", "x0"], [0.7, 0.1]),
    "shear": (
        lambda gamma1, gamma2: lensing.ExternalShear(gamma1=gamma1, gamma2=gamma2),
        ["gamma1", "gamma2"],
        [0.06, -0.02],
    ),
    "sheet": (lambda kappa: lensing.ConvergenceSheet(kappa=kappa), ["kappa"], [0.1]),
    "point": (
        lambda theta_E, y0: lensing.PointMass(theta_E=theta_E, y0=y0),
        ["theta_E", "y0"],
        [0.6, 0.3],
    ),
    "nfw": (
        lambda Rs, alpha_Rs, x0: lensing.NFW(Rs=Rs, alpha_Rs=alpha_Rs, x0=x0),
        ["Rs", "alpha_Rs", "x0"],
        [1.3, 0.7, -0.1],
    ),
}


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_verify_grad_in_parameters(name):
    _free(*GRADIENT_CASES[name])


def test_verify_grad_in_positions_including_nfw_series_and_map():
    """Gradients in position (the magnification) through every branch: NFW near X = 1 (the
    series), the SIE's centre region, and a bilinear map inside its cells."""
    x_axis, y_axis = np.linspace(-4, 4, 33), np.linspace(-4, 4, 29)
    xx, yy = np.meshgrid(x_axis, y_axis)
    table = lensing.DeflectionMap(np.sin(xx) * yy, np.cos(yy) + xx**2 / 10, x=x_axis, y=y_axis)
    nfw = lensing.NFW(Rs=1.0, alpha_Rs=0.5)
    sie = lensing.SIE(theta_E=1.0, q=0.6, phi=0.3, x0=0.013, y0=-0.007)
    xs = np.array([0.999, 1.004, 0.5, 2.5, 0.03])  # NFW X near 1 on both sides
    ys = np.array([0.02, -0.03, 0.4, 0.1, 0.01])
    for model in (nfw, sie, table):

        def function(x, y, model=model):
            ax, ay = model.deflection(x, y)
            return ax * 1.3 + ay * 0.7

        verify_grad(function, [xs, ys], rng=RNG, eps=1e-8, mode=MODE)


def test_sis_einstein_ring_and_sie_limit():
    """SIS: |alpha| = theta_E everywhere, so the Einstein ring maps onto the centre; an SIE
    tends to it as q -> 1 (series branch) and at q = 1."""
    sis = lensing.SIS(theta_E=0.8, x0=0.1, y0=-0.2)
    angle = np.linspace(0, 2 * np.pi, 50)
    x, y = 0.1 + 0.8 * np.cos(angle), -0.2 + 0.8 * np.sin(angle)
    bx, by = lensing.source_positions(sis, x, y)
    np.testing.assert_allclose(bx, 0.1, atol=1e-14)
    np.testing.assert_allclose(by, -0.2, atol=1e-14)
    ax, ay = sis.deflection_numpy(X, Y)
    np.testing.assert_allclose(np.hypot(ax, ay), 0.8, rtol=1e-14)
    for q in (1.0, 0.99999, 0.9996):  # series branch (and its q = 1 limit)
        sie = lensing.SIE(theta_E=0.8, q=q, phi=0.4, x0=0.1, y0=-0.2)
        ex, ey = _run(sie.deflection(pt.as_tensor(X), pt.as_tensor(Y)))
        # an SIE of axis ratio q differs from the SIS by O(1 - q) (q is capped at 1 - 1e-8)
        np.testing.assert_allclose(np.hypot(ex, ey), 0.8, rtol=2 * (1 - q) + 2e-8)


def test_sie_series_and_closed_form_meet():
    """Just inside the series region (e^2 < 1e-3) the series equals the closed forms
    arctan(e u) / e and arctanh(e u) / e to round-off, in the graph and its numpy twin."""
    from pymc_tracers.lensing.isothermal import SERIES_E2, _atan_ratio, _atan_ratio_numpy

    e2 = SERIES_E2 * (1 - 1e-9)
    u = np.linspace(-1.6, 1.6, 41)  # |u| <= 1/q
    e = np.sqrt(e2)
    for sign, closed in ((-1, np.arctan(e * u) / e), (+1, np.arctanh(e * u) / e)):
        (graph,) = _run([_atan_ratio(pt.as_tensor(e2), pt.as_tensor(u), sign)])
        np.testing.assert_allclose(graph, closed, rtol=1e-14, atol=1e-16)
        np.testing.assert_allclose(_atan_ratio_numpy(e2, u, sign), closed, rtol=1e-14)


def test_point_mass_and_sis_magnification_are_analytic():
    r = np.linspace(0.3, 3.0, 40)
    angle = RNG.uniform(0, 2 * np.pi, r.size)
    x, y = r * np.cos(angle), r * np.sin(angle)
    point = lensing.PointMass(theta_E=0.7)
    np.testing.assert_allclose(
        lensing.magnification(point, x, y), 1 / (1 - (0.7 / r) ** 4), rtol=1e-10
    )
    sis = lensing.SIS(theta_E=0.7)
    np.testing.assert_allclose(lensing.magnification(sis, x, y), 1 / (1 - 0.7 / r), rtol=1e-10)


def test_nfw_deflection_at_scale_radius_and_mass_from_convergence():
    """|alpha(Rs)| = alpha_Rs, and alpha(r) = (2 / r) int_0^r kappa(r') r' dr' with the NFW
    convergence kappa = 2 kappa_s (1 - F(X)) / (X^2 - 1) (Bartelmann 1996), integrated by
    scipy."""
    from scipy.integrate import quad

    from pymc_tracers.lensing.spherical import _nfw_f_numpy

    Rs, alpha_Rs = 1.3, 0.7
    nfw = lensing.NFW(Rs=Rs, alpha_Rs=alpha_Rs)
    ax, ay = nfw.deflection_numpy(np.array([Rs * 0.6]), np.array([Rs * 0.8]))
    np.testing.assert_allclose(np.hypot(ax, ay), alpha_Rs, rtol=1e-13)
    # kappa_s from alpha_Rs: alpha(r) = 4 kappa_s Rs g(X) / X
    kappa_s = alpha_Rs / (4 * Rs * (1 + np.log(0.5)))

    def kappa(r):
        X = r / Rs
        if abs(X - 1) < 1e-6:
            return 2 * kappa_s / 3
        return 2 * kappa_s * (1 - _nfw_f_numpy(X)) / (X**2 - 1)

    for r in (0.2, 1.0, 1.3, 2.9):
        mass = quad(lambda s: kappa(s) * s, 0, r, points=[Rs], epsabs=1e-13, epsrel=1e-12)[0]
        ax, ay = nfw.deflection_numpy(np.array([r]), np.array([0.0]))
        np.testing.assert_allclose(ax, 2 * mass / r, rtol=1e-9)
        assert abs(ay[0]) < 1e-15


def test_lenses_add_on_one_plane_and_batch_over_galaxies():
    sie = lensing.SIE(theta_E=np.array([0.8, 1.2]), q=np.array([0.6, 0.9]), phi=0.3)
    shear = lensing.ExternalShear(gamma1=0.05, gamma2=np.array([0.0, -0.04]))
    total = sie + shear
    ax, ay = _run(total.deflection(pt.as_tensor(X), pt.as_tensor(Y)))
    assert ax.shape == (2, *X.shape)
    for i in range(2):
        one = lensing.SIE(theta_E=[0.8, 1.2][i], q=[0.6, 0.9][i], phi=0.3).deflection_numpy(X, Y)
        two = lensing.ExternalShear(gamma1=0.05, gamma2=[0.0, -0.04][i]).deflection_numpy(X, Y)
        np.testing.assert_allclose(ax[i], one[0] + two[0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ay[i], one[1] + two[1], rtol=1e-13, atol=1e-15)
    assert lensing.as_lens([sie, shear]).parameters().keys() == total.parameters().keys()


# ----------------------------------------------------------------------------- maps


def _map():
    x_axis, y_axis = np.linspace(-2.0, 2.5, 19), np.linspace(-1.5, 1.8, 23)
    xx, yy = np.meshgrid(x_axis, y_axis)
    return x_axis, y_axis, np.sin(2 * xx) * np.cos(yy), 0.3 * xx * yy - yy**3 / 5


def test_bilinear_map_matches_scipy_and_is_exact_for_bilinear_fields():
    x_axis, y_axis, fx, fy = _map()
    deflection = lensing.DeflectionMap(fx, fy, x=x_axis, y=y_axis, scale=0.8)
    x, y = RNG.uniform(-2.0, 2.5, 200), RNG.uniform(-1.5, 1.8, 200)
    ax, ay = _run(deflection.deflection(pt.as_tensor(x), pt.as_tensor(y)))
    for ours, table in ((ax, fx), (ay, fy)):
        ref = RegularGridInterpolator((y_axis, x_axis), table, method="linear")((y, x))
        np.testing.assert_allclose(ours, 0.8 * ref, rtol=1e-13, atol=1e-14)
    # a field bilinear in (x, y) is reproduced exactly between the nodes
    xx, yy = np.meshgrid(x_axis, y_axis)
    exact = lensing.DeflectionMap(1 + 2 * xx - yy + 0.5 * xx * yy, 0 * xx, x=x_axis, y=y_axis)
    bx, _ = exact.deflection_numpy(x, y)
    np.testing.assert_allclose(bx, 1 + 2 * x - y + 0.5 * x * y, rtol=1e-13, atol=1e-13)


def test_deflection_map_coverage_is_checked():
    x_axis, y_axis, fx, fy = _map()
    deflection = lensing.DeflectionMap(fx, fy, x=x_axis, y=y_axis)
    with pytest.raises(ValueError, match="deflection map covers x in"):
        lensing.source_positions(deflection, np.array([2.6]), np.array([0.0]))


def test_deflection_map_fits_round_trip_with_wcs_units_and_redshifts(tmp_path):
    from astropy.wcs import WCS

    from pymc_tracers.io.wcs import sky_frame

    x_axis, y_axis, fx, fy = _map()
    scale = 0.25  # arcsec per map pixel: the axes above are spaced 0.25 and 0.15
    ny, nx = 17, 21
    xs = (np.arange(nx) - (nx - 1) / 2) * scale
    ys = (np.arange(ny) - (ny - 1) / 2) * scale
    xx, yy = np.meshgrid(xs, ys)
    ax, ay = np.sin(xx) * yy, np.cos(yy) * 0.2 + xx / 7
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    wcs.wcs.cdelt = [-scale / 3600, scale / 3600]
    lensing.DeflectionMap(ax, ay, x=xs, y=ys).write_fits(
        tmp_path / "ax.fits", tmp_path / "ay.fits", wcs
    )
    # the data: 0.05" pixels, same orientation, its centre 0.5" east and 0.25" north
    data = WCS(naxis=2)
    data.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    data.wcs.crval = [150.0 + 0.5 / 3600 / np.cos(np.radians(2.0)), 2.0 + 0.25 / 3600]
    data.wcs.crpix = [20.0, 20.0]
    data.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
    frame = sky_frame(data, (39, 39))
    z_l, z_s = 0.4, 2.0
    read = lensing.DeflectionMap.from_fits(
        tmp_path / "ax.fits", tmp_path / "ay.fits", frame=frame, z_lens=z_l, z_source=z_s
    )
    rx, ry = read.axes
    np.testing.assert_allclose(rx, xs + 0.5, atol=2e-6)  # east is -x on the sky: +x here
    np.testing.assert_allclose(ry, ys - 0.25, atol=2e-6)
    from astropy.cosmology import Planck18

    ratio = (
        Planck18.angular_diameter_distance(z_l, z_s) / Planck18.angular_diameter_distance(z_s)
    ).value
    assert float(read.scale) == pytest.approx(ratio, rel=1e-12)
    assert 0 < ratio < 1
    bx, by = read.deflection_numpy(rx[3], ry[5])
    np.testing.assert_allclose([bx, by], [ratio * ax[5, 3], ratio * ay[5, 3]], rtol=1e-12)
    # maps in pixels
    from astropy.io import fits

    fits.PrimaryHDU(ax / scale, header=wcs.to_header()).writeto(tmp_path / "px.fits")
    fits.PrimaryHDU(ay / scale, header=wcs.to_header()).writeto(tmp_path / "py.fits")
    pixels = lensing.DeflectionMap.from_fits(
        tmp_path / "px.fits", tmp_path / "py.fits", unit="pixel"
    )
    np.testing.assert_allclose(pixels.maps[0], ax, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown deflection unit 'furlong'"):
        lensing.DeflectionMap.from_fits(tmp_path / "px.fits", tmp_path / "py.fits", unit="furlong")
    with pytest.raises(ValueError, match="source must lie behind the lens"):
        lensing.DeflectionMap.from_fits(
            tmp_path / "ax.fits", tmp_path / "ay.fits", z_lens=2.0, z_source=1.0
        )
    rotated = wcs.deepcopy()
    rotated.wcs.cdelt = [scale / 3600, scale / 3600]  # east to the right: flipped
    fits.PrimaryHDU(ax, header=rotated.to_header()).writeto(tmp_path / "fx.fits")
    with pytest.raises(ValueError, match="rotated or flipped"):
        lensing.DeflectionMap.from_fits(tmp_path / "fx.fits", tmp_path / "fx.fits", frame=frame)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: lensing.SIE(theta_E=-1.0), "theta_E must be > 0"),
        (lambda: lensing.SIE(theta_E=1.0, q=1.2), "q must be <= 1"),
        (lambda: lensing.NIE(theta_E=1.0, core=-0.1), "core must be >= 0"),
        (lambda: lensing.NFW(Rs=0.0, alpha_Rs=1.0), "Rs must be > 0"),
        (lambda: lensing.as_lens("SIE"), "lens must be a lens model"),
        (
            lambda: lensing.DeflectionMap(
                np.zeros((3, 4)), np.zeros((3, 4)), x=[0, 1, 3, 4], y=[0, 1, 2]
            ),
            "equally spaced",
        ),
        (
            lambda: lensing.DeflectionMap(
                np.zeros((3, 4)), np.zeros((3, 3)), x=[0, 1, 2, 3], y=[0, 1, 2]
            ),
            "of one shape",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()
