"""``pymc-tracers fit CONFIG.toml``: fit FITS maps described by a TOML file, write the results.

The configuration names the data (files and extensions, read with
:func:`pymc_tracers.io.read_maps`), the PSF, the galaxy's components (light and tracer profiles
by name, each parameter fixed or given a prior as a ``pymc_extras.prior.Prior`` dictionary),
the noise model, the tracer scale, the sampler and the output folder; or, with a
``[kinematics]`` section, velocity and dispersion maps and a rotating disc
(:mod:`~pymc_tracers.config.kinematics`). ``docs/config.md`` documents every option;
``pymc-tracers init-example DIR`` (``--kinematics``) writes a complete example.

Every problem with a configuration is a :class:`ConfigError` whose message is one line saying
what is wrong and how to fix it (unknown names come with the closest valid one).

Outputs (in the output folder, written to a temporary folder next to it and moved into place
at the end, so a killed run leaves nothing that looks finished):

``maps.fits``
    Model, data, sigma, residual, normalised residual and used-pixel maps with the input WCS.
``posterior.nc``
    The :class:`pymc_tracers.Result` (``Result.load``).
``summary.ecsv``
    Posterior summary with units.
``report_maps.png``, ``report_corner.png``
    Data / model / residual / radial profile, and the corner plot.
``config.toml``
    A copy of the configuration.

Modules: :mod:`~pymc_tracers.config.schema` (sections and keys, :func:`load_config`),
:mod:`~pymc_tracers.config.registry` (the profiles, read from the profile classes),
:mod:`~pymc_tracers.config.components` (profile tables and priors),
:mod:`~pymc_tracers.config.data` (maps and PSF), :mod:`~pymc_tracers.config.auto` (``"auto"``
light priors), :mod:`~pymc_tracers.config.build` (the PyMC model),
:mod:`~pymc_tracers.config.derived` (gradients per R_e and per kpc),
:mod:`~pymc_tracers.config.kinematics`, :mod:`~pymc_tracers.config.kinematic_data` and
:mod:`~pymc_tracers.config.kinematic_model` (``[kinematics]``: checking, reading, the model and
its outputs),
:mod:`~pymc_tracers.config.run` (the single-galaxy pipeline) and
:mod:`~pymc_tracers.config.example` (``init-example``).
"""

from pymc_tracers.config.auto import auto_prior, light_estimates
from pymc_tracers.config.build import build_model
from pymc_tracers.config.components import AUTO_PARAMETERS, EXTRA_KEYS, prior_from
from pymc_tracers.config.data import make_psf, read_data
from pymc_tracers.config.errors import ConfigError
from pymc_tracers.config.example import EXAMPLE_CONFIG, EXAMPLE_TRUTH, example_wcs, write_example
from pymc_tracers.config.example_kinematics import (
    KINEMATIC_EXAMPLE_CONFIG,
    KINEMATIC_EXAMPLE_TRUTH,
    write_kinematic_example,
)
from pymc_tracers.config.kinematic_data import KinematicInput, read_kinematic_data
from pymc_tracers.config.kinematic_model import build_kinematic_model, write_kinematic_galaxy
from pymc_tracers.config.kinematics import check_kinematics
from pymc_tracers.config.registry import (
    DISC_PARAMETERS,
    LIGHT_PROFILES,
    RADIAL_PROFILES,
    TRACER_PROFILES,
    profile_specs,
)
from pymc_tracers.config.run import (
    GalaxyRun,
    Progress,
    build_galaxy,
    finish_result,
    prepare_galaxy,
    run_fit,
    write_galaxy,
)
from pymc_tracers.config.schema import (
    PSF_TYPES,
    SECTIONS,
    TOP_LEVEL,
    FitConfig,
    load_config,
)

__all__ = [
    "AUTO_PARAMETERS",
    "DISC_PARAMETERS",
    "KINEMATIC_EXAMPLE_CONFIG",
    "KINEMATIC_EXAMPLE_TRUTH",
    "RADIAL_PROFILES",
    "KinematicInput",
    "build_galaxy",
    "build_kinematic_model",
    "check_kinematics",
    "read_kinematic_data",
    "write_kinematic_example",
    "write_kinematic_galaxy",
    "EXAMPLE_CONFIG",
    "EXTRA_KEYS",
    "PSF_TYPES",
    "SECTIONS",
    "TOP_LEVEL",
    "EXAMPLE_TRUTH",
    "LIGHT_PROFILES",
    "TRACER_PROFILES",
    "ConfigError",
    "FitConfig",
    "GalaxyRun",
    "Progress",
    "auto_prior",
    "build_model",
    "light_estimates",
    "example_wcs",
    "finish_result",
    "load_config",
    "make_psf",
    "prepare_galaxy",
    "prior_from",
    "profile_specs",
    "read_data",
    "run_fit",
    "write_example",
    "write_galaxy",
]
