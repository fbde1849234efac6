"""The linear basis: linear averaging of tracers that are linear in their parameters (exact).

``Z = sum_k c_k phi_k(x, y)`` (:meth:`~pymc_tracers.TracerProfile.linear_terms`: constants,
gradients with a fixed geometry, azimuthal harmonics, GP residual fields) makes the numerator
``B c`` with one column per term, exact to float64 round-off.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.forward.transfer import TransferRenderer, _Columns, fixed_columns, is_symbolic

__all__ = ["LinearBasisRenderer"]


class LinearBasisRenderer(TransferRenderer):
    """Linear averaging of tracers that are linear in their parameters: exact."""

    path = "linear"

    def _columns_of(self, index, numerics, *, swap=False):
        tracer = self.components[index].tracer
        points = numerics.point_sets
        if not is_symbolic(tracer):
            return fixed_columns(tracer, self.tracer_scale, points)
        terms = tracer.linear_terms(points)
        coefficients = None
        if not swap:
            coefficients = pt.stack(
                pt.broadcast_arrays(*(pt.as_tensor_variable(t.coefficient) for t in terms)),
                axis=-1,
            )

        def factors(start, stop, k):
            chosen = [np.asarray(t.factors[k], dtype=float) for t in terms[start:stop]]
            # constants state their factor as (1, 1): spread them over the sample points
            shape = np.broadcast_shapes(points[k][0].shape, *(f.shape for f in chosen))
            return np.stack([np.broadcast_to(f, shape) for f in chosen])

        return _Columns("linear", len(terms), coefficients, factors)
