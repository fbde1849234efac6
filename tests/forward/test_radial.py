"""The radial transfer path: agreement with the exact full path, gradients, node counts, and
honest reports of its error."""

import warnings

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pytensor.gradient import verify_grad

import pymc_tracers as pmt
from pymc_tracers.forward.radial_nodes import (
    NODE_COUNTS,
    ChebyshevLayout,
    NodeLayout,
    exponential_node_count,
)
from pymc_tracers.profiles.radial import natural_cubic_spline, natural_cubic_spline_numpy

TOLERANCE = 1e-7


def _maps(tracer_of, light, grid, psf, scale, values, **options):
    """Radial and full maps of ``Component(light, tracer_of(*inputs))`` at ``values``."""
    inputs = [pt.dscalar(f"p{i}") for i in range(len(values))]
    component = pmt.Component(light, tracer_of(*inputs))
    radial = pmt.observe(component, grid, psf, scale, method="radial", **options)
    convolve_at = options.get("convolve_at", "subpixel")
    full = pmt.observe(component, grid, psf, scale, method="full", convolve_at=convolve_at)
    f = pytensor.function(inputs, [radial.tracer_map, full.tracer_map], on_unused_input="ignore")
    return radial, *f(*values)


PROFILES = {
    # name: (tracer from inputs, parameter values, numpy Z(r) for the dynamic range)
    "steep negative": (
        lambda c, g: pmt.LinearGradient(central=c, gradient=g, q=0.6, phi=0.4),
        (8.6, -1.2),
    ),
    "positive": (lambda c, g: pmt.LinearGradient(central=c, gradient=g, x0=0.1), (8.1, 0.7)),
    "broken": (
        lambda c, g: pmt.BrokenGradient(central=c, inner=g, outer=-0.1, r_break=0.4, softening=0.1),
        (8.5, -0.6),
    ),
    "flattening": (
        lambda c, g: pmt.RadialProfile(
            lambda r: c + g * pt.log1p(r / 0.3), q=0.8, phi=1.0, feature_scale=0.3
        ),
        (8.7, -0.4),
    ),
}


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: each example builds two models
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(sorted(PROFILES)),
    scale=st.sampled_from(["log", "linear"]),
    supersampling=st.integers(1, 3),
    fwhm=st.floats(0.15, 0.6),
    moffat=st.booleans(),
    convolve_at=st.sampled_from(["subpixel", "pixel"]),
)
def test_radial_path_matches_the_full_path(name, scale, supersampling, fwhm, moffat, convolve_at):
    grid = pmt.PixelGrid((13, 11), pixel_scale=0.1, supersampling=supersampling)
    psf = pmt.MoffatPSF(fwhm, 3.0) if moffat else pmt.GaussianPSF(fwhm)
    light = pmt.Sersic(r_eff=0.35, n=1.5, q=0.7, phi=0.3, x0=0.05)
    tracer_of, values = PROFILES[name]
    # a stated range that covers these profiles across the field (r <= 3 arcsec or so)
    radial, approx, exact = _maps(
        tracer_of, light, grid, psf, scale, values, dynamic_range=6.0, convolve_at=convolve_at
    )
    assert radial.path == "radial"
    light_sum = pmt.evaluate(radial.light_sum)
    bright = light_sum > 1e-8 * light_sum.max()  # fainter pixels: FFT round-off on every path
    error = np.abs(approx - exact)[bright].max()  # dex, or tracer units
    assert error <= TOLERANCE, (name, scale, radial.renderer.node_counts, error)


def test_polynomial_profiles_are_exact_with_few_nodes():
    grid = pmt.PixelGrid((11, 11), pixel_scale=0.1, supersampling=2)
    radial, approx, exact = _maps(
        lambda c, g: pmt.LinearGradient(central=c, gradient=g, q=0.5),
        pmt.Exponential(r_eff=0.3),
        grid,
        pmt.GaussianPSF(0.3),
        "linear",
        (8.0, -0.7),
    )
    assert radial.renderer.node_counts == [8]  # one stencil: exact for degree <= 7
    np.testing.assert_allclose(approx, exact, rtol=0, atol=1e-11)


