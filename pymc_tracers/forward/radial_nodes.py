"""Radial nodes and local interpolation weights: a radial tracer as values at M radii.

A tracer that depends on position only through the elliptical radius ``r`` is sampled at
``M`` equally spaced nodes ``r_m = m h`` (``h = r_max / (M - 1)``, ``r_max`` the largest radius
the forward model renders), and ``f(Z(r))`` at every sub-pixel is interpolated from the node
values with local Lagrange weights on :data:`STENCIL` neighbouring nodes::

    f(Z(r)) ~= sum_m w_m(r) f(Z(r_m))

The weights ``w_m(r)`` are fixed numbers, so with fixed light and PSF the numerator of the
light-weighted ratio is a fixed matrix times ``f(Z(r_m))``.

**Accuracy.** The pixel values are light-weighted means of ``f`` with non-negative weights
``I K``, so a pixel's relative error (log averaging) or absolute error (linear) is at most
the largest pointwise interpolation error of ``f`` over the rendered radii. The error of a
degree-7 interpolant falls as ``h^8``: for ``f = 10**Z`` with ``Z`` changing by ``D`` dex
across the field it is below 1e-7 dex with about ``10 D + 2`` nodes (a cubic needs ``48 D``).
:func:`pointwise_error` measures it for given node values, which is how the node count is
chosen (:func:`smallest_node_count`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MAX_RADIAL_NODES",
    "STENCIL",
    "NODE_COUNTS",
    "interpolation_weights",
    "node_fields",
    "interpolate",
    "pointwise_error",
    "smallest_node_count",
    "exponential_node_count",
]

#: Nodes in each interpolation stencil (a degree-7 Lagrange interpolant).
STENCIL = 8
#: Most nodes a radial transfer uses (memory and cost grow with it).
MAX_RADIAL_NODES = 1024
#: The node counts tried, smallest first.
NODE_COUNTS = tuple(
    sorted(
        {8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 36, 40, 48, 56, 64, 72, 80, 96, 112, 128}
        | {160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024}
    )
)
#: Points per node spacing at which the interpolation error is measured.
PROBES_PER_SPACING = 4


def interpolation_weights(r, spacing, n_nodes):
    """The :data:`STENCIL` nodes and Lagrange weights of each radius.

    Parameters
    ----------
    r : ndarray
        Radii (arcsec), any shape, within ``[0, (n_nodes - 1) spacing]``.
    spacing : float or ndarray
        Node spacing ``h`` (arcsec), broadcastable against ``r`` (per galaxy).
    n_nodes : int
        At least :data:`STENCIL`.

    Returns
    -------
    first : ndarray of int
        The first node of each radius's stencil (nodes ``first .. first + STENCIL - 1``).
    weights : ndarray, shape ``(STENCIL, *r.shape)``
    """
    u = np.asarray(r, dtype=float) / spacing
    first = np.clip(np.floor(u).astype(np.int64) - (STENCIL // 2 - 1), 0, n_nodes - STENCIL)
    t = u - first
    weights = np.ones((STENCIL, *t.shape))
    for k in range(STENCIL):
        for other in range(STENCIL):
            if other != k:
                weights[k] *= (t - other) / (k - other)
    return first, weights


def node_fields(first, weights, start, stop):
    """The weight fields ``w_m`` of nodes ``start .. stop - 1``: ``(stop - start, *r.shape)``."""
    fields = np.zeros((stop - start, *first.shape))
    for k in range(STENCIL):
        node = first + k
        inside = (node >= start) & (node < stop)
        np.add.at(fields, (node[inside] - start, *np.nonzero(inside)), weights[k][inside])
    return fields


def interpolate(node_values, fractions, n_nodes):
    """Interpolate values at ``n_nodes`` equally spaced nodes on ``[0, 1]`` to ``fractions``.

    ``node_values`` is ``(..., n_nodes)``; returns ``(..., len(fractions))``.
    """
    first, weights = interpolation_weights(fractions, 1.0 / (n_nodes - 1), n_nodes)
    stencil = first[:, None] + np.arange(STENCIL)[None, :]  # (F, STENCIL)
    return np.sum(node_values[..., stencil] * weights.T, axis=-1)


def pointwise_error(exact, node_values, fractions, n_nodes, tracer_scale):
    """Largest interpolation error in tracer units (dex for log averaging).

    ``exact`` holds the tracer ``Z`` at ``fractions`` of ``r_max`` and ``node_values`` at the
    nodes, each ``(..., F)`` and ``(..., n_nodes)``; errors are maximised over the last axis.
    """
    if tracer_scale == "log":
        reference = exact.max(axis=-1, keepdims=True)  # 10**(Z - max) stays in range
        approx = interpolate(10.0 ** (node_values - reference), fractions, n_nodes)
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.abs(np.log10(approx) - (exact - reference))
        return np.where(np.isfinite(error), error, np.inf).max(axis=-1)
    return np.abs(interpolate(node_values, fractions, n_nodes) - exact).max(axis=-1)


def probe_fractions(n_nodes: int) -> np.ndarray:
    """Where the error of ``n_nodes`` nodes is measured: between and on the nodes."""
    return np.linspace(0.0, 1.0, PROBES_PER_SPACING * (n_nodes - 1) + 1)


def smallest_node_count(error_of, tolerance) -> int:
    """The smallest count in :data:`NODE_COUNTS` with ``error_of(count) <= tolerance``
    (:data:`MAX_RADIAL_NODES` if none)."""
    for count in NODE_COUNTS:
        if error_of(count) <= tolerance:
            return count
    return MAX_RADIAL_NODES


def exponential_node_count(dynamic_range: float, tolerance: float) -> int:
    """Nodes for a log-averaged tracer that changes linearly by ``dynamic_range`` dex."""
    if dynamic_range == 0:
        return NODE_COUNTS[0]

    def error_of(count):
        fractions = probe_fractions(count)
        nodes = np.linspace(0.0, 1.0, count)
        return pointwise_error(
            dynamic_range * fractions, dynamic_range * nodes, fractions, count, "log"
        )

    return smallest_node_count(error_of, tolerance)
