"""Ray shooting the forward model's sample points, magnification and critical curves.

The forward model renders profiles at sample points of the image plane (the numerics' point
sets). With a lens, every point ``theta`` is mapped to the source plane, ``beta = theta -
alpha(theta)``, and the profiles are evaluated there; the PSF convolution and the binning stay
in the image plane. A fixed lens gives fixed numpy source-plane points (computed once), so
every renderer that precomputes fields carries over; a lens with free parameters gives
tensors, and only the full path applies.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt

from pymc_tracers.lensing.base import as_lens

__all__ = [
    "trace_point_sets",
    "source_positions",
    "magnification",
    "critical_curves",
    "caustics",
]


def _shoot_fixed(lens, point_sets):
    """Source-plane positions of a fixed lens, the points as function inputs (large constant
    arrays in a graph make its compilation slow)."""
    inputs, outputs = [], []
    for x, y in point_sets:
        x_in = pt.tensor(dtype="float64", shape=np.shape(x))
        y_in = pt.tensor(dtype="float64", shape=np.shape(y))
        inputs += [x_in, y_in]
        outputs += list(lens.ray_shoot(x_in, y_in))
    mode = pytensor.compile.mode.Mode(linker="cvm", optimizer="fast_compile")
    function = pytensor.function(inputs, outputs, mode=mode)
    values = function(*(np.asarray(v, dtype=float) for pair in point_sets for v in pair))
    return [
        (np.asarray(values[2 * k]), np.asarray(values[2 * k + 1])) for k in range(len(point_sets))
    ]


def trace_point_sets(lens, point_sets):
    """Source-plane positions of every set of image-plane sample points.

    Parameters
    ----------
    lens : LensModel or list of LensModel
    point_sets : list of (ndarray, ndarray)
        Image-plane sample points (arcsec), each ``(H, W)``.

    Returns
    -------
    list of (x, y)
        Numpy arrays for a fixed lens, tensors otherwise; ``(H, W)``, or ``(N, H, W)`` for a
        lens with per-galaxy parameters.
    """
    lens = as_lens(lens)
    for x, y in point_sets:
        lens.check_coverage(x, y)
    if lens.is_fixed:
        return _shoot_fixed(lens, point_sets)
    return [tuple(lens.ray_shoot(x, y)) for x, y in point_sets]


def _fixed(lens, what):
    lens = as_lens(lens)
    if not lens.is_fixed:
        raise ValueError(
            f"{what} needs a fixed lens; this one has free parameters "
            f"({', '.join(lens.free_parameters())}): build the lens again with fitted values"
        )
    return lens


def source_positions(lens, x, y):
    """``beta = theta - alpha(theta)`` for a fixed lens at image-plane positions ``x, y``
    (arcsec, numpy): numpy arrays of their shape (with a galaxy axis for per-galaxy lenses)."""
    lens = _fixed(lens, "source_positions")
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    lens.check_coverage(x, y)
    ((bx, by),) = _shoot_fixed(lens, [(x, y)])
    return bx, by


def _jacobian_determinant(lens, x, y):
    x_t = pt.tensor("x", dtype="float64", shape=np.shape(x))
    y_t = pt.tensor("y", dtype="float64", shape=np.shape(y))
    alpha_x, alpha_y = lens.deflection(x_t, y_t)
    alpha_x = pt.broadcast_to(alpha_x, x_t.shape)
    alpha_y = pt.broadcast_to(alpha_y, x_t.shape)
    # each deflection depends on its own position only: the gradient of the sum is pointwise
    axx, axy = pytensor.grad(pt.sum(alpha_x), [x_t, y_t])
    ayx, ayy = pytensor.grad(pt.sum(alpha_y), [x_t, y_t])
    determinant = (1.0 - axx) * (1.0 - ayy) - axy * ayx
    mode = pytensor.compile.mode.Mode(linker="cvm", optimizer="fast_compile")
    return pytensor.function([x_t, y_t], determinant, mode=mode)(x, y)


def magnification(lens, x, y):
    """Signed magnification ``mu = 1 / det(d beta / d theta)`` of a fixed lens at image-plane
    positions ``x, y`` (arcsec, numpy, any shape; include the galaxy axis ``(N, ...)`` for a
    lens with per-galaxy parameters).

    The Jacobian comes from automatic differentiation of the deflection (exact for analytic
    lenses; piecewise for bilinear deflection maps). Negative values are parity-flipped
    images; ``|mu|`` diverges on the critical curves.
    """
    lens = _fixed(lens, "magnification")
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    lens.check_coverage(x, y)
    with np.errstate(divide="ignore"):
        return 1.0 / _jacobian_determinant(lens, np.array(x), np.array(y))


def critical_curves(lens, grid, *, supersampling=4):
    """Critical curves of a fixed lens over a grid's field: where ``det A = 0``.

    Parameters
    ----------
    lens : LensModel
    grid : PixelGrid
        The field (its data pixels, sampled ``supersampling`` times finer).
    supersampling : int
        Sampling of ``det A`` per data pixel for the contour.

    Returns
    -------
    list of ndarray
        Each ``(K, 2)``: ``(x, y)`` vertices (arcsec) of one curve.
    """
    import contourpy

    lens = _fixed(lens, "critical_curves")
    fine = grid.with_supersampling(int(supersampling))
    x, y = fine.supersampled_coordinates()
    lens.check_coverage(x, y)
    determinant = _jacobian_determinant(lens, x, y)
    generator = contourpy.contour_generator(x, y, determinant, line_type="Separate")
    return [np.asarray(line) for line in generator.lines(0.0) if len(line) > 1]


def caustics(lens, curves):
    """The critical curves mapped to the source plane (list of ``(K, 2)`` arrays, arcsec)."""
    result = []
    for curve in curves:
        bx, by = source_positions(lens, curve[:, 0], curve[:, 1])
        result.append(np.column_stack([bx, by]))
    return result
