"""Timing helper shared by the benchmarks that do not need lenstronomy."""

import time

import numpy as np
import pytensor


def sampler_logp(model):
    """The model's log density as nutpie differentiates it: ``model.logp()`` rewritten with
    "canonicalize" and "stabilize" first. PyMC clones the shared forward model once per observed
    variable; the rewrite merges the copies, so the gradient runs one adjoint of the forward
    model rather than one per likelihood (a joint light + tracer model: one correlation, not
    two)."""
    return pytensor.graph.rewrite_graph(model.logp(), include=["canonicalize", "stabilize"])


def median_seconds(fn, repeats=20, warmup=1):
    """Median wall time of ``fn()``; make ``fn`` return numpy arrays (JAX dispatches asynchronously)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
