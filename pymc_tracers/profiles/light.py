"""Surface-brightness profiles as PyTensor graphs of sky coordinates (arcsec).

Each profile's parameters may be Python floats, numpy values or PyTensor/PyMC variables;
:meth:`LightProfile.surface_brightness` returns a tensor in the units of ``amplitude`` (surface
brightness, e.g. flux / arcsec^2).

**A population is a batch.** Any parameter may carry one leading galaxy axis: a numpy array or
a variable of shape ``(N,)`` (e.g. a PyMC variable with ``dims="galaxy"``). Evaluated on
coordinates of shape ``(H, W)``, a profile with a batched parameter returns ``(N, H, W)``; one
without returns ``(H, W)``. Parameters are expanded with :func:`per_galaxy`.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad
from pytensor.graph.basic import Variable
from scipy import special

from pymc_tracers.validation import check_parameter as _check_number

__all__ = [
    "LightProfile",
    "Sersic",
    "Exponential",
    "Gaussian",
    "elliptical_radius",
    "per_galaxy",
    "sersic_bn",
    "sersic_bn_numpy",
    "sersic_numpy",
]

#: Smoothing length (arcsec) added in quadrature to radii so that gradients stay finite at a
#: profile centre; it changes a radius r by eps^2 / (2 r), i.e. by < 5e-12 arcsec for r > 1e-5".
RADIUS_SOFTENING = 1e-8


def _as_tensor(value):
    """A tensor that keeps float64 precision for plain numbers."""
    if isinstance(value, Variable):
        return value
    return pt.as_tensor_variable(np.asarray(value, dtype=pytensor.config.floatX))


def per_galaxy(value):
    """A parameter as a tensor that broadcasts against ``(H, W)`` coordinates.

    Scalars stay scalars; a galaxy axis ``(N,)`` becomes ``(N, 1, 1)``.
    """
    tensor = _as_tensor(value)
    return tensor[..., None, None] if tensor.ndim else tensor


def elliptical_radius(x, y, x0, y0, q=1.0, phi=0.0):
    """Elliptical radius in arcsec, measured along the major axis.

    ``r = sqrt(x'^2 + (y'/q)^2)`` where ``(x', y')`` are offsets from ``(x0, y0)`` rotated by
    ``phi`` (radians, counter-clockwise from +x to the major axis) and ``q = b/a``. Parameters
    with a galaxy axis ``(N,)`` give radii of shape ``(N, H, W)``.
    """
    x0, y0, q, phi = (per_galaxy(v) for v in (x0, y0, q, phi))
    dx = _as_tensor(x) - x0
    dy = _as_tensor(y) - y0
    cos, sin = pt.cos(phi), pt.sin(phi)
    x_major = cos * dx + sin * dy
    y_minor = -sin * dx + cos * dy
    return pt.sqrt(x_major**2 + (y_minor / q) ** 2 + RADIUS_SOFTENING**2)


def sersic_bn_numpy(n):
    """Exact Sersic ``b_n`` (``gammaincinv(2n, 1/2)``): half the light lies inside ``r_eff``."""
    return special.gammaincinv(2.0 * np.asarray(n, dtype=float), 0.5)


def sersic_bn(n):
    """Exact Sersic ``b_n`` as a differentiable PyTensor expression of the index ``n``.

    PyTensor's ``gammaincinv`` has no gradient in its first argument, so the derivative comes
    from the implicit-function theorem applied to ``P(2n, b) = 1/2``:
    ``db/dn = -2 (dP/da) / (dP/db)``.
    """
    if not isinstance(n, Variable):
        return np.asarray(sersic_bn_numpy(n), dtype=pytensor.config.floatX)
    n = pt.as_tensor_variable(n)
    a = 2.0 * n
    b = disconnected_grad(pt.gammaincinv(a, 0.5))
    a_fixed = disconnected_grad(a)
    dp_da = pytensor.grad(pt.sum(pt.gammainc(a_fixed, b)), a_fixed)
    dp_db = pt.exp((a - 1.0) * pt.log(b) - b - pt.gammaln(a))
    db_dn = disconnected_grad(-2.0 * dp_da / dp_db)
    return b + db_dn * (n - disconnected_grad(n))


def sersic_numpy(x, y, x0, y0, r_eff, n, amplitude, q=1.0, phi=0.0):
    """Numpy twin of :class:`Sersic` (for tests and quick looks)."""
    from pymc_tracers.grid import elliptical_radius_numpy

    r = elliptical_radius_numpy(x, y, x0, y0, q, phi)
    bn = sersic_bn_numpy(n)
    return amplitude * np.exp(-bn * ((r / r_eff) ** (1.0 / n) - 1.0))


class LightProfile:
    """Base class for surface-brightness profiles."""

    def surface_brightness(self, x, y):
        """Surface brightness at sky positions ``x, y`` (arcsec) as a PyTensor tensor."""
        raise NotImplementedError

    def parameters(self) -> dict:
        """The profile's parameters by name (numbers, arrays or variables)."""
        if hasattr(self, "profiles"):
            return {
                f"{i}.{k}": v
                for i, p in enumerate(self.profiles)
                for k, v in p.parameters().items()
            }
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __add__(self, other):
        return CompositeLight([self, other])


