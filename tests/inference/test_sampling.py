"""Sampling: the paper's fits (slow), and fast checks of fit/Fitter on tiny grids."""

import warnings

import numpy as np
import pymc as pm
import pytest

import pymc_tracers as pmt

FAST = {"draws": 600, "tune": 600, "chains": 2, "progressbar": False}


def fit_gradient(galaxy, light_components=None, seed=1, **kwargs):
    """Light fixed to truth, tracer central value and gradient free (the paper's setup)."""
    with pm.Model():
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        lights = light_components or [c.light for c in galaxy.components]
        comps = [
            pmt.Component(light, pmt.LinearGradient(central=central, gradient=gradient))
            for light in lights
        ]
        _, tracer = pmt.observe(comps, galaxy.grid, galaxy.psf, galaxy.tracer_scale)
        pmt.tracer_likelihood("metallicity", tracer, galaxy.tracer_map, sigma=galaxy.tracer_error)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pmt.ConvergenceWarning)
            return pmt.fit(random_seed=seed, grid=galaxy.grid, **{**FAST, **kwargs})


def fit_clumps(galaxy, tracer_scale=None, seed=1):
    with pm.Model():
        z = pm.Normal("z", 8.0, 1.0, shape=3)
        comps = [pmt.Component(c.light, z[i]) for i, c in enumerate(galaxy.components)]
        _, tracer = pmt.observe(comps, galaxy.grid, galaxy.psf, tracer_scale or galaxy.tracer_scale)
        pmt.tracer_likelihood("metallicity", tracer, galaxy.tracer_map, sigma=galaxy.tracer_error)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pmt.ConvergenceWarning)
            return pmt.fit(random_seed=seed, grid=galaxy.grid, **FAST)


@pytest.mark.slow
def test_figure3_large_psf_forward_model_is_unbiased_where_wls_flattens():
    galaxy = pmt.simulate.figure3_galaxy(1.5, seed=0)
    result = fit_gradient(galaxy)
    lo, hi = result.percentiles("gradient", (2.5, 97.5))
    assert lo < galaxy.truth["gradient"] < hi
    wls = pmt.baselines.wls_gradient(galaxy.tracer_map, galaxy.tracer_error, galaxy.grid)
    assert abs(wls.gradient) < 0.8 * abs(galaxy.truth["gradient"])
    # the WLS error bar does not cover its bias: the flattening is systematic, not noise
    assert abs(wls.gradient - galaxy.truth["gradient"]) > 5 * wls.gradient_err
    d = result.diagnostics()
    assert d["r_hat_max"] < 1.02 and d["divergences"] == 0


@pytest.mark.slow
def test_table1_three_clumps_versus_a_gradient():
    """Use case 2 with the paper's linear averaging and the shipped NIRISS-like PSF."""
    galaxy = pmt.simulate.clumpy_galaxy(seed=0, tracer_scale="linear")
    assert isinstance(galaxy.psf, pmt.PixelPSF)
    three = fit_clumps(galaxy)
    p025, p50, p975 = three.percentiles("z", (2.5, 50, 97.5))
    truth = np.array([7.6, 7.8, 7.9])
    np.testing.assert_array_less(np.abs(p50 - truth), 0.02)
    assert np.all((p025 < truth) & (truth < p975))

    gradient = fit_gradient(galaxy)
    g_lo, _g_med = gradient.percentiles("gradient", (2.5, 50))
    assert g_lo > 0  # the spurious "inverted" gradient of the paper
    wls = pmt.baselines.wls_gradient(galaxy.tracer_map, galaxy.tracer_error, galaxy.grid)
    assert wls.gradient > 0
    # the residuals of the gradient model are structured; three components fit to noise level
    worst_gradient = np.nanmax(np.abs(gradient.maps()["model"] - galaxy.true_tracer_map))
    worst_three = np.nanmax(np.abs(three.maps()["model"] - galaxy.true_tracer_map))
    assert worst_gradient > 0.05 > worst_three
    assert pmt.delta_bic(gradient, three) > 10  # "very strong" preference for three clumps


@pytest.mark.slow
def test_log_and_linear_averaging_differ_by_the_size_of_the_errors():
    """For the clumps, averaging dex values instead of 10**Z shifts pixels by ~0.02 dex."""
    log = pmt.simulate.clumpy_galaxy(seed=0, tracer_scale="log")
    lin = pmt.simulate.clumpy_galaxy(seed=0, tracer_scale="linear")
    bright = log.true_light_image > 0.05 * log.true_light_image.max()
    shift = np.abs(log.true_tracer_map - lin.true_tracer_map)[bright]
    assert 0.01 < shift.max() < 0.05
    # fitting in the units the data were made in recovers the truth
    result = fit_clumps(log)
    lo, hi = result.percentiles("z", (2.5, 97.5))
    truth = np.array([7.6, 7.8, 7.9])
    assert np.all((lo < truth) & (truth < hi))


