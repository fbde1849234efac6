import math

import numpy as np
import pytensor.tensor as pt
import pytest
from astropy.io import fits
from scipy import integrate

import pymc_tracers as pmt
from pymc_tracers.psf import resample_kernel


def _gaussian_reference(fwhm, scale, half_width):
    """Pixel integrals of a unit 2-D Gaussian by numerical quadrature, normalised."""
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    g = lambda t: math.exp(-0.5 * (t / sigma) ** 2)  # noqa: E731
    edges = (np.arange(-half_width, half_width + 2) - 0.5) * scale
    one_d = np.array(
        [integrate.quad(g, a, b, epsabs=0, epsrel=1e-12)[0] for a, b in zip(edges[:-1], edges[1:])]
    )
    kernel = np.outer(one_d, one_d)
    return kernel / kernel.sum()


@pytest.mark.parametrize("fwhm, scale", [(0.5, 0.022), (1.5, 0.066), (0.1, 0.05)])
def test_gaussian_kernel_is_the_pixel_integrated_gaussian(fwhm, scale):
    psf = pmt.GaussianPSF(fwhm)
    kernel = psf.kernel(scale)
    h = psf.half_width(scale)
    assert kernel.shape == (2 * h + 1, 2 * h + 1)
    assert h * scale >= 2.5 * fwhm - scale / 2
    np.testing.assert_allclose(kernel, _gaussian_reference(fwhm, scale, h), rtol=1e-8, atol=1e-15)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-14)


def test_gaussian_kernel_variance_matches_fwhm():
    fwhm, scale = 0.8, 0.01
    kernel = pmt.GaussianPSF(fwhm).kernel(scale)
    h = kernel.shape[0] // 2
    x = np.arange(-h, h + 1) * scale
    variance = np.sum(kernel.sum(axis=0) * x**2)
    sigma = fwhm / 2.354820045
    # pixel integration adds the variance of a uniform pixel, scale^2 / 12
    assert variance == pytest.approx(sigma**2 + scale**2 / 12, rel=1e-6)


def test_moffat_kernel_against_quadrature_and_half_maximum():
    fwhm, beta, scale = 0.6, 2.5, 0.03
    psf = pmt.MoffatPSF(fwhm, beta)
    kernel = psf.kernel(scale)
    h = kernel.shape[0] // 2
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
    moffat = lambda y, x: (1 + (x * x + y * y) / alpha**2) ** (-beta)  # noqa: E731
    total = sum(
        integrate.dblquad(
            moffat, (j - 0.5) * scale, (j + 0.5) * scale, (i - 0.5) * scale, (i + 0.5) * scale
        )[0]
        for i, j in [(0, 0), (0, 3), (5, 2)]
    )
    ratio_ref = (
        integrate.dblquad(moffat, 2.5 * scale, 3.5 * scale, -0.5 * scale, 0.5 * scale)[0]
        / integrate.dblquad(moffat, -0.5 * scale, 0.5 * scale, -0.5 * scale, 0.5 * scale)[0]
    )
    assert total > 0
    assert kernel[h, h + 3] / kernel[h, h] == pytest.approx(ratio_ref, rel=1e-4)
    # the profile falls to half its peak at r = FWHM / 2
    fine = pmt.MoffatPSF(fwhm, beta, integration_oversampling=1).kernel(fwhm / 20)
    c = fine.shape[0] // 2
    assert fine[c, c + 10] / fine[c, c] == pytest.approx(0.5, rel=1e-12)
    # default truncation keeps all but ~1e-3 of the flux
    r = h * scale
    assert 1 - (1 + (r / alpha) ** 2) ** (1 - beta) > 0.998


def test_symbolic_widths_give_the_same_kernel_as_numbers():
    fwhm = pt.dscalar("fwhm")
    psf = pmt.GaussianPSF(fwhm, max_fwhm=0.5)
    assert not psf.is_fixed
    symbolic = psf.kernel_tensor(0.02).eval({fwhm: 0.5})
    np.testing.assert_allclose(symbolic, pmt.GaussianPSF(0.5).kernel(0.02), rtol=1e-12, atol=1e-16)
    beta = pt.dscalar("beta")
    moffat = pmt.MoffatPSF(fwhm, beta, radius=1.0)
    value = moffat.kernel_tensor(0.05).eval({fwhm: 0.4, beta: 3.0})
    np.testing.assert_allclose(value, pmt.MoffatPSF(0.4, 3.0, radius=1.0).kernel(0.05), rtol=1e-12)


