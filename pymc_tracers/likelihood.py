"""Likelihoods for light images and tracer maps, as observed PyMC random variables.

Each likelihood flattens the usable pixels of a map into one observed vector with a labelled
dimension ``"<name>_pixel"`` (its coordinate is the flat pixel index), so that ArviZ gets a
pointwise ``log_likelihood`` group for LOO/WAIC. Masked pixels and pixels whose data or error
are NaN are left out (never imputed, never propagated as NaN).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = [
    "SigmaMap",
    "HeteroskedasticNoise",
    "tracer_likelihood",
    "image_likelihood",
    "likelihoods_of",
    "paper_noise_coefficients",
]

logger = logging.getLogger("pymc_tracers")

#: model -> list of LikelihoodRecord, so results can rebuild model maps and residuals
_REGISTRY: "weakref.WeakKeyDictionary[pm.Model, list[LikelihoodRecord]]" = weakref.WeakKeyDictionary()


@dataclass
class LikelihoodRecord:
    """What a likelihood observed: enough to draw model, data and residual maps later."""

    name: str
    kind: str  # "tracer" or "image"
    model_map: Variable
    data: np.ndarray
    sigma: object  # ndarray, or a tensor when the noise model has free parameters
    used: np.ndarray  # boolean map of the pixels in the likelihood
    extra: dict = field(default_factory=dict)

    @property
    def n_used(self) -> int:
        return int(self.used.sum())


def likelihoods_of(model: pm.Model) -> list[LikelihoodRecord]:
    """The pymc_tracers likelihoods registered in ``model``, in creation order."""
    return list(_REGISTRY.get(model, []))


class SigmaMap:
    """Known per-pixel 1-sigma errors (same units as the data)."""

    def __init__(self, sigma):
        self.sigma = np.asarray(sigma, dtype=float)

    def map(self, shape):
        if self.sigma.ndim == 0:
            return np.full(shape, float(self.sigma))
        return self.sigma


class HeteroskedasticNoise:
    """The paper's metallicity noise model, ``sigma_Z^2 = c1 + c2 / I``.

    A calibration floor ``c1`` (dex^2) plus a line-flux term ``c2 / I`` (dex^2 x light units)
    that grows where the light ``I`` is faint (Metha et al. 2024, appendix A).

    Parameters
    ----------
    c1, c2 : float or PyMC variable
        Fixed coefficients or free parameters (then give them positive priors).
    light : ndarray or tensor, shape of the map
        The light that sets the S/N: the observed light image (array) or the model image
        (tensor), in the same units used to calibrate ``c2``.
    """

    def __init__(self, c1, c2, light):
        for value, name in [(c1, "c1"), (c2, "c2")]:
            if not isinstance(value, Variable) and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 (dex^2); got {value!r}")
        self.c1, self.c2, self.light = c1, c2, light

    def map(self, shape):
        light = self.light
        if isinstance(light, Variable) or any(isinstance(c, Variable) for c in (self.c1, self.c2)):
            light_t = pt.as_tensor_variable(light)
            return pt.sqrt(self.c1 + self.c2 / pt.maximum(light_t, 1e-300))
        light = np.asarray(light, dtype=float)
        if light.shape != tuple(shape):
            raise ValueError(f"light has shape {light.shape}; the tracer map has shape {tuple(shape)}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(self.c1 + self.c2 / np.where(light > 0, light, np.nan))


def paper_noise_coefficients(light_center, light_reff, var_center=0.01, var_reff=0.02):
    """Coefficients ``(c1, c2)`` giving ``sigma_Z^2`` = ``var_center`` at the centre and
    ``var_reff`` at one effective radius (dex^2), as in the paper's simulations."""
    c2 = (var_reff - var_center) / (1.0 / light_reff - 1.0 / light_center)
    c1 = var_center - c2 / light_center
    return float(c1), float(c2)


def _static_shape(model_map) -> tuple:
    shape = tuple(model_map.type.shape)
    if len(shape) != 2 or None in shape:
        raise ValueError(f"the model map must be a 2-D tensor of known shape; got {shape}")
    return shape