def test_error_falls_with_nodes_and_beyond_the_stated_range_it_shows():
    """Inside the stated dynamic range the map meets the tolerance; a profile steeper than it
    misses it by a measurable amount, which the build-time check reports and warns about."""
    grid = pmt.PixelGrid((15, 15), pixel_scale=0.1, supersampling=2)
    light, psf = pmt.Exponential(r_eff=0.4), pmt.GaussianPSF(0.3)
    tracer_of = lambda c, g: pmt.LinearGradient(central=c, gradient=g)
    errors = {}
    for dynamic_range in (0.5, 4.0):
        radial, approx, exact = _maps(
            tracer_of, light, grid, psf, "log", (8.0, -1.0), dynamic_range=dynamic_range
        )
        errors[dynamic_range] = np.abs(approx - exact).max()
    assert errors[4.0] <= TOLERANCE < errors[0.5]
    with pm.Model():
        gradient = pm.Normal("gradient", -1.0, 0.01)
        component = pmt.Component(light, tracer_of(8.0, gradient))
        with pytest.warns(pmt.forward.RadialAccuracyWarning, match="prior draw .* differs"):
            observation = pmt.observe(component, grid, psf, "log", dynamic_range=0.5)
    assert observation.max_error > TOLERANCE
    assert observation.max_error == pytest.approx(errors[0.5], rel=0.5)


def test_node_count_comes_from_the_prior_and_the_posterior_is_checked():
    grid = pmt.PixelGrid((15, 15), pixel_scale=0.1, supersampling=2)
    light, psf = pmt.Exponential(r_eff=0.4), pmt.GaussianPSF(0.3)
    counts = []
    for width in (0.05, 1.0):
        with pm.Model():
            gradient = pm.Normal("gradient", 0.0, width)
            component = pmt.Component(light, pmt.LinearGradient(central=8.0, gradient=gradient))
            with warnings.catch_warnings():
                warnings.simplefilter("error", pmt.forward.RadialAccuracyWarning)
                observation = pmt.observe(component, grid, psf, "log")
        assert observation.path == "radial"
        assert 0.5 <= observation.renderer.covered <= 1.0
        if width == 0.05:  # every prior draw is typical: all are within the tolerance
            assert observation.max_error <= TOLERANCE
        counts.append(observation.renderer.node_counts[0])
    assert counts[0] < counts[1]  # a wider prior needs more nodes
    # a posterior far outside the prior's typical set is caught after sampling
    steep = xr.Dataset({"gradient": (("chain", "draw"), np.full((1, 4), -6.0))})
    with pytest.warns(pmt.forward.RadialAccuracyWarning, match="posterior draw"):
        error = observation.renderer.check_posterior(steep)
    assert error > TOLERANCE
    calm = xr.Dataset({"gradient": (("chain", "draw"), np.full((1, 4), -0.5))})
    assert observation.renderer.check_posterior(calm) <= TOLERANCE


def test_exponential_node_count_meets_the_tolerance_and_is_not_wasteful():
    fractions = np.linspace(0, 1, 20001)  # denser than the rule's own probes
    for dynamic_range in (0.5, 3.0, 8.0):
        count = exponential_node_count(dynamic_range, TOLERANCE)
        layout = ChebyshevLayout(count)
        approx = layout.interpolate(10.0 ** (dynamic_range * layout.fractions), fractions)
        assert np.max(np.abs(np.log10(approx) - dynamic_range * fractions)) <= TOLERANCE
        if count == NODE_COUNTS[0]:
            continue
        coarse = ChebyshevLayout(NODE_COUNTS[NODE_COUNTS.index(count) - 1])
        approx = coarse.interpolate(10.0 ** (dynamic_range * coarse.fractions), fractions)
        assert np.max(np.abs(np.log10(approx) - dynamic_range * fractions)) > TOLERANCE
    # Chebyshev nodes need ~3 D + 5 (in segments beyond ~9 dex); degree-7 local
    # interpolation on equally spaced nodes needs ~10 D + 2, a local cubic ~48 D
    assert exponential_node_count(8.0, TOLERANCE) <= 32
    assert exponential_node_count(3.0, TOLERANCE) <= 16


@pytest.mark.parametrize("layout", [ChebyshevLayout, NodeLayout])
def test_segments_keep_stencils_off_a_profiles_kinks(layout):
    """A spline is smooth between its knots only: segments at the knots make the interpolant
    exact for piecewise cubics (linear averaging), where one segment is not."""
    knots = np.array([0.0, 0.15, 0.4, 1.0])
    values = np.array([8.7, 8.5, 8.45, 8.1])
    u = np.linspace(0, 1, 5001)
    spline = lambda x: natural_cubic_spline_numpy(x, knots, values)
    segmented = layout(32, knots[1:-1])
    uniform = layout(32)
    assert segmented.counts[0] >= 8 and segmented.total >= 32
    exact = spline(u)
    np.testing.assert_allclose(
        segmented.interpolate(spline(segmented.fractions), u), exact, atol=1e-12
    )
    assert np.max(np.abs(uniform.interpolate(spline(uniform.fractions), u) - exact)) > 1e-6


