"""Which rendered samples reach which data pixels through the PSF.

A pixel is the mean of its sub-pixels of the convolved field, so its value depends only on the
samples within the kernel's non-zero extent of its sub-pixels. A likelihood over some pixels
(a mask, an S/N cut) needs a tracer to be accurate only there
(:class:`~pymc_tracers.forward.radial.RadialTransferRenderer` gives it radial nodes over just
those radii).
"""

from __future__ import annotations

import numpy as np

from pymc_tracers.grid import elliptical_radius_numpy
from pymc_tracers.profiles.tracer import _numeric

__all__ = ["psf_reach"]


def psf_reach(numerics, geometry, index, shape):
    """The largest elliptical radius (arcsec) from which light reaches any of the pixels
    ``index`` (flat into ``shape``) through the PSF: ``(Ng,)`` for a batch, else ``()``.

    A pixel is the mean of its sub-pixels of the convolved field, and the kernel's non-zero
    samples span ``h`` sub-pixels each way: only positions within ``pixel / 2 + h`` of the
    pixel's centre, in x and in y, reach it. The elliptical radius is convex, so its largest
    value over that square is at a corner. (One sub-pixel is added as a margin.)
    """
    grid = numerics.grid
    scale = grid.subpixel_scale
    galaxy, pixel = np.divmod(np.asarray(index), grid.ny * grid.nx)
    n = shape[0] if len(shape) == 3 else 1
    kernels = np.asarray(numerics.kernel)
    kernels = kernels.reshape((-1, *kernels.shape[-2:]))
    centre = kernels.shape[-1] // 2
    halves = []
    for kernel in kernels:
        rows, cols = np.nonzero(kernel)
        halves.append(max(np.max(np.abs(rows - centre)), np.max(np.abs(cols - centre))))
    halves = np.asarray(halves, dtype=float) * scale
    half = halves[galaxy] if halves.size == n > 1 else halves.max()
    a = half + grid.pixel_scale / 2 + scale
    x, y = grid.x.ravel()[pixel], grid.y.ravel()[pixel]
    x0, y0, q, phi = (
        np.broadcast_to(v, (n,))[galaxy] if v.ndim else float(v)
        for v in (_numeric(g) for g in geometry)
    )
    corners = [
        elliptical_radius_numpy(x + sx, y + sy, x0, y0, q, phi) for sx in (-a, a) for sy in (-a, a)
    ]
    reach = np.zeros(n)
    np.maximum.at(reach, galaxy, np.max(corners, axis=0))
    return reach if len(shape) == 3 else reach[0]
