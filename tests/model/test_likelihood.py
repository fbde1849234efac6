import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy import stats

import pymc_tracers as pmt
from pymc_tracers.model.likelihood import likelihoods_of, paper_noise_coefficients


@pytest.fixture
def small():
    grid = pmt.PixelGrid((12, 10), 0.1, supersampling=1)
    psf = pmt.GaussianPSF(0.2)
    rng = np.random.default_rng(3)
    data = 8.0 + 0.1 * rng.normal(size=grid.shape)
    return grid, psf, data


def _model_map(grid, psf, central):
    comp = pmt.Component(
        pmt.Exponential(r_eff=0.3), pmt.LinearGradient(central=central, gradient=-0.1)
    )
    return pmt.observe(comp, grid, psf, "linear")


def test_loglike_equals_independent_gaussian_sum_over_unmasked_pixels(small):
    grid, psf, data = small
    data = data.copy()
    data[0, :3] = np.nan  # NaNs are left out
    sigma = np.full(grid.shape, 0.1)
    sigma[5, 5] = np.nan
    mask = np.ones(grid.shape, bool)
    mask[-1] = False
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        image, tracer = _model_map(grid, psf, central)
        rv = pmt.tracer_likelihood("z", tracer, data, sigma=sigma, mask=mask)
    used = np.isfinite(data) & np.isfinite(sigma) & mask
    assert used.sum() == grid.shape[0] * grid.shape[1] - 3 - 1 - grid.shape[1]
    assert model.coords["z_pixel"] == tuple(np.flatnonzero(used))
    assert rv in model.observed_RVs  # an observed variable, not a Potential
    assert likelihoods_of(model)[0].n_used == used.sum()

    logp = model.compile_logp(vars=[rv], sum=True)
    mu = pmt.evaluate(tracer, central=8.05)
    expected = stats.norm.logpdf(data[used], mu[used], sigma[used]).sum()
    assert logp({"central": 8.05}) == pytest.approx(expected, rel=1e-12)


def test_student_t_and_heteroskedastic_noise(small):
    grid, psf, data = small
    light = np.linspace(0.5, 2.0, grid.shape[0] * grid.shape[1]).reshape(grid.shape)
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        c1 = pm.HalfNormal("c1", 0.1)
        _, tracer = _model_map(grid, psf, central)
        noise = pmt.HeteroskedasticNoise(c1, 0.004, light)
        rv = pmt.tracer_likelihood("z", tracer, data, noise=noise, nu=4.0)
    logp = model.compile_logp(vars=[rv], sum=True)
    mu = pmt.evaluate(tracer, central=8.0)
    sd = np.sqrt(0.01 + 0.004 / light)
    expected = stats.t.logpdf(data, 4.0, mu, sd).sum()
    assert logp({"central": 8.0, "c1_log__": np.log(0.01)}) == pytest.approx(expected, rel=1e-8)


def test_paper_noise_coefficients():
    c1, c2 = paper_noise_coefficients(light_center=3.0, light_reff=1.0)
    assert c1 + c2 / 3.0 == pytest.approx(0.01)
    assert c1 + c2 / 1.0 == pytest.approx(0.02)


