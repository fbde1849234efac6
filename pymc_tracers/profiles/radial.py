"""Radial tracer profiles: Z as a function of one elliptical radius about a fixed centre.

:class:`LinearGradient` (the paper's model), :class:`BrokenGradient` (two slopes joined at a
fitted break radius) and :class:`RadialProfile` (any PyTensor expression of ``r``, or a natural
cubic spline whose knot values may be free parameters). With a fixed centre, axis ratio and
angle each states its :meth:`~pymc_tracers.profiles.tracer.TracerProfile.radial_form`, which
the forward model's radial transfer path uses (``pymc_tracers.forward``).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pymc_tracers.profiles.light import _check_number, elliptical_radius, per_galaxy
from pymc_tracers.profiles.tracer import (
    LinearTerm,
    RadialForm,
    TracerProfile,
    _check_fixed_positive,
    _deprojected_offsets_numpy,
    _fixed_all,
    _ones,
    _per_galaxy_numpy,
    elliptical_radius_grid,
    fixed_geometry,
)
from pymc_tracers.smooth import softplus

__all__ = [
    "BrokenGradient",
    "LinearGradient",
    "RadialProfile",
    "broken_gradient_numpy",
    "natural_cubic_spline",
    "natural_cubic_spline_numpy",
]


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

    Notes
    -----
    With a fixed centre, ``q`` and ``phi`` the profile is radial (:meth:`radial_form`): with
    fixed light and PSF the forward model precomputes its convolutions once and every
    evaluation is one matrix-vector product, on both averaging scales, whatever the priors on
    ``central`` and ``gradient`` (docs/forward_model.md). With linear averaging the map is
    also exactly linear in ``central`` and ``gradient``.
    """

    def __init__(self, *, x0=0.0, y0=0.0, central=0.0, gradient=0.0, q=1.0, phi=0.0):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.central = _check_number(central, "central")
        self.gradient = _check_number(gradient, "gradient")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")

    def _of_radius(self, r):
        return per_galaxy(self.central) + per_galaxy(self.gradient) * r

    def value(self, x, y):
        return self._of_radius(elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi))

    def radial_form(self):
        geometry = fixed_geometry(self.x0, self.y0, self.q, self.phi)
        if geometry is None:
            return None
        return RadialForm(geometry=geometry, of_radius=self._of_radius, polynomial_degree=1)

    def linear_terms(self, points):
        if not _fixed_all(self.x0, self.y0, self.q, self.phi):
            return None
        radii = [
            elliptical_radius_grid(x, y, self.x0, self.y0, self.q, self.phi) for x, y in points
        ]
        return [LinearTerm(self.central, _ones(points)), LinearTerm(self.gradient, radii)]

    def __repr__(self):
        return (
            f"LinearGradient(x0={self.x0!r}, y0={self.y0!r}, central={self.central!r}, "
            f"gradient={self.gradient!r}, q={self.q!r}, phi={self.phi!r})"
        )


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
    With a fixed centre and shape the profile is radial (:meth:`radial_form`), so with fixed
    light and PSF the forward model takes the radial transfer path on both averaging scales,
    with any of ``central``, ``inner``, ``outer`` and ``r_break`` fitted. With linear averaging
    and a fixed ``r_break`` the map is also exactly linear in ``(central, inner, outer)``:
    factors ``1``, ``r - S`` and ``S``.
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
        return w * (softplus((r - r_break) / w) - softplus(-r_break / w))

    def _of_radius(self, r):
        inner, outer = per_galaxy(self.inner), per_galaxy(self.outer)
        return per_galaxy(self.central) + inner * r + (outer - inner) * self.hinge(r)

    def value(self, x, y):
        return self._of_radius(elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi))

    def radial_form(self):
        geometry = fixed_geometry(self.x0, self.y0, self.q, self.phi)
        if geometry is None:
            return None
        return RadialForm(
            geometry=geometry, of_radius=self._of_radius, feature_scale=self.softening
        )

    def linear_terms(self, points):
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
        return [
            LinearTerm(self.central, _ones(points)),
            LinearTerm(self.inner, [r - h for r, h in zip(radii, hinges)]),
            LinearTerm(self.outer, hinges),
        ]

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


