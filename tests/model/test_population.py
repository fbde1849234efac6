"""Population helpers: prior moments against analytic values, recovery, validation, units, plots."""

import json
import warnings

import matplotlib
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import integrate

import pymc_tracers as pmt
from pymc_tracers import plotting  # noqa: F401  (pmt.plotting)
from pymc_tracers.model import population as P

matplotlib.use("Agg")

N_DRAWS = 20000


def _check_moments(draws, mean, sd, n_sigma=5.0):
    """Sample mean and sd of each column against analytic values, within MC error."""
    draws = np.asarray(draws)
    n = draws.shape[0]
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), n_sigma * sd / np.sqrt(n))
    # the sd of a normal sample's sd is sd / sqrt(2n)
    np.testing.assert_array_less(np.abs(draws.std(0) - sd), n_sigma * sd / np.sqrt(2 * n))


# ---------------------------------------------------------------------------- prior moments
@pytest.mark.parametrize("centered", [False, True])
def test_linear_relation_prior_moments(centered):
    x = np.array([8.6, 9.3, 10.0, 10.4, 11.2])
    a, b, s, c, pivot = -0.03, -0.015, 0.04, -0.3, 10.0
    with pm.Model():
        y = P.linear_relation(
            "y", x, intercept=a, slope=b, scatter=s, scatter_slope=c, pivot=pivot, centered=centered
        )
    draws = pm.draw(y, N_DRAWS, random_seed=1)
    _check_moments(draws, a + b * (x - pivot), s * 10 ** (c * (x - pivot)))


def test_relation_pivot_defaults_to_the_covariate_median_and_is_recorded():
    x = np.array([9.12, 9.7, 10.26, 10.5, 11.0])
    a, b, s = -0.03, -0.015, 0.04
    with pm.Model() as model:
        y = P.linear_relation("y", x, intercept=a, slope=b, scatter=s)
    assert float(model["y_pivot"].get_value()) == pytest.approx(10.3)
    _check_moments(pm.draw(y, N_DRAWS, random_seed=4), a + b * (x - 10.3), s)


def test_relation_pivot_far_from_the_sample_warns_and_is_used():
    x = np.array([9.2, 9.7, 10.3, 10.5, 11.0])
    with pm.Model() as model:
        with pytest.warns(UserWarning, match=r"y: pivot=0 lies .* standard deviations"):
            y = P.linear_relation("y", x, intercept=0.1, slope=0.01, scatter=0.01, pivot=0.0)
    assert float(model["y_pivot"].get_value()) == 0.0
    _check_moments(pm.draw(y, N_DRAWS, random_seed=5), 0.1 + 0.01 * x, 0.01)


