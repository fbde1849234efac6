"""Renderers: chosen in one place with a reason, refused by name when they do not apply,
pixel-restricted likelihoods equal to the full map's, and PSF swaps equal to a fresh model."""

import functools

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest

import pymc_tracers as pmt
from pymc_tracers.forward import PSFSwapError
from pymc_tracers.forward.transfer import BUILD_MODE

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


def _model(
    tracer_scale, method, data, *, batched=True, psfs=PSFS, through_observation=True, **options
):
    n = 3 if batched else 1
    with pm.Model(coords={"galaxy": range(n)}) as model:
        central = pm.Normal("central", 8.5, 0.2, dims="galaxy")
        gradient = pm.Normal("gradient", -0.2, 0.3, dims="galaxy")
        light = pmt.Exponential(r_eff=R_EFF if batched else R_EFF[0], q=0.8, phi=0.3)
        tracer = pmt.LinearGradient(
            central=central if batched else central[0],
            gradient=gradient if batched else gradient[0],
        )
        psf = psfs if batched else psfs[0]
        obs = pmt.observe(
            pmt.Component(light, tracer), GRID, psf, tracer_scale, method=method, **options
        )
        model_map = obs if through_observation else obs.tracer_map
        pmt.tracer_likelihood("z", model_map, data if batched else data[0], sigma=0.05)
    return model, obs


def _logp_and_gradient(model, points):
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    return [(logp(p), dlogp(p)) for p in points]


POINTS = [
    {"central": np.full(3, 8.5), "gradient": np.array([-0.3, 0.1, -0.6])},
    {"central": np.array([8.3, 8.7, 8.55]), "gradient": np.array([-0.5, 0.3, -0.1])},
]


@pytest.mark.parametrize("tracer_scale, batched", [("linear", True), ("log", True), ("log", False)])
def test_likelihood_at_used_pixels_equals_the_full_map(tracer_scale, batched):
    data = _data()
    # a stated range that covers the test points (by default the node count covers the
    # prior's typical draws, and the posterior is checked after sampling)
    options = {"dynamic_range": 4.0}
    fast, obs = _model(tracer_scale, "auto", data, batched=batched, **options)
    whole, _ = _model(
        tracer_scale, "auto", data, batched=batched, through_observation=False, **options
    )
    full, _ = _model(tracer_scale, "full", data, batched=batched, through_observation=False)
    assert obs.path == ("linear" if tracer_scale == "linear" else "radial")
    n = 3 if batched else 1
    points = [{k: v[:n] for k, v in p.items()} for p in POINTS]
    for (lp_fast, g_fast), (lp_whole, g_whole), (lp_full, g_full) in zip(
        _logp_and_gradient(fast, points),
        _logp_and_gradient(whole, points),
        _logp_and_gradient(full, points),
    ):
        # the used pixels of the same renderer: the same numbers to round-off
        assert lp_fast == pytest.approx(lp_whole, rel=1e-11)
        np.testing.assert_allclose(g_fast, g_whole, rtol=1e-9, atol=1e-9)
        # 1e-7 dex per pixel at sigma 0.05 moves logp by <~ pixels x 1e-7 x resid / sigma^2
        assert lp_fast == pytest.approx(lp_full, rel=1e-9 if tracer_scale == "linear" else 1e-6)
        np.testing.assert_allclose(g_fast, g_full, rtol=0, atol=1e-6 * np.abs(g_full).max())


def test_auto_selection_names_the_path_and_its_reason():
    light = pmt.Exponential(r_eff=0.3)
    c, g, w = pt.dscalar("c"), pt.dscalar("g"), pt.dscalar("w")
    cases = [
        (pmt.LinearGradient(central=c, gradient=g), "linear", {}, "linear"),
        (pmt.LinearGradient(central=c, gradient=g), "log", {}, "radial"),
        (pmt.LinearGradient(central=c, gradient=g, x0=c * 0.01), "log", {}, "subpixel"),
        (pmt.Azimuthal(m1=g, phase1=0.3), "log", {}, "subpixel"),
        (pmt.Azimuthal(m1=g, phase1=0.3), "linear", {}, "linear"),
        (pmt.LinearGradient(central=c, gradient=-0.2), "log", {}, "linear"),
        (pmt.Constant(c) + pmt.Azimuthal(m1=0.1, phase1=0.3), "log", {}, "linear"),
        (
            pmt.LinearGradient(central=c, gradient=g, x0=c * 0.01),
            "log",
            {"convolve_at": "pixel"},
            "pixel",
        ),
    ]
    for tracer, scale, options, path in cases:
        obs = pmt.observe(pmt.Component(light, tracer), GRID, PSFS[0], scale, **options)
        assert obs.path == path, (tracer, scale)
        assert obs.reason
    fitted = pmt.observe(
        pmt.Component(light, pmt.LinearGradient(central=c, gradient=g)),
        GRID,
        pmt.GaussianPSF(w, max_fwhm=0.6),
        "log",
    )
    assert fitted.path == "fitted_psf" and "PSF has free parameters" in fitted.reason
    assert (
        "not radial"
        in pmt.observe(
            pmt.Component(light, pmt.Azimuthal(m1=g, phase1=0.3)), GRID, PSFS[0], "log"
        ).reason
    )


