"""Likelihoods for light images and tracer maps, as observed PyMC random variables.

Each likelihood flattens the usable pixels of a map, or of a batch of maps ``(N, ny, nx)``,
into one observed vector with a labelled dimension ``"<name>_pixel"`` whose coordinate is the
flat index into the full data shape, so that ArviZ gets a pointwise ``log_likelihood`` group for
LOO/WAIC, at pixel level or summed per galaxy (``np.unravel_index(index, shape)[0]``). Masked
pixels and pixels whose data or error are NaN are left out (never imputed, never propagated as
NaN); infinite values are refused.

Nothing is kept in module-level state: :func:`likelihoods_of` reads everything back from the
model (its coordinates and observed variables), so it survives ``pm.do`` and ``clone_model``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable

from pymc_tracers.forward import Observation

__all__ = [
    "SigmaMap",
    "HeteroskedasticNoise",
    "tracer_likelihood",
    "image_likelihood",
    "likelihoods_of",
    "LikelihoodRecord",
    "paper_noise_coefficients",
]

logger = logging.getLogger("pymc_tracers")

#: model coordinate listing the pymc_tracers likelihoods as ``"name|kind|shape"`` labels
LIKELIHOODS_COORD = "pmt_likelihoods"
KINDS = ("tracer", "image")
#: a likelihood given an Observation names the whole model map ``<name>_model_map``
MODEL_MAP_SUFFIX = "_model_map"


@dataclass
class LikelihoodRecord:
    """What a likelihood observed: enough to draw model, data and residual maps later.

    Attributes
    ----------
    name, kind : str
        The observed variable's name; ``"tracer"`` or ``"image"``.
    shape : tuple
        Full data shape, ``(ny, nx)`` or ``(N, ny, nx)``.
    model_map : tensor
        The model at every pixel, full shape (NaN at pixels outside the likelihood when the
        full map cannot be recovered from the graph).
    data : ndarray
        Observed values, full shape, NaN outside the likelihood.
    sigma : ndarray or tensor
        1-sigma errors, full shape (NaN outside the likelihood); a tensor when the noise model
        has free parameters.
    used : ndarray of bool
        Pixels in the likelihood.
    nu : float, tensor or None
        Student-t degrees of freedom, or None for a Gaussian likelihood.
    """

    name: str
    kind: str
    shape: tuple
    model_map: Variable
    data: np.ndarray
    sigma: object
    used: np.ndarray
    nu: object = None
    extra: dict = field(default_factory=dict)

    @property
    def n_used(self) -> int:
        return int(self.used.sum())

    @property
    def batched(self) -> bool:
        return len(self.shape) == 3


def _evaluate_fixed(variable):
    """The value of a tensor with no random or free inputs, else None."""
    if isinstance(variable, Constant):
        return np.asarray(variable.data)
    if hasattr(variable, "get_value"):
        return np.asarray(variable.get_value())
    if any(
        v.owner is None and not isinstance(v, Constant) and not hasattr(v, "get_value")
        for v in ancestors([variable])
    ):
        return None
    if any(
        v.owner is not None and isinstance(v.owner.op, RandomVariable)
        for v in ancestors([variable])
    ):
        return None
    try:
        return np.asarray(variable.eval())
    except Exception:  # depends on something that cannot be evaluated alone
        return None


def _scatter(values, index, shape):
    """Put the used-pixel values back into a full-shape array (NaN elsewhere)."""
    full = np.full(int(np.prod(shape)), np.nan)
    full[index] = values
    return full.reshape(shape)


def _scatter_tensor(values, index, shape):
    full = pt.fill(pt.zeros(int(np.prod(shape))), np.nan)
    return pt.set_subtensor(full[index], values).reshape(shape)


def _model_at_pixels(model_map, shape, index):
    """The model map at the used pixels (flat ``index`` into ``shape``).

    An :class:`~pymc_tracers.forward.Observation` passed as the model map lets its renderer
    give those pixels alone (the linear and radial paths read a compact per-pixel basis);
    any other map is computed whole and indexed.
    """
    if isinstance(model_map, Observation):
        return model_map.renderer.at_pixels(index, shape)
    return pt.specify_shape(model_map, shape).reshape((-1,))[index]


def _full_model_map(mu, index, shape):
    """The full model map behind ``mu`` (the model map at the used pixels), where the graph
    holds it; otherwise ``mu`` scattered into a map that is NaN at unused pixels."""
    node = mu.owner
    if node is not None and node.inputs and node.inputs[0].owner is not None:
        flat = node.inputs[0]
        candidate = flat.owner.inputs[0]
        if (
            flat.ndim == 1
            and candidate.ndim == len(shape)
            and type(flat.owner.op).__name__ == "Reshape"
        ):
            return candidate
    return _scatter_tensor(mu, index, shape)


def likelihoods_of(model: pm.Model) -> list[LikelihoodRecord]:
    """The pymc_tracers likelihoods of ``model``, in creation order, read from the model.

    Works on models transformed by ``pm.do`` or ``clone_model``: it needs only the model's
    coordinates (``pmt_likelihoods`` and ``<name>_pixel``) and its observed variables.
    """
    records = []
    for label in model.coords.get(LIKELIHOODS_COORD) or ():
        name, kind, shape_text = str(label).split("|")
        if name not in model.named_vars:
            continue
        shape = tuple(int(n) for n in shape_text.split("x"))
        rv = model[name]
        index = np.asarray(model.coords[f"{name}_pixel"], dtype=int)
        params = rv.owner.op.dist_params(rv.owner)
        nu, mu, sd = params if len(params) == 3 else (None, *params)
        observed = _evaluate_fixed(model.rvs_to_values[rv])
        sigma_values = _evaluate_fixed(sd)
        sigma = (
            _scatter(np.broadcast_to(sigma_values, index.shape), index, shape)
            if sigma_values is not None
            else _scatter_tensor(sd, index, shape)
        )
        used = np.zeros(int(np.prod(shape)), dtype=bool)
        used[index] = True
        nu_value = None if nu is None else _evaluate_fixed(nu)
        whole = model.named_vars.get(f"{name}{MODEL_MAP_SUFFIX}")
        records.append(
            LikelihoodRecord(
                name=name,
                kind=kind,
                shape=shape,
                model_map=_full_model_map(mu, index, shape) if whole is None else whole,
                data=_scatter(observed, index, shape),
                sigma=sigma,
                used=used.reshape(shape),
                nu=nu if nu_value is None else float(nu_value),
            )
        )
    return records


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
            raise ValueError(
                f"light has shape {light.shape}; the tracer map has shape {tuple(shape)}"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(self.c1 + self.c2 / np.where(light > 0, light, np.nan))


def paper_noise_coefficients(light_center, light_reff, var_center=0.01, var_reff=0.02):
    """Coefficients ``(c1, c2)`` giving ``sigma_Z^2`` = ``var_center`` at the centre and
    ``var_reff`` at one effective radius (dex^2), as in the paper's simulations."""
    c2 = (var_reff - var_center) / (1.0 / light_reff - 1.0 / light_center)
    c1 = var_center - c2 / light_center
    return float(c1), float(c2)


