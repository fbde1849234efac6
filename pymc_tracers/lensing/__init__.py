"""Gravitational lensing: lens models, deflection maps and ray shooting for the forward model.

``pmt.observe(components, grid, psf, lens=...)`` evaluates the source's light and tracer at
``beta = theta - alpha(theta)`` for every image-plane sample point; the PSF convolution and the
pixels stay in the image plane (surface brightness is conserved, so the light-weighted ratio
is unchanged). Lens models are pure PyTensor functions of position with numpy twins; their
parameters are numbers, per-galaxy arrays or free PyMC variables.

Modules: :mod:`~pymc_tracers.lensing.base` (the interface, sums on one plane),
:mod:`~pymc_tracers.lensing.isothermal` (SIE, NIE, SIS), :mod:`~pymc_tracers.lensing.external`
(shear, convergence sheet), :mod:`~pymc_tracers.lensing.spherical` (point mass, NFW),
:mod:`~pymc_tracers.lensing.deflection_map` (tabulated maps from FITS),
:mod:`~pymc_tracers.lensing.distances` (``D_ls / D_s``), :mod:`~pymc_tracers.lensing.rays`
(ray shooting, magnification, critical curves).
"""

from pymc_tracers.lensing.base import LensModel, LensSum, as_lens
from pymc_tracers.lensing.deflection_map import DeflectionMap
from pymc_tracers.lensing.distances import distance_ratio
from pymc_tracers.lensing.external import ConvergenceSheet, ExternalShear
from pymc_tracers.lensing.isothermal import NIE, SIE, SIS
from pymc_tracers.lensing.rays import (
    caustics,
    critical_curves,
    magnification,
    source_positions,
    trace_point_sets,
)
from pymc_tracers.lensing.spherical import NFW, PointMass

__all__ = [
    "LensModel",
    "LensSum",
    "as_lens",
    "SIE",
    "NIE",
    "SIS",
    "ExternalShear",
    "ConvergenceSheet",
    "PointMass",
    "NFW",
    "DeflectionMap",
    "distance_ratio",
    "trace_point_sets",
    "source_positions",
    "magnification",
    "critical_curves",
    "caustics",
]
