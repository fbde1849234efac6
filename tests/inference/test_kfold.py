"""K-fold cross-validation: held-out log predictive densities against the analytic Gaussian."""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import stats

import pymc_tracers as pmt
from pymc_tracers.inference.kfold import galaxy_folds

N_GALAXIES, SIGMA, TAU, PRIOR_SD = 6, 0.3, 0.2, 1.0


def _data(seed=0):
    rng = np.random.default_rng(seed)
    z = 0.4 + TAU * rng.normal(size=N_GALAXIES)
    return z[:, None, None] + SIGMA * rng.normal(size=(N_GALAXIES, 2, 2))


def _model(data):
    with pm.Model(coords={"galaxy": np.arange(N_GALAXIES)}) as model:
        mu = pm.Normal("mu", 0.0, PRIOR_SD)
        z = pmt.population.hierarchical_normal("z", mu, TAU)
        model_map = pt.broadcast_to(z[:, None, None], data.shape)
        pmt.tracer_likelihood("map", model_map, data, sigma=SIGMA)
    return model


def _analytic_elpd(data, folds):
    """log p(y_j | other folds) for y_j = mu + (z_j - mu) + noise, all Gaussian."""
    pixels = data.reshape(N_GALAXIES, -1)
    m = pixels.shape[1]
    elpd = np.empty(N_GALAXIES)
    for fold in folds:
        train = np.setdiff1d(np.arange(N_GALAXIES), fold)
        # each training galaxy's pixel mean measures mu with variance tau^2 + sigma^2 / m
        weight = 1.0 / (TAU**2 + SIGMA**2 / m)
        precision = 1.0 / PRIOR_SD**2 + weight * train.size
        mean = weight * pixels[train].mean(axis=1).sum() / precision
        covariance = SIGMA**2 * np.eye(m) + (TAU**2 + 1.0 / precision) * np.ones((m, m))
        for j in fold:
            elpd[j] = stats.multivariate_normal(np.full(m, mean), covariance).logpdf(pixels[j])
    return elpd


def _in_sample_lpd(data):
    """log p(y_j | all data), the density a leaked held-out galaxy would get."""
    pixels = data.reshape(N_GALAXIES, -1)
    m = pixels.shape[1]
    # joint Gaussian posterior of (mu, z_1..z_N): precision matrix and mean
    precision = np.zeros((N_GALAXIES + 1, N_GALAXIES + 1))
    precision[0, 0] = 1.0 / PRIOR_SD**2 + N_GALAXIES / TAU**2
    precision[0, 1:] = precision[1:, 0] = -1.0 / TAU**2
    precision[1:, 1:] = np.eye(N_GALAXIES) * (1.0 / TAU**2 + m / SIGMA**2)
    shift = np.concatenate([[0.0], pixels.sum(axis=1) / SIGMA**2])
    covariance = np.linalg.inv(precision)
    mean = covariance @ shift
    return np.array(
        [
            stats.multivariate_normal(
                np.full(m, mean[j + 1]), SIGMA**2 * np.eye(m) + covariance[j + 1, j + 1]
            ).logpdf(pixels[j])
            for j in range(N_GALAXIES)
        ]
    )


def test_kfold_matches_the_analytic_held_out_predictive_density():
    data = _data()
    folds = galaxy_folds(N_GALAXIES, 3, random_seed=4)
    result = pmt.kfold(
        _model(data),
        folds=folds,
        n_jobs=2,
        draws=2000,
        tune=500,
        random_seed=1,
        progressbar=False,
    )
    expected = _analytic_elpd(data, folds)
    np.testing.assert_allclose(result.pointwise, expected, atol=0.08)
    assert result.elpd == pytest.approx(expected.sum(), abs=0.25)
    # the tolerance tells held-out from leaked: the in-sample density is well above it
    assert np.mean(_in_sample_lpd(data) - expected) > 0.3
    assert all(d["divergences"] == 0 and d["r_hat_max"] < 1.02 for d in result.diagnostics)
    assert result.k == 3 and sorted(np.concatenate(result.folds)) == list(range(N_GALAXIES))


def test_default_folds_leave_one_galaxy_out_up_to_ten():
    folds = galaxy_folds(6, random_seed=0)
    assert len(folds) == 6 and all(f.size == 1 for f in folds)
    folds = galaxy_folds(25, random_seed=0)
    assert len(folds) == 10 and sorted(np.concatenate(folds)) == list(range(25))
    with pytest.raises(ValueError, match="k must be between 2 and the number of galaxies"):
        galaxy_folds(4, 5)


def test_kfold_refuses_what_it_cannot_hold_out():
    data = _data()
    with pytest.raises(ValueError, match="hold out every galaxy 0..5 exactly once"):
        pmt.kfold(_model(data), folds=[[0, 1], [2, 3]], progressbar=False)
    with pm.Model(coords={"galaxy": np.arange(N_GALAXIES)}) as noisy:
        z = pm.Normal("z", 0.0, 1.0, dims="galaxy")
        floor = pm.HalfNormal("floor", 0.1)
        noise = pmt.HeteroskedasticNoise(floor, 0.0, np.ones(data.shape))
        pmt.tracer_likelihood(
            "map", pt.broadcast_to(z[:, None, None], data.shape), data, noise=noise
        )
    with pytest.raises(ValueError, match="noise model with free parameters"):
        pmt.kfold(noisy, progressbar=False)


def test_compare_kfold_ranks_and_pairs_the_differences():
    good = pmt.KFoldResult(elpd=-10.0, se=2.0, pointwise=np.array([-3.0, -3.0, -4.0]), folds=[])
    bad = pmt.KFoldResult(elpd=-13.0, se=2.5, pointwise=np.array([-4.0, -4.0, -5.0]), folds=[])
    table = pmt.compare_kfold({"bad": bad, "good": good})
    assert list(table.index) == ["good", "bad"]
    assert table.loc["bad", "elpd_diff"] == pytest.approx(-3.0)
    # the same difference for every galaxy: no scatter, so the paired se is zero
    assert table.loc["bad", "dse"] == pytest.approx(0.0)
