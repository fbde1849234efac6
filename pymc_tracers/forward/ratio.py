"""The light-weighted ratio ``bin(K * I f(Z)) / bin(K * I)``, finite on empty sky."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad

__all__ = ["EMPTY_SKY_FRACTION", "light_weighted_ratio", "sky_epsilon"]

#: Light below this fraction of a galaxy's brightest pixel is treated as empty sky when
#: forming the light-weighted ratio (where FFT round-off, ~1e-16, would dominate).
EMPTY_SKY_FRACTION = 1e-13


def sky_epsilon(peak):
    """The empty-sky blend ``e = 1e-13 x peak`` (numpy or tensor), never exactly zero."""
    return EMPTY_SKY_FRACTION * peak + np.finfo(np.float64).tiny


def light_weighted_ratio(weighted_sum, light_sum, fallback, tracer_scale):
    """``weighted_sum / light_sum``, blended smoothly into ``fallback`` where there is no light.

    ``(W + e F) / (L + e)`` with ``e = 1e-13 max(L)`` (per galaxy) equals ``W / L`` to ~1e-13
    relative wherever the light is appreciable and stays finite (with finite gradients) on
    empty sky, where both sums are FFT round-off. Maps have shape ``(..., ny, nx)``.
    """
    light_sum = pt.maximum(light_sum, 0.0)
    if tracer_scale == "log":
        weighted_sum = pt.maximum(weighted_sum, 0.0)
    peak = pt.max(light_sum, axis=(-2, -1), keepdims=True)
    epsilon = zero_grad(sky_epsilon(peak))
    ratio = (weighted_sum + epsilon * fallback) / (light_sum + epsilon)
    return ratio if tracer_scale == "linear" else pt.log10(ratio)
