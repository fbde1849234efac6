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

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import zero_grad
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable

from pymc_tracers.lazy_choice import lazy_choice
from pymc_tracers.memory import release_freed_memory
from pymc_tracers.numerics import Numerics, make_numerics
from pymc_tracers.profiles.light import LightProfile
from pymc_tracers.profiles.tracer import as_tracer_profile

__all__ = ["Component", "Observation", "observe", "evaluate", "linear_bases_of", "TRACER_SCALES"]

logger = logging.getLogger("pymc_tracers")

TRACER_SCALES = ("linear", "log")

#: Light below this fraction of a galaxy's brightest pixel is treated as empty sky when
#: forming the light-weighted ratio (where FFT round-off, ~1e-16, would dominate).
EMPTY_SKY_FRACTION = 1e-13
#: The log series' error bound holds where a pixel's light is at least this fraction of its
#: galaxy's brightest pixel (fainter pixels carry no measurable tracer). Below it, the FFT
#: round-off of the series' basis maps (~1e-16 of each map's peak, which the full path shares
#: without the series' cancellation) is no longer negligible against the bound.
SERIES_LIGHT_FLOOR = 1e-4
#: A population's used pixels are laid out per galaxy, padded to the largest galaxy of its
#: group; galaxies sorted by pixel count into this many groups waste little on padding
#: (measured, 300 galaxies of 33x33 to 41x41 pixels: 1.1x the used pixels against 2.9x with
#: one group, and 2-4x faster per evaluation).
PIXEL_GROUPS = 16


class Component:
    """A galaxy component: a light profile carrying a tracer profile.

    Parameters
    ----------
    light : LightProfile
        The surface-brightness profile that weights the tracer.
    tracer : TracerProfile, float, array, variable or callable
        The intrinsic tracer field. A number, array ``(N,)`` or variable means a constant; a
        callable ``f(x, y)`` (arcsec) is wrapped as an :class:`~pymc_tracers.Expression`.
    """

    def __init__(self, light, tracer):
        if not isinstance(light, LightProfile):
            raise TypeError(
                "Component light must be a light profile (e.g. pmt.Sersic); "
                f"got {type(light).__name__}"
            )
        self.light = light
        self.tracer = as_tracer_profile(tracer)

    def parameters(self) -> dict:
        """Light and tracer parameters, keyed ``light.<name>`` and ``tracer.<name>``."""
        return {
            **{f"light.{k}": v for k, v in self.light.parameters().items()},
            **{f"tracer.{k}": v for k, v in self.tracer.parameters().items()},
        }

    def __repr__(self):
        return f"Component(light={self.light!r}, tracer={self.tracer!r})"


class Observation(tuple):
    """``(image, tracer_map)`` as returned by :func:`observe`, with how they were computed.

    Unpacks like a tuple: ``image, tracer_map = pmt.observe(...)``.

    Attributes
    ----------
    image, tracer_map : tensor
        Shape ``(ny, nx)``, or ``(N, ny, nx)`` for a batch of galaxies.
    path : str
        ``"full"`` (render and convolve on every evaluation), ``"linear"`` (exact linear
        combination of precomputed basis maps) or ``"series"`` (the log-averaged gradient's
        Chebyshev series, with the full path as fallback outside its range).
    max_error : float
        Bound on the tracer map's error from a series expansion (tracer units; 0 if exact).
    numerics : Numerics
        Sample points, PSF kernels and binning used.
    n_galaxies : int or None
        Batch size, when known.
    light_sum, weighted_sum : tensor
        The binned, PSF-convolved sums ``bin(K * sum I)`` and ``bin(K * sum I f(Z))`` whose
        ratio is the tracer map (for likelihoods over binned data, e.g. Voronoi bins, where the
        model value of a bin is ``sum_bin weighted_sum / sum_bin light_sum``). On the series
        path ``weighted_sum`` is the series, accurate inside its range.
    tracer_scale : str
    """

    def __new__(cls, image, tracer_map, **info):
        self = super().__new__(cls, (image, tracer_map))
        self.__dict__.update(info)
        return self

    @property
    def image(self):
        return self[0]

    @property
    def tracer_map(self):
        return self[1]


def _as_components(components) -> list[Component]:
    if isinstance(components, Component):
        return [components]
    if isinstance(components, Sequence) and not isinstance(components, str):
        if len(components) == 0:
            raise ValueError("components is empty: give at least one pmt.Component")
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


