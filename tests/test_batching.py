"""A population is a batch: batched observe equals a loop of single-galaxy observes."""

import functools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import pymc_tracers as pmt

GRID = pmt.PixelGrid((13, 15), pixel_scale=0.1, supersampling=2)
R_EFF = np.array([0.35, 0.5, 0.25])
X0 = np.array([0.0, 0.08, -0.12])
Q = np.array([1.0, 0.7, 0.5])
PHI = np.array([0.0, 0.4, 1.9])
PSFS = [pmt.GaussianPSF(0.2), pmt.MoffatPSF(0.35, 3.0), pmt.GaussianPSF(0.45)]


def _galaxy(i, central, gradient, **gradient_kwargs):
    """Component of galaxy i (i=None: the batch, with array parameters)."""
    pick = (lambda a: a) if i is None else (lambda a: a[i])
    return pmt.Component(
        pmt.Sersic(x0=pick(X0), r_eff=pick(R_EFF), n=1.5, amplitude=2.0, q=pick(Q), phi=pick(PHI)),
        pmt.LinearGradient(
            x0=pick(X0),
            central=central,
            gradient=gradient,
            q=pick(Q),
            phi=pick(PHI),
            **gradient_kwargs,
        ),
    )


def _compiled(outputs, inputs):
    grad = pt.grad(pt.sum(outputs[1] ** 2), inputs[1])
    return pytensor.function(inputs, [*outputs, grad], mode="FAST_COMPILE")


#: The batch's values of central and gradient in test_batched_equals_looped.
VALUES = (np.array([8.1, 8.4, 7.9]), np.array([-0.3, 0.1, -0.5]))


@functools.cache
def _looped(i, tracer_scale, convolve_at):
    """Galaxy ``i`` observed alone on the full path at ``VALUES``: image, map and gradient.
    Every method of a tracer scale and convolution scale is compared with the same single
    galaxies, so each is built and compiled once per process (the tests only read it)."""
    c, g = pt.dscalar("c"), pt.dscalar("g")
    single = pmt.observe(
        _galaxy(i, c, g), GRID, PSFS[i], tracer_scale, method="full", convolve_at=convolve_at
    )
    return tuple(_compiled(single, [c, g])(VALUES[0][i], VALUES[1][i]))


def _sharing_references(method, tracer_scale, convolve_at):
    """A parametrization run on one xdist worker with the others that share its single-galaxy
    references (``--dist loadgroup`` in pyproject.toml)."""
    group = f"batching_looped_{tracer_scale}_{convolve_at}"
    return pytest.param(method, tracer_scale, convolve_at, marks=pytest.mark.xdist_group(group))


