"""How many radial nodes the ``disc_radial`` path takes (:class:`DiscNodeCount`).

Two steps. A pointwise bound on the interpolation error of the radial *fields* at prior draws
gives an upper count (:meth:`DiscNodeCount._choose_node_count`). It is far too cautious for the
maps: the PSF and the pixels average the interpolation error, which changes sign between nodes
(16 nodes give maps within 3e-3 km/s where the bound asks for 96). The count is then lowered to
the smallest one whose *maps* agree with the exact full path at prior draws within a quarter of
the tolerance (:meth:`DiscNodeCount._settle_node_count`).
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt

from pymc_tracers.forward.draws import ParameterDraws
from pymc_tracers.forward.radial_nodes import (
    MAX_RADIAL_NODES,
    NODE_COUNTS,
    NodeLayout,
    layout_error,
)
from pymc_tracers.forward.transfer import BUILD_MODE
from pymc_tracers.kinematics.full import KinematicFullRenderer

__all__ = ["DiscNodeCount", "KinematicAccuracyWarning", "at_nodes"]

logger = logging.getLogger("pymc_tracers")

#: Prior draws that choose the node count, and the fraction of them it must cover.
PRIOR_DRAWS = 16
COVERED_FRACTION = 0.75
#: Prior draws at which the maps are compared with the full path when built.
CHECK_DRAWS = 6
#: The measured map error a node count must reach, as a fraction of the tolerance: the check
#: draws are few, and the error falls as ~M^-7, so this margin costs few nodes.
CHECK_MARGIN = 0.25
#: Smallest node count tried when measuring.
FEWEST_NODES = 12
#: Pixels fainter than this fraction of the brightest are left out of that comparison.
CHECK_LIGHT_FLOOR = 1e-8
#: Node count when there is no prior to measure the profiles at.
DEFAULT_NODES = 128
#: Smallest observed dispersion (km/s) assumed when converting a second-moment error to a
#: dispersion error.
SMALLEST_DISPERSION = 1.0


class KinematicAccuracyWarning(UserWarning):
    """The disc_radial maps differ from the full path by more than the tolerance."""


def at_nodes(function, radii):
    """``function`` at node radii ``(M,)``: ``(M,)`` or ``(N, M)``."""
    values = pt.as_tensor_variable(function(pt.as_tensor_variable(radii)))
    if values.ndim == 3:  # (N, 1, M): per-galaxy parameters broadcast against (1, M)
        values = values[:, 0, :]
    if values.ndim == 0:
        values = pt.broadcast_to(values, radii.shape)
    return values


class DiscNodeCount:
    """The node-count choice of :class:`~pymc_tracers.kinematics.disc_transfer.DiscTransferRenderer`
    (a mixin: it reads the renderer's profiles, coordinates, tolerance and basis builder)."""

    # ------------------------------------------------------------------ node count
    def _choose_node_count(self) -> int:
        functions = self._functions()
        fractions = pt.dvector("fractions")
        radii = self._radius_of(fractions)
        values = {name: at_nodes(f, radii) for name, f in functions.items()}
        outputs = list(values.values())
        sin_i = float(np.max(self._sin_i))
        prior = ParameterDraws.from_prior(outputs, PRIOR_DRAWS)
        if prior:
            at = prior.function(outputs, [fractions])
            draws = range(prior.n)
        else:
            try:
                compiled = pytensor.function(
                    [fractions], outputs, on_unused_input="ignore", mode=BUILD_MODE
                )
            except Exception:  # free inputs that are not random variables: nothing to draw
                logger.info("disc_radial: no prior draws; %d nodes", DEFAULT_NODES)
                return DEFAULT_NODES

            def at(where, draw):
                return compiled(where)

            draws = range(1)
        needed = []
        for draw in draws:
            needed.append(MAX_RADIAL_NODES)
            for count in NODE_COUNTS:
                if self._error_bound(count, at, draw, list(values), sin_i) <= self.tolerance:
                    needed[-1] = count
                    break
        needed = np.sort(needed)
        count = int(needed[math.ceil(COVERED_FRACTION * needed.size) - 1])
        self.covered = float(np.mean(needed <= count)) if prior else None
        logger.info(
            "disc_radial: the error bound asks for %d radial nodes (covering %s of prior draws)",
            count,
            self.covered,
        )
        return count

    def _error_bound(self, count, at, draw, names, sin_i) -> float:
        """Bound (km/s) on the velocity and dispersion map errors with ``count`` nodes."""
        layout = NodeLayout(count)
        probes = layout.probes()
        outputs = at(np.concatenate([probes, layout.fractions]), draw=draw)
        g = {
            name: (np.asarray(v)[..., : probes.size], np.asarray(v)[..., probes.size :])
            for name, v in zip(names, outputs)
        }

        def error(probe_values, node_values):
            return float(np.max(layout_error(layout, probe_values, node_values, "linear")))

        v_probe, v_node = g["V"]
        vr_probe, vr_node = g.get("Vr", (np.zeros_like(v_probe), np.zeros_like(v_node)))
        velocity_error = sin_i * (error(v_probe, v_node) + error(vr_probe, vr_node))
        second = sin_i**2 * (
            error(v_probe**2, v_node**2)
            + 2 * error(v_probe * vr_probe, v_node * vr_node)
            + error(vr_probe**2, vr_node**2)
        )
        sigma_min = SMALLEST_DISPERSION
        if "sigma" in g:
            s_probe, s_node = g["sigma"]
            second += error(s_probe**2, s_node**2)
            sigma_min = max(sigma_min, float(np.min(np.abs(s_probe))))
        speed = float(np.max(np.abs(v_probe))) + float(np.max(np.abs(vr_probe), initial=0.0))
        dispersion_error = (second + 2 * sin_i * speed * velocity_error) / (2 * sigma_min)
        return max(velocity_error, dispersion_error)

    # ------------------------------------------------------------------ check
    def _full_path_maps(self):
        """The exact full path's velocity and dispersion maps at the check draws, and the
        draws (None when the model has no prior to draw from)."""
        full = KinematicFullRenderer(
            self.components,
            self.numerics,
            self.n_galaxies,
            path="full",
            reference_owner=self.velocity,
            lsf=self.lsf,
            hold_psf=False,
        ).render()
        outputs = [full.velocity, full.dispersion]
        draws = ParameterDraws.from_prior(outputs, CHECK_DRAWS, seed=20240314)
        if draws:
            evaluate = draws.function(outputs)
            return [evaluate(draw=d) for d in range(draws.n)], draws
        try:
            return [pytensor.function([], outputs, mode=BUILD_MODE)()], None
        except Exception:  # free inputs without a prior: nothing to compare at
            return None, None

    def _map_error(self, reference, draws) -> float:
        """Largest difference (km/s) of this renderer's bright pixels from ``reference``."""
        mine = self._render()  # not the cached maps: the basis changes while choosing
        outputs = [mine.velocity, mine.dispersion]
        if draws:
            evaluate = draws.function(outputs)
            results = [evaluate(draw=d) for d in range(draws.n)]
        else:
            results = [pytensor.function([], outputs, mode=BUILD_MODE)()]
        bright = self.light_sum >= CHECK_LIGHT_FLOOR * np.max(
            self.light_sum, axis=(-2, -1), keepdims=True
        )
        worst = 0.0
        for (v, s), (v_full, s_full) in zip(results, reference):
            error = np.maximum(np.abs(v - v_full), np.abs(s - s_full))
            worst = max(
                worst, float(np.max(np.where(np.broadcast_to(bright, error.shape), error, 0.0)))
            )
        return worst

    def _settle_node_count(self) -> float:
        """Build the basis with the fewest nodes whose maps agree with the full path within
        :data:`CHECK_MARGIN` x tolerance at the check draws; returns the largest difference
        (km/s) and warns (:class:`KinematicAccuracyWarning`) above the tolerance. Without
        prior draws, the error bound's count is used."""
        reference, draws = self._full_path_maps()
        if reference is None:  # nothing to compare at
            self.node_count = self.bound_node_count
            self._build_basis()
            return float("nan")
        target = CHECK_MARGIN * self.tolerance
        count = min(FEWEST_NODES, self.bound_node_count)
        while True:
            self.node_count = count
            self._build_basis()
            worst = self._map_error(reference, draws)
            if worst <= target or count >= MAX_RADIAL_NODES:
                break
            # the error falls as ~M^-7 (degree-7 stencils): aim a little past the prediction
            predicted = count * (worst / target) ** (1 / 7) * 1.1
            count = next((c for c in NODE_COUNTS if c >= predicted), MAX_RADIAL_NODES)
        if worst > self.tolerance:
            warnings.warn(
                f"disc_radial ({self.node_count} nodes): its maps differ from the full path by "
                f"{worst:.3g} km/s at a prior draw (tolerance {self.tolerance:g}); pass "
                "method='full', or narrow the priors of the rotation curve's scale radius",
                KinematicAccuracyWarning,
                stacklevel=3,
            )
        logger.info(
            "disc_radial: %d nodes; largest error against the full path %.3g km/s",
            self.node_count,
            worst,
        )
        return worst
