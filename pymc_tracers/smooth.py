"""Smooth functions whose values and gradients stay finite on every backend.

PyTensor's JAX ``softplus`` is a ``where()`` over four branches, one of which is
``x + exp(-x)``. ``jax.grad`` differentiates every branch, taken or not, and an untaken branch
that overflows (``|x| > 709``) makes the gradient ``0 * inf = NaN``. nutpie differentiates the
JAX graph this way, so a softplus far from its bend (a sharp break far from the data, a wall
far from a chain) silently gives NaN gradients and wrecks sampling. :func:`softplus` here
keeps every branch in range.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = ["SOFTPLUS_TAIL", "softplus"]

SOFTPLUS_TAIL = 30.0
"""Beyond ``|x| = 30`` softplus is ``x`` or ``0`` to < 1e-13, and is written so."""


def softplus(x):
    """``ln(1 + e^x)`` of a numpy array or PyTensor tensor, with finite gradients everywhere.

    Written as ``x if x > T else softplus(clip(x, -T, T))`` with ``T =``
    :data:`SOFTPLUS_TAIL`, so that no branch of any backend's softplus overflows (see the
    module docstring). Within ``|x| <= T`` it is the exact softplus; beyond, value and gradient
    differ from the exact ones by less than 1e-13 (the gradient is ``1`` above, ``0`` below).

    Parameters
    ----------
    x : array_like or TensorVariable
        Any shape.

    Returns
    -------
    numpy.ndarray or TensorVariable
        Same shape (and kind) as ``x``.
    """
    if not isinstance(x, Variable):
        return np.logaddexp(0.0, x)
    tail = SOFTPLUS_TAIL
    return pt.switch(x > tail, x, pt.softplus(pt.clip(x, -tail, tail)))
