"""Lensed forward model against lenstronomy's ``TracerModelSource`` with ``lens_model_class``.

Same scenes as tests/test_lenstronomy.py (Sersic sources and UNIFORM / LINEAR /
LINEAR_ELLIPSE tracers translated exactly between the conventions, the kernel handed to both
on the sub-pixel scale, the whole convolution on the supersampled grid), now behind lenses:
SIE + external shear with a source on the caustic (four images), a deflection map
interpolated bilinearly (lenstronomy's ``INTERPOL``), a cluster-like NFW + point mass +
convergence sheet, and a cored NIE + SIS pair. lenstronomy ray-shoots every sub-pixel and
evaluates the sources there, which is what ``pmt.observe(..., lens=...)`` does; the maps must
agree to 1e-10 relative on pixels with light above 1e-6 of the peak, beyond the kernel's reach
of the edges (lenstronomy convolves a zero-padded field, pmt renders a padded one).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("lenstronomy")

from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.tracer_model import TracerModelSource
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LensModel.Profiles.sersic_utils import SersicUtil
from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Util import param_util
from scipy import special

import pymc_tracers as pmt
from pymc_tracers import lensing

RTOL = 1e-10
LIGHT_FRACTION = 1e-6


def _sie(theta_E, q, phi, x0, y0):
    e1, e2 = param_util.phi_q2_ellipticity(phi, q)
    ours = lensing.SIE(theta_E=theta_E, q=q, phi=phi, x0=x0, y0=y0)
    return ours, "SIE", {"theta_E": theta_E, "e1": e1, "e2": e2, "center_x": x0, "center_y": y0}


def _deflection_map_case():
    """A tabulated SIE + NFW field on a 0.05" grid, interpolated by both codes."""
    x_axis = np.linspace(-3.0, 3.0, 121)
    y_axis = np.linspace(-3.2, 3.1, 127)
    xx, yy = np.meshgrid(x_axis, y_axis)
    truth = lensing.SIE(theta_E=0.9, q=0.75, phi=0.3, x0=0.05, y0=-0.1) + lensing.NFW(
        Rs=2.0, alpha_Rs=0.4, x0=-0.4, y0=0.3
    )
    ax, ay = truth.deflection_numpy(xx, yy)
    ours = lensing.DeflectionMap(ax, ay, x=x_axis, y=y_axis)
    kwargs = {"grid_interp_x": x_axis, "grid_interp_y": y_axis, "f_x": ax, "f_y": ay}
    return [ours], ["INTERPOL"], [kwargs]


def lens_case(kind):
    """(pmt lens models, lenstronomy names, lenstronomy kwargs) and a source position near
    which the source lies (arcsec)."""
    if kind == "sie+shear":
        sie, name, kw = _sie(1.0, 0.7, 0.5, 0.02, -0.03)
        shear = lensing.ExternalShear(gamma1=0.04, gamma2=-0.03)
        return (
            [sie, shear],
            [name, "SHEAR"],
            [kw, {"gamma1": 0.04, "gamma2": -0.03, "ra_0": 0.0, "dec_0": 0.0}],
            (0.05, 0.03),  # inside the tangential caustic: four images
        )
    if kind == "round_sie+shear":  # e1 = e2 = 0: both codes cap q at 1 - 1e-8
        sie, name, kw = _sie(0.9, 1.0, 0.0, -0.05, 0.04)
        shear = lensing.ExternalShear(gamma1=-0.05, gamma2=0.02, x0=0.1, y0=0.0)
        return (
            [sie, shear],
            [name, "SHEAR"],
            [kw, {"gamma1": -0.05, "gamma2": 0.02, "ra_0": 0.1, "dec_0": 0.0}],
            (0.0, 0.05),
        )
    if kind == "deflection_map":
        models, names, kwargs = _deflection_map_case()
        return models, names, kwargs, (0.1, -0.05)
    if kind == "cluster":
        models = [
            lensing.NFW(Rs=3.0, alpha_Rs=0.9, x0=-0.2, y0=0.1),
            lensing.PointMass(theta_E=0.25, x0=0.6, y0=0.4),
            lensing.ConvergenceSheet(kappa=0.08),
        ]
        names = ["NFW", "POINT_MASS", "CONVERGENCE"]
        kwargs = [
            {"Rs": 3.0, "alpha_Rs": 0.9, "center_x": -0.2, "center_y": 0.1},
            {"theta_E": 0.25, "center_x": 0.6, "center_y": 0.4},
            {"kappa": 0.08, "ra_0": 0.0, "dec_0": 0.0},
        ]
        return models, names, kwargs, (0.0, 0.0)
    if kind == "nie+sis":
        e1, e2 = param_util.phi_q2_ellipticity(-0.7, 0.6)
        models = [
            lensing.NIE(theta_E=0.8, core=0.15, q=0.6, phi=-0.7, x0=0.1, y0=0.0),
            lensing.SIS(theta_E=0.2, x0=-0.9, y0=0.5),
        ]
        names = ["NIE", "SIS"]
        kwargs = [
            {"theta_E": 0.8, "e1": e1, "e2": e2, "s_scale": 0.15, "center_x": 0.1, "center_y": 0.0},
            {"theta_E": 0.2, "center_x": -0.9, "center_y": 0.5},
        ]
        return models, names, kwargs, (0.15, 0.1)
    raise ValueError(kind)  # pragma: no cover


