"""The forward model: what a telescope records of a galaxy's light and light-weighted tracer.

For components ``i`` with surface brightness ``I_i`` and intrinsic tracer ``Z_i``
(Metha et al. 2024, eqs. 1-3)::

    image      = bin(K * sum_i I_i) * subpixel_area
    tracer_map = bin(K * sum_i I_i f(Z_i)) / bin(K * sum_i I_i),   then f^-1

where ``K`` is the PSF on the supersampled grid, ``bin`` sums the sub-pixels of each data pixel
and ``f`` is the identity (``tracer_scale="linear"``) or ``10**Z`` (``"log"``, for abundances
quoted in dex such as 12+log(O/H)). Convolution is linear, so the components are summed before
convolving: one batched convolution of two images, whatever the number of components.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import zero_grad
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable

from pymc_tracers.convolution import FixedKernelConvolution, convolve_valid
from pymc_tracers.grid import PixelGrid, elliptical_radius_numpy
from pymc_tracers.profiles.light import LightProfile
from pymc_tracers.profiles.tracer import Constant as TracerConstant
from pymc_tracers.profiles.tracer import LinearGradient, as_tracer_profile
from pymc_tracers.psf import PSF

__all__ = ["Component", "observe", "evaluate", "TRACER_SCALES"]

TRACER_SCALES = ("linear", "log")

#: Light below this fraction of the brightest pixel's light is treated as empty sky when
#: forming the light-weighted ratio (where FFT round-off, ~1e-16, would dominate).
EMPTY_SKY_FRACTION = 1e-13


class Component:
    """A galaxy component: a light profile carrying a tracer profile.

    Parameters
    ----------
    light : LightProfile
        The surface-brightness profile that weights the tracer.
    tracer : TracerProfile, float, variable or callable
        The intrinsic tracer field. A number or variable means a constant; a callable
        ``f(x, y)`` (arcsec) is wrapped as an :class:`~pymc_tracers.Expression`.
    """

    def __init__(self, light, tracer):
        if not isinstance(light, LightProfile):
            raise TypeError(
                f"Component light must be a light profile (e.g. pmt.Sersic); got {type(light).__name__}"
            )
        self.light = light
        self.tracer = as_tracer_profile(tracer)

    def __repr__(self):
        return f"Component(light={self.light!r}, tracer={self.tracer!r})"


def _as_components(components) -> list[Component]:
    if isinstance(components, Component):
        return [components]
    if isinstance(components, Sequence) and components:
        if all(isinstance(c, Component) for c in components):
            return list(components)
    raise TypeError(
        "components must be a Component or a non-empty list of Components; "
        f"got {type(components).__name__}"
    )


def _check_tracer_scale(tracer_scale: str) -> str:
    if tracer_scale not in TRACER_SCALES:
        raise ValueError(
            f"unknown tracer_scale {tracer_scale!r}: use 'linear' for quantities averaged as they "
            "are (velocity, linear ratios) or 'log' for quantities in dex such as 12+log(O/H), "
            "which are averaged as 10**Z"
        )
    return tracer_scale


def observe(
    components, grid: PixelGrid, psf: PSF, tracer_scale: str = "linear", *, method="auto",
    convolve_at="subpixel",
):
    """Forward-model the observed light image and light-weighted tracer map.

    Parameters
    ----------
    components : Component or list of Component
        The galaxy (or galaxies) in the field.
    grid : PixelGrid
        Data pixels and supersampling. Profiles are rendered at sub-pixel centres on a field
        padded by the PSF half-width, so light just outside the field scatters in.
    psf : PSF
        Resampled to the sub-pixel scale ``grid.pixel_scale / grid.supersampling``.
    tracer_scale : {"linear", "log"}
        ``"linear"`` averages the tracer as it is; ``"log"`` averages ``10**Z`` and returns
        ``log10`` of the light-weighted mean (use for 12+log(O/H) and other dex quantities).
    method : {"auto", "full", "linear"}
        ``"full"`` renders and convolves on every evaluation. ``"linear"`` precomputes basis
        maps once and returns an exact linear combination of them; it applies when the PSF and
        every light profile are fixed, each tracer is a :class:`Constant` or a
        :class:`LinearGradient` with fixed centre, axis ratio and angle, and either
        ``tracer_scale="linear"`` or (for constants only) ``"log"``. An evaluation then costs
        O(pixels x parameters) instead of two FFTs. ``"auto"`` (default) takes the linear path
        whenever it applies.
    convolve_at : {"subpixel", "pixel"}
        ``"subpixel"`` (default, exact) convolves on the supersampled grid. ``"pixel"``
        integrates the profiles over each pixel on the supersampled grid but convolves pixel
        means with the pixel-integrated PSF: ``s^2`` times smaller FFTs, with an error second
        order in pixel / PSF width (documented in docs/forward_model.md). Worth it when the
        PSF spans many pixels. The linear path always convolves exactly.

    Returns
    -------
    image : tensor, shape ``grid.shape``
        Flux per data pixel: PSF-convolved surface brightness integrated over the pixel
        (amplitude units x arcsec^2).
    tracer_map : tensor, shape ``grid.shape``
        The light-weighted, PSF-smeared tracer in each data pixel, in the tracer's units.
        Where there is no light (below 1e-13 of the brightest pixel) it tends to the unweighted
        pixel mean of the intrinsic tracer, so empty sky is finite and has finite gradients.
    """
    components = _as_components(components)
    if not isinstance(grid, PixelGrid):
        raise TypeError(f"grid must be a pmt.PixelGrid; got {type(grid).__name__}")
    if not isinstance(psf, PSF):
        raise TypeError(f"psf must be a PSF (pmt.GaussianPSF, ...); got {type(psf).__name__}")
    tracer_scale = _check_tracer_scale(tracer_scale)
    if method not in ("auto", "full", "linear"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'full' or 'linear'")
    if convolve_at not in ("subpixel", "pixel"):
        raise ValueError(f"unknown convolve_at {convolve_at!r}; use 'subpixel' or 'pixel'")
    if method != "full":
        terms = _linear_terms(components, psf, tracer_scale)
        if terms is not None:
            return _observe_linear(components, terms, grid, psf, tracer_scale)
        if method == "linear":
            raise ValueError(
                "method='linear' needs a fixed PSF, fixed light profiles and tracers that are "
                "Constant or LinearGradient with fixed geometry (constants only when "
                "tracer_scale='log'); use method='full' for this model"
            )

    if convolve_at == "subpixel":
        return _observe_full(components, grid, psf, tracer_scale)
    return _observe_pixel_convolution(components, grid, psf, tracer_scale)


def _pixel_sampled_kernel(psf, grid):
    """The PSF sampled (not integrated) at data-pixel offsets, normalised.

    Pixel means are already box-averaged, so convolving them with a pixel-*integrated* PSF
    would apply the pixel box twice; sampling the sub-pixel kernel every ``s`` sub-pixels
    applies it once, as the exact computation does.
    """
    s = grid.supersampling
    fine = psf.kernel(grid.subpixel_scale)
    half = psf.half_width(grid.subpixel_scale) // s
    centre = psf.half_width(grid.subpixel_scale)
    index = centre + s * np.arange(-half, half + 1)
    if isinstance(fine, np.ndarray):
        kernel = fine[np.ix_(index, index)]
        return kernel / kernel.sum(), half
    kernel = fine[index][:, index]
    return kernel / pt.sum(kernel), half


def _render_sums(components, x, y, tracer_scale):
    """Light, light x f(Z) and the unweighted mean of f(Z) at sample points ``x, y``."""
    light = weighted = averaged_tracer = 0.0
    for component in components:
        surface_brightness = component.light.surface_brightness(x, y)
        tracer = component.tracer(pt.as_tensor_variable(x), pt.as_tensor_variable(y))
        linear_tracer = tracer if tracer_scale == "linear" else 10.0**tracer
        light = light + surface_brightness
        weighted = weighted + surface_brightness * linear_tracer
        averaged_tracer = averaged_tracer + linear_tracer / len(components)
    return light, weighted, averaged_tracer


def _observe_full(components, grid, psf, tracer_scale):
    """Render on the padded supersampled grid, convolve there, bin, divide (exact)."""
    scale = grid.subpixel_scale
    kernel = psf.kernel(scale)
    pad = psf.half_width(scale)
    render = grid.render_grid(pad)
    light, weighted, averaged_tracer = _render_sums(components, render.x, render.y, tracer_scale)

    convolved = convolve_valid(pt.stack([light, weighted]), kernel)
    binned = grid.bin(convolved)
    light_sum, weighted_sum = binned[0], binned[1]
    image = light_sum * scale**2

    s = grid.supersampling
    inner = averaged_tracer[pad : pad + grid.ny * s, pad : pad + grid.nx * s]
    fallback = grid.bin(inner) / s**2
    tracer_map = _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale)
    return image, tracer_map


def _observe_pixel_convolution(components, grid, psf, tracer_scale):
    """Supersample the rendering, convolve at the data-pixel scale.

    Profiles are integrated over each data pixel on the ``s x s`` sub-pixels of the field,
    the padding ring (light that scatters in) is sampled at pixel centres, and the pixel
    means are convolved with the PSF integrated over data pixels. This treats light as
    uniform within a pixel during the convolution: the error is second order in
    pixel / PSF width (see docs/forward_model.md), and the FFTs shrink by ``s^2``.
    """
    s = grid.supersampling
    kernel, pad = _pixel_sampled_kernel(psf, grid)
    coarse = grid.with_supersampling(1).render_grid(pad)
    fine = grid.render_grid(0)
    c_light, c_weighted, c_tracer = _render_sums(components, coarse.x, coarse.y, tracer_scale)
    f_light, f_weighted, f_tracer = _render_sums(components, fine.x, fine.y, tracer_scale)
    inner = (slice(pad, pad + grid.ny), slice(pad, pad + grid.nx))
    light = pt.set_subtensor(c_light[inner], grid.bin(f_light) / s**2)
    weighted = pt.set_subtensor(c_weighted[inner], grid.bin(f_weighted) / s**2)

    convolved = convolve_valid(pt.stack([light, weighted]), kernel)
    light_sum, weighted_sum = convolved[0], convolved[1]
    image = light_sum * grid.pixel_area
    fallback = grid.bin(f_tracer) / s**2
    tracer_map = _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale)
    return image, tracer_map


def _has_free_parameters(obj) -> bool:
    """True if a profile (or a composite of profiles) has any symbolic parameter."""
    if hasattr(obj, "profiles"):
        return any(_has_free_parameters(p) for p in obj.profiles)
    return any(isinstance(v, Variable) and not isinstance(v, Constant) for v in vars(obj).values())


def _linear_terms(components, psf, tracer_scale):
    """Per component, the (coefficient, spatial factor) pairs with Z = sum coefficient x factor.

    ``None`` when the observed map is not an exact linear function of the tracer parameters.
    In log mode a constant Z contributes 10**Z times the light, so constants still qualify.
    """
    if not psf.is_fixed:
        return None
    terms = []
    for component in components:
        tracer = component.tracer
        if _has_free_parameters(component.light):
            return None
        if isinstance(tracer, TracerConstant):
            value = tracer.constant
            terms.append([(value if tracer_scale == "linear" else 10.0**value, None)])
        elif isinstance(tracer, LinearGradient) and tracer_scale == "linear":
            geometry = (tracer.x0, tracer.y0, tracer.q, tracer.phi)
            if any(isinstance(v, Variable) for v in geometry):
                return None
            terms.append([(tracer.central, None), (tracer.gradient, tuple(float(g) for g in geometry))])
        else:
            return None
    return terms


def _linear_basis(components, terms, grid, psf):
    """Basis maps of the linear path, in numpy: computed once per (galaxy, grid, PSF).

    Returns ``(light_sum, numerator_basis, fallback_basis)`` (binned to data pixels) and the
    matching list of coefficients (numbers or tensors).
    """
    scale = grid.subpixel_scale
    kernel = psf.kernel(scale)
    pad = psf.half_width(scale)
    render = grid.render_grid(pad)
    light_graphs = [c.light.surface_brightness(render.x, render.y) for c in components]
    lights = pytensor.function([], light_graphs, mode="FAST_COMPILE")()
    s = grid.supersampling
    inner = (slice(pad, pad + grid.ny * s), slice(pad, pad + grid.nx * s))

    fields, factors, coefficients = [sum(lights)], [], []
    for light, component_terms in zip(lights, terms):
        for coefficient, geometry in component_terms:
            factor = 1.0 if geometry is None else elliptical_radius_numpy(render.x, render.y, *geometry)
            fields.append(light * factor)
            factors.append(np.broadcast_to(factor, render.shape)[inner])
            coefficients.append(coefficient)
    binned = grid.bin(FixedKernelConvolution(kernel).convolve(np.stack(fields)))
    fallback_basis = grid.bin(np.stack(factors)) / (s**2 * len(components))
    return (binned[0], binned[1:], fallback_basis), coefficients


def _observe_linear(components, terms, grid, psf, tracer_scale):
    """The exact linear-basis forward model: basis maps computed once, combined per call."""
    arrays, coefficients = _linear_basis(components, terms, grid, psf)
    light_sum, basis, fallback_basis = _as_model_data(
        arrays, lambda new_psf: _linear_basis(components, terms, grid, new_psf)[0]
    )
    coefficients = pt.stack([pt.as_tensor_variable(c) for c in coefficients]).astype(pytensor.config.floatX)
    weighted_sum = pt.tensordot(coefficients, basis, axes=1)
    fallback = pt.tensordot(coefficients, fallback_basis, axes=1)
    image = light_sum * grid.subpixel_scale**2
    tracer_map = _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale)
    return image, tracer_map


#: model -> list of (data names, recompute(psf) -> arrays) for each linear basis in it, so that
#: a compiled model can be refitted with another PSF without recompiling (``fitting.Fitter``).
LINEAR_BASES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _as_model_data(arrays, recompute):
    """Inside a PyMC model, hold the basis maps in ``pm.Data`` so they can be swapped later."""
    try:
        import pymc as pm

        model = pm.modelcontext(None)
    except (ImportError, TypeError):
        return tuple(pt.as_tensor_variable(a) for a in arrays)
    bases = LINEAR_BASES.setdefault(model, [])
    names = [f"pmt_basis{len(bases)}_{part}" for part in ("light", "numerator", "fallback")]
    tensors = tuple(
        pt.specify_shape(pm.Data(name, value), value.shape) for name, value in zip(names, arrays)
    )
    bases.append(dict(names=names, recompute=recompute))
    return tensors


def _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale):
    """``weighted_sum / light_sum``, blended smoothly into ``fallback`` where there is no light.

    ``(W + e F) / (L + e)`` with ``e = 1e-13 max(L)`` equals ``W / L`` to ~1e-13 relative
    wherever the light is appreciable and stays finite (with finite gradients) on empty sky,
    where both sums are FFT round-off.
    """
    light_sum = pt.maximum(light_sum, 0.0)
    if tracer_scale == "log":
        weighted_sum = pt.maximum(weighted_sum, 0.0)
    epsilon = zero_grad(EMPTY_SKY_FRACTION * pt.max(light_sum)) + np.finfo(np.float64).tiny
    ratio = (weighted_sum + epsilon * fallback) / (light_sum + epsilon)
    return ratio if tracer_scale == "linear" else pt.log10(ratio)


def _named_variables(outputs) -> dict[str, list[Variable]]:
    found: dict[str, list[Variable]] = {}
    for var in ancestors(outputs):
        if var.name and not isinstance(var, Constant):
            found.setdefault(var.name, []).append(var)
    return found


def evaluate(outputs, values=None, **named_values):
    """Evaluate forward-model tensors to numpy arrays for given parameter values.

    Parameters
    ----------
    outputs : tensor or sequence of tensors
        E.g. the ``(image, tracer_map)`` returned by :func:`observe`.
    values : dict, optional
        Maps variables (or their names) to values.
    **named_values
        Values by variable name, e.g. ``gradient=-0.2``.

    Returns
    -------
    ndarray or tuple of ndarray

    Raises
    ------
    ValueError
        If a name matches no variable, or a random variable is left without a value.

    Examples
    --------
    >>> with pm.Model():
    ...     grad = pm.Normal("gradient", 0, 0.5)
    ...     image, zmap = pmt.observe(pmt.Component(light, pmt.LinearGradient(central=8, gradient=grad)),
    ...                               grid, psf, tracer_scale="log")
    >>> zmap_np = pmt.evaluate(zmap, gradient=-0.2)
    """
    single = isinstance(outputs, Variable)
    outs = [outputs] if single else list(outputs)
    values = dict(values or {})
    values.update(named_values)
    by_name = _named_variables(outs)
    replacements = {}
    for key, value in values.items():
        if isinstance(key, Variable):
            targets = [key]
        else:
            targets = by_name.get(key)
            if not targets:
                raise ValueError(
                    f"no variable named {key!r} in the graph; named variables are "
                    f"{sorted(by_name) or 'none'}"
                )
        for target in targets:
            constant = pt.constant(np.asarray(value, dtype=target.dtype))
            if constant.ndim != target.ndim:
                raise ValueError(
                    f"value for {key!r} has {constant.ndim} dimensions; the variable has {target.ndim}"
                )
            replacements[target] = constant
    replaced = clone_replace(outs, replace=replacements) if replacements else outs
    missing = sorted(
        {
            v.name or str(v)
            for v in ancestors(replaced)
            if v.owner is not None and isinstance(v.owner.op, RandomVariable)
        }
    )
    free = sorted(
        {
            v.name or str(v)
            for v in ancestors(replaced)
            if v.owner is None and not isinstance(v, Constant) and not hasattr(v, "get_value")
        }
    )
    if missing or free:
        raise ValueError(f"give values for these variables: {missing + free}")
    result = pytensor.function([], replaced, mode="FAST_RUN", on_unused_input="ignore")()
    return result[0] if single else tuple(result)
