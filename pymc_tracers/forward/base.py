"""What every renderer shares: the maps it returns and the interface the model layer uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt

from pymc_tracers.numerics import kernel_for

__all__ = ["RenderedMaps", "Renderer", "PSFSwapError", "current_model", "hold_data"]


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


def current_model():
    """The PyMC model being built (the innermost ``with pm.Model()``), or None."""
    try:
        import pymc as pm

        return pm.modelcontext(None)
    except (ImportError, TypeError):
        return None


def hold_data(model, name, value):
    """Model data without ``pm.Data``'s copy: the model holds the one copy of each (possibly
    GB-sized) array. ``pm.Data`` converts its value with ``astype``, which copies even with
    ``borrow=True``."""
    value = np.asarray(value, dtype=pytensor.config.floatX)
    variable = pytensor.shared(value, name=model.name_for(name), borrow=True)
    model.register_data_var(variable)
    return variable


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
        self._psf_data = None

    def _hold_psf(self):
        """Inside a PyMC model, hold a fixed PSF's kernel as model data (``pmt_psf_kernel<i>``)
        so that :meth:`psf_updates` can swap another PSF into the built model; the renderers
        that convolve on every evaluation call this when built."""
        model = current_model()
        if model is None or not self.numerics.is_fixed or self.numerics.held_kernel is not None:
            return
        index = sum(1 for name in model.named_vars if name.startswith("pmt_psf_kernel"))
        self._psf_data = f"pmt_psf_kernel{index}"
        self.numerics.hold_kernel(hold_data(model, self._psf_data, self.numerics.kernel))

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

        Renderers that convolve on every evaluation hold their kernel as model data when built
        inside a PyMC model; another fixed PSF then swaps in when its stamp is no larger than
        the built one (zero-padded to it, which is exact).

        Raises
        ------
        PSFSwapError
            When the renderer was built outside a model (its PSF is a constant of the graph),
            or the new PSF does not fit the built model (free parameters, another number of
            PSFs, a larger stamp).
        """
        if self._psf_data is None:
            raise PSFSwapError(
                f"the {self.path!r} renderer was built outside a PyMC model, so its PSF is a "
                "constant of the graph; build it inside `with pm.Model():` to swap PSFs, or "
                "build a new model for a new PSF"
            )
        try:
            return {self._psf_data: kernel_for(self.numerics, psf)}
        except ValueError as error:
            raise PSFSwapError(str(error)) from None

    def describe(self) -> str:
        """One line: the path and what it costs per evaluation."""
        return self.path

    def __repr__(self):
        return f"{type(self).__name__}(path={self.path!r}, reason={self.reason!r})"
