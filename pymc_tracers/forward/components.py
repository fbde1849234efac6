"""Galaxy components (a light profile carrying a tracer profile) and the galaxy axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pytensor.graph.basic import Constant, Variable

from pymc_tracers.profiles.light import LightProfile
from pymc_tracers.profiles.tracer import as_tracer_profile

__all__ = ["Component", "TRACER_SCALES", "as_components", "batch_size", "check_tracer_scale"]

TRACER_SCALES = ("linear", "log")


class Component:
    """A galaxy component: a light profile carrying a tracer profile.

    Parameters
    ----------
    light : LightProfile
        The surface-brightness profile that weights the tracer.
    tracer : TracerProfile, float, array, variable or callable
        The intrinsic tracer field. A number, array ``(N,)`` or variable means a constant; a
        callable ``f(x, y)`` (arcsec) is wrapped as an :class:`~pymc_tracers.Expression`.
    """

    def __init__(self, light, tracer):
        if not isinstance(light, LightProfile):
            raise TypeError(
                "Component light must be a light profile (e.g. pmt.Sersic); "
                f"got {type(light).__name__}"
            )
        self.light = light
        self.tracer = as_tracer_profile(tracer)

    def parameters(self) -> dict:
        """Light and tracer parameters, keyed ``light.<name>`` and ``tracer.<name>``."""
        return {
            **{f"light.{k}": v for k, v in self.light.parameters().items()},
            **{f"tracer.{k}": v for k, v in self.tracer.parameters().items()},
        }

    def __repr__(self):
        return f"Component(light={self.light!r}, tracer={self.tracer!r})"


def as_components(components) -> list[Component]:
    """A component or a non-empty sequence of them, as a list."""
    if isinstance(components, Component):
        return [components]
    if isinstance(components, Sequence) and not isinstance(components, str):
        if len(components) == 0:
            raise ValueError("components is empty: give at least one pmt.Component")
        if all(isinstance(c, Component) for c in components):
            return list(components)
    raise TypeError(
        "components must be a Component or a non-empty list of Components; "
        f"got {type(components).__name__}"
    )


def check_tracer_scale(tracer_scale: str) -> str:
    if tracer_scale not in TRACER_SCALES:
        raise ValueError(
            f"unknown tracer_scale {tracer_scale!r}: use 'linear' for quantities averaged as they "
            "are (velocity, linear ratios) or 'log' for quantities in dex such as 12+log(O/H), "
            "which are averaged as 10**Z"
        )
    return tracer_scale


def is_free(value) -> bool:
    """True for a symbolic (non-constant) parameter."""
    return isinstance(value, Variable) and not isinstance(value, Constant)


def batch_size(components, psf) -> int | None:
    """The number of galaxies N implied by parameter arrays and PSF lists (None if unbatched).

    Symbolic parameters whose length is not known statically (PyMC ``dims``) do not count.
    """
    lengths = {}
    if isinstance(psf, (list, tuple)):
        lengths[f"{len(psf)} PSFs"] = len(psf)
    for i, component in enumerate(components):
        for name, value in component.parameters().items():
            ndim = getattr(value, "ndim", 0)
            if ndim == 0:
                continue
            n = value.shape[0] if isinstance(value, np.ndarray) else value.type.shape[0]
            if n is not None:
                lengths[f"parameter {name} of component {i} (length {n})"] = int(n)
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "the galaxy axis has different lengths: "
            + ", ".join(lengths)
            + ". Every per-galaxy parameter and the PSF list must have one entry per galaxy"
        )
    return next(iter(lengths.values()), None)
