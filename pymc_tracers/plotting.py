"""Figures: data / model / residual maps with a radial profile."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_maps"]


def plot_maps(maps, *, name="tracer", grid=None, center=(0.0, 0.0), n_bins=12, cmap="viridis",
              vmin=None, vmax=None, figsize=(13, 3.4), normalized_residual=True):
    """Four panels: data, median model, residual (data - model) and the radial profile.

    Parameters
    ----------
    maps : dict
        ``data``, ``model``, ``residual`` and ``used`` arrays (see ``Result.maps``).
    grid : PixelGrid, optional
        Gives axes in arcsec and radii; pixel units otherwise.
    center : (float, float)
        Centre (arcsec) of the radial profile.
    vmin, vmax : float, optional
        Colour range of the data and model panels (default: the model's 1-99th percentiles
        widened by the error of the best-measured pixels).
    normalized_residual : bool
        Show ``(data - model) / sigma`` (default; errors vary across the map) instead of
        ``data - model`` in the data's units.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    data, model, residual, used = maps["data"], maps["model"], maps["residual"], maps["used"]
    shown = np.where(used, data, np.nan)
    if grid is not None:
        extent = grid.extent
        r = grid.radius(*center)
        unit = "arcsec"
    else:
        ny, nx = data.shape
        extent = (-0.5, nx - 0.5, -0.5, ny - 0.5)
        yy, xx = np.mgrid[:ny, :nx]
        r = np.hypot(xx - (nx - 1) / 2 - center[0], yy - (ny - 1) / 2 - center[1])
        unit = "pixel"
    lo, hi = np.nanpercentile(np.where(used, model, np.nan), [1, 99])
    sigma = maps.get("sigma")
    widen = float(np.nanpercentile(np.where(used, sigma, np.nan), 10)) if sigma is not None else 0.0
    lo, hi = (lo - widen if vmin is None else vmin), (hi + widen if vmax is None else vmax)
    if normalized_residual and sigma is not None:
        residual = residual / sigma
        span, residual_title = 4.0, "(data - model) / sigma"
    else:
        span, residual_title = np.nanpercentile(np.abs(residual), 99) or 1.0, "residual (data - model)"

    fig, axes = plt.subplots(1, 4, figsize=figsize, layout="constrained")
    for ax, image, title in [(axes[0], shown, "data"), (axes[1], model, "model (posterior median)")]:
        im = ax.imshow(image, origin="lower", extent=extent, vmin=lo, vmax=hi, cmap=cmap,
                       interpolation="nearest")
        ax.set_title(f"{name}: {title}")
        ax.set_xlabel(f"x [{unit}]")
    axes[0].set_ylabel(f"y [{unit}]")
    fig.colorbar(im, ax=axes[:2], shrink=0.8)
    im = axes[2].imshow(residual, origin="lower", extent=extent, vmin=-span, vmax=span, cmap="RdBu_r",
                        interpolation="nearest")
    axes[2].set_title(residual_title)
    axes[2].set_xlabel(f"x [{unit}]")
    fig.colorbar(im, ax=axes[2], shrink=0.8)

    edges = np.linspace(0, np.nanmax(r[used]), n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    stats = np.full((2, 3, n_bins), np.nan)
    for k in range(n_bins):
        inside = used & (r >= edges[k]) & (r < edges[k + 1])
        if inside.sum() >= 3:
            stats[0, :, k] = np.percentile(data[inside], [16, 50, 84])
            stats[1, :, k] = np.percentile(model[inside], [16, 50, 84])
    ax = axes[3]
    ax.scatter(r[used], data[used], s=1, color="0.7", alpha=0.3, rasterized=True, label="pixels")
    ax.errorbar(centres, stats[0, 1], yerr=[stats[0, 1] - stats[0, 0], stats[0, 2] - stats[0, 1]],
                fmt="o", color="k", label="data median (16-84%)")
    ax.plot(centres, stats[1, 1], color="C1", lw=2, label="model median")
    ax.set_xlabel(f"radius [{unit}]")
    ax.set_ylabel(name)
    # the y-range follows the binned 16-84% bands and the model, not single noisy pixels
    low = np.nanmin([np.nanmin(stats[0, 0]), np.nanmin(stats[1, 1])])
    high = np.nanmax([np.nanmax(stats[0, 2]), np.nanmax(stats[1, 1])])
    ax.set_ylim(low - 0.15 * (high - low), high + 0.15 * (high - low))
    ax.legend(fontsize="small")
    ax.set_title("radial profile")
    return fig
