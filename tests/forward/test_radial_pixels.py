"""A likelihood's own radial basis: nodes over only the radii that reach its pixels through the
PSF (masked or S/N-cut maps), checked against brute force and the exact full path."""

import arviz as az
import numpy as np
import pymc as pm
import pytest
from scipy.ndimage import binary_dilation

import pymc_tracers as pmt
from pymc_tracers.forward import RadialAccuracyWarning
from pymc_tracers.forward.radial_nodes import ChebyshevLayout, layout_error
from pymc_tracers.forward.radial_trust import TRUST_WALL, TRUSTED_ERROR, trusted_span
from pymc_tracers.forward.reach import psf_reach
from pymc_tracers.grid import elliptical_radius_numpy
from pymc_tracers.numerics import make_numerics

TOLERANCE = 1e-7
GRID = pmt.PixelGrid((25, 25), pixel_scale=0.1, supersampling=2)
GEOMETRY = dict(x0=0.08, y0=-0.05, q=0.6, phi=0.4)


def _inner_mask(grid, radius, x0=0.0, y0=0.0):
    """Pixels within ``radius`` (arcsec) of a point: an S/N cut of a centred galaxy."""
    return np.hypot(grid.x - x0, grid.y - y0) < radius


def _brute_force_reach(numerics, kernel, used, geometry):
    """Largest elliptical radius of a rendered sample whose light reaches a used pixel: the
    used pixels' sub-pixels dilated by the kernel's non-zero samples, on the render grid."""
    s, pad = numerics.grid.supersampling, numerics.pad
    sub = np.kron(used, np.ones((s, s), dtype=bool))
    render = np.zeros(numerics.point_sets[0][0].shape, dtype=bool)
    render[pad : pad + sub.shape[0], pad : pad + sub.shape[1]] = sub
    footprint = binary_dilation(render, structure=kernel != 0)
    x, y = numerics.point_sets[0]
    return elliptical_radius_numpy(x[footprint], y[footprint], *geometry).max()


@pytest.mark.parametrize("psf", [pmt.GaussianPSF(0.25), pmt.MoffatPSF(0.3, 2.5)])
def test_psf_reach_bounds_the_samples_whose_light_reaches_the_pixels(psf):
    numerics = make_numerics(GRID, psf)
    geometry = tuple(GEOMETRY.values())
    used = _inner_mask(GRID, 0.45, 0.1, 0.05)
    reach = psf_reach(numerics, geometry, np.flatnonzero(used), GRID.shape)
    exact = _brute_force_reach(numerics, numerics.kernel, used, geometry)
    # an upper bound, loose by at most the margin (a pixel's outer sub-pixel half-widths and
    # one sub-pixel, stretched by 1/q along the minor axis)
    margin = (GRID.subpixel_scale / 2 + GRID.subpixel_scale) * np.sqrt(2) / GEOMETRY["q"]
    assert exact <= reach <= exact + margin


def test_psf_reach_is_per_galaxy_with_per_galaxy_psfs():
    psfs = [pmt.GaussianPSF(0.2), pmt.MoffatPSF(0.35, 3.0)]
    numerics = make_numerics(GRID, psfs)
    geometry = tuple(GEOMETRY.values())
    used = np.stack([_inner_mask(GRID, 0.3), _inner_mask(GRID, 0.6)])
    reach = psf_reach(numerics, geometry, np.flatnonzero(used), used.shape)
    assert reach.shape == (2,)
    margin = (GRID.subpixel_scale / 2 + GRID.subpixel_scale) * np.sqrt(2) / GEOMETRY["q"]
    for g in range(2):
        exact = _brute_force_reach(numerics, numerics.kernel[g], used[g], geometry)
        assert exact <= reach[g] <= exact + margin


def _model(psfs, used, *, full=False, **options):
    """Three galaxies with Normal priors on their log-averaged gradients, S/N-cut maps."""
    n = len(psfs)
    with pm.Model(coords={"galaxy": range(n)}) as model:
        gradient = pm.Normal("gradient", -0.3, 0.4, dims="galaxy")
        central = pm.Normal("central", 8.5, 0.1, dims="galaxy")
        component = pmt.Component(
            pmt.Exponential(r_eff=np.array([0.25, 0.3, 0.2]), **GEOMETRY),
            pmt.LinearGradient(central=central, gradient=gradient, **GEOMETRY),
        )
        method = "full" if full else "auto"
        observation = pmt.observe(component, GRID, psfs, "log", method=method, **options)
        data = np.full((n, *GRID.shape), 8.3)
        pmt.tracer_likelihood("z", observation, data, sigma=0.05, mask=used)
    return model, observation


