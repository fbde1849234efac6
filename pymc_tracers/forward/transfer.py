"""Transfer renderers: fixed light and PSF, a numerator linear in a few tracer coefficients.

When the light profiles and the PSF are fixed, each component's ``f(Z)`` (``Z`` for linear
averaging, ``10**Z`` for log) is written as coefficients times fixed spatial factors,
``f(Z) = sum_k c_k phi_k(x, y)``, and the numerator of the light-weighted ratio is a fixed
matrix times the coefficients::

    bin(K * (I f(Z))) = B c,    B[:, k] = bin(K * (I phi_k))

``B`` is built once by one convolution per column; every evaluation is one matrix-vector
product, and gradients flow through ``c`` for any parameters in it. The factors come from:

* **radial nodes** (:class:`~pymc_tracers.forward.radial.RadialTransferRenderer`): a radial
  tracer's values at ``M`` radii, ``c_m = f(Z(r_m))``, with local interpolation weights as
  factors (:mod:`~pymc_tracers.forward.radial_nodes`): any radial profile, either averaging
  scale, any parameters, accurate to a stated tolerance;
* **linear terms** (:class:`~pymc_tracers.forward.linear.LinearBasisRenderer`): tracers that
  are linear in their parameters (:meth:`~pymc_tracers.TracerProfile.linear_terms`), with
  linear averaging: exact;
* a tracer with no free parameters is one fixed column.

A likelihood over a subset of pixels reads a compact per-pixel basis of its own
(:meth:`TransferRenderer.at_pixels`), and a new PSF recomputes every basis
(:meth:`TransferRenderer.psf_updates`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import zero_grad
from pytensor.graph.traversal import ancestors

from pymc_tracers.forward.base import RenderedMaps, Renderer, current_model, hold_data
from pymc_tracers.forward.components import is_free
from pymc_tracers.forward.pixel_groups import PixelGroups, rows_of
from pymc_tracers.forward.ratio import sky_epsilon
from pymc_tracers.memory import release_freed_memory
from pymc_tracers.numerics import make_numerics

__all__ = ["DEFAULT_TOLERANCE", "TransferRenderer"]

logger = logging.getLogger("pymc_tracers")

#: Default largest error of a radial transfer's tracer map (tracer units: dex for log).
DEFAULT_TOLERANCE = 1e-7
#: How build-time graphs (fixed fields, prior draws) are compiled: C code with few rewrites
#: (quick to compile; PyTensor's Python-only mode cannot run every elementwise op).
BUILD_MODE = pytensor.compile.mode.Mode(linker="cvm", optimizer="fast_compile")
#: Working memory of one chunk of galaxies and basis columns while building (bytes).
BUILD_CHUNK_BYTES = 2**27
#: Bytes per rendered sample of one column while building: the weight field, its product with
#: the light, the FFT spectrum and the convolved field (float64 and complex128). An upper
#: estimate: with it, a 300-galaxy batch's build used ~0.4 of BUILD_CHUNK_BYTES (tracemalloc).
BUILD_BYTES_PER_SAMPLE = 96


@dataclass
class _Columns:
    """One component's columns: ``f(Z) = sum_k coefficients[..., k] x factors_k``.

    ``factors(start, stop, point_set, galaxies=slice(None))`` gives the fields of columns
    ``start .. stop - 1`` on one set of sample points, ``(stop - start, [Ng,] H, W)``: of the
    galaxies ``galaxies`` (a slice) when they differ between galaxies.
    """

    kind: str  # "radial", "linear" or "fixed"
    count: int
    coefficients: object  # tensor (K,) or (N, K)
    factors: object
    nodes: object = None  # radial: the node radii (arcsec), (M,) or (Ng, M)


class TransferRenderer(Renderer):
    """Base class of the transfer renderers (see the module docstring)."""

    def __init__(
        self,
        components,
        numerics,
        tracer_scale,
        n_galaxies,
        *,
        tolerance=DEFAULT_TOLERANCE,
        dynamic_range=None,
    ):
        super().__init__(components, numerics, tracer_scale, n_galaxies)
        self.tolerance = float(tolerance)
        self.dynamic_range = dynamic_range
        self._data = {}  # data name -> what it holds (for a PSF swap)
        self._compact = []  # (index, shape) of the per-pixel bases given to likelihoods
        self._pixel_ratios = {}  # likelihood number -> its tracer ratio at its pixels (tensor)
        self._model = current_model()
        if self._model is not None:
            index = sum(1 for n in self._model.named_vars if n.endswith("_light"))
            self._prefix = f"pmt_transfer{index}"
        self._node_radii = {}
        self._lights = self._fixed_lights(numerics)
        self._columns = [self._columns_of(i, numerics) for i in range(len(components))]
        arrays = self._build(numerics, self._lights)
        self._register(arrays)

    # ------------------------------------------------------------------ what subclasses give
    def _columns_of(self, index, numerics, *, swap=False) -> _Columns:
        """The columns of component ``index`` on ``numerics`` (``swap``: for a new PSF, reusing
        the coefficients already in the model)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ building the basis
    def _fixed_lights(self, numerics):
        """Each component's surface brightness at each set of sample points, in numpy."""
        graphs = [
            [c.light.surface_brightness(x, y) for x, y in numerics.point_sets]
            for c in self.components
        ]
        flat = [g for per_set in graphs for g in per_set]
        values = pytensor.function([], flat, mode=BUILD_MODE)()
        if sum(v.nbytes for v in values) > 2**24:
            # the compiled graph's intermediate fields sit in reference cycles until a gc
            release_freed_memory()
        n_sets = len(numerics.point_sets)
        return [values[i * n_sets : (i + 1) * n_sets] for i in range(len(self.components))]

    def _build(self, numerics, lights, rows=None):
        """The light, numerator-basis and fallback-basis maps (numpy), computed once per PSF.

        Returns ``light (lead, P)``, ``basis (lead, P, K)`` and ``fallback (lead, P, K)``
        with ``P = ny nx`` data pixels and ``lead`` the galaxy axis, if any. With ``rows``
        (flat indices into ``(lead, P)``: a likelihood's used pixels), ``basis`` and
        ``fallback`` are those rows only, ``(rows, K)``, so a batch's full maps are never held.

        A batch is rendered in chunks of galaxies (and of columns): the working memory of the
        rendered fields and their spectra stays near :data:`BUILD_CHUNK_BYTES` however many
        galaxies there are.
        """
        ny, nx = numerics.grid.shape
        n_pixels, n_sets = ny * nx, len(numerics.point_sets)
        lead, rendered_each = self._lead(numerics, lights)
        n_galaxies = lead[0] if lead else 1
        n_columns = sum(c.count for c in self._columns)
        if rows is not None and not lead:  # maps shared by every galaxy of the likelihood
            rows = np.asarray(rows) % n_pixels
        n_rows = n_galaxies * n_pixels if rows is None else len(rows)
        light_flat = np.empty((n_galaxies, n_pixels))
        basis = np.empty((n_rows, n_columns))
        fallback = np.empty((n_rows, n_columns))
        samples = sum(math.prod(x.shape[-2:]) for x, _ in numerics.point_sets)
        column_bytes = BUILD_BYTES_PER_SAMPLE * samples  # one column of one galaxy
        per_chunk = n_galaxies  # fields shared by every galaxy are rendered once
        if rendered_each:
            per_chunk = int(np.clip(BUILD_CHUNK_BYTES // (column_bytes * n_columns), 1, None))
        for first in range(0, n_galaxies, per_chunk):
            last = min(first + per_chunk, n_galaxies)
            chosen = slice(first, last) if rendered_each else slice(None)
            part = numerics.for_galaxies(chosen) if rendered_each else numerics
            part_lights = [[_galaxies_of(x, chosen) for x in light] for light in lights]
            part_lead = (last - first,) if lead else ()
            total = [sum(light[k] for light in part_lights) for k in range(n_sets)]
            light_flat[first:last] = np.broadcast_to(
                part.convolve_and_bin(total), (*part_lead, ny, nx)
            ).reshape((-1, n_pixels))
            if rows is None:  # the rows of these galaxies, and their columns in the chunk
                target, local = slice(first * n_pixels, last * n_pixels), slice(None)
            else:
                target = np.flatnonzero((rows >= first * n_pixels) & (rows < last * n_pixels))
                local = rows[target] - first * n_pixels
            rendered = (last - first) if rendered_each else 1
            step = int(np.clip(BUILD_CHUNK_BYTES // (column_bytes * rendered), 1, None))
            start = 0
            for light, columns in zip(part_lights, self._columns):
                for low in range(0, columns.count, step):
                    high = min(low + step, columns.count)
                    factors = [columns.factors(low, high, k, chosen) for k in range(n_sets)]
                    fields = [
                        _with_column_axis(f, light_k) * light_k[None]
                        for f, light_k in zip(factors, light)
                    ]
                    if numerics.n_psfs is not None:  # the kernel stack needs a galaxy axis
                        fields = [f if f.ndim == 4 else f[:, None] for f in fields]
                    numerator = part.convolve_and_bin(fields)
                    shaped = [_with_column_axis(f, light_k) for f, light_k in zip(factors, light)]
                    means = part.pixel_mean(shaped) / len(self.components)
                    cols = slice(start + low, start + high)
                    for out, values in ((basis, numerator), (fallback, means)):
                        values = np.broadcast_to(values, (high - low, *part_lead, ny, nx))
                        out[target, cols] = values.reshape((high - low, -1))[:, local].T
                start += columns.count
        if basis.nbytes > 2**26:
            release_freed_memory()  # the rendered fields of a large batch
        light_flat = light_flat.reshape((*lead, n_pixels))
        if rows is None:
            basis = basis.reshape((*lead, n_pixels, n_columns))
            fallback = fallback.reshape((*lead, n_pixels, n_columns))
        return {"light": light_flat, "basis": basis, "fallback": fallback}

    def _lead(self, numerics, lights):
        """The galaxy axis of the maps, ``()`` or ``(N,)``, and whether each galaxy's fields
        differ (or all galaxies share them and differ only in their coefficients)."""
        leads = [np.broadcast_shapes(*(x.shape[:-2] for light in lights for x in light))]
        for columns in self._columns:
            if columns.factors(0, 1, 0, slice(0, 1)).ndim == 4:  # columns of each galaxy
                n = self.n_galaxies or numerics.n_psfs or columns.factors(0, 1, 0).shape[1]
                leads.append((n,))
        if numerics.n_psfs is not None:  # one PSF per galaxy: every column is per galaxy
            leads.append((numerics.n_psfs,))
        rendered = np.broadcast_shapes(*leads)
        if self.n_galaxies is not None and self._coefficients().ndim == 2:
            leads.append((self.n_galaxies,))
        return np.broadcast_shapes(*leads), rendered != ()

    def _build_with(self, columns, numerics, lights, graph_columns=None, rows=None):
        """:meth:`_build` and :meth:`_coefficients` with other columns (a new PSF's, or a
        likelihood's own); ``graph_columns``: columns whose coefficients they take (a PSF swap
        keeps the graph's own, only their shapes matter)."""
        if graph_columns is not None:
            for new, old in zip(columns, graph_columns):
                new.coefficients = old.coefficients
        saved, self._columns = self._columns, columns
        try:
            return self._build(numerics, lights, rows), self._coefficients()
        finally:
            self._columns = saved

    def _coefficients(self):
        parts = [pt.as_tensor_variable(c.coefficients) for c in self._columns]
        if any(p.ndim == 2 for p in parts) and self.n_galaxies is not None:
            parts = [
                p if p.ndim == 2 else pt.broadcast_to(p, (self.n_galaxies, p.shape[0]))
                for p in parts
            ]
        elif any(p.ndim == 2 for p in parts):
            batch = next(p for p in parts if p.ndim == 2).shape[0]
            parts = [p if p.ndim == 2 else pt.broadcast_to(p, (batch, p.shape[0])) for p in parts]
        joined = parts[0] if len(parts) == 1 else pt.concatenate(parts, axis=-1)
        return pt.cast(joined, "float64")

    # ------------------------------------------------------------------ model data
    def _register(self, arrays):
        """Hold the maps as model data (swappable on a PSF change), or as constants."""
        model = self._model
        if model is None:
            self._tensors = {k: pt.as_tensor_variable(v) for k, v in arrays.items()}
            return
        self._tensors = {}
        for part, value in arrays.items():
            name = f"{self._prefix}_{part}"
            self._tensors[part] = pt.specify_shape(hold_data(model, name, value), value.shape)
            self._data[name] = part
        for name in self._node_radii:
            self._data[name] = ("nodes",)

    def _value(self, part):
        tensor = self._tensors[part]
        if self._model is None:
            return tensor.data
        name = f"{self._prefix}_{part}"
        return self._model[name].get_value(borrow=True)

    # ------------------------------------------------------------------ rendering
    def _render(self):
        light = self._tensors["light"]
        coefficients = self._coefficients()
        basis, fallback = self._tensors["basis"], self._tensors["fallback"]
        ny, nx = self.numerics.grid.shape
        # the tracer map from one basis, (B + e G) / (L + e) (as at_pixels): with the maps
        # fixed it folds into one constant, and an evaluation is one matrix-vector product
        positive = pt.maximum(light, 0.0)
        epsilon = zero_grad(sky_epsilon(pt.max(positive, axis=-1, keepdims=True)))
        folded = (basis + epsilon[..., None] * fallback) / (positive + epsilon)[..., None]
        if folded.ndim == 2 and coefficients.ndim == 1:
            # columns as rows: a product over a few long rows vectorises, one over many
            # short rows (K of them each) does not
            ratio = pt.dot(coefficients, folded.T)
        else:
            ratio = _matvec(folded, coefficients)
        if self.tracer_scale == "log":
            ratio = pt.log10(pt.maximum(ratio, np.finfo(np.float64).tiny))
        numerator = _matvec(basis, coefficients)  # the weighted sum, for binned likelihoods
        if basis.ndim == 3 or coefficients.ndim == 2:
            # static where possible, so the light does not depend on the tracer's inputs
            n = basis.type.shape[0] if basis.ndim == 3 else self.n_galaxies
            n = coefficients.shape[0] if n is None else n
            shape = (n, ny, nx)
            light = pt.broadcast_to(light, (n, ny * nx))
        else:
            shape = (ny, nx)
        weighted_sum, light_sum = numerator.reshape(shape), light.reshape(shape)
        tracer_map = ratio.reshape(shape)
        image = light_sum * self.numerics.flux_scale
        return RenderedMaps(image, tracer_map, light_sum, weighted_sum)

    def at_pixels(self, index, shape):
        """The tracer map at flat ``index`` into ``shape``, from a compact per-pixel basis.

        The light, the empty-sky blend and the division are folded into one basis,
        ``(B + e G) / (L + e)`` at the used pixels, computed once in numpy and held as data
        of its own (recomputed on a PSF swap): an evaluation is one product of the
        coefficients with it, O(pixels used x columns), and never touches the full maps. A
        batch's basis is held as one array per group of galaxies
        (:class:`~pymc_tracers.forward.pixel_groups.PixelGroups`), so that no evaluation
        copies a slice of it (a compiled graph copies slices of its inputs).
        """
        index, which = np.asarray(index), len(self._compact)
        arrays, coefficients = self._basis_for_pixels(which, index, tuple(shape))
        blocks = self._compact_basis(index, shape, arrays)
        names = [f"{self._prefix}_pixels{which}"]
        if len(shape) != 2:
            names = [f"{names[0]}_{k}" for k in range(len(blocks))]
        held = []
        for k, (name, values) in enumerate(zip(names, blocks)):
            if self._model is not None:
                held.append(pt.specify_shape(hold_data(self._model, name, values), values.shape))
                self._data[name] = ("pixels", index, tuple(shape), k, which)
            else:
                held.append(pt.as_tensor_variable(values))
        self._compact.append((index, tuple(shape)))
        if len(shape) == 2:  # one galaxy: (used, K)
            ratio = pt.dot(held[0], coefficients)
        else:  # galaxies in groups of similar pixel counts, each block (n, width, K)
            ratio = PixelGroups.of(index, shape).combine(held, coefficients)
        self._pixel_ratios[which] = ratio  # before the log: what a check compares
        if self.tracer_scale == "linear":
            return ratio
        return pt.log10(pt.maximum(ratio, np.finfo(np.float64).tiny))

    def _basis_for_pixels(self, which, index, shape):
        """The light map, the basis rows of the pixels (flat) ``index`` into ``shape``, and the
        coefficients (tensor), that likelihood ``which`` reads: the renderer's own (a subclass
        may build a basis for those pixels)."""
        arrays = {part: self._value(part) for part in ("light", "basis", "fallback")}
        return rows_of(arrays, index, shape), self._coefficients()

    def _swapped_pixel_arrays(self, which, index, shape, numerics, lights, arrays):
        """:meth:`_basis_for_pixels`'s maps under a new PSF (``arrays``: the renderer's own),
        and new values of any model data it holds besides them."""
        return rows_of(arrays, index, shape), {}

    def _compact_basis(self, index, shape, arrays):
        """``(B + e G) / (L + e)`` at the used pixels (``arrays``: the light map and the basis
        rows of those pixels), as a list of arrays: ``[(used, K)]`` for one galaxy, else one
        block ``(galaxies, width, K)`` per group of galaxies (padding rows are zero; see
        :class:`~pymc_tracers.forward.pixel_groups.PixelGroups`)."""
        light = arrays["light"]
        galaxy, pixel = np.divmod(index, int(np.prod(shape[-2:])))
        epsilon = sky_epsilon(np.max(np.maximum(light, 0.0), axis=-1, keepdims=True))
        if light.ndim == 1:
            light_used, epsilon_used = light[pixel], np.broadcast_to(epsilon, pixel.shape)
        else:
            light_used, epsilon_used = light[galaxy, pixel], epsilon[galaxy, 0]
        rows = (arrays["basis"] + epsilon_used[:, None] * arrays["fallback"]) / (
            np.maximum(light_used, 0.0) + epsilon_used
        )[:, None]
        if len(shape) == 2:
            return [rows]
        return PixelGroups.of(index, shape).blocks(rows)

    # ------------------------------------------------------------------ PSF swap
    def psf_updates(self, psf) -> dict:
        """New values of this renderer's model data under ``psf``, by data name."""
        if self._model is None:
            raise ValueError("only a renderer built inside a PyMC model holds swappable data")
        numerics = make_numerics(
            self.numerics.grid,
            psf,
            self.numerics.name,
            n_galaxies=self.numerics.n_psfs,
            lens=self.numerics.lens,
        )
        if not numerics.is_fixed:
            raise ValueError("the new PSF has free parameters; a transfer needs a fixed PSF")
        lights = self._fixed_lights(numerics)
        columns = [self._columns_of(i, numerics, swap=True) for i in range(len(self.components))]
        arrays, _ = self._build_with(columns, numerics, lights, self._columns)
        swapped = {name: c.nodes for name, c in zip(self._node_names(), columns)}
        updates, compact = {}, {}
        for name, what in self._data.items():
            if isinstance(what, str):
                updates[name] = arrays[what]
            elif what[0] == "nodes":
                updates[name] = swapped[name]
            elif what[0] == "pixel nodes":
                continue  # given with their likelihood's basis below
            else:
                _, index, shape, block, which = what
                if which not in compact:  # a batch's blocks come from one computation
                    own, extra = self._swapped_pixel_arrays(
                        which, index, shape, numerics, lights, arrays
                    )
                    updates.update(extra)
                    compact[which] = self._compact_basis(index, shape, own)
                updates[name] = compact[which][block]
        return updates

    def _node_names(self):
        return [f"{getattr(self, '_prefix', '')}_nodes{i}" for i in range(len(self.components))]

    def _hold_nodes(self, index, node_radii):
        """The node radii as model data (they move with the render grid on a PSF swap)."""
        if self._model is None:
            return pt.as_tensor_variable(node_radii)
        name = f"{self._prefix}_nodes{index}"
        self._node_radii[name] = node_radii
        return pt.specify_shape(hold_data(self._model, name, node_radii), node_radii.shape)

    def describe(self):
        n_columns = sum(c.count for c in self._columns)
        text = f"{self.path}: {n_columns} precomputed columns"
        radial = [c.count for c in self._columns if c.kind == "radial"]
        if radial:
            text += f" ({'+'.join(map(str, radial))} radial nodes"
            measured = f", error {self.max_error:.1e} at prior draws" if self.max_error else ""
            text += measured + ")"
        return text


def convolve_and_bin_in_chunks(numerics, fields):
    """``numerics.convolve_and_bin`` of numpy fields ``([N,] H, W)`` with one PSF per galaxy,
    a few galaxies at a time: a large batch's kernel transforms are never cached all at once
    (they would stay with the numerics)."""
    n = numerics.n_psfs
    samples = sum(math.prod(f.shape[-2:]) for f in fields)
    step = max(1, BUILD_CHUNK_BYTES // (BUILD_BYTES_PER_SAMPLE * samples))
    if n is None or step >= n:
        return numerics.convolve_and_bin(fields)
    parts = []
    for first in range(0, n, step):
        chosen = slice(first, first + step)
        part = numerics.for_galaxies(chosen)
        parts.append(part.convolve_and_bin([_galaxies_of(f, chosen) for f in fields]))
    return np.concatenate(parts)


def _galaxies_of(values, chosen, ndim=3):
    """``values`` of the galaxies ``chosen`` (a slice), for arrays of ``ndim`` dimensions
    whose galaxy axis is third from last; arrays shared by every galaxy as they are."""
    if chosen == slice(None) or values.ndim < ndim or values.shape[-3] == 1:
        return values
    return values[..., chosen, :, :]


def _with_column_axis(factors, light):
    """Columns ``(k, [Ng,] H, W)`` shaped to broadcast against light ``([N,] H, W)`` after a
    leading column axis."""
    missing = light.ndim - (factors.ndim - 1)
    if missing <= 0:
        return factors
    return factors.reshape((factors.shape[0], *([1] * missing), *factors.shape[1:]))


def _matvec(basis, coefficients):
    """``basis @ coefficients`` over the last axis, with galaxy axes on either side."""
    if basis.ndim == 2 and coefficients.ndim == 1:
        return pt.dot(basis, coefficients)
    if basis.ndim == 2:  # (P, K) shared, (N, K) coefficients
        return pt.dot(coefficients, basis.T)
    if coefficients.ndim == 1:  # (N, P, K) with shared coefficients
        return pt.dot(basis, coefficients)
    return pt.matmul(basis, coefficients[..., None])[..., 0]


def fixed_columns(tracer, tracer_scale, points) -> _Columns:
    """One column for a tracer without free parameters: ``f(Z)`` itself, coefficient 1."""
    graphs = [tracer(pt.as_tensor_variable(x), pt.as_tensor_variable(y)) for x, y in points]
    if tracer_scale == "log":
        graphs = [10.0**g for g in graphs]
    fields = pytensor.function([], graphs, mode=BUILD_MODE)()

    def factors(start, stop, k, galaxies=slice(None)):
        return _galaxies_of(fields[k], galaxies)[None]

    return _Columns("fixed", 1, pt.constant(np.ones(1)), factors)


def is_symbolic(tracer) -> bool:
    """True when the tracer depends on anything but constants (variables, model data)."""
    x = pt.as_tensor_variable(np.zeros((1, 1)))
    return any(v.owner is None and is_free(v) for v in ancestors([tracer(x, x)]))
