"""Richer tracer structure: broken gradients, azimuthal harmonics, GP residual fields.

Each profile is checked against its numpy twin through a brute-force numpy forward model,
against analytic limits, with ``verify_grad`` for every parameter, and (where it states linear
terms) the linear path against the full path.
"""

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import signal, special

import pymc_tracers as pmt
from pymc_tracers.model.fields import gp_residual
from pymc_tracers.profiles.azimuthal import Azimuthal, azimuthal_numpy
from pymc_tracers.profiles.gp import GPResidual, gp_kernel_numpy, gp_residual_numpy
from pymc_tracers.profiles.radial import BrokenGradient, broken_gradient_numpy

PIXEL = 0.1
S = 2
SHAPE = (11, 13)
GRID = pmt.PixelGrid(SHAPE, PIXEL, supersampling=S)
LIGHT = {"x0": 0.03, "y0": -0.02, "r_eff": 0.35, "n": 1.3, "amplitude": 2.0, "q": 0.8, "phi": 0.3}
N_BASIS = (5, 4)
GP_BOX = (1.2, 1.0)


def kernel_numpy(size=7):
    """A lopsided kernel on the sub-pixel scale: any flip or transpose would show."""
    h = size // 2
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1]
    kernel = np.exp(-(xx**2 + 1.5 * yy**2 + 0.6 * xx * yy) / 6.0) * (1 + 0.4 * (xx > 0))
    return kernel / kernel.sum()


PSF = pmt.PixelPSF(kernel_numpy(), PIXEL / S)

#: small graphs: skipping C compilation keeps these tests fast on a cold compile cache
MODE = "FAST_COMPILE"


def run(outputs, inputs=(), values=()):
    """Evaluate tensors (no C compilation)."""
    return pytensor.function(list(inputs), outputs, mode=MODE, on_unused_input="ignore")(*values)


# ---------------------------------------------------------------- independent references
def sersic_numpy(x, y, x0, y0, r_eff, n, amplitude, q, phi):
    dx, dy = x - x0, y - y0
    r = np.hypot(dx * np.cos(phi) + dy * np.sin(phi), (-dx * np.sin(phi) + dy * np.cos(phi)) / q)
    return amplitude * np.exp(-special.gammaincinv(2 * n, 0.5) * ((r / r_eff) ** (1 / n) - 1))


def ref_observe(tracer, tracer_scale, kernel=None):
    """Brute force: sub-pixel centres from pixel edges, direct convolution, explicit sums.

    ``tracer(x, y)`` is a numpy function (arcsec -> tracer units).
    """
    kernel = kernel_numpy() if kernel is None else kernel
    h = kernel.shape[0] // 2
    sub = PIXEL / S

    def axis(n):
        edges = -n * PIXEL / 2 + np.arange(n) * PIXEL
        centres = (edges[:, None] + (np.arange(S) + 0.5) * sub).ravel()
        return np.concatenate(
            [
                centres[0] - sub * np.arange(h, 0, -1),
                centres,
                centres[-1] + sub * np.arange(1, h + 1),
            ]
        )

    x, y = np.meshgrid(axis(SHAPE[1]), axis(SHAPE[0]))
    light = sersic_numpy(x, y, **LIGHT)
    z = tracer(x, y)
    f = z if tracer_scale == "linear" else 10.0**z
    num = signal.convolve2d(light * f, kernel, mode="valid")
    den = signal.convolve2d(light, kernel, mode="valid")
    ratio = np.zeros(SHAPE)
    for i in range(SHAPE[0]):
        for j in range(SHAPE[1]):
            block = (slice(i * S, (i + 1) * S), slice(j * S, (j + 1) * S))
            ratio[i, j] = num[block].sum() / den[block].sum()
    return ratio if tracer_scale == "linear" else np.log10(ratio)


def observe_map(tracer, tracer_scale="linear", **kwargs):
    return pmt.observe(
        pmt.Component(pmt.Sersic(**LIGHT), tracer), GRID, PSF, tracer_scale, **kwargs
    )


