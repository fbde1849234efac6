"""Intrinsic tracer fields Z(x, y): metallicity (dex), velocity (km/s), line ratios, colours.

A tracer profile is the value of the traced quantity *before* light weighting, PSF smearing
and pixelisation. Its units are those of its parameters (e.g. 12+log(O/H) in dex with a
gradient in dex/arcsec). Parameters may carry one leading galaxy axis ``(N,)``, as for light
profiles (:func:`~pymc_tracers.profiles.light.per_galaxy`).

Profiles add with ``+`` (``LinearGradient(...) + azimuthal + residual``).

**Linear terms.** A profile may state that the averaged quantity ``f(Z)`` (``Z`` itself for
``tracer_scale="linear"``, ``10**Z`` for ``"log"``) is a sum of *coefficients* (tensors that
hold every free parameter) times *fixed spatial factors* (numpy arrays)::

    f(Z(x, y)) = sum_k coefficient_k * factor_k(x, y)

by implementing :meth:`TracerProfile.linear_terms`. The forward model then convolves each
``light x factor_k`` once and evaluates the tracer map as a linear combination of those basis
maps (no FFT per evaluation); profiles that do not implement it take the full path.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant as GraphConstant
from pytensor.graph.basic import Variable
from scipy import special

from pymc_tracers.profiles.light import _check_number, elliptical_radius, per_galaxy

__all__ = [
    "TracerProfile",
    "Constant",
    "LinearGradient",
    "Expression",
    "SumTracer",
    "LinearTerm",
    "LinearExpansion",
    "as_tracer_profile",
    "LOG_SERIES_TOLERANCE",
    "MAX_LINEAR_TERMS",
]

#: Error bound (dex) that the log-averaged series of :class:`LinearGradient` guarantees.
LOG_SERIES_TOLERANCE = 1e-7
#: Expansions with more terms than this are not worth it: the full path is taken instead.
MAX_LINEAR_TERMS = 64
_LN10 = math.log(10.0)


def _is_fixed(value) -> bool:
    return not isinstance(value, Variable) or isinstance(value, GraphConstant)


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


@dataclass
class LinearTerm:
    """One term ``coefficient x factor`` of a linear expansion of ``f(Z)``.

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


@dataclass
class LinearExpansion:
    """``f(Z) = sum of terms``, exact or within ``max_error``, where ``valid`` holds.

    Attributes
    ----------
    terms : list of LinearTerm
    max_error : float
        Bound on the error of the resulting tracer map in the tracer's units (dex for
        ``tracer_scale="log"``); 0 for exact expansions.
    valid : tensor or None
        Boolean scalar tensor, true where the expansion meets ``max_error`` (e.g. a gradient
        inside the range the series was built for); ``None`` when always valid.
    """

    terms: list
    max_error: float = 0.0
    valid: object = None
    notes: list = field(default_factory=list)

    def __len__(self):
        return len(self.terms)


