"""The radial transfer: any radial tracer, either averaging scale, within a stated tolerance.

A tracer that depends on position only through the elliptical radius about a fixed centre and
shape (:meth:`~pymc_tracers.TracerProfile.radial_form`) is represented by its values at
``M`` radial nodes, ``c_m = f(Z(r_m))``, interpolated to every sub-pixel with fixed
weights (Chebyshev nodes, :mod:`~pymc_tracers.forward.radial_nodes`). The numerator is then
``B c`` with ``B[:, m] = bin(K * (I w_m))``; gradients flow through ``c`` for any
parameters of ``Z``.

**Choosing M.** A pixel's error is at most the largest pointwise interpolation error of ``f``
over the rendered radii (the pixel is a mean of ``f`` with non-negative weights), which is
cheap to measure for given node values. The node count is the smallest that meets the
tolerance at all but the prior's tails (:data:`COVERED_FRACTION` of :data:`PRIOR_DRAWS`),
or, with a stated ``dynamic_range`` D (dex), for a log-averaged tracer that changes linearly
by D across the field. The cost of an evaluation grows with M, so wide priors cost more. The
maps are compared with the exact full path at a few prior draws when built
(:meth:`RadialTransferRenderer.check`) and, by ``pmt.fit(observations=...)``, at posterior
draws after sampling (:meth:`RadialTransferRenderer.check_posterior`), where the tolerance
matters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymc_tracers.forward.base import hold_data
from pymc_tracers.forward.draws import ParameterDraws
from pymc_tracers.forward.radial_nodes import (
    MAX_RADIAL_NODES,
    NODE_COUNTS,
    STENCIL,
    ChebyshevLayout,
    exponential_node_count,
    layout_error,
)
from pymc_tracers.forward.radial_trust import trust_wall, trusted_span
from pymc_tracers.forward.reach import psf_reach
from pymc_tracers.forward.transfer import (
    TransferRenderer,
    _Columns,
    _galaxies_of,
    convolve_and_bin_in_chunks,
    fixed_columns,
    is_symbolic,
)
from pymc_tracers.memory import release_freed_memory
from pymc_tracers.numerics import SubpixelNumerics
from pymc_tracers.profiles.tracer import elliptical_radius_grid

__all__ = ["RadialTransferRenderer", "RadialAccuracyWarning"]

logger = logging.getLogger("pymc_tracers")

#: Used when no prior tells how much a log-averaged tracer changes across the field (dex).
DEFAULT_DYNAMIC_RANGE = 3.0
#: Nodes for a linearly averaged, non-polynomial profile without a prior to measure.
DEFAULT_LINEAR_NODES = 128
#: Prior draws that choose the node count, and the fraction of them (of draws x galaxies in a
#: batch) it must cover: all but the prior's tails, e.g. |g| < 1.6 sd for a Normal prior on a
#: gradient, so that a posterior in the prior's bulk is within the tolerance (the error
#: grows quickly beyond the covered range). The posterior is checked after sampling
#: (``pmt.fit(observations=...)``).
PRIOR_DRAWS = 16
COVERED_FRACTION = 0.9
#: Draws at which the maps are compared with the exact full path.
CHECK_DRAWS = 3
#: Pixels fainter than this fraction of their galaxy's brightest pixel are left out of the
#: comparison: there FFT round-off (~1e-16 of each field's peak) limits every path.
CHECK_LIGHT_FLOOR = 1e-8
#: Nodes per shortest feature of a profile (a softened break, a spline's knot spacing) when
#: there is no prior to measure.
NODES_PER_FEATURE = 5


class RadialAccuracyWarning(UserWarning):
    """A radial transfer's map differs from the full path by more than its tolerance."""