BROKEN = {
    "x0": 0.02,
    "y0": 0.01,
    "central": 8.4,
    "inner": -0.1,
    "outer": -0.9,
    "r_break": 0.27,
    "q": 0.7,
    "phi": 0.4,
    "softening": 0.04,
}
HARMONICS = {
    "x0": -0.03,
    "y0": 0.02,
    "q": 0.75,
    "phi": 0.6,
    "m1": 0.12,
    "phase1": 2.0,
    "m2": 0.07,
    "phase2": -0.8,
}
GP = {
    "amplitude": 0.15,
    "length_scale": 0.3,
    "L": GP_BOX,
    "n_basis": N_BASIS,
    "center": (0.05, -0.05),
}


def gp_coefficients(n=None, seed=3):
    size = (N_BASIS[0] * N_BASIS[1],) if n is None else (n, N_BASIS[0] * N_BASIS[1])
    return np.random.default_rng(seed).normal(size=size)


def radial_numpy(x, y):
    return 8.3 - 0.25 * np.hypot(x - HARMONICS["x0"], y - HARMONICS["y0"])


def profiles_and_twins():
    beta = gp_coefficients()
    return {
        "broken": (BrokenGradient(**BROKEN), lambda x, y: broken_gradient_numpy(x, y, **BROKEN)),
        "azimuthal": (
            Azimuthal(
                pmt.LinearGradient(
                    x0=HARMONICS["x0"], y0=HARMONICS["y0"], central=8.3, gradient=-0.25
                ),
                **HARMONICS,
            ),
            lambda x, y: radial_numpy(x, y) + azimuthal_numpy(x, y, **HARMONICS),
        ),
        "azimuthal scaled": (
            Azimuthal(None, scale_radius=0.4, **HARMONICS),
            lambda x, y: azimuthal_numpy(x, y, scale_radius=0.4, **HARMONICS),
        ),
        "gp": (GPResidual(beta, **GP), lambda x, y: 8.0 + gp_residual_numpy(x, y, beta, **GP)),
        "gradient + azimuthal + gp": (
            pmt.LinearGradient(central=8.2, gradient=-0.3)
            + Azimuthal(None, **HARMONICS)
            + GPResidual(beta, **GP),
            lambda x, y: (
                8.2
                - 0.3 * np.hypot(x, y)
                + azimuthal_numpy(x, y, **HARMONICS)
                + gp_residual_numpy(x, y, beta, **GP)
            ),
        ),
    }


# ---------------------------------------------------------------- forward model vs reference
@pytest.mark.parametrize("tracer_scale", ["linear", "log"])
@pytest.mark.parametrize("name", list(profiles_and_twins()))
def test_full_path_matches_brute_force_reference(name, tracer_scale):
    profile, twin = profiles_and_twins()[name]
    if name == "gp":  # a residual alone: add a constant so that 10**Z is a metallicity
        profile = 8.0 + profile
    observed = run(observe_map(profile, tracer_scale, method="full")[1])
    np.testing.assert_allclose(observed, ref_observe(twin, tracer_scale), rtol=0, atol=1e-11)


def test_twins_match_profiles_on_batched_parameters():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (2, 6, 7))
    batched = dict(BROKEN, inner=np.array([-0.1, 0.2]), r_break=np.array([0.2, 0.5]))
    value = run(BrokenGradient(**batched)(x, y))
    assert value.shape == (2, 6, 7)
    np.testing.assert_allclose(value, broken_gradient_numpy(x, y, **batched), atol=1e-12)
    batched = dict(HARMONICS, m1=np.array([0.1, -0.2]), phase2=np.array([0.3, 2.0]))
    value = run(Azimuthal(None, **batched)(x, y))
    np.testing.assert_allclose(value, azimuthal_numpy(x, y, **batched), atol=1e-12)
    beta = gp_coefficients(2)
    batched = dict(GP, amplitude=np.array([0.1, 0.3]))
    value = run(GPResidual(beta, **batched)(x, y))  # scattered points: generic path
    np.testing.assert_allclose(value, gp_residual_numpy(x, y, beta, **batched), atol=1e-12)


