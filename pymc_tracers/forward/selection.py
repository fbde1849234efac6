"""Choosing a renderer: in one place, with the reason recorded.

``observe(method="auto")`` takes the cheapest renderer that is exact (or within its stated
tolerance) for the model:

1. ``"linear"`` when the light and PSF are fixed and every tracer is linear in its
   parameters, averaged linearly, or, averaged as ``10**Z``, free only in an additive offset
   (exact, a few columns);
2. ``"radial"`` when the light and PSF are fixed and every tracer is radial about a fixed
   centre and shape (either averaging scale, within the tolerance);
3. otherwise the full path: ``"subpixel"`` (exact), ``"pixel"`` (``convolve_at="pixel"``) or
   ``"fitted_psf"`` (a PSF with free parameters).

Any of them can be asked for by name; one that does not apply is refused with the reason.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.traversal import ancestors

from pymc_tracers.forward.components import is_free
from pymc_tracers.forward.full import FittedPSFRenderer, PixelScaleRenderer, SubpixelRenderer
from pymc_tracers.forward.linear import LinearBasisRenderer, log_offset_problem
from pymc_tracers.forward.radial import RadialTransferRenderer

__all__ = ["METHODS", "choose_renderer"]

METHODS = ("auto", "full", "subpixel", "pixel", "fitted_psf", "linear", "radial")


def _symbolic(tracer) -> bool:
    x = pt.as_tensor_variable(np.zeros((1, 1)))
    return any(v.owner is None and is_free(v) for v in ancestors([tracer(x, x)]))


def _fixed_inputs_problem(components, numerics) -> str | None:
    """Why nothing can be precomputed (free PSF or light), or None."""
    if not numerics.is_fixed:
        return "the PSF has free parameters"
    if numerics.lens is not None and not numerics.lens.is_fixed:
        free = ", ".join(numerics.lens.free_parameters())
        return f"the lens has free parameters ({free}): the source-plane points move"
    for i, component in enumerate(components):
        free = [k for k, v in component.light.parameters().items() if is_free(v)]
        if free:
            return f"the light of component {i} has free parameters ({', '.join(free)})"
    return None


def _linear_problem(components, numerics, tracer_scale) -> str | None:
    problem = _fixed_inputs_problem(components, numerics)
    if problem:
        return problem
    for i, component in enumerate(components):
        tracer = component.tracer
        if not _symbolic(tracer):
            continue
        terms = tracer.linear_terms(numerics.point_sets)
        if terms is None:
            return f"the tracer of component {i} ({type(tracer).__name__}) has no linear terms"
        if tracer_scale == "log" and log_offset_problem(terms):
            return (
                f"log averaging of the tracer of component {i} ({type(tracer).__name__}): "
                + log_offset_problem(terms)
            )
    return None


def _radial_problem(components, numerics) -> str | None:
    problem = _fixed_inputs_problem(components, numerics)
    if problem:
        return problem
    for i, component in enumerate(components):
        tracer = component.tracer
        if _symbolic(tracer) and tracer.radial_form() is None:
            return (
                f"the tracer of component {i} ({type(tracer).__name__}) is not radial about a "
                "fixed centre, axis ratio and angle"
            )
    return None


def _full_class(numerics):
    if not numerics.is_fixed:
        return FittedPSFRenderer
    return SubpixelRenderer if numerics.name == "subpixel" else PixelScaleRenderer


def choose_renderer(
    components, numerics, tracer_scale, n_galaxies, method, *, tolerance, dynamic_range
):
    """Build the renderer ``method`` asks for (see the module docstring).

    Raises
    ------
    ValueError
        For an unknown method, or one that does not apply to this model (with the reason).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    transfer_options = dict(tolerance=tolerance, dynamic_range=dynamic_range)
    args = (components, numerics, tracer_scale, n_galaxies)
    linear = _linear_problem(components, numerics, tracer_scale)
    radial = _radial_problem(components, numerics)
    full = _full_class(numerics)

    if method == "linear":
        if linear:
            raise ValueError(f"method='linear' does not apply: {linear}")
        renderer = LinearBasisRenderer(*args, **transfer_options)
        renderer.reason = "asked for"
    elif method == "radial":
        if radial:
            raise ValueError(f"method='radial' does not apply: {radial}")
        renderer = RadialTransferRenderer(*args, **transfer_options)
        renderer.reason = "asked for"
    elif method in ("subpixel", "pixel", "fitted_psf"):
        if full.path != method:
            raise ValueError(
                f"method={method!r} does not apply: this model takes the {full.path!r} full "
                "path (convolve_at chooses 'subpixel' or 'pixel'; 'fitted_psf' is for PSFs "
                "with free parameters)"
            )
        renderer = full(*args)
        renderer.reason = "asked for"
    elif method == "full":
        renderer = full(*args)
        renderer.reason = "asked for (method='full')"
    elif linear is None:
        renderer = LinearBasisRenderer(*args, **transfer_options)
        renderer.reason = (
            "fixed light and PSF; linear averaging of tracers linear in their parameters"
            if tracer_scale == "linear"
            else "fixed light and PSF; log averaging of a free offset on a fixed structure"
        )
    elif radial is None:
        renderer = RadialTransferRenderer(*args, **transfer_options)
        renderer.reason = "fixed light and PSF; radial tracers"
    else:
        renderer = full(*args)
        renderer.reason = f"no precomputation applies: {radial}"
    return renderer
