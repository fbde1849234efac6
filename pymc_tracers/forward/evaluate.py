"""Evaluating forward-model tensors to numpy for given parameter values."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable

from pymc_tracers.forward.transfer import BUILD_MODE

__all__ = ["evaluate"]


def _named_variables(outputs) -> dict[str, list[Variable]]:
    found: dict[str, list[Variable]] = {}
    for var in ancestors(outputs):
        if var.name and not isinstance(var, Constant):
            found.setdefault(var.name, []).append(var)
    return found


def evaluate(outputs, values=None, **named_values):
    """Evaluate forward-model tensors to numpy arrays for given parameter values.

    Parameters
    ----------
    outputs : tensor or sequence of tensors
        E.g. the ``(image, tracer_map)`` returned by :func:`observe`.
    values : dict, optional
        Maps variables (or their names) to values.
    **named_values
        Values by variable name, e.g. ``gradient=-0.2``.

    Returns
    -------
    ndarray or tuple of ndarray

    Raises
    ------
    ValueError
        If a name matches no variable, or a random variable is left without a value.

    Examples
    --------
    >>> with pm.Model():
    ...     grad = pm.Normal("gradient", 0, 0.5)
    ...     disc = pmt.Component(light, pmt.LinearGradient(central=8, gradient=grad))
    ...     image, zmap = pmt.observe(disc,
    ...                               grid, psf, tracer_scale="log")
    >>> zmap_np = pmt.evaluate(zmap, gradient=-0.2)
    """
    single = isinstance(outputs, Variable)
    outs = [outputs] if single else list(outputs)
    values = dict(values or {})
    values.update(named_values)
    by_name = _named_variables(outs)
    replacements = {}
    for key, value in values.items():
        if isinstance(key, Variable):
            targets = [key]
        else:
            targets = by_name.get(key)
            if not targets:
                raise ValueError(
                    f"no variable named {key!r} in the graph; named variables are "
                    f"{sorted(by_name) or 'none'}"
                )
        for target in targets:
            constant = pt.constant(np.asarray(value, dtype=target.dtype))
            if constant.ndim != target.ndim:
                raise ValueError(
                    f"value for {key!r} has {constant.ndim} dimensions; "
                    f"the variable has {target.ndim}"
                )
            replacements[target] = constant
    replaced = clone_replace(outs, replace=replacements) if replacements else outs
    missing = sorted(
        {
            v.name or str(v)
            for v in ancestors(replaced)
            if v.owner is not None and isinstance(v.owner.op, RandomVariable)
        }
    )
    free = sorted(
        {
            v.name or str(v)
            for v in ancestors(replaced)
            if v.owner is None and not isinstance(v, Constant) and not hasattr(v, "get_value")
        }
    )
    if missing or free:
        raise ValueError(f"give values for these variables: {missing + free}")
    # evaluated once: compiling with few rewrites costs far less than the rewrites would save
    result = pytensor.function([], replaced, mode=BUILD_MODE, on_unused_input="ignore")()
    return result[0] if single else tuple(result)
