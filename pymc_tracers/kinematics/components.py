"""A kinematic component: light that carries a line-of-sight velocity and dispersion."""

from __future__ import annotations

from collections.abc import Sequence

from pymc_tracers.profiles.light import LightProfile
from pymc_tracers.profiles.tracer import as_tracer_profile

__all__ = ["KinematicComponent", "as_kinematic_components"]


class KinematicComponent:
    """Line emission (or stellar light) with its line-of-sight velocity and dispersion.

    Parameters
    ----------
    light : LightProfile
        Intrinsic surface brightness of the line (or light) whose moments are measured.
    velocity : TracerProfile, number or callable
        Line-of-sight velocity in km/s, e.g. a :class:`~pymc_tracers.DiscVelocity`; a number
        is a constant, a callable ``f(x, y)`` (arcsec) an expression.
    dispersion : TracerProfile, number or callable
        Intrinsic line-of-sight velocity dispersion in km/s (without the instrument's line
        spread), e.g. a :class:`~pymc_tracers.DiscDispersion` or a number (default 0).
    """

    def __init__(self, light, velocity, dispersion=0.0):
        if not isinstance(light, LightProfile):
            raise TypeError(
                "KinematicComponent light must be a light profile (e.g. pmt.Exponential); "
                f"got {type(light).__name__}"
            )
        self.light = light
        self.velocity = as_tracer_profile(velocity)
        self.dispersion = as_tracer_profile(dispersion)

    def parameters(self) -> dict:
        """Light, velocity and dispersion parameters, keyed by part."""
        return {
            **{f"light.{k}": v for k, v in self.light.parameters().items()},
            **{f"velocity.{k}": v for k, v in self.velocity.parameters().items()},
            **{f"dispersion.{k}": v for k, v in self.dispersion.parameters().items()},
        }

    def __repr__(self):
        return (
            f"KinematicComponent(light={self.light!r}, velocity={self.velocity!r}, "
            f"dispersion={self.dispersion!r})"
        )


def as_kinematic_components(components) -> list[KinematicComponent]:
    """A kinematic component or a non-empty sequence of them, as a list."""
    if isinstance(components, KinematicComponent):
        return [components]
    if (
        isinstance(components, Sequence)
        and not isinstance(components, str)
        and len(components) > 0
        and all(isinstance(c, KinematicComponent) for c in components)
    ):
        return list(components)
    raise TypeError(
        "components must be a pmt.KinematicComponent or a non-empty list of them; "
        f"got {type(components).__name__}"
    )