def _usable_pixels(name, data, sigma_numeric, mask, shape) -> np.ndarray:
    data = np.asarray(data, dtype=float)
    if data.shape != shape:
        raise ValueError(f"data for {name!r} has shape {data.shape}; the model map has shape {shape}")
    used = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != shape:
            raise ValueError(f"mask for {name!r} has shape {mask.shape}; the model map has shape {shape}")
        if mask.dtype != bool:
            raise ValueError(f"mask for {name!r} must be boolean (True = use the pixel); got {mask.dtype}")
        used &= mask
    if sigma_numeric is not None:
        if sigma_numeric.shape != shape:
            raise ValueError(
                f"sigma for {name!r} has shape {sigma_numeric.shape}; the model map has shape {shape}"
            )
        bad = used & np.isfinite(sigma_numeric) & ~(sigma_numeric > 0)
        if bad.any():
            raise ValueError(
                f"sigma for {name!r} has {bad.sum()} non-positive values in used pixels; errors must "
                "be > 0 (mask those pixels or set them to NaN to leave them out)"
            )
        used &= np.isfinite(sigma_numeric)
    if not np.isfinite(data).any():
        raise ValueError(f"data for {name!r} is all NaN: there is nothing to fit")
    if not used.any():
        raise ValueError(
            f"no usable pixels for {name!r}: the mask and the NaNs in data/sigma hide every pixel"
        )
    return used


def _observe(name, kind, model_map, data, noise, mask, nu, model):
    model = pm.modelcontext(model)
    shape = _static_shape(pt.as_tensor_variable(model_map))
    sigma = noise.map(shape)
    sigma_numeric = None if isinstance(sigma, Variable) else np.asarray(sigma, dtype=float)
    used = _usable_pixels(name, data, sigma_numeric, mask, shape)
    index = np.flatnonzero(used)
    dim = f"{name}_pixel"
    model.add_coord(dim, index)
    mu = pt.as_tensor_variable(model_map).reshape((-1,))[index]
    # data and known errors live in pm.Data so a compiled model can be refitted to new maps
    observed = pm.Data(f"{name}_observed", np.asarray(data, dtype=float).ravel()[index], dims=dim)
    if sigma_numeric is not None:
        sd = pm.Data(f"{name}_sigma", sigma_numeric.ravel()[index], dims=dim)
    else:
        sd = pt.reshape(sigma, (-1,))[index]
    if nu is None:
        rv = pm.Normal(name, mu=mu, sigma=sd, observed=observed, dims=dim)
    else:
        rv = pm.StudentT(name, nu=nu, mu=mu, sigma=sd, observed=observed, dims=dim)
    record = LikelihoodRecord(name, kind, pt.as_tensor_variable(model_map), np.asarray(data, float),
                              sigma, used, {"nu": nu})
    _REGISTRY.setdefault(model, []).append(record)
    logger.info("%s: %d of %d pixels used in the likelihood", name, used.sum(), used.size)
    return rv


def _noise_from(name, sigma, noise):
    if (sigma is None) == (noise is None):
        raise ValueError(f"give exactly one of sigma= (an error map) or noise= (a noise model) for {name!r}")
    return SigmaMap(sigma) if noise is None else noise


def tracer_likelihood(name, tracer_map, data, *, sigma=None, noise=None, mask=None, nu=None, model=None):
    """Compare a model tracer map with an observed one.

    Parameters
    ----------
    name : str
        Name of the observed variable (e.g. ``"metallicity"``).
    tracer_map : tensor, shape (ny, nx)
        The model map from :func:`pymc_tracers.observe`.
    data : ndarray, shape (ny, nx)
        Observed tracer map in the same units (dex, km/s, ...). NaN pixels are left out.
    sigma : ndarray or float, optional
        1-sigma error per pixel, same units. NaN pixels are left out; values <= 0 raise.
    noise : HeteroskedasticNoise or SigmaMap, optional
        A noise model instead of ``sigma``.
    mask : bool ndarray, optional
        True for pixels to use.
    nu : float or variable, optional
        Degrees of freedom of a Student-t likelihood (robust to outliers); Gaussian if None.

    Returns
    -------
    The observed random variable, with dims ``("<name>_pixel",)``.
    """
    return _observe(name, "tracer", tracer_map, data, _noise_from(name, sigma, noise), mask, nu, model)


def image_likelihood(name, image, data, *, sigma=None, noise=None, mask=None, nu=None, model=None):
    """Compare a model light image with an observed one (flux per pixel).

    Parameters are those of :func:`tracer_likelihood`; ``image`` is the first output of
    :func:`pymc_tracers.observe`, in flux per pixel.
    """
    return _observe(name, "image", image, data, _noise_from(name, sigma, noise), mask, nu, model)
