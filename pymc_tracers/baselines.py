"""The classical analyses the paper compares against (no PSF, no pixel integration)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pymc_tracers.grid import PixelGrid

__all__ = ["WLSGradient", "annulus_medians", "radial_percentiles", "wls_gradient"]


@dataclass(frozen=True)
class WLSGradient:
    """Result of a weighted least-squares fit ``Z = central + gradient * r``.

    ``central`` in the map's units, ``gradient`` per arcsec, with 1-sigma errors from the
    inverse-variance weights (the formal errors, which ignore PSF-correlated pixels).
    """

    central: float
    gradient: float
    central_err: float
    gradient_err: float
    covariance: np.ndarray
    n_pixels: int


def _used_pixels(tracer_map, error_map, mask, shape=None):
    """Pixels the baselines use: finite data (and errors), inside the boolean ``mask``.

    The same policy as the likelihoods: NaN leaves a pixel out, an infinite value is refused
    (it is not a missing value), and the mask must be boolean (True = use the pixel).
    """
    tracer_map = np.asarray(tracer_map, dtype=float)
    if tracer_map.ndim != 2:
        raise ValueError(f"tracer_map must be a 2-D map; got shape {tracer_map.shape}")
    if shape is not None and tracer_map.shape != tuple(shape):
        raise ValueError(
            f"tracer_map has shape {tracer_map.shape}; the grid has shape {tuple(shape)}"
        )
    arrays = {"tracer_map": tracer_map}
    if error_map is not None:
        error = np.asarray(error_map, dtype=float)
        try:
            arrays["error_map"] = np.broadcast_to(error, tracer_map.shape)
        except ValueError:
            raise ValueError(
                f"error_map has shape {error.shape}; the map has shape {tracer_map.shape}"
            ) from None
    used = np.ones(tracer_map.shape, dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != tracer_map.shape:
            raise ValueError(f"mask has shape {mask.shape}; the map has shape {tracer_map.shape}")
        if mask.dtype != bool:
            raise ValueError(
                f"mask must be a boolean array (True = use the pixel); got dtype {mask.dtype}. "
                "Convert it explicitly, e.g. mask=(flags == 0)"
            )
        used &= mask
    for name, values in arrays.items():
        infinite = used & np.isinf(values)
        if infinite.any():
            raise ValueError(
                f"{name} has {infinite.sum()} infinite values in used pixels; set them to NaN "
                "(or mask them) to leave them out"
            )
        used &= ~np.isnan(values)
    if error_map is not None:
        bad = used & ~(arrays["error_map"] > 0)
        if bad.any():
            raise ValueError(f"error_map has {bad.sum()} non-positive values in used pixels")
    return tracer_map, arrays.get("error_map"), used


def radial_percentiles(values, radius, edges, *, used=None, min_count=1, q=(16, 50, 84)):
    """Percentiles of ``values`` in radial bins (annuli).

    Parameters
    ----------
    values, radius : ndarray, same shape
        The map and the (elliptical) radius of each pixel (arcsec, or pixels).
    edges : ndarray, shape (n_bins + 1,)
        Increasing bin edges in the units of ``radius``. A bin holds ``edges[k] <= r <
        edges[k + 1]``; the last bin also holds ``r == edges[-1]``.
    used : bool ndarray, optional
        Pixels to include (default: all).
    min_count : int
        Bins with fewer pixels give NaN.
    q : sequence of float
        Percentiles (0-100).

    Returns
    -------
    stats : ndarray, shape (len(q), n_bins)
    count : ndarray of int, shape (n_bins,)
        Pixels per bin.
    """
    values, radius = np.asarray(values, dtype=float), np.asarray(radius, dtype=float)
    used = np.ones(values.shape, bool) if used is None else np.asarray(used, dtype=bool)
    edges = np.asarray(edges, dtype=float)
    n_bins = len(edges) - 1
    stats = np.full((len(q), n_bins), np.nan)
    count = np.zeros(n_bins, dtype=int)
    for k in range(n_bins):
        upper = radius <= edges[k + 1] if k == n_bins - 1 else radius < edges[k + 1]
        inside = used & (radius >= edges[k]) & upper
        count[k] = inside.sum()
        if count[k] >= max(min_count, 1):
            stats[:, k] = np.percentile(values[inside], q)
    return stats, count


def wls_gradient(
    tracer_map, error_map, grid: PixelGrid, *, x0=0.0, y0=0.0, q=1.0, phi=0.0, mask=None
):
    """Inverse-variance weighted least-squares linear gradient, ignoring the PSF.

    Parameters
    ----------
    tracer_map, error_map : ndarray, shape ``grid.shape``
        Observed tracer (e.g. dex) and its 1-sigma errors. NaN pixels are left out.
    grid : PixelGrid
        Gives the pixel-centre radii (arcsec).
    x0, y0, q, phi : float
        Centre (arcsec), axis ratio and major-axis angle (radians) defining the elliptical
        radius.
    mask : bool ndarray, optional
        True for pixels to use (must be boolean).

    Raises
    ------
    ValueError
        For shapes that do not match the grid, a non-boolean mask, infinite values or
        non-positive errors in used pixels, or fewer than 3 usable pixels.
    """
    tracer_map, error_map, used = _used_pixels(tracer_map, error_map, mask, grid.shape)
    if used.sum() < 3:
        raise ValueError(
            f"only {used.sum()} usable pixels (finite data and errors inside the mask); a "
            "gradient needs at least 3"
        )
    r = grid.radius(x0, y0, q, phi)[used]
    z = tracer_map[used]
    w = 1.0 / error_map[used] ** 2
    design = np.stack([np.ones_like(r), r], axis=1)
    fisher = design.T @ (design * w[:, None])
    covariance = np.linalg.inv(fisher)
    central, gradient = covariance @ (design.T @ (w * z))
    return WLSGradient(
        float(central),
        float(gradient),
        float(np.sqrt(covariance[0, 0])),
        float(np.sqrt(covariance[1, 1])),
        covariance,
        int(used.sum()),
    )


def annulus_medians(
    tracer_map,
    grid: PixelGrid,
    *,
    n_annuli=5,
    r_max=None,
    x0=0.0,
    y0=0.0,
    q=1.0,
    phi=0.0,
    mask=None,
):
    """Median tracer and 16th/84th percentiles in equal-width elliptical annuli.

    Parameters
    ----------
    tracer_map : ndarray, shape ``grid.shape``
        NaN pixels are left out.
    grid : PixelGrid
    n_annuli : int
    r_max : float, optional
        Outer edge of the last annulus in arcsec (default: the largest radius of a used pixel).
    x0, y0, q, phi : float
        Centre (arcsec), axis ratio and major-axis angle (radians) of the ellipses.
    mask : bool ndarray, optional
        True for pixels to use (must be boolean).

    Returns
    -------
    dict with ``edges`` (arcsec, n_annuli + 1), ``centres``, ``median``, ``p16``, ``p84``
    and ``count`` (pixels per annulus); empty annuli give NaN.
    """
    tracer_map, _, used = _used_pixels(tracer_map, None, mask, grid.shape)
    if not used.any():
        raise ValueError("no usable pixels: the map is NaN (or masked) everywhere")
    r = grid.radius(x0, y0, q, phi)
    if r_max is None:
        r_max = float(r[used].max())
    edges = np.linspace(0.0, r_max, int(n_annuli) + 1)
    (p16, median, p84), count = radial_percentiles(tracer_map, r, edges, used=used)
    return {
        "edges": edges,
        "centres": 0.5 * (edges[1:] + edges[:-1]),
        "median": median,
        "p16": p16,
        "p84": p84,
        "count": count,
    }
