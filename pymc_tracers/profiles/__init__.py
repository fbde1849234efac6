"""Light (surface-brightness) and tracer profiles as PyTensor graph code."""

from pymc_tracers.profiles.light import (
    Exponential,
    Gaussian,
    LightProfile,
    Sersic,
    elliptical_radius,
    sersic_bn,
)
from pymc_tracers.profiles.tracer import Constant, Expression, LinearGradient, TracerProfile

__all__ = [
    "LightProfile",
    "Sersic",
    "Exponential",
    "Gaussian",
    "elliptical_radius",
    "sersic_bn",
    "TracerProfile",
    "Constant",
    "LinearGradient",
    "Expression",
]