def _model_shape(name, model_map) -> tuple:
    shape = tuple(model_map.type.shape)
    if len(shape) not in (2, 3) or None in shape[-2:]:
        raise ValueError(
            f"the model map for {name!r} must be (ny, nx) or (N, ny, nx) with known (ny, nx); "
            f"got static shape {shape}"
        )
    return shape


def _as_float_array(name, what, value, shape=None):
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} for {name!r} must be numeric; got {type(value).__name__}"
        ) from None
    return array


def _where(index_array, shape):
    """Human-readable location of the first offending pixel: galaxy (if batched), row, column."""
    position = np.unravel_index(int(index_array[0]), shape)
    labels = ("galaxy", "row", "column")[-len(shape) :]
    return ", ".join(f"{label} {p}" for label, p in zip(labels, position))


def _usable_pixels(name, data, sigma_numeric, mask, model_shape):
    """The boolean map of pixels to use, after checking shapes and values.

    Returns ``(data, used)`` with data of the full shape.
    """
    data = _as_float_array(name, "data", data)
    batched = len(model_shape) == 3
    if (
        data.ndim != len(model_shape)
        or data.shape[-2:] != model_shape[-2:]
        or (batched and model_shape[0] is not None and data.shape[0] != model_shape[0])
    ):
        expected = "(N, ny, nx)" if batched else "(ny, nx)"
        raise ValueError(
            f"data for {name!r} has shape {data.shape}; the model map has shape "
            f"{tuple(model_shape)} (expected {expected}"
            + (", one map per galaxy along the leading axis)" if batched else ")")
        )
    shape = data.shape
    infinite = np.isinf(data)
    if infinite.any():
        where = np.flatnonzero(infinite)
        raise ValueError(
            f"data for {name!r} has {where.size} infinite values "
            f"(first at {_where(where, shape)}); "
            "set bad pixels to NaN or mask them to leave them out"
        )
    used = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise ValueError(
                f"mask for {name!r} must be boolean (True = use the pixel); got {mask.dtype}"
            )
        try:
            mask = np.broadcast_to(mask, shape)
        except ValueError:
            raise ValueError(
                f"mask for {name!r} has shape {mask.shape}; the data have shape {shape}"
            ) from None
        used &= mask
    if sigma_numeric is not None:
        try:
            sigma_numeric = np.broadcast_to(sigma_numeric, shape)
        except ValueError:
            raise ValueError(
                f"sigma for {name!r} has shape {sigma_numeric.shape}; the data have shape {shape}"
            ) from None
        bad = used & np.isinf(sigma_numeric)
        if bad.any():
            raise ValueError(
                f"sigma for {name!r} is infinite in {bad.sum()} used pixels (first at "
                f"{_where(np.flatnonzero(bad), shape)}); an infinite error carries no information: "
                "mask those pixels or set them to NaN"
            )
        bad = used & np.isfinite(sigma_numeric) & ~(sigma_numeric > 0)
        if bad.any():
            raise ValueError(
                f"sigma for {name!r} has {bad.sum()} non-positive values in used pixels (first "
                f"at {_where(np.flatnonzero(bad), shape)}); errors must be > 0 (mask those "
                "pixels or set them to NaN to leave them out)"
            )
        used &= np.isfinite(sigma_numeric)
    if not np.isfinite(data).any():
        raise ValueError(f"data for {name!r} is all NaN: there is nothing to fit")
    if batched:
        empty = np.flatnonzero(~used.reshape(shape[0], -1).any(axis=1))
        if empty.size:
            raise ValueError(
                f"no usable pixels for {name!r} in galaxy {', '.join(map(str, empty[:10]))}: "
                "its mask and NaNs in data/sigma hide every pixel; drop the galaxy from the batch"
            )
    if not used.any():
        raise ValueError(
            f"no usable pixels for {name!r}: the mask and the NaNs in data/sigma hide every pixel"
        )
    return data, used


