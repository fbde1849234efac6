"""Cross-check ``pmt.observe`` against lenstronomy's ``TracerModelSource``.

lenstronomy (Birrer & Amara 2018; tracer model of Metha et al. 2024) is an independent
implementation of the same forward model: per component, the light-weighted tracer is
``conv(sum_i I_i Z_i) / conv(sum_i I_i)`` on a supersampled grid, binned to data pixels, with
``10**Z`` averaged for ``tracer_type="LOG"``. The parameters are translated exactly between the
two conventions (no loosened tolerances), so the maps must agree to round-off wherever the
comparison is meaningful:

* pixels whose light exceeds 1e-6 of the peak (the ratio is ill-conditioned on empty sky), and
* pixels farther than the kernel half-width from the edges: lenstronomy convolves the field
  zero-padded ("same" mode), while pmt renders a padded field so light just outside scatters in.

Conventions translated here (lenstronomy 1.14):

* ``SERSIC_ELLIPSE`` uses the approximation ``b'_n = 1.9992 n - 0.3271`` (``SersicUtil.b_n``)
  and, by default, the product-average radius ``R = sqrt(q x'^2 + y'^2 / q) = sqrt(q) r``, where
  ``r = sqrt(x'^2 + (y'/q)^2)`` is pmt's major-axis elliptical radius; with
  ``sersic_major_axis=True`` it uses ``R = r``. It floors ``R`` (and ``R_sersic``) at 1e-4"
  and zeroes the profile beyond ``1000 R_sersic``; no sample point here comes near either.
  Matching ``I = amp' exp(-b'[(R/R_s)^(1/n) - 1])`` pointwise to pmt's
  ``A exp(-b[(r/r_e)^(1/n) - 1])`` with exact ``b = gammaincinv(2n, 1/2)`` gives
  ``r_e = (R_s / sqrt(q)) (b/b')^n`` (``R_s (b/b')^n`` for the major-axis convention) and
  ``A = amp' exp(b' - b)``.
* ``(e1, e2) = (1-q)/(1+q) (cos 2 phi, sin 2 phi)``: the same ``phi`` (major axis,
  counter-clockwise from +x) and ``q = b/a`` as pmt.
* Tracers are lenstronomy *light* profiles: ``UNIFORM`` (``amp``) is a :class:`pmt.Constant`;
  ``LINEAR`` (``amp + k r``, circular) is a :class:`pmt.LinearGradient` with ``q = 1``;
  ``LINEAR_ELLIPSE`` (``amp + k R`` with the product-average ``R = sqrt(q) r``) is a
  ``LinearGradient`` with ``gradient = k sqrt(q)``. Both linear profiles clip negative values
  to zero, so the scenes keep them positive. Several tracer profiles in one partition are
  summed, as a constant plus a gradient is a ``LinearGradient`` with the constants added.
* ``tracer_partition = [[light indices, tracer indices], ...]`` pairs each component's light
  with its own tracer, which is ``pmt.Component(light, tracer)``; several light profiles in one
  partition are a :class:`~pymc_tracers.profiles.light.CompositeLight`.
* PSF: the kernel is drawn on the sub-pixel scale and handed to both unchanged. lenstronomy's
  ``supersampling_kernel_size`` is set to the whole kernel (in data pixels), so the entire
  convolution happens on the supersampled grid (``split_kernel`` then leaves an all-zero
  low-resolution remainder); its default of 5 would convolve the wings at data resolution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("lenstronomy")

import pytensor
import pytensor.tensor as pt
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.tracer_model import TracerModelSource
from lenstronomy.LensModel.Profiles.sersic_utils import SersicUtil
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Util import param_util, util
from scipy import special

import pymc_tracers as pmt
from pymc_tracers.grid import elliptical_radius_numpy
from pymc_tracers.profiles.light import RADIUS_SOFTENING

RTOL = 1e-10
LIGHT_FRACTION = 1e-6
#: Tolerance of the pointwise profile checks (round-off: exp of exponents up to ~20), on top of
#: the known effect of pmt's radius softening near profile centres.
POINTWISE_RTOL = 1e-11
#: lenstronomy's radius floor for Sersic profiles (SersicUtil smoothing), arcsec.
LENSTRONOMY_SMOOTHING = 1e-4


# ----------------------------------------------------------------------------- scenes


CASES = [
    # id, seed, light profiles per component, supersampling, tracer scale, field (pixels),
    # kernel size (data pixels), kernel kind, lenstronomy Sersic radius convention
    {
        "id": "1comp-s1-linear",
        "seed": 11,
        "lights": (1,),
        "s": 1,
        "scale": "linear",
        "npix": 25,
        "kernel_pix": 7,
        "kernel": "gaussian",
        "major_axis": False,
    },
    {
        "id": "2comp-s3-log",
        "seed": 22,
        "lights": (1, 1),
        "s": 3,
        "scale": "log",
        "npix": 31,
        "kernel_pix": 5,
        "kernel": "moffat",
        "major_axis": False,
    },
    {
        "id": "3comp-s5-linear",
        "seed": 33,
        "lights": (1, 1, 1),
        "s": 5,
        "scale": "linear",
        "npix": 27,
        "kernel_pix": 5,
        "kernel": "lopsided",
        "major_axis": False,
    },
    {
        "id": "3comp-s3-log",
        "seed": 44,
        "lights": (1, 1, 1),
        "s": 3,
        "scale": "log",
        "npix": 33,
        "kernel_pix": 7,
        "kernel": "lopsided",
        "major_axis": False,
    },
    {
        "id": "2comp-s5-log-majoraxis",
        "seed": 55,
        "lights": (1, 1),
        "s": 5,
        "scale": "log",
        "npix": 25,
        "kernel_pix": 5,
        "kernel": "gaussian",
        "major_axis": True,
    },
    {
        "id": "composite-s3-linear",
        "seed": 66,
        "lights": (2, 1),
        "s": 3,
        "scale": "linear",
        "npix": 41,
        "kernel_pix": 7,
        "kernel": "moffat",
        "major_axis": False,
    },
    {
        "id": "2comp-s1-log",
        "seed": 77,
        "lights": (1, 1),
        "s": 1,
        "scale": "log",
        "npix": 29,
        "kernel_pix": 9,
        "kernel": "lopsided",
        "major_axis": True,
    },
]


def _kernel(kind, s, kernel_pix, pixel_scale, rng):
    """A normalised odd kernel of ``s * kernel_pix`` sub-pixels drawn at sub-pixel centres."""
    n = s * kernel_pix
    sub = pixel_scale / s
    c = (np.arange(n) - (n - 1) / 2) * sub
    x, y = np.meshgrid(c, c)
    fwhm = rng.uniform(1.4, 2.2) * pixel_scale
    if kind == "gaussian":
        sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
        k = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    elif kind == "moffat":
        beta = rng.uniform(2.5, 4.0)
        alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
        k = (1 + (x**2 + y**2) / alpha**2) ** (-beta)
    elif kind == "lopsided":
        # elongated, rotated core plus an off-centre blob: no symmetry at all, so a flipped,
        # transposed or mis-centred kernel on either side would show
        sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
        theta = rng.uniform(0, np.pi)
        u = np.cos(theta) * x + np.sin(theta) * y
        v = -np.sin(theta) * x + np.cos(theta) * y
        k = np.exp(-0.5 * ((u / sigma) ** 2 + (v / (0.6 * sigma)) ** 2))
        k += 0.25 * np.exp(
            -0.5
            * (((x - 0.6 * pixel_scale) ** 2 + (y + 0.3 * pixel_scale) ** 2) / (0.7 * sigma) ** 2)
        )
    else:  # pragma: no cover
        raise ValueError(kind)
    return k / k.sum()


def make_scene(case):
    """Random scene in lenstronomy's parametrisation plus its exact pmt translation."""
    rng = np.random.default_rng(case["seed"])
    s, npix = case["s"], case["npix"]
    pixel_scale = rng.uniform(0.08, 0.12)
    center = tuple(rng.uniform(-0.3, 0.3, size=2))
    half = npix * pixel_scale / 2
    log = case["scale"] == "log"

    light_types, light_kwargs, light_profile_kwargs = [], [], []
    tracer_types, tracer_kwargs = [], []
    partition, components, sersics = [], [], []
    lens_bn = SersicUtil.b_n
    for n_light in case["lights"]:
        light_idx, pmt_lights = [], []
        for _ in range(n_light):
            n = rng.uniform(0.7, 4.0)
            R_s = rng.uniform(0.2, 0.8)
            q = rng.uniform(0.35, 0.9)
            phi = rng.uniform(-np.pi, np.pi)
            amp = rng.uniform(0.3, 3.0)
            x0, y0 = np.array(center) + rng.uniform(-0.35, 0.35, size=2) * half
            e1, e2 = param_util.phi_q2_ellipticity(phi, q)
            light_idx.append(len(light_types))
            light_types.append("SERSIC_ELLIPSE")
            light_profile_kwargs.append({"sersic_major_axis": case["major_axis"]})
            light_kwargs.append(
                {
                    "amp": amp,
                    "R_sersic": R_s,
                    "n_sersic": n,
                    "e1": e1,
                    "e2": e2,
                    "center_x": x0,
                    "center_y": y0,
                }
            )
            # exact translation (see the module docstring)
            b_lens = float(lens_bn(n))
            b_exact = float(special.gammaincinv(2 * n, 0.5))
            r_major = R_s if case["major_axis"] else R_s / math.sqrt(q)
            r_eff = r_major * (b_exact / b_lens) ** n
            amplitude = amp * math.exp(b_lens - b_exact)
            pmt_lights.append(
                pmt.Sersic(x0=x0, y0=y0, r_eff=r_eff, n=n, amplitude=amplitude, q=q, phi=phi)
            )
            sersics.append(pmt_lights[-1])

        # the component's tracer
        kind = rng.choice(["uniform", "linear", "linear_ellipse", "uniform+linear_ellipse"])
        central = rng.uniform(7.8, 9.0) if log else rng.uniform(0.5, 2.0)
        tx, ty = light_kwargs[light_idx[0]]["center_x"], light_kwargs[light_idx[0]]["center_y"]
        tx, ty = tx + rng.uniform(-0.1, 0.1), ty + rng.uniform(-0.1, 0.1)
        tq = 1.0 if kind == "linear" else rng.uniform(0.4, 0.9)
        tphi = 0.0 if kind == "linear" else rng.uniform(-np.pi, np.pi)
        # |gradient| * (largest radius in the padded field) <= 0.4 central: stays positive,
        # so lenstronomy's clipping of negative LINEAR values never acts
        r_max = (
            2 * math.hypot(half + abs(center[0] - tx) + 1.0, half + abs(center[1] - ty) + 1.0) / tq
        )
        gradient = rng.uniform(-0.4, 0.4) * central / r_max
        tracer_idx = []
        if kind == "uniform":
            tracer_idx.append(len(tracer_types))
            tracer_types.append("UNIFORM")
            tracer_kwargs.append({"amp": central})
            pmt_tracer = pmt.Constant(central)
        else:
            linear_part = central
            if kind == "uniform+linear_ellipse":
                offset = rng.uniform(0.2, 0.8) * central
                linear_part = central - offset
                tracer_idx.append(len(tracer_types))
                tracer_types.append("UNIFORM")
                tracer_kwargs.append({"amp": offset})
            tracer_idx.append(len(tracer_types))
            if kind == "linear":
                tracer_types.append("LINEAR")
                tracer_kwargs.append(
                    {"amp": linear_part, "k": gradient, "center_x": tx, "center_y": ty}
                )
            else:
                te1, te2 = param_util.phi_q2_ellipticity(tphi, tq)
                tracer_types.append("LINEAR_ELLIPSE")
                tracer_kwargs.append(
                    {
                        "amp": linear_part,
                        "k": gradient / math.sqrt(tq),
                        "e1": te1,
                        "e2": te2,
                        "center_x": tx,
                        "center_y": ty,
                    }
                )
            pmt_tracer = pmt.LinearGradient(
                x0=tx, y0=ty, central=central, gradient=gradient, q=tq, phi=tphi
            )
        partition.append([light_idx, tracer_idx])
        light = pmt_lights[0] if len(pmt_lights) == 1 else pmt_lights[0] + pmt_lights[1]
        components.append(pmt.Component(light, pmt_tracer))

    kernel = _kernel(case["kernel"], s, case["kernel_pix"], pixel_scale, rng)
    return {
        "case": case,
        "pixel_scale": pixel_scale,
        "center": center,
        "kernel": kernel,
        "light_types": light_types,
        "light_kwargs": light_kwargs,
        "light_profile_kwargs": light_profile_kwargs,
        "tracer_types": tracer_types,
        "tracer_kwargs": tracer_kwargs,
        "partition": partition,
        "components": components,
        "sersics": sersics,
    }


