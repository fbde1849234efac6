"""Property-based tests (hypothesis): invariants of the forward model over generated inputs.

Grids (5-25 pixels a side, supersampling 1-4, 0.05-0.3 arcsec pixels, any centre), PSFs
(Gaussian, Moffat, random positive pixel kernels, resampled or not), 1-3 Sersic / exponential /
Gaussian components with random centre, size, index, axis ratio and angle, and constant,
linear-gradient or sinusoidal tracers. Properties: flux conservation (exact inside the field,
edge-weighted across its edges), convexity of the light-weighted mean, constant maps of constant
tracers, whole-pixel shifts, 90-degree symmetry, the convolution's adjoint, and batch = loop.

Each property holds exactly in exact arithmetic, so tolerances only allow for round-off (see
:func:`roundoff`); references are numpy/scipy computations on the sample points, never outputs
of the code under test. Every example builds a new graph (new shapes, kernels and constants), so
examples are few and compiled without graph rewrites by the Python linker (~0.1 s instead of
~0.4 s): the properties concern the model; the default compilation is covered by test_forward.py.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pytensor.compile.mode import Mode
from scipy import ndimage, signal

import pymc_tracers as pmt
from pymc_tracers.convolution import FixedKernelConvolution, FixedKernelCorrelation

QUICK = Mode(linker="py", optimizer=None)

# wide Moffat wings on a 5-pixel field are fine here
pytestmark = pytest.mark.filterwarnings("ignore:the PSF stamp:UserWarning")

#: Light below this fraction of the brightest pixel is "negligible": there the tracer map is
#: dominated by FFT round-off (~1e-16 of the brightest pixel) divided by the pixel's light.
LIT = 1e-6

properties = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def run(*outputs):
    """Numpy values of tensors (one quick compilation for all of them)."""
    return pytensor.function([], list(outputs), mode=QUICK)()


# ------------------------------------------------------------------------------ strategies
@st.composite
def grids(draw, square=False, max_side=25):
    ny = draw(st.integers(5, max_side))
    nx = ny if square else draw(st.integers(5, max_side))
    return pmt.PixelGrid(
        (ny, nx),
        pixel_scale=draw(st.floats(0.05, 0.3)),
        supersampling=draw(st.integers(1, 4)),
        center=(draw(st.floats(-1.0, 1.0)), draw(st.floats(-1.0, 1.0))),
    )


@st.composite
def psfs(draw, grid, *, resample=True, c4_symmetric=False, max_fwhm=2.0):
    """A PSF whose width is 0.2-``max_fwhm`` data pixels (pixel kernels: 1-9 kernel pixels).

    Pixel kernels are drawn on the grid's sub-pixel scale, or (``resample``) on another scale
    that the PSF resamples with a spline (which may leave small negative values).
    ``c4_symmetric`` makes pixel kernels invariant under 90-degree rotation.
    """
    kind = draw(st.sampled_from(["gaussian", "moffat", "pixel"]))
    fwhm = draw(st.floats(0.2, max_fwhm)) * grid.pixel_scale
    if kind == "gaussian":
        return pmt.GaussianPSF(fwhm=fwhm)
    if kind == "moffat":
        return pmt.MoffatPSF(fwhm=fwhm, beta=draw(st.floats(2.5, 5.0)))
    size = draw(st.sampled_from([1, 3, 5, 7, 9]))
    kernel = draw(hnp.arrays(np.float64, (size, size), elements=st.floats(0.01, 1.0)))
    kernel[size // 2, size // 2] += 1.0  # the brightest pixel is the middle one
    if c4_symmetric:
        kernel = sum(np.rot90(kernel, k) for k in range(4))
    scale = grid.subpixel_scale
    if resample:
        scale *= draw(st.sampled_from([1.0, draw(st.floats(0.4, 2.5))]))
    return pmt.PixelPSF(kernel, pixel_scale=scale)


@st.composite
def light_profiles(draw, grid, *, centre=None, circular=False, reach=1.3):
    """A Sersic, exponential or Gaussian profile, 0.3-4 pixels in size.

    Its centre is ``centre`` or anywhere within ``reach`` half-fields of the field centre
    (so some galaxies straddle or leave the field).
    """
    kind = draw(st.sampled_from(["sersic", "exponential", "gaussian"]))
    if centre is None:
        half_x = grid.nx * grid.pixel_scale / 2
        half_y = grid.ny * grid.pixel_scale / 2
        centre = (
            grid.center[0] + draw(st.floats(-reach, reach)) * half_x,
            grid.center[1] + draw(st.floats(-reach, reach)) * half_y,
        )
    x0, y0 = centre
    size = draw(st.floats(0.3, 4.0)) * grid.pixel_scale
    amplitude = draw(st.floats(0.1, 10.0))
    q = 1.0 if circular else draw(st.floats(0.2, 1.0))
    phi = draw(st.floats(0.0, np.pi))
    shape = {"x0": x0, "y0": y0, "amplitude": amplitude, "q": q, "phi": phi}
    if kind == "sersic":
        return pmt.Sersic(r_eff=size, n=draw(st.floats(0.5, 4.0)), **shape)
    if kind == "exponential":
        return pmt.Exponential(r_eff=size, **shape)
    return pmt.Gaussian(sigma=size, **shape)


@st.composite
def tracers(
    draw, grid, *, kinds=("constant", "gradient", "expression"), centre=None, circular=False
):
    """A constant, a linear gradient (random centre, q, phi) or a sinusoidal expression."""
    kind = draw(st.sampled_from(kinds))
    central = draw(st.floats(-1.0, 9.0, allow_subnormal=False))
    if kind == "constant":
        return pmt.Constant(value=central)
    if kind == "gradient":
        if centre is None:
            centre = (
                grid.center[0] + draw(st.floats(-1.0, 1.0)),
                grid.center[1] + draw(st.floats(-1.0, 1.0)),
            )
        return pmt.LinearGradient(
            x0=centre[0],
            y0=centre[1],
            central=central,
            gradient=draw(st.floats(-1.0, 1.0, allow_subnormal=False)),
            q=1.0 if circular else draw(st.floats(0.2, 1.0)),
            phi=draw(st.floats(0.0, np.pi)),
        )
    amplitude = draw(st.floats(0.0, 1.0, allow_subnormal=False))
    kx, ky = draw(st.floats(-10.0, 10.0)), draw(st.floats(-10.0, 10.0))  # rad / arcsec
    return pmt.Expression(lambda x, y: central + amplitude * pt.sin(kx * x + ky * y))


def scenes(grid, **tracer_kw):
    """1-3 components with independent lights and tracers."""
    component = st.builds(pmt.Component, light_profiles(grid), tracers(grid, **tracer_kw))
    return st.lists(component, min_size=1, max_size=3)


tracer_scales = st.sampled_from(["linear", "log"])


def sample_points(grid, psf):
    """Sub-pixel centres of the field padded by the PSF half-width (sub-pixels), and it."""
    pad = psf.half_width(grid.subpixel_scale)
    x, y = grid.supersampled_coordinates(pad)
    return x, y, pad


def roundoff(image, f_max, light, grid):
    """Bound on a tracer map's round-off error per pixel, in units of ``f(Z)``.

    The convolved light-weighted sum carries FFT round-off of ~1e-16 of its largest value on
    the rendered (padded) field, at most ``f_max`` times the brightest rendered ``light``
    integrated over a pixel; the ratio divides it by the pixel's light, blended at 1e-13 of
    the field's brightest pixel into the empty-sky fallback. The factor 1e-14 is 15 times the
    largest round-off measured over many examples (6.5e-16).
    """
    fft_peak = grid.pixel_area * np.max(light)
    floor = max(1e-13 * image.max(), np.finfo(float).tiny)  # a field without light: no bound
    with np.errstate(over="ignore"):
        return 1e-14 * f_max * fft_peak / (np.maximum(image, 0.0) + floor)


def empty_sky_blend(image, f_spread):
    """How far the empty-sky blend moves each pixel from the pure light-weighted ratio.

    ``observe`` documents that below 1e-13 of the brightest pixel's light the map tends to the
    unweighted pixel mean: the mean gets weight ``e / (L + e)`` with ``e`` = 1e-13 of the
    brightest pixel, and differs from the ratio by at most the spread of ``f(Z)``.
    """
    floor = max(1e-13 * image.max(), np.finfo(float).tiny)
    return f_spread * floor / (np.maximum(image, 0.0) + floor)


def linear(values, tracer_scale):
    """The quantity that is light-weighted: ``Z`` (linear averaging) or ``10**Z`` (log)."""
    return values if tracer_scale == "linear" else 10.0**values


def observed(components, grid, psf, tracer_scale):
    """``observe`` (full path) as numpy, with each component's light and ``f(Z)`` on the
    padded sample points: ``image, tracer_map, lights (n, H, W), f (n, H, W)``."""
    x, y, _ = sample_points(grid, psf)
    fields = []
    for c in components:
        fields += [c.light.surface_brightness(x, y), c.tracer(x, y)]
    image, tracer_map, *fields = run(
        *pmt.observe(components, grid, psf, tracer_scale=tracer_scale, method="full"), *fields
    )
    lights = np.array(fields[0::2])
    return image, tracer_map, lights, linear(np.array(fields[1::2]), tracer_scale)


def block(values, s, reduce):
    """Reduce each ``s x s`` block of sub-pixels to its data pixel."""
    ny, nx = values.shape[0] // s, values.shape[1] // s
    return reduce(values.reshape(ny, s, nx, s), axis=(1, 3))


# ------------------------------------------------------------------------------ flux
@properties
@given(data=st.data())
def test_flux_of_a_galaxy_inside_the_field_is_conserved(data):
    """All light well inside the field: the image sums to the sub-pixel-rendered flux.

    "Well inside" means inside the field shrunk by the PSF half-width, up to 1e-12 of the
    light, so the PSF scatters nothing out of the field (or in).
    """
    grid = data.draw(grids(), label="grid")
    psf = data.draw(psfs(grid, max_fwhm=1.0), label="psf")
    x, y, pad = sample_points(grid, psf)
    s, (ny, nx) = grid.supersampling, grid.shape
    inner = np.zeros(x.shape, bool)
    inner[2 * pad : pad + ny * s - pad, 2 * pad : pad + nx * s - pad] = True
    assume(inner.sum() >= 4)
    rows, cols = np.nonzero(inner)
    components = []
    for i in range(data.draw(st.integers(1, 3), label="n_components")):
        # a compact galaxy centred in the inner region, a small fraction of its margin in size
        r = data.draw(st.integers(rows.min(), rows.max()))
        c = data.draw(st.integers(cols.min(), cols.max()))
        x0 = x[r, c] + data.draw(st.floats(-0.5, 0.5)) * grid.subpixel_scale
        y0 = y[r, c] + data.draw(st.floats(-0.5, 0.5)) * grid.subpixel_scale
        margin = (
            grid.subpixel_scale
            * min(r - rows.min(), rows.max() - r, c - cols.min(), cols.max() - c)
            + grid.subpixel_scale / 2
        )
        size = margin * data.draw(st.floats(0.002, 0.03))
        shape = {
            "x0": x0,
            "y0": y0,
            "amplitude": data.draw(st.floats(0.1, 10.0)),
            "q": data.draw(st.floats(0.2, 1.0)),
            "phi": data.draw(st.floats(0.0, np.pi)),
        }
        kind = data.draw(st.sampled_from(["sersic", "exponential", "gaussian"]))
        if kind == "sersic":
            light = pmt.Sersic(r_eff=size, n=data.draw(st.floats(0.5, 1.2)), **shape)
        elif kind == "exponential":
            light = pmt.Exponential(r_eff=size, **shape)
        else:
            light = pmt.Gaussian(sigma=size * 2, **shape)
        components.append(pmt.Component(light, 0.0))
    light = sum(c.light.surface_brightness(x, y) for c in components)
    (rendered,) = run(light)
    assume(rendered[~inner].sum() <= 1e-12 * rendered.sum())

    image, rendered = run(
        pmt.observe(components, grid, psf, tracer_scale="linear", method="full")[0], light
    )
    field = rendered[pad : pad + ny * s, pad : pad + nx * s]
    expected = field.sum() * grid.subpixel_scale**2
    assert image.sum() == pytest.approx(expected, rel=1e-8)


@properties
@given(data=st.data())
def test_flux_through_the_edges_is_the_edge_weighted_rendered_flux(data):
    """Any galaxy, in or across the field: the image sums to the rendered light at each sample
    point times the fraction of the PSF centred there that falls inside the field.

    That fraction is computed by scipy's correlation of the field's indicator with the PSF
    kernel; light further than the PSF half-width from the field cannot reach it.
    """
    grid = data.draw(grids(), label="grid")
    psf = data.draw(psfs(grid), label="psf")
    components = data.draw(scenes(grid, kinds=("constant",)), label="components")
    x, y, pad = sample_points(grid, psf)
    s, (ny, nx) = grid.supersampling, grid.shape
    kernel = psf.kernel(grid.subpixel_scale)
    inside = np.zeros((x.shape[0] + 2 * pad, x.shape[1] + 2 * pad))
    inside[2 * pad : 2 * pad + ny * s, 2 * pad : 2 * pad + nx * s] = 1.0
    weight = signal.correlate(inside, kernel, mode="valid")  # sum_o K[o] inside[q + o]

    light = sum(c.light.surface_brightness(x, y) for c in components)
    image, rendered = run(
        pmt.observe(components, grid, psf, tracer_scale="linear", method="full")[0], light
    )
    expected = np.sum(rendered * weight) * grid.subpixel_scale**2
    scale = rendered.sum() * grid.subpixel_scale**2
    assert image.sum() == pytest.approx(expected, rel=1e-10, abs=1e-12 * scale)


# ------------------------------------------------------------------------------ convexity
@properties
@given(data=st.data(), tracer_scale=tracer_scales)
def test_tracer_map_is_a_convex_combination_of_the_intrinsic_tracer(data, tracer_scale):
    """Each pixel lies between the extremes of the intrinsic tracer (``10**Z`` for log
    averaging) over the lit sample points its PSF window reaches and over its own sub-pixels
    (the empty-sky fallback), up to round-off. PSFs here have non-negative kernels.
    """
    grid = data.draw(grids(), label="grid")
    psf = data.draw(psfs(grid, resample=False), label="psf")
    components = data.draw(scenes(grid), label="components")
    image, tracer_map, lights, f = observed(components, grid, psf, tracer_scale)
    pad = psf.half_width(grid.subpixel_scale)
    s, (ny, nx) = grid.supersampling, grid.shape
    window = 2 * pad + 1
    field = (slice(pad, pad + ny * s), slice(pad, pad + nx * s))
    lo = ndimage.minimum_filter(
        np.where(lights > 0, f, np.inf).min(0), window, mode="constant", cval=np.inf
    )[field]
    hi = ndimage.maximum_filter(
        np.where(lights > 0, f, -np.inf).max(0), window, mode="constant", cval=-np.inf
    )[field]
    lo = block(np.minimum(lo, f.min(0)[field]), s, np.min)
    hi = block(np.maximum(hi, f.max(0)[field]), s, np.max)
    tol = roundoff(image, np.abs(f).max(), lights.sum(0), grid)
    value = linear(tracer_map, tracer_scale)
    assert np.all(value >= lo - tol), np.max(lo - tol - value)
    assert np.all(value <= hi + tol), np.max(value - hi - tol)


# ------------------------------------------------------------------------------ constant
@settings(properties, max_examples=15)
@given(data=st.data(), tracer_scale=tracer_scales)
def test_a_constant_tracer_gives_a_constant_map(data, tracer_scale):
    """Whatever the light and PSF: to 1e-10 wherever a pixel has 1e-4 of the brightest pixel's
    light, and within the round-off bound everywhere (up to 7e-4 relative was measured in
    pixels without light, where FFT round-off is divided by 1e-13 of the peak).
    """
    grid = data.draw(grids(), label="grid")
    psf = data.draw(psfs(grid, resample=False), label="psf")
    value = data.draw(st.floats(-1.0, 9.0), label="value")
    as_tracers = [
        lambda: pmt.Constant(value=value),
        lambda: value,
        lambda: pmt.LinearGradient(x0=0.3, y0=-0.2, central=value, gradient=0.0, q=0.5, phi=1.0),
    ]
    components = [
        pmt.Component(light, data.draw(st.sampled_from(as_tracers))())
        for light in data.draw(
            st.lists(light_profiles(grid), min_size=1, max_size=3), label="lights"
        )
    ]
    image, tracer_map, lights, _ = observed(components, grid, psf, tracer_scale)
    error = np.abs(tracer_map - value) / max(1.0, abs(value))
    assert error[image >= 1e-4 * image.max()].max() <= 1e-10
    assert np.all(error <= roundoff(image, 1.0, lights.sum(0), grid))


# ------------------------------------------------------------------------------ shift
@settings(properties, max_examples=8)
@given(data=st.data(), tracer_scale=tracer_scales)
def test_shifting_a_galaxy_by_whole_pixels_shifts_its_maps(data, tracer_scale):
    """Every pixel of the shifted maps whose source pixel is in the field matches it: the
    field is padded by the PSF half-width, so no pixel near an edge is special."""
    grid = data.draw(grids(), label="grid")
    psf = data.draw(psfs(grid), label="psf")
    di = data.draw(st.integers(-(grid.ny - 1), grid.ny - 1), label="rows")
    dj = data.draw(st.integers(-(grid.nx - 1), grid.nx - 1), label="columns")
    assume(di or dj)
    dx, dy = dj * grid.pixel_scale, di * grid.pixel_scale
    n = data.draw(st.integers(1, 3), label="n_components")
    originals, shifted = [], []
    for _ in range(n):
        light = data.draw(light_profiles(grid))
        tracer = data.draw(tracers(grid, kinds=("constant", "gradient")))
        if isinstance(tracer, pmt.LinearGradient):
            moved_tracer = pmt.LinearGradient(
                x0=tracer.x0 + dx,
                y0=tracer.y0 + dy,
                central=tracer.central,
                gradient=tracer.gradient,
                q=tracer.q,
                phi=tracer.phi,
            )
        else:
            moved_tracer = tracer
        moved = {"x0": light.x0 + dx, "y0": light.y0 + dy, "amplitude": light.amplitude}
        moved.update(q=light.q, phi=light.phi)
        if isinstance(light, pmt.Gaussian):
            moved_light = pmt.Gaussian(sigma=light.sigma, **moved)
        else:  # an exponential is a Sersic with n = 1
            moved_light = pmt.Sersic(r_eff=light.r_eff, n=light.n, **moved)
        originals.append(pmt.Component(light, tracer))
        shifted.append(pmt.Component(moved_light, moved_tracer))
    image, tracer_map, lights, f = observed(originals, grid, psf, tracer_scale)
    image2, tracer_map2, lights2, f2 = observed(shifted, grid, psf, tracer_scale)
    source = (slice(max(0, -di), grid.ny - max(0, di)), slice(max(0, -dj), grid.nx - max(0, dj)))
    target = (slice(max(0, di), grid.ny + min(0, di)), slice(max(0, dj), grid.nx + min(0, dj)))
    fft_peak = grid.pixel_area * max(lights.sum(0).max(), lights2.sum(0).max())
    np.testing.assert_allclose(image2[target], image[source], rtol=1e-9, atol=1e-12 * fft_peak)
    # the empty-sky blend depends on the brightest pixel in the field, which moves
    f_max = max(np.abs(f).max(), np.abs(f2).max())
    f_spread = max(f.max(), f2.max()) - min(f.min(), f2.min())
    tol = (roundoff(image, f_max, lights.sum(0), grid) + empty_sky_blend(image, f_spread))[
        source
    ] + (roundoff(image2, f_max, lights2.sum(0), grid) + empty_sky_blend(image2, f_spread))[target]
    value, value2 = linear(tracer_map, tracer_scale), linear(tracer_map2, tracer_scale)
    error = np.abs(value2[target] - value[source])
    lit = (image[source] > LIT * image.max()) & (image2[target] > LIT * image2.max())
    assert np.all(error[lit] <= tol[lit]), np.max(error[lit] - tol[lit])


# ------------------------------------------------------------------------------ symmetry
@settings(properties, max_examples=15)
@given(data=st.data(), tracer_scale=tracer_scales)
def test_a_circular_galaxy_and_psf_give_maps_symmetric_under_rotation(data, tracer_scale):
    """Circular components and circular tracers centred on the centre of a square field, with
    a Gaussian, Moffat or 90-degree-symmetric pixel PSF."""
    grid = data.draw(grids(square=True), label="grid")
    psf = data.draw(psfs(grid, c4_symmetric=True), label="psf")
    centre = grid.center
    component = st.builds(
        pmt.Component,
        light_profiles(grid, centre=centre, circular=True),
        tracers(grid, kinds=("constant", "gradient"), centre=centre, circular=True),
    )
    components = data.draw(st.lists(component, min_size=1, max_size=3), label="components")
    image, tracer_map, lights, f = observed(components, grid, psf, tracer_scale)
    fft_peak = grid.pixel_area * lights.sum(0).max()
    np.testing.assert_allclose(np.rot90(image), image, rtol=1e-9, atol=1e-12 * fft_peak)
    tol = roundoff(image, np.abs(f).max(), lights.sum(0), grid)
    value = linear(tracer_map, tracer_scale)
    error = np.abs(np.rot90(value) - value)
    assert np.all(error <= tol + np.rot90(tol)), np.max(error - tol - np.rot90(tol))


# ------------------------------------------------------------------------------ adjoint
@settings(properties, max_examples=60)
@given(data=st.data())
def test_the_correlation_is_the_adjoint_of_the_convolution(data):
    """``<K x, y> = <x, K^T y>`` for random batches, image and kernel shapes (kernel stacks
    broadcast against the leading axes)."""
    lead = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2), label="batch"))
    m1, m2 = data.draw(st.integers(1, 30), label="m1"), data.draw(st.integers(1, 30), label="m2")
    k1, k2 = data.draw(st.integers(1, m1), label="k1"), data.draw(st.integers(1, m2), label="k2")
    n_kernel_axes = data.draw(st.integers(0, len(lead)), label="kernel batch axes")
    kernel_lead = tuple(
        data.draw(st.sampled_from([1, n])) for n in lead[len(lead) - n_kernel_axes :]
    )
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(*kernel_lead, k1, k2))
    x = rng.normal(size=(*lead, m1, m2))
    y = rng.normal(size=(*lead, m1 - k1 + 1, m2 - k2 + 1))
    kx = FixedKernelConvolution(kernel).convolve(x)
    kty = FixedKernelCorrelation(kernel).correlate(y)
    assert kx.shape == y.shape and kty.shape == x.shape
    lhs, rhs = np.sum(kx * y), np.sum(x * kty)
    scale = np.sum(np.abs(kx * y)) + np.sum(np.abs(x * kty))
    assert abs(lhs - rhs) <= 1e-12 * scale


# ------------------------------------------------------------------------------ batching
@st.composite
def batched_components(draw, grid, n):
    """A component whose parameters are each shared (a number) or per galaxy (``(n,)``),
    and the ``n`` single-galaxy components it stands for."""
    half_x = grid.nx * grid.pixel_scale / 2
    half_y = grid.ny * grid.pixel_scale / 2

    def parameter(values):
        if draw(st.booleans(), label="per galaxy"):
            return np.array([draw(values) for _ in range(n)])
        return draw(values)

    kind = draw(st.sampled_from(["sersic", "exponential", "gaussian"]))
    light = {
        "x0": parameter(st.floats(-1.3, 1.3).map(lambda u: grid.center[0] + u * half_x)),
        "y0": parameter(st.floats(-1.3, 1.3).map(lambda u: grid.center[1] + u * half_y)),
        "amplitude": parameter(st.floats(0.1, 10.0)),
        "q": parameter(st.floats(0.2, 1.0)),
        "phi": parameter(st.floats(0.0, np.pi)),
    }
    size = parameter(st.floats(0.3, 4.0).map(lambda u: u * grid.pixel_scale))
    if kind == "gaussian":
        light["sigma"] = size
    else:
        light["r_eff"] = size
    if kind == "sersic":
        light["n"] = parameter(st.floats(0.5, 4.0))
    profile = {"sersic": pmt.Sersic, "exponential": pmt.Exponential, "gaussian": pmt.Gaussian}
    if draw(st.booleans(), label="gradient"):
        tracer = {
            "x0": parameter(st.floats(-1.0, 1.0).map(lambda u: grid.center[0] + u)),
            "y0": parameter(st.floats(-1.0, 1.0).map(lambda u: grid.center[1] + u)),
            "central": parameter(st.floats(-1.0, 9.0)),
            "gradient": parameter(st.floats(-1.0, 1.0)),
            "q": parameter(st.floats(0.2, 1.0)),
            "phi": parameter(st.floats(0.0, np.pi)),
        }
        tracer_class = pmt.LinearGradient
    else:
        tracer = {"value": parameter(st.floats(-1.0, 9.0))}
        tracer_class = pmt.Constant

    def galaxy(g):
        return {k: v[g] if np.ndim(v) else v for k, v in light.items()}, {
            k: v[g] if np.ndim(v) else v for k, v in tracer.items()
        }

    batch = pmt.Component(profile[kind](**light), tracer_class(**tracer))
    singles = [
        pmt.Component(profile[kind](**lk), tracer_class(**tk)) for lk, tk in map(galaxy, range(n))
    ]
    return batch, singles


@settings(properties, max_examples=10)
@given(data=st.data(), tracer_scale=tracer_scales)
def test_a_batch_of_galaxies_equals_a_loop_over_them(data, tracer_scale):
    """Per-galaxy parameters (some shared) and one PSF or one PSF per galaxy: the batched
    maps ``(N, ny, nx)`` equal the galaxies observed one at a time."""
    n = data.draw(st.integers(2, 3), label="n_galaxies")
    grid = data.draw(grids(max_side=12), label="grid")
    per_galaxy_psf = data.draw(st.booleans(), label="one PSF per galaxy")
    if per_galaxy_psf:
        psf_list = data.draw(st.lists(psfs(grid), min_size=n, max_size=n), label="psfs")
    else:
        psf_list = [data.draw(psfs(grid), label="psf")] * n
    drawn = [
        data.draw(batched_components(grid, n), label=f"component {i}")
        for i in range(data.draw(st.integers(1, 2), label="n_components"))
    ]
    # at least one parameter must carry the galaxy axis, or the batch has no length
    assume(per_galaxy_psf or any(v.ndim for c, _ in drawn for v in c.parameters().values()))
    batch = [c for c, _ in drawn]
    singles = [[s[g] for _, s in drawn] for g in range(n)]
    widest = max(psf_list, key=lambda p: p.half_width(grid.subpixel_scale))
    x, y, _ = sample_points(grid, widest)
    outputs = list(
        pmt.observe(
            batch,
            grid,
            psf_list if per_galaxy_psf else psf_list[0],
            tracer_scale=tracer_scale,
            method="full",
        )
    )
    for g in range(n):
        outputs += pmt.observe(
            singles[g], grid, psf_list[g], tracer_scale=tracer_scale, method="full"
        )
        outputs += [sum(c.light.surface_brightness(x, y) for c in singles[g])]
        outputs += [linear(c.tracer(x, y), tracer_scale) for c in singles[g]]
    image, tracer_map, *per_galaxy = run(*outputs)
    assert image.shape == tracer_map.shape == (n, *grid.shape)
    k = 3 + len(drawn)
    for g in range(n):
        single_image, single_map, light, *f = per_galaxy[g * k : (g + 1) * k]
        fft_peak = grid.pixel_area * light.max()
        np.testing.assert_allclose(image[g], single_image, rtol=1e-9, atol=1e-12 * fft_peak)
        f_max = np.abs(np.array(f)).max()
        tol = roundoff(single_image, f_max, light, grid) + roundoff(image[g], f_max, light, grid)
        error = np.abs(linear(tracer_map[g], tracer_scale) - linear(single_map, tracer_scale))
        assert np.all(error <= tol), (g, np.max(error - tol))
