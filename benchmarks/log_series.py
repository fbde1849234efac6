"""The log-averaged gradient's fast path against the full FFT path, on the Figure-3 grid.

Run: ``python benchmarks/log_series.py [--fwhm 1.5] [--range -1 1]``

Metallicity in dex averaged as ``10**Z`` (``tracer_scale="log"``): ``10**(c + g r)`` is linear in
``10**c`` and, for ``g`` in a stated range, a Chebyshev series in ``g`` with precomputed basis maps.
This script builds the paper's Figure-3 model twice (``method="full"`` and the default, which
takes the series), then in one process measures

* the number of series terms and the stated error bound (dex),
* the largest difference between the two tracer maps over gradients across the range (dex),
* the cost of one log-likelihood gradient on each path, and their ratio.

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_seconds  # noqa: E402

import pymc_tracers as pmt  # noqa: E402


def build(fwhm, method, gradient_range):
    galaxy = pmt.simulate.figure3_galaxy(fwhm, seed=0, tracer_scale="log")
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 0.3)
        disc = pmt.Component(
            pmt.Exponential(r_eff=1.0, amplitude=1.0),
            pmt.LinearGradient(central=central, gradient=gradient, gradient_range=gradient_range),
        )
        observation = pmt.observe(disc, galaxy.grid, galaxy.psf, "log", method=method)
        pmt.tracer_likelihood(
            "metallicity", observation.tracer_map, galaxy.tracer_map, sigma=galaxy.tracer_error
        )
    return model, observation


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fwhm", type=float, default=1.5, help="Gaussian PSF FWHM, arcsec")
    parser.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=(-0.5, 0.1),
        help="gradient range of the series, dex/arcsec",
    )
    args = parser.parse_args(argv)
    gradient_range = tuple(args.range)
    full_model, full = build(args.fwhm, "full", gradient_range)
    fast_model, fast = build(args.fwhm, "auto", gradient_range)
    assert fast.path == "series", fast.path

    c, g = pt.dscalar("c"), pt.dscalar("g")
    maps = pytensor.function(
        [c, g],
        clone_replace(
            [full.tracer_map, fast.tracer_map],
            replace={
                full_model["central"]: c,
                full_model["gradient"]: g,
                fast_model["central"]: c,
                fast_model["gradient"]: g,
            },
        ),
    )
    gradients = np.linspace(*gradient_range, 21)
    worst = max(float(np.max(np.abs(np.subtract(*maps(8.0, gi))))) for gi in gradients)

    rows = {}
    for label, model in [("full", full_model), ("series", fast_model)]:
        dlogp = model.compile_dlogp()
        point = model.initial_point()
        point = {"central": np.array(8.0), "gradient": np.array(-0.15)}  # inside the range
        rows[label] = median_seconds(lambda: dlogp(point), repeats=7)
    basis = fast_model["pmt_basis0_numerator"].get_value()
    out = dict(
        fwhm=args.fwhm,
        gradient_range=list(gradient_range),
        series_terms=int(basis.shape[0]),
        stated_error_dex=fast.max_error,
        max_difference_dex=worst,
        full_gradient_ms=rows["full"] * 1e3,
        series_gradient_ms=rows["series"] * 1e3,
        speedup=rows["full"] / rows["series"],
    )
    print(
        f'Figure-3 grid, FWHM {args.fwhm}", log averaging, gradient in {gradient_range} dex/arcsec'
    )
    print(
        f"  series: {out['series_terms']} Chebyshev terms, stated error <= {out['stated_error_dex']:.1e} dex,"
        f" measured max |series - full| = {worst:.1e} dex over 21 gradients"
    )
    print(
        f"  logp gradient: full {out['full_gradient_ms']:.2f} ms, series {out['series_gradient_ms']:.3f} ms"
        f"  ({out['speedup']:.0f}x)"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