# ----------------------------------------------------------------------------- both models


def build_lenstronomy(scene):
    case = scene["case"]
    s, npix, d = case["s"], case["npix"], scene["pixel_scale"]
    cx, cy = scene["center"]
    data = ImageData(
        image_data=np.zeros((npix, npix)),
        transform_pix2angle=np.diag([d, d]),
        ra_at_xy_0=cx - (npix - 1) / 2 * d,
        dec_at_xy_0=cy - (npix - 1) / 2 * d,
    )
    psf = PSF(
        psf_type="PIXEL", kernel_point_source=scene["kernel"], point_source_supersampling_factor=s
    )
    kwargs_numerics = {
        "supersampling_factor": s,
        "supersampling_convolution": s > 1,
        "supersampling_kernel_size": case["kernel_pix"],
    }
    light = LightModel(scene["light_types"], profile_kwargs_list=scene["light_profile_kwargs"])
    tracer = LightModel(scene["tracer_types"])
    model = TracerModelSource(
        data,
        psf_class=psf,
        source_model_class=light,
        tracer_source_class=tracer,
        kwargs_numerics=kwargs_numerics,
        tracer_partition=scene["partition"],
        tracer_type="LINEAR" if case["scale"] == "linear" else "LOG",
    )
    return model, light, tracer


