"""Functions of the disc-plane radius R: what rotation curves and dispersion profiles share.

A :class:`RadialFunction` maps a tensor of disc radii (arcsec) to a tensor (km/s). Its
parameters may be numbers, arrays over galaxies ``(N,)`` or PyMC variables; evaluated on radii
of shape ``(H, W)`` a batched function returns ``(N, H, W)``. Each one has a numpy twin
(:meth:`RadialFunction.numpy`) for tests and quick looks.

:func:`as_radial_function` accepts a number (a constant), a callable ``f(R)`` (any PyTensor
expression) or a :class:`~pymc_tracers.RadialProfile` (e.g. a spline whose knot values are
free), whose own sky geometry must be left at its default (the disc's geometry is used).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Constant as GraphConstant
from pytensor.graph.basic import Variable

from pymc_tracers.profiles.light import _check_number, per_galaxy
from pymc_tracers.profiles.radial import RadialProfile
from pymc_tracers.profiles.tracer import _numeric

__all__ = [
    "RadialFunction",
    "RadialConstant",
    "RadialExpression",
    "as_radial_function",
]


class RadialFunction:
    """Base class: a function of disc radius ``R`` (arcsec), e.g. a rotation curve in km/s."""

    def __call__(self, radius):
        """The function at disc radii ``radius`` (tensor, arcsec): a tensor."""
        raise NotImplementedError

    def numpy(self, radius):
        """Numpy twin of :meth:`__call__` for fixed parameters (a galaxy axis goes first)."""
        value = self(pt.as_tensor_variable(np.asarray(radius, dtype=float)))
        free = [
            v
            for v in pytensor.graph.traversal.graph_inputs([value])
            if not isinstance(v, GraphConstant)
        ]
        if free:
            raise ValueError(f"{self!r} has free parameters: give them values first")
        return np.asarray(value.eval())

    def parameters(self) -> dict:
        """The parameters by name (numbers, arrays or variables)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    @property
    def is_fixed(self) -> bool:
        return all(
            not isinstance(v, Variable) or isinstance(v, GraphConstant)
            for v in self.parameters().values()
        )


class RadialConstant(RadialFunction):
    """The same value at every radius (e.g. a constant dispersion in km/s).

    Parameters
    ----------
    value : float, array (N,) or variable
        In km/s (or the units of the quantity).
    """

    def __init__(self, value):
        self.value = _check_number(value, "value")

    def __call__(self, radius):
        return per_galaxy(self.value) + pt.zeros_like(pt.as_tensor_variable(radius))

    def numpy(self, radius):
        value = _numeric(self.value)
        value = value[..., None, None] if value.ndim else value
        return value + np.zeros_like(np.asarray(radius, dtype=float))

    def __repr__(self):
        return f"RadialConstant({self.value!r})"


class RadialExpression(RadialFunction):
    """Any PyTensor expression of the disc radius ``R`` (arcsec).

    Parameters
    ----------
    function : callable
        ``function(R) -> tensor`` in km/s; free parameters are captured from the enclosing
        scope (PyMC variables). Parameters with a galaxy axis should be reshaped to broadcast
        against ``R`` with :func:`~pymc_tracers.profiles.light.per_galaxy`.

    Examples
    --------
    A rotation curve that keeps rising slowly outside its turnover::

        curve = pmt.RadialExpression(lambda R: v_max * pt.tanh(R / r_t) + slope * R)
    """

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"a radial expression needs a callable f(R); got {function!r}")
        try:
            inspect.signature(function).bind(0.0)
        except TypeError:
            raise TypeError("a radial expression must accept one argument, R (arcsec)") from None
        self.function = function

    def __call__(self, radius):
        return pt.as_tensor_variable(self.function(pt.as_tensor_variable(radius)))

    def parameters(self) -> dict:
        return {}

    @property
    def is_fixed(self) -> bool:
        return False  # the expression may capture free parameters

    def __repr__(self):
        return f"RadialExpression({getattr(self.function, '__name__', 'function')})"


class _ProfileOfRadius(RadialExpression):
    """A :class:`~pymc_tracers.RadialProfile` (e.g. a spline) as a function of disc radius."""

    def __init__(self, profile):
        self.profile = profile
        self.function = profile._of_radius

    def parameters(self) -> dict:
        values = self.profile._extra.get("values")
        return {} if values is None else {"values": values}

    def __repr__(self):
        return f"{self.profile!r} of disc radius"


def as_radial_function(value, name="the radial function") -> RadialFunction:
    """A :class:`RadialFunction` from a number, an array ``(N,)``, a variable, a callable or a
    :class:`~pymc_tracers.RadialProfile` (its sky geometry must be the default)."""
    if isinstance(value, RadialFunction):
        return value
    if isinstance(value, RadialProfile):
        geometry = [
            _numeric(v) if not isinstance(v, Variable) else v
            for v in (value.x0, value.y0, value.q, value.phi)
        ]
        if any(isinstance(v, Variable) for v in geometry) or not (
            np.all(geometry[0] == 0)
            and np.all(geometry[1] == 0)
            and np.all(geometry[2] == 1)
            and np.all(geometry[3] == 0)
        ):
            raise ValueError(
                f"{name}: a RadialProfile used as a function of disc radius must keep its "
                "default geometry (x0=y0=0, q=1, phi=0); the disc's DiscGeometry sets where R is"
            )
        return _ProfileOfRadius(value)
    if callable(value):
        return RadialExpression(value)
    try:
        return RadialConstant(value)
    except ValueError:
        raise TypeError(
            f"{name} must be a number (km/s), a RadialFunction (e.g. pmt.ArctanCurve), a "
            f"callable f(R) or a pmt.RadialProfile; got {type(value).__name__}"
        ) from None
