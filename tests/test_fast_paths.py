"""The fast paths a likelihood takes: used pixels only, the light-weighted series bound, and a
lazy choice of the full path outside the series' range."""

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

import pymc_tracers as pmt
from pymc_tracers import forward
from pymc_tracers.lazy_choice import lazy_choice
from pymc_tracers.profiles import tracer as tracer_module

GRID = pmt.PixelGrid((15, 17), pixel_scale=0.1, supersampling=2)
R_EFF = np.array([0.3, 0.45, 0.25])
PSFS = [pmt.GaussianPSF(0.2), pmt.MoffatPSF(0.35, 3.0), pmt.GaussianPSF(0.4)]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    truth = pmt.Component(
        pmt.Exponential(r_eff=R_EFF, q=0.8, phi=0.3),
        pmt.LinearGradient(central=np.array([8.6, 8.4, 8.5]), gradient=np.array([-0.3, 0.1, -0.6])),
    )
    _, z = pmt.evaluate(pmt.observe(truth, GRID, PSFS, "log", method="full"))
    data = z + 0.05 * rng.normal(size=z.shape)
    data[0, :4] = np.nan  # different pixels used in each galaxy
    data[2, :, 12:] = np.nan
    data[1, 7, 8] = np.nan
    return data


def _model(tracer_scale, method, data, gradient_range=(-1.0, 0.5), batched=True):
    n = 3 if batched else 1
    with pm.Model(coords={"galaxy": range(n)}) as model:
        central = pm.Normal("central", 8.5, 0.2, dims="galaxy")
        gradient = pm.Normal("gradient", -0.2, 0.2, dims="galaxy")
        light = pmt.Exponential(r_eff=R_EFF if batched else R_EFF[0], q=0.8, phi=0.3)
        tracer = pmt.LinearGradient(
            central=central if batched else central[0],
            gradient=gradient if batched else gradient[0],
            gradient_range=gradient_range,
        )
        psfs = PSFS if batched else PSFS[0]
        obs = pmt.observe(pmt.Component(light, tracer), GRID, psfs, tracer_scale, method=method)
        pmt.tracer_likelihood("z", obs[1], data if batched else data[0], sigma=0.05)
    return model, obs


def _logp_and_gradient(model, points):
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    return [(logp(p), dlogp(p)) for p in points]


@pytest.mark.parametrize(
    "tracer_scale, batched, groups",
    [("linear", True, 16), ("log", True, 16), ("log", True, 2), ("log", False, 16)],
)
def test_likelihood_at_used_pixels_equals_the_full_map(tracer_scale, batched, groups, monkeypatch):
    # groups=2: galaxies of different pixel counts share a padded layout
    monkeypatch.setattr(forward, "PIXEL_GROUPS", groups)
    data = _data()
    fast, obs = _model(tracer_scale, "auto", data, batched=batched)
    full, _ = _model(tracer_scale, "full", data, batched=batched)
    assert obs.path == ("linear" if tracer_scale == "linear" else "series")
    assert getattr(obs[1].tag, "pmt_pixels", None) is not None
    n = 3 if batched else 1
    points = [
        {"central": np.full(n, 8.5), "gradient": np.array([-0.3, 0.1, -0.6])[:n]},
        {"central": np.array([8.3, 8.7, 8.55])[:n], "gradient": np.array([-0.9, 0.4, 0.0])[:n]},
    ]
    for (lp_fast, g_fast), (lp_full, g_full) in zip(
        _logp_and_gradient(fast, points), _logp_and_gradient(full, points)
    ):
        # log series: 1e-7 dex per pixel at sigma 0.05 -> |d logp| <~ pixels x 1e-7 x 20 x resid
        assert lp_fast == pytest.approx(lp_full, rel=1e-9 if tracer_scale == "linear" else 1e-6)
        np.testing.assert_allclose(g_fast, g_full, rtol=1e-6, atol=1e-6)
    # the record still gives the full model map (for plots and Result.maps)
    (record,) = pmt.likelihood.likelihoods_of(fast)
    assert record.model_map is obs[1]


