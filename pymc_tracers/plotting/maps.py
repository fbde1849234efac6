"""Maps of one galaxy: data, model, residual and radial profile panels, with sky arrows."""

from __future__ import annotations

import numpy as np
from matplotlib import patheffects
from matplotlib.figure import Figure

from pymc_tracers.baselines import radial_percentiles

__all__ = ["north_east_arrows", "plot_maps"]


def plot_maps(
    maps,
    *,
    name="tracer",
    unit=None,
    grid=None,
    frame=None,
    center=(0.0, 0.0),
    n_bins=12,
    cmap="viridis",
    vmin=None,
    vmax=None,
    figsize=(14, 3.6),
    normalized_residual=True,
    truth=None,
):
    """Four panels: data, median model, residual (data - model) and the radial profile.

    Parameters
    ----------
    maps : dict
        ``data``, ``model``, ``residual`` and ``used`` arrays (see ``Result.maps``); ``sigma``
        optional.
    name : str
        The tracer's name (titles and the profile's axis).
    unit : str or astropy unit, optional
        The tracer's unit (e.g. ``"dex"``), on the colour bars and the profile's axis.
    grid : PixelGrid, optional
        Gives axes in arcsec and radii; pixel units otherwise.
    frame : SkyFrame, optional
        The maps' sky frame: north and east arrows on the map panels.
    center : (float, float)
        Centre (arcsec) of the radial profile.
    vmin, vmax : float, optional
        Colour range of the data panel (default: the used pixels' 2-98th percentiles); the
        model panel has its own range (its 1-99th percentiles), so noisy data pixels do not
        saturate it and the model's structure stays visible.
    normalized_residual : bool
        Show ``(data - model) / sigma`` (default; errors vary across the map) instead of
        ``data - model`` in the data's units.
    truth : (radii, values), optional
        The true radial profile of a simulated galaxy (radii in the axes' unit), drawn as a
        dashed line on the profile panel.

    Returns
    -------
    matplotlib.figure.Figure
        A figure that needs no pyplot backend (``fig.savefig`` works anywhere).
    """
    data, model, residual, used = maps["data"], maps["model"], maps["residual"], maps["used"]
    shown = np.where(used, data, np.nan)
    if grid is not None:
        extent = grid.extent
        r = grid.radius(*center)
        axis_unit = "arcsec"
    else:
        ny, nx = data.shape
        extent = (-0.5, nx - 0.5, -0.5, ny - 0.5)
        yy, xx = np.mgrid[:ny, :nx]
        r = np.hypot(xx - (nx - 1) / 2 - center[0], yy - (ny - 1) / 2 - center[1])
        axis_unit = "pixel"
    unit_text = _unit_label(unit)
    value_label = f"{name} [{unit_text}]" if unit_text else name
    sigma = maps.get("sigma")
    data_range = np.nanpercentile(shown, [2, 98])
    data_range = (
        data_range[0] if vmin is None else vmin,
        data_range[1] if vmax is None else vmax,
    )
    model_range = np.nanpercentile(np.where(used, model, np.nan), [1, 99])
    if normalized_residual and sigma is not None:
        residual = residual / sigma
        span, residual_title, residual_label = 4.0, "(data - model) / sigma", "sigma"
    else:
        span = np.nanpercentile(np.abs(residual), 99) or 1.0
        residual_title, residual_label = "residual (data - model)", unit_text

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 4)
    panels = [
        (axes[0], shown, f"{name}: data", data_range, cmap, unit_text),
        (axes[1], model, "model (posterior median)", model_range, cmap, unit_text),
        (axes[2], residual, residual_title, (-span, span), "RdBu_r", residual_label),
    ]
    for ax, image, title, (low, high), colours, label in panels:
        im = ax.imshow(
            image,
            origin="lower",
            extent=extent,
            vmin=low,
            vmax=high,
            cmap=colours,
            interpolation="nearest",
        )
        ax.set_title(title)
        ax.set_xlabel(f"x [{axis_unit}]")
        ax.set_ylabel(f"y [{axis_unit}]")
        fig.colorbar(im, ax=ax, shrink=0.85, label=label)
        if frame is not None:
            north_east_arrows(ax, frame)
    _radial_panel(axes[3], data, model, used, r, n_bins, axis_unit, value_label, truth)
    return fig


def _unit_label(unit) -> str:
    if unit is None:
        return ""
    return unit if isinstance(unit, str) else unit.to_string()


def _radial_panel(ax, data, model, used, r, n_bins, axis_unit, value_label, truth):
    edges = np.linspace(0, np.nanmax(r[used]), n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    stats = np.stack(
        [
            radial_percentiles(values, r, edges, used=used, min_count=3)[0]
            for values in (data, model)
        ]
    )
    ax.scatter(r[used], data[used], s=1, color="0.7", alpha=0.3, rasterized=True, label="pixels")
    ax.errorbar(
        centres,
        stats[0, 1],
        yerr=[stats[0, 1] - stats[0, 0], stats[0, 2] - stats[0, 1]],
        fmt="o",
        color="k",
        label="data median (16-84%)",
    )
    ax.plot(centres, stats[1, 1], color="C1", lw=2, label="model median")
    if truth is not None:
        radii, values = truth
        ax.plot(radii, values, "k--", lw=1.2, label="truth")
    ax.set_xlabel(f"radius [{axis_unit}]")
    ax.set_ylabel(value_label)
    # the y-range follows the binned 16-84% bands and the model, not single noisy pixels
    low = np.nanmin([np.nanmin(stats[0, 0]), np.nanmin(stats[1, 1])])
    high = np.nanmax([np.nanmax(stats[0, 2]), np.nanmax(stats[1, 1])])
    ax.set_ylim(low - 0.15 * (high - low), high + 0.15 * (high - low))
    ax.legend(fontsize="small")
    ax.set_title("radial profile")


def north_east_arrows(ax, frame, *, size=0.15, corner=(0.82, 0.18)):
    """Draw north (N) and east (E) arrows on a map panel whose axes are a grid's pixels.

    Parameters
    ----------
    ax : matplotlib Axes
        A panel drawn with ``origin="lower"`` (x along columns, y along rows).
    frame : SkyFrame
        Gives ``north_angle`` (radians counter-clockwise from +x) and ``east_sign``.
    size : float
        Arrow length as a fraction of the panel.
    corner : (float, float)
        Where the arrows start, in axes fractions.
    """
    north = frame.north_angle
    east = north + frame.east_sign * np.pi / 2
    outline = [patheffects.withStroke(linewidth=3, foreground="w")]
    for angle, label in ((north, "N"), (east, "E")):
        dx, dy = size * np.cos(angle), size * np.sin(angle)
        ax.annotate(
            "",
            xy=(corner[0] + dx, corner[1] + dy),
            xytext=corner,
            xycoords="axes fraction",
            arrowprops={"arrowstyle": "->", "color": "k", "lw": 1.5, "path_effects": outline},
        )
        ax.text(
            corner[0] + 1.35 * dx,
            corner[1] + 1.35 * dy,
            label,
            transform=ax.transAxes,
            color="k",
            ha="center",
            va="center",
            fontsize="small",
            fontweight="bold",
            path_effects=outline,
        )
