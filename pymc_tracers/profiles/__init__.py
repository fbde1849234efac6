"""Light (surface-brightness) and tracer profiles as PyTensor graph code."""

from pymc_tracers.profiles.light import (
    Exponential,
    Gaussian,
    LightProfile,
    Sersic,
    elliptical_radius,
    sersic_bn,
)
from pymc_tracers.profiles.tracer import (
    Azimuthal,
    BrokenGradient,
    Constant,
    Expression,
    GPResidual,
    LinearGradient,
    TracerProfile,
)

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
    "Sersic",
    "TracerProfile",
    "elliptical_radius",
    "sersic_bn",
]