def _check_nu(name, nu):
    if nu is None or isinstance(nu, Variable):
        return nu
    value = float(nu)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(
            f"nu for {name!r} must be a positive number of degrees of freedom (e.g. 4 for a "
            f"robust Student-t likelihood); got {nu!r}"
        )
    return value


def _observe(name, kind, model_map, data, noise, mask, nu, model):
    model = pm.modelcontext(model)
    observation = model_map if isinstance(model_map, Observation) else None
    if observation is not None:
        model_map = observation.tracer_map if kind == "tracer" else observation.image
    model_map = pt.as_tensor_variable(model_map)
    model_shape = _model_shape(name, model_map)
    nu = _check_nu(name, nu)
    sigma = noise.map(np.shape(data))
    sigma_numeric = None if isinstance(sigma, Variable) else np.asarray(sigma, dtype=float)
    data, used = _usable_pixels(name, data, sigma_numeric, mask, model_shape)
    shape = data.shape
    index = np.flatnonzero(used)
    dim = f"{name}_pixel"
    model.add_coord(dim, index)
    labels = list(model.coords.get(LIKELIHOODS_COORD) or ())
    labels.append(f"{name}|{kind}|{'x'.join(map(str, shape))}")
    if LIKELIHOODS_COORD in model.coords:
        model.set_dim(LIKELIHOODS_COORD, len(labels), coord_values=labels)
    else:
        model.add_coord(LIKELIHOODS_COORD, labels)
    if observation is not None and kind == "tracer":
        mu = _model_at_pixels(observation, shape, index)
        # the whole map for plots and Result.maps (not in the likelihood, not stored per draw)
        whole = pt.specify_shape(model_map, shape).copy(name=f"{name}{MODEL_MAP_SUFFIX}")
        model.add_named_variable(whole)
    else:
        mu = _model_at_pixels(model_map, shape, index)
    # data and known errors live in pm.Data so a compiled model can be refitted to new maps
    observed = pm.Data(f"{name}_observed", data.ravel()[index], dims=dim)
    if sigma_numeric is not None:
        sd = pm.Data(
            f"{name}_sigma", np.broadcast_to(sigma_numeric, shape).ravel()[index], dims=dim
        )
    else:
        sd = pt.broadcast_to(sigma, shape).reshape((-1,))[index]
    if nu is None:
        rv = pm.Normal(name, mu=mu, sigma=sd, observed=observed, dims=dim)
    else:
        rv = pm.StudentT(name, nu=nu, mu=mu, sigma=sd, observed=observed, dims=dim)
    logger.info("%s: %d of %d pixels used in the likelihood", name, used.sum(), used.size)
    return rv