# ---------------------------------------------------------------- analytic limits
def test_broken_gradient_tends_to_two_straight_lines():
    r = np.linspace(0.0, 2.0, 2001)
    for w in (0.05, 0.01):
        z = broken_gradient_numpy(
            r, 0 * r, central=8.0, inner=-0.1, outer=-0.6, r_break=0.8, softening=w
        )
        exact = 8.0 - 0.1 * r - 0.5 * np.maximum(r - 0.8, 0.0)
        # |softplus hinge - max(r - r_b, 0)| <= w ln 2 (at the break), times the slope change
        assert np.max(np.abs(z - exact)) <= 0.5 * w * np.log(2) * (1 + 1e-9)
        assert np.max(np.abs(z - exact)) >= 0.5 * w * np.log(2) * 0.99
    profile = BrokenGradient(central=8.0, inner=-0.1, outer=-0.6, r_break=0.8, softening=0.05)
    # Z(0) = central up to the 1e-8 arcsec radius softening that keeps gradients finite
    centre = run(profile(np.zeros((1, 1)), np.zeros((1, 1))))[0, 0]
    assert centre == pytest.approx(8.0, abs=2e-9)


def test_azimuthal_harmonics_peak_at_their_phase_and_cartesian_form_agrees():
    theta = np.linspace(-np.pi, np.pi, 721)[:-1]
    x, y = 0.7 * np.cos(theta)[None], 0.7 * np.sin(theta)[None]
    m1 = run(Azimuthal(None, m1=0.2, phase1=1.1)(x, y))[0]
    assert theta[np.argmax(m1)] == pytest.approx(1.1, abs=0.01)
    assert np.max(m1) == pytest.approx(0.2, rel=1e-4)
    # m = 2 with phase 1.0: maxima at t = 0.5 and 0.5 - pi, minima a quarter turn away
    t = np.array([[0.5, 0.5 - np.pi, 0.5 + np.pi / 2, 0.5 - np.pi / 2]])
    m2 = run(Azimuthal(None, m2=0.1, phase2=1.0)(0.7 * np.cos(t), 0.7 * np.sin(t)))
    np.testing.assert_allclose(m2[0], [0.1, 0.1, -0.1, -0.1], atol=1e-12)
    cartesian = Azimuthal.from_components(
        None, cos1=0.2 * np.cos(1.1), sin1=0.2 * np.sin(1.1), cos2=-0.05, sin2=0.02
    )
    expected = azimuthal_numpy(
        x, y, m1=0.2, phase1=1.1, m2=np.hypot(0.05, 0.02), phase2=np.arctan2(0.02, -0.05)
    )
    np.testing.assert_allclose(run(cartesian(x, y)), expected, atol=1e-12)
    # amplitudes that grow linearly with radius
    scaled = run(Azimuthal(None, m1=0.2, phase1=1.1, scale_radius=0.35)(x, y))[0]
    np.testing.assert_allclose(scaled, 2.0 * m1, atol=1e-12)


@pytest.mark.parametrize("kernel", ["expquad", "matern32", "matern52"])
def test_gp_covariance_approximates_the_exact_kernel(kernel):
    """Hilbert-space covariance sum_j S_j phi_j phi_j' against k(|x - x'|), inside the box."""
    amplitude, ell, box, n = 0.2, 0.4, 2.0, 40
    profile = GPResidual(
        np.zeros(n * n), amplitude=amplitude, length_scale=ell, L=box, n_basis=n, kernel=kernel
    )
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.8, 0.8, (2, 30))
    basis = profile.basis(points[0], points[1])  # (M, 30)
    weights = run(profile.spectral_weights())
    covariance = (basis * weights[:, None] ** 2).T @ basis
    distance = np.hypot(*(points[:, :, None] - points[:, None, :]))
    exact = gp_kernel_numpy(distance, amplitude=amplitude, length_scale=ell, kernel=kernel)
    tolerance = {"expquad": 1e-6, "matern52": 1e-3, "matern32": 5e-3}[kernel]
    np.testing.assert_allclose(covariance, exact, atol=tolerance * amplitude**2)
    # the marginal standard deviation is the amplitude
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)), amplitude, rtol=tolerance)


