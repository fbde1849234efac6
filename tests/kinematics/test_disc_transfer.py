"""The disc_radial path (fixed light, PSF and geometry) against the full path."""

import numpy as np
import pymc as pm
import pytensor
import pytest
from pytensor.graph.replace import clone_replace

import pymc_tracers as pmt

GRID = pmt.PixelGrid((12, 11), pixel_scale=0.25, supersampling=2)
LIGHT = pmt.Exponential(r_eff=0.9, q=0.55, phi=0.5, amplitude=2.0)


def _build(
    method,
    *,
    batched=False,
    radial=True,
    constant_sigma=False,
    convolve_at="subpixel",
    tolerance=1e-2,
    psf=None,
):
    n = 3 if batched else None
    geometry = pmt.DiscGeometry(
        x0=0.05,
        phi=np.array([0.5, 0.4, -1.0]) if batched else 0.5,
        inclination=np.array([1.0, 0.5, 1.2]) if batched else 1.0,
    )
    if psf is None:
        psf = [pmt.GaussianPSF(f) for f in (0.4, 0.7, 1.0)] if batched else pmt.GaussianPSF(0.6)
    with pm.Model(coords={"galaxy": range(n or 1)}) as model:
        shape = dict(dims="galaxy") if batched else {}
        v_max = pm.Normal("v_max", 200, 30, **shape)
        r_t = pm.LogNormal("r_t", np.log(0.4), 0.3, **shape)
        v_sys = pm.Normal("v_sys", 3000, 20, **shape)
        sigma0 = pm.HalfNormal("sigma0", 40, **shape)
        v_r = pm.Normal("v_r", 0, 20, **shape) if radial else None
        if constant_sigma:
            dispersion = sigma0
        else:
            dispersion = pmt.DiscDispersion(
                geometry, pmt.ExponentialDispersion(sigma0=sigma0, r_sigma=0.8, floor=15.0)
            )
        velocity = pmt.DiscVelocity(
            geometry, pmt.ArctanCurve(v_max=v_max, r_t=r_t), v_sys=v_sys, radial=v_r
        )
        obs = pmt.observe_kinematics(
            pmt.KinematicComponent(LIGHT, velocity, dispersion),
            GRID,
            psf,
            lsf_sigma=25.0,
            method=method,
            convolve_at=convolve_at,
            tolerance=tolerance,
        )
    return model, obs


def _compiled(model, outputs, names):
    """The outputs as a function of the named random variables' values."""
    stand_ins = [model[name].type() for name in names]
    replaced = clone_replace(outputs, replace=dict(zip([model[n] for n in names], stand_ins)))
    return pytensor.function(stand_ins, replaced)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(radial=False, constant_sigma=True, convolve_at="pixel"),
        dict(batched=True),
    ],
)
def test_disc_radial_maps_equal_the_full_path(options):
    model_fast, fast = _build("auto", **options)
    model_full, full = _build("full", **options)
    assert fast.path == "disc_radial" and "fixed light, PSF and disc geometry" in fast.reason
    assert full.path == options.get("convolve_at", "subpixel")
    assert fast.max_error < 1e-2
    n = 3 if options.get("batched") else None
    names = ["v_max", "r_t", "v_sys", "sigma0"] + (["v_r"] if options.get("radial", True) else [])
    fast_at, full_at = (
        _compiled(m, list(o), names) for m, o in [(model_fast, fast), (model_full, full)]
    )
    rng = np.random.default_rng(3)
    for _ in range(2):
        values = {
            "v_max": rng.uniform(100, 300, n),
            "r_t": rng.uniform(0.2, 0.8, n),
            "v_sys": rng.uniform(2950, 3050, n),
            "sigma0": rng.uniform(5, 80, n),
        }
        if options.get("radial", True):
            values["v_r"] = rng.uniform(-30, 30, n)
        a = fast_at(*(values[n] for n in names))
        b = full_at(*(values[n] for n in names))
        np.testing.assert_allclose(a[0], b[0], rtol=1e-10)  # the flux is the same
        assert np.abs(a[1] - b[1]).max() < 1e-2  # km/s
        assert np.abs(a[2] - b[2]).max() < 1e-2


def test_disc_radial_psf_swap_gives_the_new_psfs_maps():
    """Bases and light sums held as model data: after a swap to narrower PSFs the maps are
    those of the full path under the new PSFs (within the tolerance), far from the old ones."""
    narrower = [pmt.GaussianPSF(0.3), pmt.MoffatPSF(0.5, 4.0), pmt.GaussianPSF(0.8)]
    model, obs = _build("auto", batched=True)
    model_new, new = _build("full", batched=True, psf=narrower)
    assert obs.path == "disc_radial"
    names = ["v_max", "r_t", "v_sys", "sigma0", "v_r"]
    values = [
        np.array(v)
        for v in (
            [180.0, 240.0, 150.0],
            [0.3, 0.5, 0.7],
            [3000.0] * 3,
            [30.0, 60.0, 20.0],
            [10.0, -5.0, 0.0],
        )
    ]
    before = _compiled(model, list(obs), names)(*values)
    for name, value in obs.renderer.psf_updates(narrower).items():
        model[name].set_value(value)
    after = _compiled(model, list(obs), names)(*values)
    expected = _compiled(model_new, list(new), names)(*values)
    np.testing.assert_allclose(after[0], expected[0], rtol=1e-10)
    assert np.abs(after[1] - expected[1]).max() < 1e-2  # km/s
    assert np.abs(after[2] - expected[2]).max() < 1e-2
    assert np.abs(before[2] - expected[2]).max() > 1.0  # the swap changed the maps
    with pytest.raises(pmt.forward.PSFSwapError, match="samples across"):
        obs.renderer.psf_updates([pmt.GaussianPSF(f) for f in (0.4, 0.7, 1.5)])


