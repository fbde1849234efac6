"""Likelihoods for binned tracer maps (Voronoi bins of MUSE/MaNGA maps, segmentation bins).

An IFU pipeline that bins spaxels adds the spectra of a bin's pixels and measures the tracer
once per bin, so the tracer of a bin is light-weighted over the bin, exactly as a pixel's is
over its sub-pixels. The model value of bin ``b`` is the ratio of *sums* (not the mean of
pixel ratios)::

    Z_b = sum_{pixels in b} bin(K * I f(Z)) / sum_{pixels in b} bin(K * I),   then f^-1

with ``f`` the identity (``tracer_scale="linear"``) or ``10**Z`` (``"log"``), using the
binned, PSF-convolved sums that :func:`pymc_tracers.observe` returns
(``Observation.weighted_sum`` and ``Observation.light_sum``). The likelihood has one term per
bin: an observed variable with the dimension ``"<name>_bin"`` whose coordinate is the bin id.

Fitting binned data as if every pixel were independent (each pixel carrying its bin's value)
is wrong twice: the bin's value is compared with pixel values it was never averaged like, and
each measurement is counted once per pixel (errors shrink by sqrt(pixels per bin)).
``tests/model/test_binned.py`` shows both.

Nothing is stored outside the model: :func:`binned_likelihoods_of` rebuilds each binned
likelihood's record (model, data, sigma and used-pixel maps) from the model's coordinates and
``pm.Data``, so :meth:`pymc_tracers.Result.from_model` can draw its maps.
"""

from __future__ import annotations

import logging

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pymc_tracers.io import bin_ids, bin_values, validate_bin_map
from pymc_tracers.model.likelihood import LikelihoodRecord, _evaluate_fixed

__all__ = [
    "BINNED_LIKELIHOODS_COORD",
    "bin_sums",
    "binned_likelihoods_of",
    "binned_tracer",
    "binned_tracer_likelihood",
    "binned_likelihood",
    "per_bin",
]

logger = logging.getLogger("pymc_tracers")

#: Model coordinate listing the binned likelihoods as ``"name|ny x nx"`` labels.
BINNED_LIKELIHOODS_COORD = "pmt_binned_likelihoods"


def _bin_positions(bin_map, ids):
    """For each pixel, the position of its bin in ``ids`` (``-1``: in no bin of ``ids``)."""
    flat = np.asarray(bin_map).ravel()
    position = np.searchsorted(ids, flat)
    position = np.clip(position, 0, max(len(ids) - 1, 0))
    inside = (flat >= 0) & (np.asarray(ids)[position] == flat) if len(ids) else flat < -1
    return np.where(inside, position, -1)


def _spread(per_bin_values, position, shape):
    """Per-bin values -> a map repeating each bin's value in its pixels (NaN elsewhere)."""
    full = np.full(position.size, np.nan)
    inside = position >= 0
    full[inside] = np.asarray(per_bin_values)[position[inside]]
    return full.reshape(shape)


def bin_sums(values, bin_map, *, ids=None):
    """Sum a map (tensor ``(..., ny, nx)``) over the pixels of each bin.

    A fixed segment sum: ``zeros(..., n_bins)[..., positions].inc(values)``, whose gradient is
    a gather; its cost is one pass over the pixels in bins.

    Parameters
    ----------
    values : tensor, shape (..., ny, nx)
    bin_map : ndarray of int, shape (ny, nx)
        Bin index per pixel, ``-1`` for none.
    ids : ndarray of int, optional
        The bins to sum, in this order (default :func:`pymc_tracers.io.bin_ids`); pixels of
        other bins are left out.

    Returns
    -------
    tensor, shape (..., n_bins)
    """
    bins = validate_bin_map(bin_map)
    ids = bin_ids(bins) if ids is None else np.asarray(ids, dtype=np.int64)
    values = pt.as_tensor_variable(values)
    position = _bin_positions(bins, ids)
    pixels = np.flatnonzero(position >= 0)
    flat = values.reshape((*values.shape[:-2], -1))[..., pixels]
    zeros = pt.zeros((*values.shape[:-2], len(ids)), dtype=values.dtype)
    return pt.inc_subtensor(zeros[..., position[pixels]], flat)


