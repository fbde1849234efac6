"""PyTensor backends compared on the same models: C, numba and JAX.

Run: ``python benchmarks/backends.py``

Times one log-density and one gradient evaluation (``model.compile_logp/compile_dlogp`` with
``mode=...``) for the joint light + tracer fit of the Figure-3 galaxy (full FFT path) and for
the Figure-3 tracer-only fit (exact linear path), and prints ratios to the C backend. The last
line is JSON.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pymc as pm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_seconds  # noqa: E402

import pymc_tracers as pmt  # noqa: E402


def models():
    galaxy = pmt.simulate.figure3_galaxy(1.5, seed=0)
    with pm.Model() as joint:
        x0 = pm.Normal("x0", 0, 0.1)
        y0 = pm.Normal("y0", 0, 0.1)
        r_eff = pm.LogNormal("r_eff", 0.0, 0.5)
        amplitude = pm.LogNormal("amplitude", 0.0, 1.0)
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(
            pmt.Exponential(x0=x0, y0=y0, r_eff=r_eff, amplitude=amplitude),
            pmt.LinearGradient(x0=x0, y0=y0, central=central, gradient=gradient),
        )
        image, tracer = pmt.observe(disc, galaxy.grid, galaxy.psf, "linear")
        pmt.image_likelihood("light", image, galaxy.light_image, sigma=galaxy.light_error)
        pmt.tracer_likelihood("metallicity", tracer, galaxy.tracer_map, sigma=galaxy.tracer_error)
    with pm.Model() as linear:
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        disc = pmt.Component(
            galaxy.components[0].light, pmt.LinearGradient(central=central, gradient=gradient)
        )
        _, tracer = pmt.observe(disc, galaxy.grid, galaxy.psf, "linear")
        pmt.tracer_likelihood("metallicity", tracer, galaxy.tracer_map, sigma=galaxy.tracer_error)
    return {"joint (full FFT path)": joint, "fig3 tracer (linear path)": linear}


def main():
    warnings.simplefilter("ignore")
    modes = ["FAST_RUN", "NUMBA"]
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        modes.append("JAX")
    except ImportError:
        pass
    rows = []
    for name, model in models().items():
        point = model.initial_point()
        for mode in modes:
            logp = model.compile_logp(mode=mode)
            dlogp = model.compile_dlogp(mode=mode)
            rows.append(
                dict(
                    model=name,
                    mode=mode,
                    logp_ms=1e3 * median_seconds(lambda: np.asarray(logp(point))),
                    dlogp_ms=1e3 * median_seconds(lambda: np.asarray(dlogp(point))),
                )
            )
    print(f"{'model':28s} {'backend':9s} {'logp ms':>9s} {'dlogp ms':>9s} {'dlogp / C':>9s}")
    for row in rows:
        c = next(r for r in rows if r["model"] == row["model"] and r["mode"] == "FAST_RUN")
        row["dlogp_over_c"] = row["dlogp_ms"] / c["dlogp_ms"]
        print(
            f"{row['model']:28s} {row['mode']:9s} {row['logp_ms']:9.3f} {row['dlogp_ms']:9.3f} {row['dlogp_over_c']:9.2f}"
        )
    print(json.dumps({"benchmark": "backends", "rows": rows}))


if __name__ == "__main__":
    main()
