"""The general renderers: render every component, convolve and bin on every evaluation.

They apply to every model (free light, fitted PSFs, any tracer field) and are exact to
float64 round-off (paper eqs. 1-3): light and light x f(Z) are rendered on the numerics'
sample points, convolved in one batched FFT (the components are summed first, since
convolution is linear) and binned to data pixels.
"""

from __future__ import annotations

import pytensor.tensor as pt

from pymc_tracers.forward.base import PSFSwapError, RenderedMaps, Renderer
from pymc_tracers.forward.ratio import light_weighted_ratio

__all__ = ["FullRenderer", "SubpixelRenderer", "PixelScaleRenderer", "FittedPSFRenderer"]


def render_fields(components, points, tracer_scale, n_galaxies):
    """Light, light x f(Z) and the unweighted mean of f(Z) at each set of sample points."""
    rendered = []
    for x, y in points:
        light = weighted = averaged_tracer = 0.0
        for component in components:
            surface_brightness = component.light.surface_brightness(x, y)
            tracer = component.tracer(pt.as_tensor_variable(x), pt.as_tensor_variable(y))
            linear_tracer = tracer if tracer_scale == "linear" else 10.0**tracer
            light = light + surface_brightness
            weighted = weighted + surface_brightness * linear_tracer
            averaged_tracer = averaged_tracer + linear_tracer / len(components)
        light, weighted, averaged_tracer = pt.broadcast_arrays(light, weighted, averaged_tracer)
        if n_galaxies is not None and light.ndim == 2:
            light, weighted, averaged_tracer = (
                pt.broadcast_to(v, (n_galaxies, *v.shape))
                for v in (light, weighted, averaged_tracer)
            )
        rendered.append((light, weighted, averaged_tracer))
    return rendered


class FullRenderer(Renderer):
    """Render, convolve and bin on every evaluation (see the module docstring)."""

    path = "full"

    def __init__(self, components, numerics, tracer_scale, n_galaxies):
        super().__init__(components, numerics, tracer_scale, n_galaxies)
        numerics.check_render_size()
        self._hold_psf()

    def _render(self):
        numerics = self.numerics
        rendered = render_fields(
            self.components, numerics.point_sets, self.tracer_scale, self.n_galaxies
        )
        # light and light x f(Z) go through one batched convolution (leading axis of 2)
        binned = numerics.convolve_and_bin(
            [pt.stack([light, weighted]) for light, weighted, _ in rendered]
        )
        light_sum, weighted_sum = binned[0], binned[1]
        fallback = numerics.pixel_mean([averaged for _, _, averaged in rendered])
        tracer_map = light_weighted_ratio(weighted_sum, light_sum, fallback, self.tracer_scale)
        return RenderedMaps(light_sum * numerics.flux_scale, tracer_map, light_sum, weighted_sum)

    def describe(self):
        n = sum(x.size for x, _ in self.numerics.image_point_sets)
        return f"{self.path}: renders {n} samples per galaxy and convolves them every evaluation"


class SubpixelRenderer(FullRenderer):
    """Exact: convolve on the supersampled grid with the PSF integrated over sub-pixels."""

    path = "subpixel"


class PixelScaleRenderer(FullRenderer):
    """Integrate profiles over pixels on the supersampled grid, convolve at the pixel scale.

    ``s^2`` times smaller FFTs; the error is second order in pixel / PSF width
    (docs/forward_model.md).
    """

    path = "pixel"


class FittedPSFRenderer(FullRenderer):
    """The PSF has free parameters (e.g. a fitted FWHM): its kernel is part of the graph."""

    path = "fitted_psf"

    def psf_updates(self, psf):
        raise PSFSwapError(
            "this model fits its PSF (the 'fitted_psf' renderer): there is no fixed PSF to swap"
        )
