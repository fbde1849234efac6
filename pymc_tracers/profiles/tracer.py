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
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant as GraphConstant
from pytensor.graph.basic import Variable
from pytensor.tensor.exceptions import NotScalarConstantError
from scipy import special

from pymc_tracers.profiles.light import (
    RADIUS_SOFTENING,
    _check_number,
    elliptical_radius,
    per_galaxy,
)

__all__ = [
    "GP_KERNELS",
    "LOG_SERIES_TOLERANCE",
    "MAX_LINEAR_TERMS",
    "Azimuthal",
    "BrokenGradient",
    "Constant",
    "Expression",
    "GPResidual",
    "LinearExpansion",
    "LinearGradient",
    "LinearTerm",
    "SumTracer",
    "TracerProfile",
    "as_tracer_profile",
    "azimuthal_numpy",
    "broken_gradient_numpy",
    "gp_kernel_numpy",
    "gp_residual_numpy",
    "gp_spectral_density_numpy",
]

#: Error bound (dex) that the log-averaged series of :class:`LinearGradient` guarantees.
LOG_SERIES_TOLERANCE = 1e-7
#: Expansions with more terms than this are not worth it: the full path is taken instead.
MAX_LINEAR_TERMS = 64
#: Chebyshev terms per piece of a log series. A wide gradient range is split into pieces
#: rather than covered by one long series: an evaluation costs one piece's terms per galaxy.
LOG_SERIES_TERMS = 12
#: Most pieces a log series may use (memory grows with pieces x terms) before the full path
#: is taken instead.
MAX_SERIES_PIECES = 32
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
    n_pieces : int
        A piecewise expansion (e.g. a log series over a wide gradient range) has one set of
        factors per piece: each factor then carries a leading axis of length ``n_pieces``,
        and every galaxy uses the factors of its own piece, ``piece``.
    piece : integer tensor or None
        Scalar or ``(N,)``: the piece each galaxy uses (``None`` when ``n_pieces == 1``).
    outside : {"full", "reject"}
        Where ``valid`` is false: take the full path, or make the map ``inf`` (a hard bound).
    """

    terms: list
    max_error: float = 0.0
    valid: object = None
    notes: list = field(default_factory=list)
    n_pieces: int = 1
    piece: object = None
    outside: str = "full"

    def __len__(self):
        return len(self.terms)


def _and(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return pt.and_(a, b)


def _outside_of(*expansions):
    """A bound is only as hard as its softest part: any part asking for the full path gets it."""
    guarded = [e.outside for e in expansions if e.valid is not None]
    return "reject" if guarded and all(o == "reject" for o in guarded) else "full"


def _piecewise_product(a, a_pieces, b, b_pieces):
    """The product of two factors, at most one of them piecewise (leading piece axis)."""
    if a_pieces > 1:
        return np.stack([piece * b for piece in a])
    if b_pieces > 1:
        return np.stack([a * piece for piece in b])
    return a * b


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

    def linear_terms(self, tracer_scale: str, points, *, error_of=None) -> LinearExpansion | None:
        """``f(Z)`` at the sample points as a sum of coefficients x fixed factors.

        Parameters
        ----------
        tracer_scale : {"linear", "log"}
            ``f(Z) = Z`` or ``10**Z``.
        points : list of (x, y)
            Sets of sample points (numpy arrays in arcsec, each of shape ``(H, W)``) on which
            the forward model renders; every term gives one factor per set.
        error_of : callable, optional
            Supplied by the forward model for approximate (series) expansions:
            ``error_of(error_factors, floor_factors, floor_key=None)`` returns the largest
            relative error of the light-weighted, PSF-convolved ratio over the pixels where the
            light is appreciable, given per point set a bound on each point's absolute error
            and a lower bound on its value (its convolution is cached under ``floor_key``, if
            given). Without it, a series must bound every point alone.

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

    def linear_terms(self, tracer_scale, points, *, error_of=None):
        parts = [p.linear_terms(tracer_scale, points) for p in self.profiles]
        if any(part is None for part in parts):
            return None
        if tracer_scale == "linear":
            if any(part.n_pieces > 1 for part in parts):
                return None
            terms = [term for part in parts for term in part.terms]
            valid = None
            for part in parts:
                valid = _and(valid, part.valid)
            return LinearExpansion(
                terms, sum(p.max_error for p in parts), valid, outside=_outside_of(*parts)
            )
        if sum(part.n_pieces > 1 for part in parts) > 1:
            return None  # one piece index per expansion: two piecewise parts do not multiply
        expansion = parts[0]
        for part in parts[1:]:
            if len(expansion) * len(part) > MAX_LINEAR_TERMS:
                return None
            pieces = max(expansion.n_pieces, part.n_pieces)
            terms = [
                LinearTerm(
                    pt.as_tensor_variable(a.coefficient) * pt.as_tensor_variable(b.coefficient),
                    [
                        _piecewise_product(fa, expansion.n_pieces, fb, part.n_pieces)
                        for fa, fb in zip(a.factors, b.factors)
                    ],
                )
                for a in expansion.terms
                for b in part.terms
            ]
            # relative errors of 10**Z add to first order, and dex errors are relative / ln 10
            expansion = LinearExpansion(
                terms,
                expansion.max_error + part.max_error,
                _and(expansion.valid, part.valid),
                notes=expansion.notes + part.notes,
                n_pieces=pieces,
                piece=expansion.piece if expansion.n_pieces > 1 else part.piece,
                outside=_outside_of(expansion, part),
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

    def linear_terms(self, tracer_scale, points, *, error_of=None):
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
    outside_range : {"full", "reject"}
        What the log series does for a gradient outside ``gradient_range``. ``"full"``
        (default): that evaluation takes the exact full FFT path (for every galaxy of a
        batch). ``"reject"``: the range is a hard bound, like a Uniform prior's: the tracer
        map is ``inf`` there, so a likelihood is ``-inf`` and a sampler turns back. No full
        path is built, which saves its memory and a few ms per evaluation of large batches;
        choose a range well outside the posterior and check that draws stay inside it.

    Notes
    -----
    With linear averaging the map is exactly linear in ``central`` and ``gradient``. With
    log averaging ``10**Z = 10**central * exp(gradient ln10 r)`` is linear in ``10**central``
    and, for ``gradient`` in ``[m - h, m + h]``, has the Chebyshev expansion (in
    ``t = (gradient - m) / h``)::

        exp(gradient ln10 r) = exp(m ln10 r) * sum_k eps_k I_k(h ln10 r) T_k(t)

    with modified Bessel functions ``I_k`` and ``eps_0 = 1``, ``eps_k = 2``. The number of
    terms is the smallest that bounds the error of the tracer map by
    :data:`LOG_SERIES_TOLERANCE` dex. Each point's absolute error is at most
    ``exp(m ln10 r) (2 sum_{k>=K} I_k(rho) + K eps e^rho)`` (truncation plus float64
    round-off, ``rho = h ln10 r``) and its value at least ``exp(m ln10 r) e^-rho``; the forward
    model convolves both with the light, so the bound holds for every pixel whose light is
    above ``pymc_tracers.forward.SERIES_LIGHT_FLOOR`` (1e-4) of its galaxy's brightest pixel
    (a likelihood using fainter pixels warns). The FFT round-off of the basis maps, ~1e-16 of
    each map's peak, is not in the bound; above the floor it is far smaller. (Alone,
    without the forward model, the bound is taken at the field's largest radius, which is far
    more pessimistic: the faint outskirts, where ``e^(2 rho)`` is largest, carry almost no
    light.) Outside the range the forward model switches to the full FFT path.
    """

    def __init__(
        self,
        *,
        x0=0.0,
        y0=0.0,
        central=0.0,
        gradient=0.0,
        q=1.0,
        phi=0.0,
        gradient_range=None,
        outside_range="full",
    ):
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
        if outside_range not in ("full", "reject"):
            raise ValueError(f"outside_range must be 'full' or 'reject'; got {outside_range!r}")
        self._outside_range = outside_range

    def value(self, x, y):
        r = elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi)
        return per_galaxy(self.central) + per_galaxy(self.gradient) * r

    def _radii(self, points):
        return [elliptical_radius_grid(x, y, self.x0, self.y0, self.q, self.phi) for x, y in points]

    def linear_terms(self, tracer_scale, points, *, error_of=None):
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
        expansion = _chebyshev_log_series(amplitude, self.gradient, bounds, radii, error_of)
        if expansion is not None:
            expansion.outside = self._outside_range
        return expansion

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
        lo, hi = (
            float(pt.get_underlying_scalar_constant_value(lower)),
            float(pt.get_underlying_scalar_constant_value(upper)),
        )
    except NotScalarConstantError:  # bounds that are themselves variables
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


def _chebyshev_tail(n_terms: int, rho: np.ndarray) -> np.ndarray:
    """Upper bound on ``2 sum_{k >= n} I_k(rho) e^-rho`` at each ``rho`` (>= 0).

    The tail grows with ``rho``, so it is tabulated on a fine grid and each point takes the
    value at the grid node above it: an upper bound without evaluating Bessel functions at
    every sample point.
    """
    top = float(np.max(rho)) if rho.size else 0.0
    nodes = np.linspace(0.0, top * (1 + 1e-12) + 1e-12, 2049)
    k = np.arange(n_terms, n_terms + 200)[:, None]
    table = 2.0 * special.ive(k, nodes[None, :]).sum(axis=0)
    above = np.minimum(np.searchsorted(nodes, rho, side="left"), nodes.size - 1)
    return table[above]


def _smallest_passing(low, high, passes, *, high_passes=False) -> int | None:
    """The smallest integer n in ``[low, high]`` with ``passes(n)``, for ``passes`` monotone
    in n (false, ..., false, true, ...); None if ``passes(high)`` is false.

    Probes ``low, 2 low, 4 low, ...`` before bisecting, so a small answer costs a few cheap
    failures rather than a test of ``high`` first. ``high_passes`` says ``passes(high)`` is
    already known to be true.
    """
    below, probe = low - 1, low  # passes(below) is false (or below is outside the range)
    while probe < high and not passes(probe):
        below, probe = probe, min(2 * max(probe, 1), high)
    if probe == high and not (high_passes or passes(high)):
        return None
    low, high = below + 1, probe
    while low < high:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _series_pieces(lo, hi, bound_of):
    """Split ``[lo, hi]`` into the fewest equal pieces whose series of at most
    :data:`LOG_SERIES_TERMS` terms meet the tolerance, then use as few terms as they allow.

    ``bound_of(middle, half, n)`` bounds the error (dex) of an n-term series on
    ``[middle - half, middle + half]``. Returns ``(n_pieces, n_terms, bound)`` or None.
    """
    bounds = {}  # each bound costs a convolution of the whole batch: never twice

    def bound(middle, half, n):
        key = (float(middle), float(half), int(n))
        if key not in bounds:
            bounds[key] = bound_of(middle, half, n)
        return bounds[key]

    def pieces(count):
        half = 0.5 * (hi - lo) / count
        middles = lo + half * (2 * np.arange(count) + 1)
        return half, middles[::-1]  # rising gradients weigh the outskirts most: worst first

    def all_meet(count, n):
        half, middles = pieces(count)
        return all(bound(m, half, n) <= LOG_SERIES_TOLERANCE for m in middles)

    count = _smallest_passing(1, MAX_SERIES_PIECES, lambda c: all_meet(c, LOG_SERIES_TERMS))
    if count is None:
        return None
    n_terms = _smallest_passing(1, LOG_SERIES_TERMS, lambda n: all_meet(count, n), high_passes=True)
    half, middles = pieces(count)
    return count, n_terms, max(bound(m, half, n_terms) for m in middles)


def _chebyshev_log_series(amplitude, gradient, bounds, radii, error_of=None):
    """The piecewise Chebyshev series of ``10**(gradient r)`` (see :class:`LinearGradient`)."""
    lo, hi = bounds
    r_max = max(float(np.max(r)) for r in radii)
    if error_of is None:
        # every point bounded alone: relative to its smallest value exp(-rho) at the corners
        def bound_of(middle, half, n):
            return log_series_error(half * _LN10 * r_max, n)

        scope = "every rendered point"
    else:
        # the error of a light-weighted sum is bounded by the light-weighted sum of the
        # points' errors over the light-weighted sum of their smallest values, so faint
        # outskirts (where exp(rho) is largest) count only as much as their light
        def bound_of(middle, half, n):
            base = [np.exp(middle * _LN10 * r) for r in radii]
            rho = [half * _LN10 * r for r in radii]
            error = [
                b * np.exp(p) * (_chebyshev_tail(n, p) + n * np.finfo(float).eps)
                for b, p in zip(base, rho)
            ]
            floor = [b * np.exp(-p) for b, p in zip(base, rho)]
            return error_of(error, floor, floor_key=(middle, half)) / _LN10

        scope = "pixels with light above the series floor"
    chosen = _series_pieces(lo, hi, bound_of)
    if chosen is None:
        logging.getLogger("pymc_tracers").info(
            "log series: gradient range [%g, %g] is too wide for the field (largest radius "
            "%.2f) to reach %.0e dex in %d pieces of %d terms; taking the full path",
            lo,
            hi,
            r_max,
            LOG_SERIES_TOLERANCE,
            MAX_SERIES_PIECES,
            LOG_SERIES_TERMS,
        )
        return None
    n_pieces, n_terms, max_error = chosen
    width = (hi - lo) / n_pieces
    half = 0.5 * width
    gradient = pt.as_tensor_variable(gradient)
    valid = pt.all(pt.and_(pt.ge(gradient, lo), pt.le(gradient, hi)))
    # each galaxy takes the piece its gradient is in (no gradient flows through the choice:
    # neighbouring pieces agree to the tolerance at their common edge)
    piece = pt.clip(pt.floor((gradient - lo) / width), 0, n_pieces - 1)
    t = (gradient - (lo + half + width * piece)) / half
    # outside the range the forward model takes the full path; clipping keeps the unused
    # series finite there (and its gradient zero), so it cannot poison the chosen one. The
    # slack keeps the range's own ends (where t may round to 1 + 1 ulp) differentiable.
    t = pt.clip(t, -1.0 - 1e-9, 1.0 + 1e-9)
    chebyshev = [pt.ones_like(t), t]
    while len(chebyshev) < n_terms:
        chebyshev.append(2.0 * t * chebyshev[-1] - chebyshev[-2])
    middles = lo + half + width * np.arange(n_pieces)
    terms = []
    for k in range(n_terms):
        weight = 1.0 if k == 0 else 2.0
        factors = [
            np.stack(
                [
                    weight * special.ive(k, half * _LN10 * r) * np.exp((half + m) * _LN10 * r)
                    for m in middles
                ]
            )
            for r in radii
        ]
        if n_pieces == 1:
            factors = [f[0] for f in factors]
        terms.append(LinearTerm(amplitude * chebyshev[k], factors))
    return LinearExpansion(
        terms,
        max_error=max_error,
        valid=valid,
        notes=[
            f"log series: {n_pieces} piece(s) of {n_terms} Chebyshev terms for gradient in "
            f"[{lo:g}, {hi:g}], bound over {scope}"
        ],
        n_pieces=n_pieces,
        piece=pt.cast(piece, "int64") if n_pieces > 1 else None,
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


# ============================================================================ richer structure
def _fixed_all(*values) -> bool:
    return all(_is_fixed(v) for v in values)


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


class BrokenGradient(TracerProfile):
    """Two linear gradients joined at a fitted break radius, softened so NUTS can move it.

    ``Z(r) = central + inner * r + (outer - inner) * S(r)`` with the softened hinge::

        S(r) = w * [softplus((r - r_break) / w) - softplus(-r_break / w)]

    ``S`` tends to ``max(r - r_break, 0)`` as ``w -> 0``: slope ``inner`` inside the break,
    ``outer`` outside it, with the change of slope spread over about ``+-2 w`` around
    ``r_break`` (the slope is ``inner + (outer - inner) * sigmoid((r - r_break) / w)``). The
    subtracted constant keeps ``Z(0) = central`` exactly.

    Parameters
    ----------
    x0, y0 : float, array (N,) or variable
        Centre in arcsec.
    central : float, array (N,) or variable
        Tracer at the centre (e.g. 12+log(O/H), dex).
    inner, outer : float, array (N,) or variable
        Slopes inside and outside the break (e.g. dex/arcsec of elliptical radius).
    r_break : float, array (N,) or variable
        Break radius in arcsec (elliptical radius along the major axis), > 0.
    q, phi : float, array (N,) or variable
        Axis ratio b/a and major-axis angle (radians, counter-clockwise from +x).
    softening : float
        Width ``w`` of the softened break in arcsec (fixed; default 0.05"). Choose it below the
        pixel size for a sharp break that still has smooth gradients in ``r_break``.

    Notes
    -----
    **Linear terms.** With linear averaging and fixed ``r_break``, centre and shape the map is
    exactly linear in ``(central, inner, outer)``: factors ``1``, ``r - S`` and ``S``. With log
    averaging the fast path needs the slopes fixed too (one term ``10**central x 10**(Z -
    central)``). Otherwise (a fitted break radius) the full path is taken.
    """

    def __init__(
        self,
        *,
        x0=0.0,
        y0=0.0,
        central=0.0,
        inner=0.0,
        outer=0.0,
        r_break=1.0,
        q=1.0,
        phi=0.0,
        softening=0.05,
    ):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.central = _check_number(central, "central")
        self.inner = _check_number(inner, "inner")
        self.outer = _check_number(outer, "outer")
        self.r_break = _check_number(r_break, "r_break", positive=True)
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")
        self.softening = _check_fixed_positive(softening, "softening", "arcsec")

    def hinge(self, r):
        """The softened ``max(r - r_break, 0)`` of a radius tensor (arcsec)."""
        w = self.softening
        r_break = per_galaxy(self.r_break)
        return w * (pt.softplus((r - r_break) / w) - pt.softplus(-r_break / w))

    def value(self, x, y):
        r = elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi)
        hinge = self.hinge(r)
        inner, outer = per_galaxy(self.inner), per_galaxy(self.outer)
        return per_galaxy(self.central) + inner * r + (outer - inner) * hinge

    def linear_terms(self, tracer_scale, points, *, error_of=None):
        if not _fixed_all(self.x0, self.y0, self.q, self.phi, self.r_break):
            return None
        radii = [
            elliptical_radius_grid(x, y, self.x0, self.y0, self.q, self.phi) for x, y in points
        ]
        w, r_break = self.softening, _per_galaxy_numpy(self.r_break)
        hinges = [
            w * (np.logaddexp(0.0, (r - r_break) / w) - np.logaddexp(0.0, -r_break / w))
            for r in radii
        ]
        if tracer_scale == "linear":
            return LinearExpansion(
                [
                    LinearTerm(self.central, _ones(points)),
                    LinearTerm(self.inner, [r - h for r, h in zip(radii, hinges)]),
                    LinearTerm(self.outer, hinges),
                ]
            )
        if not _fixed_all(self.inner, self.outer):
            return None
        inner, outer = _per_galaxy_numpy(self.inner), _per_galaxy_numpy(self.outer)
        factors = [10.0 ** (inner * (r - h) + outer * h) for r, h in zip(radii, hinges)]
        return LinearExpansion([LinearTerm(10.0**self.central, factors)])

    def __repr__(self):
        return (
            f"BrokenGradient(x0={self.x0!r}, y0={self.y0!r}, central={self.central!r}, "
            f"inner={self.inner!r}, outer={self.outer!r}, r_break={self.r_break!r}, "
            f"q={self.q!r}, phi={self.phi!r}, softening={self.softening!r})"
        )


def broken_gradient_numpy(
    x,
    y,
    *,
    x0=0.0,
    y0=0.0,
    central=0.0,
    inner=0.0,
    outer=0.0,
    r_break=1.0,
    q=1.0,
    phi=0.0,
    softening=0.05,
):
    """Numpy twin of :class:`BrokenGradient` (for tests and quick looks)."""
    along, across = _deprojected_offsets_numpy(x, y, x0, y0, q, phi)
    r = np.hypot(along, across)
    central, inner, outer, r_break = (
        _per_galaxy_numpy(v) for v in (central, inner, outer, r_break)
    )
    w = softening
    hinge = w * (np.logaddexp(0.0, (r - r_break) / w) - np.logaddexp(0.0, -r_break / w))
    return central + inner * r + (outer - inner) * hinge


#: names of the harmonic coefficients of :class:`Azimuthal`: ``Z += a cos(m t) + b sin(m t)``
_HARMONICS = (("cos1", 1, "cos"), ("sin1", 1, "sin"), ("cos2", 2, "cos"), ("sin2", 2, "sin"))


def _polar_components(value, phase, trig):
    """``value * cos(phase)`` or ``value * sin(phase)``, numpy when both are fixed."""
    if _fixed_all(value, phase):
        return _numeric(value) * getattr(np, trig)(_numeric(phase))
    return pt.as_tensor_variable(value) * getattr(pt, trig)(pt.as_tensor_variable(phase))


class _Harmonics(TracerProfile):
    """The harmonic part of :class:`Azimuthal` (no radial profile)."""

    def __init__(self, owner):
        self._owner = owner

    def parameters(self) -> dict:
        return {}

    def _angular(self, along, across, r, lib):
        """``cos(m t)``, ``sin(m t)`` from offsets, without arctan2 (finite at the centre)."""
        cos1, sin1 = along / r, across / r
        return {
            "cos1": cos1,
            "sin1": sin1,
            "cos2": (along**2 - across**2) / r**2,
            "sin2": 2.0 * along * across / r**2,
        }

    def _radial_factor(self, r):
        scale = self._owner.scale_radius
        return 1.0 if scale is None else r / scale

    def value(self, x, y):
        o = self._owner
        along, across = _deprojected_offsets(x, y, o.x0, o.y0, o.q, o.phi)
        r = pt.sqrt(along**2 + across**2 + RADIUS_SOFTENING**2)
        angular = self._angular(along, across, r, pt)
        field = 0.0
        for name, _, _ in _HARMONICS:
            coefficient = o.coefficients[name]
            if _is_fixed(coefficient) and not np.any(_numeric(coefficient)):
                continue
            field = field + per_galaxy(coefficient) * angular[name]
        return self._radial_factor(r) * field

    def linear_terms(self, tracer_scale, points, *, error_of=None):
        o = self._owner
        if not _fixed_all(o.x0, o.y0, o.q, o.phi):
            return None
        fields = []
        for x, y in points:
            along, across = _deprojected_offsets_numpy(x, y, o.x0, o.y0, o.q, o.phi)
            r = np.sqrt(along**2 + across**2 + RADIUS_SOFTENING**2)
            angular = self._angular(along, across, r, np)
            factor = self._radial_factor(r)
            fields.append({k: factor * v for k, v in angular.items()})
        active = [
            name
            for name, _, _ in _HARMONICS
            if not (_is_fixed(o.coefficients[name]) and not np.any(_numeric(o.coefficients[name])))
        ]
        if tracer_scale == "linear":
            if not active:  # every harmonic is fixed at zero
                return LinearExpansion([LinearTerm(0.0, _ones(points))])
            return LinearExpansion(
                [LinearTerm(o.coefficients[name], [f[name] for f in fields]) for name in active]
            )
        if not _fixed_all(*(o.coefficients[name] for name in active)):
            return None
        factors = []
        for f in fields:
            total = 0.0
            for name in active:
                total = total + _per_galaxy_numpy(o.coefficients[name]) * f[name]
            factors.append(10.0 ** np.asarray(total))
        return LinearExpansion([LinearTerm(1.0, factors)])


class Azimuthal(TracerProfile):
    """m = 1 and m = 2 azimuthal harmonics on top of a radial tracer profile.

    ``Z = radial(x, y) + g(r) [A1 cos(t - phase1) + A2 cos(2 t - phase2)]``

    where ``t`` is the azimuth in the disc plane (counter-clockwise from the major axis, after
    stretching the minor axis by ``1/q``), ``r`` the elliptical radius and ``g(r) = 1``
    (constant amplitude) or ``r / scale_radius`` (amplitude growing linearly from zero at the
    centre, reaching ``A`` at ``scale_radius``; the field is then smooth at the centre).

    m = 1 is a lopsided field (one side metal-richer, e.g. after a merger with a metal-poor
    companion); m = 2 a bisymmetric one (a bar or two-armed spiral).

    Parameters
    ----------
    radial : TracerProfile, number or None
        The radial profile the harmonics ride on (e.g. a :class:`LinearGradient`); ``None``
        for the harmonics alone (add them to another profile with ``+``).
    x0, y0 : float, array (N,) or variable
        Centre of the harmonics in arcsec.
    q, phi : float, array (N,) or variable
        Axis ratio and major-axis angle (radians) of the disc the azimuth is measured in.
    m1, m2 : float, array (N,) or variable
        Amplitudes ``A1``, ``A2`` (tracer units, e.g. dex), at ``scale_radius`` if given.
    phase1, phase2 : float, array (N,) or variable
        Phases (radians): the m = 1 term peaks at ``t = phase1``, the m = 2 term at
        ``t = phase2 / 2`` and ``phase2 / 2 + pi``.
    scale_radius : float, optional
        Radius (arcsec, fixed) at which the amplitudes apply, for amplitudes proportional to
        radius; default: constant amplitudes.

    Notes
    -----
    ``A cos(m t - p) = (A cos p) cos(m t) + (A sin p) sin(m t)``: the map is linear in the
    Cartesian coefficients ``A cos p`` and ``A sin p``, whatever the amplitudes and phases
    are, as long as the centre and shape are fixed; with linear averaging the profile states
    these linear terms. (With log averaging only fixed harmonics join the fast path.) For
    sampling, the Cartesian form (:meth:`from_components`) avoids the ring-shaped posterior of
    ``(A, p)`` when ``A`` is small.
    """

    def __init__(
        self,
        radial=None,
        *,
        x0=0.0,
        y0=0.0,
        q=1.0,
        phi=0.0,
        m1=0.0,
        phase1=0.0,
        m2=0.0,
        phase2=0.0,
        scale_radius=None,
    ):
        self._init_geometry(radial, x0, y0, q, phi, scale_radius)
        self.m1 = _check_number(m1, "m1")
        self.phase1 = _check_number(phase1, "phase1")
        self.m2 = _check_number(m2, "m2")
        self.phase2 = _check_number(phase2, "phase2")
        self._form = "polar"
        self.coefficients = {
            "cos1": _polar_components(self.m1, self.phase1, "cos"),
            "sin1": _polar_components(self.m1, self.phase1, "sin"),
            "cos2": _polar_components(self.m2, self.phase2, "cos"),
            "sin2": _polar_components(self.m2, self.phase2, "sin"),
        }

    def _init_geometry(self, radial, x0, y0, q, phi, scale_radius):
        self.radial = None if radial is None else as_tracer_profile(radial)
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")
        self.scale_radius = (
            None
            if scale_radius is None
            else _check_fixed_positive(scale_radius, "scale_radius", "arcsec")
        )
        self._harmonics = _Harmonics(self)

    @classmethod
    def from_components(
        cls,
        radial=None,
        *,
        x0=0.0,
        y0=0.0,
        q=1.0,
        phi=0.0,
        cos1=0.0,
        sin1=0.0,
        cos2=0.0,
        sin2=0.0,
        scale_radius=None,
    ) -> Azimuthal:
        """Harmonics from Cartesian coefficients: ``Z += cos1 cos t + sin1 sin t + cos2 cos 2t
        + sin2 sin 2t`` (tracer units; amplitude ``A1 = hypot(cos1, sin1)``, phase
        ``arctan2(sin1, cos1)``). Other arguments as for :class:`Azimuthal`."""
        self = cls.__new__(cls)
        self._init_geometry(radial, x0, y0, q, phi, scale_radius)
        self._form = "cartesian"
        self.coefficients = {
            name: _check_number(value, name)
            for name, value in {"cos1": cos1, "sin1": sin1, "cos2": cos2, "sin2": sin2}.items()
        }
        return self

    def parameters(self) -> dict:
        params = {"x0": self.x0, "y0": self.y0, "q": self.q, "phi": self.phi}
        if self._form == "polar":
            params.update(m1=self.m1, phase1=self.phase1, m2=self.m2, phase2=self.phase2)
        else:
            params.update(self.coefficients)
        if self.radial is not None:
            params.update({f"radial.{k}": v for k, v in self.radial.parameters().items()})
        return params

    def harmonics(self, x, y):
        """The harmonic field alone at ``x, y`` (arcsec), without the radial profile."""
        return self._harmonics(x, y)

    def value(self, x, y):
        field = self._harmonics(x, y)
        return field if self.radial is None else self.radial(x, y) + field

    def linear_terms(self, tracer_scale, points, *, error_of=None):
        if self.radial is None:
            return self._harmonics.linear_terms(tracer_scale, points)
        return SumTracer([self.radial, self._harmonics]).linear_terms(tracer_scale, points)

    def __repr__(self):
        parts = ", ".join(
            f"{k}={v!r}" for k, v in self.parameters().items() if not k.startswith("radial.")
        )
        return f"Azimuthal({self.radial!r}, {parts})"


def azimuthal_numpy(
    x,
    y,
    *,
    x0=0.0,
    y0=0.0,
    q=1.0,
    phi=0.0,
    m1=0.0,
    phase1=0.0,
    m2=0.0,
    phase2=0.0,
    scale_radius=None,
):
    """Numpy twin of the harmonic part of :class:`Azimuthal` (via ``arctan2``)."""
    along, across = _deprojected_offsets_numpy(x, y, x0, y0, q, phi)
    theta, r = np.arctan2(across, along), np.hypot(along, across)
    m1, phase1, m2, phase2 = (_per_galaxy_numpy(v) for v in (m1, phase1, m2, phase2))
    field = m1 * np.cos(theta - phase1) + m2 * np.cos(2.0 * theta - phase2)
    return field if scale_radius is None else field * r / scale_radius


# ---------------------------------------------------------------------------- GP residuals
#: covariance kernels of :class:`GPResidual` and their Matern orders (None: squared exponential)
GP_KERNELS = {"expquad": None, "matern32": 1.5, "matern52": 2.5}


def _as_pair(value, name, kind):
    """A number or a pair as ``(x, y)``: positive integers (``kind=int``) or arcsec."""
    what = "a positive integer" if kind is int else "a positive number (arcsec)"
    try:
        pair = [float(v) for v in np.broadcast_to(np.asarray(value, dtype=float), (2,))]
    except (TypeError, ValueError):
        pair = None
    if (
        pair is None
        or not all(np.isfinite(v) and v > 0 for v in pair)
        or (kind is int and not all(v.is_integer() for v in pair))
    ):
        raise ValueError(f"{name} must be {what} or a pair of them (x, y); got {value!r}")
    return tuple(int(v) for v in pair) if kind is int else tuple(pair)


def _sine_basis(u, half_width, n):
    """``sin(pi j (u + L) / (2 L)) / sqrt(L)`` for ``j = 1..n``, on a new first axis."""
    j = np.arange(1, n + 1).reshape((n,) + (1,) * np.ndim(u))
    return np.sin(np.pi * j * (np.asarray(u) + half_width) / (2.0 * half_width)) / np.sqrt(
        half_width
    )


class GPResidual(TracerProfile):
    """A Gaussian-process residual field on the intrinsic (pre-PSF) plane, Hilbert-space form.

    The zero-mean GP with an isotropic kernel of amplitude ``sigma`` and length scale ``ell``
    is approximated, inside the box ``|x - cx| < L_x``, ``|y - cy| < L_y``, by the
    Hilbert-space expansion of Solin & Sarkka (2020)::

        f(x, y) = sum_{a, b} sqrt(S(omega_ab)) phi_a(x) phi_b(y) beta_ab

    with Laplacian eigenfunctions ``phi_a(x) = sin(pi a (x - cx + L_x) / (2 L_x)) / sqrt(L_x)``
    (``a = 1..n_x``), frequencies ``omega_ab^2 = (pi a / 2 L_x)^2 + (pi b / 2 L_y)^2``, the
    kernel's 2-D spectral density ``S`` and standard-normal coefficients ``beta``. This profile
    is pure PyTensor: it takes ``beta`` as an input and creates no random variables, so every
    evaluation (e.g. on the two point sets of pixel-scale numerics) uses the same field.
    :func:`pymc_tracers.fields.gp_residual` creates ``beta`` in a PyMC model.

    Parameters
    ----------
    coefficients : array or variable, shape (n_x n_y,) or (N, n_x n_y)
        Standard-normal coefficients, index ``a * n_y + b`` (``a`` along x); a leading galaxy
        axis gives each galaxy its own field.
    amplitude : float, array (N,) or variable
        Marginal standard deviation ``sigma`` of the field (tracer units, e.g. dex).
    length_scale : float, array (N,) or variable
        Correlation length ``ell`` in arcsec.
    L : float or (float, float)
        Half-widths of the box in arcsec. It must contain the rendered field (the data field
        plus the PSF padding); ``L`` >= 1.2-1.5x the half-width of the field keeps the
        boundary (where every basis function vanishes) away from the data.
    n_basis : int or (int, int)
        Basis functions along x and y. The field resolves length scales down to about
        ``1.75 c S / n`` (squared exponential; ``3.4 c S / n`` for Matern-3/2), with ``S`` the
        half-width of the data and ``c = L / S`` (Riutort-Mayol et al. 2023).
    center : (float, float)
        Centre of the box in arcsec (fixed).
    kernel : {"matern32", "matern52", "expquad"}
        Covariance: Matern-3/2 (default; rough fields), Matern-5/2 or squared exponential.

    Notes
    -----
    Spectral densities in two dimensions: squared exponential
    ``S(w) = sigma^2 2 pi ell^2 exp(-ell^2 w^2 / 2)``; Matern-nu
    ``S(w) = sigma^2 4 pi nu (2 nu)^nu ell^(-2 nu) (2 nu / ell^2 + w^2)^-(nu + 1)``.

    **Linear terms.** With linear averaging the field is linear in ``sqrt(S_ab) beta_ab``
    whatever the amplitude and length scale are: the profile states one term per basis
    function (coefficient ``sqrt(S_ab) beta_ab``, fixed factor ``phi_a phi_b``), so a model
    with fixed light joins the linear fast path even with fitted hyperparameters, as long as
    ``n_x n_y <= MAX_LINEAR_TERMS`` (64). Larger bases take the full path: the forward model
    builds one graph node per term, and with 256 terms compiling took 160 s against 20 s for
    the full path, which was also faster per gradient (25x25 pixels, supersampling 2; with
    64 terms the JAX gradients cost the same, 0.6 ms, either way). With log averaging only a
    fixed field has linear terms.
    """

    def __init__(
        self,
        coefficients,
        *,
        amplitude,
        length_scale,
        L,
        n_basis,
        center=(0.0, 0.0),
        kernel="matern32",
    ):
        self.n_basis = _as_pair(n_basis, "n_basis", int)
        self.L = _as_pair(L, "L", float)
        if any(isinstance(v, Variable) for v in np.ravel(np.asarray(center, dtype=object))):
            raise ValueError("center must be fixed numbers (x, y) in arcsec")
        self.center = tuple(float(v) for v in np.broadcast_to(np.asarray(center, float), (2,)))
        if kernel not in GP_KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(GP_KERNELS)}")
        self.kernel = kernel
        self.amplitude = _check_number(amplitude, "amplitude", positive=True)
        self.length_scale = _check_number(length_scale, "length_scale", positive=True)
        self.coefficients = self._check_coefficients(coefficients)

    @property
    def n_terms(self) -> int:
        """Number of basis functions ``n_x n_y``."""
        return self.n_basis[0] * self.n_basis[1]

    def _check_coefficients(self, coefficients):
        m = self.n_terms
        if isinstance(coefficients, Variable):
            static = coefficients.type.shape
            if coefficients.ndim not in (1, 2) or static[-1] not in (None, m):
                raise ValueError(
                    f"coefficients must have shape ({m},) or (N, {m}) for n_basis="
                    f"{self.n_basis}; got a variable of shape {static}"
                )
            return coefficients
        array = np.asarray(coefficients, dtype=float)
        if array.ndim not in (1, 2) or array.shape[-1] != m:
            raise ValueError(
                f"coefficients must have shape ({m},) or (N, {m}) for n_basis={self.n_basis}; "
                f"got shape {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError("coefficients must be finite")
        return array

    def parameters(self) -> dict:
        # the coefficients' last axis is the basis, not a galaxy axis: report them only when
        # they carry a galaxy axis (N, M), whose first axis then counts the galaxies
        params = {"amplitude": self.amplitude, "length_scale": self.length_scale}
        if getattr(self.coefficients, "ndim", 1) == 2:
            params["coefficients"] = self.coefficients
        return params

    def squared_frequencies(self) -> np.ndarray:
        """``omega_ab^2`` (arcsec^-2) in coefficient order, shape ``(n_x n_y,)``."""
        (nx, ny), (lx, ly) = self.n_basis, self.L
        wx = (np.pi * np.arange(1, nx + 1) / (2.0 * lx)) ** 2
        wy = (np.pi * np.arange(1, ny + 1) / (2.0 * ly)) ** 2
        return (wx[:, None] + wy[None, :]).ravel()

    def spectral_weights(self):
        """``sqrt(S(omega_ab))``: tensor of shape ``(n_x n_y,)`` or ``(N, n_x n_y)``."""
        omega2 = self.squared_frequencies()
        sigma = _batched_scalar(self.amplitude)
        ell = _batched_scalar(self.length_scale)
        nu = GP_KERNELS[self.kernel]
        if nu is None:
            log_s = math.log(2 * math.pi) + 2 * pt.log(ell) - 0.5 * ell**2 * omega2
        else:
            log_s = (
                math.log(4 * math.pi * nu)
                + nu * math.log(2 * nu)
                - 2 * nu * pt.log(ell)
                - (nu + 1) * pt.log(2 * nu / ell**2 + omega2)
            )
        return sigma * pt.exp(0.5 * log_s)

    def _weighted_coefficients(self):
        return self.spectral_weights() * pt.as_tensor_variable(self.coefficients)

    def basis(self, x, y) -> np.ndarray:
        """The basis functions ``phi_a(x) phi_b(y)`` (numpy): shape ``(n_x n_y, *x.shape)``."""
        (nx, ny), (lx, ly) = self.n_basis, self.L
        bx = _sine_basis(np.asarray(x) - self.center[0], lx, nx)
        by = _sine_basis(np.asarray(y) - self.center[1], ly, ny)
        return (bx[:, None] * by[None, :]).reshape(nx * ny, *np.shape(x))

    def value(self, x, y):
        weighted = self._weighted_coefficients()  # (M,) or (N, M)
        (nx, ny), (lx, ly) = self.n_basis, self.L
        xs, ys = _constant_data(x), _constant_data(y)
        if (
            xs is not None
            and ys is not None
            and xs.ndim == 2
            and xs.shape == ys.shape
            and np.all(xs == xs[:1])
            and np.all(ys == ys[:, :1])
        ):
            # a regular grid: the field separates, f = Phi_y W^T Phi_x^T, O(H W n_x)
            phi_x = _sine_basis(xs[0] - self.center[0], lx, nx).T  # (W, n_x)
            phi_y = _sine_basis(ys[:, 0] - self.center[1], ly, ny).T  # (H, n_y)
            matrix = weighted.reshape((*weighted.shape[:-1], nx, ny))  # (..., n_x, n_y)
            lead = matrix.ndim - 2
            # tensordot reshapes to one matrix product (no per-galaxy loop)
            rows = pt.tensordot(matrix, phi_y, axes=[[lead + 1], [1]])  # (..., n_x, H)
            return pt.tensordot(rows, phi_x, axes=[[lead], [1]])  # (..., H, W)
        x, y = pt.as_tensor_variable(x), pt.as_tensor_variable(y)
        j = np.arange(1, nx + 1).reshape(nx, 1, 1)
        k = np.arange(1, ny + 1).reshape(ny, 1, 1)
        bx = pt.sin(np.pi * j * (x[None] - self.center[0] + lx) / (2 * lx)) / math.sqrt(lx)
        by = pt.sin(np.pi * k * (y[None] - self.center[1] + ly) / (2 * ly)) / math.sqrt(ly)
        basis = (bx[:, None] * by[None, :]).reshape((nx * ny, *x.shape))
        return pt.tensordot(weighted, basis, axes=[[weighted.ndim - 1], [0]])

    def linear_terms(self, tracer_scale, points, *, error_of=None):
        fixed = _fixed_all(self.coefficients, self.amplitude, self.length_scale)
        if tracer_scale == "log" or fixed:
            if not fixed:
                return None
            fields = [_evaluate_constant(self.value(x, y)) for x, y in points]
            transform = (lambda f: f) if tracer_scale == "linear" else (lambda f: 10.0**f)
            return LinearExpansion([LinearTerm(1.0, [transform(f) for f in fields])])
        if self.n_terms > MAX_LINEAR_TERMS:
            return None
        weighted = self._weighted_coefficients()
        bases = [self.basis(x, y) for x, y in points]
        return LinearExpansion(
            [LinearTerm(weighted[..., j], [b[j] for b in bases]) for j in range(self.n_terms)]
        )

    def __repr__(self):
        return (
            f"GPResidual(kernel={self.kernel!r}, amplitude={self.amplitude!r}, "
            f"length_scale={self.length_scale!r}, n_basis={self.n_basis}, L={self.L}, "
            f"center={self.center})"
        )


def _batched_scalar(value):
    """A scalar or galaxy-axis parameter as a tensor that broadcasts against ``(N, M)``."""
    tensor = pt.as_tensor_variable(
        value if isinstance(value, Variable) else np.asarray(value, dtype=float)
    )
    return tensor[..., None] if tensor.ndim else tensor


def _constant_data(value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, GraphConstant):
        return np.asarray(value.data)
    return None


def _evaluate_constant(tensor) -> np.ndarray:
    import pytensor

    return np.asarray(pytensor.function([], tensor, mode="FAST_COMPILE")())


def gp_spectral_density_numpy(omega, *, amplitude, length_scale, kernel="matern32"):
    """2-D spectral density ``S(omega)`` of the kernels of :class:`GPResidual` (numpy)."""
    omega = np.asarray(omega, dtype=float)
    nu = GP_KERNELS[kernel]
    if nu is None:
        return (
            amplitude**2
            * 2.0
            * np.pi
            * length_scale**2
            * np.exp(-0.5 * (length_scale * omega) ** 2)
        )
    return (
        amplitude**2
        * 4.0
        * np.pi
        * nu
        * (2.0 * nu) ** nu
        / length_scale ** (2 * nu)
        * (2.0 * nu / length_scale**2 + omega**2) ** (-(nu + 1.0))
    )


def gp_kernel_numpy(distance, *, amplitude, length_scale, kernel="matern32"):
    """The covariance ``k(d)`` that :class:`GPResidual` approximates (numpy)."""
    d = np.asarray(distance, dtype=float) / length_scale
    if kernel == "expquad":
        return amplitude**2 * np.exp(-0.5 * d**2)
    if kernel == "matern32":
        return amplitude**2 * (1 + np.sqrt(3) * d) * np.exp(-np.sqrt(3) * d)
    if kernel == "matern52":
        return amplitude**2 * (1 + np.sqrt(5) * d + 5 * d**2 / 3) * np.exp(-np.sqrt(5) * d)
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(GP_KERNELS)}")


def gp_residual_numpy(
    x, y, coefficients, *, amplitude, length_scale, L, n_basis, center=(0.0, 0.0), kernel="matern32"
):
    """Numpy twin of :class:`GPResidual`: the Hilbert-space field, term by term."""
    nx, ny = (n_basis, n_basis) if np.ndim(n_basis) == 0 else n_basis
    lx, ly = (L, L) if np.ndim(L) == 0 else L
    coefficients = np.asarray(coefficients, dtype=float)
    x = np.asarray(x, dtype=float) - center[0]
    y = np.asarray(y, dtype=float) - center[1]
    amplitude = np.asarray(amplitude, dtype=float)
    length_scale = np.asarray(length_scale, dtype=float)
    batched = coefficients.ndim == 2
    shape = (coefficients.shape[0], *x.shape) if batched else x.shape
    field = np.zeros(shape)
    for a in range(1, nx + 1):
        for b in range(1, ny + 1):
            omega = np.hypot(np.pi * a / (2 * lx), np.pi * b / (2 * ly))
            weight = np.sqrt(
                gp_spectral_density_numpy(
                    omega, amplitude=amplitude, length_scale=length_scale, kernel=kernel
                )
            )
            phi = (
                np.sin(np.pi * a * (x + lx) / (2 * lx))
                / np.sqrt(lx)
                * np.sin(np.pi * b * (y + ly) / (2 * ly))
                / np.sqrt(ly)
            )
            beta = coefficients[..., (a - 1) * ny + (b - 1)]
            field = field + _per_galaxy_numpy(weight * beta) * phi
    return field
