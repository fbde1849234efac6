"""How far a log-averaged tracer's radial nodes can be trusted, and the wall beyond.

The node count of a radial transfer covers the prior's bulk at the tolerance. Far in a
prior's tail the Chebyshev interpolant of ``10**Z`` is wrong by whole dex (it can even turn
negative), and a likelihood there can hold a spurious mode. :func:`trusted_span` is the span
of ``Z`` over the nodes beyond which that happens; :func:`trust_wall` is the model term that
pushes draws back from it.
"""

from __future__ import annotations

import functools

import pytensor.tensor as pt

from pymc_tracers.forward.radial_nodes import ChebyshevLayout, layout_error
from pymc_tracers.smooth import softplus

__all__ = ["TRUSTED_ERROR", "TRUST_SOFTNESS", "TRUST_WALL", "trust_wall", "trusted_span"]

#: Interpolation error (dex) at which a log-averaged tracer's nodes stop being trusted. Beyond
#: the span it allows, the polynomial's error grows by orders of magnitude per dex and can turn
#: the interpolant negative: a likelihood there is wrong by whole dex and can hold a spurious
#: mode. The model pushes draws back from there (see :func:`trusted_span`).
TRUSTED_ERROR = 1e-3
#: The wall beyond the trusted span: ``-TRUST_WALL x TRUST_SOFTNESS x softplus(excess /
#: TRUST_SOFTNESS)`` (nats; excess in dex), i.e. TRUST_WALL nats per dex beyond it, smooth
#: over TRUST_SOFTNESS dex, and below 1e-3 nats from 0.2 dex inside it. It is finite so that
#: far-off starting points (nutpie jitters every variable by U(-1, 1)) can still walk back.
TRUST_WALL = 1000.0
TRUST_SOFTNESS = 0.02


@functools.lru_cache(maxsize=256)
def _trusted_span(count, breaks):
    layout = ChebyshevLayout(count, breaks)

    def error(span):
        return layout_error(layout, span * layout.probes(), span * layout.fractions, "log")

    low, high = 0.0, 1.0
    while error(high) <= TRUSTED_ERROR:
        low, high = high, 2.0 * high
    for _ in range(30):  # bisection to ~1e-9 of the bracket
        middle = 0.5 * (low + high)
        low, high = (middle, high) if error(middle) <= TRUSTED_ERROR else (low, middle)
    return low


def trusted_span(count, breaks=()) -> float:
    """The largest span (dex) of a log-averaged tracer over its nodes that ``count`` nodes
    (with segment ``breaks``) interpolate within :data:`TRUSTED_ERROR`, for a tracer linear in
    radius (the exponential ``f = 10**Z`` whose interpolation error grows fastest with span).

    The node count covers the prior's bulk at the tolerance; this is the edge beyond which the
    interpolated likelihood is no longer meaningful (about 1.5-4 dex more than the span the
    tolerance allows: 14 nodes cover 2.8 dex at 1e-7 and are trusted to 4.6 dex).
    """
    return _trusted_span(int(count), tuple(float(b) for b in breaks))


def trust_wall(spans):
    """The wall's log-density term (nats, a scalar tensor) for ``(span, trusted)`` pairs: the
    span of ``Z`` over some nodes (dex; a tensor, one value per galaxy or one for all) and the
    span those nodes are trusted to (:func:`trusted_span`).

    :data:`TRUST_WALL` nats per dex beyond the trusted span, summed over galaxies and pairs;
    below 1e-3 nats from 0.2 dex inside it (a constant 2e-12 nats further in). Its gradient
    is finite on every backend however far a span is from the wall
    (:func:`pymc_tracers.smooth.softplus`).
    """
    wall = 0.0
    for span, trusted in spans:
        excess = (span - trusted) / TRUST_SOFTNESS
        wall = wall - TRUST_WALL * TRUST_SOFTNESS * pt.sum(softplus(excess))
    return wall