def _is_free(value) -> bool:
    return isinstance(value, Variable) and not isinstance(value, Constant)


def _batch_size(components, psf):
    """The number of galaxies N implied by parameter arrays and PSF lists (None if unbatched).

    Symbolic parameters whose length is not known statically (PyMC ``dims``) do not count.
    """
    lengths = {}
    if isinstance(psf, (list, tuple)):
        lengths[f"{len(psf)} PSFs"] = len(psf)
    for i, component in enumerate(components):
        for name, value in component.parameters().items():
            ndim = getattr(value, "ndim", 0)
            if ndim == 0:
                continue
            n = value.shape[0] if isinstance(value, np.ndarray) else value.type.shape[0]
            if n is not None:
                lengths[f"parameter {name} of component {i} (length {n})"] = int(n)
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "the galaxy axis has different lengths: "
            + ", ".join(lengths)
            + ". Every per-galaxy parameter and the PSF list must have one entry per galaxy"
        )
    return next(iter(lengths.values()), None)


def observe(
    components,
    grid,
    psf,
    tracer_scale: str = "linear",
    *,
    method: str = "auto",
    convolve_at: str = "subpixel",
) -> Observation:
    """Forward-model the observed light image and light-weighted tracer map.

    Parameters
    ----------
    components : Component or list of Component
        The galaxy (or galaxies) in the field. Any parameter may carry a leading galaxy axis
        (an array or variable of shape ``(N,)``, e.g. a PyMC variable with ``dims="galaxy"``):
        the model is then a batch of N galaxies rendered and convolved together.
    grid : PixelGrid
        Data pixels and supersampling, shared by every galaxy of a batch. Profiles are rendered
        at sub-pixel centres on a field padded by the PSF half-width, so light just outside
        the field scatters in. Galaxies observed on stamps of different sizes are batched by
        padding their data to a common stamp and masking the padding (NaN data are left out of
        the likelihood); galaxies with different pixel scales need separate ``observe`` calls.
    psf : PSF or list of PSF
        Resampled to the sub-pixel scale ``grid.pixel_scale / grid.supersampling``. A list
        gives each galaxy of a batch its own PSF (one batched FFT, each kernel zero-padded to
        the largest).
    tracer_scale : {"linear", "log"}
        ``"linear"`` averages the tracer as it is (velocity, linear ratios); ``"log"`` averages
        ``10**Z`` and returns ``log10`` of the light-weighted mean: the physically right choice
        for 12+log(O/H) and other quantities in dex.
    method : {"auto", "full", "linear"}
        ``"full"`` renders and convolves on every evaluation. ``"linear"`` precomputes basis
        maps once and returns a linear combination of them. It applies when the PSF and every
        light profile are fixed and each tracer states linear terms
        (:meth:`~pymc_tracers.TracerProfile.linear_terms`): constants, and gradients with a
        fixed geometry (exact with linear averaging; with log averaging a Chebyshev series in
        the gradient, accurate to 1e-7 dex inside ``gradient_range``, piecewise over wide
        ranges, with the full path taken outside it unless the gradient's ``outside_range``
        is ``"reject"``). An evaluation then costs O(pixels x terms) instead of two FFTs. ``"auto"``
        (default) takes it whenever it applies.
    convolve_at : {"subpixel", "pixel"}
        ``"subpixel"`` (default, exact) convolves on the supersampled grid. ``"pixel"``
        integrates the profiles over each pixel on the supersampled grid but convolves pixel
        means with the PSF sampled at pixel offsets: ``s^2`` times smaller FFTs, with an error
        second order in pixel / PSF width (docs/forward_model.md).

    Returns
    -------
    Observation
        ``(image, tracer_map)``, each of shape ``grid.shape`` or ``(N, *grid.shape)``.
        ``image`` is flux per data pixel (amplitude units x arcsec^2). ``tracer_map`` is the
        light-weighted, PSF-smeared tracer in the tracer's units; where a galaxy has no light
        (below 1e-13 of its brightest pixel) it tends to the unweighted pixel mean of the
        intrinsic tracer, so empty sky is finite and has finite gradients.
    """
    components = _as_components(components)
    tracer_scale = _check_tracer_scale(tracer_scale)
    if method not in ("auto", "full", "linear"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'full' or 'linear'")
    n_galaxies = _batch_size(components, psf)
    numerics = make_numerics(grid, psf, convolve_at, n_galaxies=n_galaxies)
    info = dict(numerics=numerics, n_galaxies=n_galaxies, max_error=0.0)

    linear = None if method == "full" else _linear_expansions(components, numerics, tracer_scale)
    if linear is None:
        if method == "linear":
            raise ValueError(
                "method='linear' needs fixed PSFs, fixed light profiles and tracers with linear "
                "terms (Constant; LinearGradient with fixed centre, q and phi, and with "
                "tracer_scale='log' a gradient_range); use method='full' for this model"
            )
        image, tracer_map, sums = _observe_full(components, numerics, tracer_scale, n_galaxies)
        return Observation(image, tracer_map, path="full", **info, **sums)

    expansions, lights = linear
    image, tracer_map, sums, at_pixels = _observe_linear(components, linear, numerics, tracer_scale)
    info.update(sums)
    valid = None
    for expansion in expansions:
        valid = (
            expansion.valid
            if valid is None
            else (valid if expansion.valid is None else pt.and_(valid, expansion.valid))
        )
    max_error = sum(e.max_error for e in expansions)
    for note in (n for e in expansions for n in e.notes):
        logger.info("observe: %s (error <= %.1e)", note, max_error)
    if valid is None:
        tracer_map.tag.pmt_pixels = PixelAccess(at_pixels)
        return Observation(image, tracer_map, path="linear", **info)
    if all(e.outside == "reject" for e in expansions if e.valid is not None):
        # the range is a hard bound: outside it the map is inf and a likelihood -inf
        guarded_map = pt.where(valid, tracer_map, np.inf)

        def guarded_at_pixels(index, shape):
            return pt.where(valid, at_pixels(index, shape), np.inf)

    else:
        # a series is only accurate inside its range: outside it, evaluate the full path
        _, full_map, _ = _observe_full(components, numerics, tracer_scale, n_galaxies)
        full_map = pt.cast(full_map, tracer_map.dtype)
        map_shape = grid.shape if n_galaxies is None else (n_galaxies, *grid.shape)
        guarded_map = _guarded(valid, tracer_map, full_map, components, map_shape)

        def guarded_at_pixels(index, shape):
            picked_full = pt.specify_shape(full_map, shape).reshape((-1,))[np.asarray(index)]
            return _guarded(valid, at_pixels(index, shape), picked_full, components, (len(index),))

    light_sum = numerics.convolve_and_bin(
        [sum(light[k] for light in lights) for k in range(len(numerics.point_sets))]
    )
    accurate = light_sum >= SERIES_LIGHT_FLOOR * np.max(light_sum, axis=(-2, -1), keepdims=True)
    guarded_map.tag.pmt_pixels = PixelAccess(
        guarded_at_pixels, accurate=accurate, max_error=max_error
    )
    info["max_error"] = max_error
    info["series_pieces"] = max(e.n_pieces for e in expansions)
    return Observation(image, guarded_map, path="series", **info)


class PixelAccess:
    """How a likelihood reads a tracer map at the pixels it uses, without the rest.

    Attached by :func:`observe` to the tracer maps of the linear and series paths (as
    ``tracer_map.tag.pmt_pixels``): a likelihood over a few hundred pixels of each of many
    galaxies then combines basis maps at those pixels only.

    Attributes
    ----------
    at : callable
        ``at(index, shape)``: the map (of ``shape``) at flat indices ``index``.
    accurate : ndarray of bool or None
        Where a series' error bound ``max_error`` holds (pixels whose light is at least
        :data:`SERIES_LIGHT_FLOOR` of their galaxy's brightest pixel); None when exact.
    max_error : float
    """

    def __init__(self, at, *, accurate=None, max_error=0.0):
        self.at = at
        self.accurate = accurate
        self.max_error = max_error


def _guarded(valid, series_map, full_map, components, shape):
    """``series_map`` where ``valid``, else ``full_map``; the full path is evaluated (and
    differentiated) only when it is taken, in every backend.

    Only the full path goes inside the lazy choice
    (:func:`pymc_tracers.lazy_choice.lazy_choice`): the series stays in the main graph, where
    its value and gradient share their work. The series clips its argument to its range, so
    it stays finite (with finite gradients) where it is not used.
    """
    inputs = []
    for component in components:
        for value in component.parameters().values():
            if _is_free(value) and not any(value is seen for seen in inputs):
                inputs.append(value)
    zeros = pt.zeros(shape, dtype=full_map.dtype)
    (full_or_zeros,) = lazy_choice(valid, [zeros], [full_map], inputs)
    return pt.where(valid, series_map, full_or_zeros)


def _render(components, points, tracer_scale, n_galaxies):
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


def _observe_full(components, numerics: Numerics, tracer_scale, n_galaxies):
    """Render on the numerics' sample points, convolve, bin, divide: every evaluation."""
    numerics.check_render_size()
    rendered = _render(components, numerics.point_sets, tracer_scale, n_galaxies)
    # light and light x f(Z) go through one batched convolution (leading axis of 2)
    binned = numerics.convolve_and_bin(
        [pt.stack([light, weighted]) for light, weighted, _ in rendered]
    )
    light_sum, weighted_sum = binned[0], binned[1]
    fallback = numerics.pixel_mean([averaged for _, _, averaged in rendered])
    image = light_sum * numerics.flux_scale
    tracer_map = _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale)
    return (
        image,
        tracer_map,
        dict(light_sum=light_sum, weighted_sum=weighted_sum, tracer_scale=tracer_scale),
    )