def test_symbolic_width_needs_a_size():
    with pytest.raises(ValueError, match="max_fwhm"):
        pmt.GaussianPSF(pt.dscalar("fwhm"))


def test_pixel_psf_at_its_own_scale_is_used_exactly():
    kernel = np.random.default_rng(1).uniform(0.1, 1.0, (7, 7))
    kernel[3, 3] = 10.0
    psf = pmt.PixelPSF(kernel, pixel_scale=0.022)
    np.testing.assert_array_equal(psf.kernel(0.022), kernel / kernel.sum())


def test_integer_downsampling_is_a_block_sum():
    fine = pmt.GaussianPSF(0.3).kernel(0.01)
    n = fine.shape[0]
    # pad to a multiple of 3 pixels around the centre so blocks align
    extra = (-n) % 3
    fine = np.pad(fine, extra // 2)
    n = fine.shape[0]
    assert n % 3 == 0 and (n // 3) % 2 == 1
    coarse = resample_kernel(fine, 0.01, 0.03)
    blocks = fine.reshape(n // 3, 3, n // 3, 3).sum(axis=(1, 3))
    np.testing.assert_allclose(coarse, blocks / blocks.sum(), atol=1e-15)


def test_resampling_conserves_flux_centre_and_shape():
    fine = pmt.GaussianPSF(0.4).kernel(0.0131)
    out = resample_kernel(fine, 0.0131, 0.022)
    assert out.shape[0] % 2 == 1
    assert out.sum() == pytest.approx(1.0, abs=1e-14)
    h = out.shape[0] // 2
    x = np.arange(-h, h + 1) * 0.022
    assert np.sum(out.sum(axis=0) * x) == pytest.approx(0.0, abs=1e-12)
    direct = pmt.GaussianPSF(0.4).kernel(0.022)
    hd = direct.shape[0] // 2
    # a cubic spline through the cumulative flux makes resampling accurate to ~1e-6 of the peak
    np.testing.assert_allclose(
        out[h - hd : h + hd + 1, h - hd : h + hd + 1], direct, atol=1e-5 * direct.max()
    )


@pytest.mark.parametrize(
    "kernel, match",
    [
        (np.ones((4, 4)), "odd"),
        (np.ones((3, 5)), "square"),
        (np.ones(5), "2-D"),
        (np.where(np.eye(5) > 0, np.nan, 1.0), "NaN"),
        (-np.ones((5, 5)), "positive sum"),
        (np.pad(np.ones((1, 1)), ((0, 8), (0, 8))), "not centred"),
    ],
)
def test_bad_kernels_raise(kernel, match):
    with pytest.raises(ValueError, match=match):
        pmt.PixelPSF(kernel, pixel_scale=0.01)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, "wide"])
def test_bad_widths_raise(bad):
    with pytest.raises(ValueError, match="fwhm"):
        pmt.GaussianPSF(bad)
    with pytest.raises(ValueError, match="pixel_scale"):
        pmt.PixelPSF(np.ones((3, 3)), pixel_scale=bad)


def test_moffat_beta_must_exceed_one():
    with pytest.raises(ValueError, match="beta"):
        pmt.MoffatPSF(0.5, beta=1.0)


def test_fits_round_trip_reads_the_pixel_scale(tmp_path):
    kernel = pmt.GaussianPSF(0.2).kernel(0.013)
    path = tmp_path / "psf.fits"
    header = fits.Header({"PIXELSCL": 0.013})
    fits.PrimaryHDU(kernel, header=header).writeto(path)
    psf = pmt.PixelPSF.from_fits(path)
    assert psf.pixel_scale == 0.013
    np.testing.assert_allclose(psf.kernel(0.013), kernel, rtol=1e-12)

    wcs_path = tmp_path / "psf_wcs.fits"
    wcs_header = fits.Header(
        {
            "CTYPE1": "RA---TAN",
            "CTYPE2": "DEC--TAN",
            "CUNIT1": "deg",
            "CUNIT2": "deg",
            "CDELT1": -0.013 / 3600,
            "CDELT2": 0.013 / 3600,
        }
    )
    fits.PrimaryHDU(kernel, header=wcs_header).writeto(wcs_path)
    assert pmt.PixelPSF.from_fits(wcs_path).pixel_scale == pytest.approx(0.013)

    bare = tmp_path / "bare.fits"
    fits.PrimaryHDU(kernel).writeto(bare)
    with pytest.raises(ValueError, match="pixel_scale"):
        pmt.PixelPSF.from_fits(bare)
    assert pmt.PixelPSF.from_fits(bare, pixel_scale=0.02).pixel_scale == 0.02
