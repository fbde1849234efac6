"""Intrinsic line-of-sight velocity dispersion (km/s) of a disc, as a tracer profile.

:class:`DiscDispersion` evaluates a function of the disc-plane radius ``R`` (a number for a
constant, :class:`ExponentialDispersion`, or any radial function or expression) on the sky
through the disc's :class:`~pymc_tracers.kinematics.DiscGeometry`. A number or a
:class:`~pymc_tracers.Constant` is accepted wherever a dispersion field is.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.kinematics.geometry import DiscGeometry
from pymc_tracers.kinematics.radial_functions import RadialFunction, as_radial_function
from pymc_tracers.profiles.light import _check_number, per_galaxy
from pymc_tracers.profiles.tracer import TracerProfile, _per_galaxy_numpy

__all__ = ["DiscDispersion", "ExponentialDispersion"]


class ExponentialDispersion(RadialFunction):
    """``sigma(R) = floor + sigma0 exp(-R / r_sigma)`` (km/s).

    Parameters
    ----------
    sigma0 : float, array (N,) or variable
        Central excess over the floor in km/s, >= 0 (positive priors keep it so).
    r_sigma : float, array (N,) or variable
        Scale length in arcsec (disc plane), > 0.
    floor : float, array (N,) or variable
        Dispersion at large radius in km/s (default 0).
    """

    def __init__(self, *, sigma0, r_sigma, floor=0.0):
        self.sigma0 = _check_number(sigma0, "sigma0")
        self.r_sigma = _check_number(r_sigma, "r_sigma", positive=True)
        self.floor = _check_number(floor, "floor")

    def __call__(self, radius):
        decay = pt.exp(-radius / per_galaxy(self.r_sigma))
        return per_galaxy(self.floor) + per_galaxy(self.sigma0) * decay

    def numpy(self, radius):
        sigma0, r_sigma, floor = (
            _per_galaxy_numpy(v) for v in (self.sigma0, self.r_sigma, self.floor)
        )
        return floor + sigma0 * np.exp(-np.asarray(radius) / r_sigma)

    def __repr__(self):
        return (
            f"ExponentialDispersion(sigma0={self.sigma0!r}, r_sigma={self.r_sigma!r}, "
            f"floor={self.floor!r})"
        )


class DiscDispersion(TracerProfile):
    """Intrinsic dispersion (km/s) as a function of disc-plane radius.

    Parameters
    ----------
    geometry : DiscGeometry
        The disc's geometry (share the one of its :class:`~pymc_tracers.DiscVelocity`).
    profile : RadialFunction, callable, RadialProfile or number
        ``sigma(R)`` in km/s against disc radius in arcsec.
    """

    def __init__(self, geometry, profile):
        if not isinstance(geometry, DiscGeometry):
            raise TypeError(f"geometry must be a pmt.DiscGeometry; got {type(geometry).__name__}")
        self.geometry = geometry
        self.profile = as_radial_function(profile, "dispersion profile")

    def parameters(self) -> dict:
        params = {f"geometry.{k}": v for k, v in self.geometry.parameters().items()}
        params.update({f"profile.{k}": v for k, v in self.profile.parameters().items()})
        return params

    def value(self, x, y):
        radius, _, _ = self.geometry.coordinates(x, y)
        return self.profile(radius)

    def numpy(self, x, y):
        """Numpy twin of :meth:`value`."""
        radius, _, _ = self.geometry.coordinates_numpy(x, y)
        return self.profile.numpy(radius)

    def __repr__(self):
        return f"DiscDispersion({self.geometry!r}, {self.profile!r})"