def _fixed_lights(components, numerics: Numerics):
    """Each component's surface brightness at each set of sample points, in numpy."""
    graphs = [
        [c.light.surface_brightness(x, y) for x, y in numerics.point_sets] for c in components
    ]
    flat = pytensor.function([], [g for per_set in graphs for g in per_set], mode="FAST_COMPILE")()
    n_sets = len(numerics.point_sets)
    return [flat[i * n_sets : (i + 1) * n_sets] for i in range(len(components))]


def _series_error_estimator(light, total_light, numerics: Numerics):
    """``error_of`` for :meth:`TracerProfile.linear_terms`: the light-weighted error bound.

    For factors ``e`` (bound on each point's absolute error) and ``m`` (lower bound on each
    point's value), the relative error of pixel p's light-weighted sum is at most
    ``bin(K * (I e))_p / bin(K * (I m))_p`` (plus the empty-sky blend's share of the pixel
    means). Returns its maximum over the pixels whose light is at least
    :data:`SERIES_LIGHT_FLOOR` of their galaxy's brightest pixel.
    """
    light_sum = numerics.convolve_and_bin(total_light)
    peak = np.max(light_sum, axis=(-2, -1), keepdims=True)
    bright = light_sum >= SERIES_LIGHT_FLOOR * peak
    epsilon = EMPTY_SKY_FRACTION * peak
    # FFT round-off: a few eps of the largest value of each convolved field
    fft_eps = 64 * np.finfo(float).eps

    def convolved(factors):
        fields = [part * f for part, f in zip(light, factors)]
        values = numerics.convolve_and_bin(fields)
        largest = [np.max(np.abs(f), axis=(-2, -1), keepdims=True) for f in fields]
        noise = fft_eps * numerics.grid.supersampling**2 * functools.reduce(np.maximum, largest)
        return values, noise

    floors = {}

    def error_of(error_factors, floor_factors, *, floor_key=None):
        error, error_noise = convolved(error_factors)
        error = np.abs(error) + error_noise + epsilon * numerics.pixel_mean(error_factors)
        if floor_key is not None and floor_key in floors:
            floor = floors[floor_key]
        else:
            floor, floor_noise = convolved(floor_factors)
            floor = floor - floor_noise + epsilon * numerics.pixel_mean(floor_factors)
            if floor_key is not None:
                if len(floors) >= 16:  # a few maps per galaxy batch: bound the memory
                    floors.pop(next(iter(floors)))
                floors[floor_key] = floor
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(floor > 0, error / floor, np.inf)
        return float(np.max(np.where(bright, ratio, 0.0)))

    return error_of