# ---------------------------------------------------------------- gradients
def _check_grad(profile_of, values, tracer_scale="linear", rng=None):
    rng = np.random.default_rng(7) if rng is None else rng
    grid = pmt.PixelGrid((5, 6), PIXEL, supersampling=2)
    weights = rng.normal(size=grid.shape)

    def model(*params):
        _, tracer_map = pmt.observe(
            pmt.Component(pmt.Sersic(**LIGHT), profile_of(*params)),
            grid,
            PSF,
            tracer_scale,
            method="full",
        )
        return pt.sum(weights * tracer_map)

    verify_grad(
        model,
        [np.asarray(v, dtype=float) for v in values],
        rng=rng,
        abs_tol=1e-6,
        rel_tol=1e-5,
        mode=MODE,
    )


def test_broken_gradient_gradients_for_every_parameter():
    names = ["x0", "y0", "central", "inner", "outer", "r_break", "q", "phi"]
    values = [0.02, 0.01, 8.4, -0.1, -0.9, 0.2, 0.7, 0.4]
    _check_grad(lambda *p: BrokenGradient(**dict(zip(names, p)), softening=0.04), values, "log")


def test_azimuthal_gradients_for_every_parameter():
    names = ["x0", "y0", "q", "phi", "m1", "phase1", "m2", "phase2"]
    values = [-0.03, 0.02, 0.75, 0.6, 0.12, 2.0, 0.07, -0.8]

    def profile(*p):
        params = dict(zip(names, p[:8]))
        radial = pmt.LinearGradient(x0=params["x0"], y0=params["y0"], central=8.3, gradient=p[8])
        return Azimuthal(radial, scale_radius=0.3, **params)

    _check_grad(profile, [*values, -0.25], "log")
    cartesian = ["cos1", "sin1", "cos2", "sin2"]
    _check_grad(
        lambda *p: Azimuthal.from_components(8.0, **dict(zip(cartesian, p))),
        [0.1, -0.05, 0.03, 0.02],
    )


def test_gp_gradients_for_every_parameter():
    def profile(beta, amplitude, length_scale):
        return (
            GPResidual(
                beta, amplitude=amplitude, length_scale=length_scale, L=GP_BOX, n_basis=N_BASIS
            )
            + 8.0
        )

    _check_grad(profile, [gp_coefficients(), 0.15, 0.3], "log")


# ---------------------------------------------------------------- linear path
def _both_paths(profile_of, inputs, values, tracer_scale, convolve_at="subpixel"):
    compiled = {}
    for method in ("auto", "full"):
        observation = observe_map(
            profile_of(*inputs), tracer_scale, method=method, convolve_at=convolve_at
        )
        loss = pt.sum(observation[1] ** 2)
        compiled[method] = (
            observation.path,
            run([observation[1], *pt.grad(loss, inputs)], inputs, values),
        )
    return compiled


