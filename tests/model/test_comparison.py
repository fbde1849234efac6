"""Model comparison: LOO/WAIC tables at pixel and galaxy level, Pareto-k, BIC."""

import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr

import pymc_tracers as pmt
from pymc_tracers.model.comparison import ParetoKWarning, pointwise_log_likelihood


def _sample(model, seed):
    with model:
        idata = pm.sample(
            draws=500,
            tune=500,
            chains=2,
            cores=1,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
        pm.compute_log_likelihood(idata, progressbar=False)
    return idata


def _result(idata, n, free):
    """A Result with the configuration pmt.fit would store for a 1-D likelihood ``y``."""
    config = {
        "likelihoods": {"y": {"kind": "tracer", "shape": [n], "n_used": n, "n_total": n}},
        "free_parameters": free,
    }
    return pmt.Result(idata, config)


#: The tests of the module fixture below run on one xdist worker (``--dist loadgroup`` in
#: pyproject.toml): a module fixture is built on each worker that runs one of its tests
#: (this one: two fits, ~5-6 s).
LINE_FITS_GROUP = pytest.mark.xdist_group("comparison_line_fits")


@pytest.fixture(scope="module")
def line_fits():
    """Data from a line; a line model and a constant model of them."""
    rng = np.random.default_rng(7)
    x = np.linspace(-1, 1, 40)
    y = 0.3 + 0.8 * x + 0.2 * rng.normal(size=x.size)
    with pm.Model() as line:
        a = pm.Normal("a", 0, 2)
        b = pm.Normal("b", 0, 2)
        pm.Normal("y", a + b * x, 0.2, observed=y)
    with pm.Model() as flat:
        a = pm.Normal("a", 0, 2)
        pm.Normal("y", a + 0 * x, 0.2, observed=y)
    return (
        _result(_sample(line, 1), x.size, {"a": 1, "b": 1}),
        _result(_sample(flat, 2), x.size, {"a": 1}),
    )


@LINE_FITS_GROUP
def test_loo_prefers_the_true_model_and_reports_diagnostics(line_fits):
    line, flat = line_fits
    table = pmt.compare({"constant": flat, "line": line})
    assert table.index[0] == "line"
    # elpd difference far beyond its standard error
    assert table.loc["constant", "elpd_diff"] > 5 * table.loc["constant", "dse"]
    for column in ["n_points", "n_pareto_k_bad", "pareto_k_max", "bic"]:
        assert column in table.columns
    assert (table["n_points"] == 40).all()
    assert (table["n_pareto_k_bad"] == 0).all()
    # the bic column is pmt.bic, and BIC agrees with LOO here
    assert table.loc["line", "bic"] == pytest.approx(pmt.bic(line))
    assert pmt.delta_bic(flat, line) > 10

    waic = pmt.compare({"constant": flat, "line": line}, ic="waic")
    assert waic.index[0] == "line"
    assert "elpd_waic" in waic.columns

    # the loo column is ArviZ's own estimate on the same log-likelihoods
    reference = az.loo(line.idata)
    assert table.loc["line", "elpd_loo"] == pytest.approx(reference.elpd_loo, rel=1e-10)


@LINE_FITS_GROUP
def test_bad_arguments_raise(line_fits):
    line, flat = line_fits
    with pytest.raises(ValueError, match="level must be one of"):
        pmt.compare({"a": line, "b": flat}, level="pixels")
    with pytest.raises(ValueError, match="ic must be 'loo' or 'waic'"):
        pmt.compare({"a": line, "b": flat}, ic="bic")
    with pytest.raises(ValueError, match="at least two fits"):
        pmt.compare({"a": line})
    # a 1-D likelihood of known shape holds no galaxy axis: say how to label it
    with pytest.raises(ValueError, match="galaxy_of="):
        pmt.compare({"a": line, "b": flat}, level="galaxy")


def _population_idata(rng, shape=(4, 5, 6), n_chain=2, n_draw=60, models=2):
    """Synthetic fits of a batched population: two pixel likelihoods and a covariate term."""
    n_gal = shape[0]
    size = int(np.prod(shape))
    used = {
        "metallicity": np.sort(rng.choice(size, size=70, replace=False)),
        "light": np.sort(rng.choice(size, size=90, replace=False)),
    }
    results = []
    for m in range(models):
        ll = {}
        for name, index in used.items():
            ll[name] = xr.DataArray(
                rng.normal(-1.0 - 0.1 * m, 0.3, size=(n_chain, n_draw, index.size)),
                dims=("chain", "draw", f"{name}_pixel"),
                coords={f"{name}_pixel": index},
            )
        ll["mass_observed"] = xr.DataArray(
            rng.normal(-0.5, 0.1, size=(n_chain, n_draw, n_gal)), dims=("chain", "draw", "galaxy")
        )
        posterior = xr.Dataset(
            {"slope": (("chain", "draw"), rng.normal(size=(n_chain, n_draw)))},
            coords={"chain": np.arange(n_chain), "draw": np.arange(n_draw)},
        )
        idata = az.InferenceData(posterior=posterior, log_likelihood=xr.Dataset(ll))
        config = {
            "likelihoods": {
                name: {
                    "kind": "tracer",
                    "shape": list(shape),
                    "batched": True,
                    "n_used": int(index.size),
                    "n_total": size,
                }
                for name, index in used.items()
            },
        }
        results.append(pmt.Result(idata, config))
    return results, used


def test_galaxy_level_sums_each_galaxys_pixels(rng):
    shape = (4, 5, 6)
    (result, _), used = _population_idata(rng, shape)
    grouped = pointwise_log_likelihood(result, level="galaxy")
    assert grouped.dims == ("chain", "draw", "galaxy")
    # independent reference: loop over galaxies and pixels with explicit (g, y, x) indices
    ll = result.idata.log_likelihood
    expected = np.zeros((2, 60, shape[0]))
    for name, index in used.items():
        for k, flat in enumerate(index):
            g = flat // (shape[1] * shape[2])
            expected[:, :, g] += ll[name].values[:, :, k]
    expected += ll["mass_observed"].values
    np.testing.assert_allclose(grouped.values, expected, rtol=1e-12)

    only_light = pointwise_log_likelihood(result, level="galaxy", var_name="light")
    ref_light = np.zeros((2, 60, shape[0]))
    for k, flat in enumerate(used["light"]):
        ref_light[:, :, flat // 30] += ll["light"].values[:, :, k]
    np.testing.assert_allclose(only_light.values, ref_light, rtol=1e-12)

    pixels = pointwise_log_likelihood(result, level="pixel")
    assert pixels.sizes["observation"] == 70 + 90 + shape[0]
    np.testing.assert_allclose(pixels.values.sum(-1), expected.sum(-1), rtol=1e-12)


def test_galaxy_level_compare_is_loo_over_galaxies(rng):
    (a, b), _ = _population_idata(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParetoKWarning)
        table = pmt.compare({"a": a, "b": b}, level="galaxy")
    assert (table["n_points"] == 4).all()
    assert np.isnan(table["bic"]).all()  # no free-parameter counts in these configs
    manual = az.InferenceData(
        posterior=a.idata.posterior,
        log_likelihood=xr.Dataset({"g": pointwise_log_likelihood(a, level="galaxy")}),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert table.loc["a", "elpd_loo"] == pytest.approx(az.loo(manual).elpd_loo, rel=1e-10)


def test_loop_form_needs_galaxy_labels(rng):
    """One 2-D likelihood per galaxy: galaxy_of maps likelihood names to galaxies."""
    ll, config = {}, {"likelihoods": {}}
    for g in range(3):
        for kind in ("light", "metallicity"):
            name = f"{kind}_{g}"
            ll[name] = xr.DataArray(
                rng.normal(size=(2, 30, 12)),
                dims=("chain", "draw", f"{name}_pixel"),
                coords={f"{name}_pixel": np.arange(12) * 2},
            )
            config["likelihoods"][name] = {
                "kind": "tracer",
                "shape": [5, 5],
                "n_used": 12,
                "n_total": 25,
            }
    posterior = xr.Dataset({"s": (("chain", "draw"), rng.normal(size=(2, 30)))})
    result = pmt.Result(
        az.InferenceData(posterior=posterior, log_likelihood=xr.Dataset(ll)), config
    )
    with pytest.raises(ValueError, match="galaxy_of"):
        pointwise_log_likelihood(result, level="galaxy")
    galaxy_of = {f"{kind}_{g}": g for g in range(3) for kind in ("light", "metallicity")}
    grouped = pointwise_log_likelihood(result, level="galaxy", galaxy_of=galaxy_of)
    for g in range(3):
        expected = ll[f"light_{g}"].values.sum(-1) + ll[f"metallicity_{g}"].values.sum(-1)
        np.testing.assert_allclose(grouped.values[:, :, g], expected, rtol=1e-12)


def test_pareto_k_problems_are_surfaced(rng):
    """A few points whose log-likelihood varies wildly between draws get k > 0.7."""
    results = []
    for m in range(2):
        values = rng.normal(-1.0, 0.05, size=(2, 100, 30))
        values[..., :3] = -np.exp(rng.normal(0, 4.0, size=(2, 100, 3)))  # heavy-tailed terms
        ll = xr.Dataset({"y": (("chain", "draw", "y_dim"), values)})
        posterior = xr.Dataset({"s": (("chain", "draw"), rng.normal(size=(2, 100)))})
        results.append(az.InferenceData(posterior=posterior, log_likelihood=ll))
    with pytest.warns(ParetoKWarning, match="Pareto k > 0.7"):
        table = pmt.compare({"a": results[0], "b": results[1]})
    assert (table["n_pareto_k_bad"] >= 1).all()
    assert (table["pareto_k_max"] > 0.7).all()


def test_different_data_cannot_be_compared(rng):
    (a, _), _ = _population_idata(rng)
    (c, _), _ = _population_idata(rng, shape=(5, 5, 6))
    with pytest.raises(ValueError, match="different numbers of galaxies"):
        pmt.compare({"a": a, "c": c}, level="galaxy")


def test_compare_is_a_function_and_comparison_the_module():
    import pymc_tracers.model.comparison as module

    assert callable(pmt.compare) and pmt.compare is module.compare
    assert pmt.bic is module.bic and pmt.delta_bic is module.delta_bic
    with pytest.raises(ImportError):
        import pymc_tracers.compare  # noqa: F401  (the clashing module is gone)


def test_galaxy_level_on_a_batched_likelihood_matches_scipy():
    """Real coordinates of a batched pmt likelihood: per-galaxy sums equal scipy's logpdf."""
    from scipy import stats

    grid = pmt.PixelGrid((9, 9), pixel_scale=0.2)
    psfs = [pmt.GaussianPSF(fwhm=f) for f in (0.3, 0.4, 0.5)]
    r_eff = np.array([0.4, 0.5, 0.6])
    truth = pmt.Component(
        pmt.Exponential(r_eff=r_eff),
        pmt.LinearGradient(central=np.full(3, 8.5), gradient=np.array([-0.2, -0.1, 0.0])),
    )
    _, z_true = pmt.evaluate(pmt.observe(truth, grid, psfs, "linear"))
    rng = np.random.default_rng(3)
    data = z_true + 0.05 * rng.normal(size=z_true.shape)
    data[1, :2, :] = np.nan  # galaxy 1 loses two rows
    data[2, 4, 4] = np.nan
    with pm.Model(coords={"galaxy": range(3)}) as model:
        gradient = pm.Normal("gradient", -0.1, 0.1, dims="galaxy")
        central = pm.Normal("central", 8.5, 0.05, dims="galaxy")
        disc = pmt.Component(
            pmt.Exponential(r_eff=r_eff), pmt.LinearGradient(central=central, gradient=gradient)
        )
        _, z = pmt.observe(disc, grid, psfs, "linear")
        pmt.tracer_likelihood("metallicity", z, data, sigma=0.05)
        prior = pm.sample_prior_predictive(20, random_seed=4)
    idata = az.InferenceData(posterior=prior.prior)
    pm.compute_log_likelihood(idata, model=model, progressbar=False)
    result = pmt.Result.from_model(idata, model, map_draws=5)
    grouped = pointwise_log_likelihood(result, level="galaxy")
    assert grouped.sizes["galaxy"] == 3
    for draw in (0, 7):
        values = {v: idata.posterior[v].values[0, draw] for v in ("gradient", "central")}
        model_map = pmt.evaluate(z, values)
        for g in range(3):
            used = np.isfinite(data[g])
            expected = stats.norm.logpdf(data[g][used], model_map[g][used], 0.05).sum()
            assert grouped.values[0, draw, g] == pytest.approx(expected, rel=1e-9)


def test_bic_is_left_out_for_hierarchical_fits_and_says_why(rng):
    """User finding 11: BIC beside galaxy-level LOO pointed the other way without comment. It
    counts every per-galaxy parameter, so it is not shown for hierarchical fits."""
    (a, b), _ = _population_idata(rng)
    config = {**a.config, "free_parameters": {"slope": 1}, "max_log_likelihood": -100.0}
    flat = pmt.Result(a.idata, config)  # no per-galaxy parameters: BIC is shown
    assert np.isfinite(pmt.bic(flat))
    per_galaxy = b.idata.posterior.assign(
        gradient=(("chain", "draw", "galaxy"), rng.normal(size=(2, 60, 4)))
    )
    hierarchical = pmt.Result(
        az.InferenceData(posterior=per_galaxy, log_likelihood=b.idata.log_likelihood),
        {**b.config, "free_parameters": {"slope": 1, "gradient": 4}, "max_log_likelihood": -99.0},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParetoKWarning)
        table = pmt.compare({"flat": flat, "hierarchical": hierarchical}, level="galaxy")
    assert np.isfinite(table.loc["flat", "bic"])
    assert np.isnan(table.loc["hierarchical", "bic"])
    assert "['hierarchical']" in table.attrs["bic_note"] and "pools" in table.attrs["bic_note"]