class RadialProfile(TracerProfile):
    """Any tracer profile of elliptical radius: a PyTensor expression of ``r``, or a spline.

    ``Z = function(r)`` where ``r`` is the elliptical radius (arcsec, along the major axis)
    about ``(x0, y0)`` with axis ratio ``q`` and angle ``phi``. With a fixed geometry it takes
    the radial transfer path (fixed light and PSF: every evaluation one matrix-vector product)
    for any expression and any free parameters in it.

    Parameters
    ----------
    function : callable
        ``function(r) -> tensor`` (tracer units, e.g. dex or km/s). ``r`` is a tensor of radii
        in arcsec; parameters with a galaxy axis should be reshaped to broadcast against it
        with :func:`~pymc_tracers.profiles.light.per_galaxy` (``(N,)`` to ``(N, 1, 1)``).
    x0, y0 : float, array (N,) or variable
        Centre in arcsec.
    q, phi : float, array (N,) or variable
        Axis ratio b/a and major-axis angle (radians, counter-clockwise from +x).
    feature_scale : float, optional
        The shortest radial scale (arcsec) on which the profile bends. Without a prior to
        measure the profile at, the radial transfer path spaces its nodes finely enough for it.
    breakpoints : sequence of float, optional
        Fixed radii (arcsec) where the profile is not smooth (its slope or curvature jumps):
        the radial transfer path interpolates on each side separately.

    Examples
    --------
    A metallicity profile that flattens outwards, and a non-parametric profile whose values at
    five radii are free parameters::

        flattening = pmt.RadialProfile(lambda r: central - 0.3 * pt.log1p(r / r_scale))
        knots = pm.Normal("knots", 8.5, 0.5, shape=5)
        free = pmt.RadialProfile.spline(radii=[0, 0.5, 1, 2, 4], values=knots)
    """

    def __init__(
        self, function, *, x0=0.0, y0=0.0, q=1.0, phi=0.0, feature_scale=None, breakpoints=()
    ):
        if not callable(function):
            raise TypeError(f"RadialProfile needs a callable f(r); got {type(function).__name__}")
        try:
            inspect.signature(function).bind(0.0)
        except TypeError:
            raise TypeError("the radial profile must accept one argument, r (arcsec)") from None
        self.function = function
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")
        self._feature_scale = (
            None
            if feature_scale is None
            else _check_fixed_positive(feature_scale, "feature_scale", "arcsec")
        )
        self._breakpoints = tuple(float(b) for b in breakpoints)
        self._extra = {}

    @classmethod
    def spline(cls, *, radii, values, x0=0.0, y0=0.0, q=1.0, phi=0.0):
        """A natural cubic spline through ``values`` at ``radii``: a non-parametric profile.

        Parameters
        ----------
        radii : sequence of float
            Knot radii in arcsec, increasing, at least 2 (fixed).
        values : array or variable, shape (K,) or (N, K)
            Tracer values at the knots (e.g. 12+log(O/H) in dex), e.g. a PyMC vector whose
            entries are free. A leading galaxy axis gives every galaxy its own profile.
        x0, y0, q, phi
            As for the class.

        Notes
        -----
        Beyond the last knot the profile continues as a straight line with the spline's end
        slope (a natural spline has zero curvature there); inside the first knot likewise.
        """
        knots = np.asarray(radii, dtype=float)
        if knots.ndim != 1 or knots.size < 2 or not np.all(np.isfinite(knots)):
            raise ValueError(f"spline radii must be at least 2 finite numbers; got {radii!r}")
        if np.any(np.diff(knots) <= 0):
            raise ValueError(f"spline radii must increase strictly; got {knots.tolist()}")
        values = _knot_values(values, knots.size)
        profile = cls(
            lambda r: natural_cubic_spline(r, knots, values),
            x0=x0,
            y0=y0,
            q=q,
            phi=phi,
            breakpoints=tuple(knots),
        )
        profile._extra = {"values": values}
        profile._knots = knots
        return profile

    def parameters(self) -> dict:
        params = {"x0": self.x0, "y0": self.y0, "q": self.q, "phi": self.phi}
        values = self._extra.get("values")
        if values is not None and getattr(values, "ndim", 0) == 2:
            params["values"] = values  # a galaxy axis: counts for the batch size
        return params

    def _of_radius(self, r):
        return pt.as_tensor_variable(self.function(pt.as_tensor_variable(r)))

    def value(self, x, y):
        return self._of_radius(elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi))

    def radial_form(self):
        geometry = fixed_geometry(self.x0, self.y0, self.q, self.phi)
        if geometry is None:
            return None
        return RadialForm(
            geometry=geometry,
            of_radius=self._of_radius,
            feature_scale=self._feature_scale,
            breakpoints=self._breakpoints,
        )

    def __repr__(self):
        name = "spline" if self._extra else getattr(self.function, "__name__", "function")
        return (
            f"RadialProfile({name}, x0={self.x0!r}, y0={self.y0!r}, q={self.q!r}, phi={self.phi!r})"
        )