class RadialTransferRenderer(TransferRenderer):
    """Radial tracers as values at radial nodes, interpolated in radius.

    Parameters
    ----------
    components, numerics, tracer_scale, n_galaxies
        As for every renderer.
    tolerance : float
        Largest error of the tracer map (tracer units: dex for log averaging).
    dynamic_range : float, optional
        How much a log-averaged tracer may change across the rendered field (dex); by default
        the node count is measured at prior draws of the model.

    Attributes
    ----------
    node_counts : list of int
        Radial nodes per component (1 for a fixed tracer).
    covered : float or None
        Fraction of the prior draws at which the node count meets the tolerance pointwise.
    """

    path = "radial"

    def __init__(self, components, numerics, tracer_scale, n_galaxies, **options):
        self._counts, self._totals = {}, {}
        self.covered = self.pixels_covered = None
        self.pixel_node_counts = {}  # likelihood number -> its nodes per component
        self._pixel_columns = {}  # likelihood number -> its columns
        self._spans = {}  # column key -> (span of Z over its nodes (tensor), trusted span)
        super().__init__(components, numerics, tracer_scale, n_galaxies, **options)
        self.node_counts = [c.count for c in self._columns]
        self.max_error = self.check()

    # ------------------------------------------------------------------ columns
    def _extent(self, index, numerics, pixels=None):
        """Component ``index``'s radial form, rendered radii, largest radius (``()`` or
        ``(Ng,)``, arcsec) and node-segment breaks (fractions of it). With ``pixels``, only
        radii within the PSF's reach of those pixels count
        (:func:`~pymc_tracers.forward.reach.psf_reach`)."""
        form = self.components[index].tracer.radial_form()
        geometry = form.geometry or (0.0, 0.0, 1.0, 0.0)
        radii = [elliptical_radius_grid(x, y, *geometry) for x, y in numerics.point_sets]
        r_max = np.max([np.max(r, axis=(-2, -1)) for r in radii], axis=0)  # () or (Ng,)
        if pixels is not None:
            r_max = np.minimum(r_max, psf_reach(numerics, geometry, *pixels[1:]))
        r_max = r_max * (1 + 1e-12) + 1e-12  # every radius strictly inside
        # breakpoints (arcsec) become segment edges when every galaxy shares one r_max
        breaks = np.asarray(form.breakpoints) / r_max if np.ndim(r_max) == 0 else ()
        return form, radii, r_max, breaks

    def _count(self, index, numerics, pixels=None):
        """Radial nodes of component ``index`` (for the likelihood ``pixels[0]``'s pixels)."""
        key = index if pixels is None else (pixels[0], index)
        if key not in self._counts:
            form, _, r_max, breaks = self._extent(index, numerics, pixels)
            self._counts[key] = self._node_count(form, r_max, breaks)
        return self._counts[key]

    def _columns_of(self, index, numerics, *, swap=False, pixels=None):
        tracer = self.components[index].tracer
        if not is_symbolic(tracer):
            return fixed_columns(tracer, self.tracer_scale, numerics.point_sets)
        form, radii, r_max, breaks = self._extent(index, numerics, pixels)
        layout = ChebyshevLayout(self._count(index, numerics, pixels), breaks)
        key = index if pixels is None else (pixels[0], index)
        if self._totals.setdefault(key, layout.total) != layout.total:
            raise ValueError(
                "the new PSF moves the profile's breakpoints to other node segments; build a "
                "new model for it"
            )
        node_radii = np.multiply.outer(r_max, layout.fractions)  # (M,) or (Ng, M)
        scale = np.asarray(r_max)[..., None, None]
        positions = [np.minimum(r / scale, 1.0) for r in radii]
        # radii beyond the reach of the pixels never reach them: their weights are zero
        inside = [None if pixels is None else r <= scale for r in radii]
        del radii
        weights = {}  # point set -> (galaxies, their weights): the chunk being built

        def factors(start, stop, k, galaxies=slice(None)):
            chosen = (galaxies.start, galaxies.stop)
            if weights.get(k, (None,))[0] != chosen:
                weights[k] = (chosen, layout.at(_galaxies_of(positions[k], galaxies)))
            fields = weights[k][1].fields(start, stop)
            return fields if inside[k] is None else fields * _galaxies_of(inside[k], galaxies)

        count = layout.total
        if swap:
            return _Columns("radial", count, None, factors, node_radii)
        if pixels is None:
            nodes = self._hold_nodes(index, node_radii)
        else:
            nodes = self._hold_pixel_nodes(pixels[0], index, node_radii)
        if self.tracer_scale == "log":
            z = self._z_at(form, nodes)
            span = pt.max(z, axis=-1) - pt.min(z, axis=-1)  # () or (N,), dex
            self._spans[key] = (span, trusted_span(count, tuple(np.atleast_1d(breaks))))
        return _Columns("radial", count, self._node_values(form, nodes), factors, node_radii)

    # ------------------------------------------------------------------ the likelihood's pixels
    def _restricts(self) -> bool:
        """Whether a likelihood's pixels may get nodes over only the radii that reach them:
        the exact sub-pixel numerics (reach = the kernel's extent) in the image plane, with
        node counts measured at prior draws."""
        numerics = self.numerics
        return (
            isinstance(numerics, SubpixelNumerics)
            and numerics.lens is None
            and self.dynamic_range is None
        )

    def _basis_for_pixels(self, which, index, shape):
        """Masked or S/N-cut maps leave out outer pixels, whose radii set much of the tracer's
        dynamic range: the likelihood gets a basis of its own over the radii within the PSF's
        reach of its pixels, with fewer nodes, when that saves any."""
        if not self._restricts():
            return super()._basis_for_pixels(which, index, shape)
        pixels = (which, index, shape)
        covered = self.covered
        try:
            counts = [
                self._count(i, self.numerics, pixels) if c.kind == "radial" else c.count
                for i, c in enumerate(self._columns)
            ]
        finally:
            self.pixels_covered, self.covered = self.covered, covered
        if counts == [c.count for c in self._columns] or any(
            new > c.count for new, c in zip(counts, self._columns)
        ):
            return super()._basis_for_pixels(which, index, shape)
        columns = [
            self._columns_of(i, self.numerics, pixels=pixels) if c.kind == "radial" else c
            for i, c in enumerate(self._columns)
        ]
        arrays, coefficients = self._build_with(columns, self.numerics, self._lights, rows=index)
        self.pixel_node_counts[which] = counts
        self._pixel_columns[which] = [_released(c) for c in columns]
        return arrays, coefficients

    def at_pixels(self, index, shape):
        values = super().at_pixels(index, shape)
        self._add_trust_bound(len(self._compact) - 1)
        return values

    def _add_trust_bound(self, which):
        """A wall where the nodes that likelihood ``which`` reads span more dex than they
        interpolate within :data:`TRUSTED_ERROR` (log averaging only: linear averaging
        interpolates ``Z`` itself, whose error does not grow with its span).

        A term of the model (``pm.Potential``, named ``<prefix>_pixels<which>_trusted``;
        :data:`TRUST_WALL` nats per dex beyond the trusted span, per galaxy and component):
        without it a chain can wander into the prior's far tail and find a spurious mode of an
        interpolant that is wrong by whole dex there. It is zero to < 1e-3 nats wherever the
        nodes meet the tolerance; draws near the wall differ from the exact path by more than
        the tolerance, which the check after sampling reports.
        """
        if self._model is None or self.tracer_scale != "log":
            return
        own = which in self.pixel_node_counts
        keys = [(which, i) if own else i for i, c in enumerate(self._columns) if c.kind == "radial"]
        spans = [self._spans[key] for key in keys if key in self._spans]
        if spans:
            with self._model:
                pm.Potential(f"{self._prefix}_pixels{which}_trusted", trust_wall(spans))

    def _swapped_pixel_arrays(self, which, index, shape, numerics, lights, arrays):
        if which not in self.pixel_node_counts:
            return super()._swapped_pixel_arrays(which, index, shape, numerics, lights, arrays)
        pixels = (which, index, shape)
        columns = [
            self._columns_of(i, numerics, swap=True, pixels=pixels if c.kind == "radial" else None)
            for i, c in enumerate(self._columns)
        ]
        own, _ = self._build_with(columns, numerics, lights, self._pixel_columns[which], index)
        nodes = {
            self._pixel_node_name(which, i): c.nodes
            for i, c in enumerate(columns)
            if c.kind == "radial"
        }
        return own, nodes

    def _pixel_node_name(self, which, index):
        return f"{getattr(self, '_prefix', '')}_pixels{which}_nodes{index}"

    def _hold_pixel_nodes(self, which, index, node_radii):
        if self._model is None:
            return pt.as_tensor_variable(node_radii)
        name = self._pixel_node_name(which, index)
        self._data[name] = ("pixel nodes", which)
        return pt.specify_shape(hold_data(self._model, name, node_radii), node_radii.shape)

    def _node_values(self, form, nodes):
        """``f(Z(r_m))``: ``(M,)`` or ``(N, M)``."""
        z = self._z_at(form, nodes)
        return z if self.tracer_scale == "linear" else 10.0**z

    @staticmethod
    def _z_at(form, radii):
        """``Z`` at radii ``(F,)`` or per galaxy ``(Ng, F)``: ``(F,)`` or ``(N, F)``."""
        radii = pt.as_tensor_variable(radii)
        r = radii[None, :] if radii.ndim == 1 else radii[:, None, :]  # as (.., H, W) images
        z = pt.as_tensor_variable(form.of_radius(r))
        if z.ndim == 3:
            z = z[:, 0, :]
        elif z.ndim == 2 and radii.ndim == 1:
            z = z[0]
        return (
            pt.broadcast_to(z, (*z.shape[:-1], radii.shape[-1]))
            if z.ndim
            else (pt.broadcast_to(z, radii.shape))
        )

    # ------------------------------------------------------------------ node count
    def _node_count(self, form, r_max, breaks) -> int:
        degree = form.polynomial_degree
        exact = degree == 0 or (
            self.tracer_scale == "linear" and degree is not None and degree < STENCIL
        )
        if exact:
            return STENCIL  # the interpolant is exact
        if self.dynamic_range is not None:
            return self._stated_count(form, r_max, self.dynamic_range)
        measured = self._measured_count(form, r_max, breaks)
        if measured is not None:
            return measured
        return self._stated_count(form, r_max, DEFAULT_DYNAMIC_RANGE)

    def _stated_count(self, form, r_max, dynamic_range):
        if self.tracer_scale == "log":
            count = exponential_node_count(dynamic_range, self.tolerance)
        else:
            count = DEFAULT_LINEAR_NODES
        if form.feature_scale is not None and not form.breakpoints:
            features = NODES_PER_FEATURE * float(np.max(r_max)) / form.feature_scale
            count = max(count, 1 + math.ceil(features))
        return int(min(count, MAX_RADIAL_NODES))

    def _measured_count(self, form, r_max, breaks):
        """The smallest count that meets the tolerance at the prior's typical draws, or None."""
        fractions = pt.dvector("fractions")
        r_max_t = pt.as_tensor_variable(np.asarray(r_max, dtype=float))
        radii = r_max_t[..., None] * fractions if r_max_t.ndim else r_max_t * fractions
        z = self._z_at(form, radii)
        prior = ParameterDraws.from_prior([z], PRIOR_DRAWS)
        if not prior:
            return None
        z_at = prior.function([z], [fractions])
        # the count each (draw, galaxy) needs: a batch is covered galaxy by galaxy, since one
        # galaxy's extreme draw should not set the cost of all (the posterior is checked)
        needed = None
        for count in NODE_COUNTS:
            layout = ChebyshevLayout(count, breaks)
            probes = layout.probes()
            where = np.concatenate([probes, layout.fractions])
            errors = []
            for draw in range(prior.n):
                (values,) = z_at(where, draw=draw)
                z_probes, z_nodes = values[..., : probes.size], values[..., probes.size :]
                errors.append(layout_error(layout, z_probes, z_nodes, self.tracer_scale))
            errors = np.asarray(errors)  # (draws,) or (draws, N)
            if needed is None:
                needed = np.full(errors.shape, MAX_RADIAL_NODES)
            needed = np.where((errors <= self.tolerance) & (needed > count), count, needed)
            if np.mean(needed <= count) >= COVERED_FRACTION:
                break
        ordered = np.sort(needed, axis=None)
        count = int(ordered[math.ceil(COVERED_FRACTION * ordered.size) - 1])
        self.covered = float(np.mean(needed <= count))
        return count

    # ------------------------------------------------------------------ check
    def _exact_fields(self):
        fields = []
        for component in self.components:
            for x, y in self.numerics.point_sets:
                z = component.tracer(pt.as_tensor_variable(x), pt.as_tensor_variable(y))
                fields.append(z if self.tracer_scale == "linear" else 10.0**z)
        return fields

    def check(self) -> float:
        """The largest error of the map against the exact full path at a few prior draws.

        Warns (:class:`RadialAccuracyWarning`) when it exceeds the tolerance while the node
        count covers every prior draw (or was set by a stated ``dynamic_range``). Returns 0
        when the model has no prior to draw from.
        """
        outputs = self._check_outputs()
        draws = ParameterDraws.from_prior(outputs, CHECK_DRAWS, seed=20240314)
        worst = self._error_at(draws, outputs)
        if worst > self.tolerance and (self.covered is None or self.covered == 1.0):
            self._warn(worst, "a prior draw")
        return worst

    def check_posterior(self, posterior, n=CHECK_DRAWS) -> float:
        """The largest error against the exact full path at ``n`` posterior draws (an ArviZ
        ``posterior`` group), of the map and of every likelihood's own basis at its pixels;
        warns when it exceeds the tolerance.

        Returns NaN when the posterior lacks the model's random variables.
        """
        outputs = self._check_outputs()
        draws = ParameterDraws.from_posterior(outputs, posterior, n)
        if not draws:
            return float("nan")
        worst = self._error_at(draws, outputs)
        if worst > self.tolerance:
            self._warn(worst, "a posterior draw")
        return worst

    def _check_outputs(self):
        """What a check evaluates at each draw: the coefficients, the tracer ratio at the
        pixels of each likelihood with nodes of its own (:meth:`_basis_for_pixels`), and the
        exact fields."""
        own = [self._pixel_ratios[which] for which in self.pixel_node_counts]
        return [self._coefficients(), *own, *self._exact_fields()]

    def _error_at(self, draws, outputs) -> float:
        if not draws:
            return 0.0
        numerics = self.numerics
        evaluate = draws.function(outputs)
        light, basis = self._value("light"), self._value("basis")
        bright = light >= CHECK_LIGHT_FLOOR * np.max(light, axis=-1, keepdims=True)
        n_sets = len(numerics.point_sets)
        own = [self._compact[which][0] for which in self.pixel_node_counts]  # flat indices
        errors = []
        for draw in range(draws.n):
            c, *values = evaluate(draw=draw)
            ratios, fields = values[: len(own)], values[len(own) :]
            approx = np.einsum("...pk,...k->...p", basis, c)
            # the components' numerators summed before convolving (convolution is linear)
            weighted = [
                sum(fields[i * n_sets + k] * lights[k] for i, lights in enumerate(self._lights))
                for k in range(n_sets)
            ]
            exact = convolve_and_bin_in_chunks(numerics, weighted)
            exact = np.broadcast_to(exact, (*approx.shape[:-1], *numerics.grid.shape))
            with np.errstate(divide="ignore", invalid="ignore"):
                truth = exact.reshape(approx.shape) / light  # the exact tracer ratios
                pairs = [(approx / light, truth, bright)]
            # each likelihood's own basis at its pixels (flat indices into the maps)
            flat_truth = truth.reshape(-1)
            flat_bright = np.broadcast_to(bright, truth.shape).reshape(-1)
            pairs += [(r, flat_truth[i], flat_bright[i]) for i, r in zip(own, ratios)]
            errors.append(max(self._ratio_error(*pair) for pair in pairs))
        del evaluate
        release_freed_memory()  # the compiled graph's fields of a batch, held in reference cycles
        logger.info("radial transfer: %s nodes; errors at draws %s", self.node_counts, errors)
        return max(errors)

    def _ratio_error(self, ratio, truth, bright) -> float:
        """The largest error of tracer ratios against the exact ones at ``bright`` pixels
        (dex for log averaging, tracer units for linear)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.tracer_scale == "log":
                error = np.abs(np.log10(ratio / truth))
            else:
                error = np.abs(ratio - truth)
        bright = np.broadcast_to(bright, error.shape)
        return float(np.nanmax(np.where(bright, error, 0.0), initial=0.0))

    def _warn(self, worst, where):
        counts = "+".join(str(c.count) for c in self._columns if c.kind == "radial")
        what = "tracer map"
        if self.pixel_node_counts:
            what += " (or a likelihood's own basis at its pixels)"
        warnings.warn(
            f"radial transfer ({counts} nodes): at {where} its {what} differs from the "
            f"exact full path by {worst:.1e} (tolerance {self.tolerance:.0e} "
            f"{'dex' if self.tracer_scale == 'log' else 'in tracer units'}). Give "
            "observe(..., dynamic_range=...) a larger value, or method='full' for an exact map",
            RadialAccuracyWarning,
            stacklevel=6,  # the user's observe() or fit()
        )

    def describe(self):
        text = super().describe()
        if self.covered is not None:
            text += f"; nodes meet the tolerance at {self.covered:.0%} of prior draws"
        for counts in self.pixel_node_counts.values():
            text += (
                f"; {'+'.join(map(str, counts))} nodes for the likelihood's pixels (the radii "
                "within the PSF's reach of them)"
            )
        return text


def _released(columns):
    """Radial columns without their weight fields (a new PSF recomputes them; only the
    coefficients are kept, for the graph)."""
    if columns.kind != "radial":
        return columns
    return dataclasses.replace(columns, factors=None)