def binned_tracer(observation, bin_map, *, ids=None):
    """Model tracer value of each bin: ``sum_bin weighted_sum / sum_bin light_sum``.

    Parameters
    ----------
    observation : pymc_tracers.Observation
        From :func:`pymc_tracers.observe`; uses its ``weighted_sum``, ``light_sum`` and
        ``tracer_scale``.
    bin_map : ndarray of int, shape (ny, nx)
        Bin index per pixel, ``-1`` for pixels in no bin.
    ids : ndarray of int, optional
        Which bins, in which order (default: every bin, sorted).

    Returns
    -------
    tensor, shape (n_bins,) or (N, n_bins)
        In the tracer's units (dex for ``tracer_scale="log"``: ``log10`` of the light-weighted
        mean of ``10**Z``).
    """
    for attribute in ("weighted_sum", "light_sum", "tracer_scale"):
        if not hasattr(observation, attribute):
            raise TypeError(
                "binned likelihoods need the Observation returned by pmt.observe (it carries the "
                f"binned sums); got {type(observation).__name__}"
            )
    light = bin_sums(pt.maximum(observation.light_sum, 0.0), bin_map, ids=ids)
    weighted = bin_sums(observation.weighted_sum, bin_map, ids=ids)
    tiny = np.finfo(np.float64).tiny
    if observation.tracer_scale == "log":
        return pt.log10(pt.maximum(weighted, tiny) / pt.maximum(light, tiny))
    return weighted / pt.maximum(light, tiny)


def per_bin(name, what, values, bin_map, ids, *, mask=None):
    """One value per bin (in the order of ``ids``) from a number, a per-bin array or a map.

    ``values`` may be a number (every bin), a 1-D array indexed by bin id (``values[b]`` for
    bin ``b``; length > the largest id) or a map of the bin map's shape that is constant within
    each bin (the usual FITS layout). NaN marks a bin without a measurement.
    """
    array = np.asarray(values, dtype=float)
    bins = np.asarray(bin_map)
    if array.ndim == 0:
        return np.full(len(ids), float(array))
    if array.ndim == 1:
        if array.size <= int(ids.max()):
            raise ValueError(
                f"{what} for {name!r} has {array.size} values, but the bin map has bin ids up to "
                f"{int(ids.max())}: a 1-D {what} array is indexed by bin id (give one value per "
                "id, NaN for unused ids) or pass a map of the bin map's shape"
            )
        return array[ids]
    if array.shape == bins.shape:
        found, values_by_id = bin_values(array, bins, mask=mask, source=f"{what} of {name!r}")
        return values_by_id[np.searchsorted(found, ids)]
    raise ValueError(
        f"{what} for {name!r} has shape {array.shape}; give one value per bin id (1-D) or a map "
        f"of the bin map's shape {bins.shape}"
    )


def binned_tracer_likelihood(
    name, observation, data, bin_map, *, sigma, mask=None, nu=None, model=None
):
    """Compare binned tracer data with the light-weighted model value of each bin.

    Parameters
    ----------
    name : str
        Name of the observed variable; its dimension is ``"<name>_bin"`` (coordinate: bin id).
    observation : pymc_tracers.Observation
        From :func:`pymc_tracers.observe` on the data's pixel grid (one galaxy, ``(ny, nx)``).
    data : ndarray
        The binned tracer (dex, km/s, ...): a 1-D array indexed by bin id, or a map of the bin
        map's shape holding each bin's value in its pixels (checked to be constant per bin).
        NaN bins are left out.
    bin_map : ndarray of int, shape (ny, nx)
        Bin index of each pixel, ``-1`` for pixels in no bin (e.g. from vorbin's
        ``voronoi_2d_binning`` or a segmentation map).
    sigma : float or ndarray
        1-sigma error of each bin's value, same units and forms as ``data``. Must be finite and
        > 0 for every bin with data (NaN leaves the bin out).
    mask : ndarray of bool, shape (ny, nx), optional
        ``True`` = pixel usable. Only used to read per-bin values from data/sigma maps (masked
        pixels are ignored there); a bin's model value always sums over *all* of its pixels,
        as the pipeline summed all of their spectra.
    nu : float or variable, optional
        Student-t degrees of freedom (> 0); Gaussian when None.

    Returns
    -------
    TensorVariable
        The observed random variable, dims ``("<name>_bin",)``.

    Raises
    ------
    ValueError
        Invalid bin map or shapes, a data/sigma map that is not constant within bins, infinite
        data, non-positive or infinite sigma, a batched observation, or no usable bin.
    """
    model = pm.modelcontext(model)
    light_sum = getattr(observation, "light_sum", None)
    if light_sum is None:
        binned_tracer(observation, np.zeros((1, 1), dtype=int))  # raises the TypeError
    shape = tuple(light_sum.type.shape)
    if len(shape) != 2 or None in shape:
        raise ValueError(
            f"binned likelihood {name!r} needs one galaxy's (ny, nx) model; got an observation of "
            f"shape {shape} (fit galaxies with binned data one at a time)"
        )
    return binned_likelihood(
        name,
        shape,
        lambda ids: binned_tracer(observation, bin_map, ids=ids),
        data,
        bin_map,
        sigma=sigma,
        mask=mask,
        nu=nu,
        model=model,
    )