def _knot_values(values, n_knots):
    """Spline values ``(K,)`` or ``(N, K)``: numbers are checked, variables passed through."""
    if not isinstance(values, Variable):
        values = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError("spline values must be finite numbers (tracer units)")
    if values.ndim not in (1, 2):
        raise ValueError(
            f"spline values must be (K,) or (N, K), one per knot radius; got {values.ndim} "
            "dimensions"
        )
    size = values.shape[-1] if isinstance(values, np.ndarray) else values.type.shape[-1]
    if size is not None and size != n_knots:
        raise ValueError(
            f"spline values have {size} entries along their last axis but there are "
            f"{n_knots} knot radii"
        )
    return values


def _natural_spline_matrices(knots):
    """Second derivatives of the natural cubic spline through values ``y`` at ``knots``:
    ``M = S @ y`` (zero at both ends)."""
    k = knots.size
    h = np.diff(knots)
    if k == 2:
        return np.zeros((2, 2))
    a = np.zeros((k - 2, k - 2))
    b = np.zeros((k - 2, k))
    for i in range(1, k - 1):
        row = i - 1
        a[row, row] = (h[i - 1] + h[i]) / 3.0
        if row > 0:
            a[row, row - 1] = h[i - 1] / 6.0
        if row < k - 3:
            a[row, row + 1] = h[i] / 6.0
        b[row, i - 1] = 1.0 / h[i - 1]
        b[row, i] = -1.0 / h[i - 1] - 1.0 / h[i]
        b[row, i + 1] = 1.0 / h[i]
    second = np.zeros((k, k))
    second[1:-1] = np.linalg.solve(a, b)
    return second


def natural_cubic_spline(r, knots, values):
    """The natural cubic spline through ``values`` at ``knots``, at radii ``r`` (tensors).

    ``values`` is ``(K,)`` or ``(N, K)``; with a galaxy axis ``r`` must broadcast against
    ``(N, 1, 1)``, and the result has the galaxy axis first. Linear beyond both end knots.
    """
    knots = np.asarray(knots, dtype=float)
    r = pt.as_tensor_variable(r)
    values = pt.as_tensor_variable(values)
    if values.ndim == 2 and r.ndim < 3:
        r = r[None]  # a map shared by the galaxies: give it their axis
    second = pt.dot(values, _natural_spline_matrices(knots).T)  # (..., K)
    k = knots.size
    rc = pt.clip(r, knots[0], knots[-1])
    j = pt.clip(pt.searchsorted(pt.as_tensor_variable(knots), rc, side="right") - 1, 0, k - 2)
    h = pt.as_tensor_variable(np.diff(knots))[j]
    left = pt.as_tensor_variable(knots)[j]
    t = (rc - left) / h

    def at(array, index):
        if values.ndim == 1:
            return array[index]
        # per-galaxy values (N, K) and indices broadcastable to (N, ...): gather along K
        flat_index = pt.broadcast_to(index, (values.shape[0], *index.shape[1:]))
        shaped = array.reshape((array.shape[0], *([1] * (flat_index.ndim - 1)), k))
        shaped = pt.broadcast_to(shaped, (*flat_index.shape, k))
        return pt.take_along_axis(shaped, flat_index[..., None], axis=-1)[..., 0]

    y0, y1 = at(values, j), at(values, j + 1)
    m0, m1 = at(second, j), at(second, j + 1)
    inside = (1 - t) * y0 + t * y1 + h**2 / 6.0 * (((1 - t) ** 3 - (1 - t)) * m0 + (t**3 - t) * m1)
    # end slopes of a natural spline (zero curvature at the ends): straight continuation
    h_first, h_last = knots[1] - knots[0], knots[-1] - knots[-2]
    first = values[..., 0]
    slope_first = (values[..., 1] - first) / h_first - h_first / 6.0 * second[..., 1]
    slope_last = (values[..., -1] - values[..., -2]) / h_last + h_last / 6.0 * second[..., -2]
    if values.ndim == 2:
        slope_first, slope_last = slope_first[:, None, None], slope_last[:, None, None]
    below = pt.minimum(r - knots[0], 0.0) * slope_first
    above = pt.maximum(r - knots[-1], 0.0) * slope_last
    return inside + below + above


def natural_cubic_spline_numpy(r, knots, values):
    """Numpy twin of :func:`natural_cubic_spline` for one galaxy (``values`` of shape (K,))."""
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(np.asarray(knots, float), np.asarray(values, float), bc_type="natural")
    r = np.asarray(r, dtype=float)
    knots = np.asarray(knots, float)
    inside = spline(np.clip(r, knots[0], knots[-1]))
    slope_first, slope_last = spline(knots[0], 1), spline(knots[-1], 1)
    return (
        inside
        + np.minimum(r - knots[0], 0) * slope_first
        + np.maximum(r - knots[-1], 0) * slope_last
    )
