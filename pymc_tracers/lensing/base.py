"""What every lens model shares: deflection angles, summing on one plane, ray shooting.

A lens model is a pure PyTensor function of image-plane positions ``(x, y)`` (arcsec) that
returns the deflection ``(alpha_x, alpha_y)`` (arcsec) for a source at the model's redshift.
The lens equation on one plane maps every image-plane position to the source plane::

    beta = theta - alpha(theta)

Parameters are numbers, arrays over galaxies ``(N,)`` or PyTensor/PyMC variables (free
parameters). Models add with ``+`` on one plane (``SIE(...) + ExternalShear(...)``). Each
model has a numpy twin, :meth:`LensModel.deflection_numpy`, used by the tests.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable

from pymc_tracers.profiles.light import per_galaxy
from pymc_tracers.validation import check_parameter

__all__ = ["LensModel", "LensSum", "as_lens", "lens_batch_size"]


def check_lens_parameter(value, name, *, positive=False, upper=None, unit="arcsec"):
    """A lens parameter (scalar or galaxy axis), with a one-line error naming its unit."""
    try:
        return check_parameter(value, name, positive=positive, upper=upper)
    except ValueError as error:
        raise ValueError(f"lens parameter {error} ({unit})") from None


def _numpy_parameter(value):
    """A fixed parameter as a numpy value broadcastable against ``(H, W)`` positions."""
    if isinstance(value, Constant):
        value = value.data
    array = np.asarray(value, dtype=float)
    return array[..., None, None] if array.ndim else array


def _is_free(value) -> bool:
    return isinstance(value, Variable) and not isinstance(value, Constant)


class LensModel:
    """Base class of lens models on one plane (see the module docstring)."""

    def deflection(self, x, y):
        """Deflection ``(alpha_x, alpha_y)`` in arcsec at image-plane positions ``x, y``
        (arcsec): tensors broadcastable to ``(H, W)`` or, with per-galaxy parameters,
        ``(N, H, W)``."""
        raise NotImplementedError

    def deflection_numpy(self, x, y):
        """Numpy twin of :meth:`deflection` (fixed parameters only; for tests)."""
        raise NotImplementedError

    def parameters(self) -> dict:
        """The model's parameters by name (numbers, arrays or variables)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @property
    def is_fixed(self) -> bool:
        """True when no parameter is a free variable (the source-plane points are fixed)."""
        return not self.free_parameters()

    def free_parameters(self) -> list[str]:
        """Names of the parameters that are free variables."""
        return [name for name, value in self.parameters().items() if _is_free(value)]

    def check_coverage(self, x, y) -> None:
        """Raise ValueError when the model cannot deflect the image-plane positions ``x, y``
        (arcsec, numpy); analytic models deflect everywhere."""

    def ray_shoot(self, x, y):
        """Source-plane positions ``beta = theta - alpha(theta)`` (arcsec, tensors)."""
        x, y = pt.as_tensor_variable(x), pt.as_tensor_variable(y)
        alpha_x, alpha_y = self.deflection(x, y)
        return x - alpha_x, y - alpha_y

    def ray_shoot_numpy(self, x, y):
        """Numpy twin of :meth:`ray_shoot`."""
        alpha_x, alpha_y = self.deflection_numpy(x, y)
        return np.asarray(x) - alpha_x, np.asarray(y) - alpha_y

    def __add__(self, other):
        return LensSum([self, as_lens(other)])

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({inner})"


class LensSum(LensModel):
    """Several lens models on one plane: their deflections add (e.g. a cluster-scale
    deflection map plus a free galaxy-scale SIE and an external shear)."""

    def __init__(self, models):
        flat = []
        for model in models:
            model = as_lens(model)
            flat.extend(model.models if isinstance(model, LensSum) else [model])
        self.models = flat

    def deflection(self, x, y):
        parts = [model.deflection(x, y) for model in self.models]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def deflection_numpy(self, x, y):
        parts = [model.deflection_numpy(x, y) for model in self.models]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def parameters(self) -> dict:
        return {f"{i}.{k}": v for i, m in enumerate(self.models) for k, v in m.parameters().items()}

    def check_coverage(self, x, y):
        for model in self.models:
            model.check_coverage(x, y)

    def __repr__(self):
        return " + ".join(repr(m) for m in self.models)


def as_lens(lens) -> LensModel:
    """A lens model, or a non-empty list of them (summed on one plane)."""
    if isinstance(lens, LensModel):
        return lens
    if isinstance(lens, (list, tuple)) and lens and all(isinstance(m, LensModel) for m in lens):
        return lens[0] if len(lens) == 1 else LensSum(lens)
    raise TypeError(
        "lens must be a lens model (e.g. pmt.lensing.SIE) or a non-empty list of them; "
        f"got {type(lens).__name__}"
    )


def lens_batch_size(lens) -> int | None:
    """The galaxy-axis length of the lens's parameters (None when every one is a scalar)."""
    lengths = set()
    for name, value in lens.parameters().items():
        if getattr(value, "ndim", 0) != 1:
            continue
        n = value.shape[0] if isinstance(value, np.ndarray) else value.type.shape[0]
        if n is not None:
            lengths.add(int(n))
    if len(lengths) > 1:
        raise ValueError(
            f"the lens's per-galaxy parameters have different lengths {sorted(lengths)}; give "
            "every per-galaxy lens parameter one entry per galaxy"
        )
    return next(iter(lengths), None)


def offsets(x, y, x0, y0, phi=None):
    """Offsets from a centre, rotated onto the axis at ``phi`` (radians) when given: tensors."""
    dx = pt.as_tensor_variable(x) - per_galaxy(x0)
    dy = pt.as_tensor_variable(y) - per_galaxy(y0)
    if phi is None:
        return dx, dy
    cos, sin = pt.cos(per_galaxy(phi)), pt.sin(per_galaxy(phi))
    return cos * dx + sin * dy, -sin * dx + cos * dy


def offsets_numpy(x, y, x0, y0, phi=None):
    dx = np.asarray(x, dtype=float) - _numpy_parameter(x0)
    dy = np.asarray(y, dtype=float) - _numpy_parameter(y0)
    if phi is None:
        return dx, dy
    cos, sin = np.cos(_numpy_parameter(phi)), np.sin(_numpy_parameter(phi))
    return cos * dx + sin * dy, -sin * dx + cos * dy
