"""Azimuthal structure: m = 1 and m = 2 harmonics on top of a radial tracer profile."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.profiles.light import RADIUS_SOFTENING, _check_number, per_galaxy
from pymc_tracers.profiles.tracer import (
    LinearTerm,
    SumTracer,
    TracerProfile,
    _check_fixed_positive,
    _deprojected_offsets,
    _deprojected_offsets_numpy,
    _fixed_all,
    _is_fixed,
    _numeric,
    _ones,
    _per_galaxy_numpy,
    as_tracer_profile,
)

__all__ = ["Azimuthal", "azimuthal_numpy"]


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

    def linear_terms(self, points):
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
        if not active:  # every harmonic is fixed at zero
            return [LinearTerm(0.0, _ones(points))]
        return [LinearTerm(o.coefficients[name], [f[name] for f in fields]) for name in active]


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

    def linear_terms(self, points):
        if self.radial is None:
            return self._harmonics.linear_terms(points)
        return SumTracer([self.radial, self._harmonics]).linear_terms(points)

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
