"""Joint draws of the random variables behind some tensors, and tensors evaluated at them.

The build-time checks of the transfer renderers (the radial transfer, a disc's kinematic
transfer) choose node counts at prior draws and compare their maps with the exact full path
at prior and posterior draws; this is how they draw and evaluate.
"""

from __future__ import annotations

import logging

import numpy as np
import pymc as pm
import pytensor
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable

from pymc_tracers.forward.transfer import BUILD_MODE

__all__ = ["ParameterDraws"]

logger = logging.getLogger("pymc_tracers")


class ParameterDraws:
    """Joint draws of the random variables behind some tensors (from the prior, or from a
    posterior), and a way to evaluate tensors of them at those draws.

    Use :meth:`from_prior` or :meth:`from_posterior`; false when there is nothing to draw.
    """

    def __init__(self, random, values):
        self.random = random
        self.values = values
        self.n = 0 if values is None else len(values[0])

    @staticmethod
    def _random_ancestors(outputs):
        return [
            v
            for v in ancestors(outputs)
            if v.owner is not None
            and isinstance(v.owner.op, RandomVariable)
            and v is v.owner.outputs[v.owner.op.default_output]
        ]

    @classmethod
    def from_prior(cls, outputs, n, seed=20240313):
        random = cls._random_ancestors(outputs)
        if not random:
            return cls(random, None)
        try:
            values = pm.draw(random, draws=n, random_seed=seed)
        except Exception as error:  # inputs that are neither random variables nor data
            logger.info("radial transfer: no prior draws (%s)", error)
            return cls(random, None)
        values = values if isinstance(values, (list, tuple)) else [values]
        values = [np.asarray(v) for v in values]
        return cls(random, values)

    @classmethod
    def from_posterior(cls, outputs, posterior, n):
        """``n`` draws spread over the chains and draws of an ArviZ ``posterior`` group."""
        random = cls._random_ancestors(outputs)
        if not random or any(v.name not in posterior for v in random):
            return cls(random, None)
        stacked = posterior.stack(sample=("chain", "draw"))
        picks = np.linspace(0, stacked.sizes["sample"] - 1, n).round().astype(int)
        values = [np.moveaxis(stacked[v.name].values, -1, 0)[picks] for v in random]
        return cls(random, values)

    def __bool__(self):
        return self.values is not None and self.n > 0

    def function(self, outputs, inputs=()):
        """``f(*inputs, draw=i)``: the outputs at draw ``i``."""
        stand_ins = [v.type() for v in self.random]
        replaced = clone_replace(outputs, replace=dict(zip(self.random, stand_ins)))
        compiled = pytensor.function(
            [*inputs, *stand_ins], replaced, on_unused_input="ignore", mode=BUILD_MODE
        )

        def at(*args, draw):
            return compiled(*args, *(v[draw] for v in self.values))

        return at