def binned_likelihood(
    name, shape, model_of_bins, data, bin_map, *, sigma, mask=None, nu=None, model=None
):
    """A likelihood with one term per bin, for any model value of a bin.

    Parameters are those of :func:`binned_tracer_likelihood`, with ``shape`` the ``(ny, nx)``
    of the maps and ``model_of_bins(ids)`` the model value of the bins ``ids`` (a tensor
    ``(n_bins,)``), e.g. a binned velocity or dispersion
    (:mod:`pymc_tracers.model.kinematic_likelihood`).
    """
    model = pm.modelcontext(model)
    bins = validate_bin_map(bin_map, shape=shape, source=f"bin map of {name!r}")
    ids = bin_ids(bins)
    values = per_bin(name, "data", data, bins, ids, mask=mask)
    if np.isinf(values).any():
        raise ValueError(
            f"data for {name!r} are infinite in bin {int(ids[np.isinf(values)][0])}; set bins "
            "without a measurement to NaN"
        )
    if isinstance(sigma, Variable):
        raise TypeError(f"sigma for {name!r} must be numbers (one per bin), not a variable")
    errors = per_bin(name, "sigma", sigma, bins, ids, mask=mask)
    has_data = np.isfinite(values)
    bad = has_data & (np.isinf(errors) | (np.isfinite(errors) & ~(errors > 0)))
    if bad.any():
        raise ValueError(
            f"sigma for {name!r} is not finite and > 0 in {int(bad.sum())} bin(s) with data "
            f"(first: bin {int(ids[bad][0])}, sigma {errors[bad][0]}); errors must be > 0 (set "
            "the bin's data to NaN to leave it out)"
        )
    used = has_data & np.isfinite(errors)
    if not used.any():
        raise ValueError(f"no usable bins for {name!r}: every bin's data or sigma is NaN")
    if nu is not None and not isinstance(nu, Variable) and not (float(nu) > 0):
        raise ValueError(f"nu for {name!r} must be > 0 (degrees of freedom); got {nu!r}")
    used_ids = ids[used]
    dim = f"{name}_bin"
    model.add_coord(dim, used_ids)
    labels = list(model.coords.get(BINNED_LIKELIHOODS_COORD) or ())
    labels.append(f"{name}|{shape[0]}x{shape[1]}")
    if BINNED_LIKELIHOODS_COORD in model.coords:  # public API: the dim grows by one label
        model.set_dim(BINNED_LIKELIHOODS_COORD, len(labels), coord_values=labels)
    else:
        model.add_coord(BINNED_LIKELIHOODS_COORD, labels)
    pm.Data(f"{name}_bin_map", bins)
    mu = model_of_bins(used_ids)
    observed = pm.Data(f"{name}_observed", values[used], dims=dim)
    sd = pm.Data(f"{name}_sigma", errors[used], dims=dim)
    if nu is None:
        rv = pm.Normal(name, mu=mu, sigma=sd, observed=observed, dims=dim)
    else:
        rv = pm.StudentT(name, nu=nu, mu=mu, sigma=sd, observed=observed, dims=dim)
    logger.info(
        "%s: %d of %d bins used (%d pixels in them)",
        name,
        used.sum(),
        ids.size,
        int(np.isin(bins, used_ids).sum()),
    )
    return rv


def binned_likelihoods_of(model) -> list[LikelihoodRecord]:
    """Records (model, data, sigma, used maps) of the binned likelihoods of ``model``.

    The maps repeat each bin's value in its pixels; pixels outside the used bins are NaN
    (``used`` False). Pass them to :meth:`pymc_tracers.Result.from_model` (``records=``) for
    median model maps, residuals and plots.
    """
    records = []
    for label in model.coords.get(BINNED_LIKELIHOODS_COORD) or ():
        name, shape_text = str(label).split("|")
        if name not in model.named_vars:
            continue
        shape = tuple(int(n) for n in shape_text.split("x"))
        rv = model[name]
        ids = np.asarray(model.coords[f"{name}_bin"], dtype=np.int64)
        bins = np.asarray(model[f"{name}_bin_map"].get_value())
        position = _bin_positions(bins, ids)
        inside = position >= 0
        params = rv.owner.op.dist_params(rv.owner)
        nu, mu = (params[0], params[1]) if len(params) == 3 else (None, params[0])
        observed = np.asarray(model[f"{name}_observed"].get_value(), dtype=float)
        sigma = np.asarray(model[f"{name}_sigma"].get_value(), dtype=float)

        padded = pt.concatenate([mu, pt.as_tensor_variable(np.array([np.nan]))])
        model_map = padded[np.where(inside, position, len(ids))].reshape(shape)
        nu_value = None if nu is None else _evaluate_fixed(nu)
        if nu is not None:
            nu_value = nu if nu_value is None else float(nu_value)
        records.append(
            LikelihoodRecord(
                name=name,
                kind="tracer",
                shape=shape,
                model_map=model_map,
                data=_spread(observed, position, shape),
                sigma=_spread(sigma, position, shape),
                used=inside.reshape(shape),
                nu=nu_value,
                extra={"binned": True, "n_bins": len(ids)},
            )
        )
    return records
