"""Lensed galaxies: image-plane maps with critical curves and magnification, the source
plane with caustics, and residuals traced back to the source plane."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

__all__ = ["add_critical_curves", "plot_lensed_maps", "source_plane_grid"]


def add_critical_curves(ax, curves, **style):
    """Draw curves (``(K, 2)`` arrays in arcsec) on an axis, e.g. those of
    :func:`~pymc_tracers.lensing.critical_curves` or :func:`~pymc_tracers.lensing.caustics`."""
    options = dict(color="white", lw=1.0, alpha=0.9)
    options.update(style)
    for curve in curves:
        ax.plot(curve[:, 0], curve[:, 1], **options)


def source_plane_grid(lens, grid, used=None, *, pixel_scale=None, margin=0.2):
    """A :class:`~pymc_tracers.PixelGrid` over the source-plane positions of a grid's pixels.

    Parameters
    ----------
    lens : LensModel (fixed)
    grid : PixelGrid
        The image-plane data grid.
    used : bool array, optional
        Only these pixels (e.g. where the galaxy is detected) set the extent.
    pixel_scale : float, optional
        Source-plane pixel (arcsec); default a third of the data pixel (lensing magnifies).
    margin : float
        Extra border (arcsec).
    """
    from pymc_tracers.grid import PixelGrid
    from pymc_tracers.lensing import source_positions

    bx, by = source_positions(lens, grid.x, grid.y)
    if used is not None:
        bx, by = bx[used], by[used]
    scale = pixel_scale or grid.pixel_scale / 3
    x_range = (bx.min() - margin, bx.max() + margin)
    y_range = (by.min() - margin, by.max() + margin)
    shape = (
        int(np.ceil((y_range[1] - y_range[0]) / scale)),
        int(np.ceil((x_range[1] - x_range[0]) / scale)),
    )
    center = (0.5 * sum(x_range), 0.5 * sum(y_range))
    return PixelGrid(shape, scale, 1, center)


def plot_lensed_maps(
    lens,
    grid,
    *,
    image_map,
    source_map=None,
    source_grid=None,
    residual=None,
    used=None,
    name="tracer",
    unit=None,
    cmap="viridis",
    figsize=(17, 3.8),
):
    """Four panels of a lensed galaxy.

    1. the image-plane map (data or model) with the critical curves;
    2. ``log10 |mu|`` (magnification) with the critical curves;
    3. the source-plane model (``source_map`` on ``source_grid``) with the caustics;
    4. the residual of each used pixel, placed at its pixel centre's source-plane position
       (traced back through the lens), with the caustics.

    Parameters
    ----------
    lens : LensModel (fixed)
    grid : PixelGrid
        The image-plane grid of ``image_map``.
    image_map : array (ny, nx)
    source_map : array, optional
        The intrinsic source-plane tracer on ``source_grid`` (e.g. the profile evaluated at
        fitted values).
    source_grid : PixelGrid, optional
        Default :func:`source_plane_grid`.
    residual : array (ny, nx), optional
        Data minus model (or normalised).
    used : bool array (ny, nx), optional
        Pixels shown (default: finite values of ``image_map``).
    name, unit : str
        Labels (e.g. ``"12+log(O/H)"``, ``"dex"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from pymc_tracers.lensing import caustics, critical_curves, magnification, source_positions

    used = np.isfinite(image_map) if used is None else np.asarray(used, dtype=bool)
    label = f"{name} [{unit}]" if unit else name
    curves = critical_curves(lens, grid)
    source_curves = caustics(lens, curves)
    if source_grid is None:
        source_grid = source_plane_grid(lens, grid, used)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 4)

    ax = axes[0]
    shown = np.where(used, image_map, np.nan)
    im = ax.imshow(shown, origin="lower", extent=grid.extent, cmap=cmap)
    add_critical_curves(ax, curves, color="k")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title("image plane, critical curves")

    ax = axes[1]
    mu = magnification(lens, grid.x, grid.y)
    with np.errstate(divide="ignore"):
        im = ax.imshow(np.log10(np.abs(mu)), origin="lower", extent=grid.extent, cmap="magma",
                       vmin=-0.5, vmax=2.0)  # fmt: skip
    add_critical_curves(ax, curves, color="cyan")
    fig.colorbar(im, ax=ax, label="log10 |magnification|")
    ax.set_title("magnification")

    ax = axes[2]
    if source_map is not None:
        im = ax.imshow(source_map, origin="lower", extent=source_grid.extent, cmap=cmap)
        fig.colorbar(im, ax=ax, label=label)
    add_critical_curves(ax, source_curves, color="k")
    ax.set_xlim(*source_grid.extent[:2])
    ax.set_ylim(*source_grid.extent[2:])
    ax.set_title("source plane: model, caustics")

    ax = axes[3]
    if residual is not None:
        bx, by = source_positions(lens, grid.x, grid.y)
        values = np.where(used, residual, np.nan)
        keep = np.isfinite(values)
        span = np.nanmax(np.abs(values[keep])) if keep.any() else 1.0
        points = ax.scatter(bx[keep], by[keep], c=values[keep], s=6, cmap="RdBu_r",
                            norm=TwoSlopeNorm(0.0, -span, span))  # fmt: skip
        fig.colorbar(points, ax=ax, label="residual")
    add_critical_curves(ax, source_curves, color="k")
    ax.set_xlim(*source_grid.extent[:2])
    ax.set_ylim(*source_grid.extent[2:])
    ax.set_title("residual traced to the source plane")
    for ax in axes:
        ax.set_xlabel("x [arcsec]")
        ax.set_aspect("equal")
    axes[0].set_ylabel("y [arcsec]")
    return fig