def test_log_averaged_free_offset_on_a_fixed_structure_is_exact_on_the_linear_path():
    """10**(c + S) = 10**c x 10**S: per-galaxy free offsets under fixed azimuthal structure."""
    data = _data()

    def model(method):
        with pm.Model(coords={"galaxy": range(3)}) as m:
            central = pm.Normal("central", 8.5, 0.2, dims="galaxy")
            tracer = pmt.LinearGradient(
                central=central, gradient=np.array([-0.3, 0.1, -0.6]), q=0.8, phi=0.3
            ) + pmt.Azimuthal(m1=np.array([0.1, 0.0, 0.2]), phase1=0.4)
            obs = pmt.observe(
                pmt.Component(pmt.Exponential(r_eff=R_EFF, q=0.8, phi=0.3), tracer),
                GRID,
                PSFS,
                "log",
                method=method,
            )
            pmt.tracer_likelihood("z", obs, data, sigma=0.05)
        return m, obs

    fast, obs = model("auto")
    full, _ = model("full")
    assert obs.path == "linear" and "free offset" in obs.reason
    points = [{"central": np.full(3, 8.5)}, {"central": np.array([8.3, 8.7, 8.55])}]
    for (lp_fast, g_fast), (lp_full, g_full) in zip(
        _logp_and_gradient(fast, points), _logp_and_gradient(full, points)
    ):
        assert lp_fast == pytest.approx(lp_full, rel=1e-10)
        np.testing.assert_allclose(g_fast, g_full, rtol=1e-8, atol=1e-8)


def test_a_method_that_does_not_apply_is_refused_with_the_reason():
    c, g, r = pt.dscalar("c"), pt.dscalar("g"), pt.dscalar("r")
    free_light = pmt.Component(pmt.Exponential(r_eff=r), pmt.LinearGradient(central=c))
    with pytest.raises(ValueError, match=r"method=.radial. does not apply: the light .*\(r_eff\)"):
        pmt.observe(free_light, GRID, PSFS[0], "log", method="radial")
    log_gradient = pmt.Component(pmt.Exponential(r_eff=0.3), pmt.LinearGradient(gradient=g))
    with pytest.raises(ValueError, match="log averaging .* not linear"):
        pmt.observe(log_gradient, GRID, PSFS[0], "log", method="linear")
    with pytest.raises(ValueError, match="takes the 'subpixel' full path"):
        pmt.observe(log_gradient, GRID, PSFS[0], "log", method="pixel")
    with pytest.raises(ValueError, match="unknown method 'series'"):
        pmt.observe(log_gradient, GRID, PSFS[0], "log", method="series")
    for name in ("subpixel", "radial", "full"):
        assert pmt.observe(log_gradient, GRID, PSFS[0], "log", method=name).path in (
            name,
            "subpixel",
        )


@pytest.mark.parametrize("tracer_scale", ["linear", "log"])
@pytest.mark.parametrize("convolve_at", ["subpixel", "pixel"])
def test_psf_swap_equals_a_fresh_model(tracer_scale, convolve_at):
    data = _data()
    new_psfs = [pmt.GaussianPSF(0.3), pmt.GaussianPSF(0.25), pmt.MoffatPSF(0.3, 2.5)]

    def build(psfs):
        with pm.Model(coords={"galaxy": range(3)}) as model:
            central = pm.Normal("central", 8.5, 0.2, dims="galaxy")
            gradient = pm.Normal("gradient", -0.2, 0.3, dims="galaxy")
            component = pmt.Component(
                pmt.Exponential(r_eff=R_EFF, q=0.8, phi=0.3),
                pmt.LinearGradient(central=central, gradient=gradient),
            )
            obs = pmt.observe(
                component, GRID, psfs, tracer_scale, convolve_at=convolve_at, dynamic_range=4.0
            )
            pmt.tracer_likelihood("z", obs, data, sigma=0.05)
        return model, obs

    swapped, obs = build(PSFS)
    fresh, _ = build(new_psfs)
    for name, value in obs.renderer.psf_updates(new_psfs).items():
        swapped[name].set_value(value)
    for (lp_a, g_a), (lp_b, g_b) in zip(
        _logp_and_gradient(swapped, POINTS), _logp_and_gradient(fresh, POINTS)
    ):
        assert lp_a == pytest.approx(lp_b, rel=1e-12)
        np.testing.assert_allclose(g_a, g_b, rtol=1e-10)


WIDE_PSFS = [pmt.GaussianPSF(0.4), pmt.MoffatPSF(0.35, 3.0), pmt.GaussianPSF(0.45)]
NARROW_PSFS = [pmt.GaussianPSF(0.3), pmt.GaussianPSF(0.25), pmt.MoffatPSF(0.3, 3.0)]


@functools.cache
def _shared_data():
    data = _data()
    data.flags.writeable = False
    return data


