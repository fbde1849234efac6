"""Timing helper shared by the benchmarks that do not need lenstronomy."""

import time

import numpy as np


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
