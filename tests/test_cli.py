"""The ``pymc-tracers`` command line: every bad input ends with a specific message."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import pymc_tracers as pmt
from pymc_tracers import cli
from pymc_tracers.cli import build_parser, demo_command, estimate_render_bytes, main

SUBCOMMAND_USAGE = "usage: pymc-tracers demo"
TOP_LEVEL_USAGE = "usage: pymc-tracers [-h]"


def run_failing(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tune", "0"], r"--tune must be >= 10; got 0\. NUTS adapts"),
        (["--tune", "9"], r"--tune must be >= 10; got 9"),
        (["--seed", "-1"], r"--seed must be an integer from 0 to 4294967295; got -1"),
        (["--seed", str(2**32)], r"--seed must be an integer from 0 to 4294967295; got 4294967296"),
        (["--fwhm", "-1"], r"--fwhm must be a finite number > 0 \(arcsec\); got -1\.0"),
        (["--fwhm", "nan"], r"--fwhm must be a finite number > 0 \(arcsec\); got nan"),
        (["--fwhm", "inf"], r"--fwhm must be a finite number > 0 \(arcsec\); got inf"),
        (["--draws", "5"], r"--draws must be >= 10; got 5"),
        (["--supersampling", "0"], r"--supersampling must be an integer >= 1; got 0"),
        (["--max-memory", "0"], r"--max-memory must be a number of GiB > 0; got 0\.0"),
        (["--seed", "x"], r"argument --seed: invalid int value: 'x'"),
    ],
)
def test_bad_demo_arguments_print_the_subcommand_usage_and_a_message(argv, message, capsys):
    err = run_failing(["demo", *argv], capsys)
    assert SUBCOMMAND_USAGE in err and TOP_LEVEL_USAGE not in err
    assert "pymc-tracers demo: error:" in err
    assert re.search(message, err), err


def test_a_huge_psf_is_refused_before_anything_is_rendered(capsys):
    err = run_failing(["demo", "--fwhm", "100"], capsys)
    assert SUBCOMMAND_USAGE in err
    # the estimate, the limit and every lever
    grid, psf = cli.demo_setup(fwhm=100.0)
    needed = estimate_render_bytes(grid, psf)
    assert needed > 100 * 2**30
    assert f"rendering this field would need about {needed / 2**30:.1f} GiB (limit 4.0 GiB)" in err
    for lever in [
        'convolve_at="pixel"',
        "supersampling=1",
        "--supersampling 1",
        "GaussianPSF(fwhm, radius=<arcsec>)",
        "--max-memory",
    ]:
        assert lever in err, lever
    # the same refusal from the Python entry point
    with pytest.raises(ValueError, match=r"would need about .* GiB \(limit 4\.0 GiB\)"):
        cli.demo(fwhm=100.0)
    # a raised limit lets the check pass (the estimate, not the build, is what refused)
    assert cli.render_memory_problem(grid, psf, 300 * 2**30) is None


def test_render_estimate_counts_the_padded_field_and_the_stamp():
    grid = pmt.PixelGrid((21, 17), 0.1, supersampling=3)
    psf = pmt.GaussianPSF(0.7)
    h = psf.half_width(grid.subpixel_scale)
    padded = grid.render_grid(h).shape
    stamp = psf.kernel(grid.subpixel_scale).shape
    expected = 8 * (
        cli.RENDER_FIELD_COPIES * np.prod(padded) + cli.RENDER_KERNEL_COPIES * np.prod(stamp)
    )
    assert estimate_render_bytes(grid, psf) == expected
    # pixel-scale convolution pads the data pixels and renders the field once on sub-pixels
    coarse = grid.with_supersampling(1).render_grid(h // 3).shape
    fine = grid.render_grid(0).shape
    expected_pixel = 8 * (
        cli.RENDER_FIELD_COPIES * (np.prod(coarse) + np.prod(fine))
        + cli.RENDER_KERNEL_COPIES * np.prod(stamp)
    )
    assert estimate_render_bytes(grid, psf, convolve_at="pixel") == expected_pixel
    with pytest.raises(ValueError, match="convolve_at"):
        estimate_render_bytes(grid, psf, convolve_at="fourier")


@pytest.mark.filterwarnings("ignore:the PSF stamp")
def test_render_estimate_bounds_the_measured_peak():
    """numpy allocations are traced: the estimate is an upper bound of one evaluation's peak.

    Measured in a fresh interpreter (the convolution ops keep work arrays between calls), on a
    compiled function whose input is free, so that nothing is folded into constants at compile
    time and the compile itself (whose memory grows with PyTensor's on-disk cache) is not
    traced. The estimate is deliberately generous (it also covers a gradient pass): within 16x.
    """
    code = """
import tracemalloc
import pytensor
import pytensor.tensor as pt
import pymc_tracers as pmt
from pymc_tracers.cli.memory import estimate_render_bytes
grid = pmt.PixelGrid((41, 41), 0.066, supersampling=1)
psf = pmt.GaussianPSF(3.0)
r_eff = pt.dscalar("r_eff")
disc = pmt.Component(
    pmt.Exponential(r_eff=r_eff, amplitude=1.0), pmt.LinearGradient(central=8.0, gradient=-0.2)
)
render = pytensor.function([r_eff], list(pmt.observe(disc, grid, psf, method="full")))
tracemalloc.start()
render(0.5)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(peak, estimate_render_bytes(grid, psf))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, estimate = (int(v) for v in out.stdout.split()[-2:])
    assert peak <= estimate <= 16 * peak


def test_psf_much_larger_than_the_field_warns(monkeypatch, capsys):
    grid, psf = cli.demo_setup(fwhm=1.5)
    assert cli.psf_size_warning(grid, psf) is None
    grid, psf = cli.demo_setup(fwhm=10.0)
    assert "is 6x wider than the field (8.0 arcsec)" in cli.psf_size_warning(grid, psf)

    # the command prints it (the fit itself is replaced by a stub)
    def fake_demo(**kwargs):
        return dict(
            kwargs,
            truth_gradient=-0.2,
            truth_central=8.0,
            wls_gradient=-0.1,
            wls_gradient_err=0.01,
            gradient_median=-0.2,
            gradient_p16=-0.21,
            gradient_p84=-0.19,
            central_median=8.0,
            r_hat_max=1.0,
            ess_bulk_min=500.0,
            divergences=0,
            n_pixels=14641,
            sampling_seconds=1.0,
            fit_seconds=2.0,
        )

    monkeypatch.setattr(demo_command, "demo", fake_demo)
    assert main(["demo", "--fwhm", "10", "--json"]) == 0
    captured = capsys.readouterr()
    assert "pymc-tracers demo: warning: the PSF stamp (50.0 arcsec across)" in captured.err
    out = json.loads(captured.out)
    assert out["fwhm"] == 10.0 and out["seed"] == 0 and out["tune"] == 1000
    assert out["seconds_counts"] == "since the process started (imports included)"
    # the process (pytest) started long before this command: wall time counts from there
    assert out["seconds"] > out["fit_seconds"]


def test_library_errors_become_subcommand_errors(monkeypatch, capsys):
    def refuse(**kwargs):
        raise ValueError("nu must be > 0 (Student-t degrees of freedom); got -1")

    monkeypatch.setattr(demo_command, "demo", refuse)
    err = run_failing(["demo"], capsys)
    assert SUBCOMMAND_USAGE in err
    assert "pymc-tracers demo: error: nu must be > 0 (Student-t degrees of freedom); got -1" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pymc-tracers {pmt.__version__}"


def test_every_subcommand_help_lists_its_options(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "--version" in top
    for name, subparser in parser.subcommands.items():
        assert name in top
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        options = [s for action in subparser._actions for s in action.option_strings]
        assert len(options) >= 3  # -h and at least one option of its own
        for option in options:
            assert option in text, (name, option)


def test_demo_command_prints_json(tmp_path, capsys):
    """The one real fit of this file (the paper's galaxy, supersampling 1, 2 x 200 draws)."""
    png = tmp_path / "demo.png"
    argv = [
        "demo",
        "--fwhm",
        "1.0",
        "--draws",
        "200",
        "--tune",
        "200",
        "--supersampling",
        "1",
        "--json",
        "--output",
        str(png),
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in [
        "truth_gradient",
        "wls_gradient",
        "wls_gradient_err",
        "gradient_median",
        "gradient_p16",
        "gradient_p84",
        "central_median",
        "r_hat_max",
        "ess_bulk_min",
        "seconds",
        "fit_seconds",
        "sampling_seconds",
    ]:
        assert key in out
    assert out["gradient_p16"] < out["gradient_median"] < out["gradient_p84"]
    width = out["gradient_p84"] - out["gradient_p16"]
    assert abs(out["gradient_median"] - out["truth_gradient"]) < 3 * width
    # a fit that went astray (NaN gradients once gave median 0, width 1.4, R-hat 2.97) would
    # pass the line above: the posterior is as narrow as the data say (16-84% ~ 2 x the WLS
    # error here: 0.007 against 0.0034) and converged
    assert width < 4 * out["wls_gradient_err"]
    assert out["r_hat_max"] < 1.05 and out["divergences"] == 0
    assert abs(out["wls_gradient"]) < abs(out["truth_gradient"])
    assert out["seconds"] > out["fit_seconds"] > out["sampling_seconds"] > 0
    assert png.exists() and png.stat().st_size > 10_000
