"""Kinematic figures: velocity and dispersion maps with residuals, the rotation curve and
dispersion profile with their posterior bands, and position-velocity diagrams.

Like the other figures of the package, each function returns a
:class:`matplotlib.figure.Figure` made without pyplot.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["major_axis_cut", "plot_kinematic_maps", "plot_rotation_curve", "plot_position_velocity"]


def major_axis_cut(values, grid, *, phi, x0=0.0, y0=0.0, width=None):
    """Pixels within ``width`` (arcsec) of the major axis: their offset along it and values.

    Parameters
    ----------
    values : ndarray, shape grid.shape
        A map (e.g. velocity in km/s).
    grid : PixelGrid
    phi : float
        Kinematic position angle (radians, counter-clockwise from +x, towards the receding
        side): positive offsets are on the receding side.
    x0, y0 : float
        Kinematic centre (arcsec).
    width : float, optional
        Half-width of the pseudo-slit (arcsec); one pixel by default.

    Returns
    -------
    offset, value : ndarray
        Sorted by offset (arcsec); NaN values are dropped.
    """
    width = grid.pixel_scale if width is None else float(width)
    x, y = grid.coordinates()
    along = np.cos(phi) * (x - x0) + np.sin(phi) * (y - y0)
    across = -np.sin(phi) * (x - x0) + np.cos(phi) * (y - y0)
    inside = (np.abs(across) <= width) & np.isfinite(values)
    order = np.argsort(along[inside])
    return along[inside][order], np.asarray(values)[inside][order]


def _map_panel(fig, ax, image, grid, title, cmap, vmin=None, vmax=None, label="km/s"):
    extent = grid.extent if grid is not None else None
    shown = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label=label, shrink=0.85)
    ax.set_xlabel("x (arcsec)" if grid is not None else "column")


def plot_kinematic_maps(
    velocity, dispersion, *, grid=None, v_sys=0.0, figsize=(13, 7.5), normalized=True
):
    """Six panels: velocity and dispersion data, model and residual.

    Parameters
    ----------
    velocity, dispersion : dict
        ``data``, ``model`` and optionally ``sigma`` maps (km/s), e.g. ``Result.maps`` entries.
    grid : PixelGrid, optional
        Axes in arcsec.
    v_sys : float
        Subtracted from the velocity maps before display (km/s).
    normalized : bool
        Residuals ``(data - model) / sigma`` when ``sigma`` is given, else in km/s.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 3)
    for row, (name, maps, cmap) in enumerate(
        [("velocity", velocity, "RdBu_r"), ("dispersion", dispersion, "magma")]
    ):
        shift = v_sys if name == "velocity" else 0.0
        data, model = np.asarray(maps["data"]) - shift, np.asarray(maps["model"]) - shift
        finite = data[np.isfinite(data)]
        if name == "velocity":
            limit = np.percentile(np.abs(finite), 98) if finite.size else 1.0
            vmin, vmax = -limit, limit
        else:
            vmin, vmax = np.percentile(finite, [2, 98]) if finite.size else (None, None)
        _map_panel(fig, axes[row, 0], data, grid, f"{name}: data", cmap, vmin, vmax)
        _map_panel(fig, axes[row, 1], model, grid, f"{name}: model", cmap, vmin, vmax)
        residual = data - model
        label = "km/s"
        if normalized and maps.get("sigma") is not None:
            residual, label = residual / np.asarray(maps["sigma"]), "(data - model) / sigma"
        finite = np.abs(residual[np.isfinite(residual)])
        limit = np.percentile(finite, 98) if finite.size else 1.0
        _map_panel(
            fig,
            axes[row, 2],
            residual,
            grid,
            f"{name}: residual",
            "coolwarm",
            -limit,
            limit,
            label,
        )
    for ax in axes[:, 0]:
        ax.set_ylabel("y (arcsec)" if grid is not None else "row")
    return fig


def plot_rotation_curve(radii, rotation, dispersion=None, *, truth=None, figsize=(10, 4)):
    """The rotation curve V(R) and dispersion profile sigma(R) with 68% and 95% bands.

    Parameters
    ----------
    radii : ndarray, shape (M,)
        Disc-plane radii in arcsec.
    rotation : ndarray, shape (S, M)
        Posterior draws of V at the radii (km/s).
    dispersion : ndarray, shape (S, M), optional
        Posterior draws of the intrinsic sigma at the radii (km/s).
    truth : dict, optional
        ``{"rotation": (M,), "dispersion": (M,)}`` true profiles of a simulated galaxy.

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = [("V(R)", rotation, "rotation")]
    if dispersion is not None:
        panels.append(("sigma(R)", dispersion, "dispersion"))
    fig = Figure(figsize=figsize, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, draws, key) in zip(axes, panels):
        draws = np.asarray(draws)
        low2, low, median, high, high2 = np.percentile(draws, [2.5, 16, 50, 84, 97.5], axis=0)
        ax.fill_between(radii, low2, high2, alpha=0.2, color="C0", label="95%")
        ax.fill_between(radii, low, high, alpha=0.4, color="C0", label="68%")
        ax.plot(radii, median, color="C0", label="median")
        if truth is not None and key in truth:
            ax.plot(radii, truth[key], "k--", label="truth")
        ax.set_xlabel("disc radius R (arcsec)")
        ax.set_ylabel(f"{label} (km/s)")
        ax.set_ylim(0, 1.35 * np.max(high2))  # room for the legend above the curves
        ax.legend(loc="lower right" if key == "rotation" else "upper right", ncols=2)
    return fig


def plot_position_velocity(
    data, model, grid, *, phi, x0=0.0, y0=0.0, v_sys=0.0, width=None, sigma=None, figsize=(7, 4.5)
):
    """Position-velocity diagram along the kinematic major axis: data and model.

    Parameters
    ----------
    data, model : ndarray, shape grid.shape
        Observed and model velocity maps (km/s).
    grid : PixelGrid
    phi, x0, y0, width
        As for :func:`major_axis_cut`.
    v_sys : float
        Subtracted from both (km/s).
    sigma : ndarray, optional
        Velocity errors (km/s), drawn as error bars.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    offset, values = major_axis_cut(data, grid, phi=phi, x0=x0, y0=y0, width=width)
    errors = None
    if sigma is not None:
        masked = np.where(np.isfinite(data), sigma, np.nan)
        _, errors = major_axis_cut(masked, grid, phi=phi, x0=x0, y0=y0, width=width)
    ax.errorbar(offset, values - v_sys, yerr=errors, fmt="o", ms=3, color="k", label="data")
    m_offset, m_values = major_axis_cut(model, grid, phi=phi, x0=x0, y0=y0, width=width)
    ax.plot(m_offset, m_values - v_sys, "-", color="C3", label="model (through the PSF)")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_xlabel("offset along the major axis (arcsec; + receding)")
    ax.set_ylabel("line-of-sight velocity - v_sys (km/s)")
    ax.legend()
    return fig
