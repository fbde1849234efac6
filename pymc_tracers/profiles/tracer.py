"""Intrinsic tracer fields Z(x, y): metallicity (dex), velocity (km/s), line ratios, colours.

A tracer profile is the value of the traced quantity *before* light weighting, PSF smearing
and pixelisation. Its units are those of its parameters (e.g. 12+log(O/H) in dex with a
gradient in dex/arcsec). Parameters may carry one leading galaxy axis ``(N,)``, as for light
profiles (:func:`~pymc_tracers.profiles.light.per_galaxy`).

Profiles add with ``+`` (``LinearGradient(...) + azimuthal + residual``).

A profile may state two kinds of structure that let the forward model precompute its
convolutions when the light and PSF are fixed (``pymc_tracers.forward``):

* **radial form** (:meth:`TracerProfile.radial_form`): ``Z`` depends on position only through
  the elliptical radius ``r`` about a fixed centre, axis ratio and angle. ``Constant``,
  ``LinearGradient``, ``BrokenGradient`` and ``RadialProfile`` (and sums of them about one
  geometry) are radial, whatever their other parameters and on either averaging scale.
* **linear terms** (:meth:`TracerProfile.linear_terms`): ``Z = sum_k coefficient_k x
  factor_k(x, y)`` with fixed spatial factors (constants, gradients with a fixed geometry,
  azimuthal harmonics, Hilbert-space GP residuals). With linear averaging the map is then an
  exact linear combination of precomputed maps.

The other profiles in this package: :mod:`~pymc_tracers.profiles.radial`,
:mod:`~pymc_tracers.profiles.azimuthal`, :mod:`~pymc_tracers.profiles.gp`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant as GraphConstant
from pytensor.graph.basic import Variable

from pymc_tracers.profiles.light import _check_number, per_galaxy

__all__ = [
    "Constant",
    "Expression",
    "LinearTerm",
    "RadialForm",
    "SumTracer",
    "TracerProfile",
    "as_tracer_profile",
]

#: Expansions with more terms than this are not worth it: the full path is taken instead.
MAX_LINEAR_TERMS = 64


def _is_fixed(value) -> bool:
    return not isinstance(value, Variable) or isinstance(value, GraphConstant)


def _fixed_all(*values) -> bool:
    return all(_is_fixed(v) for v in values)


def _numeric(value) -> np.ndarray:
    """A fixed parameter as a float64 array (scalars stay 0-d)."""
    if isinstance(value, GraphConstant):
        value = value.data
    return np.asarray(value, dtype=float)


def _per_galaxy_numpy(value) -> np.ndarray:
    array = _numeric(value)
    return array[..., None, None] if array.ndim else array


def elliptical_radius_grid(x, y, x0, y0, q, phi) -> np.ndarray:
    """Numpy elliptical radius (arcsec) with parameters that may carry a galaxy axis."""
    x0, y0, q, phi = (_per_galaxy_numpy(v) for v in (x0, y0, q, phi))
    dx, dy = np.asarray(x) - x0, np.asarray(y) - y0
    cos, sin = np.cos(phi), np.sin(phi)
    return np.sqrt((cos * dx + sin * dy) ** 2 + ((-sin * dx + cos * dy) / q) ** 2)


def _check_fixed_positive(value, name, unit):
    """A fixed, finite, positive number (a stated scale that is not fitted)."""
    if isinstance(value, Variable) and not isinstance(value, GraphConstant):
        raise TypeError(
            f"{name} must be a fixed number ({unit}), not a model variable: it sets the "
            "resolution of the profile and is not fitted"
        )
    try:
        number = float(_numeric(value))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number ({unit}); got {value!r}") from None
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0 ({unit}); got {value!r}")
    return number


def _deprojected_offsets(x, y, x0, y0, q, phi):
    """Offsets along the major axis and along the minor axis stretched by 1/q (tensors)."""
    x0, y0, q, phi = (per_galaxy(v) for v in (x0, y0, q, phi))
    dx = pt.as_tensor_variable(x) - x0
    dy = pt.as_tensor_variable(y) - y0
    cos, sin = pt.cos(phi), pt.sin(phi)
    return cos * dx + sin * dy, (-sin * dx + cos * dy) / q


def _deprojected_offsets_numpy(x, y, x0, y0, q, phi):
    x0, y0, q, phi = (_per_galaxy_numpy(v) for v in (x0, y0, q, phi))
    dx, dy = np.asarray(x) - x0, np.asarray(y) - y0
    cos, sin = np.cos(phi), np.sin(phi)
    return cos * dx + sin * dy, (-sin * dx + cos * dy) / q


def _ones(points):
    return [np.ones((1, 1)) for _ in points]


@dataclass
class LinearTerm:
    """One term ``coefficient x factor`` of a tracer that is linear in its parameters.

    Attributes
    ----------
    coefficient : number, array or tensor
        Scalar or one galaxy axis ``(N,)``; holds the free parameters.
    factors : list of ndarray
        The fixed spatial factor at each set of sample points, broadcastable to
        ``(N, H, W)`` or ``(H, W)``.
    """

    coefficient: object
    factors: list


@dataclass(frozen=True)
class RadialForm:
    """A tracer that depends on position only through one elliptical radius.

    Attributes
    ----------
    geometry : tuple of ndarray or None
        ``(x0, y0, q, phi)`` (arcsec, arcsec, b/a, radians), each a float or an array over
        galaxies ``(N,)``: fixed numbers. ``None`` for a profile that is the same at every
        radius (a constant), which fits any geometry.
    of_radius : callable
        ``of_radius(r) -> Z``: the tracer (a tensor) at elliptical radii ``r`` (arcsec), a
        tensor broadcastable against ``(N, H, W)`` parameters, e.g. of shape ``(1, M)``.
    polynomial_degree : int or None
        Degree of ``Z`` as a polynomial in ``r`` when it is one (0 for a constant, 1 for a
        linear gradient), else ``None``. Cubic interpolation in ``r`` is then exact for
        linear averaging.
    feature_scale : float or None
        The shortest radial scale (arcsec) on which ``Z`` bends (a softened break's width):
        radial nodes are spaced finely enough to follow it.
    breakpoints : tuple of float
        Radii (arcsec) where ``Z`` is not smooth but its position is fixed (a spline's knots):
        the radial nodes are laid out so that no interpolation stencil straddles one.
    """

    geometry: tuple | None
    of_radius: Callable
    polynomial_degree: int | None = None
    feature_scale: float | None = None
    breakpoints: tuple = ()


def fixed_geometry(x0, y0, q, phi) -> tuple | None:
    """``(x0, y0, q, phi)`` as numpy arrays if all are fixed numbers, else None."""
    if not _fixed_all(x0, y0, q, phi):
        return None
    return tuple(_numeric(v) for v in (x0, y0, q, phi))


def _same_geometry(a, b) -> bool:
    try:
        return all(np.array_equal(*np.broadcast_arrays(u, v)) for u, v in zip(a, b))
    except ValueError:  # different galaxy axes
        return False


class TracerProfile:
    """Base class: a tracer field evaluated at sky positions (arcsec)."""

    def value(self, x, y):
        """The tracer at ``x, y`` (arcsec): a tensor broadcastable to ``(N, H, W)``."""
        raise NotImplementedError

    def parameters(self) -> dict:
        """The profile's parameters by name (numbers, arrays or variables)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def linear_terms(self, points) -> list[LinearTerm] | None:
        """The tracer as a sum of coefficients x fixed spatial factors, if it is one.

        ``Z(x, y) = sum_k coefficient_k * factor_k(x, y)`` exactly, with every free parameter
        in the coefficients. Used for linear averaging, where the forward model is then linear
        in the coefficients (:class:`~pymc_tracers.forward.TransferRenderer`).

        Parameters
        ----------
        points : list of (x, y)
            Sets of sample points (numpy arrays in arcsec, each of shape ``(H, W)``) on which
            the forward model renders; every term gives one factor per set.

        Returns
        -------
        list of LinearTerm or None
            ``None`` (the default) when the tracer is not linear in fixed spatial factors.
        """
        return None

    def radial_form(self) -> RadialForm | None:
        """The tracer as a function of one elliptical radius with a fixed geometry, if it is.

        Returns
        -------
        RadialForm or None
            ``None`` (the default) when the tracer depends on more than the elliptical radius
            about a fixed centre, axis ratio and angle (azimuthal terms, 2-D fields, a fitted
            centre).
        """
        return None

    def __call__(self, x, y):
        x = pt.as_tensor_variable(x)
        value = pt.as_tensor_variable(self.value(x, pt.as_tensor_variable(y)))
        target = tuple(x.type.shape)
        static = value.type.shape
        if value.ndim > len(target) + 1 or any(
            a not in (1, None, b)
            for a, b in zip(reversed(static), reversed(target))
            if b is not None
        ):
            raise ValueError(
                f"{self!r} returned a tracer of shape {static}, which does not match the "
                f"coordinate grid of shape {target}; return a scalar, an array shaped like x, "
                "or one with a leading galaxy axis (N, *x.shape)"
            )
        lead = tuple(value.shape[: value.ndim - len(target)])
        return pt.broadcast_to(value, (*lead, *x.shape))

    def __add__(self, other):
        return SumTracer([self, as_tracer_profile(other)])

    def __radd__(self, other):
        return SumTracer([as_tracer_profile(other), self])


class SumTracer(TracerProfile):
    """The sum of tracer profiles, e.g. a gradient plus azimuthal terms plus a residual field.

    Its linear terms exist when every part has them: concatenated for linear averaging, and
    multiplied out for log averaging (``10**(Z1 + Z2) = 10**Z1 x 10**Z2``).
    """

    def __init__(self, profiles):
        flat = []
        for profile in profiles:
            profile = as_tracer_profile(profile)
            flat.extend(profile.profiles if isinstance(profile, SumTracer) else [profile])
        self.profiles = flat

    def value(self, x, y):
        return sum(profile(x, y) for profile in self.profiles)

    def parameters(self) -> dict:
        return {
            f"{i}.{k}": v for i, p in enumerate(self.profiles) for k, v in p.parameters().items()
        }

    def linear_terms(self, points):
        parts = [p.linear_terms(points) for p in self.profiles]
        if any(part is None for part in parts):
            return None
        return [term for part in parts for term in part]

    def radial_form(self):
        forms = [p.radial_form() for p in self.profiles]
        if any(form is None for form in forms):
            return None
        geometries = [f.geometry for f in forms if f.geometry is not None]
        for other in geometries[1:]:
            if not _same_geometry(geometries[0], other):
                return None  # radial about different centres or shapes: not one radius

        def of_radius(r):
            return sum(form.of_radius(r) for form in forms)

        degrees = [f.polynomial_degree for f in forms]
        scales = [f.feature_scale for f in forms if f.feature_scale is not None]
        return RadialForm(
            geometry=geometries[0] if geometries else None,
            of_radius=of_radius,
            polynomial_degree=None if None in degrees else max(degrees),
            feature_scale=min(scales) if scales else None,
            breakpoints=tuple(sorted({b for f in forms for b in f.breakpoints})),
        )

    def __repr__(self):
        return " + ".join(repr(p) for p in self.profiles)


class Constant(TracerProfile):
    """A uniform tracer, e.g. one metallicity per clump.

    Parameters
    ----------
    value : float, array (N,) or variable
        The tracer value (e.g. 12+log(O/H) in dex, or km/s).
    """

    def __init__(self, value):
        self.constant = _check_number(value, "value")

    def value(self, x, y):
        return per_galaxy(self.constant) + pt.zeros_like(pt.as_tensor_variable(x))

    def linear_terms(self, points):
        return [LinearTerm(self.constant, _ones(points))]

    def radial_form(self):
        return RadialForm(geometry=None, of_radius=lambda r: self.value(r, r), polynomial_degree=0)

    def __repr__(self):
        return f"Constant({self.constant!r})"


class Expression(TracerProfile):
    """Any tracer field written as a PyTensor expression of ``x`` and ``y`` (arcsec).

    Parameters
    ----------
    function : callable
        ``function(x, y) -> tensor``; ``x`` and ``y`` are PyTensor tensors of sky coordinates
        in arcsec of shape ``(H, W)``. Free parameters are captured from the enclosing scope
        (PyMC variables); a batch of galaxies returns ``(N, H, W)``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> spiral = Expression(lambda x, y: 8.5 - 0.1 * pt.sqrt(x**2 + y**2)
    ...                     + 0.2 * pt.cos(2 * pt.arctan2(y, x)))
    """

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"Expression needs a callable f(x, y); got {type(function).__name__}")
        try:
            inspect.signature(function).bind(0.0, 0.0)
        except TypeError:
            raise TypeError("the tracer expression must accept two arguments, (x, y)") from None
        self.function = function

    def value(self, x, y):
        out = pt.as_tensor_variable(
            self.function(pt.as_tensor_variable(x), pt.as_tensor_variable(y))
        )
        if out.ndim > 3:
            raise ValueError(
                f"the tracer expression returned a tensor with {out.ndim} dimensions; "
                "it must return a scalar, a map of the shape of x, or (N, *x.shape)"
            )
        return out

    def parameters(self) -> dict:
        return {}

    def __repr__(self):
        return f"Expression({getattr(self.function, '__name__', 'function')})"


def as_tracer_profile(tracer) -> TracerProfile:
    """Accept a tracer profile, a number or array (a constant) or a callable ``f(x, y)``."""
    if isinstance(tracer, TracerProfile):
        return tracer
    if callable(tracer):
        return Expression(tracer)
    return Constant(tracer)