def test_outside_the_series_range_the_likelihood_takes_the_full_path():
    data = _data()
    fast, _ = _model("log", "auto", data, gradient_range=(-0.5, 0.0))
    full, _ = _model("log", "full", data)
    outside = {"central": np.full(3, 8.5), "gradient": np.array([-0.3, 0.3, -0.6])}
    (lp_fast, g_fast), (lp_full, g_full) = (
        _logp_and_gradient(fast, [outside])[0],
        _logp_and_gradient(full, [outside])[0],
    )
    assert lp_fast == pytest.approx(lp_full, rel=1e-12)
    np.testing.assert_allclose(g_fast, g_full, rtol=1e-10)


def test_series_bound_is_light_weighted_and_holds():
    """A range too wide for a pointwise bound at the field's corners: the light-weighted bound
    takes the series, and the series meets it on every pixel above the light floor."""
    grid = pmt.PixelGrid((41, 41), pixel_scale=0.1, supersampling=2)
    light = pmt.Exponential(r_eff=0.3)
    gradient = pt.dscalar("gradient")
    component = pmt.Component(
        light, pmt.LinearGradient(central=8.5, gradient=gradient, gradient_range=(-1.3, 0.8))
    )
    psf = pmt.GaussianPSF(0.45)
    numerics = forward.make_numerics(grid, psf)
    radius = max(float(np.hypot(x, y).max()) for x, y in numerics.point_sets)
    rho = 1.05 * np.log(10) * radius
    assert tracer_module.log_series_error(rho, tracer_module.MAX_LINEAR_TERMS) > 1e-7
    series = pmt.observe(component, grid, psf, "log")
    full = pmt.observe(component, grid, psf, "log", method="full")
    assert series.path == "series" and 0 < series.max_error <= tracer_module.LOG_SERIES_TOLERANCE
    f = pytensor.function([gradient], [series[1], full[1], full.light_sum])
    for g in (-1.3, -0.7, 0.0, 0.8):
        s, r, light_sum = f(g)
        bright = light_sum >= forward.SERIES_LIGHT_FLOOR * light_sum.max()
        assert np.max(np.abs(s - r)[bright]) <= series.max_error


def test_series_bound_is_not_vacuous(monkeypatch):
    """With a loose tolerance the series is short enough for its truncation to show: the true
    error stays below the bound and within a factor 1000 of it."""
    monkeypatch.setattr(tracer_module, "LOG_SERIES_TOLERANCE", 1e-3)
    grid = pmt.PixelGrid((21, 21), pixel_scale=0.1, supersampling=2)
    gradient = pt.dscalar("gradient")
    component = pmt.Component(
        pmt.Exponential(r_eff=0.4),
        pmt.LinearGradient(central=8.5, gradient=gradient, gradient_range=(-1.0, 0.6)),
    )
    series = pmt.observe(component, grid, pmt.GaussianPSF(0.3), "log")
    full = pmt.observe(component, grid, pmt.GaussianPSF(0.3), "log", method="full")
    f = pytensor.function([gradient], [series[1], full[1]])
    worst = max(np.max(np.abs(np.subtract(*f(g)))) for g in np.linspace(-1.0, 0.6, 33))
    assert worst <= series.max_error <= 1e-3
    assert worst >= 1e-3 * series.max_error


def test_pixels_below_the_series_light_floor_warn():
    grid = pmt.PixelGrid((41, 41), pixel_scale=0.1, supersampling=2)
    data = np.full(grid.shape, 8.5)  # every pixel used, even the faint corners
    with pm.Model():
        gradient = pm.Uniform("gradient", -1.3, 0.8)
        component = pmt.Component(
            pmt.Exponential(r_eff=0.15), pmt.LinearGradient(central=8.5, gradient=gradient)
        )
        _, z = pmt.observe(component, grid, pmt.GaussianPSF(0.2), "log")
        with pytest.warns(UserWarning, match="fainter than the log series' light floor"):
            pmt.tracer_likelihood("z", z, data, sigma=0.1)


class _Counting(Op):
    """``2 x`` that counts its evaluations (to see whether a branch ran)."""

    calls = 0

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        type(self).calls += 1
        outputs[0][0] = 2.0 * inputs[0]

    def L_op(self, inputs, outputs, output_grads):
        return [2.0 * output_grads[0]]