@pytest.mark.parametrize(
    "case, convolve_at",
    [
        (case, "subpixel")
        for case in ["broken", "azimuthal polar", "azimuthal cartesian", "gp", "composition"]
    ]
    + [("composition", "pixel")],
)
def test_linear_path_equals_full_path(case, convolve_at):
    c, a, b, d = pt.dscalar("c"), pt.dscalar("a"), pt.dscalar("b"), pt.dscalar("d")
    tracer_scale = "linear"
    if case == "broken":  # free central, inner and outer; fixed break
        inputs, values = [c, a, b], [8.4, -0.1, -0.9]
        profile_of = lambda c, a, b: BrokenGradient(**dict(BROKEN, central=c, inner=a, outer=b))
    elif case == "azimuthal polar":  # free amplitudes and phases
        inputs, values = [c, a, b, d], [0.12, 2.0, 0.07, -0.8]
        profile_of = lambda c, a, b, d: Azimuthal(
            8.0, **dict(HARMONICS, m1=c, phase1=a, m2=b, phase2=d)
        )
    elif case == "azimuthal cartesian":
        inputs, values = [c, a, b], [0.1, -0.05, 0.04]
        profile_of = lambda c, a, b: Azimuthal.from_components(
            pmt.LinearGradient(central=c, gradient=-0.2), cos1=a, sin1=b, scale_radius=0.5
        )
    elif case == "gp":  # free coefficients, amplitude and length scale
        beta = pt.dvector("beta")
        inputs, values = [beta, a, b], [gp_coefficients(), 0.15, 0.3]
        profile_of = lambda beta, a, b: GPResidual(beta, **dict(GP, amplitude=a, length_scale=b))
    elif case == "composition":
        beta = pt.dvector("beta")
        inputs, values = [c, a, b, beta], [8.2, -0.3, 0.1, gp_coefficients()]
        profile_of = lambda c, a, b, beta: (
            pmt.LinearGradient(central=c, gradient=a)
            + Azimuthal(None, **dict(HARMONICS, m1=b))
            + GPResidual(beta, **GP)
        )
    result = _both_paths(profile_of, inputs, values, tracer_scale, convolve_at)
    (path, fast), (full_path, full) = result["auto"], result["full"]
    assert path == "linear" and full_path == convolve_at
    for got, want in zip(fast, full):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_free_geometry_or_break_takes_the_full_path():
    r_break, x0 = pt.dscalar("r_break"), pt.dscalar("x0")
    # a free break radius is still radial: the radial transfer takes it
    assert observe_map(BrokenGradient(**dict(BROKEN, r_break=r_break))).path == "radial"
    assert observe_map(Azimuthal(8.0, **dict(HARMONICS, x0=x0))).path == "subpixel"
    amplitude = pt.dscalar("amplitude")
    gp = GPResidual(gp_coefficients(), **dict(GP, amplitude=amplitude))
    assert observe_map(gp + 8.0, "log").path == "subpixel"
    assert observe_map(gp + 8.0, "linear").path == "linear"
    # more basis functions than MAX_LINEAR_TERMS: one graph node per term does not pay
    large = GPResidual(np.zeros(81), **dict(GP, amplitude=amplitude, n_basis=9))
    assert observe_map(large + 8.0, "linear").path == "subpixel"