def _linear_expansions(components, numerics: Numerics, tracer_scale):
    """Each component's linear expansion of f(Z) and the fixed lights, or None if the linear
    path does not apply."""
    if not numerics.is_fixed:
        return None
    if any(_is_free(v) for c in components for v in c.light.parameters().values()):
        return None
    lights = _fixed_lights(components, numerics)
    n_sets = len(numerics.point_sets)
    total = [sum(light[k] for light in lights) for k in range(n_sets)]
    expansions = []
    for component, light in zip(components, lights):
        error_of = _series_error_estimator(light, total, numerics)
        expansion = component.tracer.linear_terms(
            tracer_scale, numerics.point_sets, error_of=error_of
        )
        if expansion is None:
            return None
        expansions.append(expansion)
    return expansions, lights


def _linear_basis(lights, expansions, numerics: Numerics):
    """Basis maps of the linear path, in numpy: computed once per (galaxies, grid, PSFs).

    Returns ``light_sum`` (binned, convolved light), ``numerator_basis`` (one binned, convolved
    ``light x factor`` map per row, stacked on axis 0) and ``fallback_basis`` (the pixel mean of
    each row's factor over the components). The rows are the terms of each expansion in turn,
    piece by piece for piecewise expansions (:func:`_basis_rows`).
    """
    n_sets = len(numerics.point_sets)
    light_sum = numerics.convolve_and_bin(
        [sum(light[k] for light in lights) for k in range(n_sets)]
    )
    n_rows = sum(len(e) * e.n_pieces for e in expansions)
    numerator_basis, fallbacks, row = None, [], 0
    for light, expansion in zip(lights, expansions):
        for piece in range(expansion.n_pieces):
            # one term at a time keeps memory at one rendered field
            for term in expansion.terms:
                factors = (
                    term.factors if expansion.n_pieces == 1 else [f[piece] for f in term.factors]
                )
                numerator = numerics.convolve_and_bin([part * f for part, f in zip(light, factors)])
                # filled in place (no second copy of the basis); grown if a term has a galaxy
                # axis that the light and earlier terms lack
                lead = np.broadcast_shapes(light_sum.shape, numerator.shape)
                if numerator_basis is None:
                    numerator_basis = np.empty((n_rows, *lead))
                elif numerator_basis.shape[1:] != np.broadcast_shapes(
                    numerator_basis.shape[1:], lead
                ):
                    lead = np.broadcast_shapes(numerator_basis.shape[1:], lead)
                    grown = np.empty((n_rows, *lead))
                    grown[:row] = numerator_basis[:row]
                    numerator_basis = grown
                numerator_basis[row] = numerator
                row += 1
                # a factor without a galaxy axis keeps none here: (rows, ny, nx), not per galaxy
                factors = [
                    np.broadcast_to(f, np.broadcast_shapes(f.shape, part.shape[-2:]))
                    for part, f in zip(light, factors)
                ]
                fallbacks.append(numerics.pixel_mean(factors) / len(lights))
    # the fallback rarely depends on the galaxy: kept at its own shape, not the light's
    fallback_lead = np.broadcast_shapes(*(a.shape for a in fallbacks))
    fallback_basis = np.stack([np.broadcast_to(a, fallback_lead) for a in fallbacks])
    lead = numerator_basis.shape[1:]
    return np.broadcast_to(light_sum, lead).copy(), numerator_basis, fallback_basis


