"""Isothermal ellipsoids: the singular isothermal ellipsoid (SIE) and its cored form (NIE).

Convergence, in the frame of the major axis (``x'`` along it, ``y'`` along the minor axis)::

    kappa = theta_E / (2 sqrt(core^2 + q x'^2 + y'^2 / q))

``theta_E`` is the circularised (product-averaged) Einstein radius of lenstronomy's ``SIE``
and ``NIE``, ``q = b/a`` and ``phi`` the major axis angle (radians, counter-clockwise from +x,
as for the light profiles). The deflection is the closed form of Kormann, Schneider &
Bartelmann (1994) and Keeton & Kochanek (1998, after their eq. 8), with ``b = theta_E sqrt(q)``,
``s = core / sqrt(q)``, ``psi = sqrt(q^2 (s^2 + x'^2) + y'^2)`` and ``e = sqrt(1 - q^2)``::

    alpha_x' = (b / e) arctan(e x' / (psi + s))
    alpha_y' = (b / e) arctanh(e y' / (psi + q^2 s))

For ``q -> 1`` both become ``b x' / (psi + s)`` and ``b y' / (psi + s)``; near ``q = 1`` a
series in ``e^2`` is used (exact to round-off). As in lenstronomy, ``q`` is capped at
:data:`Q_MAX` = 1 - 1e-8 (a < 1e-8 relative change); :class:`SIS` is the exact round lens.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pymc_tracers.lensing.base import (
    LensModel,
    _numpy_parameter,
    check_lens_parameter,
    offsets,
    offsets_numpy,
)
from pymc_tracers.profiles.light import per_galaxy

__all__ = ["SIE", "NIE", "SIS", "SIE_CORE"]

#: Core radius (arcsec) of :class:`SIE`: lenstronomy's SIE is its NIE with this core, which
#: keeps the deflection and its gradients finite at the centre and changes the deflection by
#: less than 1e-10 arcsec anywhere else.
SIE_CORE = 1e-10
#: Largest axis ratio used in the deflection: lenstronomy's NIE (hence its SIE) clips ``q`` here,
#: and so do we, so a round SIE (``q = 1``, ``e1 = e2 = 0``) agrees with lenstronomy's exactly.
#: It changes the deflection by < 1e-8 relative; :class:`SIS` is the exact round lens.
Q_MAX = 1.0 - 1e-8
#: Below this ``e^2 = 1 - q^2`` the arctan/arctanh ratios are evaluated as series.
SERIES_E2 = 1e-3
#: Series terms: the first left out is ``(e u)^12 / 13 < 1e-17`` for ``e^2 < 1e-3``.
SERIES_TERMS = 6


def _atan_ratio(e2, u, sign):
    """``arctan(e u) / e`` (sign -1) or ``arctanh(e u) / e`` (sign +1) for ``e^2 >= 0``:
    the closed form, or the series ``u sum_k (sign e^2 u^2)^k / (2k + 1)`` near ``e = 0``."""
    small = e2 < SERIES_E2
    e_safe = pt.sqrt(pt.switch(small, 0.5, e2))  # keeps the unused branch finite
    closed = (pt.arctan(e_safe * u) if sign < 0 else pt.arctanh(e_safe * u)) / e_safe
    term = sign * pt.switch(small, e2, 0.0) * u**2
    series = 0.0
    power = 1.0
    for k in range(SERIES_TERMS):
        series = series + power / (2 * k + 1)
        power = power * term
    return pt.switch(small, u * series, closed)


def _atan_ratio_numpy(e2, u, sign):
    e2 = np.asarray(e2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.sqrt(e2)
        closed = (np.arctan(e * u) if sign < 0 else np.arctanh(e * u)) / e
    term = sign * e2 * u**2
    series = sum(term**k / (2 * k + 1) for k in range(SERIES_TERMS))
    return np.where(e2 < SERIES_E2, u * series, closed)


class NIE(LensModel):
    """Non-singular isothermal ellipsoid (a cored SIE): a galaxy or cluster member.

    Parameters
    ----------
    theta_E : float, array (N,) or variable
        Circularised Einstein radius in arcsec (> 0), lenstronomy's convention.
    core : float, array (N,) or variable
        Core radius in arcsec (>= 0), lenstronomy's ``s_scale``.
    q : float, array (N,) or variable
        Axis ratio b/a of the convergence, in (0, 1].
    phi : float, array (N,) or variable
        Major axis angle in radians, counter-clockwise from +x.
    x0, y0 : float, array (N,) or variable
        Centre in arcsec.
    """

    def __init__(self, *, theta_E, core, q=1.0, phi=0.0, x0=0.0, y0=0.0):
        self.theta_E = check_lens_parameter(theta_E, "theta_E", positive=True)
        self.core = check_lens_parameter(core, "core")
        if not isinstance(self.core, Variable) and np.any(self.core < 0):
            raise ValueError(f"lens parameter core must be >= 0 (arcsec); got {core!r}")
        self.q = check_lens_parameter(q, "q", positive=True, upper=1.0, unit="b/a")
        self.phi = check_lens_parameter(phi, "phi", unit="radians")
        self.x0 = check_lens_parameter(x0, "x0")
        self.y0 = check_lens_parameter(y0, "y0")

    def deflection(self, x, y):
        xr, yr = offsets(x, y, self.x0, self.y0, self.phi)
        q_given, phi = per_galaxy(self.q), per_galaxy(self.phi)
        b = per_galaxy(self.theta_E) * pt.sqrt(q_given)
        s = per_galaxy(self.core) / pt.sqrt(q_given)
        q = pt.minimum(q_given, Q_MAX)  # the cap acts in the shape only, as in lenstronomy
        psi = pt.sqrt(q**2 * (s**2 + xr**2) + yr**2)
        e2 = 1.0 - q**2
        alpha_major = b * _atan_ratio(e2, xr / (psi + s), -1)
        alpha_minor = b * _atan_ratio(e2, yr / (psi + q**2 * s), +1)
        cos, sin = pt.cos(phi), pt.sin(phi)
        return cos * alpha_major - sin * alpha_minor, sin * alpha_major + cos * alpha_minor

    def deflection_numpy(self, x, y):
        xr, yr = offsets_numpy(x, y, self.x0, self.y0, self.phi)
        q_given, phi = _numpy_parameter(self.q), _numpy_parameter(self.phi)
        b = _numpy_parameter(self.theta_E) * np.sqrt(q_given)
        s = _numpy_parameter(self.core) / np.sqrt(q_given)
        q = np.minimum(q_given, Q_MAX)
        psi = np.sqrt(q**2 * (s**2 + xr**2) + yr**2)
        e2 = 1.0 - q**2
        alpha_major = b * _atan_ratio_numpy(e2, xr / (psi + s), -1)
        alpha_minor = b * _atan_ratio_numpy(e2, yr / (psi + q**2 * s), +1)
        cos, sin = np.cos(phi), np.sin(phi)
        return cos * alpha_major - sin * alpha_minor, sin * alpha_major + cos * alpha_minor


class SIE(NIE):
    """Singular isothermal ellipsoid (lenstronomy's ``SIE``): an :class:`NIE` with the
    negligible core :data:`SIE_CORE` that keeps its centre finite.

    Parameters
    ----------
    theta_E : float, array (N,) or variable
        Circularised Einstein radius in arcsec (> 0).
    q : float, array (N,) or variable
        Axis ratio b/a in (0, 1]; ``q = 1`` is the singular isothermal sphere.
    phi : float, array (N,) or variable
        Major axis angle in radians, counter-clockwise from +x.
    x0, y0 : float, array (N,) or variable
        Centre in arcsec.
    """

    def __init__(self, *, theta_E, q=1.0, phi=0.0, x0=0.0, y0=0.0):
        super().__init__(theta_E=theta_E, core=SIE_CORE, q=q, phi=phi, x0=x0, y0=y0)

    def parameters(self):
        return {k: v for k, v in super().parameters().items() if k != "core"}


class SIS(LensModel):
    """Singular isothermal sphere: the deflection is ``theta_E`` (arcsec) towards the centre
    at every radius, ``alpha = theta_E (dx, dy) / r`` (lenstronomy's ``SIS``).

    The radius is softened in quadrature by :data:`SIE_CORE` (a change below 1e-17 relative
    beyond 1e-4 arcsec) so the centre stays finite. An :class:`SIE` with ``q = 1`` is the same
    lens with the SIE's linear core: the two differ by ``~SIE_CORE theta_E / r``.

    Parameters
    ----------
    theta_E : float, array (N,) or variable
        Einstein radius in arcsec (> 0).
    x0, y0 : float, array (N,) or variable
        Centre in arcsec.
    """

    def __init__(self, *, theta_E, x0=0.0, y0=0.0):
        self.theta_E = check_lens_parameter(theta_E, "theta_E", positive=True)
        self.x0 = check_lens_parameter(x0, "x0")
        self.y0 = check_lens_parameter(y0, "y0")

    def deflection(self, x, y):
        dx, dy = offsets(x, y, self.x0, self.y0)
        factor = per_galaxy(self.theta_E) / pt.sqrt(dx**2 + dy**2 + SIE_CORE**2)
        return factor * dx, factor * dy

    def deflection_numpy(self, x, y):
        dx, dy = offsets_numpy(x, y, self.x0, self.y0)
        factor = _numpy_parameter(self.theta_E) / np.sqrt(dx**2 + dy**2 + SIE_CORE**2)
        return factor * dx, factor * dy