def test_chebyshev_fields_are_its_interpolation_weights():
    """The weight fields the basis is built from, in any chunk of columns, are the
    interpolant's weights: they sum to one, reproduce node values on the nodes, and agree
    with barycentric interpolation elsewhere (against numpy's Chebyshev fit)."""
    layout = ChebyshevLayout(12, breaks=[0.3])
    u = np.random.default_rng(2).uniform(0, 1, size=(3, 7, 5))
    full = layout.fields(u, 0, layout.total)
    assert full.shape == (layout.total, 3, 7, 5)
    np.testing.assert_allclose(full.sum(axis=0), 1.0, atol=1e-12)
    parts = [layout.fields(u, a, min(a + 5, layout.total)) for a in range(0, layout.total, 5)]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    on_nodes = layout.fields(layout.fractions, 0, layout.total)
    shared = np.isclose(layout.fractions, 0.3)  # the breakpoint is a node of both segments
    np.testing.assert_allclose(on_nodes[:, ~shared], np.eye(layout.total)[:, ~shared])
    # within the outer segment the interpolant of a smooth function is the polynomial
    # through its nodes: compare with a degree-(n-1) Chebyshev fit on those nodes
    outer = slice(layout.offsets[1], layout.total)
    nodes = layout.fractions[outer]
    f = lambda x: np.exp(np.sin(3 * x))
    fit = np.polynomial.Chebyshev.fit(nodes, f(nodes), deg=nodes.size - 1, domain=[0.3, 1.0])
    x = np.linspace(0.31, 0.99, 50)
    np.testing.assert_allclose(layout.interpolate(f(layout.fractions), x), fit(x), rtol=1e-10)


def test_gradients_of_the_radial_map():
    grid = pmt.PixelGrid((9, 9), pixel_scale=0.1, supersampling=2)
    light, psf = pmt.Exponential(r_eff=0.3), pmt.GaussianPSF(0.25)
    weights = np.random.default_rng(1).normal(size=grid.shape)

    def radial_sum(central, gradient):
        tracer = pmt.LinearGradient(central=central, gradient=gradient, q=0.7)
        obs = pmt.observe(
            pmt.Component(light, tracer), grid, psf, "log", method="radial", dynamic_range=2.0
        )
        return pt.sum(weights * obs.tracer_map)

    verify_grad(radial_sum, [np.array(8.3), np.array(-0.4)], rng=np.random.default_rng(2))

    knots = [0.0, 0.2, 0.5, 1.0]

    def spline_sum(values):
        tracer = pmt.RadialProfile.spline(radii=knots, values=values)
        obs = pmt.observe(
            pmt.Component(light, tracer), grid, psf, "log", method="radial", dynamic_range=2.0
        )
        return pt.sum(weights * obs.tracer_map)

    verify_grad(spline_sum, [np.array([8.6, 8.5, 8.3, 8.2])], rng=np.random.default_rng(3))


def test_spline_matches_scipy_and_takes_a_galaxy_axis():
    knots = np.array([0.0, 0.3, 0.7, 1.5, 2.5])
    values = np.array([[8.7, 8.6, 8.4, 8.3, 8.25], [8.2, 8.3, 8.35, 8.3, 8.1]])
    r = np.linspace(0, 3.5, 200)  # beyond the last knot: straight continuation
    got = natural_cubic_spline(pt.as_tensor_variable(r[None, None, :]), knots, values).eval()
    for i in range(2):
        np.testing.assert_allclose(
            got[i, 0], natural_cubic_spline_numpy(r, knots, values[i]), rtol=0, atol=1e-12
        )
    with pytest.raises(ValueError, match="increase"):
        pmt.RadialProfile.spline(radii=[0, 1, 1], values=np.ones(3))
    with pytest.raises(ValueError, match="3 knot radii"):
        pmt.RadialProfile.spline(radii=[0, 1, 2], values=np.ones(4))
    with pytest.raises(TypeError, match="one argument"):
        pmt.RadialProfile(lambda x, y: x)


def test_free_spline_knots_in_a_batch_match_the_full_path():
    grid = pmt.PixelGrid((11, 11), pixel_scale=0.1, supersampling=2)
    x = np.array([[8.7, 8.5, 8.4, 8.3], [8.2, 8.4, 8.3, 8.0]])
    light = pmt.Exponential(r_eff=np.array([0.3, 0.5]))
    psfs = [pmt.GaussianPSF(0.2), pmt.GaussianPSF(0.4)]
    with pm.Model():
        values = pm.Normal("values", x, 0.05, shape=x.shape)  # knot values: free parameters
        tracer = pmt.RadialProfile.spline(radii=[0.0, 0.3, 0.8, 1.5], values=values, q=0.8)
        radial = pmt.observe(pmt.Component(light, tracer), grid, psfs, "log")
        full = pmt.observe(pmt.Component(light, tracer), grid, psfs, "log", method="full")
    assert radial.path == "radial"
    assert radial.renderer.node_counts[0] < 100  # segments between the knots
    a, b = pmt.evaluate([radial.tracer_map, full.tracer_map], {"values": x})
    np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)