def _basis_rows(expansions):
    """The basis row of each term (in the layout of :func:`_linear_basis`), or None when
    every row is a term (no piecewise expansion).

    Returns an integer tensor ``(terms,)`` or ``(terms, N)``: a piecewise expansion's terms
    point into the rows of each galaxy's piece.
    """
    if all(e.n_pieces == 1 for e in expansions):
        return None
    rows, offset = [], 0
    for expansion in expansions:
        n_terms = len(expansion)
        for k in range(n_terms):
            if expansion.n_pieces == 1:
                rows.append(pt.constant(offset + k, dtype="int64"))
            else:
                rows.append(offset + expansion.piece * n_terms + k)
        offset += n_terms * expansion.n_pieces
    return pt.stack(pt.broadcast_arrays(*rows))


def _select_rows(basis, rows, coefficients):
    """The rows of ``basis`` that each galaxy's terms use: ``(terms, [N,] ny, nx)``."""
    if rows is None:
        return basis
    if coefficients.ndim == 2 and rows.ndim == 1:
        rows = pt.broadcast_to(rows[:, None], coefficients.shape)
    if rows.ndim == 2 and basis.ndim == 4:  # per-galaxy rows of per-galaxy maps
        return basis[rows, pt.arange(basis.shape[1])[None, :]]
    return basis[rows]