def _and(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return pt.and_(a, b)


def _ones(points):
    return [np.ones((1, 1)) for _ in points]


class TracerProfile:
    """Base class: a tracer field evaluated at sky positions (arcsec)."""

    def value(self, x, y):
        """The tracer at ``x, y`` (arcsec): a tensor broadcastable to ``(N, H, W)``."""
        raise NotImplementedError

    def parameters(self) -> dict:
        """The profile's parameters by name (numbers, arrays or variables)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def linear_terms(self, tracer_scale: str, points) -> LinearExpansion | None:
        """``f(Z)`` at the sample points as a sum of coefficients x fixed factors.

        Parameters
        ----------
        tracer_scale : {"linear", "log"}
            ``f(Z) = Z`` or ``10**Z``.
        points : list of (x, y)
            Sets of sample points (numpy arrays in arcsec, each of shape ``(H, W)``) on which
            the forward model renders; every term gives one factor per set.

        Returns
        -------
        LinearExpansion or None
            ``None`` (the default) when ``f(Z)`` is not linear in fixed spatial factors.
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

    def linear_terms(self, tracer_scale, points):
        parts = [p.linear_terms(tracer_scale, points) for p in self.profiles]
        if any(part is None for part in parts):
            return None
        if tracer_scale == "linear":
            terms = [term for part in parts for term in part.terms]
            valid = None
            for part in parts:
                valid = _and(valid, part.valid)
            return LinearExpansion(terms, sum(p.max_error for p in parts), valid)
        expansion = parts[0]
        for part in parts[1:]:
            if len(expansion) * len(part) > MAX_LINEAR_TERMS:
                return None
            terms = [
                LinearTerm(
                    pt.as_tensor_variable(a.coefficient) * pt.as_tensor_variable(b.coefficient),
                    [fa * fb for fa, fb in zip(a.factors, b.factors)],
                )
                for a in expansion.terms
                for b in part.terms
            ]
            # relative errors of 10**Z add to first order, and dex errors are relative / ln 10
            expansion = LinearExpansion(
                terms, expansion.max_error + part.max_error, _and(expansion.valid, part.valid)
            )
        return expansion

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

    def linear_terms(self, tracer_scale, points):
        c = self.constant
        coefficient = c if tracer_scale == "linear" else 10.0**c
        return LinearExpansion([LinearTerm(coefficient, _ones(points))])

    def __repr__(self):
        return f"Constant({self.constant!r})"


class LinearGradient(TracerProfile):
    """A linear radial gradient ``Z = central + gradient * r``.

    Parameters
    ----------
    x0, y0 : float, array (N,) or variable
        Centre of the gradient in arcsec.
    central : float, array (N,) or variable
        Tracer value at the centre (e.g. 12+log(O/H), dex).
    gradient : float, array (N,) or variable
        Change per arcsec of elliptical radius (e.g. dex/arcsec).
    q, phi : float, array (N,) or variable
        Axis ratio b/a and major-axis angle (radians, counter-clockwise from +x) of the
        isocontours; ``r`` is the elliptical radius along the major axis.
    gradient_range : (float, float), optional
        Range (same units as ``gradient``) that a fitted gradient is expected to stay in.
        With ``tracer_scale="log"`` and a fixed geometry it enables the fast log series (see
        Notes); read from the prior when the gradient is a ``pm.Uniform`` variable.

    Notes
    -----
    With linear averaging the map is exactly linear in ``central`` and ``gradient``. With
    log averaging ``10**Z = 10**central * exp(gradient ln10 r)`` is linear in ``10**central``
    and, for ``gradient`` in ``[m - h, m + h]``, has the Chebyshev expansion (in
    ``t = (gradient - m) / h``)::

        exp(gradient ln10 r) = exp(m ln10 r) * sum_k eps_k I_k(h ln10 r) T_k(t)

    with modified Bessel functions ``I_k`` and ``eps_0 = 1``, ``eps_k = 2``. The number of
    terms is the smallest that bounds the error by :data:`LOG_SERIES_TOLERANCE` dex at the
    largest radius of the rendered field (truncation ``2 e^rho sum_{k>K} I_k(rho)`` relative,
    plus round-off). Outside the range the forward model switches to the full FFT path.
    """

    def __init__(self, *, x0=0.0, y0=0.0, central=0.0, gradient=0.0, q=1.0, phi=0.0,
                 gradient_range=None):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.central = _check_number(central, "central")
        self.gradient = _check_number(gradient, "gradient")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")
        if gradient_range is not None:
            lo, hi = (float(v) for v in gradient_range)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"gradient_range must be two finite numbers (low, high) with low < high; "
                    f"got {gradient_range!r}"
                )
            gradient_range = (lo, hi)
        self.gradient_range = gradient_range

    def value(self, x, y):
        r = elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi)
        return per_galaxy(self.central) + per_galaxy(self.gradient) * r

    def _radii(self, points):
        return [elliptical_radius_grid(x, y, self.x0, self.y0, self.q, self.phi) for x, y in points]

    def linear_terms(self, tracer_scale, points):
        if not all(_is_fixed(v) for v in (self.x0, self.y0, self.q, self.phi)):
            return None
        radii = self._radii(points)
        if tracer_scale == "linear":
            return LinearExpansion(
                [LinearTerm(self.central, _ones(points)), LinearTerm(self.gradient, radii)]
            )
        amplitude = 10.0**self.central
        if _is_fixed(self.gradient):
            g = _per_galaxy_numpy(self.gradient)
            return LinearExpansion([LinearTerm(amplitude, [10.0 ** (g * r) for r in radii])])
        bounds = self.gradient_range or _uniform_prior_bounds(self.gradient)
        if bounds is None:
            return None
        return _chebyshev_log_series(amplitude, self.gradient, bounds, radii)

    def __repr__(self):
        return (
            f"LinearGradient(x0={self.x0!r}, y0={self.y0!r}, central={self.central!r}, "
            f"gradient={self.gradient!r}, q={self.q!r}, phi={self.phi!r})"
        )


def _uniform_prior_bounds(variable):
    """``(lower, upper)`` of a ``pm.Uniform`` variable with fixed bounds, else None."""
    node = getattr(variable, "owner", None)
    if node is None or type(node.op).__name__ != "UniformRV":
        return None
    lower, upper = node.op.dist_params(node)
    try:
        lo, hi = float(pt.get_underlying_scalar_constant_value(lower)), float(
            pt.get_underlying_scalar_constant_value(upper)
        )
    except Exception:  # bounds that are themselves variables
        return None
    return (lo, hi) if lo < hi else None


def log_series_error(rho: float, n_terms: int) -> float:
    """Bound (dex) on the error of the ``n_terms``-term Chebyshev series of ``exp(rho t)``.

    Truncation ``2 sum_{k >= n} I_k(rho)`` relative to ``exp(rho t) >= exp(-rho)``, plus
    float64 round-off of summing terms as large as ``exp(rho)``, converted to dex.
    """
    k = np.arange(n_terms, n_terms + 200)
    tail = 2.0 * np.sum(special.ive(k, rho)) * math.exp(2.0 * rho)
    roundoff = n_terms * np.finfo(float).eps * math.exp(2.0 * rho)
    return (tail + roundoff) / _LN10


def _chebyshev_log_series(amplitude, gradient, bounds, radii):
    lo, hi = bounds
    middle, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    rho_max = half * _LN10 * max(float(np.max(r)) for r in radii)
    n_terms = next(
        (n for n in range(1, MAX_LINEAR_TERMS + 1)
         if log_series_error(rho_max, n) <= LOG_SERIES_TOLERANCE),
        None,
    )
    if n_terms is None:
        return None
    t = (pt.as_tensor_variable(gradient) - middle) / half
    chebyshev = [pt.ones_like(t), t]
    while len(chebyshev) < n_terms:
        chebyshev.append(2.0 * t * chebyshev[-1] - chebyshev[-2])
    terms = []
    for k in range(n_terms):
        weight = 1.0 if k == 0 else 2.0
        factors = [
            weight * special.ive(k, half * _LN10 * r) * np.exp((half + middle) * _LN10 * r)
            for r in radii
        ]
        terms.append(LinearTerm(amplitude * chebyshev[k], factors))
    valid = pt.all(pt.le(pt.abs(t), 1.0))
    return LinearExpansion(
        terms,
        max_error=log_series_error(rho_max, n_terms),
        valid=valid,
        notes=[f"log series: {n_terms} Chebyshev terms for gradient in [{lo:g}, {hi:g}]"],
    )


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