@pytest.mark.parametrize(
    "method, tracer_scale, convolve_at",
    [
        _sharing_references(method, tracer_scale, convolve_at)
        for convolve_at in ("subpixel", "pixel")
        for method, tracer_scale in [
            ("full", "linear"),
            ("full", "log"),
            ("linear", "linear"),
            ("radial", "log"),
        ]
    ],
)
def test_batched_equals_looped(method, tracer_scale, convolve_at):
    central, gradient = pt.dvector("central"), pt.dvector("gradient")
    batch = pmt.observe(
        _galaxy(None, central, gradient),
        GRID,
        PSFS,
        tracer_scale,
        method=method,
        convolve_at=convolve_at,
        dynamic_range=4.0,
    )
    assert batch.path == (convolve_at if method == "full" else method)
    image, tracer_map, grad = _compiled(batch, [central, gradient])(*VALUES)
    assert image.shape == tracer_map.shape == (3, *GRID.shape)
    # the radial path: 1e-7 dex for a change of up to 4 dex across the rendered field (7")
    tolerance = 1e-7 if method == "radial" else 1e-10
    for i in range(3):
        ref_image, ref_map, ref_grad = _looped(i, tracer_scale, convolve_at)
        np.testing.assert_allclose(image[i], ref_image, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(tracer_map[i], ref_map, rtol=0, atol=tolerance)
        np.testing.assert_allclose(grad[i], ref_grad, rtol=1e-5 if tolerance > 1e-10 else 1e-8)


@pytest.mark.parametrize("convolve_at", ["subpixel", "pixel"])
def test_batched_fitted_psfs_equal_looped(convolve_at):
    """Fitted PSF widths (kernels as tensors, one per galaxy, of different sizes): the batch's
    values and gradients (for the widths and the light) equal single-galaxy observes."""
    fwhm, r_eff = pt.dvector("fwhm"), pt.dvector("r_eff")
    max_fwhm = np.array([0.25, 0.4, 0.55])

    def component(r, gradient):
        return pmt.Component(
            pmt.Exponential(r_eff=r, amplitude=2.0, q=0.7, phi=0.4),
            pmt.LinearGradient(central=8.5, gradient=gradient, q=0.7, phi=0.4),
        )

    def compiled(observation, inputs):
        image, tracer_map = observation
        loss = pt.sum(image**2) + pt.sum(tracer_map**2)
        outputs = [image, tracer_map, *pt.grad(loss, inputs)]
        return pytensor.function(inputs, outputs, mode="FAST_COMPILE")

    psfs = [pmt.GaussianPSF(fwhm[i], max_fwhm=max_fwhm[i]) for i in range(3)]
    gradients = np.array([-0.3, 0.1, -0.5])
    batch = pmt.observe(
        component(r_eff, gradients), GRID, psfs, "log", method="full", convolve_at=convolve_at
    )
    values = np.array([0.2, 0.33, 0.5]), R_EFF
    image, tracer_map, d_fwhm, d_r_eff = compiled(batch, [fwhm, r_eff])(*values)
    assert np.all(d_fwhm != 0)
    for i in range(3):
        f, r = pt.dscalar("f"), pt.dscalar("r")
        psf = pmt.GaussianPSF(f, max_fwhm=max_fwhm[i])
        single = pmt.observe(
            component(r, gradients[i]), GRID, psf, "log", method="full", convolve_at=convolve_at
        )
        ref = compiled(single, [f, r])(values[0][i], values[1][i])
        np.testing.assert_allclose(image[i], ref[0], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(tracer_map[i], ref[1], rtol=0, atol=1e-10)
        np.testing.assert_allclose([d_fwhm[i], d_r_eff[i]], ref[2:], rtol=1e-8)


def test_one_psf_for_many_galaxies_and_unbatched_light():
    """A tracer batch over one light profile and one PSF broadcasts the light."""
    central = pt.dvector("central")
    light = pmt.Exponential(r_eff=0.4)
    batch = pmt.observe(
        pmt.Component(light, pmt.Constant(central)), GRID, PSFS[0], "linear", method="full"
    )
    image, tracer_map = pytensor.function([central], list(batch))(np.array([1.0, 2.0]))
    assert tracer_map.shape == (2, *GRID.shape)
    np.testing.assert_allclose(tracer_map - np.array([1.0, 2.0])[:, None, None], 0.0, atol=1e-9)
    np.testing.assert_allclose(image[0], image[1])


def test_empty_sky_handling_is_per_galaxy():
    """One galaxy's brightness must not change another galaxy's map."""
    amplitude = np.array([1.0, 1e9])
    comp = pmt.Component(
        pmt.Gaussian(sigma=0.05, amplitude=amplitude), pmt.LinearGradient(central=1.0, gradient=2.0)
    )
    faint = pmt.Component(
        pmt.Gaussian(sigma=0.05, amplitude=1.0), pmt.LinearGradient(central=1.0, gradient=2.0)
    )
    batch = pmt.evaluate(pmt.observe(comp, GRID, PSFS[0], method="full")[1])
    single = pmt.evaluate(pmt.observe(faint, GRID, PSFS[0], method="full")[1])
    np.testing.assert_allclose(batch[0], single, rtol=1e-12)


def test_mismatched_galaxy_axes_raise():
    comp = pmt.Component(pmt.Exponential(r_eff=R_EFF), pmt.Constant(np.ones(4)))
    with pytest.raises(ValueError, match="different lengths"):
        pmt.observe(comp, GRID, PSFS[0])
    comp = pmt.Component(pmt.Exponential(r_eff=R_EFF), 1.0)
    with pytest.raises(ValueError, match="3 PSFs|2 PSFs"):
        pmt.observe(comp, GRID, PSFS[:2])
    with pytest.raises(ValueError, match="one galaxy axis"):
        pmt.Exponential(r_eff=np.ones((2, 2)))
