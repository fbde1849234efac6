"""Observed velocity and dispersion from the binned, PSF-convolved moment sums.

With ``L = bin(K * I)``, ``M1 = bin(K * (I u))`` and ``M2 = bin(K * (I (u^2 + sigma^2)))``,
where ``u = v - v_ref`` is the velocity relative to a reference (the systemic velocity: the
variance does not depend on it, and subtracting it keeps ``M2`` free of the round-off of a
large ``v_sys^2``)::

    v_obs     = v_ref + M1 / L
    sigma_obs = sqrt(M2 / L - (M1 / L)^2 + sigma_LSF^2)

These are the exact first and second moments of the PSF-smeared, pixelised line cube.
"""

from __future__ import annotations

import pytensor.tensor as pt

from pymc_tracers.forward.ratio import light_weighted_ratio

__all__ = ["moment_maps", "VARIANCE_FLOOR"]

#: Added to the observed variance (km^2/s^2) so that the square root has finite gradients
#: where beam smearing and intrinsic dispersion both vanish (a 1e-6 km/s dispersion).
VARIANCE_FLOOR = 1e-12


def moment_maps(light_sum, first_sum, second_sum, first_mean, second_mean, reference, lsf):
    """Observed velocity and dispersion (km/s) maps from moment sums ``(..., ny, nx)``.

    ``first_mean`` and ``second_mean`` are the unweighted pixel means of ``u`` and
    ``u^2 + sigma^2``, used where there is no light (:func:`light_weighted_ratio`).
    ``reference`` broadcasts against the maps (km/s); ``lsf`` is ``sigma_LSF`` in km/s
    (number, map or tensor), or None.
    """
    mean_u = light_weighted_ratio(first_sum, light_sum, first_mean, "linear")
    mean_second = light_weighted_ratio(second_sum, light_sum, second_mean, "linear")
    variance = pt.maximum(mean_second - mean_u**2, 0.0)
    if lsf is not None:
        variance = variance + pt.as_tensor_variable(lsf) ** 2
    return reference + mean_u, pt.sqrt(variance + VARIANCE_FLOOR)