def test_a_fitter_takes_kinematic_observations_and_swaps_their_psf():
    """Fitter.fit(psf=...) with what observe_kinematics returned: the model's data become
    the new PSF's bases before sampling."""
    narrower = [pmt.GaussianPSF(0.3), pmt.GaussianPSF(0.5), pmt.GaussianPSF(0.9)]
    model, obs = _build("auto", batched=True)
    with model:
        pmt.kinematic_likelihood(
            obs, velocity=np.full((3, *GRID.shape), 3000.0), velocity_sigma=10.0
        )
    expected = obs.renderer.psf_updates(narrower)
    fitter = pmt.Fitter(model, observations=[obs], backend="jax")
    result = fitter.fit(
        psf=narrower,
        draws=20,
        tune=20,
        chains=1,
        progressbar=False,
        log_likelihood=False,
        map_draws=2,
    )
    assert result.idata.posterior["v_max"].shape == (1, 20, 3)
    for name, value in expected.items():
        np.testing.assert_array_equal(model[name].get_value(), value)
    with pytest.raises(TypeError, match="observe_kinematics returned"):
        pmt.Fitter(model, observations=[obs.velocity], backend="jax")


def test_disc_radial_gradients_equal_the_full_paths():
    # maps within 1e-5 km/s (the node count follows the tolerance): logp and gradients agree
    # to ~1e-8 relative, so a wrong gradient graph cannot hide behind the interpolation
    data = {}
    points = []
    for method in ("auto", "full"):
        model, obs = _build(method, tolerance=1e-5)
        with model:
            v_data = np.zeros(GRID.shape) + 3000.0
            pmt.tracer_likelihood("velocity", obs.velocity, v_data, sigma=10.0)
            pmt.tracer_likelihood(
                "dispersion", obs.dispersion, np.full(GRID.shape, 50.0), sigma=8.0
            )
        point = model.initial_point()
        points.append(point)
        data[method] = (model.compile_logp()(point), model.compile_dlogp()(point))
    np.testing.assert_allclose(data["auto"][0], data["full"][0], rtol=1e-6)
    np.testing.assert_allclose(data["auto"][1], data["full"][1], rtol=1e-4, atol=1e-4)


def test_free_geometry_or_light_takes_the_full_path_and_says_why():
    with pm.Model():
        phi = pm.Normal("phi", 0.5, 0.1)
        geometry = pmt.DiscGeometry(phi=phi, inclination=1.0)
        component = pmt.KinematicComponent(
            LIGHT, pmt.DiscVelocity(geometry, pmt.TanhCurve(v_max=200.0, r_t=0.3)), 30.0
        )
        obs = pmt.observe_kinematics(component, GRID, pmt.GaussianPSF(0.5))
        assert obs.path == "subpixel" and "geometry has free parameters (phi)" in obs.reason
        with pytest.raises(ValueError, match="disc_radial' does not apply: the disc geometry"):
            pmt.observe_kinematics(component, GRID, pmt.GaussianPSF(0.5), method="disc_radial")
        r_eff = pm.LogNormal("r_eff", 0, 0.2)
        fixed = pmt.DiscGeometry(phi=0.5, inclination=1.0)
        component = pmt.KinematicComponent(
            pmt.Exponential(r_eff=r_eff),
            pmt.DiscVelocity(fixed, pmt.TanhCurve(v_max=200.0, r_t=0.3)),
            30.0,
        )
        obs = pmt.observe_kinematics(component, GRID, pmt.GaussianPSF(0.5))
        assert "light has free parameters (r_eff)" in obs.reason


def test_node_count_follows_the_tolerance_on_the_maps():
    # the count is the fewest whose maps meet the tolerance at prior draws; at other
    # parameter values the maps still meet it, and a tighter tolerance takes more nodes
    rng = np.random.default_rng(8)
    values = [(rng.uniform(120, 280), rng.uniform(0.25, 0.7)) for _ in range(3)]
    counts = []
    for tolerance in (1e-1, 1e-4):
        model, fast = _build("auto", radial=False, constant_sigma=True, tolerance=tolerance)
        model_full, full = _build("full", radial=False, constant_sigma=True)
        renderer = fast.renderer
        assert renderer.node_count <= renderer.bound_node_count
        assert fast.max_error <= 0.25 * tolerance
        counts.append(renderer.node_count)
        names = ["v_max", "r_t", "v_sys", "sigma0"]
        fast_at = _compiled(model, [fast.velocity, fast.dispersion], names)
        full_at = _compiled(model_full, [full.velocity, full.dispersion], names)
        for v_max, r_t in values:
            args = (v_max, r_t, 3010.0, 30.0)
            error = max(np.abs(a - b).max() for a, b in zip(fast_at(*args), full_at(*args)))
            assert error < tolerance
    assert counts[1] > counts[0]
