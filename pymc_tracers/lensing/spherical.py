"""Circularly symmetric lenses: a point mass and the NFW halo (cluster members, subhaloes).

* **Point mass** of Einstein radius ``theta_E`` (arcsec): ``alpha = theta_E^2 (dx, dy) / r^2``;
  magnification ``mu = 1 / (1 - (theta_E / r)^4)``.
* **NFW** (Navarro, Frenk & White 1996) projected: with ``X = r / Rs`` and the deflection
  ``alpha_Rs`` at ``r = Rs`` (lenstronomy's ``NFW`` parametrisation; Bartelmann 1996,
  Wright & Brainerd 2000)::

      |alpha(r)| = alpha_Rs g(X) / (X g(1)),   g(X) = ln(X / 2) + F(X),
      F(X) = arccosh(1/X) / sqrt(1 - X^2)  (X < 1),   arccos(1/X) / sqrt(X^2 - 1)  (X > 1)

  ``F`` is evaluated as its series in ``u = 1 - X^2`` near ``X = 1``, where both closed
  forms are 0/0 (``F = sum_k u^k / (2k + 1)``).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.lensing.base import (
    LensModel,
    _numpy_parameter,
    check_lens_parameter,
    offsets,
    offsets_numpy,
)
from pymc_tracers.profiles.light import per_galaxy

__all__ = ["PointMass", "NFW"]

#: Added in quadrature to radii (arcsec) so deflections and gradients stay finite at a centre.
CENTRE_SOFTENING = 1e-10
#: ``|1 - X^2|`` below which the NFW function F is its series (8 terms: error < 1e-17).
NFW_SERIES_U = 1e-2
NFW_SERIES_TERMS = 8


class PointMass(LensModel):
    """A point mass: a compact cluster member, a star, a black hole.

    Parameters
    ----------
    theta_E : float, array (N,) or variable
        Einstein radius in arcsec (> 0).
    x0, y0 : float, array (N,) or variable
        Position in arcsec.
    """

    def __init__(self, *, theta_E, x0=0.0, y0=0.0):
        self.theta_E = check_lens_parameter(theta_E, "theta_E", positive=True)
        self.x0 = check_lens_parameter(x0, "x0")
        self.y0 = check_lens_parameter(y0, "y0")

    def deflection(self, x, y):
        dx, dy = offsets(x, y, self.x0, self.y0)
        factor = per_galaxy(self.theta_E) ** 2 / (dx**2 + dy**2 + CENTRE_SOFTENING**2)
        return factor * dx, factor * dy

    def deflection_numpy(self, x, y):
        dx, dy = offsets_numpy(x, y, self.x0, self.y0)
        factor = _numpy_parameter(self.theta_E) ** 2 / (dx**2 + dy**2 + CENTRE_SOFTENING**2)
        return factor * dx, factor * dy


def _nfw_f(X):
    """F(X) (see the module docstring), PyTensor, finite with finite gradients for X > 0."""
    u = 1.0 - X**2
    near = pt.abs(u) < NFW_SERIES_U
    inside = u >= NFW_SERIES_U
    X_in = pt.switch(inside, X, 0.5)  # keeps every unused branch finite
    X_out = pt.switch(u <= -NFW_SERIES_U, X, 2.0)
    closed_in = pt.arccosh(1.0 / X_in) / pt.sqrt(1.0 - X_in**2)
    closed_out = pt.arccos(1.0 / X_out) / pt.sqrt(X_out**2 - 1.0)
    u_near = pt.switch(near, u, 0.0)
    series = sum(u_near**k / (2 * k + 1) for k in range(NFW_SERIES_TERMS))
    return pt.switch(near, series, pt.switch(inside, closed_in, closed_out))


def _nfw_f_numpy(X):
    X = np.asarray(X, dtype=float)
    u = 1.0 - X**2
    with np.errstate(divide="ignore", invalid="ignore"):
        closed_in = np.arccosh(1.0 / X) / np.sqrt(1.0 - X**2)
        closed_out = np.arccos(1.0 / X) / np.sqrt(X**2 - 1.0)
    series = sum(u**k / (2 * k + 1) for k in range(NFW_SERIES_TERMS))
    return np.where(np.abs(u) < NFW_SERIES_U, series, np.where(u > 0, closed_in, closed_out))


#: g(1) = ln(1/2) + 1
_G_ONE = 1.0 + np.log(0.5)


class NFW(LensModel):
    """Spherical NFW halo in lenstronomy's parametrisation.

    Parameters
    ----------
    Rs : float, array (N,) or variable
        Scale radius in arcsec (> 0).
    alpha_Rs : float, array (N,) or variable
        Deflection at ``Rs`` in arcsec (> 0).
    x0, y0 : float, array (N,) or variable
        Centre in arcsec.
    """

    def __init__(self, *, Rs, alpha_Rs, x0=0.0, y0=0.0):
        self.Rs = check_lens_parameter(Rs, "Rs", positive=True)
        self.alpha_Rs = check_lens_parameter(alpha_Rs, "alpha_Rs", positive=True)
        self.x0 = check_lens_parameter(x0, "x0")
        self.y0 = check_lens_parameter(y0, "y0")

    def deflection(self, x, y):
        dx, dy = offsets(x, y, self.x0, self.y0)
        rs = per_galaxy(self.Rs)
        X = pt.sqrt(dx**2 + dy**2 + CENTRE_SOFTENING**2) / rs
        g = pt.log(X / 2.0) + _nfw_f(X)
        factor = per_galaxy(self.alpha_Rs) / (_G_ONE * rs) * g / X**2
        return factor * dx, factor * dy

    def deflection_numpy(self, x, y):
        dx, dy = offsets_numpy(x, y, self.x0, self.y0)
        rs = _numpy_parameter(self.Rs)
        X = np.sqrt(dx**2 + dy**2 + CENTRE_SOFTENING**2) / rs
        g = np.log(X / 2.0) + _nfw_f_numpy(X)
        factor = _numpy_parameter(self.alpha_Rs) / (_G_ONE * rs) * g / X**2
        return factor * dx, factor * dy
