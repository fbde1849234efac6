import numpy as np
import pytest

import pymc_tracers as pmt
from pymc_tracers import baselines, simulate


def test_figure3_galaxy_matches_the_paper_setup():
    g = simulate.figure3_galaxy(0.5, seed=1)
    assert g.grid.shape == (121, 121) and g.grid.pixel_scale == 0.066
    assert g.truth["gradient"] == -0.2 and g.truth["central"] == 8.0
    # noise: sigma_Z^2 = 0.01 at the centre and 0.02 at one R_e
    c1, c2 = g.noise_coefficients
    assert g.tracer_error[60, 60] ** 2 == pytest.approx(0.01, rel=1e-3)
    centre_light = g.true_light_image[60, 60]
    assert c1 + c2 / centre_light == pytest.approx(0.01, rel=1e-3)
    np.testing.assert_allclose(g.tracer_error**2, c1 + c2 / g.true_light_image)
    # the noise is what the error map says it is
    pulls = (g.tracer_map - g.true_tracer_map) / g.tracer_error
    assert pulls.std() == pytest.approx(1.0, abs=0.02)
    assert abs(pulls.mean()) < 0.02
    again = simulate.figure3_galaxy(0.5, seed=1)
    np.testing.assert_array_equal(again.tracer_map, g.tracer_map)


@pytest.mark.parametrize("r_eff_pixels", [1.0, 3.0])
def test_figure4_galaxy_is_nyquist_sampled(r_eff_pixels):
    g = simulate.figure4_galaxy(r_eff_pixels, fwhm=0.4, seed=0, supersampling=2)
    assert g.grid.pixel_scale == pytest.approx(0.2)
    assert g.truth["r_eff"] == pytest.approx(r_eff_pixels * 0.2)
    assert g.grid.nx * g.grid.pixel_scale / 2 >= 4 * g.truth["r_eff"]
    with pytest.raises(ValueError, match="r_eff_pixels"):
        simulate.figure4_galaxy(0.0)


def test_clumps_take_any_psf():
    g = simulate.clumpy_galaxy(pmt.GaussianPSF(0.1), seed=0, supersampling=1)
    assert isinstance(g.psf, pmt.GaussianPSF)
    assert g.true_tracer_map.min() > 7.6 - 1e-9 and g.true_tracer_map.max() < 7.9 + 1e-9


def test_toy_maps_share_a_radial_trend_but_not_their_structure():
    maps = {kind: simulate.toy_map(kind, fwhm=0.05, seed=0) for kind in simulate.TOY_MAPS}
    grid = maps["smooth"].grid
    r = grid.radius()
    fits = {
        k: baselines.wls_gradient(m.true_tracer_map, np.ones(grid.shape), grid)
        for k, m in maps.items()
    }
    for kind, result in fits.items():
        assert result.gradient == pytest.approx(-0.1, abs=0.03), kind
    # the merger side asymmetry and spiral arms survive in the 2-D maps, not in the gradient
    merger = maps["merger"].true_tracer_map
    assert merger[:, :20].mean() < merger[:, -20:].mean() - 0.15
    spiral_residual = maps["spiral"].true_tracer_map - (8.5 - 0.1 * r)
    assert spiral_residual.max() - spiral_residual.min() > 0.15
    with pytest.raises(ValueError, match="unknown toy map"):
        simulate.toy_map("bar")


def test_wls_matches_numpy_weighted_polyfit(rng):
    grid = pmt.PixelGrid((15, 17), 0.1)
    r = grid.radius(0.1, -0.05)
    err = rng.uniform(0.05, 0.2, grid.shape)
    z = 8.2 - 0.3 * r + err * rng.normal(size=grid.shape)
    result = baselines.wls_gradient(z, err, grid, x0=0.1, y0=-0.05)
    coeffs, cov = np.polyfit(r.ravel(), z.ravel(), 1, w=1 / err.ravel(), cov="unscaled")
    assert result.gradient == pytest.approx(coeffs[0], rel=1e-10)
    assert result.central == pytest.approx(coeffs[1], rel=1e-10)
    assert result.gradient_err == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-8)
    with pytest.raises(ValueError, match="non-positive"):
        baselines.wls_gradient(z, np.zeros(grid.shape), grid)