def build_pmt(scene):
    case = scene["case"]
    grid = pmt.PixelGrid(
        (case["npix"], case["npix"]),
        scene["pixel_scale"],
        supersampling=case["s"],
        center=scene["center"],
    )
    psf = pmt.PixelPSF(scene["kernel"], scene["pixel_scale"] / case["s"])
    return grid, psf


def comparison_mask(image, case):
    """Pixels with light above 1e-6 of the peak and beyond the kernel reach of the edges."""
    s = case["s"]
    half_sub = (s * case["kernel_pix"] - 1) // 2
    margin = math.ceil(half_sub / s)
    mask = image > LIGHT_FRACTION * image.max()
    edge = np.zeros_like(mask)
    edge[margin:-margin, margin:-margin] = True
    return mask & edge, margin


def _relative_error(ours, ref):
    return np.abs(ours - ref) / np.abs(ref)


# ----------------------------------------------------------------------------- tests


@pytest.fixture(params=CASES, ids=[c["id"] for c in CASES], scope="module")
def scene(request):
    return make_scene(request.param)


def test_grids_and_profiles_agree_pointwise(scene):
    """Same sample points; same surface brightness and tracer at every one of them."""
    case = scene["case"]
    model, light, tracer = build_lenstronomy(scene)
    grid, psf = build_pmt(scene)
    s, n = case["s"], case["npix"]

    # the PSF reaches pmt unchanged, and lenstronomy convolves with the same array (both
    # divide the already-normalised kernel by its sum again: last-bit differences only)
    np.testing.assert_allclose(psf.kernel(grid.subpixel_scale), scene["kernel"], rtol=1e-14, atol=0)
    assert psf.half_width(grid.subpixel_scale) == (s * case["kernel_pix"] - 1) // 2
    conv = model.ImageNumerics.convolution_class
    if s > 1:
        np.testing.assert_allclose(conv._high_res_conv._kernel, scene["kernel"], rtol=1e-14, atol=0)
        assert not np.any(conv._low_res_conv._kernel)
    else:
        np.testing.assert_allclose(conv._kernel, scene["kernel"], rtol=1e-14, atol=0)

    # sub-pixel centres coincide
    ra, dec = model.ImageNumerics.coordinates_evaluate
    ra, dec = util.array2image(ra), util.array2image(dec)
    x, y = grid.supersampled_coordinates()
    assert ra.shape == x.shape == (n * s, n * s)
    np.testing.assert_allclose(ra, x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dec, y, rtol=0, atol=1e-12)

    # render points (pmt pads the field) stay clear of lenstronomy's 1e-4" radius floor
    render = grid.render_grid(psf.half_width(grid.subpixel_scale))
    xs, ys = pt.dmatrix("x"), pt.dmatrix("y")

    def evaluate_on_render_grid(expression):
        function = pytensor.function([xs, ys], expression, on_unused_input="ignore")
        return function(render.x, render.y)

    for i, kw in enumerate(scene["light_kwargs"]):
        sersic = light.func_list[i]
        radius = sersic.get_distance_from_center(
            render.x, render.y, kw["e1"], kw["e2"], kw["center_x"], kw["center_y"]
        )
        assert radius.min() > LENSTRONOMY_SMOOTHING

    # surface brightness, profile by profile, on the padded render grid. pmt softens radii as
    # sqrt(r^2 + eps^2) (eps = RADIUS_SOFTENING, for finite gradients at the centre), which
    # shifts ln I by (b/n) (r/r_e)^(1/n) eps^2 / (2 r^2): allowed for explicitly.
    for i, sersic in enumerate(scene["sersics"]):
        ours = evaluate_on_render_grid(sersic.surface_brightness(xs, ys))
        ref = light.surface_brightness(
            render.x.ravel(), render.y.ravel(), scene["light_kwargs"], k=i
        ).reshape(render.x.shape)
        r = elliptical_radius_numpy(render.x, render.y, sersic.x0, sersic.y0, sersic.q, sersic.phi)
        bn = special.gammaincinv(2 * sersic.n, 0.5)
        softening = (
            bn / sersic.n * (r / sersic.r_eff) ** (1 / sersic.n) * RADIUS_SOFTENING**2 / (2 * r**2)
        )
        assert np.all(_relative_error(ours, ref) <= POINTWISE_RTOL + 1.01 * softening)
        assert np.max(_relative_error(ours, ref)) < 1e-9

    # each component's light and tracer (its partition in lenstronomy)
    for component, (light_idx, tracer_idx) in zip(scene["components"], scene["partition"]):
        ours = evaluate_on_render_grid(component.light.surface_brightness(xs, ys))
        ref = light.surface_brightness(
            render.x.ravel(), render.y.ravel(), scene["light_kwargs"], k=light_idx
        ).reshape(render.x.shape)
        assert np.max(_relative_error(ours, ref)) < 1e-9
        ours_t = evaluate_on_render_grid(component.tracer(xs, ys))
        ref_t = tracer.surface_brightness(
            render.x.ravel(), render.y.ravel(), scene["tracer_kwargs"], k=tracer_idx
        )
        ref_t = ref_t.reshape(render.x.shape)
        assert np.min(ref_t) > 0  # lenstronomy's LINEAR clipping never acts
        assert np.max(_relative_error(ours_t, ref_t)) < POINTWISE_RTOL


