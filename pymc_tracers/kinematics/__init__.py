"""Kinematics: velocity and dispersion maps forward-modelled through the PSF and pixels.

Velocity dispersion and line-of-sight velocity are light-weighted, like metallicity: the
moments of a PSF-smeared, pixelised line cube are ratios of binned, PSF-convolved sums
(:func:`observe_kinematics`). The physics lives here as PyTensor graphs with numpy twins:

* :mod:`~pymc_tracers.kinematics.geometry`: disc centre, kinematic PA, inclination (free, or
  tied to the light's axis ratio through an intrinsic thickness);
* :mod:`~pymc_tracers.kinematics.rotation_curves` and
  :mod:`~pymc_tracers.kinematics.radial_functions`: V(R) (arctan, tanh, Freeman disc, any
  expression or spline);
* :mod:`~pymc_tracers.kinematics.velocity_field` and
  :mod:`~pymc_tracers.kinematics.dispersion`: the fields on the sky;
* :mod:`~pymc_tracers.kinematics.observe`, :mod:`~pymc_tracers.kinematics.full`,
  :mod:`~pymc_tracers.kinematics.disc_transfer`: the forward model and its renderers;
* :mod:`~pymc_tracers.kinematics.cube_simulation` and
  :mod:`~pymc_tracers.kinematics.cube_maps`: line cubes (numpy): simulate one, reduce one to
  moment maps or single-Gaussian fits.

The PyMC layer on top (velocity and dispersion likelihoods) is
:mod:`pymc_tracers.model.kinematic_likelihood`; nothing here imports PyMC.
"""

from pymc_tracers.kinematics.components import KinematicComponent
from pymc_tracers.kinematics.cube_maps import (
    GaussianFitMaps,
    MomentMaps,
    gaussian_fit_maps,
    moment_maps,
)
from pymc_tracers.kinematics.cube_simulation import simulate_cube
from pymc_tracers.kinematics.dispersion import DiscDispersion, ExponentialDispersion
from pymc_tracers.kinematics.geometry import (
    DiscGeometry,
    disc_coordinates_numpy,
    inclination_from_axis_ratio,
)
from pymc_tracers.kinematics.observe import KinematicObservation, observe_kinematics
from pymc_tracers.kinematics.radial_functions import (
    RadialConstant,
    RadialExpression,
    RadialFunction,
    as_radial_function,
)
from pymc_tracers.kinematics.rotation_curves import (
    ArctanCurve,
    ExponentialDiscCurve,
    TanhCurve,
)
from pymc_tracers.kinematics.velocity_field import DiscVelocity

__all__ = [
    "ArctanCurve",
    "DiscDispersion",
    "DiscGeometry",
    "DiscVelocity",
    "ExponentialDiscCurve",
    "ExponentialDispersion",
    "GaussianFitMaps",
    "KinematicComponent",
    "KinematicObservation",
    "MomentMaps",
    "RadialConstant",
    "RadialExpression",
    "RadialFunction",
    "TanhCurve",
    "as_radial_function",
    "disc_coordinates_numpy",
    "gaussian_fit_maps",
    "inclination_from_axis_ratio",
    "moment_maps",
    "observe_kinematics",
    "simulate_cube",
]
