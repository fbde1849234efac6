"""Radial nodes and interpolation weights: a radial tracer as values at M radii.

A tracer that depends on position only through the elliptical radius ``r`` is sampled at
``M`` nodes ``r_m`` on ``[0, r_max]`` (``r_max`` the largest radius the forward model renders),
and ``f(Z(r))`` at every sub-pixel is interpolated from the node values with fixed weights::

    f(Z(r)) ~= sum_m w_m(r) f(Z(r_m))

The weights ``w_m(r)`` are fixed numbers, so with fixed light and PSF the numerator of the
light-weighted ratio is a fixed matrix times ``f(Z(r_m))``. Two layouts of nodes and weights:

* :class:`ChebyshevLayout` (the metallicity radial transfer): Chebyshev points within
  segments between a profile's breakpoints (a spline's knots), with polynomial interpolation
  over each segment. Its error falls geometrically with the count for smooth profiles: for
  ``f = 10**Z`` with ``Z`` changing by ``D`` dex across the field it is below 1e-7 dex with
  about ``3 D + 5`` nodes (beyond ~9 dex in segments of at most 32).
* :class:`NodeLayout` (the kinematic disc transfer): equally spaced nodes with local
  degree-7 Lagrange weights on :data:`STENCIL` neighbours, error falling as ``h^8``: about
  ``10 D + 2`` nodes for the same case, but every sub-pixel touches only 8 nodes.

**Accuracy.** The pixel values are light-weighted means of ``f`` with non-negative weights
``I K``, so a pixel's relative error (log averaging) or absolute error (linear) is at most
the largest pointwise interpolation error of ``f`` over the rendered radii, whatever the
signs of the weights (the bound is on the interpolated ``f`` itself). :func:`layout_error`
measures it for given node values, which is how the node count is chosen
(:func:`smallest_node_count`). Beyond the range a count was chosen for, a Chebyshev
interpolant's error grows quickly (a count chosen for ``D`` dex gives 4e-5 to 3e-3 dex at
``2 D`` and ~0.2 dex at ``4 D``), hence the margin in the radial transfer's choice.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MAX_RADIAL_NODES",
    "STENCIL",
    "NODE_COUNTS",
    "NodeLayout",
    "ChebyshevLayout",
    "ChebyshevWeights",
    "node_fields",
    "layout_error",
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


def _lagrange(t):
    """Weights of nodes ``0 .. STENCIL - 1`` at positions ``t`` (in node spacings)."""
    weights = np.ones((STENCIL, *np.shape(t)))
    for k in range(STENCIL):
        for other in range(STENCIL):
            if other != k:
                weights[k] *= (t - other) / (k - other)
    return weights


class _Segments:
    """Node counts on the segments of ``[0, 1]`` between breakpoints, in proportion to their
    lengths (at least :data:`STENCIL` each); the layouts below place and weight the nodes."""

    def __init__(self, total: int, breaks=()):
        breaks = sorted(float(b) for b in breaks if 0.0 < b < 1.0)
        self.edges = np.array([0.0, *breaks, 1.0])
        lengths = np.diff(self.edges)
        self.counts = [max(STENCIL, round(total * length)) for length in lengths]
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.total = int(sum(self.counts))

    def _segment_of(self, u):
        return np.clip(np.searchsorted(self.edges, u, side="right") - 1, 0, len(self.counts) - 1)


class NodeLayout(_Segments):
    """Radial nodes on ``[0, 1]`` (in units of the largest rendered radius), equally spaced
    within segments between breakpoints.

    A profile that is smooth except at known radii (a spline's knots) is interpolated within
    each segment only, so no stencil straddles a kink: high-order accuracy everywhere.

    Parameters
    ----------
    total : int
        Nodes wanted (each segment gets at least :data:`STENCIL`; the total may grow).
    breaks : sequence of float
        Breakpoints in ``(0, 1)``.
    """

    @property
    def fractions(self) -> np.ndarray:
        """The nodes, ``(total,)``; a breakpoint is a node of both its segments."""
        return np.concatenate(
            [np.linspace(a, b, n) for a, b, n in zip(self.edges[:-1], self.edges[1:], self.counts)]
        )

    def probes(self, per_spacing=PROBES_PER_SPACING) -> np.ndarray:
        """Where the interpolation error is measured: between and on the nodes."""
        return np.unique(
            np.concatenate(
                [
                    np.linspace(a, b, per_spacing * (n - 1) + 1)
                    for a, b, n in zip(self.edges[:-1], self.edges[1:], self.counts)
                ]
            )
        )

    def weights(self, u):
        """The first node of each position's stencil and its :data:`STENCIL` weights.

        ``u`` is in ``[0, 1]`` (any shape); returns ``first`` (global node index, shape of
        ``u``) and ``weights`` ``(STENCIL, *u.shape)``.
        """
        u = np.asarray(u, dtype=float)
        segment = self._segment_of(u)
        start = self.edges[segment]
        counts = np.asarray(self.counts)[segment]
        spacing = (self.edges[segment + 1] - start) / (counts - 1)
        position = (u - start) / spacing
        local = np.clip(
            np.floor(position).astype(np.int64) - (STENCIL // 2 - 1), 0, counts - STENCIL
        )
        return self.offsets[segment] + local, _lagrange(position - local)

    def interpolate(self, node_values, u):
        """Interpolate ``node_values`` ``(..., total)`` to positions ``u`` ``(F,)``."""
        first, weights = self.weights(u)
        stencil = first[:, None] + np.arange(STENCIL)[None, :]
        return np.sum(node_values[..., stencil] * weights.T, axis=-1)

    def fields(self, u, start, stop):
        """Weight fields of nodes ``start .. stop - 1`` at positions ``u``:
        ``(stop - start, *u.shape)``."""
        first, weights = self.weights(u)
        return node_fields(first, weights, start, stop)


class ChebyshevLayout(_Segments):
    """Radial nodes at Chebyshev points within segments between breakpoints, with
    polynomial (barycentric) interpolation over each whole segment.

    For a profile that is smooth within each segment, the error of a polynomial interpolant
    at Chebyshev points falls faster than any power of the node count (geometrically for
    analytic profiles): ``10**Z`` with ``Z`` changing linearly by ``D`` dex across the field
    is within 1e-7 dex with about ``3 D + 5`` nodes (in segments beyond ~9 dex), against
    ``10 D + 2`` for local degree-7 weights on equally spaced nodes (:class:`NodeLayout`).
    Barycentric weights are stable for any count (the Lebesgue constant grows as ``log M``).

    One polynomial has a floor, though: its round-off is relative to the largest value of
    ``f`` on its segment, so where ``f`` is ``10**-D`` of that, the relative error cannot fall
    below ~1e-16 x 10**D. A count above :data:`SEGMENT_NODES` is therefore split into equal
    segments of at most that many nodes, each spanning a few dex of a steep profile.

    Every sub-pixel carries a weight for every node of its segment, so building the basis
    costs the same number of convolutions as a local layout with the same count.

    Parameters
    ----------
    total : int
        Nodes wanted (each segment gets at least :data:`STENCIL`; the total may grow).
    breaks : sequence of float
        Breakpoints in ``(0, 1)``; a breakpoint is a node of both its segments.
    """

    #: Most nodes on one segment (one polynomial of degree ``SEGMENT_NODES - 1``).
    SEGMENT_NODES = 32

    def __init__(self, total: int, breaks=()):
        pieces = math.ceil(total / self.SEGMENT_NODES)
        breaks = {float(b) for b in breaks if 0.0 < b < 1.0}
        breaks |= {
            k / pieces
            for k in range(1, pieces)
            if min((abs(k / pieces - b) for b in breaks), default=1.0) > 1e-3
        }
        super().__init__(total, breaks)
        self._nodes = [
            a + (b - a) * (1.0 - np.cos(np.pi * np.arange(n) / (n - 1))) / 2.0
            for a, b, n in zip(self.edges[:-1], self.edges[1:], self.counts)
        ]
        self._barycentric = []
        for n in self.counts:
            weights = (-1.0) ** np.arange(n)
            weights[[0, -1]] *= 0.5
            self._barycentric.append(weights)

    @property
    def fractions(self) -> np.ndarray:
        """The nodes, ``(total,)``, ascending within each segment."""
        return np.concatenate(self._nodes)

    def probes(self, per_spacing=PROBES_PER_SPACING) -> np.ndarray:
        """Where the interpolation error is measured: between and on the nodes (equally
        spaced in the Chebyshev angle, where the error oscillates evenly)."""
        parts = []
        for a, b, n in zip(self.edges[:-1], self.edges[1:], self.counts):
            angle = np.linspace(0.0, np.pi, per_spacing * (n - 1) + 1)
            parts.append(a + (b - a) * (1.0 - np.cos(angle)) / 2.0)
        return np.unique(np.concatenate(parts))

    def at(self, u) -> ChebyshevWeights:
        """The interpolation weights at positions ``u`` (any shape), column by column."""
        return ChebyshevWeights(self, u)

    def fields(self, u, start, stop):
        """Weight fields of nodes ``start .. stop - 1`` at positions ``u``:
        ``(stop - start, *u.shape)``."""
        return self.at(u).fields(start, stop)

    def interpolate(self, node_values, u):
        """Interpolate ``node_values`` ``(..., total)`` to positions ``u`` ``(F,)``."""
        return node_values @ self.fields(np.asarray(u, dtype=float), 0, self.total)


class ChebyshevWeights:
    """A :class:`ChebyshevLayout`'s weights at fixed positions, computed column by column.

    The barycentric weight of node ``m`` at ``u`` is ``(l_m / (u - u_m)) / S(u)`` with
    ``S(u) = sum_j l_j / (u - u_j)`` over the nodes of ``u``'s segment; ``S`` is computed once
    here, so any chunk of columns costs O(positions x columns). A position exactly on a node
    takes that node's value.
    """

    #: Positions per block while summing ``S`` (bounds working memory).
    BLOCK = 2**16

    def __init__(self, layout, u):
        u = np.asarray(u, dtype=float)
        self.layout = layout
        self.shape = u.shape
        self.positions = u.reshape(-1)
        self.segment = layout._segment_of(self.positions)
        self.denominator = np.ones(self.positions.size)
        self.on_node = np.full(self.positions.size, -1, dtype=np.int64)  # global node index
        for s, offset in enumerate(layout.offsets):
            where = np.flatnonzero(self.segment == s)
            nodes, weights = layout._nodes[s], layout._barycentric[s]
            for block in range(0, where.size, self.BLOCK):
                picked = where[block : block + self.BLOCK]
                difference = self.positions[picked, None] - nodes[None, :]
                hit = difference == 0.0
                difference[hit] = 1.0
                self.denominator[picked] = (weights / difference).sum(axis=1)
                exact = hit.any(axis=1)
                self.on_node[picked[exact]] = offset + np.argmax(hit[exact], axis=1)

    def fields(self, start, stop):
        """Weight fields of nodes ``start .. stop - 1``: ``(stop - start, *shape)``."""
        layout = self.layout
        out = np.zeros((stop - start, self.positions.size))
        for s, (offset, n) in enumerate(zip(layout.offsets, layout.counts)):
            lo, hi = max(start, offset), min(stop, offset + n)
            if lo >= hi:
                continue
            where = np.flatnonzero(self.segment == s)
            x, denominator = self.positions[where], self.denominator[where]
            off_node = self.on_node[where] < 0
            for node in range(lo, hi):
                local = node - offset
                with np.errstate(divide="ignore", invalid="ignore"):
                    value = layout._barycentric[s][local] / (x - layout._nodes[s][local])
                out[node - start, where] = np.where(
                    off_node, value / denominator, self.on_node[where] == node
                )
        return out.reshape((stop - start, *self.shape))


def node_fields(first, weights, start, stop):
    """Weight fields ``w_m`` of nodes ``start`` to ``stop - 1``: ``(stop - start, *r.shape)``."""
    fields = np.zeros((stop - start, *first.shape))
    for k in range(STENCIL):
        node = first + k
        inside = (node >= start) & (node < stop)
        np.add.at(fields, (node[inside] - start, *np.nonzero(inside)), weights[k][inside])
    return fields


def pointwise_error(exact, approx, tracer_scale):
    """Largest interpolation error in tracer units (dex for log averaging).

    ``exact`` holds the tracer ``Z`` at some radii and ``approx`` the interpolated ``f(Z)``
    there (``10**(Z - reference)`` for log averaging, see :func:`log_reference`).
    """
    if tracer_scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.abs(np.log10(approx) - exact)
        return np.where(np.isfinite(error), error, np.inf).max(axis=-1)
    return np.abs(approx - exact).max(axis=-1)


def layout_error(layout, z_probes, z_nodes, tracer_scale):
    """Largest interpolation error of ``f(Z)`` on ``layout`` at its probes (tracer units).

    ``z_probes`` and ``z_nodes`` hold ``Z`` at ``layout.probes()`` and ``layout.fractions``,
    each with any leading axes.
    """
    if tracer_scale == "log":
        reference = z_nodes.max(axis=-1, keepdims=True)  # 10**(Z - max) stays in range
        approx = layout.interpolate(10.0 ** (z_nodes - reference), layout.probes())
        return pointwise_error(z_probes - reference, approx, "log")
    return pointwise_error(z_probes, layout.interpolate(z_nodes, layout.probes()), "linear")


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
        layout = ChebyshevLayout(count)
        return layout_error(
            layout,
            dynamic_range * layout.probes(),
            dynamic_range * layout.fractions,
            "log",
        )

    return smallest_node_count(error_of, tolerance)