def test_observe_matches_tracer_model_source(scene):
    """Image and light-weighted tracer map agree to <= 1e-10 relative (in practice ~1e-12)."""
    case = scene["case"]
    model, _, _ = build_lenstronomy(scene)
    grid, psf = build_pmt(scene)

    image, tracer_map = pmt.observe(scene["components"], grid, psf, tracer_scale=case["scale"])
    ours_image, ours_tracer = pmt.evaluate([image, tracer_map])

    ref_tracer = model.tracer_model(
        scene["tracer_kwargs"], kwargs_lens=[], kwargs_source=scene["light_kwargs"], de_lensed=True
    )
    ref_image = model.source_surface_brightness(scene["light_kwargs"], de_lensed=True)

    mask, margin = comparison_mask(ours_image, case)
    assert mask.sum() >= 0.5 * (case["npix"] - 2 * margin) ** 2  # the comparison is not vacuous

    image_error = _relative_error(ours_image, ref_image)[mask].max()
    tracer_error = _relative_error(ours_tracer, ref_tracer)[mask].max()
    print(
        f"{case['id']}: max relative error image {image_error:.2e}, tracer {tracer_error:.2e}"
        f" over {mask.sum()} pixels"
    )
    assert image_error <= RTOL
    assert tracer_error <= RTOL
    if case["scale"] == "log":
        # also the light-weighted mean of 10**Z itself, not only its log
        linear_error = _relative_error(10.0**ours_tracer, 10.0**ref_tracer)[mask].max()
        # a relative error e in Z is one of ln(10) |Z| e in 10**Z
        assert linear_error <= RTOL * np.log(10.0) * np.abs(ref_tracer[mask]).max()
