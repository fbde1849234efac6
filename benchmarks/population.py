"""Joint hierarchical fit of a simulated galaxy sample: time, memory, recovery, batching speedup.

Run: ``python benchmarks/population.py [--n-galaxies 100] [--draws 1000] [--seed 0]
[--light fixed|free] [--method auto|full] [--compile-data]``

Simulates a sample from a known gradient-mass relation
(:func:`pymc_tracers.simulate_population.population_sample`: exponential discs of varying
size on 33x33 to 41x41 pixel stamps, supersampling 2, Gaussian PSFs of varying width, S/N cuts
and masks, log-averaged metallicity), then fits the joint hierarchical model
(:func:`~pymc_tracers.simulate_population.population_model`, gradients in dex/kpc on a linear
relation with log M*) with nutpie, 2 chains. ``--light free`` fits each galaxy's light profile
(r_eff, amplitude) from its image jointly (full FFT path); ``fixed`` holds it at the truth.

No gradient range or other hint is given: with fixed light the forward model takes the radial
transfer path, whose node count it measures at prior draws. ``--method full`` bypasses it; ``--draws 0`` only builds and compiles the
model and times one logp + gradient (for samples too large to sample here). Data are passed to
the compiled sampler as arrays; ``--compile-data`` bakes them in as constants (slightly faster
sampling, but compiling then holds extra copies: 6.7 GB against 3.55 GiB at 1000 galaxies).

``batched_speedup`` is the loop form's logp+gradient time (one ``observe`` per galaxy on its
own stamp) over the batched form's (one ``observe`` for all), same model and backend; for
large samples both are timed on the first ``--speedup-galaxies`` galaxies.

The last printed line is one JSON object: n_galaxies, seconds (build + compile + sample),
compile_seconds, peak_rss_mb, ess_bulk_min, r_hat_max, batched_speedup, the fast path taken,
and for slope, intercept and scatter the truth, the relation this finite sample's true gradients
follow (``*_realised``) and the posterior 2.5/50/97.5th percentiles.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pymc_tracers as pmt  # noqa: E402
from pymc_tracers.simulate_population import population_model, population_sample  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_seconds, sampler_logp  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def logp_and_gradient(model, backend):
    """A compiled ``point -> (logp, dlogp)`` in the sampler's backend, and its input point."""
    import pytensor

    point = model.initial_point()
    inputs = model.value_vars
    logp = sampler_logp(model)  # merged as nutpie does (one adjoint per forward model)
    grads = pytensor.grad(logp, inputs)
    if backend == "jax":
        import jax
        from pymc.sampling.jax import get_jaxified_graph

        fn = jax.jit(get_jaxified_graph(inputs=inputs, outputs=[logp, *grads]))
        args = [point[v.name] for v in inputs]

        def call():
            return [np.asarray(o) for o in fn(*args)]
    else:
        mode = None if backend == "c" else backend.upper()  # "c": PyTensor default (lazy ifelse)
        fn = pytensor.function(inputs, [logp, *grads], mode=mode)
        args = [point[v.name] for v in inputs]

        def call():
            return fn(*args)

    return call


def realised_relation(sample):
    """The relation the sample's true gradients follow (least squares, rms scatter): a finite
    sample scatters about the population's relation, so these are what a fit can recover."""
    x = sample.log_mass - sample.truth["pivot"]
    design = np.vstack([np.ones_like(x), x]).T
    (intercept, slope), *_ = np.linalg.lstsq(design, sample.gradient_kpc, rcond=None)
    residual = sample.gradient_kpc - intercept - slope * x
    return {"intercept": intercept, "slope": slope, "scatter": float(np.std(residual, ddof=2))}


