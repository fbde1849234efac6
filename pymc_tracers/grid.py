"""Pixel grids: data-pixel and supersampled coordinates, padding for the PSF, binning.

Conventions (used everywhere in the package)
--------------------------------------------
* Coordinates are in arcsec.
* ``x`` runs along axis 1 (columns), ``y`` along axis 0 (rows).
* The centre of data pixel ``(i, j)`` is at
  ``x = (j - (nx - 1) / 2) * pixel_scale + center[0]`` and
  ``y = (i - (ny - 1) / 2) * pixel_scale + center[1]``.
* A supersampled pixel is split into ``s x s`` equal sub-pixels whose centres are the
  sample points of the supersampled grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.validation import positive_number

__all__ = ["PixelGrid", "RenderGrid"]


@dataclass(frozen=True)
class PixelGrid:
    """A regular grid of square data pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``, the number of data pixels along y (rows) and x (columns).
    pixel_scale : float
        Side of a data pixel in arcsec.
    supersampling : int, optional
        Number of sub-pixels per data pixel along each axis (odd or even, >= 1). Light and
        tracer profiles are evaluated at sub-pixel centres, which integrates them over each
        pixel with the midpoint rule.
    center : tuple of float, optional
        ``(x, y)`` in arcsec of the centre of the field.

    Examples
    --------
    >>> import pymc_tracers as pmt
    >>> grid = pmt.PixelGrid((121, 121), pixel_scale=0.066, supersampling=3)
    >>> grid.x.shape, float(grid.x[0, 60])
    ((121, 121), 0.0)
    """

    shape: tuple[int, int]
    pixel_scale: float
    supersampling: int = 1
    center: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        shape = tuple(self.shape) if np.ndim(self.shape) == 1 else None
        if shape is None or len(shape) != 2:
            raise ValueError(f"shape must be a pair (ny, nx); got {self.shape!r}")
        if not all(float(n).is_integer() and n >= 1 for n in shape):
            raise ValueError(f"shape must hold two positive integers; got {self.shape!r}")
        object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))
        object.__setattr__(self, "pixel_scale", positive_number(self.pixel_scale, "pixel_scale"))
        s = self.supersampling
        if isinstance(s, bool) or not float(s).is_integer() or s < 1:
            raise ValueError(f"supersampling must be an integer >= 1; got {self.supersampling!r}")
        object.__setattr__(self, "supersampling", int(s))
        center = tuple(float(c) for c in np.ravel(self.center))
        if len(center) != 2 or not all(np.isfinite(center)):
            raise ValueError(f"center must be a finite pair (x, y) in arcsec; got {self.center!r}")
        object.__setattr__(self, "center", center)

    # ------------------------------------------------------------------ data pixels
    @property
    def ny(self) -> int:
        return self.shape[0]

    @property
    def nx(self) -> int:
        return self.shape[1]

    @property
    def pixel_area(self) -> float:
        """Area of one data pixel in arcsec^2."""
        return self.pixel_scale**2

    @property
    def subpixel_scale(self) -> float:
        """Side of one sub-pixel in arcsec."""
        return self.pixel_scale / self.supersampling

    def _axis(self, n: int, scale: float, origin: float, pad: int = 0) -> np.ndarray:
        return (np.arange(-pad, n + pad) - (n - 1) / 2.0) * scale + origin

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Data-pixel centres ``(x, y)`` in arcsec, each of shape ``grid.shape``."""
        xs = self._axis(self.nx, self.pixel_scale, self.center[0])
        ys = self._axis(self.ny, self.pixel_scale, self.center[1])
        return np.meshgrid(xs, ys)

    @property
    def x(self) -> np.ndarray:
        return self.coordinates()[0]

    @property
    def y(self) -> np.ndarray:
        return self.coordinates()[1]

    def radius(self, x0=0.0, y0=0.0, q=1.0, phi=0.0) -> np.ndarray:
        """Elliptical radius (arcsec, along the major axis) of every data-pixel centre."""
        x, y = self.coordinates()
        return elliptical_radius_numpy(x, y, x0, y0, q, phi)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(left, right, bottom, top)`` pixel edges in arcsec, for ``imshow(origin="lower")``."""
        half_x = self.nx * self.pixel_scale / 2
        half_y = self.ny * self.pixel_scale / 2
        cx, cy = self.center
        return (cx - half_x, cx + half_x, cy - half_y, cy + half_y)

    # ------------------------------------------------------------------ supersampling
    def supersampled_coordinates(self, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Sub-pixel centres ``(x, y)`` in arcsec.

        Parameters
        ----------
        pad : int
            Extra sub-pixels added on every side (to render light that the PSF scatters into
            the field).

        Returns
        -------
        x, y : ndarray
            Each of shape ``(ny * s + 2 pad, nx * s + 2 pad)``.
        """
        s = self.supersampling
        sub = self.subpixel_scale
        xs = self._axis(self.nx * s, sub, self.center[0], pad)
        ys = self._axis(self.ny * s, sub, self.center[1], pad)
        return np.meshgrid(xs, ys)

    def render_grid(self, pad: int = 0) -> "RenderGrid":
        """The padded supersampled grid on which profiles are evaluated."""
        x, y = self.supersampled_coordinates(pad)
        return RenderGrid(x=x, y=y, pad=int(pad), subpixel_scale=self.subpixel_scale)

    def bin(self, supersampled):
        """Sum the ``s x s`` sub-pixels of each data pixel.

        Parameters
        ----------
        supersampled : tensor or ndarray, shape ``(..., ny * s, nx * s)``

        Returns
        -------
        tensor or ndarray, shape ``(..., ny, nx)``
        """
        s = self.supersampling
        if s == 1:
            return supersampled
        lib = np if isinstance(supersampled, np.ndarray) else pt
        lead = tuple(supersampled.shape[:-2])
        blocks = supersampled.reshape((*lead, self.ny, s, self.nx, s))
        return lib.sum(blocks, axis=(-3, -1))

    def with_supersampling(self, supersampling: int) -> "PixelGrid":
        """The same field with another supersampling factor."""
        return PixelGrid(self.shape, self.pixel_scale, supersampling, self.center)


@dataclass(frozen=True)
class RenderGrid:
    """Padded supersampled sample points (arcsec) on which profiles are rendered."""

    x: np.ndarray
    y: np.ndarray
    pad: int
    subpixel_scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape


def elliptical_radius_numpy(x, y, x0=0.0, y0=0.0, q=1.0, phi=0.0):
    """Numpy twin of :func:`pymc_tracers.profiles.light.elliptical_radius` (arcsec)."""
    dx, dy = np.asarray(x) - x0, np.asarray(y) - y0
    cos, sin = np.cos(phi), np.sin(phi)
    x_major = cos * dx + sin * dy
    y_minor = -sin * dx + cos * dy
    return np.sqrt(x_major**2 + (y_minor / q) ** 2)
