"""Fingerprints of PyMC models: equal for models that differ only in their data."""

from __future__ import annotations

import hashlib

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs, io_toposort

from pymc_tracers.model.likelihood import likelihoods_of

__all__ = ["model_fingerprint"]


def _digest(value) -> str:
    array = np.ascontiguousarray(value)
    if array.dtype.hasobject:  # slices, None...: bytes would be pointers; their repr is the value
        return f"object:{value!r}"
    return f"{array.dtype.str}{array.shape}:{hashlib.sha1(array.tobytes()).hexdigest()}"


def _op_text(op) -> str:
    props = getattr(op, "_props_dict", None)
    text = f"{type(op).__module__}.{type(op).__qualname__}|{op}"
    if props is not None:
        text += "|" + repr(sorted(props().items(), key=lambda kv: kv[0]))
    if " at 0x" in text:  # an object without a value-based repr: never shared
        text += f"|id{id(op)}"
    return text


def model_fingerprint(model, records=None) -> str:
    """A hash of a PyMC model's graph, leaving out the values of its ``pm.Data``.

    Two models with the same fingerprint differ at most in the values of their data variables
    (observed maps, error maps, linear-path basis maps) and may share one compiled sampler:
    swapping those values into one gives the other. The hash covers every operation of the
    log-probability, the deterministics and the likelihoods' model maps, every constant (used
    pixels, fixed parameters, priors, PSF kernels of the FFT path), the names, types and shapes
    of the free variables and of the data variables.

    Parameters
    ----------
    model : pm.Model
    records : list of LikelihoodRecord, optional
        Defaults to :func:`pymc_tracers.model.likelihood.likelihoods_of` ``(model)``.

    Returns
    -------
    str
        A hex digest.
    """
    records = likelihoods_of(model) if records is None else records
    extra = [r.model_map for r in records]
    extra += [r.sigma for r in records if isinstance(r.sigma, Variable)]
    outputs = [model.logp(), *model.replace_rvs_by_values([*model.deterministics, *extra])]
    data_names = {v.name for v in model.data_vars}
    labels = {}

    def label(var):
        if var in labels:
            return labels[var]
        if isinstance(var, Constant):
            text = f"const:{var.type}:{_digest(var.data)}"
        elif isinstance(var, SharedVariable):
            value = var.get_value(borrow=True)
            if var.name in data_names:
                text = f"data:{var.name}:{var.type}:{np.shape(value)}"
            elif isinstance(value, np.ndarray):
                text = f"shared:{var.name}:{var.type}:{_digest(value)}"
            else:
                text = f"shared:{var.name}:{var.type}:id{id(var)}"
        else:
            text = f"input:{var.name}:{var.type}"
        labels[var] = text
        return text

    h = hashlib.sha256()
    inputs = list(graph_inputs(outputs))
    for i, node in enumerate(io_toposort(inputs, outputs)):
        h.update(_op_text(node.op).encode())
        h.update(("(" + ",".join(label(v) for v in node.inputs) + ")").encode())
        for j, out in enumerate(node.outputs):
            labels[out] = f"n{i}.{j}:{out.type}"
    for out in outputs:
        h.update(label(out).encode())
    h.update(repr(sorted(data_names)).encode())
    h.update(repr([(r.name, r.kind, tuple(r.shape)) for r in records]).encode())
    return h.hexdigest()
