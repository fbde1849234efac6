"""Light (surface-brightness) and tracer profiles as PyTensor graph code."""

from pymc_tracers.profiles.azimuthal import Azimuthal
from pymc_tracers.profiles.gp import GPResidual
from pymc_tracers.profiles.light import (
    Exponential,
    Gaussian,
    LightProfile,
    Sersic,
    elliptical_radius,
    sersic_bn,
)
from pymc_tracers.profiles.radial import BrokenGradient, LinearGradient, RadialProfile
from pymc_tracers.profiles.tracer import Constant, Expression, TracerProfile

__all__ = [
    "Azimuthal",
    "BrokenGradient",
    "Constant",
    "Exponential",
    "Expression",
    "GPResidual",
    "Gaussian",
    "LightProfile",
    "LinearGradient",
    "RadialProfile",
    "Sersic",
    "TracerProfile",
    "elliptical_radius",
    "sersic_bn",
]
