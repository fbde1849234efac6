"""Lensing distances: the ratio ``D_ls / D_s`` that scales a deflection to a source redshift."""

from __future__ import annotations

import numpy as np

from pymc_tracers.cosmology import get_cosmology

__all__ = ["distance_ratio"]


def distance_ratio(z_lens, z_source, *, cosmology=None):
    """``D_ls / D_s``: angular-diameter distances lens-source over observer-source.

    A deflection field made for ``D_ls / D_s = 1`` deflects a source at ``z_source`` by
    this factor times the field.

    Parameters
    ----------
    z_lens, z_source : float or array
        Redshifts, ``0 < z_lens < z_source``.
    cosmology : Cosmology, str, dict or None
        See :func:`pymc_tracers.cosmology.get_cosmology` (default Planck18).

    Returns
    -------
    float or ndarray
    """
    z_l, z_s = np.asarray(z_lens, dtype=float), np.asarray(z_source, dtype=float)
    if not (np.all(np.isfinite(z_l)) and np.all(np.isfinite(z_s)) and np.all(z_l > 0)):
        raise ValueError(f"z_lens must be finite and > 0; got {z_lens!r}")
    if not np.all(z_s > z_l):
        raise ValueError(
            f"the source must lie behind the lens: z_source ({z_source!r}) > z_lens ({z_lens!r})"
        )
    cosmo = get_cosmology(cosmology)
    try:  # astropy >= 7 takes (z1, z2); older versions have the _z1z2 method only
        between = cosmo.angular_diameter_distance(z_l, z_s)
    except TypeError:
        between = cosmo.angular_diameter_distance_z1z2(z_l, z_s)
    ratio = (between / cosmo.angular_diameter_distance(z_s)).decompose().value
    return float(ratio) if np.ndim(ratio) == 0 else np.asarray(ratio)