def test_lazy_choice_runs_and_differentiates_only_the_branch_taken():
    x = pt.dvector("x")
    cheap, expensive = 3.0 * x, _Counting()(x) + pt.sin(x)
    (chosen,) = lazy_choice(pt.all(x < 1.0), [cheap], [expensive], [x])
    cost = pt.sum(chosen**2)
    f = pytensor.function([x], [cost, pt.grad(cost, x)])
    _Counting.calls = 0
    value, grad = f(np.array([0.1, 0.5]))
    assert _Counting.calls == 0
    np.testing.assert_allclose(grad, 18.0 * np.array([0.1, 0.5]))
    value, grad = f(np.array([0.1, 2.0]))
    assert _Counting.calls >= 1
    v = np.array([0.1, 2.0])
    np.testing.assert_allclose(value, np.sum((2 * v + np.sin(v)) ** 2))
    np.testing.assert_allclose(grad, 2 * (2 * v + np.sin(v)) * (2 + np.cos(v)))


def test_lazy_choice_under_jax_matches_the_default_backend():
    pytest.importorskip("jax")
    x = pt.dvector("x")
    (chosen,) = lazy_choice(pt.all(x < 1.0), [3.0 * x], [pt.exp(x) * x], [x])
    cost = pt.sum(chosen**2)
    outputs = [cost, pt.grad(cost, x)]
    default = pytensor.function([x], outputs)
    jax_fn = pytensor.function([x], outputs, mode="JAX")
    for v in (np.array([0.1, 0.5]), np.array([0.1, 2.0])):
        for a, b in zip(default(v), jax_fn(v)):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_lazy_choice_takes_large_constants_as_inputs_without_gradients():
    """Large float constants become op inputs (kept out of XLA's branches) and get no gradient;
    values and gradients stay those of the branches, in both backends."""
    big = np.linspace(0.0, 1.0, 500)
    x = pt.dvector("x")
    (chosen,) = lazy_choice(pt.all(x < 1.0), [3.0 * x], [x * pt.sum(pt.constant(big))], [x])
    op = chosen.owner.op
    assert len(chosen.owner.inputs) == 2 and op._differentiable == [True, False]
    cost = pt.sum(chosen**2)
    modes = [None] + (["JAX"] if _has_jax() else [])
    for mode in modes:
        f = pytensor.function([x], [cost, pt.grad(cost, x)], mode=mode)
        v = np.array([0.2, 3.0])
        value, grad = f(v)
        np.testing.assert_allclose(value, np.sum((v * big.sum()) ** 2), rtol=1e-12)
        np.testing.assert_allclose(grad, 2 * v * big.sum() ** 2, rtol=1e-12)


def _has_jax():
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


WIDE_GRID = pmt.PixelGrid((25, 25), pixel_scale=0.1, supersampling=2)
WIDE_RANGE = (-3.0, 2.0)


def _wide_series(gradient, outside_range="full", extra=None):
    tracer = pmt.LinearGradient(
        central=np.array([8.5, 8.4, 8.7]),
        gradient=gradient,
        q=0.7,
        phi=0.4,
        gradient_range=WIDE_RANGE,
        outside_range=outside_range,
    )
    if extra is not None:
        tracer = tracer + extra
    component = pmt.Component(
        pmt.Exponential(r_eff=np.array([0.3, 0.5, 0.2]), q=0.7, phi=0.4), tracer
    )
    psfs = [pmt.GaussianPSF(0.25), pmt.MoffatPSF(0.4, 3.0), pmt.GaussianPSF(0.3)]
    return (
        pmt.observe(component, WIDE_GRID, psfs, "log"),
        pmt.observe(component, WIDE_GRID, psfs, "log", method="full"),
    )


