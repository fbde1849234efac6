"""The environment of a lens: external shear and a convergence sheet (mass-sheet term).

Both are the second-order expansion of a distant mass distribution's potential about
``(x0, y0)`` (arcsec)::

    shear:       alpha = (gamma1 dx + gamma2 dy,  gamma2 dx - gamma1 dy)
    convergence: alpha = kappa (dx, dy)

with ``dx = x - x0``, ``dy = y - y0`` (lenstronomy's ``SHEAR`` and ``CONVERGENCE`` with
``ra_0 = x0``, ``dec_0 = y0``).
"""

from __future__ import annotations

from pymc_tracers.lensing.base import (
    LensModel,
    _numpy_parameter,
    check_lens_parameter,
    offsets,
    offsets_numpy,
)
from pymc_tracers.profiles.light import per_galaxy

__all__ = ["ExternalShear", "ConvergenceSheet"]


class ExternalShear(LensModel):
    """External shear ``(gamma1, gamma2)`` (dimensionless) about ``(x0, y0)`` (arcsec).

    The shear strength is ``sqrt(gamma1^2 + gamma2^2)``; its angle ``0.5 arctan2(gamma2,
    gamma1)`` (radians, counter-clockwise from +x) is the direction along which images are
    compressed.
    """

    def __init__(self, *, gamma1, gamma2, x0=0.0, y0=0.0):
        self.gamma1 = check_lens_parameter(gamma1, "gamma1", unit="dimensionless")
        self.gamma2 = check_lens_parameter(gamma2, "gamma2", unit="dimensionless")
        self.x0 = check_lens_parameter(x0, "x0")
        self.y0 = check_lens_parameter(y0, "y0")

    def deflection(self, x, y):
        dx, dy = offsets(x, y, self.x0, self.y0)
        g1, g2 = per_galaxy(self.gamma1), per_galaxy(self.gamma2)
        return g1 * dx + g2 * dy, g2 * dx - g1 * dy

    def deflection_numpy(self, x, y):
        dx, dy = offsets_numpy(x, y, self.x0, self.y0)
        g1, g2 = _numpy_parameter(self.gamma1), _numpy_parameter(self.gamma2)
        return g1 * dx + g2 * dy, g2 * dx - g1 * dy


class ConvergenceSheet(LensModel):
    """A uniform convergence ``kappa`` (dimensionless) about ``(x0, y0)`` (arcsec)."""

    def __init__(self, *, kappa, x0=0.0, y0=0.0):
        self.kappa = check_lens_parameter(kappa, "kappa", unit="dimensionless")
        self.x0 = check_lens_parameter(x0, "x0")
        self.y0 = check_lens_parameter(y0, "y0")

    def deflection(self, x, y):
        dx, dy = offsets(x, y, self.x0, self.y0)
        kappa = per_galaxy(self.kappa)
        return kappa * dx, kappa * dy

    def deflection_numpy(self, x, y):
        dx, dy = offsets_numpy(x, y, self.x0, self.y0)
        kappa = _numpy_parameter(self.kappa)
        return kappa * dx, kappa * dy
