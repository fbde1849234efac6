"""Batched log-likelihood + gradient for many galaxies at once with JAX (GPU when present).

Run: ``python benchmarks/gpu.py [--galaxies 1000] [--size 61] [--supersampling 3]``

Each galaxy is an exponential disc with its own light (x0, y0, r_eff, amplitude) and
metallicity (central, gradient) parameters and its own noisy maps; the joint light + tracer
log-likelihood of every galaxy and its gradient with respect to all six parameters are
evaluated in one ``jax.vmap``-ed, jitted call through the full FFT forward model (the same
PyTensor graph pymc_tracers samples, compiled by PyTensor's JAX backend with our FFT op's JAX
implementation). It prints the time per batch and per galaxy next to the C backend's time for
one galaxy, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_seconds  # noqa: E402

import pymc_tracers as pmt  # noqa: E402


def single_galaxy_graph(size, supersampling, fwhm):
    """Symbolic log-likelihood of one galaxy: parameters and data maps are graph inputs."""
    grid = pmt.PixelGrid((size, size), 0.066, supersampling=supersampling)
    params = pt.dvector("params")  # x0, y0, r_eff, amplitude, central, gradient
    light_data, light_sigma = pt.dmatrix("light_data"), pt.dmatrix("light_sigma")
    z_data, z_sigma = pt.dmatrix("z_data"), pt.dmatrix("z_sigma")
    x0, y0, r_eff, amplitude, central, gradient = (params[i] for i in range(6))
    disc = pmt.Component(
        pmt.Exponential(x0=x0, y0=y0, r_eff=r_eff, amplitude=amplitude),
        pmt.LinearGradient(x0=x0, y0=y0, central=central, gradient=gradient),
    )
    image, tracer = pmt.observe(disc, grid, pmt.GaussianPSF(fwhm), "log", method="full")
    logp = pt.sum(pm.logp(pm.Normal.dist(image, light_sigma), light_data)) + pt.sum(
        pm.logp(pm.Normal.dist(tracer, z_sigma), z_data)
    )
    inputs = [params, light_data, light_sigma, z_data, z_sigma]
    return grid, inputs, [logp, pytensor.grad(logp, params)]


def simulate_batch(grid, fwhm, n, rng):
    truth = np.column_stack(
        [
            rng.normal(0, 0.05, n),
            rng.normal(0, 0.05, n),
            rng.uniform(0.4, 1.0, n),
            rng.uniform(0.5, 2.0, n),
            rng.normal(8.4, 0.1, n),
            rng.normal(-0.15, 0.05, n),
        ]
    )
    maps = []
    for row in truth[: min(n, 8)]:  # simulate a few and reuse them (timing does not care)
        comp = pmt.Component(
            pmt.Exponential(x0=row[0], y0=row[1], r_eff=row[2], amplitude=row[3]),
            pmt.LinearGradient(x0=row[0], y0=row[1], central=row[4], gradient=row[5]),
        )
        image, tracer = pmt.evaluate(pmt.observe(comp, grid, pmt.GaussianPSF(fwhm), "log"))
        light_sigma = np.full(image.shape, 0.01 * image.max())
        z_sigma = np.full(tracer.shape, 0.1)
        maps.append(
            (
                image + rng.normal(size=image.shape) * light_sigma,
                light_sigma,
                tracer + rng.normal(size=tracer.shape) * z_sigma,
                z_sigma,
            )
        )
    stacked = [np.stack([maps[i % len(maps)][k] for i in range(n)]) for k in range(4)]
    return truth, stacked


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--galaxies", type=int, default=1000)
    parser.add_argument(
        "--size", type=int, default=61, help="pixels per side (0.066 arcsec pixels)"
    )
    parser.add_argument("--supersampling", type=int, default=3)
    parser.add_argument("--fwhm", type=float, default=0.5)
    parser.add_argument("--chunk", type=int, default=250, help="galaxies per vmapped call (memory)")
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    from pymc.sampling.jax import get_jaxified_graph

    jax.config.update("jax_enable_x64", True)
    device = jax.devices()[0]
    grid, inputs, outputs = single_galaxy_graph(args.size, args.supersampling, args.fwhm)
    rng = np.random.default_rng(0)
    truth, (light, light_sigma, z, z_sigma) = simulate_batch(grid, args.fwhm, args.galaxies, rng)

    # one galaxy on PyTensor's C backend, for reference
    c_fn = pytensor.function(inputs, outputs)
    one = [truth[0], light[0], light_sigma[0], z[0], z_sigma[0]]
    t_c = median_seconds(lambda: c_fn(*one))

    jax_fn = get_jaxified_graph(inputs=inputs, outputs=outputs)
    batched = jax.jit(jax.vmap(lambda *a: jax_fn(*a)))
    chunk = min(args.chunk, args.galaxies)
    arrays = [
        jax.device_put(jnp.asarray(a), device) for a in (truth, light, light_sigma, z, z_sigma)
    ]

    def run_all():
        out = None
        for start in range(0, args.galaxies, chunk):
            out = batched(*(a[start : start + chunk] for a in arrays))
        jax.block_until_ready(out)

    start = time.perf_counter()
    run_all()
    compile_seconds = time.perf_counter() - start
    t_batch = median_seconds(run_all, repeats=5)
    # check the batch against the C backend for the first galaxy
    logp_jax, grad_jax = batched(*(a[:1] for a in arrays))
    logp_c, grad_c = c_fn(*one)
    agree = bool(
        np.allclose(float(logp_jax[0]), logp_c, rtol=1e-8)
        and np.allclose(np.asarray(grad_jax[0]), grad_c, rtol=1e-6, atol=1e-6)
    )

    row = dict(
        benchmark="gpu",
        device=str(device),
        galaxies=args.galaxies,
        grid=[args.size, args.size],
        supersampling=args.supersampling,
        batch_seconds=t_batch,
        per_galaxy_ms=1e3 * t_batch / args.galaxies,
        c_backend_one_galaxy_ms=1e3 * t_c,
        speedup_vs_c_sequential=t_c * args.galaxies / t_batch,
        jit_compile_seconds=compile_seconds,
        agrees_with_c_backend=agree,
    )
    print(
        f"device {row['device']}: {args.galaxies} galaxies of {args.size}x{args.size} (s={args.supersampling})"
    )
    print(f"  logp+grad for the batch  {t_batch:.3f} s  ({row['per_galaxy_ms']:.3f} ms per galaxy)")
    print(
        f"  C backend, one galaxy    {row['c_backend_one_galaxy_ms']:.3f} ms  -> speed-up {row['speedup_vs_c_sequential']:.1f}x"
    )
    print(f"  JAX matches the C backend: {agree}")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
