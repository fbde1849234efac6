"""Rotation curves V(R): circular speed (km/s) against disc-plane radius R (arcsec).

* :class:`ArctanCurve` (Courteau 1997): ``V = (2/pi) v_max arctan(R / r_t)``.
* :class:`TanhCurve`: ``V = v_max tanh(R / r_t)``.
* :class:`ExponentialDiscCurve` (Freeman 1970): the circular speed of a razor-thin exponential
  disc, ``V^2 = 4 pi G Sigma_0 R_d y^2 [I0(y) K0(y) - I1(y) K1(y)]`` with ``y = R / (2 R_d)``,
  written with its peak speed ``v_max`` (reached at ``R = 2.15 R_d``).

Any other curve: a callable ``f(R)`` or a :class:`~pymc_tracers.RadialProfile` (e.g. a spline
with free knot values), see :func:`~pymc_tracers.kinematics.radial_functions.as_radial_function`.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from scipy import optimize, special

from pymc_tracers.kinematics.radial_functions import RadialFunction
from pymc_tracers.profiles.light import _check_number, per_galaxy
from pymc_tracers.profiles.tracer import _numeric

__all__ = [
    "ArctanCurve",
    "TanhCurve",
    "ExponentialDiscCurve",
    "freeman_shape_numpy",
    "FREEMAN_PEAK_Y",
    "FREEMAN_PEAK",
]


def _per_galaxy_numpy(value):
    array = _numeric(value)
    return array[..., None, None] if array.ndim else array


def freeman_shape_numpy(y):
    """``y^2 [I0 K0 - I1 K1](y)`` (numpy; exponentially scaled Bessel functions, no overflow)."""
    y = np.asarray(y, dtype=float)
    return y**2 * (special.i0e(y) * special.k0e(y) - special.i1e(y) * special.k1e(y))


#: Where ``y^2 [I0 K0 - I1 K1](y)`` peaks (``y = R / 2 R_d``; R = 2.15 R_d) and its value there.
FREEMAN_PEAK_Y = float(
    optimize.minimize_scalar(
        lambda y: -freeman_shape_numpy(y),
        bounds=(0.5, 2.0),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
)
FREEMAN_PEAK = float(freeman_shape_numpy(FREEMAN_PEAK_Y))


class ArctanCurve(RadialFunction):
    """``V(R) = (2 / pi) v_max arctan(R / r_t)`` (Courteau 1997).

    Parameters
    ----------
    v_max : float, array (N,) or variable
        Asymptotic circular speed in km/s (reached as R -> infinity).
    r_t : float, array (N,) or variable
        Turnover radius in arcsec (disc plane), > 0.
    """

    def __init__(self, *, v_max, r_t):
        self.v_max = _check_number(v_max, "v_max")
        self.r_t = _check_number(r_t, "r_t", positive=True)

    def __call__(self, radius):
        return (2.0 / np.pi) * per_galaxy(self.v_max) * pt.arctan(radius / per_galaxy(self.r_t))

    def numpy(self, radius):
        v_max, r_t = _per_galaxy_numpy(self.v_max), _per_galaxy_numpy(self.r_t)
        return (2.0 / np.pi) * v_max * np.arctan(np.asarray(radius) / r_t)

    def __repr__(self):
        return f"ArctanCurve(v_max={self.v_max!r}, r_t={self.r_t!r})"


class TanhCurve(RadialFunction):
    """``V(R) = v_max tanh(R / r_t)``.

    Parameters
    ----------
    v_max : float, array (N,) or variable
        Flat circular speed in km/s.
    r_t : float, array (N,) or variable
        Turnover radius in arcsec (disc plane), > 0.
    """

    def __init__(self, *, v_max, r_t):
        self.v_max = _check_number(v_max, "v_max")
        self.r_t = _check_number(r_t, "r_t", positive=True)

    def __call__(self, radius):
        return per_galaxy(self.v_max) * pt.tanh(radius / per_galaxy(self.r_t))

    def numpy(self, radius):
        v_max, r_t = _per_galaxy_numpy(self.v_max), _per_galaxy_numpy(self.r_t)
        return v_max * np.tanh(np.asarray(radius) / r_t)

    def __repr__(self):
        return f"TanhCurve(v_max={self.v_max!r}, r_t={self.r_t!r})"


class ExponentialDiscCurve(RadialFunction):
    """Circular speed of a razor-thin exponential disc (Freeman 1970).

    ``V(R) = v_max sqrt(y^2 [I0 K0 - I1 K1](y) / P)`` with ``y = R / (2 r_d)`` and ``P`` the
    peak of ``y^2 [I0 K0 - I1 K1]`` (:data:`FREEMAN_PEAK` = 0.1935 at y = 1.0750, i.e.
    R = 2.15 r_d), so that ``v_max`` is the peak speed. The disc's mass sets it:
    ``v_max^2 = 4 pi G Sigma_0 r_d P`` (physical units: ``r_d`` in kpc).

    Parameters
    ----------
    v_max : float, array (N,) or variable
        Peak circular speed in km/s.
    r_d : float, array (N,) or variable
        Exponential scale length of the mass in arcsec (disc plane), > 0. For a disc whose
        light traces its mass, ``r_d = r_eff / 1.678``.

    Notes
    -----
    The Bessel functions are PyTensor's exponentially scaled ``ive`` and ``kve`` (products
    ``I_n K_n = ive * kve``), which do not overflow at large ``y``, and have gradients.
    """

    def __init__(self, *, v_max, r_d):
        self.v_max = _check_number(v_max, "v_max")
        self.r_d = _check_number(r_d, "r_d", positive=True)

    def __call__(self, radius):
        y = radius / (2.0 * per_galaxy(self.r_d))
        shape = y**2 * (pt.ive(0, y) * pt.kve(0, y) - pt.ive(1, y) * pt.kve(1, y))
        # sqrt of a positive shape; the floor keeps the gradient finite at R -> 0
        return per_galaxy(self.v_max) * pt.sqrt(pt.maximum(shape, 1e-300) / FREEMAN_PEAK)

    def numpy(self, radius):
        v_max, r_d = _per_galaxy_numpy(self.v_max), _per_galaxy_numpy(self.r_d)
        shape = freeman_shape_numpy(np.asarray(radius) / (2.0 * r_d))
        return v_max * np.sqrt(np.maximum(shape, 0.0) / FREEMAN_PEAK)

    def __repr__(self):
        return f"ExponentialDiscCurve(v_max={self.v_max!r}, r_d={self.r_d!r})"
