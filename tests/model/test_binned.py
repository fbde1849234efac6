"""Binned (Voronoi) tracer likelihoods: bin sums against numpy, recovery, and the unbinned bias."""

import warnings

import numpy as np
import pymc as pm
import pytensor
import pytest

import pymc_tracers as pmt
from pymc_tracers import io
from pymc_tracers.model.binned import (
    bin_sums,
    binned_likelihoods_of,
    binned_tracer,
    binned_tracer_likelihood,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # vorbin announces its successor at import
    from vorbin.voronoi_2d_binning import voronoi_2d_binning


def voronoi_bins(image, *, target_sn, floor=1e-2, noise_fraction=0.1):
    """Voronoi bins (vorbin) of the pixels brighter than ``floor`` x the peak; -1 elsewhere."""
    y, x = np.indices(image.shape)
    use = image > floor * image.max()
    noise = noise_fraction * np.sqrt(image[use] * image.max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        number, *_ = voronoi_2d_binning(
            x[use].astype(float),
            y[use].astype(float),
            image[use],
            noise,
            target_sn,
            plot=False,
            quiet=True,
        )
    bins = np.full(image.shape, -1)
    bins[use] = number
    return bins


def brute_force_bins(weighted, light, bins):
    """Loop over bins: sum of weighted over sum of light (independent of io's bincount)."""
    out = []
    for b in np.unique(bins[bins >= 0]):
        inside = bins == b
        out.append(weighted[inside].sum() / light[inside].sum())
    return np.array(out)


LIGHT = pmt.Exponential(r_eff=1.0, amplitude=1.0)
TRUTH = {"central": 8.0, "gradient": -0.2}


def setup(n=15, scale="linear", fwhm=0.6, target_sn=30):
    grid = pmt.PixelGrid((n, n), 5.0 / n, 1)
    psf = pmt.GaussianPSF(fwhm=fwhm)
    obs = pmt.observe(
        pmt.Component(LIGHT, pmt.LinearGradient(**TRUTH)), grid, psf, tracer_scale=scale
    )
    image, weighted, light = pmt.evaluate([obs.image, obs.weighted_sum, obs.light_sum])
    bins = voronoi_bins(image, target_sn=target_sn)
    return grid, psf, weighted, light, bins


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_bin_values_match_numpy_brute_force(scale):
    grid, psf, _, _, _ = setup(n=21, scale=scale, target_sn=15)
    with pm.Model():
        gradient = pm.Normal("gradient", 0.0, 0.5)
        obs = pmt.observe(
            pmt.Component(
                pmt.Sersic(r_eff=0.8, n=1.5, q=0.7, phi=0.4, amplitude=2.0),
                pmt.LinearGradient(central=8.3, gradient=gradient),
            ),
            grid,
            psf,
            tracer_scale=scale,
            method="full",
        )
        image, weighted, light = pmt.evaluate(
            [obs.image, obs.weighted_sum, obs.light_sum], gradient=-0.3
        )
        bins = voronoi_bins(image, target_sn=15)
        assert len(io.bin_ids(bins)) > 5
        got = pmt.evaluate(binned_tracer(obs, bins), gradient=-0.3)
    reference = io.bin_average_numpy(weighted, light, bins)
    np.testing.assert_allclose(reference, brute_force_bins(weighted, light, bins), rtol=1e-12)
    expected = np.log10(reference) if scale == "log" else reference
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # not the mean of pixel ratios: that differs (the test can fail)
    ratio = weighted / light
    mean_of_ratios = np.array([ratio[bins == b].mean() for b in io.bin_ids(bins)])
    if scale == "log":
        mean_of_ratios = np.log10(mean_of_ratios)
    assert np.abs(mean_of_ratios - expected).max() > 1e-4


def test_bin_sums_and_gradient():
    rng = np.random.default_rng(3)
    bins = rng.integers(-1, 5, size=(6, 7))
    values = rng.normal(size=(2, 6, 7))
    import pytensor.tensor as pt

    v = pt.tensor3("v")
    sums = pytensor.function([v], bin_sums(v, bins))(values)
    for k, b in enumerate(io.bin_ids(bins)):
        np.testing.assert_allclose(sums[:, k], values[:, bins == b].sum(axis=1), rtol=1e-13)
    # gradient of a weighted sum of bin sums: each pixel gets its bin's weight
    pytensor.gradient.verify_grad(lambda t: bin_sums(t, bins) ** 2, [values[0]], rng=rng)


def test_per_bin_inputs_and_errors():
    grid, psf, _, _, bins = setup()
    ids = io.bin_ids(bins)
    obs = pmt.observe(pmt.Component(LIGHT, pmt.LinearGradient(**TRUTH)), grid, psf)
    by_id = np.full(ids.max() + 1, np.nan)
    by_id[ids] = 8.0 + 0.01 * ids
    data_map = np.where(bins >= 0, by_id[np.clip(bins, 0, None)], np.nan)
    for data in (by_id, data_map):
        with pm.Model() as model:
            binned_tracer_likelihood("Z", obs, data, bins, sigma=0.05)
        np.testing.assert_allclose(model["Z_observed"].get_value(), by_id[ids])
        assert list(model.coords["Z_bin"]) == list(ids)
        (record,) = binned_likelihoods_of(model)
        np.testing.assert_allclose(record.data[bins >= 0], data_map[bins >= 0])
        assert record.used.sum() == (bins >= 0).sum()
    # NaN bins are left out
    partial = by_id.copy()
    partial[ids[0]] = np.nan
    with pm.Model() as model:
        binned_tracer_likelihood("Z", obs, partial, bins, sigma=0.05)
    assert ids[0] not in model.coords["Z_bin"]

    noisy = data_map.copy()
    noisy[bins == ids[1]] += np.linspace(0, 0.1, (bins == ids[1]).sum())
    cases = [
        (noisy, 0.05, "hold different values"),
        (by_id[:2], 0.05, "indexed by bin id"),
        (by_id, 0.0, "sigma for 'Z' is not finite and > 0"),
        (by_id, -np.ones_like(by_id), "not finite and > 0"),
        (np.where(np.isfinite(by_id), np.inf, np.nan), 0.05, "infinite"),
        (np.ones((3, 3)), 0.05, "has shape"),
    ]
    for data, sigma, match in cases:
        with pm.Model(), pytest.raises(ValueError, match=match):
            binned_tracer_likelihood("Z", obs, data, bins, sigma=sigma)
    with pm.Model(), pytest.raises(ValueError, match="bin map of 'Z' has shape"):
        binned_tracer_likelihood("Z", obs, by_id, bins[:-1], sigma=0.05)
    with pm.Model(), pytest.raises(ValueError, match="no bins"):
        binned_tracer_likelihood("Z", obs, by_id, -np.ones_like(bins), sigma=0.05)
    with pm.Model(), pytest.raises(TypeError, match="Observation"):
        binned_tracer_likelihood("Z", (obs[0], obs[1]), by_id, bins, sigma=0.05)


def simulated_binned_data(n, scale, seed, sigma=0.01, target_sn=None):
    target_sn = target_sn or {15: 15, 31: 25}.get(n, 20)
    grid, psf, weighted, light, bins = setup(n=n, scale=scale, target_sn=target_sn)
    truth = io.bin_average_numpy(weighted, light, bins)
    truth = np.log10(truth) if scale == "log" else truth
    data = truth + sigma * np.random.default_rng(seed).normal(size=truth.size)
    data_map = np.where(bins >= 0, data[np.searchsorted(io.bin_ids(bins), bins)], np.nan)
    return grid, psf, bins, data_map, sigma


def fit_both(n, scale, seed, draws=200):
    """Fit the same binned map with the binned likelihood and as unbinned pixels."""
    grid, psf, bins, data_map, sigma = simulated_binned_data(n, scale, seed)
    out = {}
    for binned in (True, False):
        with pm.Model() as model:
            central = pm.Normal("central", 8.0, 1.0)
            gradient = pm.Normal("gradient", 0.0, 0.5)
            obs = pmt.observe(
                pmt.Component(
                    LIGHT,
                    pmt.LinearGradient(central=central, gradient=gradient),
                ),
                grid,
                psf,
                tracer_scale=scale,
            )
            if binned:
                binned_tracer_likelihood("Z", obs, data_map, bins, sigma=sigma)
            else:
                pmt.tracer_likelihood("Z", obs.tracer_map, data_map, sigma=sigma)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = pmt.fit(
                model,
                draws=draws,
                tune=draws,
                chains=2,
                random_seed=seed,
                progressbar=False,
                map_draws=10,
                log_likelihood=False,
            )
        out[binned] = result
    return out, bins


def _covers(result, name, truth, q=(2.5, 97.5)):
    lo, hi = result.percentiles(name, q)
    return lo <= truth <= hi


def test_binned_fit_recovers_truth_and_unbinned_fit_is_biased():
    results, bins = fit_both(15, "linear", seed=1)
    assert len(io.bin_ids(bins)) >= 5
    binned, unbinned = results[True], results[False]
    for name, truth in TRUTH.items():
        assert _covers(binned, name, truth), (name, binned.percentiles(name))
    # the unbinned fit (each pixel given its bin's value) flattens the gradient far outside
    # its (much too narrow) interval
    lo, hi = unbinned.percentiles("gradient", (0.1, 99.9))
    assert hi < TRUTH["gradient"] or lo > TRUTH["gradient"]
    gap = abs(np.median(unbinned.percentiles("gradient", (50,))) - TRUTH["gradient"])
    assert gap > 5 * float(np.diff(unbinned.percentiles("gradient", (16, 84)))[0])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_binned_log_fit_recovers_truth_larger_grid(seed):
    results, _ = fit_both(31, "log", seed=seed, draws=500)
    for name, truth in TRUTH.items():
        assert _covers(results[True], name, truth)
    assert not _covers(results[False], "gradient", TRUTH["gradient"])


def test_result_maps_from_binned_records():
    grid, psf, bins, data_map, sigma = simulated_binned_data(15, "linear", seed=2)
    with pm.Model() as model:
        gradient = pm.Normal("gradient", 0.0, 0.5)
        obs = pmt.observe(
            pmt.Component(LIGHT, pmt.LinearGradient(central=8.0, gradient=gradient)), grid, psf
        )
        binned_tracer_likelihood("Z", obs, data_map, bins, sigma=sigma)
    import arviz as az
    import xarray as xr

    posterior = xr.Dataset({"gradient": (("chain", "draw"), np.full((1, 3), -0.2))})
    idata = az.InferenceData(posterior=posterior)
    result = pmt.Result.from_model(idata, model, records=binned_likelihoods_of(model))
    maps = result.maps("Z")
    inside = bins >= 0
    # model map: each pixel carries its bin's light-weighted value at the truth
    _, _, weighted, light, _ = setup(15, "linear")
    expected = io.bin_average_numpy(weighted, light, bins)
    np.testing.assert_allclose(
        maps["model"][inside], expected[np.searchsorted(io.bin_ids(bins), bins[inside])], rtol=1e-10
    )
    assert np.isnan(maps["model"][~inside]).all()
    assert np.nanmax(np.abs(maps["residual"])) < 5 * sigma


def test_two_binned_likelihoods_are_both_recorded_and_survive_clone_model():
    """The record of binned likelihoods is a model dim grown with PyMC's public set_dim (not
    its private ``_coords``), so a second one is found, also in a cloned model."""
    from pymc.model.fgraph import clone_model

    grid, psf, _, _, bins = setup()
    obs = pmt.observe(pmt.Component(LIGHT, pmt.LinearGradient(**TRUTH)), grid, psf)
    ids = io.bin_ids(bins)
    values = np.full(ids.max() + 1, 8.0)
    with pm.Model() as model:
        binned_tracer_likelihood("Z", obs, values, bins, sigma=0.05)
        binned_tracer_likelihood("W", obs, values + 0.1, bins, sigma=0.05)
    for m in (model, clone_model(model)):
        records = binned_likelihoods_of(m)
        assert [r.name for r in records] == ["Z", "W"]
        np.testing.assert_allclose(records[1].data[bins >= 0], 8.1)
