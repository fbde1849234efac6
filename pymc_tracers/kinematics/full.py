"""The general kinematic renderers: render I, I u and I (u^2 + sigma^2), convolve, bin.

Every evaluation renders the three fields on the numerics' sample points, convolves them in
ONE batched FFT (a leading axis of 3; the components are summed first since convolution is
linear) and bins them to data pixels. They apply to every model (free light, free disc
geometry, fitted PSFs, any velocity and dispersion fields) and are exact to float64 round-off
for the moments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor
import pytensor.tensor as pt

from pymc_tracers.forward.base import Renderer
from pymc_tracers.forward.components import is_free
from pymc_tracers.forward.transfer import BUILD_MODE
from pymc_tracers.kinematics.moments import moment_maps
from pymc_tracers.kinematics.velocity_field import DiscVelocity
from pymc_tracers.profiles.light import per_galaxy

__all__ = ["KinematicMaps", "KinematicFullRenderer", "relative_velocity", "has_faint_pixels"]

#: With fixed light whose faintest pixel is brighter than this fraction of the brightest, the
#: empty-sky blend of :func:`~pymc_tracers.forward.light_weighted_ratio` (1e-13 of the peak)
#: moves no map by more than ~1e-5 km/s, so the unweighted means it blends in are not built.
FAINT_FRACTION = 1e-6


@dataclass
class KinematicMaps:
    """The tensors a kinematic renderer builds, each ``(ny, nx)`` or ``(N, ny, nx)``.

    Attributes
    ----------
    flux : tensor
        Line flux per data pixel (amplitude units x arcsec^2).
    velocity, dispersion : tensor
        Observed line-of-sight velocity and dispersion (km/s).
    light_sum, first_sum, second_sum : tensor
        ``bin(K * I)``, ``bin(K * (I u))`` and ``bin(K * (I (u^2 + sigma^2)))`` with
        ``u = v - reference``: sum them over the pixels of a bin for binned data.
    """

    flux: object
    velocity: object
    dispersion: object
    light_sum: object
    first_sum: object
    second_sum: object


def relative_velocity(component, reference_owner, x, y):
    """``v - v_ref`` (km/s) of a component at sky positions, where ``v_ref`` is the systemic
    velocity of ``reference_owner`` (a DiscVelocity) or 0 when it is None."""
    velocity = component.velocity
    if reference_owner is None:
        return velocity(x, y)
    if velocity is reference_owner:
        return velocity.relative_value(x, y)
    if isinstance(velocity, DiscVelocity):
        shift = per_galaxy(velocity.v_sys) - per_galaxy(reference_owner.v_sys)
        return velocity.relative_value(x, y) + shift
    return velocity(x, y) - per_galaxy(reference_owner.v_sys)


def fixed_lights(components, numerics):
    """Each component's light on each point set (numpy ``[set][component]``) when every
    light is fixed, else None: rendered once instead of on every evaluation."""
    if any(is_free(v) for c in components for v in c.light.parameters().values()):
        return None
    return [
        [
            pytensor.function([], c.light.surface_brightness(x, y), mode=BUILD_MODE)()
            for c in components
        ]
        for x, y in numerics.point_sets
    ]


def has_faint_pixels(lights, numerics) -> bool:
    """False when the lights are fixed (:func:`fixed_lights`) and no pixel of the convolved
    light is fainter than :data:`FAINT_FRACTION` of its galaxy's brightest (then the
    empty-sky blend needs no unweighted means)."""
    if lights is None or not numerics.is_fixed:
        return True
    light_sum = numerics.convolve_and_bin([sum(parts) for parts in lights])
    peak = np.max(light_sum, axis=(-2, -1), keepdims=True)
    return bool(np.any(light_sum < FAINT_FRACTION * peak))


class KinematicFullRenderer(Renderer):
    """Render, convolve and bin the three moment fields on every evaluation."""

    def __init__(
        self, components, numerics, n_galaxies, *, path, reference_owner, lsf, hold_psf=True
    ):
        super().__init__(components, numerics, "linear", n_galaxies)
        numerics.check_render_size()
        if hold_psf:  # not for the disc_radial path's build-time checks
            self._hold_psf()
        self.path = path
        self.reference_owner = reference_owner
        self.lsf = lsf
        self._fixed_lights = fixed_lights(components, numerics)
        self.needs_means = has_faint_pixels(self._fixed_lights, numerics)

    @property
    def reference(self):
        """The reference velocity (km/s) subtracted before the moments are formed."""
        if self.reference_owner is None:
            return pt.as_tensor_variable(0.0)
        return per_galaxy(self.reference_owner.v_sys)

    def _fields(self, index, x, y):
        x, y = pt.as_tensor_variable(x), pt.as_tensor_variable(y)
        light = first = second = mean_first = mean_second = 0.0
        n = len(self.components)
        for k, component in enumerate(self.components):
            if self._fixed_lights is not None:
                brightness = pt.as_tensor_variable(self._fixed_lights[index][k])
            else:
                brightness = component.light.surface_brightness(x, y)
            u = relative_velocity(component, self.reference_owner, x, y)
            sigma = component.dispersion(x, y)
            u2 = u**2 + sigma**2
            light = light + brightness
            first = first + brightness * u
            second = second + brightness * u2
            mean_first = mean_first + u / n
            mean_second = mean_second + u2 / n
        fields = pt.broadcast_arrays(light, first, second, mean_first, mean_second)
        if self.n_galaxies is not None and fields[0].ndim == 2:
            fields = [pt.broadcast_to(f, (self.n_galaxies, *f.shape)) for f in fields]
        return fields

    def _render(self):
        numerics = self.numerics
        rendered = [self._fields(i, x, y) for i, (x, y) in enumerate(numerics.point_sets)]
        # light, I u and I (u^2 + sigma^2): one batched convolution (leading axis of 3)
        binned = numerics.convolve_and_bin([pt.stack(fields[:3]) for fields in rendered])
        light_sum, first_sum, second_sum = binned[0], binned[1], binned[2]
        if self.needs_means:
            first_mean = numerics.pixel_mean([fields[3] for fields in rendered])
            second_mean = numerics.pixel_mean([fields[4] for fields in rendered])
        else:
            first_mean = second_mean = pt.as_tensor_variable(0.0)
        velocity, dispersion = moment_maps(
            light_sum, first_sum, second_sum, first_mean, second_mean, self.reference, self.lsf
        )
        return KinematicMaps(
            light_sum * numerics.flux_scale,
            velocity,
            dispersion,
            light_sum,
            first_sum,
            second_sum,
        )

    def describe(self):
        n = sum(x.size for x, _ in self.numerics.point_sets)
        return (
            f"{self.path}: renders 3 fields of {n} samples per galaxy and convolves them every "
            "evaluation"
        )
