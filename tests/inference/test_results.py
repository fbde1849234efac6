"""The Result object: maps (single and batched), save/load, file size, models via pm.do/clone."""

import json
import os
import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from pymc.model.fgraph import clone_model

import pymc_tracers as pmt

TINY = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}


def tiny_galaxy(*, seed=0, fwhm=1.0, shape=(15, 15)):
    """An exponential disc (R_e = 1") with a -0.2 dex/arcsec gradient on 0.2" pixels."""
    grid = pmt.PixelGrid(shape, 0.2)
    psf = pmt.GaussianPSF(fwhm)
    light = pmt.Exponential(r_eff=1.0, amplitude=1.0)
    truth = pmt.Component(light, pmt.LinearGradient(central=8.0, gradient=-0.2))
    _, tracer = pmt.evaluate(pmt.observe(truth, grid, psf))
    sigma = np.full(shape, 0.03)
    data = tracer + sigma * np.random.default_rng(seed).normal(size=shape)
    return grid, psf, light, data, sigma


def gradient_model(grid, psf, light, data, sigma, mask=None, observations=None):
    """The model; ``observations``, a list, receives the Observation (for PSF swaps)."""
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(light, pmt.LinearGradient(central=central, gradient=gradient))
        observation = pmt.observe(disc, grid, psf)
        pmt.tracer_likelihood("metallicity", observation, data, sigma=sigma, mask=mask)
    if observations is not None:
        observations.append(observation)
    return model


