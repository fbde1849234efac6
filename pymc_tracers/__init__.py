"""pymc_tracers: forward-model light-weighted tracer maps of galaxies with PyMC.

Typical use::

    import pymc as pm
    import pymc_tracers as pmt

    grid = pmt.PixelGrid((121, 121), pixel_scale=0.066, supersampling=3)
    psf = pmt.GaussianPSF(fwhm=1.5)
    with pm.Model():
        gradient = pm.Normal("gradient", 0.0, 0.5)
        galaxy = pmt.Component(pmt.Exponential(r_eff=1.0, amplitude=1.0),
                               pmt.LinearGradient(central=8.0, gradient=gradient))
        image, metallicity = pmt.observe(galaxy, grid, psf, tracer_scale="log")
"""

from pymc_tracers import (
    baselines,
    cosmology,
    data,
    io,
    kinematics,
    lensing,
    simulate,
)
from pymc_tracers.forward import Component, Observation, evaluate, observe
from pymc_tracers.grid import PixelGrid
from pymc_tracers.inference import ConvergenceWarning, Fitter, Result, fit
from pymc_tracers.inference.kfold import KFoldResult, compare_kfold, kfold
from pymc_tracers.kinematics import (
    ArctanCurve,
    DiscDispersion,
    DiscGeometry,
    DiscVelocity,
    ExponentialDiscCurve,
    ExponentialDispersion,
    KinematicComponent,
    KinematicObservation,
    RadialConstant,
    RadialExpression,
    TanhCurve,
    as_radial_function,
    gaussian_fit_maps,
    inclination_from_axis_ratio,
    moment_maps,
    observe_kinematics,
    simulate_cube,
)
from pymc_tracers.model import comparison, fields, kinematic_population, population
from pymc_tracers.model.comparison import bic, compare, delta_bic
from pymc_tracers.model.kinematic_likelihood import (
    binned_kinematic_likelihood,
    kinematic_likelihood,
)
from pymc_tracers.model.kinematic_population import (
    curve_with_speed_at,
    flat_velocity,
    rotation_or_dispersion,
    rotation_speed,
    v_over_sigma,
    velocity_22,
)
from pymc_tracers.model.likelihood import (
    HeteroskedasticNoise,
    SigmaMap,
    image_likelihood,
    tracer_likelihood,
)
from pymc_tracers.profiles import (
    Azimuthal,
    BrokenGradient,
    Constant,
    Exponential,
    Expression,
    Gaussian,
    GPResidual,
    LightProfile,
    LinearGradient,
    RadialProfile,
    Sersic,
    TracerProfile,
)
from pymc_tracers.psf import PSF, GaussianPSF, MoffatPSF, PixelPSF

__version__ = "0.1.0"

#: Submodules loaded on first access, as SciPy does (``pmt.plotting``, ``pmt.survey``...):
#: they are not imported with the package, but ``pmt.<name>`` works without an explicit import.
_LAZY_SUBMODULES = (
    "atomic",
    "cli",
    "config",
    "convolution",
    "fitsutil",
    "forward",
    "grid",
    "numerics",
    "plotting",
    "profiles",
    "psf",
    "simulate_population",
    "survey",
    "validation",
)


#: Modules that moved into the ``model`` and ``inference`` packages, reached by their old names
#: (``pmt.likelihood`` is ``pymc_tracers.model.likelihood``; ``pmt.sampling``, which held
#: ``fit`` and ``Fitter``, is the ``inference`` package).
_MOVED_SUBMODULES = {
    "binned": "model.binned",
    "likelihood": "model.likelihood",
    "results": "inference.results",
    "sampling": "inference",
}


def __getattr__(name):
    if name in _LAZY_SUBMODULES or name in _MOVED_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{_MOVED_SUBMODULES.get(name, name)}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_MOVED_SUBMODULES))


__all__ = [
    "PixelGrid",
    "PSF",
    "GaussianPSF",
    "MoffatPSF",
    "PixelPSF",
    "LightProfile",
    "Sersic",
    "Exponential",
    "Gaussian",
    "TracerProfile",
    "Constant",
    "LinearGradient",
    "RadialProfile",
    "Expression",
    "BrokenGradient",
    "Azimuthal",
    "GPResidual",
    "fields",
    "Component",
    "observe",
    "Observation",
    "evaluate",
    "tracer_likelihood",
    "image_likelihood",
    "HeteroskedasticNoise",
    "SigmaMap",
    "fit",
    "Fitter",
    "Result",
    "ConvergenceWarning",
    "bic",
    "delta_bic",
    "compare",
    "comparison",
    "kfold",
    "compare_kfold",
    "KFoldResult",
    "cosmology",
    "population",
    "baselines",
    "data",
    "io",
    "lensing",
    "simulate",
    "kinematics",
    "KinematicComponent",
    "KinematicObservation",
    "observe_kinematics",
    "simulate_cube",
    "moment_maps",
    "gaussian_fit_maps",
    "DiscGeometry",
    "DiscVelocity",
    "DiscDispersion",
    "ArctanCurve",
    "TanhCurve",
    "ExponentialDiscCurve",
    "ExponentialDispersion",
    "RadialConstant",
    "RadialExpression",
    "as_radial_function",
    "inclination_from_axis_ratio",
    "kinematic_likelihood",
    "binned_kinematic_likelihood",
    "kinematic_population",
    "rotation_speed",
    "velocity_22",
    "flat_velocity",
    "curve_with_speed_at",
    "v_over_sigma",
    "rotation_or_dispersion",
]
