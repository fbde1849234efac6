"""Command line: ``pymc-tracers demo`` fits the paper's Figure-3 galaxy end to end; ``fit``,
``init-example`` and ``fit-sample`` (a catalogue of galaxies on Dask) fit real data.

Modules: :mod:`~pymc_tracers.cli.main` (the parser and ``main``, the console entry point),
:mod:`~pymc_tracers.cli.demo_command` (``demo``), :mod:`~pymc_tracers.cli.config_commands` (``fit``,
``init-example``), :mod:`~pymc_tracers.cli.survey_command` (``fit-sample``) and
:mod:`~pymc_tracers.cli.memory` (the memory check before rendering).
"""

from pymc_tracers.cli.config_commands import EXIT_NOT_CONVERGED
from pymc_tracers.cli.demo_command import DEMO_SHAPE, demo, demo_setup, wall_seconds
from pymc_tracers.cli.main import MAX_SEED, MIN_DRAWS, MIN_TUNE, build_parser, main
from pymc_tracers.cli.memory import (
    DEFAULT_MAX_MEMORY_GIB,
    PSF_TO_FIELD_WARNING,
    RENDER_FIELD_COPIES,
    RENDER_KERNEL_COPIES,
    estimate_render_bytes,
    psf_size_warning,
    render_memory_problem,
)

__all__ = [
    "DEFAULT_MAX_MEMORY_GIB",
    "DEMO_SHAPE",
    "EXIT_NOT_CONVERGED",
    "MAX_SEED",
    "MIN_DRAWS",
    "MIN_TUNE",
    "PSF_TO_FIELD_WARNING",
    "RENDER_FIELD_COPIES",
    "RENDER_KERNEL_COPIES",
    "build_parser",
    "demo",
    "demo_setup",
    "estimate_render_bytes",
    "main",
    "psf_size_warning",
    "render_memory_problem",
    "wall_seconds",
]