def _noise_from(name, sigma, noise):
    if (sigma is None) == (noise is None):
        raise ValueError(
            f"give exactly one of sigma= (an error map) or noise= (a noise model) for {name!r}"
        )
    return SigmaMap(sigma) if noise is None else noise


def tracer_likelihood(
    name, tracer_map, data, *, sigma=None, noise=None, mask=None, nu=None, model=None
):
    """Compare a model tracer map with an observed one.

    Parameters
    ----------
    name : str
        Name of the observed variable (e.g. ``"metallicity"``).
    tracer_map : Observation or tensor, shape (ny, nx) or (N, ny, nx)
        The model map from :func:`pymc_tracers.observe` (a batch of N galaxies: one map
        each), or the :class:`~pymc_tracers.Observation` itself, which lets the linear and
        radial renderers compute only the pixels the likelihood uses (much cheaper for large
        batches with few used pixels per stamp).
    data : ndarray, shape of the model map
        Observed tracer map(s) in the same units (dex, km/s, ...). NaN pixels are left out
        (pad stamps of different sizes to a common one with NaN); infinite values raise.
    sigma : ndarray or float, optional
        1-sigma error per pixel, same units, broadcastable to the data. NaN pixels are left
        out; values <= 0 or infinite in used pixels raise.
    noise : HeteroskedasticNoise or SigmaMap, optional
        A noise model instead of ``sigma``.
    mask : bool ndarray, optional
        True for pixels to use; broadcastable to the data (one mask for all galaxies, or one
        per galaxy).
    nu : float or variable, optional
        Degrees of freedom (> 0) of a Student-t likelihood (robust to outliers); Gaussian if
        None.

    Returns
    -------
    TensorVariable
        The observed random variable, with dims ``("<name>_pixel",)``; the coordinate is the
        flat index of each pixel in the data array (``np.unravel_index(index, data.shape)``
        gives the galaxy, row and column).

    Raises
    ------
    ValueError
        For shapes that do not match the model map, infinite data or errors, non-positive
        errors, a non-boolean mask, ``nu <= 0``, or a galaxy with no usable pixel.
    """
    return _observe(
        name, "tracer", tracer_map, data, _noise_from(name, sigma, noise), mask, nu, model
    )


def image_likelihood(name, image, data, *, sigma=None, noise=None, mask=None, nu=None, model=None):
    """Compare a model light image with an observed one (flux per pixel).

    Parameters are those of :func:`tracer_likelihood`; ``image`` is the first output of
    :func:`pymc_tracers.observe` (or the Observation), in flux per pixel.
    """
    return _observe(name, "image", image, data, _noise_from(name, sigma, noise), mask, nu, model)
