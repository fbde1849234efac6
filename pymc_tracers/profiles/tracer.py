"""Intrinsic tracer fields Z(x, y): metallicity (dex), velocity (km/s), line ratios, colours.

A tracer profile is the value of the traced quantity *before* light weighting, PSF smearing
and pixelisation. Its units are those of its parameters (e.g. 12+log(O/H) in dex with a
gradient in dex/arcsec).
"""

from __future__ import annotations

import inspect

import pytensor.tensor as pt

from pymc_tracers.profiles.light import _check_number, elliptical_radius

__all__ = ["TracerProfile", "Constant", "LinearGradient", "Expression", "as_tracer_profile"]


class TracerProfile:
    """Base class: a tracer field evaluated at sky positions (arcsec)."""

    def value(self, x, y):
        """The tracer at ``x, y`` (arcsec) as a PyTensor tensor of the shape of ``x``."""
        raise NotImplementedError

    def __call__(self, x, y):
        value = pt.as_tensor_variable(self.value(x, y))
        target = tuple(pt.as_tensor_variable(x).type.shape)
        static = value.type.shape
        if value.ndim > len(target) or any(
            a not in (1, None, b)
            for a, b in zip(reversed(static), reversed(target))
            if b is not None
        ):
            raise ValueError(
                f"{self!r} returned a tracer of shape {static}, which does not match the "
                f"coordinate grid of shape {target}; return a scalar or an array shaped like x"
            )
        return pt.broadcast_to(value, pt.as_tensor_variable(x).shape)


class Constant(TracerProfile):
    """A uniform tracer, e.g. one metallicity per clump.

    Parameters
    ----------
    value : float or variable
        The tracer value (e.g. 12+log(O/H) in dex, or km/s).
    """

    def __init__(self, value):
        self.constant = _check_number(value, "value")

    def value(self, x, y):
        return pt.as_tensor_variable(self.constant) + pt.zeros_like(pt.as_tensor_variable(x))

    def __repr__(self):
        return f"Constant({self.constant!r})"


class LinearGradient(TracerProfile):
    """A linear radial gradient ``Z = central + gradient * r``.

    Parameters
    ----------
    x0, y0 : float or variable
        Centre of the gradient in arcsec.
    central : float or variable
        Tracer value at the centre (e.g. 12+log(O/H), dex).
    gradient : float or variable
        Change per arcsec of elliptical radius (e.g. dex/arcsec).
    q, phi : float or variable
        Axis ratio b/a and major-axis angle (radians, counter-clockwise from +x) of the
        isocontours; ``r`` is the elliptical radius along the major axis.
    """

    def __init__(self, x0=0.0, y0=0.0, central=0.0, gradient=0.0, q=1.0, phi=0.0):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.central = _check_number(central, "central")
        self.gradient = _check_number(gradient, "gradient")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")

    def value(self, x, y):
        r = elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi)
        return self.central + self.gradient * r

    def __repr__(self):
        return (
            f"LinearGradient(x0={self.x0!r}, y0={self.y0!r}, central={self.central!r}, "
            f"gradient={self.gradient!r}, q={self.q!r}, phi={self.phi!r})"
        )


class Expression(TracerProfile):
    """Any tracer field written as a PyTensor expression of ``x`` and ``y`` (arcsec).

    Parameters
    ----------
    function : callable
        ``function(x, y) -> tensor``; ``x`` and ``y`` are PyTensor tensors of sky coordinates
        in arcsec. Free parameters are captured from the enclosing scope (PyMC variables).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> spiral = Expression(lambda x, y: 8.5 - 0.1 * pt.sqrt(x**2 + y**2)
    ...                     + 0.2 * pt.cos(2 * pt.arctan2(y, x)))
    """

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"Expression needs a callable f(x, y); got {type(function).__name__}")
        try:
            inspect.signature(function).bind(0.0, 0.0)
        except TypeError:
            raise TypeError("the tracer expression must accept two arguments, (x, y)") from None
        self.function = function

    def value(self, x, y):
        out = pt.as_tensor_variable(
            self.function(pt.as_tensor_variable(x), pt.as_tensor_variable(y))
        )
        if out.ndim > 2:
            raise ValueError(
                f"the tracer expression returned a tensor with {out.ndim} dimensions; "
                "it must return a scalar or a map of the shape of x"
            )
        return out

    def __repr__(self):
        return f"Expression({getattr(self.function, '__name__', 'function')})"


def as_tracer_profile(tracer) -> TracerProfile:
    """Accept a tracer profile, a number (a constant) or a callable ``f(x, y)``."""
    if isinstance(tracer, TracerProfile):
        return tracer
    if callable(tracer):
        return Expression(tracer)
    return Constant(tracer)