@pytest.mark.slow
def test_joint_fit_of_light_and_tracer_recovers_both():
    galaxy = pmt.simulate.figure4_galaxy(4.0, seed=2, supersampling=2)
    truth = galaxy.truth
    with pm.Model():
        x0 = pm.Normal("x0", 0.0, 0.1)
        y0 = pm.Normal("y0", 0.0, 0.1)
        r_eff = pm.LogNormal("r_eff", np.log(truth["r_eff"] * 1.2), 0.5)
        amplitude = pm.LogNormal("amplitude", 0.0, 1.0)
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(
            pmt.Exponential(x0=x0, y0=y0, r_eff=r_eff, amplitude=amplitude),
            pmt.LinearGradient(x0=x0, y0=y0, central=central, gradient=gradient),
        )
        image, tracer = pmt.observe(disc, galaxy.grid, galaxy.psf, galaxy.tracer_scale)
        pmt.image_likelihood("light", image, galaxy.light_image, sigma=galaxy.light_error)
        pmt.tracer_likelihood("metallicity", tracer, galaxy.tracer_map, sigma=galaxy.tracer_error)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pmt.ConvergenceWarning)
            result = pmt.fit(random_seed=3, draws=400, tune=500, chains=2, progressbar=False)
    for name in ["x0", "y0", "r_eff", "amplitude", "central", "gradient"]:
        lo, hi = result.percentiles(name, (0.5, 99.5))
        assert lo < truth[name] < hi, name
    assert set(result.idata.log_likelihood.data_vars) == {"light", "metallicity"}


# ---------------------------------------------------------------- fast checks on tiny grids
TINY = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}


def tiny_galaxy(*, seed=0, fwhm=1.0, shape=(21, 21)):
    """An exponential disc (R_e = 1") with a -0.2 dex/arcsec gradient on 0.2" pixels."""
    grid = pmt.PixelGrid(shape, 0.2)
    psf = pmt.GaussianPSF(fwhm)
    light = pmt.Exponential(r_eff=1.0, amplitude=1.0)
    truth = pmt.Component(light, pmt.LinearGradient(central=8.0, gradient=-0.2))
    _, tracer = pmt.evaluate(pmt.observe(truth, grid, psf))
    sigma = np.full(shape, 0.03)
    data = tracer + sigma * np.random.default_rng(seed).normal(size=shape)
    return grid, psf, light, data, sigma


def gradient_model(grid, psf, light, data, sigma, observations=None):
    """The model; ``observations``, a list, receives the Observation (for PSF swaps)."""
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(light, pmt.LinearGradient(central=central, gradient=gradient))
        observation = pmt.observe(disc, grid, psf)
        pmt.tracer_likelihood("metallicity", observation, data, sigma=sigma)
    if observations is not None:
        observations.append(observation)
    return model


def constant_model(data, sigma, *, prior_mu=8.0, prior_sigma=1.0):
    """A constant tracer: the map is ``c`` everywhere, so the posterior of ``c`` is conjugate."""
    grid = pmt.PixelGrid(data.shape, 0.2)
    with pm.Model() as model:
        c = pm.Normal("c", prior_mu, prior_sigma)
        disc = pmt.Component(pmt.Exponential(r_eff=1.0, amplitude=1.0), c)
        _, tracer = pmt.observe(disc, grid, pmt.GaussianPSF(0.3))
        pmt.tracer_likelihood("z", tracer, data, sigma=sigma)
    precision = 1 / prior_sigma**2 + np.sum(1 / sigma**2)
    mean = (prior_mu / prior_sigma**2 + np.sum(data / sigma**2)) / precision
    return model, mean, precision**-0.5


