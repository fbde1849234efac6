"""Bin maps (Voronoi or segmentation bins): checks, bin indices and bin averages."""

from __future__ import annotations

import numpy as np

__all__ = ["bin_average_numpy", "bin_ids", "bin_values", "validate_bin_map"]


def validate_bin_map(bin_map, *, shape=None, source: str = "bin map") -> np.ndarray:
    """Check a bin-index map and return it as ``int64``.

    Parameters
    ----------
    bin_map : array_like, 2-D
        One bin index (>= 0) per pixel, ``-1`` for pixels in no bin. Float arrays are accepted
        when every value is an integer (FITS files often store them as floats).
    shape : tuple, optional
        Required shape.

    Raises
    ------
    ValueError
        NaN/inf, non-integer values, indices below -1, no bins at all, or a wrong shape.
    """
    a = np.asarray(bin_map)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{source} has shape {a.shape}; the maps have shape {tuple(shape)}")
    if a.dtype == bool or a.dtype.kind not in "iuf":
        raise ValueError(f"{source} must hold integer bin indices; got dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"{source} has {int((~np.isfinite(a)).sum())} NaN/inf values; use -1 for pixels "
                "in no bin"
            )
        if np.any(a != np.round(a)):
            raise ValueError(f"{source} has non-integer values; bin indices must be integers")
    a = a.astype(np.int64)
    if np.any(a < -1):
        raise ValueError(
            f"{source} has indices below -1 (min {int(a.min())}); use -1 for pixels in no bin"
        )
    if not np.any(a >= 0):
        raise ValueError(f"{source} has no bins: every pixel is -1")
    return a


def bin_ids(bin_map) -> np.ndarray:
    """The sorted bin indices (>= 0) present in a bin map: the order of per-bin arrays."""
    a = np.asarray(bin_map)
    return np.unique(a[a >= 0])


def bin_average_numpy(weighted, light, bin_map) -> np.ndarray:
    """Light-weighted tracer of each bin: ``sum_bin(K * I Z) / sum_bin(K * I)``.

    The numpy reference for binned likelihoods: the model value of a bin is the ratio of the
    *sums* over its pixels, not the mean of the pixel ratios.

    Parameters
    ----------
    weighted : ndarray, shape (..., ny, nx)
        The PSF-convolved, pixel-integrated ``I * Z`` (``I * 10**Z`` for log averaging).
    light : ndarray, shape (..., ny, nx)
        The PSF-convolved, pixel-integrated light ``I``.
    bin_map : ndarray of int, shape (ny, nx)
        Bin index per pixel, ``-1`` for none.

    Returns
    -------
    ndarray, shape (..., n_bins)
        One value per bin, in the order of :func:`bin_ids`.
    """
    weighted = np.asarray(weighted, dtype=float)
    light = np.asarray(light, dtype=float)
    bins = validate_bin_map(bin_map)
    if weighted.shape != light.shape or weighted.shape[-2:] != bins.shape:
        raise ValueError(
            f"shapes differ: weighted {weighted.shape}, light {light.shape}, bins {bins.shape}"
        )
    ids = bin_ids(bins)
    inside = bins >= 0
    index = np.searchsorted(ids, bins[inside])
    lead = weighted.shape[:-2]
    w = weighted.reshape((-1, bins.size))[:, inside.ravel()]
    lum = light.reshape((-1, bins.size))[:, inside.ravel()]
    top = np.stack([np.bincount(index, weights=row, minlength=ids.size) for row in w])
    bottom = np.stack([np.bincount(index, weights=row, minlength=ids.size) for row in lum])
    if np.any(bottom == 0):
        empty = ids[np.any(bottom == 0, axis=0)]
        raise ValueError(f"bins {empty.tolist()[:10]} hold no light; the ratio is undefined")
    return (top / bottom).reshape((*lead, ids.size))


def bin_values(values, bin_map, *, mask=None, rtol: float = 1e-6, source: str = "map"):
    """Per-bin values of a binned map (each pixel holding its bin's value).

    Parameters
    ----------
    values : ndarray, shape (ny, nx)
        A binned data or error map.
    bin_map : ndarray of int
        Bin index per pixel (``-1``: none).
    mask : ndarray of bool, optional
        ``True`` = use the pixel; unused pixels (and NaNs) are ignored.
    rtol : float
        Pixels of one bin must agree to this relative tolerance.

    Returns
    -------
    ids, per_bin : ndarray
        The bin indices (as :func:`bin_ids`) and one value per bin; NaN for bins with no usable
        pixel.

    Raises
    ------
    ValueError
        When the pixels of a bin disagree (the map is not binned by this bin map).
    """
    values = np.asarray(values, dtype=float)
    bins = validate_bin_map(bin_map, shape=values.shape)
    ids = bin_ids(bins)
    use = np.isfinite(values) & (bins >= 0)
    if mask is not None:
        use &= np.asarray(mask, dtype=bool)
    index = np.searchsorted(ids, bins[use])
    v = values[use]
    count = np.bincount(index, minlength=ids.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(index, weights=v, minlength=ids.size) / count
    spread = np.zeros(ids.size)
    np.maximum.at(spread, index, np.abs(v - mean[index]))
    scale = np.maximum(np.abs(mean), np.finfo(float).tiny)
    bad = count > 0
    bad &= spread > rtol * scale
    if bad.any():
        raise ValueError(
            f"{source}: the pixels of {int(bad.sum())} bin(s) (e.g. bin {int(ids[bad][0])}) hold "
            "different values; the map is not binned by this bin map"
        )
    return ids, np.where(count > 0, mean, np.nan)