def batched_speedup(sample, light, backend, n, method="auto"):
    """Loop-form over batched-form logp+gradient time on the first ``n`` galaxies."""
    sub = sample.subset(np.arange(min(n, sample.n_galaxies)))
    times = {}
    for form in ("batched", "loop"):
        model = population_model(sub, light=light, form=form, method=method)
        call = logp_and_gradient(model, backend)
        times[form] = median_seconds(call, repeats=10, warmup=1)
    return times["loop"] / times["batched"], times, sub.n_galaxies


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-galaxies", type=int, default=100)
    parser.add_argument(
        "--draws",
        type=int,
        default=1000,
        help="draws per chain; 0 times the model (compile, gradient) without sampling",
    )
    parser.add_argument("--tune", type=int, default=None, help="default: --draws")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--light", choices=["fixed", "free"], default="fixed")
    parser.add_argument("--backend", choices=["jax", "numba"], default="jax")
    parser.add_argument(
        "--method",
        choices=["auto", "full"],
        default="auto",
        help="forward-model path passed to observe (auto: the radial transfer)",
    )
    parser.add_argument(
        "--speedup-galaxies",
        type=int,
        default=50,
        help="galaxies on which the loop and batched forms are timed",
    )
    parser.add_argument("--no-speedup", action="store_true", help="skip the loop-form timing")
    parser.add_argument(
        "--compile-data",
        action="store_true",
        help="bake the data into the compiled model as constants (Fitter(swappable_data=False)); "
        "default: pass them as arrays, which needs less memory at compile time",
    )
    args = parser.parse_args(argv)
    if args.backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)

    sample = population_sample(args.n_galaxies, seed=args.seed)
    print(
        f"simulated {sample.n_galaxies} galaxies; stamps "
        f"{sample.stamp_shape[:, 0].min()}-{sample.stamp_shape[:, 0].max()} px, "
        f"{int(sample.tracer_mask.sum())} metallicity pixels",
        flush=True,
    )

    start = time.perf_counter()
    model = population_model(sample, light=args.light, method=args.method)
    build_seconds = time.perf_counter() - start
    observation = model.observations[0]
    path = observation.path
    print(
        f"model built in {build_seconds:.1f} s; forward model: {observation.renderer.describe()}",
        flush=True,
    )

    report = {
        "n_galaxies": sample.n_galaxies,
        "light": args.light,
        "draws": args.draws,
        "chains": args.chains,
        "backend": args.backend,
        "path": path,
        "radial_nodes": getattr(observation.renderer, "node_counts", None),
        "radial_nodes_likelihood": list(
            getattr(observation.renderer, "pixel_node_counts", {}).values()
        ),
        "radial_error_prior": observation.max_error,
        "data": "compiled" if args.compile_data else "swappable",
        "build_seconds": build_seconds,
    }
    if args.draws == 0:
        call = logp_and_gradient(model, args.backend)
        call()
        report["compile_seconds"] = time.perf_counter() - start - build_seconds
        report["seconds"] = time.perf_counter() - start
        report["gradient_ms"] = 1e3 * median_seconds(call, repeats=5, warmup=0)
        print(
            f"compiled in {report['compile_seconds']:.1f} s; logp+gradient "
            f"{report['gradient_ms']:.1f} ms (no sampling)",
            flush=True,
        )
    else:
        # one large fit with nutpie's defaults (jittered starts). Data baked in as constants
        # (--compile-data) cost a transient copy or two of every data array while compiling.
        fitter = pmt.Fitter(
            model,
            observations=model.observations,
            backend=args.backend,
            swappable_data=not args.compile_data,
        )
        print(f"compiled in {fitter.compile_seconds:.1f} s", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pmt.ConvergenceWarning)
            result = fitter.fit(
                draws=args.draws,
                tune=args.tune or args.draws,
                chains=args.chains,
                random_seed=args.seed,
                progressbar=False,
                log_likelihood=False,
                map_draws=20,
                config=sample.config(),
            )
        seconds = time.perf_counter() - start
        sampling_seconds = result.config.get("sampling_seconds", float("nan"))
        diagnostics = result.diagnostics()
        print(
            f"sampled in {sampling_seconds:.1f} s; total {seconds:.1f} s; {diagnostics}", flush=True
        )
        report.update(
            {
                "seconds": seconds,
                "compile_seconds": fitter.compile_seconds,
                "sampling_seconds": sampling_seconds,
                "ess_bulk_min": diagnostics["ess_bulk_min"],
                "r_hat_max": diagnostics["r_hat_max"],
                "divergences": diagnostics["divergences"],
                "n_steps_mean": float(result.idata.sample_stats["n_steps"].mean()),
                "radial_error_posterior": result.config.get("radial_error"),
            }
        )
        realised = realised_relation(sample)
        for name in ("slope", "intercept", "scatter"):
            p = result.percentiles(name, (2.5, 50, 97.5))
            report[f"{name}_true"] = sample.truth[name]
            report[f"{name}_realised"] = realised[name]
            report.update(
                {
                    f"{name}_p2_5": float(p[0]),
                    f"{name}_p50": float(p[1]),
                    f"{name}_p97_5": float(p[2]),
                }
            )
            inside = p[0] < sample.truth[name] < p[2]
            print(
                f"{name}: truth {sample.truth[name]:+.4f} (this sample's {realised[name]:+.4f}), "
                f"95% [{p[0]:+.4f}, {p[2]:+.4f}] ({'inside' if inside else 'OUTSIDE'})"
            )
        g = result.idata.posterior["gradient_kpc"].mean(("chain", "draw")).values
        report["gradient_kpc_rmse"] = float(np.sqrt(np.mean((g - sample.gradient_kpc) ** 2)))

    if args.no_speedup:
        report["batched_speedup"] = None
    else:
        speedup, times, n = batched_speedup(
            sample,
            args.light,
            args.backend,
            args.speedup_galaxies,
        )
        report.update(
            batched_speedup=speedup,
            speedup_n_galaxies=n,
            loop_gradient_ms=1e3 * times["loop"],
            batched_gradient_ms=1e3 * times["batched"],
        )
        print(
            f"logp+gradient on {n} galaxies: loop {1e3 * times['loop']:.2f} ms, batched "
            f"{1e3 * times['batched']:.2f} ms ({speedup:.1f}x)"
        )
    report["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
