"""The classical analyses the paper compares against (no PSF, no pixel integration)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pymc_tracers.grid import PixelGrid

__all__ = ["WLSGradient", "wls_gradient", "annulus_medians"]


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


def _used_pixels(tracer_map, error_map, mask):
    tracer_map = np.asarray(tracer_map, dtype=float)
    error_map = np.broadcast_to(np.asarray(error_map, dtype=float), tracer_map.shape)
    used = np.isfinite(tracer_map) & np.isfinite(error_map)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tracer_map.shape:
            raise ValueError(f"mask has shape {mask.shape}; the map has shape {tracer_map.shape}")
        used &= mask
    bad = used & ~(error_map > 0)
    if bad.any():
        raise ValueError(f"error_map has {bad.sum()} non-positive values in used pixels")
    if used.sum() < 3:
        raise ValueError("fewer than 3 usable pixels: nothing to fit")
    return tracer_map, error_map, used


def wls_gradient(tracer_map, error_map, grid: PixelGrid, *, x0=0.0, y0=0.0, q=1.0, phi=0.0, mask=None):
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
        True for pixels to use.
    """
    tracer_map, error_map, used = _used_pixels(tracer_map, error_map, mask)
    if tracer_map.shape != grid.shape:
        raise ValueError(f"tracer_map has shape {tracer_map.shape}; the grid has shape {grid.shape}")
    r = grid.radius(x0, y0, q, phi)[used]
    z = tracer_map[used]
    w = 1.0 / error_map[used] ** 2
    design = np.stack([np.ones_like(r), r], axis=1)
    fisher = design.T @ (design * w[:, None])
    covariance = np.linalg.inv(fisher)
    central, gradient = covariance @ (design.T @ (w * z))
    return WLSGradient(
        float(central), float(gradient), float(np.sqrt(covariance[0, 0])),
        float(np.sqrt(covariance[1, 1])), covariance, int(used.sum()),
    )


def annulus_medians(tracer_map, grid: PixelGrid, *, n_annuli=5, r_max=None, x0=0.0, y0=0.0, q=1.0, phi=0.0, mask=None):
    """Median tracer and 16th/84th percentiles in equal-width elliptical annuli.

    Returns
    -------
    dict with ``edges`` (arcsec, n_annuli + 1), ``centres``, ``median``, ``p16``, ``p84``
    and ``count`` (pixels per annulus); empty annuli give NaN.
    """
    tracer_map = np.asarray(tracer_map, dtype=float)
    used = np.isfinite(tracer_map) if mask is None else np.isfinite(tracer_map) & np.asarray(mask, bool)
    r = grid.radius(x0, y0, q, phi)
    if r_max is None:
        r_max = float(r[used].max())
    edges = np.linspace(0.0, r_max, int(n_annuli) + 1)
    median, p16, p84, count = (np.full(n_annuli, np.nan) for _ in range(4))
    for k in range(n_annuli):
        inside = used & (r >= edges[k]) & (r < edges[k + 1] if k < n_annuli - 1 else r <= edges[k + 1])
        count[k] = inside.sum()
        if inside.any():
            p16[k], median[k], p84[k] = np.percentile(tracer_map[inside], [16, 50, 84])
    return dict(edges=edges, centres=0.5 * (edges[1:] + edges[:-1]), median=median, p16=p16, p84=p84, count=count)