def _observe_linear(components, linear, numerics, tracer_scale):
    """The linear-basis forward model: basis maps computed once, combined on each evaluation."""
    expansions, lights = linear
    arrays = _linear_basis(lights, expansions, numerics)

    def recompute(psf):
        new = make_numerics(numerics.grid, psf, numerics.name, n_galaxies=numerics.n_psfs)
        new_expansions, new_lights = _linear_expansions(components, new, tracer_scale)
        return _linear_basis(new_lights, new_expansions, new)

    (light_sum, basis, fallback_basis), basis_data = _as_model_data(arrays, recompute)
    n_rows = arrays[1].shape[0]
    large = arrays[1].nbytes > 2**26  # worth handing the build's freed memory back (64 MiB)
    if basis_data is not None:
        # held by the model now: read back from it, so no closure keeps a replaced basis alive
        current_maps = basis_data.maps
        del arrays
    else:
        current_maps = lambda: arrays  # noqa: E731
    if large:
        release_freed_memory()  # the rendered fields of a large batch (pymc_tracers.memory)
    coefficients = [term.coefficient for e in expansions for term in e.terms]
    coefficients = pt.stack(
        pt.broadcast_arrays(
            *(pt.as_tensor_variable(c).astype(pytensor.config.floatX) for c in coefficients)
        )
    )  # (terms,) or (terms, N)
    rows = _basis_rows(expansions)
    if rows is not None and coefficients.ndim == 1 and rows.ndim == 2:
        coefficients = pt.broadcast_to(
            coefficients[:, None], (coefficients.shape[0], rows.shape[1])
        )
    weighted_sum = _combine(coefficients, _select_rows(basis, rows, coefficients))
    fallback = _combine(coefficients, _select_rows(fallback_basis, rows, coefficients))
    image = light_sum * numerics.flux_scale
    tracer_map = _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale)

    def at_pixels(index, shape):
        """The same ratio at flat indices of a map of ``shape``: O(terms x pixels used).

        The light, the empty-sky blend and the division are folded into one basis per row,
        ``(numerator_t + e fallback_t) / (light + e)`` at the used pixels, computed once in
        numpy and held as data of its own (recomputed with the others on a PSF swap), so an
        evaluation is one product of coefficients and this compact basis and never touches
        the full maps. With per-galaxy coefficients each galaxy's terms combine its own rows
        (its piece of a piecewise series) at its own pixels: the galaxies are sorted by their
        number of used pixels into a few groups (:data:`PIXEL_GROUPS`), each laid out as
        (galaxy, row, pixel) padded to its largest galaxy, so an evaluation is a gather and
        one small matrix product per galaxy, whose gradient is a sum rather than a scatter
        of terms x pixels (slow in XLA on CPU), with little padding.
        """
        index = np.asarray(index)
        ny, nx = shape[-2:]
        galaxy, pixel = np.divmod(index, ny * nx)
        per_galaxy = coefficients.ndim == 2
        n_galaxies = shape[0] if len(shape) == 3 else 1
        groups, positions = _pixel_layout(galaxy, n_galaxies) if per_galaxy else ([], None)

        def pixel_basis(light_values, basis_values, fallback_values):
            """(rows, pixels used), or every group's (galaxy, rows, width) block, flattened."""
            light = np.maximum(light_values, 0.0)
            peak = np.max(light, axis=(-2, -1)).reshape((-1,))
            epsilon = EMPTY_SKY_FRACTION * peak + np.finfo(np.float64).tiny
            batched_light = light.ndim == 3
            on_basis = galaxy * ny * nx + pixel if batched_light else pixel
            on_fallback = galaxy * ny * nx + pixel if fallback_values.ndim == 4 else pixel
            e = epsilon[galaxy] if batched_light else epsilon[0]
            ratio_rows = (
                basis_values.reshape((n_rows, -1))[:, on_basis]
                + e * fallback_values.reshape((n_rows, -1))[:, on_fallback]
            ) / (light.reshape((-1,))[on_basis] + e)
            if not per_galaxy:
                return ratio_rows
            return np.concatenate(
                [ratio_rows[:, group.block].transpose(1, 0, 2).ravel() for group in groups]
            )

        values = pixel_basis(*current_maps())
        if large:
            release_freed_memory()
        compact = basis_data.derive("pixels", values, pixel_basis) if basis_data else values
        compact = pt.specify_shape(compact, values.shape)

        if not per_galaxy:
            ratio = pt.dot(coefficients, compact if rows is None else compact[rows])
        else:
            flat_ratios, start = [], 0
            for group in groups:
                n_in, width = group.galaxies.size, group.width
                blocks = compact[start : start + n_in * n_rows * width]
                blocks = blocks.reshape((n_in, n_rows, width))
                start += n_in * n_rows * width
                chosen, offset = [], 0
                for expansion in expansions:
                    n_terms, n_pieces = len(expansion), expansion.n_pieces
                    rows_of = blocks[:, offset : offset + n_terms * n_pieces]
                    offset += n_terms * n_pieces
                    if n_pieces == 1:
                        chosen.append(rows_of)
                        continue
                    by_piece = rows_of.reshape((n_in, n_pieces, n_terms, width))
                    piece = pt.broadcast_to(expansion.piece, (n_galaxies,))[group.galaxies]
                    chosen.append(by_piece[pt.arange(n_in), piece])  # each galaxy's piece
                chosen = chosen[0] if len(chosen) == 1 else pt.concatenate(chosen, axis=1)
                # (n, 1, terms) @ (n, terms, width): one small matrix product per galaxy
                group_coefficients = coefficients.T[group.galaxies]
                flat_ratios.append(
                    pt.matmul(group_coefficients[:, None, :], chosen)[:, 0, :].reshape((-1,))
                )
            ratio = pt.concatenate(flat_ratios) if len(flat_ratios) > 1 else flat_ratios[0]
            ratio = ratio[positions]
        if tracer_scale == "linear":
            return ratio
        return pt.log10(pt.maximum(ratio, np.finfo(np.float64).tiny))

    return (
        image,
        tracer_map,
        dict(light_sum=light_sum, weighted_sum=weighted_sum, tracer_scale=tracer_scale),
        at_pixels,
    )


