"""PyMC builders for tracer fields that need random variables of their own.

The tracer profiles in :mod:`pymc_tracers.profiles` build PyTensor graphs and create no random
variables. A field such as a Gaussian-process residual needs some (its standard-normal
coefficients); the name-first builders here create them **once**, inside the current
``pm.Model``, and return an ordinary profile that takes them as input. The profile can then be
evaluated any number of times (pixel-scale numerics render on two sets of points) and always
describes the same field.

Example::

    with pm.Model():
        sigma = pm.HalfNormal("gp_sigma", 0.1)          # dex
        ell = pm.InverseGamma("gp_ell", 5.0, 1.5)         # arcsec
        residual = pmt.fields.gp_residual("gp", amplitude=sigma, length_scale=ell,
                                          grid=galaxy.grid, n_basis=12)
        tracer = pmt.LinearGradient(central=central, gradient=gradient) + residual
"""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
from pytensor.graph.basic import Constant, Variable

from pymc_tracers.grid import PixelGrid
from pymc_tracers.profiles.gp import GP_KERNELS, GPResidual

__all__ = ["HSGP_BASIS_RULE", "gp_residual"]

#: Riutort-Mayol et al. (2023, Stat. Comput. 33, 17), for one dimension: with ``n`` basis
#: functions on ``[-L, L]`` the approximation is accurate for length scales down to about
#: ``rule * L / n``.
HSGP_BASIS_RULE = {"expquad": 1.75, "matern52": 2.65, "matern32": 3.42}


def gp_residual(
    name,
    *,
    amplitude,
    length_scale,
    grid: PixelGrid | None = None,
    n_basis=(12, 12),
    L=None,
    boundary=1.5,
    center=None,
    kernel="matern32",
    dims=None,
    **kwargs,
) -> GPResidual:
    """A Gaussian-process residual field (Hilbert-space approximation) with its coefficients.

    Creates ``{name}_coefficients`` ~ Normal(0, 1) with dims ``("{name}_basis",)`` (or
    ``(dims, "{name}_basis")`` for one field per galaxy) and returns the
    :class:`~pymc_tracers.profiles.tracer.GPResidual` profile that uses them. Add it to any
    tracer profile with ``+``; it is evaluated on the intrinsic (pre-PSF) plane like every
    tracer.

    Parameters
    ----------
    name : str
        Prefix of the created variable and coordinate.
    amplitude : float, array (N,) or variable
        Marginal standard deviation of the field (tracer units, e.g. dex).
    length_scale : float, array (N,) or variable
        Correlation length in arcsec.
    grid : PixelGrid, optional
        The data grid: sets the box centre (``grid.center``) and, unless ``L`` is given, its
        half-widths ``boundary x`` the field's half-widths.
    n_basis : int or (int, int)
        Basis functions along x and y (``n_x n_y`` coefficients).
    L : float or (float, float), optional
        Box half-widths in arcsec (overrides ``boundary``).
    boundary : float
        ``L`` as a multiple of the field's half-width (default 1.5). The field is rendered on
        the data field plus the PSF half-width: keep ``L`` beyond that, and ``L`` >= ~4
        length scales (Riutort-Mayol et al. 2023).
    center : (float, float), optional
        Box centre in arcsec (default: the grid's centre).
    kernel : {"matern32", "matern52", "expquad"}
        Covariance kernel.
    dims : str, optional
        Galaxy dimension (a coordinate of the model) for one field per galaxy; coefficients
        then have shape ``(N, n_x n_y)``.
    **kwargs
        Passed to ``pm.Normal`` (e.g. ``initval``).

    Returns
    -------
    GPResidual

    Warns
    -----
    UserWarning
        When a fixed ``length_scale`` is shorter than the basis can resolve
        (``HSGP_BASIS_RULE[kernel] * L / n``).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if kernel not in GP_KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(GP_KERNELS)}")
    if grid is None and (L is None or center is None):
        raise ValueError("give the data grid (grid=...), or both the box half-widths L and center")
    if grid is not None and not isinstance(grid, PixelGrid):
        raise TypeError(f"grid must be a pmt.PixelGrid; got {type(grid).__name__}")
    if center is None:
        center = grid.center
    if L is None:
        if not (np.isfinite(boundary) and boundary > 1.0):
            raise ValueError(
                f"boundary must be > 1 (the box must extend beyond the field); got {boundary!r}"
            )
        half_widths = (grid.nx * grid.pixel_scale / 2.0, grid.ny * grid.pixel_scale / 2.0)
        L = tuple(boundary * h for h in half_widths)
    elif grid is not None:
        box = np.broadcast_to(np.asarray(L, dtype=float), (2,))
        half_widths = (grid.nx * grid.pixel_scale / 2.0, grid.ny * grid.pixel_scale / 2.0)
        offsets = np.abs(np.asarray(center, float) - np.asarray(grid.center, float))
        if np.any(box < np.asarray(half_widths) + offsets):
            raise ValueError(
                f"the GP box (half-widths L={tuple(box)} arcsec around {tuple(center)}) does not "
                f"cover the data field (half-widths {half_widths} arcsec around {grid.center}); "
                "every basis function vanishes at the box edge, so make L about 1.5x the "
                "field's half-width"
            )
    model = pm.modelcontext(None)
    n_pair = np.broadcast_to(np.asarray(n_basis), (2,))
    n_terms = int(np.prod(n_pair))
    basis_dim = f"{name}_basis"
    if basis_dim not in model.coords:
        model.add_coord(basis_dim, np.arange(n_terms))
    elif len(model.coords[basis_dim]) != n_terms:
        raise ValueError(
            f"the model already has a coordinate {basis_dim!r} of length "
            f"{len(model.coords[basis_dim])}; n_basis={tuple(n_pair)} needs {n_terms}: use "
            "another name"
        )
    if dims is not None:
        if not isinstance(dims, str) or dims not in model.coords:
            raise ValueError(
                f"dims must name a galaxy coordinate of the model (e.g. 'galaxy'); got {dims!r}. "
                "Create it with pm.Model(coords={'galaxy': ...})"
            )
        coefficient_dims = (dims, basis_dim)
    else:
        coefficient_dims = (basis_dim,)
    coefficients = pm.Normal(f"{name}_coefficients", 0.0, 1.0, dims=coefficient_dims, **kwargs)
    profile = GPResidual(
        coefficients,
        amplitude=amplitude,
        length_scale=length_scale,
        L=L,
        n_basis=n_basis,
        center=center,
        kernel=kernel,
    )
    _warn_if_unresolved(profile, length_scale)
    return profile


def _warn_if_unresolved(profile: GPResidual, length_scale):
    if isinstance(length_scale, Variable) and not isinstance(length_scale, Constant):
        return
    shortest = float(np.min(np.asarray(length_scale, dtype=float)))
    resolved = max(
        HSGP_BASIS_RULE[profile.kernel] * half / n for half, n in zip(profile.L, profile.n_basis)
    )
    if shortest < resolved:
        warnings.warn(
            f"length_scale {shortest:.3g} arcsec is shorter than the {profile.n_basis} basis "
            f"functions on a box of half-widths {profile.L} arcsec resolve (~{resolved:.3g} "
            "arcsec): raise n_basis or shrink L",
            UserWarning,
            stacklevel=3,
        )
