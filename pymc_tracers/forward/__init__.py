"""The forward model: what a telescope records of a galaxy's light and light-weighted tracer.

:func:`observe` builds the maps through one of several renderers, chosen in one place
(:mod:`~pymc_tracers.forward.selection`) and named by ``Observation.path``:

=================  ==========================================================================
``subpixel``       render, convolve on the supersampled grid and bin, every evaluation (exact)
``pixel``          the same with convolution at the data-pixel scale (``convolve_at="pixel"``)
``fitted_psf``     the full path with a PSF whose parameters are fitted
``linear``         fixed light and PSF, linear averaging of tracers linear in their
                   parameters: a fixed matrix times the coefficients (exact)
``radial``         fixed light and PSF, radial tracers on either scale: a fixed matrix times
                   the tracer's values at radial nodes (within a stated tolerance)
=================  ==========================================================================
"""

from pymc_tracers.forward.base import PSFSwapError, RenderedMaps, Renderer
from pymc_tracers.forward.components import TRACER_SCALES, Component
from pymc_tracers.forward.evaluate import evaluate
from pymc_tracers.forward.full import (
    FittedPSFRenderer,
    FullRenderer,
    PixelScaleRenderer,
    SubpixelRenderer,
)
from pymc_tracers.forward.linear import LinearBasisRenderer
from pymc_tracers.forward.observe import Observation, observe
from pymc_tracers.forward.radial import RadialAccuracyWarning, RadialTransferRenderer
from pymc_tracers.forward.ratio import EMPTY_SKY_FRACTION, light_weighted_ratio
from pymc_tracers.forward.selection import METHODS
from pymc_tracers.forward.transfer import DEFAULT_TOLERANCE, TransferRenderer

__all__ = [
    "Component",
    "DEFAULT_TOLERANCE",
    "EMPTY_SKY_FRACTION",
    "FittedPSFRenderer",
    "FullRenderer",
    "LinearBasisRenderer",
    "METHODS",
    "Observation",
    "PSFSwapError",
    "PixelScaleRenderer",
    "RadialAccuracyWarning",
    "RadialTransferRenderer",
    "RenderedMaps",
    "Renderer",
    "SubpixelRenderer",
    "TRACER_SCALES",
    "TransferRenderer",
    "evaluate",
    "light_weighted_ratio",
    "observe",
]
