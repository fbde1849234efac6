"""Checks of a line cube's inputs: the velocity axis, the cube, its noise and a voxel mask.

Shared by :mod:`~pymc_tracers.kinematics.cube_simulation` (the velocity axis) and
:mod:`~pymc_tracers.kinematics.cube_maps` (everything). A cube is an array
``(n_channels, ny, nx)`` on a velocity axis of channel centres (km/s), strictly increasing
or decreasing; channel widths are ``|numpy.gradient(velocities)|``.
"""

from __future__ import annotations

import numpy as np


def _velocity_axis(velocities, n_channels=None) -> np.ndarray:
    """Channel centres (km/s) as a float array, checked; ``n_channels`` must match if given."""
    v = np.asarray(velocities, dtype=float)
    if v.ndim != 1 or v.size < 3:
        raise ValueError(
            f"velocities must be a 1-D array of at least 3 channel centres (km/s); got shape "
            f"{v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError("velocities (km/s) must be finite")
    step = np.diff(v)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError("velocities (km/s) must be strictly increasing or strictly decreasing")
    if n_channels is not None and v.size != n_channels:
        raise ValueError(
            f"velocities has {v.size} channels but the cube has {n_channels} along axis 0 "
            "(cubes are (n_channels, ny, nx))"
        )
    return v


def _channel_widths(v: np.ndarray) -> np.ndarray:
    return np.abs(np.gradient(v))


def _check_cube(cube) -> np.ndarray:
    c = np.asarray(cube, dtype=float)
    if c.ndim != 3:
        raise ValueError(f"cube must be 3-D (n_channels, ny, nx); got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        bad = np.argwhere(~np.isfinite(c))[0]
        raise ValueError(
            f"cube has {int((~np.isfinite(c)).sum())} NaN or infinite values (first at "
            f"channel, y, x = {tuple(int(i) for i in bad)}); set them to 0 and leave them out "
            "with mask= (or give them a huge noise)"
        )
    return c


def _check_noise(noise, shape) -> np.ndarray:
    n = np.asarray(noise, dtype=float)
    try:
        n = np.broadcast_to(n, shape)
    except ValueError:
        raise ValueError(
            f"noise has shape {np.shape(noise)}; it must broadcast to the cube's {shape} "
            "(a number, a spectrum (n_channels, 1, 1), a map (ny, nx) or a cube)"
        ) from None
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ValueError("noise (1-sigma per voxel, cube units) must be finite and > 0")
    return n


def _check_mask(mask, shape) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != bool:
        raise ValueError(f"mask must be boolean (True: use the voxel); got dtype {m.dtype}")
    if m.ndim == 1:
        m = m[:, None, None]
    try:
        return np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(
            f"mask has shape {np.shape(mask)}; it must be (n_channels,) or broadcast to the "
            f"cube's {shape}"
        ) from None
