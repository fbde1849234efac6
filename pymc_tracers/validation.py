"""Checks of user-given numbers, shared by grids, PSFs and profiles (one policy, one message)."""

from __future__ import annotations

import numpy as np
import pytensor
from pytensor.graph.basic import Variable

__all__ = ["positive_number", "check_parameter"]


def positive_number(value, name: str) -> float:
    """A positive, finite length in arcsec as a float, or a ValueError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number in arcsec; got {value!r}") from None
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive, finite number in arcsec; got {value!r}")
    return number


def check_parameter(value, name, *, positive=False, upper=None):
    """Validate a parameter: a scalar or one galaxy axis ``(N,)``.

    Fixed values are checked and returned as float64 numpy values; symbolic ones pass through
    after a check of their number of dimensions.
    """
    if isinstance(value, Variable):
        if value.ndim > 1:
            raise ValueError(
                f"{name} has {value.ndim} dimensions; a parameter is a scalar or has one galaxy "
                "axis of shape (N,)"
            )
        return value
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers; got {value!r}") from None
    if array.ndim > 1:
        raise ValueError(
            f"{name} has shape {array.shape}; a parameter is a scalar or has one galaxy axis "
            "of shape (N,)"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if positive and not np.all(array > 0):
        raise ValueError(f"{name} must be > 0; got {value!r}")
    if upper is not None and not np.all(array <= upper):
        raise ValueError(f"{name} must be <= {upper}; got {value!r}")
    # a numpy value keeps its precision: PyTensor would turn a Python float such as 2.0 into a
    # float32 constant
    return array.astype(pytensor.config.floatX)