def test_annulus_medians():
    grid = pmt.PixelGrid((21, 21), 0.1)
    r = grid.radius()
    z = 8.0 - 0.2 * r
    out = baselines.annulus_medians(z, grid, n_annuli=4, r_max=1.0)
    assert out["edges"].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    inside = (r >= 0.25) & (r < 0.5)
    assert out["median"][1] == pytest.approx(np.median(z[inside]))
    assert out["count"][1] == inside.sum()
    assert out["p16"][1] < out["median"][1] < out["p84"][1]


def test_radial_percentiles_match_a_brute_force_binning(rng):
    grid = pmt.PixelGrid((17, 23), 0.1)
    r = grid.radius(0.05, -0.1, 0.7, 0.4)
    values = rng.normal(size=grid.shape)
    used = rng.uniform(size=grid.shape) > 0.2
    edges = np.array([0.0, 0.2, 0.5, 0.9, float(r.max())])
    stats, count = baselines.radial_percentiles(values, r, edges, used=used, min_count=5)
    # each pixel in bin searchsorted(edges, r) - 1; the outermost pixel closes the last bin
    which = np.minimum(np.searchsorted(edges, r, side="right") - 1, len(edges) - 2)
    for k in range(len(edges) - 1):
        members = values[used & (which == k)]
        assert count[k] == members.size
        expected = np.percentile(members, [16, 50, 84]) if members.size >= 5 else np.full(3, np.nan)
        np.testing.assert_array_equal(stats[:, k], expected)
    assert count.sum() == used.sum()


def test_baselines_follow_the_likelihoods_pixel_policy(rng):
    """NaN leaves a pixel out; inf is refused; the mask must be boolean."""
    grid = pmt.PixelGrid((11, 11), 0.1)
    r = grid.radius()
    err = np.full(grid.shape, 0.05)
    z = 8.0 - 0.2 * r + err * rng.normal(size=grid.shape)
    with pytest.raises(ValueError, match="mask must be a boolean array .* got dtype int64"):
        baselines.wls_gradient(z, err, grid, mask=np.ones(grid.shape, dtype=np.int64))
    with pytest.raises(ValueError, match="mask must be a boolean array .* got dtype float64"):
        baselines.annulus_medians(z, grid, mask=np.ones(grid.shape))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\); the map has shape \(11, 11\)"):
        baselines.wls_gradient(z, err, grid, mask=np.ones((3, 3), dtype=bool))
    infinite = z.copy()
    infinite[2, 3] = np.inf
    with pytest.raises(ValueError, match="tracer_map has 1 infinite values in used pixels"):
        baselines.wls_gradient(infinite, err, grid)
    with pytest.raises(ValueError, match="tracer_map has 1 infinite values in used pixels"):
        baselines.annulus_medians(infinite, grid)
    bad_err = err.copy()
    bad_err[0, 0] = np.inf
    with pytest.raises(ValueError, match="error_map has 1 infinite values in used pixels"):
        baselines.wls_gradient(z, bad_err, grid)
    # a masked-out inf is not used, so it is not an error
    keep = np.ones(grid.shape, dtype=bool)
    keep[2, 3] = False
    masked = baselines.wls_gradient(infinite, err, grid, mask=keep)
    # and NaN pixels are left out: the same fit as numpy's on the remaining pixels
    holes = z.copy()
    holes[2, 3] = np.nan
    with_nan = baselines.wls_gradient(holes, err, grid)
    coeffs = np.polyfit(r[keep], z[keep], 1, w=1 / err[keep])
    for result in (masked, with_nan):
        assert result.n_pixels == keep.sum()
        assert result.gradient == pytest.approx(coeffs[0], rel=1e-10)
    with pytest.raises(ValueError, match="only 2 usable pixels"):
        two = np.full(grid.shape, np.nan)
        two[0, :2] = 8.0
        baselines.wls_gradient(two, err, grid)
    with pytest.raises(ValueError, match="no usable pixels"):
        baselines.annulus_medians(np.full(grid.shape, np.nan), grid)
