"""The linear basis: tracers whose averaged ``f(Z)`` is linear in a few coefficients (exact).

* **Linear averaging**: ``Z = sum_k c_k phi_k(x, y)``
  (:meth:`~pymc_tracers.TracerProfile.linear_terms`: constants, gradients with a fixed
  geometry, azimuthal harmonics, GP residual fields) makes the numerator ``B c`` with one
  column per term.
* **Log averaging**: ``10**Z`` is linear in the coefficients only when the free ones are
  additive constants: ``Z = c + S(x, y)`` with ``S`` fixed gives ``10**Z = 10**c x 10**S``,
  one column ``bin(K * (I 10**S))`` with coefficient ``10**c`` (a free central metallicity
  under a fixed azimuthal pattern or residual field).

Both are exact to float64 round-off.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.traversal import ancestors

from pymc_tracers.forward.components import is_free
from pymc_tracers.forward.transfer import (
    BUILD_MODE,
    TransferRenderer,
    _Columns,
    _galaxies_of,
    fixed_columns,
    is_symbolic,
)

__all__ = ["LinearBasisRenderer", "log_offset_problem"]


def _has_free_inputs(value) -> bool:
    tensor = pt.as_tensor_variable(value)
    return any(v.owner is None and is_free(v) for v in ancestors([tensor]))


def _is_constant_term(term) -> bool:
    return all(np.size(f) == 1 and np.all(np.asarray(f) == 1.0) for f in term.factors)


def log_offset_problem(terms) -> str | None:
    """Why ``10**Z`` of these linear terms is not ``10**offset x fixed field``, or None."""
    if terms is None:
        return "it has no linear terms"
    varying = [t for t in terms if _has_free_inputs(t.coefficient) and not _is_constant_term(t)]
    if varying:
        return (
            f"{len(varying)} of its free terms vary across the galaxy, and 10**Z is not linear "
            "in them (only in a free additive offset)"
        )
    return None


def _numeric(value) -> np.ndarray:
    return np.asarray(
        pytensor.function([], pt.as_tensor_variable(value), mode=BUILD_MODE)(), dtype=float
    )


def _per_galaxy(value: np.ndarray) -> np.ndarray:
    """A coefficient ``()`` or ``(N,)`` shaped to broadcast against ``([N,] H, W)`` fields."""
    return value.reshape(value.shape + (1, 1)) if value.ndim == 1 else value


class LinearBasisRenderer(TransferRenderer):
    """Linear averaging of tracers linear in their parameters, or log averaging of a free
    offset on a fixed structure: exact (see the module docstring)."""

    path = "linear"

    def _columns_of(self, index, numerics, *, swap=False):
        tracer = self.components[index].tracer
        points = numerics.point_sets
        if not is_symbolic(tracer):
            return fixed_columns(tracer, self.tracer_scale, points)
        terms = tracer.linear_terms(points)
        if self.tracer_scale == "log":
            return self._log_offset_columns(terms, points, swap)
        coefficients = None
        if not swap:
            coefficients = pt.stack(
                pt.broadcast_arrays(*(pt.as_tensor_variable(t.coefficient) for t in terms)),
                axis=-1,
            )

        def factors(start, stop, k, galaxies=slice(None)):
            chosen = [np.asarray(t.factors[k], dtype=float) for t in terms[start:stop]]
            # constants state their factor as (1, 1): spread them over the sample points
            shape = np.broadcast_shapes(points[k][0].shape, *(f.shape for f in chosen))
            return np.stack([_galaxies_of(np.broadcast_to(f, shape), galaxies) for f in chosen])

        return _Columns("linear", len(terms), coefficients, factors)

    @staticmethod
    def _log_offset_columns(terms, points, swap):
        """One column ``10**S`` (the fixed terms), coefficient ``10**offset`` (the free ones)."""
        free = [t for t in terms if _has_free_inputs(t.coefficient)]
        fixed = [t for t in terms if not _has_free_inputs(t.coefficient)]
        structure = []
        for k, (x, _) in enumerate(points):
            field = np.zeros(x.shape)
            for term in fixed:
                field = field + _per_galaxy(_numeric(term.coefficient)) * term.factors[k]
            structure.append(10.0**field)
        coefficients = None
        if not swap:
            offset = sum(pt.as_tensor_variable(t.coefficient) for t in free)
            coefficients = (10.0**offset)[..., None]

        def factors(start, stop, k, galaxies=slice(None)):
            return _galaxies_of(structure[k], galaxies)[None]

        return _Columns("linear", 1, coefficients, factors)