# ---------------------------------------------------------------- batches
@pytest.mark.parametrize("case", ["broken", "azimuthal", "gp"])
def test_batched_profiles_equal_a_loop(case):
    n = 3
    rng = np.random.default_rng(11)
    if case == "broken":
        params = dict(BROKEN, inner=rng.normal(0, 0.2, n), r_break=rng.uniform(0.2, 0.5, n))
        make = lambda p: BrokenGradient(**p)
    elif case == "azimuthal":
        params = dict(HARMONICS, m1=rng.normal(0, 0.2, n), phase1=rng.uniform(0, 6, n))
        make = lambda p: Azimuthal(8.0, **p)
    else:
        params = dict(GP, amplitude=rng.uniform(0.1, 0.2, n), coefficients=gp_coefficients(n))
        make = lambda p: 8.0 + GPResidual(p.pop("coefficients"), **p)
    batch = run(observe_map(make(dict(params)), "log", method="full")[1])
    assert batch.shape == (n, *SHAPE)
    for i in range(n):
        single = {
            k: (v[i] if isinstance(v, np.ndarray) and v.ndim and k not in ("L",) else v)
            for k, v in params.items()
        }
        expected = run(observe_map(make(single), "log", method="full")[1])
        np.testing.assert_allclose(batch[i], expected, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- the PyMC builder
def test_gp_builder_creates_its_coefficients_once():
    """Pixel-scale numerics render on two point sets; both must see the same coefficients."""
    with pm.Model() as model:
        sigma = pm.HalfNormal("sigma", 0.1)
        ell = pm.HalfNormal("ell", 0.5)
        residual = gp_residual("gp", amplitude=sigma, length_scale=ell, grid=GRID, n_basis=N_BASIS)
        tracer = pmt.LinearGradient(central=8.0, gradient=-0.2) + residual
        observation = observe_map(tracer, "log", convolve_at="pixel", method="full")
        observe_map(tracer, "log")  # evaluated again: still no new variables
    assert [rv.name for rv in model.free_RVs] == ["sigma", "ell", "gp_coefficients"]
    assert model.named_vars_to_dims["gp_coefficients"] == ("gp_basis",)
    assert residual.L == pytest.approx((1.5 * 13 * PIXEL / 2, 1.5 * 11 * PIXEL / 2))
    beta = gp_coefficients()
    got = pmt.evaluate(observation[1], sigma=0.1, ell=0.3, gp_coefficients=beta)
    reference = run(
        observe_map(
            pmt.LinearGradient(central=8.0, gradient=-0.2)
            + GPResidual(beta, amplitude=0.1, length_scale=0.3, L=residual.L, n_basis=N_BASIS),
            "log",
            convolve_at="pixel",
            method="full",
        )[1]
    )
    np.testing.assert_allclose(got, reference, atol=1e-12)


def test_gp_builder_per_galaxy_fields():
    with pm.Model(coords={"galaxy": ["a", "b"]}) as model:
        residual = gp_residual(
            "gp", amplitude=0.1, length_scale=0.9, grid=GRID, n_basis=4, dims="galaxy"
        )
        observation = observe_map(residual + 8.0, "linear", method="full")
    assert model.named_vars_to_dims["gp_coefficients"] == ("galaxy", "gp_basis")
    beta = gp_coefficients(2, seed=4)[:, :16]
    got = pmt.evaluate(observation[1], gp_coefficients=beta)
    assert got.shape == (2, *SHAPE)
    for i in range(2):
        single = GPResidual(beta[i], amplitude=0.1, length_scale=0.9, L=residual.L, n_basis=4)
        np.testing.assert_allclose(
            got[i],
            run(observe_map(single + 8.0, "linear", method="full")[1]),
            atol=1e-12,
        )


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"coefficients must have shape \(20,\)"):
        GPResidual(np.zeros(19), **GP)
    with pytest.raises(ValueError, match="unknown kernel"):
        GPResidual(np.zeros(20), **dict(GP, kernel="rbf"))
    with pytest.raises(ValueError, match="n_basis must be a positive integer"):
        GPResidual(np.zeros(20), **dict(GP, n_basis=(4.5, 4)))
    with pytest.raises(ValueError, match="r_break must be > 0"):
        BrokenGradient(r_break=-1.0)
    with pytest.raises(TypeError, match="softening must be a fixed number"):
        BrokenGradient(softening=pt.dscalar("w"))
    with pytest.raises(ValueError, match="scale_radius must be a finite number > 0"):
        Azimuthal(None, scale_radius=0.0)
    with pm.Model():
        with pytest.raises(ValueError, match="does not cover the data field"):
            gp_residual("gp", amplitude=0.1, length_scale=0.3, grid=GRID, L=0.3)
        with pytest.raises(ValueError, match="dims must name a galaxy coordinate"):
            gp_residual("gp2", amplitude=0.1, length_scale=0.3, grid=GRID, dims="galaxy")
        with pytest.warns(UserWarning, match="shorter than"):
            gp_residual("gp3", amplitude=0.1, length_scale=0.02, grid=GRID, n_basis=4)


def test_log_averaged_structure_that_is_not_radial_takes_the_full_path():
    """10**(gradient + harmonics + GP): neither radial nor linear in its parameters."""
    c, g = pt.dscalar("c"), pt.dscalar("g")
    profile = (
        pmt.LinearGradient(central=c, gradient=g)
        + Azimuthal(None, **HARMONICS)
        + GPResidual(gp_coefficients(), **GP)
    )
    observation = observe_map(profile, "log")
    assert observation.path == "subpixel"
    assert "not radial" in observation.reason
