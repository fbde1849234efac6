"""Cost of one log-likelihood and one gradient on the paper's Figure-3 grid.

Run: ``python benchmarks/forward.py``

For each PSF FWHM it builds the paper's fit (exponential light fixed, tracer central value and
gradient free, Gaussian likelihood on the metallicity map), then times, in the same process:

* ``model.compile_logp()`` evaluations,
* ``model.compile_dlogp()`` evaluations,
* the bare numpy FFTs those evaluations need: a batched ``rfft2``/``irfft2`` pair over the
  two rendered images (numerator and denominator) for the log-likelihood, two pairs for the
  gradient (forward and adjoint convolution).

and prints the ratios. The last line is a JSON object with every number.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pymc as pm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _timing import median_seconds  # noqa: E402

import pymc_tracers as pmt  # noqa: E402
from pymc_tracers.convolution import fft_shape  # noqa: E402


def build(fwhm, supersampling=3):
    grid = pmt.PixelGrid((121, 121), 0.066, supersampling=supersampling)
    psf = pmt.GaussianPSF(fwhm)
    truth = pmt.Component(
        pmt.Exponential(r_eff=1.0, amplitude=1.0), pmt.LinearGradient(central=8.0, gradient=-0.2)
    )
    _, data = pmt.evaluate(pmt.observe(truth, grid, psf, "log"))
    data = data + np.random.default_rng(1).normal(0, 0.1, data.shape)
    with pm.Model() as model:
        central = pm.Normal("central", 8.0, 1.0)
        gradient = pm.Normal("gradient", 0.0, 1.0)
        galaxy = pmt.Component(
            pmt.Exponential(r_eff=1.0, amplitude=1.0),
            pmt.LinearGradient(central=central, gradient=gradient),
        )
        _, tracer = pmt.observe(galaxy, grid, psf, "log")
        pm.Normal("metallicity", mu=tracer, sigma=0.1, observed=data)
    pad = psf.half_width(grid.subpixel_scale)
    rendered = (121 * supersampling + 2 * pad,) * 2
    return model, rendered


def main():
    rows = []
    for fwhm in (0.5, 1.5):
        model, rendered = build(fwhm)
        point = model.initial_point()
        logp = model.compile_logp()
        dlogp = model.compile_dlogp()
        t_logp = median_seconds(lambda: logp(point))
        t_dlogp = median_seconds(lambda: dlogp(point))

        period = fft_shape(rendered)
        images = np.random.default_rng(0).normal(size=(2, *rendered))

        def bare_pair():
            np.fft.irfft2(np.fft.rfft2(images, s=period), s=period)

        t_fft = median_seconds(bare_pair)
        rows.append(
            dict(
                fwhm=fwhm,
                rendered_shape=list(rendered),
                fft_shape=list(period),
                logp_seconds=t_logp,
                dlogp_seconds=t_dlogp,
                bare_fft_pair_seconds=t_fft,
                logp_over_fft=t_logp / t_fft,
                dlogp_over_fft=t_dlogp / (2 * t_fft),
                logp_plus_dlogp_over_fft=(t_logp + t_dlogp) / (3 * t_fft),
            )
        )

    print(
        f"{'FWHM':>5} {'rendered':>10} {'FFT':>10} {'logp ms':>8} {'dlogp ms':>9} "
        f"{'FFT ms':>7} {'logp/FFT':>9} {'dlogp/2FFT':>10}"
    )
    for r in rows:
        print(
            f"{r['fwhm']:5.1f} {r['rendered_shape'][0]:>10d} {r['fft_shape'][0]:>10d} "
            f"{1e3 * r['logp_seconds']:8.2f} {1e3 * r['dlogp_seconds']:9.2f} "
            f"{1e3 * r['bare_fft_pair_seconds']:7.2f} {r['logp_over_fft']:9.2f} "
            f"{r['dlogp_over_fft']:10.2f}"
        )
    print(json.dumps({"benchmark": "forward", "rows": rows}))


if __name__ == "__main__":
    main()