def test_joint_fit_shares_light_parameters(small):
    grid, psf, data = small
    with pm.Model() as model:
        r_eff = pm.LogNormal("r_eff", np.log(0.3), 0.3)
        comp = pmt.Component(
            pmt.Exponential(r_eff=r_eff), pmt.LinearGradient(central=8.0, gradient=-0.1)
        )
        image, tracer = pmt.observe(comp, grid, psf, "linear")
        pmt.image_likelihood("light", image, pmt.evaluate(image, r_eff=0.3), sigma=0.01)
        pmt.tracer_likelihood("z", tracer, data, sigma=0.1)
    # both likelihoods depend on r_eff: its gradient has contributions from both
    names = [r.name for r in likelihoods_of(model)]
    assert names == ["light", "z"]
    point = model.initial_point()
    point["r_eff_log__"] = np.log(0.35)
    light_only = model.compile_fn(pt.grad(model.logp(vars=[model["light"]]), model.value_vars[0]))(
        point
    )
    tracer_only = model.compile_fn(pt.grad(model.logp(vars=[model["z"]]), model.value_vars[0]))(
        point
    )
    assert abs(light_only) > 0 and abs(tracer_only) > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data=np.zeros((5, 5)), sigma=0.1), "data .* shape"),
        (dict(data=np.full((12, 10), np.nan), sigma=0.1), "all NaN"),
        (dict(data=np.zeros((12, 10)), sigma=np.zeros((12, 10))), "non-positive"),
        (dict(data=np.zeros((12, 10)), sigma=-0.1), "non-positive"),
        (dict(data=np.zeros((12, 10)), sigma=np.ones((3, 3))), "sigma .* shape"),
        (
            dict(data=np.zeros((12, 10)), sigma=0.1, mask=np.zeros((12, 10), bool)),
            "no usable pixels",
        ),
        (dict(data=np.zeros((12, 10)), sigma=0.1, mask=np.ones((12, 10))), "boolean"),
        (dict(data=np.zeros((12, 10)), sigma=0.1, mask=np.ones((2, 2), bool)), "mask .* shape"),
        (dict(data=np.zeros((12, 10))), "exactly one of sigma"),
        (dict(data=np.where(np.eye(12, 10) > 0, np.inf, 0.0), sigma=0.1), "10 infinite values"),
        (dict(data=np.zeros((12, 10)), sigma=np.inf), "sigma for 'z' is infinite in 120"),
        (dict(data=np.zeros((12, 10)), sigma=0.1, nu=-1), "nu for 'z' must be a positive"),
        (dict(data=np.zeros((12, 10)), sigma=0.1, nu=0.0), "degrees of freedom"),
    ],
)
def test_bad_inputs_name_the_argument(small, kwargs, match):
    grid, psf, _ = small
    with pm.Model():
        central = pm.Normal("central", 8.0, 1.0)
        _, tracer = _model_map(grid, psf, central)
        with pytest.raises(ValueError, match=match):
            pmt.tracer_likelihood("z", tracer, **kwargs)


def test_bad_noise_coefficients():
    with pytest.raises(ValueError, match="c1"):
        pmt.HeteroskedasticNoise(-1.0, 0.1, np.ones((3, 3)))


def test_batched_likelihood_checks_name_the_galaxy():
    """(N, ny, nx) data: a wrong leading axis, and a galaxy whose mask hides every pixel."""
    grid = pmt.PixelGrid((6, 7), 0.1)
    comp = pmt.Component(pmt.Exponential(r_eff=0.3), pmt.Constant(np.array([1.0, 2.0, 3.0])))
    _, tracer = pmt.observe(comp, grid, pmt.GaussianPSF(0.2))
    mask = np.ones((3, 6, 7), bool)
    mask[1] = False
    with pm.Model():
        with pytest.raises(ValueError, match="one map per galaxy"):
            pmt.tracer_likelihood("z", tracer, np.zeros((2, 6, 7)), sigma=0.1)
        with pytest.raises(ValueError, match="in galaxy 1: its mask"):
            pmt.tracer_likelihood("z", tracer, np.zeros((3, 6, 7)), sigma=0.1, mask=mask)
        with pytest.raises(ValueError, match="galaxy 2, row 0, column 0"):
            data = np.zeros((3, 6, 7))
            data[2, 0, 0] = -np.inf
            pmt.tracer_likelihood("z", tracer, data, sigma=0.1)
        mask[1, 2, 3] = True
        rv = pmt.tracer_likelihood("z", tracer, np.ones((3, 6, 7)), sigma=0.1, mask=mask)
        index = np.asarray(pm.modelcontext(None).coords["z_pixel"])
        assert index.size == 2 * 42 + 1
        galaxy = np.unravel_index(index, (3, 6, 7))[0]
        np.testing.assert_array_equal(np.bincount(galaxy), [42, 1, 42])
        (record,) = likelihoods_of(pm.modelcontext(None))
        assert record.shape == (3, 6, 7) and record.batched and record.n_used == 85
        np.testing.assert_array_equal(record.used, mask)
        assert rv.eval().shape == (85,)
