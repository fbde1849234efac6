"""A batch of galaxies against a loop of single-galaxy models, on the full path.

Run: ``python benchmarks/batch_vs_loop.py [--modes FAST_RUN NUMBA JAX] [--repeats 30]``

The model is the one a user writes for a small population without any hint: 10 galaxies on
33x33 pixels of 0.1 arcsec, supersampling 2, each with its own Gaussian PSF (FWHM 0.25 to
0.6 arcsec); exponential discs whose ``r_eff`` and ``amplitude`` are free (so nothing can be
precomputed: every evaluation renders, convolves and bins), a ``LinearGradient`` metallicity
with free ``central`` and ``gradient``, log averaging, ``method="full"``, Gaussian light and
tracer likelihoods. It is built twice with the same data and priors:

* **loop**: one ``pmt.observe`` per galaxy, scalar parameters indexed from ``dims="galaxy"``
  vectors (what a user writes with a Python ``for`` loop);
* **batch**: one ``pmt.observe`` with ``(10,)`` parameters and a list of 10 PSFs.

and for two PSF cases:

* **fixed**: the PSFs are known (a kernel stack, cached FFTs);
* **fitted**: each galaxy's FWHM is a free parameter (``pmt.GaussianPSF(fwhm[i],
  max_fwhm=1.3 x nominal)``), so the kernels are tensors.

Each model is compiled to one function returning the log density and its gradient
(``model.logp()``, rewritten as nutpie does so that the two likelihoods share one adjoint of
the forward model, and ``pytensor.grad`` in one ``pytensor.function``: what a sampler calls
per leapfrog step) in each backend, and timed interleaved (rounds of loop, batch, loop, batch, ...
so load from other jobs hits both alike); the median per evaluation is reported. Both forms
must agree (logp and gradient differences are printed).

``--before REV`` also builds both forms with ``pymc_tracers/convolution.py`` (a single module up to d446c14) as it was at git
revision REV (loaded as a separate module, everything else unchanged) and times them in the
same rounds, so the before/after comparison sees the same load. The old module registers its
JAX implementations (at 18199be: an override of PyTensor's JAX dispatch for every
``Blockwise``) when loaded.

The last line is JSON with the ratios ``batch / loop``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymc_tracers as pmt  # noqa: E402
import pymc_tracers.numerics as numerics  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import sampler_logp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

N_GALAXIES = 10
GRID = pmt.PixelGrid((33, 33), pixel_scale=0.1, supersampling=2)
FWHM = np.linspace(0.25, 0.6, N_GALAXIES)  # arcsec
R_EFF = np.linspace(0.35, 0.6, N_GALAXIES)  # arcsec
Q = np.linspace(0.6, 0.9, N_GALAXIES)
PHI = np.linspace(0.1, 2.0, N_GALAXIES)
CENTRAL = np.linspace(8.3, 8.7, N_GALAXIES)  # dex
GRADIENT = np.linspace(-0.5, -0.1, N_GALAXIES)  # dex / arcsec
LIGHT_ERROR, TRACER_ERROR = 0.02, 0.05
MODES = ("FAST_RUN", "NUMBA", "JAX")


def _component(r_eff, amplitude, central, gradient, q, phi):
    return pmt.Component(
        pmt.Exponential(r_eff=r_eff, amplitude=amplitude, q=q, phi=phi),
        pmt.LinearGradient(central=central, gradient=gradient, q=q, phi=phi),
    )


def simulated_data(seed=0):
    """Light images and metallicity maps ``(10, 33, 33)`` of the batch at its truth, with noise."""
    psfs = [pmt.GaussianPSF(f) for f in FWHM]
    truth = _component(R_EFF, 1.0, CENTRAL, GRADIENT, Q, PHI)
    image, tracer = pmt.evaluate(pmt.observe(truth, GRID, psfs, "log", method="full"))
    rng = np.random.default_rng(seed)
    return (
        image + LIGHT_ERROR * rng.normal(size=image.shape),
        tracer + TRACER_ERROR * rng.normal(size=tracer.shape),
    )


def build_model(form, psf_case, data):
    """The 10-galaxy model as a loop of single-galaxy observes or as one batched observe."""
    light_data, tracer_data = data
    coords = {"galaxy": np.arange(N_GALAXIES)}
    with pm.Model(coords=coords) as model:
        r_eff = pm.LogNormal("r_eff", np.log(R_EFF), 0.3, dims="galaxy")
        amplitude = pm.LogNormal("amplitude", 0.0, 0.5, dims="galaxy")
        central = pm.Normal("central", 8.5, 0.5, dims="galaxy")
        gradient = pm.Normal("gradient", 0.0, 0.5, dims="galaxy")
        if psf_case == "fitted":
            fwhm = pm.LogNormal("fwhm", np.log(FWHM), 0.1, dims="galaxy")
            psfs = [pmt.GaussianPSF(fwhm[i], max_fwhm=1.3 * FWHM[i]) for i in range(N_GALAXIES)]
        else:
            psfs = [pmt.GaussianPSF(f) for f in FWHM]
        if form == "batch":
            comp = _component(r_eff, amplitude, central, gradient, Q, PHI)
            image, tracer = pmt.observe(comp, GRID, psfs, "log", method="full")
            pmt.image_likelihood("light", image, light_data, sigma=LIGHT_ERROR)
            pmt.tracer_likelihood("metallicity", tracer, tracer_data, sigma=TRACER_ERROR)
        else:
            for i in range(N_GALAXIES):
                comp = _component(r_eff[i], amplitude[i], central[i], gradient[i], Q[i], PHI[i])
                image, tracer = pmt.observe(comp, GRID, psfs[i], "log", method="full")
                pmt.image_likelihood(f"light_{i}", image, light_data[i], sigma=LIGHT_ERROR)
                pmt.tracer_likelihood(
                    f"metallicity_{i}", tracer, tracer_data[i], sigma=TRACER_ERROR
                )
    return model


def convolution_at(revision):
    """``pymc_tracers/convolution.py`` at a git revision, loaded as its own module."""
    source = subprocess.run(
        ["git", "show", f"{revision}:pymc_tracers/convolution.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"convolution_{revision}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"convolution_{revision}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def numerics_using(module):
    """Build models whose numerics use another convolution module."""
    saved = numerics.FixedKernelConvolution, numerics.convolve_valid
    numerics.FixedKernelConvolution, numerics.convolve_valid = (
        module.FixedKernelConvolution,
        module.convolve_valid,
    )
    try:
        yield
    finally:
        numerics.FixedKernelConvolution, numerics.convolve_valid = saved


def compile_logp_and_gradient(model, mode):
    """``f(x) -> (logp, dlogp)`` on the flat vector of free (transformed) values."""
    values = model.value_vars
    logp = sampler_logp(model)  # merged as nutpie does (one adjoint per forward model)
    grads = pytensor.grad(logp, values)
    flat = pt.dvector("x")
    sizes = [int(np.prod(model.initial_point()[v.name].shape)) for v in values]
    replace, start = {}, 0
    point = model.initial_point()
    for v, n in zip(values, sizes):
        replace[v] = flat[start : start + n].reshape(point[v.name].shape)
        start += n
    outputs = pytensor.graph_replace([logp, pt.concatenate([g.ravel() for g in grads])], replace)
    fn = pytensor.function([flat], outputs, mode=mode)
    fn.trust_input = True
    x0 = np.concatenate([np.ravel(point[v.name]) for v in values])
    return fn, x0


def time_interleaved(functions, x, repeats, inner):
    """Median seconds per call of each function, calls interleaved round by round."""
    times = {name: [] for name in functions}
    for fn in functions.values():  # warm-up
        for _ in range(3):
            fn(x)
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn(x)
            times[name].append((time.perf_counter() - start) / inner)
    return {name: float(np.median(t)) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--psf", nargs="+", default=["fixed", "fitted"], choices=["fixed", "fitted"]
    )
    parser.add_argument("--repeats", type=int, default=30, help="timing rounds (median reported)")
    parser.add_argument("--inner", type=int, default=5, help="calls per round")
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also time both forms with pymc_tracers/convolution.py at this git revision",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if "JAX" in args.modes:
        try:
            import jax

            jax.config.update("jax_enable_x64", True)
        except ImportError:
            args.modes.remove("JAX")

    data = simulated_data()
    old = convolution_at(args.before) if args.before else None
    rng = np.random.default_rng(1)
    rows = []
    for psf_case in args.psf:
        models = {form: build_model(form, psf_case, data) for form in ("loop", "batch")}
        if old is not None:
            with numerics_using(old):
                for form in ("loop", "batch"):
                    models[f"{form} before"] = build_model(form, psf_case, data)
        for mode in args.modes:
            functions, compile_seconds, x = {}, {}, None
            for form, model in models.items():
                start = time.perf_counter()
                fn, x0 = compile_logp_and_gradient(model, mode)
                compile_seconds[form] = time.perf_counter() - start
                if x is None:  # a point away from the initial one, the same for both forms
                    x = x0 + 0.05 * rng.normal(size=x0.shape)
                functions[form] = fn
            # every form orders the free variables alike: values and gradients must agree
            results = {form: fn(x) for form, fn in functions.items()}
            logp_diff = max(abs(float(r[0]) - float(results["loop"][0])) for r in results.values())
            grad_diff = max(
                float(np.max(np.abs(r[1] - results["loop"][1]))) for r in results.values()
            )
            seconds = time_interleaved(functions, x, args.repeats, args.inner)
            for suffix in ("", " before") if old is not None else ("",):
                row = dict(
                    psf=psf_case,
                    mode=mode,
                    code=args.before if suffix else "this",
                    loop_ms=1e3 * seconds[f"loop{suffix}"],
                    batch_ms=1e3 * seconds[f"batch{suffix}"],
                    ratio=seconds[f"batch{suffix}"] / seconds[f"loop{suffix}"],
                    compile_loop_s=compile_seconds[f"loop{suffix}"],
                    compile_batch_s=compile_seconds[f"batch{suffix}"],
                    logp_difference=logp_diff,
                    gradient_difference=grad_diff,
                )
                rows.append(row)
                print(
                    f"{psf_case:7s} {mode:9s} {row['code']:8s} loop {row['loop_ms']:8.2f} ms  "
                    f"batch {row['batch_ms']:8.2f} ms  batch/loop {row['ratio']:5.2f}  "
                    f"(|dlogp| {logp_diff:.1e}, |dgrad| {grad_diff:.1e})",
                    flush=True,
                )
    print()
    header = f"{'PSF':7s} {'backend':9s} {'code':8s} {'loop ms':>9s} {'batch ms':>9s}"
    print(f"{header} {'batch/loop':>10s}")
    for row in rows:
        print(
            f"{row['psf']:7s} {row['mode']:9s} {row['code']:8s} {row['loop_ms']:9.2f} "
            f"{row['batch_ms']:9.2f} {row['ratio']:10.2f}"
        )
    record = dict(
        benchmark="batch_vs_loop",
        n_galaxies=N_GALAXIES,
        grid=dict(shape=GRID.shape, pixel_scale=GRID.pixel_scale, supersampling=2),
        fwhm=[float(f) for f in FWHM],
        rows=rows,
        max_ratio=max(row["ratio"] for row in rows if row["code"] == "this"),
        cpu_count=os.cpu_count(),
        load_average=[round(v, 2) for v in os.getloadavg()],
    )
    print(json.dumps(record))


if __name__ == "__main__":
    main()
