"""Hilbert-space Gaussian-process residual fields: correlated small-scale tracer structure."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Constant as GraphConstant
from pytensor.graph.basic import Variable

from pymc_tracers.profiles.light import _check_number
from pymc_tracers.profiles.tracer import (
    MAX_LINEAR_TERMS,
    LinearTerm,
    TracerProfile,
    _fixed_all,
    _per_galaxy_numpy,
)

__all__ = [
    "GP_KERNELS",
    "GPResidual",
    "gp_kernel_numpy",
    "gp_residual_numpy",
    "gp_spectral_density_numpy",
]


#: covariance kernels of :class:`GPResidual` and their Matern orders (None: squared exponential)
GP_KERNELS = {"expquad": None, "matern32": 1.5, "matern52": 2.5}


def _as_pair(value, name, kind):
    """A number or a pair as ``(x, y)``: positive integers (``kind=int``) or arcsec."""
    what = "a positive integer" if kind is int else "a positive number (arcsec)"
    try:
        pair = [float(v) for v in np.broadcast_to(np.asarray(value, dtype=float), (2,))]
    except (TypeError, ValueError):
        pair = None
    if (
        pair is None
        or not all(np.isfinite(v) and v > 0 for v in pair)
        or (kind is int and not all(v.is_integer() for v in pair))
    ):
        raise ValueError(f"{name} must be {what} or a pair of them (x, y); got {value!r}")
    return tuple(int(v) for v in pair) if kind is int else tuple(pair)


def _sine_basis(u, half_width, n):
    """``sin(pi j (u + L) / (2 L)) / sqrt(L)`` for ``j = 1..n``, on a new first axis."""
    j = np.arange(1, n + 1).reshape((n,) + (1,) * np.ndim(u))
    return np.sin(np.pi * j * (np.asarray(u) + half_width) / (2.0 * half_width)) / np.sqrt(
        half_width
    )


class GPResidual(TracerProfile):
    """A Gaussian-process residual field on the intrinsic (pre-PSF) plane, Hilbert-space form.

    The zero-mean GP with an isotropic kernel of amplitude ``sigma`` and length scale ``ell``
    is approximated, inside the box ``|x - cx| < L_x``, ``|y - cy| < L_y``, by the
    Hilbert-space expansion of Solin & Sarkka (2020)::

        f(x, y) = sum_{a, b} sqrt(S(omega_ab)) phi_a(x) phi_b(y) beta_ab

    with Laplacian eigenfunctions ``phi_a(x) = sin(pi a (x - cx + L_x) / (2 L_x)) / sqrt(L_x)``
    (``a = 1..n_x``), frequencies ``omega_ab^2 = (pi a / 2 L_x)^2 + (pi b / 2 L_y)^2``, the
    kernel's 2-D spectral density ``S`` and standard-normal coefficients ``beta``. This profile
    is pure PyTensor: it takes ``beta`` as an input and creates no random variables, so every
    evaluation (e.g. on the two point sets of pixel-scale numerics) uses the same field.
    :func:`pymc_tracers.model.fields.gp_residual` creates ``beta`` in a PyMC model.

    Parameters
    ----------
    coefficients : array or variable, shape (n_x n_y,) or (N, n_x n_y)
        Standard-normal coefficients, index ``a * n_y + b`` (``a`` along x); a leading galaxy
        axis gives each galaxy its own field.
    amplitude : float, array (N,) or variable
        Marginal standard deviation ``sigma`` of the field (tracer units, e.g. dex).
    length_scale : float, array (N,) or variable
        Correlation length ``ell`` in arcsec.
    L : float or (float, float)
        Half-widths of the box in arcsec. It must contain the rendered field (the data field
        plus the PSF padding); ``L`` >= 1.2-1.5x the half-width of the field keeps the
        boundary (where every basis function vanishes) away from the data.
    n_basis : int or (int, int)
        Basis functions along x and y. The field resolves length scales down to about
        ``1.75 c S / n`` (squared exponential; ``3.4 c S / n`` for Matern-3/2), with ``S`` the
        half-width of the data and ``c = L / S`` (Riutort-Mayol et al. 2023).
    center : (float, float)
        Centre of the box in arcsec (fixed).
    kernel : {"matern32", "matern52", "expquad"}
        Covariance: Matern-3/2 (default; rough fields), Matern-5/2 or squared exponential.

    Notes
    -----
    Spectral densities in two dimensions: squared exponential
    ``S(w) = sigma^2 2 pi ell^2 exp(-ell^2 w^2 / 2)``; Matern-nu
    ``S(w) = sigma^2 4 pi nu (2 nu)^nu ell^(-2 nu) (2 nu / ell^2 + w^2)^-(nu + 1)``.

    **Linear terms.** With linear averaging the field is linear in ``sqrt(S_ab) beta_ab``
    whatever the amplitude and length scale are: the profile states one term per basis
    function (coefficient ``sqrt(S_ab) beta_ab``, fixed factor ``phi_a phi_b``), so a model
    with fixed light joins the linear fast path even with fitted hyperparameters, as long as
    ``n_x n_y <= MAX_LINEAR_TERMS`` (64). Larger bases take the full path: the forward model
    builds one graph node per term, and with 256 terms compiling took 160 s against 20 s for
    the full path, which was also faster per gradient (25x25 pixels, supersampling 2; with
    64 terms the JAX gradients cost the same, 0.6 ms, either way). With log averaging only a
    fixed field has linear terms.
    """

    def __init__(
        self,
        coefficients,
        *,
        amplitude,
        length_scale,
        L,
        n_basis,
        center=(0.0, 0.0),
        kernel="matern32",
    ):
        self.n_basis = _as_pair(n_basis, "n_basis", int)
        self.L = _as_pair(L, "L", float)
        if any(isinstance(v, Variable) for v in np.ravel(np.asarray(center, dtype=object))):
            raise ValueError("center must be fixed numbers (x, y) in arcsec")
        self.center = tuple(float(v) for v in np.broadcast_to(np.asarray(center, float), (2,)))
        if kernel not in GP_KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(GP_KERNELS)}")
        self.kernel = kernel
        self.amplitude = _check_number(amplitude, "amplitude", positive=True)
        self.length_scale = _check_number(length_scale, "length_scale", positive=True)
        self.coefficients = self._check_coefficients(coefficients)

    @property
    def n_terms(self) -> int:
        """Number of basis functions ``n_x n_y``."""
        return self.n_basis[0] * self.n_basis[1]

    def _check_coefficients(self, coefficients):
        m = self.n_terms
        if isinstance(coefficients, Variable):
            static = coefficients.type.shape
            if coefficients.ndim not in (1, 2) or static[-1] not in (None, m):
                raise ValueError(
                    f"coefficients must have shape ({m},) or (N, {m}) for n_basis="
                    f"{self.n_basis}; got a variable of shape {static}"
                )
            return coefficients
        array = np.asarray(coefficients, dtype=float)
        if array.ndim not in (1, 2) or array.shape[-1] != m:
            raise ValueError(
                f"coefficients must have shape ({m},) or (N, {m}) for n_basis={self.n_basis}; "
                f"got shape {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError("coefficients must be finite")
        return array

    def parameters(self) -> dict:
        # the coefficients' last axis is the basis, not a galaxy axis: report them only when
        # they carry a galaxy axis (N, M), whose first axis then counts the galaxies
        params = {"amplitude": self.amplitude, "length_scale": self.length_scale}
        if getattr(self.coefficients, "ndim", 1) == 2:
            params["coefficients"] = self.coefficients
        return params

    def squared_frequencies(self) -> np.ndarray:
        """``omega_ab^2`` (arcsec^-2) in coefficient order, shape ``(n_x n_y,)``."""
        (nx, ny), (lx, ly) = self.n_basis, self.L
        wx = (np.pi * np.arange(1, nx + 1) / (2.0 * lx)) ** 2
        wy = (np.pi * np.arange(1, ny + 1) / (2.0 * ly)) ** 2
        return (wx[:, None] + wy[None, :]).ravel()

    def spectral_weights(self):
        """``sqrt(S(omega_ab))``: tensor of shape ``(n_x n_y,)`` or ``(N, n_x n_y)``."""
        omega2 = self.squared_frequencies()
        sigma = _batched_scalar(self.amplitude)
        ell = _batched_scalar(self.length_scale)
        nu = GP_KERNELS[self.kernel]
        if nu is None:
            log_s = math.log(2 * math.pi) + 2 * pt.log(ell) - 0.5 * ell**2 * omega2
        else:
            log_s = (
                math.log(4 * math.pi * nu)
                + nu * math.log(2 * nu)
                - 2 * nu * pt.log(ell)
                - (nu + 1) * pt.log(2 * nu / ell**2 + omega2)
            )
        return sigma * pt.exp(0.5 * log_s)

    def _weighted_coefficients(self):
        return self.spectral_weights() * pt.as_tensor_variable(self.coefficients)

    def basis(self, x, y) -> np.ndarray:
        """The basis functions ``phi_a(x) phi_b(y)`` (numpy): shape ``(n_x n_y, *x.shape)``."""
        (nx, ny), (lx, ly) = self.n_basis, self.L
        bx = _sine_basis(np.asarray(x) - self.center[0], lx, nx)
        by = _sine_basis(np.asarray(y) - self.center[1], ly, ny)
        return (bx[:, None] * by[None, :]).reshape(nx * ny, *np.shape(x))

    def value(self, x, y):
        weighted = self._weighted_coefficients()  # (M,) or (N, M)
        (nx, ny), (lx, ly) = self.n_basis, self.L
        xs, ys = _constant_data(x), _constant_data(y)
        if (
            xs is not None
            and ys is not None
            and xs.ndim == 2
            and xs.shape == ys.shape
            and np.all(xs == xs[:1])
            and np.all(ys == ys[:, :1])
        ):
            # a regular grid: the field separates, f = Phi_y W^T Phi_x^T, O(H W n_x)
            phi_x = _sine_basis(xs[0] - self.center[0], lx, nx).T  # (W, n_x)
            phi_y = _sine_basis(ys[:, 0] - self.center[1], ly, ny).T  # (H, n_y)
            matrix = weighted.reshape((*weighted.shape[:-1], nx, ny))  # (..., n_x, n_y)
            lead = matrix.ndim - 2
            # tensordot reshapes to one matrix product (no per-galaxy loop)
            rows = pt.tensordot(matrix, phi_y, axes=[[lead + 1], [1]])  # (..., n_x, H)
            return pt.tensordot(rows, phi_x, axes=[[lead], [1]])  # (..., H, W)
        x, y = pt.as_tensor_variable(x), pt.as_tensor_variable(y)
        j = np.arange(1, nx + 1).reshape(nx, 1, 1)
        k = np.arange(1, ny + 1).reshape(ny, 1, 1)
        bx = pt.sin(np.pi * j * (x[None] - self.center[0] + lx) / (2 * lx)) / math.sqrt(lx)
        by = pt.sin(np.pi * k * (y[None] - self.center[1] + ly) / (2 * ly)) / math.sqrt(ly)
        basis = (bx[:, None] * by[None, :]).reshape((nx * ny, *x.shape))
        return pt.tensordot(weighted, basis, axes=[[weighted.ndim - 1], [0]])

    def linear_terms(self, points):
        if _fixed_all(self.coefficients, self.amplitude, self.length_scale):
            return [LinearTerm(1.0, [_evaluate_constant(self.value(x, y)) for x, y in points])]
        if self.n_terms > MAX_LINEAR_TERMS:
            return None
        weighted = self._weighted_coefficients()
        bases = [self.basis(x, y) for x, y in points]
        return [LinearTerm(weighted[..., j], [b[j] for b in bases]) for j in range(self.n_terms)]

    def __repr__(self):
        return (
            f"GPResidual(kernel={self.kernel!r}, amplitude={self.amplitude!r}, "
            f"length_scale={self.length_scale!r}, n_basis={self.n_basis}, L={self.L}, "
            f"center={self.center})"
        )


def _batched_scalar(value):
    """A scalar or galaxy-axis parameter as a tensor that broadcasts against ``(N, M)``."""
    tensor = pt.as_tensor_variable(
        value if isinstance(value, Variable) else np.asarray(value, dtype=float)
    )
    return tensor[..., None] if tensor.ndim else tensor


def _constant_data(value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, GraphConstant):
        return np.asarray(value.data)
    return None


def _evaluate_constant(tensor) -> np.ndarray:
    return np.asarray(pytensor.function([], tensor, mode="FAST_COMPILE")())


def gp_spectral_density_numpy(omega, *, amplitude, length_scale, kernel="matern32"):
    """2-D spectral density ``S(omega)`` of the kernels of :class:`GPResidual` (numpy)."""
    omega = np.asarray(omega, dtype=float)
    nu = GP_KERNELS[kernel]
    if nu is None:
        return (
            amplitude**2
            * 2.0
            * np.pi
            * length_scale**2
            * np.exp(-0.5 * (length_scale * omega) ** 2)
        )
    return (
        amplitude**2
        * 4.0
        * np.pi
        * nu
        * (2.0 * nu) ** nu
        / length_scale ** (2 * nu)
        * (2.0 * nu / length_scale**2 + omega**2) ** (-(nu + 1.0))
    )


def gp_kernel_numpy(distance, *, amplitude, length_scale, kernel="matern32"):
    """The covariance ``k(d)`` that :class:`GPResidual` approximates (numpy)."""
    d = np.asarray(distance, dtype=float) / length_scale
    if kernel == "expquad":
        return amplitude**2 * np.exp(-0.5 * d**2)
    if kernel == "matern32":
        return amplitude**2 * (1 + np.sqrt(3) * d) * np.exp(-np.sqrt(3) * d)
    if kernel == "matern52":
        return amplitude**2 * (1 + np.sqrt(5) * d + 5 * d**2 / 3) * np.exp(-np.sqrt(5) * d)
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(GP_KERNELS)}")


def gp_residual_numpy(
    x, y, coefficients, *, amplitude, length_scale, L, n_basis, center=(0.0, 0.0), kernel="matern32"
):
    """Numpy twin of :class:`GPResidual`: the Hilbert-space field, term by term."""
    nx, ny = (n_basis, n_basis) if np.ndim(n_basis) == 0 else n_basis
    lx, ly = (L, L) if np.ndim(L) == 0 else L
    coefficients = np.asarray(coefficients, dtype=float)
    x = np.asarray(x, dtype=float) - center[0]
    y = np.asarray(y, dtype=float) - center[1]
    amplitude = np.asarray(amplitude, dtype=float)
    length_scale = np.asarray(length_scale, dtype=float)
    batched = coefficients.ndim == 2
    shape = (coefficients.shape[0], *x.shape) if batched else x.shape
    field = np.zeros(shape)
    for a in range(1, nx + 1):
        for b in range(1, ny + 1):
            omega = np.hypot(np.pi * a / (2 * lx), np.pi * b / (2 * ly))
            weight = np.sqrt(
                gp_spectral_density_numpy(
                    omega, amplitude=amplitude, length_scale=length_scale, kernel=kernel
                )
            )
            phi = (
                np.sin(np.pi * a * (x + lx) / (2 * lx))
                / np.sqrt(lx)
                * np.sin(np.pi * b * (y + ly) / (2 * ly))
                / np.sqrt(ly)
            )
            beta = coefficients[..., (a - 1) * ny + (b - 1)]
            field = field + _per_galaxy_numpy(weight * beta) * phi
    return field
