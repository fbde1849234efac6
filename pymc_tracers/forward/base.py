"""What every renderer shares: the maps it returns and the interface the model layer uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

__all__ = ["RenderedMaps", "Renderer", "PSFSwapError"]


class PSFSwapError(ValueError):
    """A renderer cannot take a new PSF into an already-built model."""


@dataclass
class RenderedMaps:
    """The tensors a renderer builds.

    Attributes
    ----------
    image : tensor
        Flux per data pixel, ``(ny, nx)`` or ``(N, ny, nx)``.
    tracer_map : tensor
        Light-weighted, PSF-smeared tracer map (tracer units), same shape.
    light_sum, weighted_sum : tensor
        ``bin(K * sum I)`` and ``bin(K * sum I f(Z))``, whose ratio is the tracer map.
    """

    image: object
    tracer_map: object
    light_sum: object
    weighted_sum: object


class Renderer:
    """One way of computing the observed maps of some components on a grid through a PSF.

    Every renderer offers the same four things: it is **built** from the components, numerics
    and averaging scale (the constructor), **renders** the maps (:meth:`render`), gives the
    tracer map **at the pixels a likelihood uses** (:meth:`at_pixels`; by default the whole
    map, indexed) and **swaps its PSF** in a built model (:meth:`psf_updates`).

    Attributes
    ----------
    path : str
        The renderer's name, as accepted by ``observe(method=...)``.
    reason : str
        Why it was chosen (set by the selection in :func:`~pymc_tracers.forward.observe`).
    max_error : float
        The tracer map's error against the exact full path (tracer units): 0 for exact
        renderers, the measured value for approximate ones.
    """

    path = ""

    def __init__(self, components, numerics, tracer_scale, n_galaxies):
        self.components = components
        self.numerics = numerics
        self.tracer_scale = tracer_scale
        self.n_galaxies = n_galaxies
        self.reason = ""
        self.max_error = 0.0
        self._maps = None

    def render(self) -> RenderedMaps:
        """The maps (built once, then cached)."""
        if self._maps is None:
            self._maps = self._render()
        return self._maps

    def _render(self) -> RenderedMaps:
        raise NotImplementedError

    def at_pixels(self, index, shape):
        """The tracer map at flat ``index`` into a map of ``shape`` (a 1-D tensor)."""
        tracer_map = self.render().tracer_map
        return pt.specify_shape(tracer_map, shape).reshape((-1,))[np.asarray(index)]

    def psf_updates(self, psf) -> dict:
        """New values of this renderer's model data for another PSF, by data name.

        Raises
        ------
        PSFSwapError
            When the renderer compiles its PSF into the graph.
        """
        raise PSFSwapError(
            f"the {self.path!r} renderer compiles its PSF into the model; build a new model "
            "for a new PSF"
        )

    def describe(self) -> str:
        """One line: the path and what it costs per evaluation."""
        return self.path

    def __repr__(self):
        return f"{type(self).__name__}(path={self.path!r}, reason={self.reason!r})"
