"""The ``disc_radial`` path: fixed light, PSF and disc geometry; free rotation and dispersion.

With the disc's centre, position angle and inclination fixed, each sub-pixel has fixed disc
coordinates ``(R, theta)``, and the moment fields are sums of fixed angular factors times
functions of ``R`` (``u = v - v_sys``, ``c = cos theta``, ``s = sin theta``)::

    I u                = I sin i [c V(R) + s V_r(R)]
    I (u^2 + sigma^2)  = I sin^2 i [c^2 V^2 + 2 c s V V_r + s^2 V_r^2] + I sigma(R)^2

Each function ``g(R)`` is represented by its values at ``M`` radial nodes (equally spaced in
``asinh(R / pixel)``) with fixed local interpolation weights ``w_m(R)``
(:mod:`~pymc_tracers.forward.radial_nodes`), so every moment sum is a fixed basis
``B[p, m] = bin(K * (I a w_m))`` times node values: one small matrix product per angular
factor per evaluation, with gradients through the node values for any
free parameters of ``V``, ``V_r``, ``sigma`` and ``v_sys``.

The number of nodes is chosen for the requested tolerance (km/s)
(:mod:`~pymc_tracers.kinematics.disc_nodes`); the maps' measured difference from the exact
full path is :attr:`DiscTransferRenderer.max_error`.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytensor
import pytensor.tensor as pt

from pymc_tracers.forward.base import PSFSwapError, Renderer, current_model, hold_data
from pymc_tracers.forward.components import is_free
from pymc_tracers.forward.radial_nodes import NodeLayout, node_fields
from pymc_tracers.forward.transfer import BUILD_MODE
from pymc_tracers.kinematics.disc_nodes import DiscNodeCount, KinematicAccuracyWarning, at_nodes
from pymc_tracers.kinematics.dispersion import DiscDispersion
from pymc_tracers.kinematics.full import FAINT_FRACTION, KinematicMaps
from pymc_tracers.kinematics.moments import moment_maps
from pymc_tracers.kinematics.velocity_field import DiscVelocity
from pymc_tracers.numerics import kernel_for
from pymc_tracers.profiles.light import per_galaxy
from pymc_tracers.profiles.tracer import Constant, _numeric

__all__ = ["DiscTransferRenderer", "disc_transfer_problem", "KinematicAccuracyWarning"]

logger = logging.getLogger("pymc_tracers")

#: Working memory of one chunk of basis fields while building (bytes).
BUILD_CHUNK_BYTES = 2**27


def _same_geometry(a, b) -> bool:
    if a is b:
        return True
    if not (a.is_fixed and b.is_fixed):
        return False
    try:
        return all(
            np.array_equal(*np.broadcast_arrays(_numeric(u), _numeric(v)))
            for u, v in zip(a.parameters().values(), b.parameters().values())
        )
    except ValueError:
        return False


def disc_transfer_problem(components, numerics) -> str | None:
    """Why the ``disc_radial`` path does not apply, or None when it does."""
    if not numerics.is_fixed:
        return "the PSF has free parameters"
    if len(components) != 1:
        return "several components (the disc_radial path takes one disc)"
    (component,) = components
    free = [k for k, v in component.light.parameters().items() if is_free(v)]
    if free:
        return f"the light has free parameters ({', '.join(free)})"
    velocity = component.velocity
    if not isinstance(velocity, DiscVelocity):
        return f"the velocity is a {type(velocity).__name__}, not a pmt.DiscVelocity"
    if not velocity.geometry.is_fixed:
        free = [k for k, v in velocity.geometry.parameters().items() if is_free(v)]
        return f"the disc geometry has free parameters ({', '.join(free)})"
    dispersion = component.dispersion
    if isinstance(dispersion, DiscDispersion):
        if not _same_geometry(dispersion.geometry, velocity.geometry):
            return "the dispersion's DiscGeometry differs from the velocity's"
    elif not isinstance(dispersion, Constant):
        return (
            f"the dispersion is a {type(dispersion).__name__}; use a number, pmt.Constant or "
            "pmt.DiscDispersion on the velocity's geometry"
        )
    return None


class DiscTransferRenderer(DiscNodeCount, Renderer):
    """Fixed angular factors x functions of disc radius at radial nodes (module docstring).

    Attributes
    ----------
    node_count : int
        Radial nodes ``M``: the fewest whose maps meet the tolerance at the check draws.
    bound_node_count : int
        Radial nodes that a pointwise bound on the fields' interpolation error asks for (an
        upper count).
    covered : float or None
        Fraction of the prior draws at which ``M`` meets the tolerance (None without a prior).
    max_error : float
        Largest difference (km/s) of the velocity and dispersion maps from the full path at a
        few prior draws (bright pixels), measured when built.
    """

    path = "disc_radial"

    def __init__(self, components, numerics, n_galaxies, *, lsf, tolerance):
        super().__init__(components, numerics, "linear", n_galaxies)
        (self.component,) = components
        self.lsf = lsf
        self.tolerance = float(tolerance)
        self.velocity = self.component.velocity
        self.geometry = self.velocity.geometry
        self.covered = None
        self._held, self._data_names = None, {}
        self._prepare()
        self.bound_node_count = self._choose_node_count()
        self.max_error = self._settle_node_count()

    @property
    def reference(self):
        return per_galaxy(self.velocity.v_sys)

    # ------------------------------------------------------------------ radial functions
    def _functions(self):
        """The radial functions ``g(R)`` of the moment fields, by name."""
        velocity, dispersion = self.velocity, self.component.dispersion
        functions = {"V": velocity.rotation}
        if velocity.radial is not None:
            functions["Vr"] = velocity.radial
        if isinstance(dispersion, DiscDispersion):
            functions["sigma"] = dispersion.profile
        return functions

    def _prepare(self):
        """Light, disc coordinates and sin i on every point set (numpy)."""
        numerics = self.numerics
        self._lights, self._coordinates = [], []
        for x, y in numerics.point_sets:
            light = pytensor.function(
                [], self.component.light.surface_brightness(x, y), mode=BUILD_MODE
            )()
            if self.n_galaxies is not None and light.ndim == 2:
                light = np.broadcast_to(light, (self.n_galaxies, *light.shape))
            self._lights.append(light)
            self._coordinates.append(self.geometry.coordinates_numpy(x, y))
        r_max = max(np.max(r) for r, _, _ in self._coordinates)
        self.r_max = float(r_max) * (1 + 1e-12) + 1e-12  # every radius strictly inside
        # nodes are equally spaced in asinh(R / a): linear in R within a pixel of the centre,
        # logarithmic far out, where deprojection of a highly inclined padded field reaches
        # large radii and rotation curves are flat
        self.node_scale = numerics.grid.pixel_scale
        inclination = _numeric(self.geometry.inclination)
        self._sin_i = np.sin(inclination)
        self.light_sum = numerics.convolve_and_bin(self._lights)
        peak = np.max(self.light_sum, axis=(-2, -1), keepdims=True)
        # pixels nearly without light blend into unweighted means (light_weighted_ratio);
        # these rows are only built when such pixels exist (full.FAINT_FRACTION)
        self._needs_means = bool(np.any(self.light_sum < FAINT_FRACTION * peak))

    def _unit_of(self, radius):
        """Disc radius (arcsec) -> node coordinate in [0, 1] (numpy)."""
        a = self.node_scale
        return np.arcsinh(radius / a) / np.arcsinh(self.r_max / a)

    def _radius_of(self, unit):
        """Node coordinate in [0, 1] -> disc radius (arcsec); numpy or tensor."""
        a = self.node_scale
        lib = np if isinstance(unit, np.ndarray) else pt
        return a * lib.sinh(unit * np.arcsinh(self.r_max / a))

    # ------------------------------------------------------------------ basis
    def _factors(self, coordinates):
        """Angular factors (times sin i powers) of one point set, by the name of the radial
        function product they multiply."""
        _, cos_t, sin_t = coordinates
        sin_i = self._sin_i[..., None, None] if np.ndim(self._sin_i) else self._sin_i
        factors = {"V": sin_i * cos_t, "VV": sin_i**2 * cos_t**2}
        if self.velocity.radial is not None:
            factors.update(
                {
                    "Vr": sin_i * sin_t,
                    "VVr": 2 * sin_i**2 * cos_t * sin_t,
                    "VrVr": sin_i**2 * sin_t**2,
                }
            )
        if isinstance(self.component.dispersion, DiscDispersion):
            factors["ss"] = np.ones_like(cos_t)
        return factors

    def _build_basis(self):
        """``B[k]``: ``(P, M)`` or ``(N, P, M)`` per factor ``k`` (and pixel-mean rows)."""
        numerics = self.numerics
        layout = NodeLayout(self.node_count)
        count = layout.total
        self._node_radii = self._radius_of(layout.fractions)
        weights = [layout.weights(self._unit_of(r)) for r, _, _ in self._coordinates]
        factors = [self._factors(c) for c in self._coordinates]
        names = list(factors[0])
        size = max(light.size for light in self._lights)
        chunk = max(1, BUILD_CHUNK_BYTES // (8 * size * 4))
        self._basis, self._means = {}, {}
        for name in names:
            binned, means = [], []
            for start in range(0, count, chunk):
                stop = min(count, start + chunk)
                fields = []
                for k, (first, w) in enumerate(weights):
                    node_w = node_fields(first, w, start, stop)  # (m, H, W)
                    # (m, [N,] H, W): light x angular factor x node weight
                    factor = np.broadcast_to(factors[k][name], self._lights[k].shape)
                    weighted = (self._lights[k] * factor)[None] * (
                        node_w if node_w.ndim == self._lights[k].ndim + 1 else node_w[:, None]
                    )
                    fields.append(weighted)
                binned.append(numerics.convolve_and_bin(fields))
                if self._needs_means:
                    plain = []
                    for k, (first, w) in enumerate(weights):
                        node_w = node_fields(first, w, start, stop)
                        factor = factors[k][name]
                        if factor.ndim == 3 and node_w.ndim == 3:  # per-galaxy sin i
                            node_w = node_w[:, None]
                        plain.append(factor[None] * node_w)
                    means.append(numerics.pixel_mean(plain))
            # (M, [N,] ny, nx) -> ([N,] P, M)
            self._basis[name] = self._to_columns(np.concatenate(binned))
            if self._needs_means:
                self._means[name] = self._to_columns(np.concatenate(means))
        logger.info(
            "disc_radial: %d nodes x %d angular factors per pixel", self.node_count, len(names)
        )

    def _to_columns(self, stacked):
        grid = self.numerics.grid
        moved = np.moveaxis(stacked, 0, -1)  # ([N,] ny, nx, M)
        return np.ascontiguousarray(moved.reshape((*moved.shape[:-3], grid.ny * grid.nx, -1)))

    # ------------------------------------------------------------------ render
    def _node_values(self):
        """The radial function products at the nodes: ``(M,)`` or ``(N, M)`` by factor."""
        radii = self._node_radii
        velocity = self.velocity
        v = at_nodes(velocity.rotation, radii)
        values = {"V": v, "VV": v**2}
        if velocity.radial is not None:
            vr = at_nodes(velocity.radial, radii)
            values.update({"Vr": vr, "VVr": v * vr, "VrVr": vr**2})
        dispersion = self.component.dispersion
        if isinstance(dispersion, DiscDispersion):
            values["ss"] = at_nodes(dispersion.profile, radii) ** 2
        return values

    def _product(self, basis, values):
        """``basis @ values``: ``([N,] P)`` with basis ``([N,] P, M)``, values ``([N,] M)``."""
        basis = pt.as_tensor_variable(basis)
        if basis.ndim == 2:
            return pt.dot(values, basis.T)  # ([N,] M) x (M, P)
        values = pt.broadcast_to(values, (basis.shape[0], basis.shape[2]))
        return pt.matmul(basis, values[:, :, None])[:, :, 0]

    def _sum(self, names, bases, values):
        total = 0.0
        for name in names:
            total = total + self._product(bases[name], values[name])
        return total

    def _render(self):
        grid = self.numerics.grid
        values = self._node_values()
        first_names = [n for n in ("V", "Vr") if n in self._basis]
        second_names = [n for n in ("VV", "VVr", "VrVr", "ss") if n in self._basis]

        def as_map(flat):
            return flat.reshape((*flat.shape[:-1], grid.ny, grid.nx))

        held = self._held
        bases = held["basis"] if held else self._basis
        light_sum = held["light_sum"] if held else pt.as_tensor_variable(self.light_sum)
        first_sum = as_map(self._sum(first_names, bases, values))
        second_sum = as_map(self._sum(second_names, bases, values))
        dispersion = self.component.dispersion
        if isinstance(dispersion, Constant):
            # sum_m w_m = 1: a constant sigma^2 multiplies the light sum exactly
            second_sum = second_sum + per_galaxy(dispersion.constant) ** 2 * light_sum
        if self._needs_means:
            first_mean = as_map(self._sum(first_names, self._means, values))
            second_mean = as_map(self._sum(second_names, self._means, values))
            if isinstance(dispersion, Constant):
                second_mean = second_mean + per_galaxy(dispersion.constant) ** 2
        else:
            first_mean = second_mean = pt.as_tensor_variable(0.0)
        velocity, sigma = moment_maps(
            light_sum, first_sum, second_sum, first_mean, second_mean, self.reference, self.lsf
        )
        flux = light_sum * self.numerics.flux_scale
        return KinematicMaps(flux, velocity, sigma, light_sum, first_sum, second_sum)

    # ------------------------------------------------------------------ PSF swap
    def render(self):
        """The maps (built once, then cached). Inside a PyMC model, the PSF-dependent arrays
        (the bases and the light sum) are held as model data, so :meth:`psf_updates` can swap
        another PSF into the built model."""
        if self._maps is None:
            self._hold_arrays()
            self._maps = self._render()
        return self._maps

    def _hold_arrays(self):
        model = current_model()
        if model is None:
            return
        index = sum(1 for name in model.named_vars if name.startswith("pmt_disc_radial"))
        prefix = f"pmt_disc_radial{index}"

        def hold(name, value):
            self._data_names[name] = f"{prefix}_{name}"
            return pt.specify_shape(hold_data(model, f"{prefix}_{name}", value), value.shape)

        self._held = {
            "basis": {name: hold(name, value) for name, value in self._basis.items()},
            "light_sum": hold("light_sum", self.light_sum),
        }

    def psf_updates(self, psf) -> dict:
        """New bases and light sum for another fixed PSF (same nodes, same render grid: the new
        kernel is zero-padded to the built stamp, which is exact; a wider one is refused)."""
        if not self._held:
            raise PSFSwapError(
                "the 'disc_radial' renderer was built outside a PyMC model, so its bases are "
                "constants of the graph; build it inside `with pm.Model():` to swap PSFs"
            )
        try:
            kernel = kernel_for(self.numerics, psf)
        except ValueError as error:
            raise PSFSwapError(str(error)) from None
        swapped = copy.copy(self.numerics)
        swapped.kernel, swapped._fixed_op, swapped.held_kernel = kernel, None, None
        built = self.numerics, self._basis, self._means
        try:
            self.numerics = swapped
            light_sum = swapped.convolve_and_bin(self._lights)
            self._build_basis()
            basis = self._basis
        finally:
            self.numerics, self._basis, self._means = built
        peak = np.max(light_sum, axis=(-2, -1), keepdims=True)
        if not self._needs_means and np.any(light_sum < FAINT_FRACTION * peak):
            raise PSFSwapError(
                "under the new PSF some pixels are nearly without light, which this model was "
                "not built to blend; build a new model for this PSF"
            )
        updates = {self._data_names[name]: value for name, value in basis.items()}
        updates[self._data_names["light_sum"]] = light_sum
        return updates

    def describe(self):
        grid = self.numerics.grid
        return (
            f"{self.path}: {len(self._basis)} angular factors x {self.node_count} radial nodes "
            f"per pixel ({grid.ny * grid.nx} pixels) per evaluation"
        )