def quiet_fit(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        return pmt.fit(model, **{**TINY, **kwargs})


def test_tiny_galaxy_gradient_is_recovered_where_wls_flattens():
    grid, psf, light, data, sigma = tiny_galaxy()
    result = quiet_fit(gradient_model(grid, psf, light, data, sigma), random_seed=1)
    lo, hi = result.percentiles("gradient", (0.5, 99.5))
    assert lo < -0.2 < hi
    wls = pmt.baselines.wls_gradient(data, sigma, grid)
    assert abs(wls.gradient + 0.2) > 5 * wls.gradient_err  # the PSF flattens the classical fit


@pytest.fixture
def jax_x64_off():
    """Start with 64-bit JAX switched off (as after ``jax.config.update``), restore after."""
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield jax
    jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize(
    ("sampler", "backend"), [("nutpie", "jax"), ("numpyro", "auto"), ("blackjax", "auto")]
)
def test_jax_samplers_run_in_float64(jax_x64_off, sampler, backend):
    data = 8.1 + 0.05 * np.random.default_rng(3).normal(size=(5, 5))
    model, mean, sd = constant_model(data, np.full(data.shape, 0.05))
    with warnings.catch_warnings():
        # JAX's "Explicitly requested dtype float64 ... will be truncated to dtype float32"
        warnings.filterwarnings("error", message=".*float64.*truncated", category=UserWarning)
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        result = pmt.fit(
            model, sampler=sampler, backend=backend, random_seed=4, **{**TINY, "chains": 1}
        )
    assert jax_x64_off.config.jax_enable_x64
    draws = result.idata.posterior["c"]
    assert draws.dtype == np.float64
    assert result.config["backend"] == "jax"
    # the conjugate posterior: mean to Monte-Carlo accuracy, width to 20%
    assert abs(float(draws.mean()) - mean) < 0.3 * sd
    assert float(draws.std()) == pytest.approx(sd, rel=0.2)


def test_fitter_with_the_jax_backend_runs_in_float64(jax_x64_off):
    data = 8.1 + 0.05 * np.random.default_rng(5).normal(size=(5, 5))
    model, _, _ = constant_model(data, np.full(data.shape, 0.05))
    fitter = pmt.Fitter(model, backend="jax")
    new_data = 7.9 + 0.05 * np.random.default_rng(6).normal(size=(5, 5))
    _, mean, sd = constant_model(new_data, np.full(data.shape, 0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        result = fitter.fit({"z": new_data}, random_seed=7, **TINY)
    assert jax_x64_off.config.jax_enable_x64
    draws = result.idata.posterior["c"]
    assert draws.dtype == np.float64
    assert abs(float(draws.mean()) - mean) < 0.3 * sd


def test_jax_fitter_takes_galaxy_dims_and_refits_new_data():
    """A batch with dims="galaxy" (PyMC keeps dim lengths as shared variables, which JAX cannot
    trace): conjugate per-galaxy constants, refitted to new maps in the compiled model."""
    sigma = np.full((3, 5, 5), 0.05)
    rng = np.random.default_rng(8)

    def data(levels):
        return np.asarray(levels)[:, None, None] + 0.05 * rng.normal(size=sigma.shape)

    first, second = data([8.0, 8.3, 7.9]), data([8.4, 7.7, 8.1])
    with pm.Model(coords={"galaxy": range(3)}) as model:
        c = pm.Normal("c", 8.0, 1.0, dims="galaxy")
        disc = pmt.Component(pmt.Exponential(r_eff=np.ones(3)), pmt.Constant(c))
        obs = pmt.observe(disc, pmt.PixelGrid((5, 5), 0.2), pmt.GaussianPSF(0.3))
        pmt.tracer_likelihood("z", obs, first, sigma=sigma)
    fitter = pmt.Fitter(model, backend="jax")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        result = fitter.fit({"z": second}, random_seed=9, **TINY)
    precision = 1.0 + np.sum(1 / sigma**2, axis=(1, 2))
    mean = (8.0 + np.sum(second / sigma**2, axis=(1, 2))) / precision
    draws = result.idata.posterior["c"].values.reshape(-1, 3)
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 0.3 * precision**-0.5)


def test_fitter_refits_new_data_and_psfs_without_recompiling():
    first = tiny_galaxy(seed=1, fwhm=1.0)
    observations = []
    model = gradient_model(*first, observations=observations)
    fitter = pmt.Fitter(model, observations=observations, backend="jax")
    compiled = fitter.compiled
    grid, psf, light, data, sigma = tiny_galaxy(seed=2, fwhm=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        refit = fitter.fit({"metallicity": (data, sigma)}, psf=psf, random_seed=2, **TINY)
        fresh = quiet_fit(gradient_model(grid, psf, light, data, sigma), random_seed=3)
    assert fitter.compiled is compiled
    # the refit sees the new data and PSF: the same posterior as a model built for them
    for name in ["central", "gradient"]:
        a, b = refit.percentiles(name), fresh.percentiles(name)
        assert abs(a[1] - b[1]) < 0.25 * (b[2] - b[0]), name
    np.testing.assert_array_equal(refit.maps()["data"], data)
    np.testing.assert_array_equal(refit.maps()["sigma"], sigma)
    with pytest.raises(ValueError, match=r"data for 'metallicity' has shape \(5, 5\)"):
        fitter.fit({"metallicity": np.zeros((5, 5))})
    with pytest.raises(ValueError, match="no likelihood named 'velocity'"):
        fitter.fit({"velocity": data})
    bad = data.copy()
    bad[3, 4] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite in pixels the compiled model uses"):
        fitter.fit({"metallicity": bad})
    with pytest.raises(ValueError, match="sigma for 'metallicity' must be finite and > 0"):
        fitter.fit({"metallicity": (data, np.zeros_like(sigma))})


def test_fit_and_fitter_share_one_ending():
    """Both store the same configuration, log-likelihoods, maps and convergence check."""
    galaxy = tiny_galaxy(seed=4)
    model = gradient_model(*galaxy)
    with pytest.warns(pmt.ConvergenceWarning) as by_fit_warnings:
        by_fit = pmt.fit(model, draws=30, tune=30, progressbar=False, random_seed=1)
    with pytest.warns(pmt.ConvergenceWarning) as by_fitter_warnings:
        by_fitter = pmt.Fitter(model, backend="jax").fit(
            draws=30, tune=30, progressbar=False, random_seed=1
        )
    # the warning names the user's line, not the library's
    for record in [*by_fit_warnings, *by_fitter_warnings]:
        if issubclass(record.category, pmt.ConvergenceWarning):
            assert record.filename == __file__
    assert set(by_fitter.config) == set(by_fit.config) | {"compile_seconds"}
    for result in (by_fit, by_fitter):
        assert result.config["mass_matrix"] == "low-rank modified"
        assert result.config["sampler"] == "nutpie"
        ll = result.idata.log_likelihood["metallicity"].values  # (chain, draw, pixel)
        assert ll.shape[-1] == 21 * 21
        assert result.config["max_log_likelihood"] == pytest.approx(
            ll.sum(axis=-1).max(), rel=1e-12
        )
        assert set(result.maps()) == {"data", "model", "sigma", "used", "residual"}


def test_sample_counts_are_checked_before_sampling():
    data = np.full((3, 3), 8.0)
    model, _, _ = constant_model(data, np.full(data.shape, 0.1))
    with pytest.raises(ValueError, match="nutpie needs at least one tuning step.*got tune=0"):
        pmt.fit(model, tune=0)
    with pytest.raises(ValueError, match="draws must be an integer >= 1; got 0"):
        pmt.fit(model, draws=0)
    with pytest.raises(ValueError, match="chains must be an integer >= 1; got 1.5"):
        pmt.fit(model, chains=1.5)
    with pytest.raises(ValueError, match="unknown sampler 'metropolis'"):
        pmt.fit(model, sampler="metropolis")
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        pmt.fit(model, backend="cuda")
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        pmt.Fitter(model, backend="cuda")


def test_poor_convergence_is_reported():
    grid, psf, light, data, sigma = tiny_galaxy(seed=6)
    with pytest.warns(pmt.ConvergenceWarning, match="ESS"):
        result = pmt.fit(
            gradient_model(grid, psf, light, data, sigma),
            draws=30,
            tune=30,
            progressbar=False,
            random_seed=1,
        )
    assert result.diagnostics()["ess_bulk_min"] < 400


# ---------------------------------------------------------------- slow paper reproductions
@pytest.mark.slow
def test_figure3_every_fwhm():
    """Paper Figure 3: forward model contains the truth (95%) at every FWHM; WLS flattens.

    The WLS bias grows with the PSF: at 1.0" it recovers ~0.85 of the truth (many formal
    errors away), at 1.5" ~0.71 (the paper: -0.147 for -0.2) and at 2.0" ~0.53.
    """
    for fwhm in [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0]:
        galaxy = pmt.simulate.figure3_galaxy(fwhm, seed=10)
        result = fit_gradient(galaxy, draws=1000, tune=1000)
        lo, hi = result.percentiles("gradient", (2.5, 97.5))
        assert lo < -0.2 < hi, fwhm
        wls = pmt.baselines.wls_gradient(galaxy.tracer_map, galaxy.tracer_error, galaxy.grid)
        if fwhm >= 1.0:
            assert abs(wls.gradient) < 0.9 * 0.2, fwhm
            assert abs(wls.gradient + 0.2) > 5 * wls.gradient_err, fwhm
        if fwhm >= 1.5:
            assert abs(wls.gradient) < 0.8 * 0.2, fwhm


@pytest.mark.slow
def test_figure3_calibration_of_68_percent_intervals():
    """>= 50 noise realisations at FWHM 1.0": the 68% interval covers the truth ~68% of the time."""
    hits = []
    for seed in range(60):
        galaxy = pmt.simulate.figure3_galaxy(1.0, seed=100 + seed)
        result = fit_gradient(galaxy, seed=seed, draws=500, tune=500)
        lo, hi = result.percentiles("gradient", (16, 84))
        hits.append(lo < -0.2 < hi)
    coverage = np.mean(hits)
    print(f"68% interval coverage over {len(hits)} realisations: {coverage:.2f}")
    # binomial(60, 0.68) has sd 0.06: accept within 3 sd
    assert 0.50 < coverage < 0.86


@pytest.mark.slow
def test_fitter_compiles_once_and_refits_new_data_and_psfs():
    """The Figure-3 model with the default numba backend (compilation takes about a minute)."""
    first = pmt.simulate.figure3_galaxy(1.5, seed=7)
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        comp = pmt.Component(
            first.components[0].light, pmt.LinearGradient(central=central, gradient=gradient)
        )
        _, tracer = pmt.observe(comp, first.grid, first.psf, "linear")
        pmt.tracer_likelihood("metallicity", tracer, first.tracer_map, sigma=first.tracer_error)
    fitter = pmt.Fitter(model)
    compiled = fitter.compiled
    other = pmt.simulate.figure3_galaxy(0.5, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pmt.ConvergenceWarning)
        refit = fitter.fit(
            {"metallicity": (other.tracer_map, other.tracer_error)},
            psf=other.psf,
            progressbar=False,
            random_seed=2,
            draws=600,
            tune=600,
        )
    assert fitter.compiled is compiled
    # the refit sees the new data and PSF: identical to a model built from scratch for them
    fresh = fit_gradient(other, seed=3)
    for name in ["central", "gradient"]:
        a, b = refit.percentiles(name), fresh.percentiles(name)
        assert abs(a[1] - b[1]) < 0.25 * (b[2] - b[0]), name
    np.testing.assert_allclose(refit.maps()["data"], other.tracer_map)
    with pytest.raises(ValueError, match="shape"):
        fitter.fit({"metallicity": np.zeros((5, 5))})
    with pytest.raises(ValueError, match="no likelihood"):
        fitter.fit({"velocity": other.tracer_map})


def test_fitter_with_data_compiled_in_samples_the_conjugate_posterior_and_refuses_new_data():
    """swappable_data=False, jitter=False: same posterior as the conjugate answer; new data
    raise instead of being silently ignored."""
    rng = np.random.default_rng(5)
    sigma = np.full((5, 5), 0.2)
    data = 8.3 + sigma * rng.normal(size=sigma.shape)
    model, mean, sd = constant_model(data, sigma)
    fitter = pmt.Fitter(model, backend="jax", swappable_data=False, jitter=False)
    result = fitter.fit(draws=400, tune=300, chains=2, progressbar=False, random_seed=2)
    draws = result.idata.posterior["c"].values.ravel()
    assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(200)
    assert draws.std() == pytest.approx(sd, rel=0.15)
    with pytest.raises(ValueError, match="swappable_data=False"):
        fitter.fit({"z": (data + 0.1, sigma)}, draws=10, tune=10)


def test_fitter_starts_unjittered_chains_at_given_initial_points():
    rng = np.random.default_rng(6)
    sigma = np.full((5, 5), 0.2)
    data = 8.3 + sigma * rng.normal(size=sigma.shape)
    model, mean, sd = constant_model(data, sigma)
    with pytest.raises(ValueError, match=r"initial_points names \['cc'\].*\['c'\]"):
        pmt.Fitter(model, backend="jax", jitter=False, initial_points={"cc": 8.0})
    fitter = pmt.Fitter(model, backend="jax", jitter=False, initial_points={"c": mean + 0.3})
    result = fitter.fit(draws=200, tune=200, chains=1, progressbar=False, random_seed=3)
    assert abs(result.idata.posterior["c"].values.mean() - mean) < 5 * sd


def test_map_start_reaches_nutpie():
    """pm.sample drops initvals for nutpie (with a warning): map_start goes through the
    Fitter, which hands the MAP point to nutpie's compiler, unjittered."""
    galaxy = tiny_galaxy(seed=5)
    model = gradient_model(*galaxy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pmt.fit(model, draws=30, tune=30, map_start=True, progressbar=False, random_seed=2)
    assert not [w for w in caught if "initvals" in str(w.message)]
    assert result.config["map_start"] is True
    assert result.idata.posterior.sizes["draw"] == 30