CASES = [
    {
        "id": "round_sie+shear-s3-linear",
        "lens": "round_sie+shear",
        "seed": 5,
        "s": 3,
        "scale": "linear",
        "npix": 37,
        "kernel_pix": 5,
        "n_components": 1,
    },
    {
        "id": "sie+shear-s3-log",
        "lens": "sie+shear",
        "seed": 1,
        "s": 3,
        "scale": "log",
        "npix": 41,
        "kernel_pix": 5,
        "n_components": 2,
    },
    {
        "id": "deflection_map-s3-linear",
        "lens": "deflection_map",
        "seed": 2,
        "s": 3,
        "scale": "linear",
        "npix": 45,
        "kernel_pix": 5,
        "n_components": 1,
    },
    {
        "id": "cluster-s3-linear",
        "lens": "cluster",
        "seed": 3,
        "s": 3,
        "scale": "linear",
        "npix": 41,
        "kernel_pix": 5,
        "n_components": 2,
    },
    {
        "id": "nie+sis-s1-log",
        "lens": "nie+sis",
        "seed": 4,
        "s": 1,
        "scale": "log",
        "npix": 37,
        "kernel_pix": 7,
        "n_components": 1,
    },
]


def _kernel(s, kernel_pix, pixel_scale, rng):
    """A lopsided kernel (elongated core plus an off-centre blob): no symmetry to hide a
    flipped or transposed convolution."""
    n = s * kernel_pix
    c = (np.arange(n) - (n - 1) / 2) * pixel_scale / s
    x, y = np.meshgrid(c, c)
    sigma = rng.uniform(1.2, 1.8) * pixel_scale / 2.3548
    theta = rng.uniform(0, np.pi)
    u = np.cos(theta) * x + np.sin(theta) * y
    v = -np.sin(theta) * x + np.cos(theta) * y
    k = np.exp(-0.5 * ((u / sigma) ** 2 + (v / (0.6 * sigma)) ** 2))
    k += 0.25 * np.exp(-0.5 * ((x - 0.5 * pixel_scale) ** 2 + y**2) / (0.7 * sigma) ** 2)
    return k / k.sum()


def make_scene(case):
    rng = np.random.default_rng(case["seed"])
    lens_models, lens_names, lens_kwargs, (sx, sy) = lens_case(case["lens"])
    log = case["scale"] == "log"
    light_types, light_kwargs, tracer_types, tracer_kwargs = [], [], [], []
    partition, components = [], []
    for _ in range(case["n_components"]):
        n, R_s = rng.uniform(0.8, 2.5), rng.uniform(0.1, 0.3)
        q, phi, amp = rng.uniform(0.5, 0.9), rng.uniform(-np.pi, np.pi), rng.uniform(0.5, 2.0)
        x0, y0 = sx + rng.uniform(-0.08, 0.08), sy + rng.uniform(-0.08, 0.08)
        e1, e2 = param_util.phi_q2_ellipticity(phi, q)
        b_lens, b_exact = float(SersicUtil.b_n(n)), float(special.gammaincinv(2 * n, 0.5))
        light = pmt.Sersic(
            x0=x0,
            y0=y0,
            r_eff=R_s / math.sqrt(q) * (b_exact / b_lens) ** n,
            n=n,
            amplitude=amp * math.exp(b_lens - b_exact),
            q=q,
            phi=phi,
        )
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
        light_types.append("SERSIC_ELLIPSE")
        # an elliptical linear gradient, positive over the source plane (no clipping acts)
        central = rng.uniform(8.0, 8.8) if log else rng.uniform(1.0, 2.0)
        tq, tphi = rng.uniform(0.5, 0.9), rng.uniform(-np.pi, np.pi)
        gradient = rng.uniform(-0.05, 0.05) * central
        te1, te2 = param_util.phi_q2_ellipticity(tphi, tq)
        tracer_types.append("LINEAR_ELLIPSE")
        tracer_kwargs.append(
            {
                "amp": central,
                "k": gradient / math.sqrt(tq),
                "e1": te1,
                "e2": te2,
                "center_x": x0,
                "center_y": y0,
            }
        )
        tracer = pmt.LinearGradient(
            x0=x0, y0=y0, central=central, gradient=gradient, q=tq, phi=tphi
        )
        partition.append([[len(light_types) - 1], [len(tracer_types) - 1]])
        components.append(pmt.Component(light, tracer))
    pixel_scale = rng.uniform(0.06, 0.1)
    return {
        "case": case,
        "pixel_scale": pixel_scale,
        "kernel": _kernel(case["s"], case["kernel_pix"], pixel_scale, rng),
        "lens": lens_models,
        "lens_names": lens_names,
        "lens_kwargs": lens_kwargs,
        "light_types": light_types,
        "light_kwargs": light_kwargs,
        "tracer_types": tracer_types,
        "tracer_kwargs": tracer_kwargs,
        "partition": partition,
        "components": components,
    }