def _free_light_model(psfs, tracer_scale, convolve_at, *, batched=True):
    """Free light (so the full path is the only one): r_eff and the central tracer value."""
    n = 3 if batched else 1
    data = _shared_data() if batched else _shared_data()[0]
    with pm.Model(coords={"galaxy": range(n)}) as model:
        central = pm.Normal("central", 8.5, 0.2, dims="galaxy")
        r_eff = pm.LogNormal("r_eff", np.log(0.3), 0.2, dims="galaxy")
        component = pmt.Component(
            pmt.Exponential(r_eff=r_eff if batched else r_eff[0], q=0.8, phi=0.3),
            pmt.LinearGradient(central=central if batched else central[0], gradient=-0.2),
        )
        obs = pmt.observe(
            component, GRID, psfs if batched else psfs[0], tracer_scale, convolve_at=convolve_at
        )
        pmt.tracer_likelihood("z", obs, data, sigma=0.05)
    return model, obs


FREE_LIGHT_POINTS = [
    {"central": np.full(3, 8.5), "r_eff_log__": np.log([0.3, 0.45, 0.25])},
    {"central": np.array([8.3, 8.7, 8.55]), "r_eff_log__": np.log([0.4, 0.2, 0.3])},
]


def _logp_and_gradient_once(model, points):
    """logp and gradient from one quickly compiled function (these graphs are small)."""
    function = model.compile_fn([model.logp(), model.dlogp()], mode=BUILD_MODE)
    return [tuple(function(p)) for p in points]


@pytest.mark.parametrize(
    "tracer_scale, convolve_at, batched",
    [
        ("linear", "subpixel", True),
        ("log", "pixel", True),
        ("log", "subpixel", False),
    ],
)
def test_full_path_psf_swap_equals_a_fresh_model(tracer_scale, convolve_at, batched):
    """The full paths hold their kernel as model data: a narrower PSF swapped in (zero-padded
    to the built stamp) gives the logp and gradient of a model built with it."""
    swapped, obs = _free_light_model(WIDE_PSFS, tracer_scale, convolve_at, batched=batched)
    fresh, fresh_obs = _free_light_model(NARROW_PSFS, tracer_scale, convolve_at, batched=batched)
    assert obs.path == fresh_obs.path == convolve_at
    points = (
        FREE_LIGHT_POINTS
        if batched
        else [{name: value[:1] for name, value in p.items()} for p in FREE_LIGHT_POINTS]
    )
    before = _logp_and_gradient_once(swapped, points)
    for name, value in obs.renderer.psf_updates(NARROW_PSFS if batched else NARROW_PSFS[0]).items():
        swapped[name].set_value(value)
    after = _logp_and_gradient_once(swapped, points)
    expected = _logp_and_gradient_once(fresh, points)
    for (lp_a, g_a), (lp_b, g_b), (lp_old, _) in zip(after, expected, before):
        assert lp_a == pytest.approx(lp_b, rel=1e-12)
        np.testing.assert_allclose(g_a, g_b, rtol=1e-8, atol=1e-8)
        assert abs(lp_old - lp_b) > 1.0  # the swap changed something


def test_full_path_psf_swaps_that_cannot_fit_say_why():
    model, obs = _free_light_model(NARROW_PSFS, "log", "subpixel")
    with pytest.raises(PSFSwapError, match=r"stamp is \d+ samples across .* at most \d+"):
        obs.renderer.psf_updates(WIDE_PSFS)
    with pytest.raises(PSFSwapError, match="built for 3 PSF"):
        obs.renderer.psf_updates(NARROW_PSFS[:2])
    with pytest.raises(PSFSwapError, match="free parameters"):
        obs.renderer.psf_updates([pmt.GaussianPSF(pt.dscalar("f"), max_fwhm=0.3)] * 3)
    fitted_fwhm = pt.dscalar("fwhm")
    c = pt.dscalar("c")
    component = pmt.Component(pmt.Exponential(r_eff=0.3), pmt.Azimuthal(m1=c, phase1=0.1))
    outside = pmt.observe(component, GRID, PSFS[0], "log")
    with pytest.raises(PSFSwapError, match="built outside a PyMC model"):
        outside.renderer.psf_updates(PSFS[1])
    fitted = pmt.observe(component, GRID, pmt.GaussianPSF(fitted_fwhm, max_fwhm=0.4), "log")
    with pytest.raises(PSFSwapError, match="fits its PSF"):
        fitted.renderer.psf_updates(PSFS[1])
    with pm.Model() as empty:
        pm.Normal("c", 0, 1)
    with pytest.raises(ValueError, match="observations=\\[observation\\]"):
        pmt.Fitter(empty)._psf_updates(PSFS[1])


def test_models_transformed_by_do_and_clone_keep_the_compact_likelihood():
    data = _data()
    model, _ = _model("log", "auto", data)
    fixed = pm.do(model, {"central": np.array([8.5, 8.4, 8.5])})
    clone = pm.model.fgraph.clone_model(model)
    point = {"gradient": np.array([-0.3, 0.1, -0.6])}
    assert np.isfinite(fixed.compile_logp()(point))
    full_point = {"central": np.array([8.5, 8.4, 8.5]), **point}
    assert clone.compile_logp()(full_point) == pytest.approx(model.compile_logp()(full_point))
