"""The radial transfer path against the exact full path: accuracy, cost, node counts.

Run: ``python benchmarks/radial.py [--fwhm 1.5] [--demo]``

On the Figure-3 grid (121x121 pixels of 0.066", supersampling 3, exponential disc R_e = 1",
Gaussian PSF), log averaging:

1. For stated dynamic ranges D (dex across the rendered field) the radial renderer is built,
   and its map compared with the full path's at gradients from -1 to +0.5 dex/arcsec; both are
   timed per log-likelihood gradient (JAX), side by side.
2. With ``gradient ~ Normal(0, sd)`` priors and no hint, the node count the renderer measures
   at prior draws.
3. Whether an (r, theta) transfer for m = 1, 2 harmonics would pay: the angular nodes that
   ``10**(a cos(m theta))`` needs for 1e-7 dex (its Fourier coefficients are modified Bessel
   functions ``I_k(a ln 10)``), times the radial nodes, against the full path's cost.
4. ``--demo``: ``pymc-tracers demo --json`` with log and with linear averaging, alternately,
   twice each: the wall-time ratio (target <= 2).

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pymc_tracers as pmt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds  # noqa: E402

TOLERANCE = 1e-7


def jax_gradient_seconds(logp, inputs, values):
    import jax
    from pymc.sampling.jax import get_jaxified_graph

    fn = jax.jit(get_jaxified_graph(inputs=inputs, outputs=[logp, *pt.grad(logp, inputs)]))

    def call():
        return [np.asarray(o) for o in fn(*values)]

    return median_seconds(call, repeats=20, warmup=2)


def accuracy_and_cost(galaxy, dynamic_range):
    c, g = pt.dscalar("central"), pt.dscalar("gradient")
    component = pmt.Component(
        pmt.Exponential(r_eff=1.0, amplitude=1.0), pmt.LinearGradient(central=c, gradient=g)
    )
    start = time.perf_counter()
    radial = pmt.observe(component, galaxy.grid, galaxy.psf, "log", dynamic_range=dynamic_range)
    build = time.perf_counter() - start
    full = pmt.observe(component, galaxy.grid, galaxy.psf, "log", method="full")
    maps = pytensor.function([c, g], [radial.tracer_map, full.tracer_map])
    light = pmt.evaluate(radial.light_sum)  # fixed light (the full path stacks it with Z)
    bright = light > 1e-8 * light.max()
    errors = {}
    for gradient in np.linspace(-1.0, 0.5, 16):
        a, b = maps(8.0, gradient)
        errors[round(float(gradient), 3)] = float(np.abs(a - b)[bright].max())
    data, sigma = galaxy.tracer_map, galaxy.tracer_error
    cost = {}
    for name, obs in (("radial", radial), ("full", full)):
        resid = (data - obs.tracer_map) / sigma
        logp = -0.5 * pt.sum(resid**2)
        cost[name] = jax_gradient_seconds(logp, [c, g], [np.array(8.0), np.array(-0.2)])
    # the range a gradient may reach and stay within the tolerance: D / rendered radius
    x, y = radial.numerics.point_sets[0]
    r_max = float(np.hypot(x, y).max())
    return {
        "dynamic_range": dynamic_range,
        "nodes": radial.renderer.node_counts[0],
        "build_seconds": build,
        "covered_gradient_abs": dynamic_range / r_max,
        "max_error_by_gradient": errors,
        "radial_ms": 1e3 * cost["radial"],
        "full_ms": 1e3 * cost["full"],
        "speedup": cost["full"] / cost["radial"],
    }


def prior_node_counts(galaxy, widths):
    counts = {}
    for width in widths:
        with pm.Model():
            central = pm.Normal("central", 8.5, 1.0)
            gradient = pm.Normal("gradient", 0.0, width)
            component = pmt.Component(
                pmt.Exponential(r_eff=1.0, amplitude=1.0),
                pmt.LinearGradient(central=central, gradient=gradient),
            )
            obs = pmt.observe(component, galaxy.grid, galaxy.psf, "log")
        counts[width] = {"nodes": obs.renderer.node_counts[0], "covered": obs.renderer.covered}
    return counts


def angular_nodes(amplitude_dex, m):
    """Fourier terms (cos and sin, both) that 10**(a cos(m t)) needs for 1e-7 dex."""
    rho = amplitude_dex * np.log(10.0)
    k = np.arange(1, 64)
    tail = 2 * np.cumsum(special.ive(k, rho)[::-1])[::-1] / special.ive(0, rho)  # relative
    needed = int(np.argmax(tail < TOLERANCE * np.log(10.0))) + 1
    return 2 * needed + 1, m  # columns per radial node (the harmonic order only relabels)


def demo_ratio(fwhm):
    walls = {"log": [], "linear": []}
    for _ in range(2):
        for scale in ("log", "linear"):
            start = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pymc_tracers.cli",
                    "demo",
                    "--json",
                    "--fwhm",
                    str(fwhm),
                    "--seed",
                    "3",
                    "--tracer-scale",
                    scale,
                    "--output",
                    "",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            walls[scale].append(time.perf_counter() - start)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            walls[f"{scale}_result"] = {
                k: result.get(k)
                for k in (
                    "path",
                    "gradient_median",
                    "gradient_p16",
                    "gradient_p84",
                    "sampling_seconds",
                )
            }
    ratio = min(walls["log"]) / min(walls["linear"])
    return {**walls, "ratio": ratio}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fwhm", type=float, default=1.5)
    parser.add_argument("--demo", action="store_true", help="also time the demo (minutes)")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    galaxy = pmt.simulate.figure3_galaxy(fwhm=args.fwhm, seed=0, tracer_scale="log")
    report = {"fwhm": args.fwhm, "tolerance": TOLERANCE, "stated": []}
    for dynamic_range in (2.0, 4.0, 8.0):
        row = accuracy_and_cost(galaxy, dynamic_range)
        report["stated"].append(row)
        worst_inside = max(
            e
            for g, e in row["max_error_by_gradient"].items()
            if abs(g) <= row["covered_gradient_abs"]
        )
        print(
            f"D = {dynamic_range:.0f} dex: {row['nodes']} nodes (build {row['build_seconds']:.1f}"
            f" s); |gradient| <= {row['covered_gradient_abs']:.2f} dex/arcsec: largest error "
            f"{worst_inside:.1e} dex; logp+gradient {row['radial_ms']:.2f} ms vs full "
            f"{row['full_ms']:.1f} ms ({row['speedup']:.0f}x)",
            flush=True,
        )
    report["prior"] = prior_node_counts(galaxy, (0.1, 0.3, 1.0))
    for width, entry in report["prior"].items():
        print(
            f"gradient ~ Normal(0, {width}): {entry['nodes']} nodes "
            f"(covering {entry['covered']:.0%} of prior draws)"
        )
    full_ms = report["stated"][1]["full_ms"]
    radial_column_ms = report["stated"][1]["radial_ms"] / report["stated"][1]["nodes"]
    report["angular"] = {}
    for amplitude in (0.05, 0.2, 0.5):
        columns, _ = angular_nodes(amplitude, 1)
        estimate = radial_column_ms * report["stated"][1]["nodes"] * columns
        report["angular"][amplitude] = {
            "columns_per_radial_node": columns,
            "estimated_ms": estimate,
            "full_ms": full_ms,
        }
        print(
            f"(r, theta) transfer, harmonic amplitude {amplitude} dex: x{columns} columns, "
            f"~{estimate:.1f} ms per gradient against {full_ms:.1f} ms for the full path"
        )
    if args.demo:
        report["demo"] = demo_ratio(args.fwhm)
        print(f"demo wall time log / linear: {report['demo']['ratio']:.2f}")
    print(json.dumps(report, default=float))


if __name__ == "__main__":
    main()