@pytest.mark.parametrize("extra", [None, pmt.Constant(0.1)])
def test_piecewise_series_matches_the_full_path_in_every_piece(extra):
    """A range too wide for one series of LOG_SERIES_TERMS terms is split into pieces; each
    galaxy uses its own piece, and maps and gradients match the full path in every piece,
    on both sides of the pieces' edges."""
    gradient = pt.dvector("gradient")
    series, full = _wide_series(gradient, extra=extra)
    assert series.path == "series" and series.series_pieces > 1
    n_pieces = series.series_pieces
    edges = np.linspace(*WIDE_RANGE, n_pieces + 1)
    width = edges[1] - edges[0]
    cost_s, cost_f = (pt.sum(o[1][:, 8:17, 8:17] ** 2) for o in (series, full))
    f = pytensor.function(
        [gradient],
        [series[1], full[1], full.light_sum, pt.grad(cost_s, gradient), pt.grad(cost_f, gradient)],
    )
    trials = [
        np.array(
            [edges[1] - 1e-9, edges[1] + 1e-9, edges[-2] + 0.5 * width]
        ),  # both sides of an edge
        np.array([WIDE_RANGE[0], edges[2] + 0.3 * width, WIDE_RANGE[1]]),  # the range's ends
        np.array([-0.2, 0.1, -1.1]),
    ]
    for g in trials:
        s, r, light_sum, grad_s, grad_f = f(g)
        bright = light_sum >= forward.SERIES_LIGHT_FLOOR * light_sum.max(axis=(1, 2), keepdims=True)
        assert np.max(np.abs(s - r)[bright]) <= series.max_error
        np.testing.assert_allclose(grad_s, grad_f, rtol=1e-5)


def test_piecewise_series_is_continuous_across_piece_edges():
    gradient = pt.dvector("gradient")
    series, full = _wide_series(gradient)
    edge = np.linspace(*WIDE_RANGE, series.series_pieces + 1)[1]
    f = pytensor.function([gradient], [series[1], full.light_sum])
    (below, light_sum), (above, _) = f(np.full(3, edge - 1e-12)), f(np.full(3, edge + 1e-12))
    bright = light_sum >= forward.SERIES_LIGHT_FLOOR * light_sum.max(axis=(1, 2), keepdims=True)
    assert 0 < np.max(np.abs(below - above)[bright]) <= 2 * series.max_error


def test_likelihood_over_piecewise_series_equals_the_full_path():
    data = _data()
    logps = {}
    for method in ("auto", "full"):
        with pm.Model(coords={"galaxy": range(3)}) as model:
            gradient = pm.Normal("gradient", -0.2, 0.5, dims="galaxy")
            tracer = pmt.LinearGradient(
                central=np.array([8.6, 8.4, 8.5]), gradient=gradient, gradient_range=WIDE_RANGE
            )
            light = pmt.Exponential(r_eff=R_EFF, q=0.8, phi=0.3)
            obs = pmt.observe(pmt.Component(light, tracer), GRID, PSFS, "log", method=method)
            pmt.tracer_likelihood("z", obs[1], data, sigma=0.05)
        if method == "auto":
            assert obs.series_pieces > 1
        points = [
            {"gradient": g} for g in (np.array([-0.3, 0.1, -0.6]), np.array([-2.5, 1.7, 0.4]))
        ]
        logps[method] = _logp_and_gradient(model, points)
    for (lp_fast, g_fast), (lp_full, g_full) in zip(logps["auto"], logps["full"]):
        assert lp_fast == pytest.approx(lp_full, rel=1e-6)
        np.testing.assert_allclose(g_fast, g_full, rtol=1e-5, atol=1e-5)


def test_outside_range_reject_is_a_hard_bound():
    """With outside_range='reject' no full path is built: inside the range the map is the
    series, outside it inf, and a likelihood -inf with finite gradients."""
    gradient = pt.dvector("gradient")
    reject, full = _wide_series(gradient, outside_range="reject")
    guarded, _ = _wide_series(gradient)
    ops = {
        type(node.op).__name__
        for node in pytensor.graph.traversal.applys_between([gradient], [reject[1]])
    }
    assert "LazyChoice" not in ops
    f = pytensor.function([gradient], [reject[1], guarded[1]])
    inside = np.array([-0.4, 0.2, -1.0])
    a, b = f(inside)
    np.testing.assert_allclose(a, b, rtol=1e-13)
    outside = np.array([-0.4, 2.5, -1.0])
    assert np.all(np.isinf(f(outside)[0]))
    with pm.Model(coords={"galaxy": range(3)}) as model:
        g = pm.Normal("gradient", 0.0, 1.0, dims="galaxy")
        tracer = pmt.LinearGradient(
            central=np.array([8.6, 8.4, 8.5]),
            gradient=g,
            gradient_range=(-1.0, 0.5),
            outside_range="reject",
        )
        obs = pmt.observe(pmt.Component(pmt.Exponential(r_eff=R_EFF), tracer), GRID, PSFS, "log")
        pmt.tracer_likelihood("z", obs[1], _data(), sigma=0.05)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    assert np.isfinite(logp({"gradient": inside}))
    assert logp({"gradient": outside}) == -np.inf
    assert np.all(np.isfinite(dlogp({"gradient": outside})))
    with pytest.raises(ValueError, match="outside_range must be"):
        pmt.LinearGradient(gradient_range=(-1, 1), outside_range="clip")