PSFS = [pmt.GaussianPSF(0.2), pmt.MoffatPSF(0.3, 3.0), pmt.GaussianPSF(0.3)]
USED = np.stack([_inner_mask(GRID, r) for r in (0.4, 0.5, 0.35)])


def _likelihood_terms(model):
    """Each used pixel's log-likelihood term, as a function of a point (the map's error
    times residual / sigma^2 shows in it)."""
    return model.compile_fn(model.logp(vars=[model["z"]], sum=False)[0])


def test_a_masked_likelihood_gets_fewer_nodes_and_matches_the_full_path():
    model, observation = _model(PSFS, USED)
    renderer = observation.renderer
    assert observation.path == "radial"
    (pixel_counts,) = renderer.pixel_node_counts.values()
    assert pixel_counts[0] < renderer.node_counts[0]
    assert "for the likelihood" in renderer.describe()
    full, _ = _model(PSFS, USED, full=True)
    terms, exact = _likelihood_terms(model), _likelihood_terms(full)
    draws = pm.draw([model["gradient"], model["central"]], draws=6, random_seed=3)
    for gradient, central in zip(*draws):
        point = {"gradient": gradient, "central": central}
        # |d term| = |residual| / sigma^2 x |d map| with residuals below ~1.5 dex here
        np.testing.assert_allclose(terms(point), exact(point), rtol=0, atol=1.5 / 0.05**2 * 1e-6)
    # the typical draw is within the tolerance itself
    point = {"gradient": np.full(3, -0.3), "central": np.full(3, 8.5)}
    np.testing.assert_allclose(terms(point), exact(point), rtol=0, atol=1.5 / 0.05**2 * TOLERANCE)


def _posterior(model, n=4, seed=5):
    draws = pm.draw([model["gradient"], model["central"]], draws=n, random_seed=seed)
    return az.from_dict(posterior={"gradient": draws[0][None], "central": draws[1][None]}).posterior


def test_the_posterior_check_covers_a_likelihoods_own_basis():
    """An error in a likelihood's own basis is reported after sampling, not hidden behind the
    full map's (which the likelihood does not read)."""
    model, observation = _model(PSFS, USED)
    renderer, posterior = observation.renderer, _posterior(model)
    assert renderer.check_posterior(posterior) < 1e-5  # the prior's tails need more nodes
    blocks = [name for name in renderer._data if name.startswith(f"{renderer._prefix}_pixels0_")]
    blocks = [name for name in blocks if "nodes" not in name]
    model[blocks[0]].set_value(model[blocks[0]].get_value() * 1.01)  # 0.0043 dex off
    with pytest.warns(RadialAccuracyWarning, match="a posterior draw"):
        worst = renderer.check_posterior(posterior)
    np.testing.assert_allclose(worst, np.log10(1.01), rtol=1e-3)


def test_trusted_span_is_where_the_interpolation_error_reaches_its_limit():
    for count, breaks in [(14, ()), (28, ()), (24, (0.4,))]:
        span = trusted_span(count, breaks)
        layout = ChebyshevLayout(count, breaks)

        def error(s):
            return layout_error(layout, s * layout.probes(), s * layout.fractions, "log")

        assert error(span) <= TRUSTED_ERROR < error(1.02 * span)