class CompositeLight(LightProfile):
    """The sum of several light profiles (e.g. bulge + disc sharing one tracer)."""

    def __init__(self, profiles):
        flat = []
        for p in profiles:
            flat.extend(p.profiles if isinstance(p, CompositeLight) else [p])
        if not all(isinstance(p, LightProfile) for p in flat):
            raise TypeError("only light profiles can be added together")
        self.profiles = flat

    def surface_brightness(self, x, y):
        return sum(p.surface_brightness(x, y) for p in self.profiles)

    def __repr__(self):
        return " + ".join(repr(p) for p in self.profiles)


class Sersic(LightProfile):
    """Elliptical Sersic profile ``I(r) = amplitude * exp(-b_n [(r / r_eff)^(1/n) - 1])``.

    Parameters
    ----------
    x0, y0 : float or variable
        Centre in arcsec.
    r_eff : float or variable
        Half-light radius along the semi-major axis in arcsec (the GALFIT convention).
    n : float or variable
        Sersic index (0.5 Gaussian, 1 exponential disc, 4 de Vaucouleurs).
    amplitude : float or variable
        Surface brightness at ``r_eff`` (e.g. flux / arcsec^2).
    q : float or variable
        Axis ratio b/a, in (0, 1].
    phi : float or variable
        Position angle of the major axis in radians, counter-clockwise from +x.

    Notes
    -----
    ``b_n`` is exact, ``gammaincinv(2n, 0.5)``, with a gradient in ``n``.
    """

    def __init__(self, *, x0=0.0, y0=0.0, r_eff=1.0, n=1.0, amplitude=1.0, q=1.0, phi=0.0):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.r_eff = _check_number(r_eff, "r_eff", positive=True)
        self.n = _check_number(n, "n", positive=True)
        self.amplitude = _check_number(amplitude, "amplitude")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")

    def surface_brightness(self, x, y):
        r = elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi)
        n, r_eff = per_galaxy(self.n), per_galaxy(self.r_eff)
        bn = per_galaxy(sersic_bn(self.n))
        return per_galaxy(self.amplitude) * pt.exp(-bn * ((r / r_eff) ** (1.0 / n) - 1.0))

    def total_flux(self):
        """Analytic total flux (amplitude units x arcsec^2)."""
        n = self.n
        bn = sersic_bn(n)
        lib = pt if isinstance(bn, Variable) or isinstance(self.amplitude, Variable) else np
        gamma = pt.gamma if lib is pt else special.gamma
        return (
            2.0
            * np.pi
            * self.q
            * self.r_eff**2
            * self.amplitude
            * n
            * lib.exp(bn)
            * gamma(2.0 * n)
            / bn ** (2.0 * n)
        )

    def __repr__(self):
        return (
            f"Sersic(x0={self.x0!r}, y0={self.y0!r}, r_eff={self.r_eff!r}, n={self.n!r}, "
            f"amplitude={self.amplitude!r}, q={self.q!r}, phi={self.phi!r})"
        )


class Exponential(Sersic):
    """Exponential disc: a :class:`Sersic` profile with ``n = 1``.

    Parameters are those of :class:`Sersic` without ``n``; ``r_eff`` is the half-light radius
    (1.678 scale lengths).
    """

    def __init__(self, *, x0=0.0, y0=0.0, r_eff=1.0, amplitude=1.0, q=1.0, phi=0.0):
        super().__init__(x0=x0, y0=y0, r_eff=r_eff, n=1.0, amplitude=amplitude, q=q, phi=phi)

    def __repr__(self):
        return (
            f"Exponential(x0={self.x0!r}, y0={self.y0!r}, r_eff={self.r_eff!r}, "
            f"amplitude={self.amplitude!r}, q={self.q!r}, phi={self.phi!r})"
        )


class Gaussian(LightProfile):
    """Elliptical Gaussian ``I = amplitude * exp(-r^2 / (2 sigma^2))``.

    Parameters
    ----------
    x0, y0 : float or variable
        Centre in arcsec.
    sigma : float or variable
        Standard deviation along the major axis in arcsec.
    amplitude : float or variable
        Central surface brightness.
    q, phi : float or variable
        Axis ratio and position angle (radians, counter-clockwise from +x).
    """

    def __init__(self, *, x0=0.0, y0=0.0, sigma=1.0, amplitude=1.0, q=1.0, phi=0.0):
        self.x0 = _check_number(x0, "x0")
        self.y0 = _check_number(y0, "y0")
        self.sigma = _check_number(sigma, "sigma", positive=True)
        self.amplitude = _check_number(amplitude, "amplitude")
        self.q = _check_number(q, "q", positive=True, upper=1.0)
        self.phi = _check_number(phi, "phi")

    def surface_brightness(self, x, y):
        r = elliptical_radius(x, y, self.x0, self.y0, self.q, self.phi)
        return per_galaxy(self.amplitude) * pt.exp(-0.5 * (r / per_galaxy(self.sigma)) ** 2)

    def total_flux(self):
        """Analytic total flux (amplitude units x arcsec^2)."""
        return 2.0 * np.pi * self.q * self.sigma**2 * self.amplitude

    def __repr__(self):
        return (
            f"Gaussian(x0={self.x0!r}, y0={self.y0!r}, sigma={self.sigma!r}, "
            f"amplitude={self.amplitude!r}, q={self.q!r}, phi={self.phi!r})"
        )