def lenstronomy_maps(scene):
    case = scene["case"]
    s, npix, d = case["s"], case["npix"], scene["pixel_scale"]
    data = ImageData(
        image_data=np.zeros((npix, npix)),
        transform_pix2angle=np.diag([d, d]),
        ra_at_xy_0=-(npix - 1) / 2 * d,
        dec_at_xy_0=-(npix - 1) / 2 * d,
    )
    psf = PSF(
        psf_type="PIXEL", kernel_point_source=scene["kernel"], point_source_supersampling_factor=s
    )
    numerics = {
        "supersampling_factor": s,
        "supersampling_convolution": s > 1,
        "supersampling_kernel_size": case["kernel_pix"],
    }
    model = TracerModelSource(
        data,
        psf_class=psf,
        lens_model_class=LensModel(scene["lens_names"]),
        source_model_class=LightModel(scene["light_types"]),
        tracer_source_class=LightModel(scene["tracer_types"]),
        kwargs_numerics=numerics,
        tracer_partition=scene["partition"],
        tracer_type="LINEAR" if case["scale"] == "linear" else "LOG",
    )
    tracer = model.tracer_model(scene["tracer_kwargs"], scene["lens_kwargs"], scene["light_kwargs"])
    image = model.source_surface_brightness(scene["light_kwargs"], scene["lens_kwargs"])
    return image, tracer


def pmt_maps(scene, method="auto"):
    case = scene["case"]
    grid = pmt.PixelGrid((case["npix"],) * 2, scene["pixel_scale"], supersampling=case["s"])
    psf = pmt.PixelPSF(scene["kernel"], scene["pixel_scale"] / case["s"])
    obs = pmt.observe(
        scene["components"], grid, psf, case["scale"], lens=scene["lens"], method=method
    )
    return obs, pmt.evaluate([obs.image, obs.tracer_map])


@pytest.fixture(params=CASES, ids=[c["id"] for c in CASES], scope="module")
def scene(request):
    return make_scene(request.param)


def test_lensed_observe_matches_tracer_model_source(scene):
    case = scene["case"]
    ref_image, ref_tracer = lenstronomy_maps(scene)
    obs, (image, tracer) = pmt_maps(scene, method="full")
    assert obs.path == "subpixel"
    margin = math.ceil((case["s"] * case["kernel_pix"] - 1) // 2 / case["s"])
    mask = image > LIGHT_FRACTION * image.max()
    inner = np.zeros_like(mask)
    inner[margin:-margin, margin:-margin] = True
    mask &= inner
    assert mask.sum() > 50  # an arc, not a few pixels
    image_error = np.max(np.abs(image - ref_image)[mask] / ref_image[mask])
    tracer_error = np.max(np.abs(tracer - ref_tracer)[mask] / np.abs(ref_tracer[mask]))
    print(f"{case['id']}: {mask.sum()} pixels, image {image_error:.1e}, tracer {tracer_error:.1e}")
    assert image_error <= RTOL
    assert tracer_error <= RTOL


def test_sie_shear_scene_has_four_images_in_the_field():
    """The first scene is a multiple-image configuration (lenstronomy's lens-equation solver),
    so the agreement above covers multiple images of one source."""
    case = next(c for c in CASES if c["lens"] == "sie+shear")
    scene = make_scene(case)
    model = LensModel(scene["lens_names"])
    kw = scene["light_kwargs"][0]
    x, y = LensEquationSolver(model).image_position_from_source(
        kw["center_x"], kw["center_y"], scene["lens_kwargs"]
    )
    half = case["npix"] * scene["pixel_scale"] / 2
    assert len(x) == 4
    assert np.all(np.abs(x) < half - 0.3) and np.all(np.abs(y) < half - 0.3)
