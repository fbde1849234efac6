"""The geometry of a thin disc on the sky: centre, kinematic position angle, inclination.

A sky offset ``(dx, dy)`` (arcsec) from the disc centre is rotated by the kinematic position
angle ``phi`` onto the projected major axis and the minor-axis offset is stretched by
``1 / cos i`` (deprojection)::

    x_d = cos(phi) dx + sin(phi) dy
    y_d = (-sin(phi) dx + cos(phi) dy) / cos(i)
    R = sqrt(x_d^2 + y_d^2),   cos(theta) = x_d / R,   sin(theta) = y_d / R

``R`` is the radius in the disc plane (arcsec) and ``theta`` the azimuth from the receding
half of the major axis. Angles are in radians, like every angle of the package's profiles:
``phi`` counter-clockwise from +x (``x`` along columns, ``y`` along rows), ``i = 0`` face-on.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant as GraphConstant
from pytensor.graph.basic import Variable

from pymc_tracers.profiles.light import RADIUS_SOFTENING, _check_number, per_galaxy
from pymc_tracers.profiles.tracer import _numeric, _per_galaxy_numpy

__all__ = [
    "DiscGeometry",
    "disc_coordinates_numpy",
    "inclination_from_axis_ratio",
]


def _is_fixed(value) -> bool:
    return not isinstance(value, Variable) or isinstance(value, GraphConstant)


class DiscGeometry:
    """Where a thin disc is and how it is seen: shared by its velocity and dispersion fields.

    Parameters
    ----------
    x0, y0 : float, array (N,) or variable
        Kinematic centre in arcsec (may differ from the light's centre).
    phi : float, array (N,) or variable
        Kinematic position angle in radians, counter-clockwise from +x, pointing to the
        *receding* half of the major axis (where the line-of-sight velocity exceeds ``v_sys``
        for a positive rotation curve). It may differ from the light's ``phi``.
    inclination : float, array (N,) or variable
        Inclination in radians, ``0`` face-on, ``pi/2`` edge-on; must be < pi/2 (a thin disc
        seen exactly edge-on cannot be deprojected). Tie it to the light's axis ratio with
        :func:`inclination_from_axis_ratio`.

    Notes
    -----
    With every parameter a fixed number, :attr:`is_fixed` is true and
    :func:`~pymc_tracers.observe_kinematics` may precompute the convolutions of the angular
    factors (the ``disc_radial`` path).
    """

    def __init__(self, *, x0=0.0, y0=0.0, phi=0.0, inclination=np.pi / 4):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.phi = _check_number(phi, "phi")
        self.inclination = _check_number(inclination, "inclination")
        if _is_fixed(self.inclination):
            value = _numeric(self.inclination)
            if np.any(value < 0) or np.any(value >= np.pi / 2):
                raise ValueError(
                    f"inclination must be in [0, pi/2) radians (0 face-on); got {inclination!r}. "
                    "Give radians (np.deg2rad(degrees)); an exactly edge-on thin disc cannot be "
                    "deprojected"
                )

    @property
    def is_fixed(self) -> bool:
        """True when centre, position angle and inclination are all fixed numbers."""
        return all(_is_fixed(v) for v in (self.x0, self.y0, self.phi, self.inclination))

    def parameters(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "phi": self.phi, "inclination": self.inclination}

    def sin_inclination(self):
        """``sin i`` as a tensor that broadcasts against ``(H, W)`` maps."""
        return pt.sin(per_galaxy(self.inclination))

    def coordinates(self, x, y):
        """Disc-plane radius (arcsec) and azimuth of sky positions ``x, y`` (arcsec).

        Returns
        -------
        radius, cos_theta, sin_theta : tensor
            Each broadcast to ``(H, W)`` or ``(N, H, W)``. The radius is softened by
            1e-8 arcsec so that gradients stay finite at the centre.
        """
        x0, y0, phi, inclination = (
            per_galaxy(v) for v in (self.x0, self.y0, self.phi, self.inclination)
        )
        dx = pt.as_tensor_variable(x) - x0
        dy = pt.as_tensor_variable(y) - y0
        cos, sin = pt.cos(phi), pt.sin(phi)
        x_disc = cos * dx + sin * dy
        y_disc = (-sin * dx + cos * dy) / pt.cos(inclination)
        radius = pt.sqrt(x_disc**2 + y_disc**2 + RADIUS_SOFTENING**2)
        return radius, x_disc / radius, y_disc / radius

    def coordinates_numpy(self, x, y):
        """Numpy twin of :meth:`coordinates` (fixed parameters only)."""
        return disc_coordinates_numpy(x, y, self.x0, self.y0, self.phi, self.inclination)

    def __repr__(self):
        return (
            f"DiscGeometry(x0={self.x0!r}, y0={self.y0!r}, phi={self.phi!r}, "
            f"inclination={self.inclination!r})"
        )


def disc_coordinates_numpy(x, y, x0, y0, phi, inclination):
    """Numpy twin of :meth:`DiscGeometry.coordinates`: ``(R, cos theta, sin theta)``.

    Parameters may carry a galaxy axis ``(N,)``; ``R`` is in arcsec, angles in radians.
    """
    x0, y0, phi, inclination = (_per_galaxy_numpy(v) for v in (x0, y0, phi, inclination))
    dx, dy = np.asarray(x) - x0, np.asarray(y) - y0
    x_disc = np.cos(phi) * dx + np.sin(phi) * dy
    y_disc = (-np.sin(phi) * dx + np.cos(phi) * dy) / np.cos(inclination)
    radius = np.sqrt(x_disc**2 + y_disc**2 + RADIUS_SOFTENING**2)
    return radius, x_disc / radius, y_disc / radius


def inclination_from_axis_ratio(q, q0=0.2):
    """Inclination (radians) of a disc of intrinsic thickness ``q0`` seen with axis ratio ``q``.

    ``cos^2 i = (q^2 - q0^2) / (1 - q0^2)`` (Hubble 1926; an oblate spheroid of axis ratio
    ``q0``): ``q = 1`` is face-on, ``q = q0`` edge-on.

    Parameters
    ----------
    q : float, array (N,) or variable
        Observed axis ratio b/a of the light, in (0, 1].
    q0 : float
        Intrinsic thickness (c/a, fixed), in [0, 1); 0.2 is usual for discs.

    Returns
    -------
    float, ndarray or tensor
        Inclination in radians; a tensor when ``q`` is a variable. For a variable ``q`` below
        ``q0`` the inclination is clipped just below edge-on (pi/2): give ``q`` a prior above
        ``q0`` (e.g. ``pm.Uniform("q", q0, 1)``).

    Raises
    ------
    ValueError
        For a fixed ``q`` outside (0, 1] or below ``q0``, or ``q0`` outside [0, 1).
    """
    q0 = float(q0)
    if not (0.0 <= q0 < 1.0):
        raise ValueError(f"q0 (intrinsic thickness c/a) must be in [0, 1); got {q0!r}")
    if _is_fixed(q):
        value = _numeric(q)
        if np.any(~np.isfinite(value)) or np.any(value <= 0) or np.any(value > 1):
            raise ValueError(f"axis ratio q must be in (0, 1]; got {q!r}")
        if np.any(value < q0):
            raise ValueError(
                f"axis ratio q = {np.min(value):.4g} is below the intrinsic thickness q0 = {q0}: "
                "no inclination gives so flat an image. Use a smaller q0, or a free inclination"
            )
        return np.arccos(np.sqrt((value**2 - q0**2) / (1.0 - q0**2)))
    q = pt.as_tensor_variable(q)
    cos_squared = (q**2 - q0**2) / (1.0 - q0**2)
    # keep cos i > 0: an exactly edge-on thin disc cannot be deprojected
    return pt.arccos(pt.sqrt(pt.clip(cos_squared, 1e-8, 1.0)))