@pytest.mark.parametrize("low, high", [(1, 32), (1, 12), (3, 9), (1, 1)])
def test_smallest_passing_search_matches_a_linear_scan(low, high):
    from pymc_tracers.profiles.tracer import _smallest_passing

    for answer in range(low - 1, high + 2):
        probed = []

        def passes(n, answer=answer):
            assert low <= n <= high, f"probed {n} outside [{low}, {high}]"
            probed.append(n)
            return n >= answer

        expected = next((n for n in range(low, high + 1) if n >= answer), None)
        assert _smallest_passing(low, high, passes) == expected
        if expected is not None:
            # a small answer is found without testing the (expensive) top of the range
            if expected <= high // 4:
                assert high not in probed
            assert _smallest_passing(low, high, passes, high_passes=True) == expected


def test_series_pieces_evaluate_each_bound_once():
    from pymc_tracers.profiles.tracer import _series_pieces

    calls = []

    def bound_of(middle, half, n):
        calls.append((middle, half, n))
        # a series on a piece of half-width h needs more terms the wider it is
        return 1e-3 * np.exp(-n / (4 * half))

    n_pieces, n_terms, bound = _series_pieces(-3.0, 1.0, bound_of)
    assert len(calls) == len(set(calls))
    assert bound <= 1e-7
    # fewest pieces: one fewer piece fails with 12 terms; one fewer term fails too
    half = 2.0 / n_pieces
    assert 1e-3 * np.exp(-12 / (4 * 2.0 / (n_pieces - 1))) > 1e-7
    assert 1e-3 * np.exp(-(n_terms - 1) / (4 * half)) > 1e-7


@pytest.mark.parametrize("n_groups", [1, 2, 16])
def test_pixel_groups_lay_out_each_galaxys_own_pixels(n_groups, monkeypatch):
    monkeypatch.setattr(forward, "PIXEL_GROUPS", n_groups)
    rng = np.random.default_rng(3)
    # used pixels of 5 galaxies in no particular order; galaxy 3 has none
    galaxy = rng.permutation(np.repeat([0, 1, 2, 4], [7, 2, 12, 5]))
    value = rng.normal(size=galaxy.size)
    groups, positions = forward._pixel_layout(galaxy, 5)
    assert len(groups) == min(n_groups, 5)
    assert sorted(np.concatenate([g.galaxies for g in groups]).tolist()) == list(range(5))
    layout = np.concatenate([value[g.block].ravel() for g in groups])
    # every galaxy's block holds its own pixels first (padding after them)
    for g in groups:
        for slot, member in enumerate(g.galaxies):
            own = np.sort(value[galaxy == member])
            assert np.array_equal(np.sort(value[g.block[slot, : own.size]]), own)
    # and each used pixel is found again at its position
    np.testing.assert_array_equal(layout[positions], value)


def test_render_size_limit_applies_to_the_full_path_only(monkeypatch):
    from pymc_tracers import numerics

    truth = pmt.Component(
        pmt.Exponential(r_eff=R_EFF, q=0.8, phi=0.3),
        pmt.LinearGradient(central=np.array([8.6, 8.4, 8.5]), gradient=np.array([-0.3, 0.1, -0.6])),
    )
    full = pmt.evaluate(pmt.observe(truth, GRID, PSFS, "linear", method="full"))
    monkeypatch.setattr(numerics, "MAX_RENDER_BYTES", 2**20)
    with pytest.raises(ValueError, match=r"GiB of working memory .* PYMC_TRACERS_MAX_RENDER_GB"):
        pmt.observe(truth, GRID, PSFS, "linear", method="full")
    # the linear path renders once, in numpy: built under the same limit, and still exact
    fast = pmt.observe(truth, GRID, PSFS, "linear")
    assert fast.path == "linear"
    np.testing.assert_allclose(pmt.evaluate(fast)[1], full[1], rtol=0, atol=1e-10)