def test_default_pivot_decorrelates_intercept_and_slope():
    """Posterior of a line through 8 precise points: r(intercept, slope) ~ -mean(d)/rms(d)."""
    x = np.array([9.1, 9.4, 9.8, 10.1, 10.3, 10.6, 10.9, 11.2])
    rng = np.random.default_rng(0)
    y_obs = -0.02 - 0.015 * (x - 10.0) + 0.005 * rng.normal(size=x.size)
    correlations = {}
    for pivot in (0.0, None):
        with pm.Model(coords={"galaxy": np.arange(x.size)}) as model:
            intercept = pm.Normal("intercept", 0.0, 1.0)
            slope = pm.Normal("slope", 0.0, 1.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                y = P.linear_relation(
                    "y",
                    x,
                    intercept=intercept,
                    slope=slope,
                    scatter=0.005,
                    pivot=pivot,
                    centered=True,
                )
            pm.Normal("y_obs", y, 0.005, observed=y_obs, dims="galaxy")
        # the Laplace approximation at the MAP: the posterior correlation of a linear model
        with model:
            point = pm.find_MAP(progressbar=False)
            hessian = pm.find_hessian(point, vars=[intercept, slope])
        covariance = np.linalg.inv(hessian)
        correlations[pivot] = covariance[0, 1] / np.sqrt(covariance[0, 0] * covariance[1, 1])
    assert correlations[0.0] < -0.99
    assert abs(correlations[None]) < 0.2


def test_hierarchical_normal_marginals_and_correlation():
    """mu ~ N(m0, s0), y_i = mu + tau eps_i: var y_i = s0^2 + tau^2, cov(y_i, y_j) = s0^2."""
    m0, s0, tau = 0.2, 0.3, 0.4
    for centered in (False, True):
        with pm.Model(coords={"galaxy": ["a", "b", "c"]}):
            mu = pm.Normal("mu", m0, s0)
            y = P.hierarchical_normal("y", mu, tau, centered=centered)
        draws = pm.draw(y, N_DRAWS, random_seed=2)
        _check_moments(draws, m0, np.hypot(s0, tau))
        corr = np.corrcoef(draws.T)[0, 1]
        assert abs(corr - s0**2 / (s0**2 + tau**2)) < 0.03


def test_latent_covariates_propagate_into_the_relation():
    """x ~ N(mx, sx), x_obs ~ N(x, e), y = a + b (x - p) + s eps."""
    x_obs = np.array([9.0, 9.5, 10.0, 10.5])
    mx, sx, e, a, b, s, p = 10.0, 0.5, 0.2, 0.1, -0.2, 0.05, 10.0
    with pm.Model() as model:
        y = P.linear_relation(
            "y",
            x_obs,
            intercept=a,
            slope=b,
            scatter=s,
            pivot=p,
            covariate_error=e,
            covariate_prior=(mx, sx),
        )
    measured = model["y_covariate_observed"]
    y_draws, x_draws = pm.draw([y, measured], N_DRAWS, random_seed=3)
    _check_moments(y_draws, a + b * (mx - p), np.sqrt(b**2 * sx**2 + s**2))
    _check_moments(x_draws, mx, np.hypot(sx, e))
    cov = np.mean((y_draws - y_draws.mean(0)) * (x_draws - x_draws.mean(0)), axis=0)
    np.testing.assert_allclose(
        cov, b * sx**2, atol=5 * abs(b) * sx**2 * np.sqrt(2 / N_DRAWS) + 2e-3
    )
    # the measurements are observed: they enter the likelihood, the true covariates are free
    assert "y_covariate_observed" in [v.name for v in model.observed_RVs]
    assert "y_covariate" in [v.name for v in model.free_RVs]


def test_quadratic_relation_mean():
    x = np.array([9.0, 10.0, 11.5])
    with pm.Model():
        y = P.quadratic_relation(
            "y", x, intercept=0.1, slope=-0.2, curvature=0.3, scatter=0.01, pivot=10.0
        )
    draws = pm.draw(y, N_DRAWS, random_seed=4)
    d = x - 10.0
    _check_moments(draws, 0.1 - 0.2 * d + 0.3 * d**2, np.full(3, 0.01))


def test_broken_linear_mean_limits():
    """Value at the break is the intercept; far from it the slopes are the two given ones."""
    f = lambda x: P.broken_linear_mean(x, 0.05, -0.3, 0.1, 10.0, 0.1)  # noqa: E731
    assert f(10.0) == pytest.approx(0.05, abs=1e-14)
    h = 1e-3
    assert (f(8.0 + h) - f(8.0 - h)) / (2 * h) == pytest.approx(-0.3, abs=1e-6)
    assert (f(12.0 + h) - f(12.0 - h)) / (2 * h) == pytest.approx(0.1, abs=1e-6)
    # the asymptotic lines meet (slope_high - slope_low) width ln 2 below the intercept
    assert f(12.0) == pytest.approx(0.05 + 0.1 * 2.0 - 0.4 * 0.1 * np.log(2), abs=1e-8)
    # the tensor version (softplus in PyTensor) agrees with the NumPy one
    xt = pt.dvector("x")
    xs = np.linspace(8, 12, 9)
    np.testing.assert_allclose(f(xt).eval({xt: xs}), f(xs), rtol=1e-12)
    x = np.array([9.0, 10.0, 11.0])
    with pm.Model():
        y = P.broken_linear_relation(
            "y",
            x,
            intercept=0.05,
            slope_low=-0.3,
            slope_high=0.1,
            break_point=10.0,
            width=0.1,
            scatter=0.02,
        )
    _check_moments(pm.draw(y, N_DRAWS, random_seed=5), f(x), np.full(3, 0.02))


def test_kwargs_reach_pymc_and_parametrisations_differ():
    x = np.arange(4.0)
    with pm.Model() as model:
        P.linear_relation("y", x, intercept=0.0, slope=1.0, scatter=1.0, initval=np.full(4, 0.5))
        P.linear_relation("z", x, intercept=0.0, slope=1.0, scatter=1.0, centered=True)
    free = {v.name for v in model.free_RVs}
    assert {"y_offset", "z"} <= free and "y" not in free
    assert model.rvs_to_initial_values[model["y_offset"]] is not None
    assert model.named_vars_to_dims["y"] == ("galaxy",)


# ---------------------------------------------------------------------------- validation
def test_nan_covariate_names_the_galaxy():
    with pm.Model(), pytest.raises(ValueError, match="for galaxy 2"):
        P.linear_relation("y", [9.0, 9.5, np.nan, 10.0], intercept=0.0, slope=1.0, scatter=0.1)


def test_covariate_length_must_match_the_galaxy_coordinate():
    with pm.Model(coords={"galaxy": range(5)}):
        with pytest.raises(ValueError, match="covariate has 4 values but .* 5 galaxies"):
            P.linear_relation("y", [9.0, 9.5, 9.7, 10.0], intercept=0.0, slope=1.0, scatter=0.1)
        with pytest.raises(ValueError, match="covariate_error has shape"):
            P.linear_relation(
                "y", np.ones(5), intercept=0.0, slope=1.0, scatter=0.1, covariate_error=np.ones(3)
            )
        with pytest.raises(ValueError, match="mu has shape"):
            P.hierarchical_normal("h", np.zeros(3), 1.0)


def test_other_bad_inputs():
    with pm.Model():
        with pytest.raises(ValueError, match="no 'galaxy' coordinate"):
            P.hierarchical_normal("h", 0.0, 1.0)
        with pytest.raises(ValueError, match="scatter must be finite and > 0"):
            P.linear_relation("y", [1.0, 2.0], intercept=0.0, slope=1.0, scatter=-0.1)
        with pytest.raises(
            ValueError, match="covariate_error must be finite and > 0; got 0.0 for galaxy 1"
        ):
            P.linear_relation(
                "y", [1.0, 2.0], intercept=0.0, slope=1.0, scatter=0.1, covariate_error=[0.1, 0.0]
            )
        with pytest.raises(ValueError, match="must be 1-D"):
            P.linear_relation("y", np.ones((2, 2)), intercept=0.0, slope=1.0, scatter=0.1)
        with pytest.raises(ValueError, match="width must be"):
            P.broken_linear_relation(
                "y",
                [1.0, 2.0],
                intercept=0.0,
                slope_low=1.0,
                slope_high=0.0,
                break_point=1.5,
                width=0.0,
                scatter=0.1,
            )


# ---------------------------------------------------------------------------- recovery
def _simulate(rng, n, truth):
    x = rng.uniform(8.5, 11.0, n)
    sigma = truth["scatter"] * 10 ** (truth.get("scatter_slope", 0.0) * (x - 10.0))
    true = truth["intercept"] + truth["slope"] * (x - 10.0) + sigma * rng.normal(size=n)
    error = rng.uniform(0.01, 0.04, n)
    return x, true, true + error * rng.normal(size=n), error


def test_relation_recovered_from_noisy_gradients():
    """Directly observed noisy gradients (no images): slope, intercept, scatter in 95%."""
    rng = np.random.default_rng(11)
    truth = dict(intercept=-0.02, slope=-0.05, scatter=0.04)
    x, true, observed, error = _simulate(rng, 60, truth)
    with pm.Model():
        intercept = pm.Normal("intercept", 0.0, 0.2)
        slope = pm.Normal("slope", 0.0, 0.2)
        scatter = pm.HalfNormal("scatter", 0.2)
        gradient = P.linear_relation(
            "gradient", x, intercept=intercept, slope=slope, scatter=scatter, pivot=10.0
        )
        pm.Normal("observed", gradient, error, observed=observed, dims="galaxy")
        idata = pm.sample(
            1000,
            tune=1000,
            chains=2,
            cores=1,
            random_seed=12,
            progressbar=False,
            compute_convergence_checks=False,
        )
    post = idata.posterior
    for name, value in truth.items():
        lo, hi = np.percentile(post[name].values, [2.5, 97.5])
        assert lo < value < hi, (name, lo, value, hi)
    # partial pooling: per-galaxy posterior means beat the raw measurements
    mse_joint = np.mean((post["gradient"].mean(("chain", "draw")).values - true) ** 2)
    mse_raw = np.mean((observed - true) ** 2)
    assert mse_joint < mse_raw
    assert int(idata.sample_stats["diverging"].sum()) == 0


@pytest.mark.slow
def test_scatter_slope_and_latent_covariates_recovered():
    """Scatter growing to low mass, masses measured with 0.15 dex errors."""
    rng = np.random.default_rng(21)
    truth = dict(intercept=-0.02, slope=-0.04, scatter=0.03, scatter_slope=-0.3)
    x_true, true, observed, error = _simulate(rng, 150, truth)
    x_obs = x_true + 0.15 * rng.normal(size=x_true.size)
    with pm.Model():
        intercept = pm.Normal("intercept", 0.0, 0.2)
        slope = pm.Normal("slope", 0.0, 0.2)
        scatter = pm.HalfNormal("scatter", 0.2)
        scatter_slope = pm.Normal("scatter_slope", 0.0, 1.0)
        gradient = P.linear_relation(
            "gradient",
            x_obs,
            intercept=intercept,
            slope=slope,
            scatter=scatter,
            scatter_slope=scatter_slope,
            pivot=10.0,
            covariate_error=0.15,
        )
        pm.Normal("observed", gradient, error, observed=observed, dims="galaxy")
        idata = pm.sample(
            1000,
            tune=1000,
            chains=2,
            cores=1,
            random_seed=22,
            progressbar=False,
            compute_convergence_checks=False,
            target_accept=0.9,
        )
    for name, value in truth.items():
        lo, hi = np.percentile(idata.posterior[name].values, [2.5, 97.5])
        assert lo < value < hi, (name, lo, value, hi)


# ---------------------------------------------------------------------------- units
def test_arcsec_per_kpc_matches_a_direct_integral():
    """Flat LCDM without radiation: D_A = c/H0/(1+z) int dz/E(z), against astropy."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3, Tcmb0=0.0)
    z = np.array([0.1, 0.5, 1.0, 2.5])
    c_km_s = 299792.458
    d_c = [
        integrate.quad(
            lambda t: 1 / np.sqrt(0.3 * (1 + t) ** 3 + 0.7), 0, zi, epsabs=0, epsrel=1e-12
        )[0]
        for zi in z
    ]
    d_a_kpc = c_km_s / 70.0 * np.array(d_c) / (1 + z) * 1e3
    expected = 180 / np.pi * 3600 / d_a_kpc
    np.testing.assert_allclose(
        pmt.cosmology.arcsec_per_kpc(z, cosmology=cosmo), expected, rtol=1e-8
    )
    # gradients: dex/arcsec x arcsec/kpc, for numbers and tensors alike
    g = np.array([-0.1, -0.2, 0.05, 0.0])
    per_kpc = pmt.cosmology.gradient_per_kpc(g, redshift=z, cosmology=cosmo)
    np.testing.assert_allclose(per_kpc, g * expected, rtol=1e-8)
    gt = pt.dvector("g")
    tensor = pmt.cosmology.gradient_per_kpc(gt, redshift=z, cosmology=cosmo)
    np.testing.assert_allclose(tensor.eval({gt: g}), per_kpc, rtol=1e-12)


def test_cosmology_config_round_trips_through_json():
    from astropy.cosmology import WMAP9, FlatLambdaCDM, Planck18

    for cosmo in (Planck18, WMAP9, FlatLambdaCDM(H0=70.0, Om0=0.3, Tcmb0=2.7, name="mine")):
        config = json.loads(json.dumps(pmt.cosmology.cosmology_config(cosmo)))
        rebuilt = pmt.cosmology.cosmology_from_config(config)
        assert rebuilt.name == cosmo.name
        np.testing.assert_allclose(
            rebuilt.arcsec_per_kpc_proper([0.3, 2.0]).value,
            cosmo.arcsec_per_kpc_proper([0.3, 2.0]).value,
            rtol=1e-12,
        )
    assert pmt.cosmology.cosmology_from_config(pmt.cosmology.cosmology_config()) is Planck18
    assert pmt.cosmology.get_cosmology(None) is Planck18


def test_bad_redshifts_and_cosmologies():
    with pytest.raises(ValueError, match=r"got nan \(galaxy 1\)"):
        pmt.cosmology.arcsec_per_kpc([0.5, np.nan])
    with pytest.raises(ValueError, match="> 0; got 0.0"):
        pmt.cosmology.arcsec_per_kpc(0.0)
    with pytest.raises(ValueError, match="unknown cosmology 'Planck99'"):
        pmt.cosmology.arcsec_per_kpc(1.0, cosmology="Planck99")


def test_gradients_in_dex_per_kpc_inside_a_model():
    z = np.array([0.5, 1.0, 2.0])
    with pm.Model(coords={"galaxy": range(3)}):
        g = P.hierarchical_normal("gradient", -0.1, 0.01)
        per_kpc = pm.Deterministic(
            "gradient_kpc", pmt.cosmology.gradient_per_kpc(g, redshift=z), dims="galaxy"
        )
    a, b = pm.draw([g, per_kpc], 10, random_seed=6)
    np.testing.assert_allclose(b, a * pmt.cosmology.arcsec_per_kpc(z), rtol=1e-12)


# ---------------------------------------------------------------------------- plots
def test_population_plots_from_arrays_and_idata():
    import arviz as az

    rng = np.random.default_rng(5)
    n, s = 12, 400
    x = np.linspace(9, 11, n)
    truth = dict(intercept=-0.02, slope=-0.05)
    true = truth["intercept"] + truth["slope"] * (x - 10)
    post = {
        "intercept": rng.normal(-0.02, 0.005, s),
        "slope": rng.normal(-0.05, 0.005, s),
        "scatter": np.abs(rng.normal(0.03, 0.005, s)),
        "gradient": true + rng.normal(0, 0.01, (s, n)),
    }
    fig = pmt.plotting.plot_relation(
        post,
        x,
        params=dict(intercept="intercept", slope="slope", pivot=10.0),
        scatter="scatter",
        truth=truth,
        y_true=true,
        xlabel="log M*",
    )
    ax = fig.axes[0]
    # the median relation line passes through the posterior median intercept at the pivot
    line = [ln for ln in ax.lines if ln.get_label() == "posterior median relation"][0]
    xs, ys = line.get_data()
    assert np.interp(10.0, xs, ys) == pytest.approx(np.median(post["intercept"]), abs=2e-3)

    idata = az.from_dict(
        posterior={k: v[None] for k, v in post.items()}, dims={"gradient": ["galaxy"]}
    )
    independent = [true[i] + rng.normal(0, 0.03, 300) for i in range(n)]
    fig = pmt.plotting.plot_shrinkage(independent, idata, truth=true, covariate=x)
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("hierarchical fit (MSE") for label in labels)
    with pytest.raises(ValueError, match="3 independent fits but 12 galaxies"):
        pmt.plotting.plot_shrinkage(independent[:3], idata)
    with pytest.raises(ValueError, match="relation must be one of"):
        pmt.plotting.plot_relation(post, x, relation="cubic")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_population_plot_with_a_warning_free_broken_relation():
    rng = np.random.default_rng(6)
    x = np.linspace(9, 11, 8)
    post = {
        k: rng.normal(v, 0.01, 200)
        for k, v in dict(intercept=0.0, slope_low=-0.1, slope_high=0.05, break_point=10.0).items()
    }
    post["gradient"] = rng.normal(0, 0.02, (200, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = pmt.plotting.plot_relation(
            post,
            x,
            relation="broken_linear",
            params=dict(
                intercept="intercept",
                slope_low="slope_low",
                slope_high="slope_high",
                break_point="break_point",
                width=0.1,
            ),
        )
    assert fig.axes


# ---------------------------------------------------------------------------- simulated sample
def test_population_sample_varies_and_is_padded_consistently():
    from pymc_tracers.simulate_population import population_sample

    sample = population_sample(12, seed=4, stamp_sizes=(15, 21), supersampling=1)
    n = sample.n_galaxies
    assert sample.tracer_map.shape == (n, 21, 21) == sample.light_image.shape
    # stamps, sizes, PSFs and S/N vary; some galaxies are masked
    sizes = set(sample.stamp_shape[:, 0])
    assert len(sizes) > 1 and sizes <= {15, 17, 19, 21}
    assert np.ptp(sample.r_eff) > 0.05 and np.ptp(sample.fwhm) > 0.05
    assert 0 < sample.extra["masked"].sum() < n
    for i in range(n):
        sy, sx = sample.stamp(i)
        outside = np.ones(sample.grid.shape, bool)
        outside[sy, sx] = False
        assert np.isnan(sample.light_image[i][outside]).all()  # padding left out
        assert np.isnan(sample.tracer_map[i][outside]).all()
        inside = sample.light_image[i][sy, sx]
        assert np.isfinite(inside).sum() >= inside.size - 40  # only a masked star is NaN
        # the S/N cut: metallicity only where the noiseless light is detected at >= 3 sigma
        used = np.isfinite(sample.tracer_map[i])
        assert (sample.true_light_image[i][used] / sample.light_error[i][used] >= 3).all()
        assert used.sum() > 10
    # gradients: dex/kpc from the relation, converted with each galaxy's angular scale
    np.testing.assert_allclose(sample.gradient * sample.arcsec_per_kpc, sample.gradient_kpc)
    residual = sample.gradient_kpc - (
        sample.truth["intercept"]
        + sample.truth["slope"] * (sample.log_mass - sample.truth["pivot"])
    )
    assert 0.3 * sample.truth["scatter"] < residual.std() < 3 * sample.truth["scatter"]
    # the maps are the batched forward model of the truth
    np.testing.assert_allclose(
        np.nanmedian(sample.tracer_map - sample.true_tracer_map), 0, atol=0.02
    )
    sub = sample.subset([1, 3])
    assert sub.n_galaxies == 2 and sub.psfs[1] is sample.psfs[3]
    np.testing.assert_array_equal(sub.tracer_map[1], sample.tracer_map[3])
    assert sub.extra["snr"][1] == sample.extra["snr"][3]
    json.dumps(sample.config())


def _assert_population_recovered(n_galaxies, seed, draws, **sample_kwargs):
    """Fit the joint and independent models and assert: slope, intercept and scatter inside
    their 95% intervals, smaller per-galaxy MSE for the joint model, divergences rare."""
    from pymc_tracers.simulate_population import population_model, population_sample

    sample = population_sample(n_galaxies, seed=seed, **sample_kwargs)
    fits = {}
    for pooling in ("relation", "none"):
        model = population_model(sample, pooling=pooling)
        with model, warnings.catch_warnings():
            warnings.simplefilter("ignore", pmt.ConvergenceWarning)
            fits[pooling] = pmt.fit(
                draws=draws,
                tune=draws,
                chains=2,
                progressbar=False,
                random_seed=seed,
                log_likelihood=False,
                map_draws=10,
            )
    joint = fits["relation"]
    for name in ("intercept", "slope", "scatter"):
        lo, hi = joint.percentiles(name, (2.5, 97.5))
        assert lo < sample.truth[name] < hi, (name, lo, sample.truth[name], hi)
    means = {
        p: r.idata.posterior["gradient_kpc"].mean(("chain", "draw")).values for p, r in fits.items()
    }
    mse = {p: float(np.mean((m - sample.gradient_kpc) ** 2)) for p, m in means.items()}
    assert mse["relation"] < mse["none"], mse  # shrinkage towards the relation helps
    # a systematic geometry problem (a funnel) diverges often (tens of 600); isolated
    # divergences in a tail come and go with the seed and round-off (the same logp to 1e-12
    # gave 0 and 1 of 600; seeds 5, 6, 7 of the reduced sample gave 4, 0, 0)
    n_draws = joint.idata.posterior.sizes["chain"] * joint.idata.posterior.sizes["draw"]
    assert joint.diagnostics()["divergences"] <= 0.01 * n_draws
    return sample, fits


SMALL = dict(stamp_sizes=(15, 19), r_eff_range=(0.15, 0.35), fwhm_range=(0.1, 0.3), supersampling=1)


def test_population_recovery_reduced_sample():
    """10 galaxies on small stamps: relation in 95% intervals, shrinkage lowers the MSE."""
    _assert_population_recovered(10, seed=5, draws=300, **SMALL)


@pytest.mark.slow
def test_population_recovery_full_sample():
    """30 galaxies, 17-23 pixel stamps, supersampling 2 (the notebook's sample)."""
    _assert_population_recovered(
        30, seed=1, draws=500, stamp_sizes=(17, 23), r_eff_range=(0.15, 0.35), fwhm_range=(0.1, 0.3)
    )