@dataclass(frozen=True)
class _PixelGroup:
    """Galaxies whose used pixels are laid out together, padded to the group's largest."""

    galaxies: np.ndarray  # (n,) galaxy indices
    block: np.ndarray  # (n, width) positions among the used pixels (padding repeats one)
    width: int


def _pixel_layout(galaxy, n_galaxies):
    """Split galaxies, sorted by their number of used pixels (``galaxy`` labels each used
    pixel), into at most :data:`PIXEL_GROUPS` groups of similar size.

    Returns the groups and, for each used pixel, its position in the concatenated, flattened
    group blocks.
    """
    counts = np.bincount(galaxy, minlength=n_galaxies)
    own_pixels = np.argsort(galaxy, kind="stable")  # used pixels, galaxy by galaxy
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.argsort(counts, kind="stable")
    groups, position, start = [], np.empty(galaxy.size, dtype=int), 0
    for members in np.array_split(order, min(PIXEL_GROUPS, n_galaxies)):
        width = max(int(counts[members].max()), 1)
        rank = np.arange(width)
        # a galaxy's own pixels, then padding that repeats its first (any, if it has none)
        slot = first[members, None] + np.minimum(rank[None, :], counts[members, None] - 1)
        block = own_pixels[np.clip(slot, 0, galaxy.size - 1)]
        own = rank[None, :] < counts[members, None]
        position[block[own]] = start + np.flatnonzero(own)
        start += block.size
        groups.append(_PixelGroup(members, block, width))
    return groups, position


def _combine(coefficients, basis):
    """``sum_t coefficients[t] * basis[t]`` as a matrix product (terms x pixels)."""
    if coefficients.ndim == 1:
        flat = basis.reshape((basis.shape[0], -1))
        return pt.dot(coefficients, flat).reshape(basis.shape[1:])
    # (terms, N) coefficients with (terms, N, ny, nx) or (terms, ny, nx) bases
    if basis.ndim == 3:
        basis = basis[:, None]
    return pt.sum(coefficients[..., None, None] * basis, axis=0)


