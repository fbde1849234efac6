"""The line-of-sight velocity field of a thin rotating disc, as a tracer profile (km/s).

``v = v_sys + sin(i) [V(R) cos(theta) + V_r(R) sin(theta)]`` with ``R`` and ``theta`` the
disc-plane radius and azimuth (:class:`~pymc_tracers.kinematics.DiscGeometry`), ``V`` the
rotation curve and ``V_r`` an optional radial flow.
"""

from __future__ import annotations

import numpy as np

from pymc_tracers.kinematics.geometry import DiscGeometry
from pymc_tracers.kinematics.radial_functions import as_radial_function
from pymc_tracers.profiles.light import _check_number, per_galaxy
from pymc_tracers.profiles.tracer import TracerProfile, _per_galaxy_numpy

__all__ = ["DiscVelocity"]


class DiscVelocity(TracerProfile):
    """Line-of-sight velocity (km/s) of a thin disc with a rotation curve and radial flow.

    Parameters
    ----------
    geometry : DiscGeometry
        Kinematic centre, position angle (of the receding side) and inclination.
    rotation : RadialFunction, callable, RadialProfile or number
        Circular speed ``V(R)`` in km/s against disc radius in arcsec (e.g.
        :class:`~pymc_tracers.ArctanCurve`).
    v_sys : float, array (N,) or variable
        Systemic velocity in km/s.
    radial : RadialFunction, callable, RadialProfile or number, optional
        Radial-flow speed ``V_r(R)`` in km/s. A positive ``V_r`` gives positive line-of-sight
        velocities on the half of the minor axis at ``phi + pi/2``: an outflow if that half is
        the far side, an inflow if it is the near side (the image alone cannot tell).

    Notes
    -----
    Usable as a tracer of a :class:`~pymc_tracers.Component` (linear averaging gives the
    first velocity moment), and as the velocity of a
    :class:`~pymc_tracers.KinematicComponent` (velocity and dispersion moments).
    """

    def __init__(self, geometry, rotation, *, v_sys=0.0, radial=None):
        if not isinstance(geometry, DiscGeometry):
            raise TypeError(f"geometry must be a pmt.DiscGeometry; got {type(geometry).__name__}")
        self.geometry = geometry
        self.rotation = as_radial_function(rotation, "rotation")
        self.radial = None if radial is None else as_radial_function(radial, "radial")
        self.v_sys = _check_number(v_sys, "v_sys")

    def parameters(self) -> dict:
        params = {f"geometry.{k}": v for k, v in self.geometry.parameters().items()}
        params.update({f"rotation.{k}": v for k, v in self.rotation.parameters().items()})
        if self.radial is not None:
            params.update({f"radial.{k}": v for k, v in self.radial.parameters().items()})
        params["v_sys"] = self.v_sys
        return params

    def relative_value(self, x, y):
        """``v - v_sys`` (km/s) at sky positions ``x, y`` (arcsec)."""
        radius, cos_theta, sin_theta = self.geometry.coordinates(x, y)
        rotation = self.rotation(radius) * cos_theta
        if self.radial is not None:
            rotation = rotation + self.radial(radius) * sin_theta
        return self.geometry.sin_inclination() * rotation

    def value(self, x, y):
        return per_galaxy(self.v_sys) + self.relative_value(x, y)

    def numpy(self, x, y):
        """Numpy twin of :meth:`value` (fixed parameters; rotation curves with numpy twins)."""
        radius, cos_theta, sin_theta = self.geometry.coordinates_numpy(x, y)
        inner = self.rotation.numpy(radius) * cos_theta
        if self.radial is not None:
            inner = inner + self.radial.numpy(radius) * sin_theta
        sin_i = np.sin(_per_galaxy_numpy(self.geometry.inclination))
        return _per_galaxy_numpy(self.v_sys) + sin_i * inner

    def __repr__(self):
        extra = "" if self.radial is None else f", radial={self.radial!r}"
        return (
            f"DiscVelocity({self.geometry!r}, rotation={self.rotation!r}, "
            f"v_sys={self.v_sys!r}{extra})"
        )