def quiet_fit(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        return pmt.fit(model, **{**TINY, **kwargs})


def map_of(light, grid, psf, *, central, gradient):
    disc = pmt.Component(light, pmt.LinearGradient(central=central, gradient=gradient))
    return pmt.evaluate(pmt.observe(disc, grid, psf))[1]


#: The tests of the module fixture below run on one xdist worker (``--dist loadgroup`` in
#: pyproject.toml): a module fixture is built on each worker that runs one of its tests
#: (this one: a small fit: 5.8 and 3.5 s, built on both workers in a full run).
SMALL_FIT_GROUP = pytest.mark.xdist_group("results_small_fit")


@pytest.fixture(scope="module")
def small_fit():
    galaxy = tiny_galaxy()
    grid = galaxy[0]
    mask = np.ones(grid.shape, dtype=bool)
    mask[:2] = False  # some unused pixels, so the used map and NaN residuals are exercised
    model = gradient_model(*galaxy, mask=mask)
    return quiet_fit(
        model, random_seed=1, grid=grid, config={"note": "tiny", "seed": [1, 2]}
    ), model


@SMALL_FIT_GROUP
def test_maps_are_the_forward_model_at_the_posterior(small_fit):
    result, _ = small_fit
    grid, psf, light, data, sigma = tiny_galaxy()
    maps = result.maps("metallicity")
    central, gradient = (
        np.median(result.idata.posterior[v].values) for v in ("central", "gradient")
    )
    # a linear model: the median map equals the map of the median parameters to MC accuracy
    expected = map_of(light, grid, psf, central=central, gradient=gradient)
    np.testing.assert_allclose(maps["model"], expected, atol=2e-3)
    assert maps["used"].sum() == 13 * 15 and not maps["used"][:2].any()
    np.testing.assert_array_equal(maps["residual"][2:], (data - maps["model"])[2:])
    assert np.isnan(maps["residual"][:2]).all()
    np.testing.assert_array_equal(maps["sigma"][maps["used"]], sigma[maps["used"]])
    with pytest.raises(ValueError, match="holds a single galaxy; leave galaxy=None"):
        result.maps("metallicity", galaxy=0)
    with pytest.raises(ValueError, match="no likelihood named 'velocity'"):
        result.maps("velocity")


@SMALL_FIT_GROUP
def test_save_and_load_round_trip_every_field(small_fit, tmp_path):
    result, _ = small_fit
    path = tmp_path / "fit.nc"
    result.save(path)
    loaded = pmt.Result.load(path)
    assert loaded.config == result.config
    assert loaded.config["note"] == "tiny" and loaded.config["seed"] == [1, 2]
    assert loaded.config["grid"] == {
        "shape": [15, 15],
        "pixel_scale": 0.2,
        "supersampling": 1,
        "center": [0.0, 0.0],
    }
    assert dict(loaded.idata.attrs) == dict(result.idata.attrs)
    assert json.loads(loaded.idata.attrs["pymc_tracers"]) == result.config
    saved = [g for g in result.idata.groups() if g != "log_likelihood"]
    assert sorted(loaded.idata.groups()) == sorted(saved)
    for group in saved:
        a, b = getattr(loaded.idata, group), getattr(result.idata, group)
        assert a.identical(b), group  # values, dtypes, coordinates and attributes
        for name in b.data_vars:
            assert a[name].dtype == b[name].dtype, (group, name)
    for key, value in result.maps().items():
        np.testing.assert_array_equal(loaded.maps()[key], value)
        assert loaded.maps()[key].dtype == value.dtype
    # BIC needs only the maximum log-likelihood, which the configuration keeps
    assert loaded.max_log_likelihood() == result.max_log_likelihood()
    assert repr(loaded) == repr(result)
    assert loaded.summary().equals(result.summary())
    assert len(loaded.plot_maps().axes) >= 4


@SMALL_FIT_GROUP
def test_pointwise_log_likelihood_is_saved_only_on_request_and_compactly(small_fit, tmp_path):
    result, model = small_fit
    small, full = tmp_path / "small.nc", tmp_path / "full.nc"
    result.save(small)
    result.save(full, log_likelihood=True)
    assert "log_likelihood" in result.idata.groups()  # the in-memory result keeps it
    with_ll = pmt.Result.load(full)
    stored = with_ll.idata.log_likelihood["metallicity"]
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(
        stored.values, result.idata.log_likelihood["metallicity"].values.astype(np.float32)
    )
    # float32 + zlib: much smaller than the 8 bytes per pixel and draw of the in-memory values
    ll_bytes = result.idata.log_likelihood["metallicity"].values.nbytes
    assert full.stat().st_size - small.stat().st_size < 0.5 * ll_bytes
    # recomputed from the model: the float64 values again
    without = pmt.Result.load(small)
    assert "log_likelihood" not in without.idata.groups()
    without.compute_log_likelihood(model)
    np.testing.assert_allclose(
        without.idata.log_likelihood["metallicity"].values,
        result.idata.log_likelihood["metallicity"].values,
        rtol=1e-12,
    )


@SMALL_FIT_GROUP
def test_save_is_atomic(small_fit, tmp_path, monkeypatch):
    result, _ = small_fit
    path = tmp_path / "fit.nc"
    path.write_bytes(b"the previous result")

    def crash(self, filename, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"half a netCDF file")
        raise KeyboardInterrupt

    monkeypatch.setattr(az.InferenceData, "to_netcdf", crash)
    with pytest.raises(KeyboardInterrupt):
        result.save(path)
    assert path.read_bytes() == b"the previous result"
    assert os.listdir(tmp_path) == ["fit.nc"]  # no temporary file left behind
    monkeypatch.undo()
    result.save(path)
    assert pmt.Result.load(path).config == result.config
    assert os.listdir(tmp_path) == ["fit.nc"]


@SMALL_FIT_GROUP
def test_a_result_without_log_likelihood_says_how_to_get_it(small_fit):
    result, _ = small_fit
    bare = pmt.Result(result.idata.copy(), dict(result.config, max_log_likelihood=None))
    del bare.idata.log_likelihood
    with pytest.raises(
        ValueError, match=r"fit with log_likelihood=True.*compute_log_likelihood\(model\)"
    ):
        bare.max_log_likelihood()


def test_batched_likelihood_maps_per_galaxy():
    """A likelihood over a stack of galaxies (N, ny, nx): maps and plots per galaxy."""
    grid = pmt.PixelGrid((9, 11), 0.2)
    psf = pmt.GaussianPSF(0.5)
    lights = [pmt.Exponential(r_eff=1.0, amplitude=1.0), pmt.Exponential(r_eff=0.5, amplitude=2.0)]
    truth = np.array([8.3, 7.7])
    sigma = np.full((2, *grid.shape), 0.05)
    data = truth[:, None, None] + sigma * np.random.default_rng(2).normal(size=sigma.shape)
    data[1, 0, :3] = np.nan  # left out
    with pm.Model() as model:
        z = pm.Normal("z", 8.0, 1.0, shape=2)
        maps = [
            pmt.observe(pmt.Component(light, z[i]), grid, psf)[1] for i, light in enumerate(lights)
        ]
        pmt.tracer_likelihood("metallicity", pt.stack(maps), data, sigma=sigma)
    result = quiet_fit(model, random_seed=5, map_draws=400, grid=grid)
    assert result.config["likelihoods"]["metallicity"]["shape"] == [2, 9, 11]
    assert result.config["likelihoods"]["metallicity"]["batched"]
    stacked = result.maps("metallicity")
    assert stacked["model"].shape == (2, 9, 11)
    draws = result.idata.posterior["z"].values.reshape(-1, 2)
    for i in range(2):
        one = result.maps("metallicity", galaxy=i)
        assert one["data"].shape == (9, 11)
        # a constant tracer gives a constant map: the pixel-wise median is the median of z_i
        # (map_draws=400 uses every draw)
        np.testing.assert_allclose(one["model"], np.median(draws[:, i]), atol=1e-9)
        np.testing.assert_array_equal(one["used"], np.isfinite(data[i]))
        np.testing.assert_array_equal(
            one["residual"][one["used"]], (data[i] - one["model"])[one["used"]]
        )
        np.testing.assert_array_equal(one["data"][one["used"]], data[i][one["used"]])
    assert result.maps(galaxy=-1)["model"][0, 0] == result.maps(galaxy=1)["model"][0, 0]
    with pytest.raises(ValueError, match=r"galaxy must be an integer index in \[0, 1\]"):
        result.maps("metallicity", galaxy=2)
    with pytest.raises(ValueError, match=r"holds 2 galaxies: pass galaxy=<index in \[0, 1\]>"):
        result.plot_maps("metallicity")
    fig = result.plot_maps("metallicity", galaxy=1)
    assert "galaxy 1" in fig.axes[0].get_title()


def test_models_through_pm_do_and_clone_model_still_fit_and_plot():
    grid, psf, light, data, sigma = tiny_galaxy(seed=3)
    observations = []
    model = gradient_model(grid, psf, light, data, sigma, observations=observations)

    fixed = pm.do(model, {"central": 8.0})
    result = quiet_fit(fixed, random_seed=2, grid=grid)
    assert list(result.config["free_parameters"]) == ["gradient"]
    gradient = np.median(result.idata.posterior["gradient"].values)
    expected = map_of(light, grid, psf, central=8.0, gradient=gradient)
    np.testing.assert_allclose(result.maps()["model"], expected, atol=2e-3)
    assert len(result.plot_maps().axes) >= 4

    cloned = clone_model(model)
    result = quiet_fit(cloned, random_seed=3, grid=grid)
    central, gradient = (
        np.median(result.idata.posterior[v].values) for v in ("central", "gradient")
    )
    expected = map_of(light, grid, psf, central=central, gradient=gradient)
    np.testing.assert_allclose(result.maps()["model"], expected, atol=2e-3)
    assert len(result.plot_maps().axes) >= 4

    # the observation's renderer recomputes its data by name, which the clone shares
    other_psf = pmt.GaussianPSF(0.4)
    fitter = pmt.Fitter(cloned, observations=observations, backend="jax")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        refit = fitter.fit(psf=other_psf, random_seed=4, **TINY)
    central, gradient = (
        np.median(refit.idata.posterior[v].values) for v in ("central", "gradient")
    )
    expected = map_of(light, grid, other_psf, central=central, gradient=gradient)
    np.testing.assert_allclose(refit.maps()["model"], expected, atol=2e-3)


@pytest.mark.slow
def test_figure3_result_file_is_small(tmp_path):
    """The Figure-3 fit (121x121 pixels, 2 x 1000 draws): <= 5 MB by default.

    Measured: 206 MB when the float64 pointwise log-likelihood was stored by default, 1.4 MB now
    (99 MB with save(path, log_likelihood=True)).
    """
    galaxy = pmt.simulate.figure3_galaxy(1.5, seed=0)
    with pm.Model() as model:
        central = pm.Normal("central", 8.5, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(
            galaxy.components[0].light, pmt.LinearGradient(central=central, gradient=gradient)
        )
        _, tracer = pmt.observe(disc, galaxy.grid, galaxy.psf)
        pmt.tracer_likelihood("metallicity", tracer, galaxy.tracer_map, sigma=galaxy.tracer_error)
    result = quiet_fit(model, draws=1000, tune=1000, random_seed=0, grid=galaxy.grid)
    default, full, everything = tmp_path / "default.nc", tmp_path / "ll.nc", tmp_path / "all.nc"
    result.save(default)
    result.save(full, log_likelihood=True)
    result.idata.to_netcdf(str(everything))  # what a plain save wrote before
    sizes = {p.name: p.stat().st_size / 1e6 for p in (default, full, everything)}
    print("file sizes (MB):", sizes)
    assert sizes["default.nc"] <= 5.0
    assert sizes["ll.nc"] < 0.6 * sizes["all.nc"]


# ----------------------------------------------------------------------------- figures
@SMALL_FIT_GROUP
def test_the_maps_figure_is_readable(small_fit):
    """User finding 9: units on every axis and colour bar, north/east arrows, the data on their
    own colour scale, truth lines; made without pyplot (no figure left open)."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from pymc_tracers.io.wcs import SkyFrame

    result, _ = small_fit
    grid = result._grid()
    frame = SkyFrame(wcs=None, grid=grid, north_angle=np.pi / 2 + 0.3, east_sign=1)
    open_before = plt.get_fignums()
    radii = np.linspace(0, 1.5, 5)
    fig = result.plot_maps(unit="dex", frame=frame, truth=(radii, 8.0 - 0.2 * radii))
    assert isinstance(fig, Figure) and plt.get_fignums() == open_before
    data_ax, model_ax, residual_ax, profile_ax = fig.axes[:4]
    for ax in (data_ax, model_ax, residual_ax):
        assert ax.get_xlabel() == "x [arcsec]" and ax.get_ylabel() == "y [arcsec]"
        assert {t.get_text() for t in ax.texts} >= {"N", "E"}
    colour_bars = [ax.get_ylabel() for ax in fig.axes[4:]]
    assert colour_bars == ["dex", "dex", "sigma"]
    assert profile_ax.get_xlabel() == "radius [arcsec]"
    assert profile_ax.get_ylabel() == "metallicity [dex]"
    assert "truth" in [t.get_text() for t in profile_ax.get_legend().get_texts()]
    # the noisy data on their own scale: wider than the model's, which stays resolved
    data_range = np.subtract(*data_ax.images[0].get_clim()[::-1])
    model_range = np.subtract(*model_ax.images[0].get_clim()[::-1])
    assert data_range > model_range
    # N points along north_angle (counter-clockwise from +x), E 90 deg counter-clockwise of it
    north = next(t for t in data_ax.texts if t.get_text() == "N").get_position()
    east = next(t for t in data_ax.texts if t.get_text() == "E").get_position()
    start = np.array([0.82, 0.18])
    angle_n = np.arctan2(*(np.array(north) - start)[::-1])
    angle_e = np.arctan2(*(np.array(east) - start)[::-1])
    assert np.angle(np.exp(1j * (angle_n - (np.pi / 2 + 0.3)))) == pytest.approx(0, abs=1e-9)
    assert np.angle(np.exp(1j * (angle_e - (np.pi + 0.3)))) == pytest.approx(0, abs=1e-9)


@SMALL_FIT_GROUP
def test_the_corner_figure_has_units_and_truth_lines(small_fit):
    result, _ = small_fit
    fig = result.plot_corner(
        units={"central": "dex", "gradient": "dex / arcsec"},
        truth={"central": 8.0, "gradient": -0.2},
    )
    labels = [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
    assert "gradient\n[dex / arcsec]" in labels and "central\n[dex]" in labels
    dashed = [line for ax in fig.axes for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) >= 4  # two marginals and the pair panel's two lines
    # the x tick labels are rotated so long numbers do not run into each other
    assert all(t.get_rotation() == 40 for ax in fig.axes for t in ax.get_xticklabels())