class LinearBasisData:
    """The ``pm.Data`` holding one linear-path basis, and how to recompute it for a new PSF.

    ``names`` are the light, numerator and fallback maps, then any data derived from them
    (the likelihood's compact per-pixel basis); :meth:`recompute` returns new values for all.
    """

    def __init__(self, model, names, recompute):
        self._model = model
        self.names = list(names)
        self._recompute = recompute
        self._derived = []

    def derive(self, suffix, value, from_maps):
        """Hold ``value = from_maps(light, numerator, fallback)`` as ``pm.Data`` of its own,
        kept in step with the maps on :meth:`recompute`; returns the data variable."""
        name = f"{self.names[0].rsplit('_', 1)[0]}_{suffix}{len(self._derived)}"
        variable = _borrowed_data(self._model, name, value)
        self.names.append(name)
        self._derived.append(from_maps)
        return variable

    def maps(self) -> tuple:
        """The current light, numerator and fallback maps (numpy, not copied)."""
        return tuple(self._model[name].get_value(borrow=True) for name in self.names[:3])

    def recompute(self, psf) -> tuple:
        """New values for :attr:`names` under ``psf``."""
        maps = self._recompute(psf)
        return (*maps, *(from_maps(*maps) for from_maps in self._derived))

    def __repr__(self):
        return f"LinearBasisData({self.names})"


_BASIS_TAG = "pymc_tracers_linear_basis"


def _as_model_data(arrays, recompute):
    """Inside a PyMC model, hold the basis maps in ``pm.Data`` so they can be swapped later.

    Returns the three tensors and their :class:`LinearBasisData` (None outside a model). The
    recompute recipe rides on the data variable's tag, so it travels with the model
    (``pm.do``, ``clone_model`` keep data variables) instead of living in a module registry.
    """
    try:
        import pymc as pm

        model = pm.modelcontext(None)
    except (ImportError, TypeError):
        return tuple(pt.as_tensor_variable(a) for a in arrays), None
    index = sum(
        1 for name in model.named_vars if name.startswith("pmt_basis") and name.endswith("_light")
    )
    names = [f"pmt_basis{index}_{part}" for part in ("light", "numerator", "fallback")]
    tensors = tuple(
        pt.specify_shape(_borrowed_data(model, name, value), value.shape)
        for name, value in zip(names, arrays)
    )
    basis_data = LinearBasisData(model, names, recompute)
    setattr(model[names[0]].tag, _BASIS_TAG, basis_data)
    return tensors, basis_data


def _borrowed_data(model, name, value):
    """``pm.Data(name, value)`` without its copy: the model holds the one copy of each
    (possibly GB-sized) basis. ``pm.Data`` converts its value with ``astype``, which copies
    even with ``borrow=True``."""
    value = np.asarray(value, dtype=pytensor.config.floatX)  # no copy when already float64
    variable = pytensor.shared(value, name=model.name_for(name), borrow=True)
    model.register_data_var(variable)
    return variable


def linear_bases_of(model) -> list[LinearBasisData]:
    """The linear-path bases of a PyMC model, for swapping PSFs into a compiled model."""
    found = []
    for name in sorted(model.named_vars):
        basis = getattr(getattr(model.named_vars[name], "tag", None), _BASIS_TAG, None)
        if basis is not None:
            found.append(basis)
    return found


def _light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale, *, peak=None):
    """``weighted_sum / light_sum``, blended smoothly into ``fallback`` where there is no light.

    ``(W + e F) / (L + e)`` with ``e = 1e-13 max(L)`` (per galaxy) equals ``W / L`` to ~1e-13
    relative wherever the light is appreciable and stays finite (with finite gradients) on
    empty sky, where both sums are FFT round-off. ``peak`` (each value's galaxy's brightest
    pixel) is given when the sums are pixels picked from maps rather than whole maps.
    """
    light_sum = pt.maximum(light_sum, 0.0)
    if tracer_scale == "log":
        weighted_sum = pt.maximum(weighted_sum, 0.0)
    if peak is None:
        peak = pt.max(light_sum, axis=(-2, -1), keepdims=True)
    epsilon = zero_grad(EMPTY_SKY_FRACTION * peak) + np.finfo(np.float64).tiny
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
    ...     disc = pmt.Component(light, pmt.LinearGradient(central=8, gradient=grad))
    ...     image, zmap = pmt.observe(disc,
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
                    f"value for {key!r} has {constant.ndim} dimensions; "
                    f"the variable has {target.ndim}"
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
