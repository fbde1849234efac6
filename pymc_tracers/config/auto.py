"""``"auto"`` light priors: estimates of the light profile from the light image (photutils).

photutils is an optional extra (``pip install "pymc_tracers[photometry]"``); it is imported
only when a configuration asks for ``"auto"``.
"""

from __future__ import annotations

import math

import numpy as np
from pymc_extras.prior import Prior

from pymc_tracers.config.errors import ConfigError

__all__ = ["auto_prior", "light_estimates"]


def light_estimates(data) -> dict:
    """Light-profile estimates from the light image (photutils' ``data_properties``).

    Returns ``x0``, ``y0`` (arcsec in the grid), ``phi`` (rad, counter-clockwise from +x),
    ``q`` (b/a), ``r_eff`` (semi-major half-light radius from the elliptical growth curve,
    arcsec; PSF-broadened), ``sigma`` (the Gaussian equivalent, arcsec) and ``amplitude``
    (surface brightness at ``r_eff`` of an exponential disc of the measured flux, image units
    per arcsec^2).
    """
    if data.image is None:
        raise ConfigError('"auto" priors need a light image: add [data] image = <extension>')
    try:
        from photutils.morphology import data_properties
    except ImportError:
        raise ConfigError('"auto" priors need photutils: pip install photutils') from None
    use = data.image_mask & (data.image > 0)
    image = np.where(use, data.image, 0.0)
    props = data_properties(image, mask=~use)
    # photutils 3 renamed xcentroid -> x_centroid
    xc = float(getattr(props, "x_centroid", None) or props.xcentroid)
    yc = float(getattr(props, "y_centroid", None) or props.ycentroid)
    grid, s = data.grid, data.pixel_scale
    x0 = (xc - (grid.nx - 1) / 2) * s + grid.center[0]
    y0 = (yc - (grid.ny - 1) / 2) * s + grid.center[1]
    phi = math.radians(float(props.orientation.to_value("deg")))
    q = float(np.clip(1.0 - float(props.ellipticity), 0.05, 1.0))
    yy, xx = np.indices(image.shape)
    dx = (xx - xc) * s
    dy = (yy - yc) * s
    along = dx * math.cos(phi) + dy * math.sin(phi)
    across = -dx * math.sin(phi) + dy * math.cos(phi)
    radius = np.hypot(along, across / q)[use]
    order = np.argsort(radius)
    cumulative = np.cumsum(image[use][order])
    r_eff = float(radius[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
    r_eff = max(r_eff, 0.5 * s)
    flux = float(cumulative[-1])
    # exponential disc: total flux = 2 pi q r_eff^2 I_e e^b n Gamma(2n) / b^2n, n = 1, b = 1.678
    b = 1.678347
    amplitude = flux * b**2 / (2 * math.pi * q * r_eff**2 * math.exp(b))
    return {
        "x0": x0,
        "y0": y0,
        "phi": phi,
        "q": q,
        "r_eff": r_eff,
        "sigma": r_eff / 1.1774,
        "amplitude": amplitude,
    }


def auto_prior(key, estimates, pixel_scale):
    """The prior of an ``"auto"`` light parameter, centred on its estimate (arcsec, rad)."""
    value = estimates[key]
    if key in ("x0", "y0"):
        return Prior("Normal", mu=value, sigma=max(2 * pixel_scale, 0.1))
    if key == "phi":
        return Prior("Normal", mu=value, sigma=0.3)
    if key == "q":
        return Prior("TruncatedNormal", mu=value, sigma=0.15, lower=0.05, upper=1.0)
    width = 0.7 if key == "amplitude" else 0.4
    return Prior("LogNormal", mu=math.log(value), sigma=width)