@pytest.mark.parametrize("own_nodes", [True, False])
def test_a_wall_keeps_draws_within_the_trusted_span(own_nodes):
    """Far in a gradient's prior tail the interpolated likelihood is wrong by whole dex (a
    spurious mode, seen in a 30-galaxy population); the model's wall pushes draws back from
    there, and leaves the likelihood alone where the nodes are trusted. On the likelihood's
    own nodes, and on the renderer's (a stated dynamic range)."""
    options = {} if own_nodes else {"dynamic_range": 2.0}
    model, observation = _model(PSFS, USED, **options)
    renderer = observation.renderer
    assert bool(renderer.pixel_node_counts) == own_nodes
    prefix = renderer._prefix
    nodes = model[f"{prefix}_pixels0_nodes0" if own_nodes else f"{prefix}_nodes0"].get_value()
    count = (renderer.pixel_node_counts[0] if own_nodes else renderer.node_counts)[0]
    limit = trusted_span(count)
    reach = np.broadcast_to(nodes[..., -1], (3,))  # arcsec: a gradient g spans |g| x reach dex
    wall = model.compile_fn(
        model.replace_rvs_by_values([model[f"{prefix}_pixels0_trusted"]])[0],
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    exact_terms = _likelihood_terms(_model(PSFS, USED, full=True)[0])
    terms = _likelihood_terms(model)
    central = np.full(3, 8.5)
    for sign in (1.0, -1.0):
        inside = {"gradient": sign * (limit - 0.2) / reach, "central": central}
        assert -3 * 1e-3 < wall(inside) <= 0.0  # below 1e-3 nats per galaxy
        # the likelihood there is the exact one to ~TRUSTED_ERROR (|residual| / sigma^2 x error)
        np.testing.assert_allclose(
            terms(inside), exact_terms(inside), rtol=0, atol=30 / 0.05**2 * TRUSTED_ERROR
        )
        # one dex beyond in every galaxy: TRUST_WALL nats per dex each
        beyond = {"gradient": sign * (limit + 1.0) / reach, "central": central}
        np.testing.assert_allclose(wall(beyond), -3 * TRUST_WALL, rtol=1e-3)
    # what the wall guards against: twice as steep, the interpolant is off by > 0.1 dex
    far = {"gradient": 2.0 * limit / reach, "central": central}
    exact_model, exact = _model(PSFS, USED, full=True)
    maps, full = (
        m.compile_fn(m.replace_rvs_by_values([o.tracer_map])[0], inputs=m.value_vars)
        for m, o in ((model, observation), (exact_model, exact))
    )
    assert np.max(np.abs(maps(far) - full(far))[USED]) > 0.1


def test_the_walls_jax_gradient_is_finite_far_from_it():
    """nutpie differentiates the JAX logp with jax.grad, which turns an overflow in an untaken
    branch of a softplus into NaN: the wall's gradient must be finite (and exact) however far a
    draw lies inside or beyond the trusted span (the demo's 64 nodes trust 23.6 dex, and a
    NaN gradient there sent every chain astray)."""
    jax = pytest.importorskip("jax")
    from pymc.sampling.jax import get_jaxified_graph

    jax.config.update("jax_enable_x64", True)
    model, observation = _model(PSFS, USED, dynamic_range=20.0)  # 81 nodes, 29 dex trusted
    renderer = observation.renderer
    prefix, count = renderer._prefix, renderer.node_counts[0]
    reach = np.broadcast_to(model[f"{prefix}_nodes0"].get_value()[..., -1], (3,))
    limit = trusted_span(count)
    (wall_graph,) = model.replace_rvs_by_values([model[f"{prefix}_pixels0_trusted"]])
    names = [v.name for v in model.value_vars]
    jax_wall = get_jaxified_graph(inputs=model.value_vars, outputs=[wall_graph])

    def wall(gradient, central):
        point = {"gradient": gradient, "central": central}
        return jax_wall(*(point[name] for name in names))[0]

    central = np.full(3, 8.5)
    # far inside (0 dex against 29 dex trusted), and 30 dex beyond on either side
    for dex, expected in [(0.0, 0.0), (limit + 30.0, -TRUST_WALL * reach)]:
        for sign in (1.0, -1.0):
            slope = jax.grad(wall)(sign * dex / reach, central)
            np.testing.assert_allclose(np.asarray(slope), sign * expected, rtol=1e-6, atol=1e-9)


def test_psf_swap_moves_the_likelihoods_nodes_with_the_new_reach():
    wide = [pmt.GaussianPSF(0.35), pmt.MoffatPSF(0.4, 3.0), pmt.GaussianPSF(0.45)]
    model, observation = _model(PSFS, USED)
    names = [n for n in observation.renderer._data if "pixels0_nodes" in n]
    before = {n: model[n].get_value().copy() for n in names}
    updates = observation.renderer.psf_updates(wide)
    assert set(names) <= set(updates)
    for name, value in updates.items():
        model[name].set_value(value)
    assert all(np.all(model[n].get_value()[:, -1] > before[n][:, -1]) for n in names)
    exact, _ = _model(wide, USED, full=True)
    terms, reference = _likelihood_terms(model), _likelihood_terms(exact)
    point = {"gradient": np.array([-0.3, -0.2, -0.4]), "central": np.full(3, 8.5)}
    np.testing.assert_allclose(
        terms(point), reference(point), rtol=0, atol=1.5 / 0.05**2 * TOLERANCE
    )


def test_psf_swap_of_a_likelihoods_basis_with_a_fixed_component():
    """A fixed tracer's column is recomputed on the new PSF's render grid too."""
    psf, wide = pmt.GaussianPSF(0.2), pmt.MoffatPSF(0.45, 3.0)
    used = _inner_mask(GRID, 0.45)

    def build(psf, method="auto"):
        with pm.Model() as model:
            gradient = pm.Normal("gradient", -0.3, 0.4)
            disc = pmt.Component(
                pmt.Exponential(r_eff=0.3, **GEOMETRY),
                pmt.LinearGradient(central=8.5, gradient=gradient, **GEOMETRY),
            )
            clump = pmt.Component(
                pmt.Exponential(r_eff=0.1, amplitude=2.0, x0=0.2), pmt.Constant(8.0)
            )
            observation = pmt.observe([disc, clump], GRID, psf, "log", method=method)
            pmt.tracer_likelihood("z", observation, np.full(GRID.shape, 8.3), sigma=0.05, mask=used)
        return model, observation

    model, observation = build(psf)
    assert observation.renderer.pixel_node_counts
    for name, value in observation.renderer.psf_updates(wide).items():
        model[name].set_value(value)
    exact, _ = build(wide, "full")
    point = {"gradient": np.array(-0.3)}
    np.testing.assert_allclose(
        _likelihood_terms(model)(point),
        _likelihood_terms(exact)(point),
        rtol=0,
        atol=1.5 / 0.05**2 * TOLERANCE,
    )


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_a_batch_built_in_chunks_of_galaxies_equals_one_built_whole(monkeypatch, scale):
    """Large batches are rendered a few galaxies (and columns) at a time; every held map, the
    likelihood's own basis included, must not depend on the chunking."""

    def build():
        with pm.Model(coords={"galaxy": range(3)}) as model:
            gradient = pm.Normal("gradient", -0.3, 0.4, dims="galaxy")
            disc = pmt.Component(
                pmt.Exponential(r_eff=np.array([0.25, 0.3, 0.2]), **GEOMETRY),
                pmt.LinearGradient(central=8.5, gradient=gradient, **GEOMETRY),
            )
            clump = pmt.Component(
                pmt.Exponential(r_eff=0.1, amplitude=np.array([2.0, 1.0, 0.5]), x0=0.2),
                pmt.Constant(8.0),
            )
            observation = pmt.observe([disc, clump], GRID, PSFS, scale)
            data = np.full((3, *GRID.shape), 8.3)
            pmt.tracer_likelihood("z", observation, data, sigma=0.05, mask=USED)
        held = {v.name: v.get_value() for v in model.data_vars if v.name.startswith("pmt_")}
        return observation, held

    whole_observation, whole = build()
    monkeypatch.setattr(pmt.forward.transfer, "BUILD_CHUNK_BYTES", 1)  # one galaxy, one column
    chunked_observation, chunked = build()
    assert whole_observation.path == chunked_observation.path
    assert {n for n in whole if "pixels0" in n}, "the likelihood reads a compact basis"
    assert whole.keys() == chunked.keys()
    for name, value in whole.items():
        np.testing.assert_allclose(chunked[name], value, rtol=1e-12, atol=1e-300, err_msg=name)
    if scale == "log":  # the check against the exact path convolves in chunks too
        errors = [o.renderer.max_error for o in (whole_observation, chunked_observation)]
        assert errors[0] > 0
        np.testing.assert_allclose(errors[1], errors[0], rtol=1e-3)
