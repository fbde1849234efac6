"""``[kinematics]`` configurations: a simulated disc fitted from its TOML file through
``pymc-tracers fit`` (truth recovered, every output written), ``fit-sample`` over two discs,
and one clear line for every bad kinematic configuration.

The simulated maps (``init-example --kinematics``) are the exact moments of the PSF-smeared
cube (full sub-pixel path, 4x4 sub-pixels); the fit convolves at the pixel scale with 2x2
sub-pixels on the ``disc_radial`` path, so the two differ by the fit's own model error
(~0.02 km/s, docs/kinematics.md) plus the noise.
"""

import json
import shutil
import warnings
from pathlib import Path

import arviz as az
import astropy.units as u
import numpy as np
import pymc as pm
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import pymc_tracers as pmt
from pymc_tracers import config as cfg
from pymc_tracers.cli import main
from pymc_tracers.config import run as run_module
from pymc_tracers.inference.samplers import _grid_config

TRUTH = cfg.KINEMATIC_EXAMPLE_TRUTH
SMALL = {"shape": (16, 16)}
#: Parameter -> truth for the example config's free parameters.
FREE_TRUTH = {
    "v_sys": TRUTH["v_sys"],
    "rotation_v_max": TRUTH["v_max"],
    "rotation_r_t": TRUTH["r_t"],
    "dispersion_value": TRUTH["sigma"],
}
#: The lines of the example's [kinematics.disc] that tests edit.
Q0 = "q0 = 0.2                      # inclination"
DISC_PA = "pa = 50.0                      # kinematic PA"
START = {"v_sys": 0.0, "rotation_v_max": 120.0, "rotation_r_t": 1.0, "dispersion_value": 60.0}


#: The tests of the module fixture below run on one xdist worker (``--dist loadgroup`` in
#: pyproject.toml): a module fixture is built on each worker that runs one of its tests
#: (this one: a simulated disc: 5.0 and 1.4 s, built on both workers in a full run).
EXAMPLE_GROUP = pytest.mark.xdist_group("config_kinematics_example")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A 16x16 simulated disc with nearly noiseless maps (errors 0.05 km/s) and its config."""
    folder = tmp_path_factory.mktemp("kinematic")
    truth = {**SMALL, "velocity_error": 0.05, "dispersion_error": 0.05}
    cfg.write_kinematic_example(folder, truth=truth)
    return folder


def _copy(example, tmp_path, edit=None, extra=""):
    """The example's files in ``tmp_path`` with ``edit`` ({old: new}) applied to its config."""
    shutil.copy(example / "kinematics.fits", tmp_path / "kinematics.fits")
    text = (example / "config.toml").read_text()
    for old, new in (edit or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text + extra)
    return path


def _map_then_draws(model, *, config, grid, **_):
    """A stand-in for the sampler: the MAP point (L-BFGS from ``START``), spread into 2 x 1000
    independent draws of 1e-3 relative width, wrapped as :func:`pymc_tracers.fit` does."""
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = pm.find_MAP(start=START, progressbar=False)
    rng = np.random.default_rng(0)
    posterior = {
        rv.name: (
            ("chain", "draw"),
            float(best[rv.name]) * (1 + 1e-3 * rng.normal(size=(2, 1000))),
        )
        for rv in model.free_RVs
    }
    idata = az.InferenceData(posterior=xr.Dataset(posterior))
    return pmt.Result.from_model(
        idata, model, map_draws=5, config={**config, "grid": _grid_config(grid)}
    )


@EXAMPLE_GROUP
def test_fit_command_recovers_a_simulated_disc_and_writes_every_output(
    example, tmp_path, monkeypatch, capsys
):
    """``pymc-tracers fit`` on the example's TOML file (sampler replaced by the MAP point):
    the disc_radial path, the truth to the fit's model error, the outputs of a metallicity fit
    with the kinematic figures, units in the summary and the input WCS in the maps."""
    config = _copy(example, tmp_path)
    monkeypatch.setattr(run_module, "fit", _map_then_draws)
    assert main(["fit", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "path: disc_radial" in printed and "rotation_v_max" in printed
    out = tmp_path / "results"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "config.toml",
            "maps_dispersion.fits",
            "maps_velocity.fits",
            "posterior.nc",
            "report_corner.png",
            "report_kinematic_maps.png",
            "report_position_velocity.png",
            "report_rotation_curve.png",
            "summary.ecsv",
        ]
    )
    rows = {r["parameter"]: r for r in Table.read(out / "summary.ecsv")}
    # near-noiseless maps: the MAP sits at the truth up to the pixel-scale convolution (s = 2)
    # against the exact s = 4 simulation and the 0.05 km/s noise, measured <= 1e-4 relative
    assert rows["rotation_v_max"]["mean"] == pytest.approx(TRUTH["v_max"], rel=1e-3)
    assert rows["rotation_r_t"]["mean"] == pytest.approx(TRUTH["r_t"], rel=1e-3)
    assert rows["dispersion_value"]["mean"] == pytest.approx(TRUTH["sigma"], rel=1e-3)
    assert rows["v_sys"]["mean"] == pytest.approx(TRUTH["v_sys"], abs=0.01)
    assert u.Unit(rows["rotation_v_max"]["unit"]) == u.km / u.s
    assert u.Unit(rows["rotation_r_t"]["unit"]) == u.arcsec
    result = pmt.Result.load(out / "posterior.nc")
    assert sorted(result.likelihood_names) == ["dispersion", "velocity"]
    with fits.open(example / "kinematics.fits") as inp, fits.open(out / "maps_velocity.fits") as m:
        assert u.Unit(m["MODEL"].header["BUNIT"]) == u.km / u.s
        w_in, w_out = WCS(inp["V"].header), WCS(m["MODEL"].header)
        corner = w_in.pixel_to_world(0, 0).separation(w_out.pixel_to_world(0, 0))
        assert corner.to_value("arcsec") < 1e-6
        # the model is the simulation: residuals are the 0.05 km/s noise (measured max 0.17)
        assert np.nanmax(np.abs(m["RESIDUAL"].data)) < 0.3


def test_binned_maps_recover_the_disc(tmp_path):
    """2x2-pixel bins (each bin's moments those of its summed cube, as a pipeline that sums
    spectra measures them): the config's binned likelihoods recover the truth."""
    shape = SMALL["shape"]
    rows, columns = np.indices(shape)
    bins = (rows // 2) * (shape[1] // 2) + columns // 2
    truth = {**SMALL, "velocity_error": 0.05, "dispersion_error": 0.05}
    path = cfg.write_kinematic_example(tmp_path, truth=truth, bin_map=bins)
    run = cfg.prepare_galaxy(path)
    assert run.info["binned"] and run.info["observation"].path == "disc_radial"
    assert run.model["velocity"].shape.eval()[0] == bins.max() + 1
    with run.model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = pm.find_MAP(start=START, progressbar=False)
    # measured <= 3.2e-4 relative (r_t), 1.6e-4 (sigma), 1.3e-4 (v_max), 0.002 km/s (v_sys)
    assert best["rotation_v_max"] == pytest.approx(TRUTH["v_max"], rel=1e-3)
    assert best["rotation_r_t"] == pytest.approx(TRUTH["r_t"], rel=1e-3)
    assert best["dispersion_value"] == pytest.approx(TRUTH["sigma"], rel=1e-3)
    assert best["v_sys"] == pytest.approx(TRUTH["v_sys"], abs=0.01)


@EXAMPLE_GROUP
@pytest.mark.parametrize(
    "edit, extra, pattern",
    [
        (
            {'profile = "ArctanCurve"': 'profile = "Arctan"'},
            "",
            r"\[kinematics.rotation\] profile = 'Arctan' \(did you mean 'ArctanCurve'\?\)",
        ),
        (
            {Q0: "q0 = 0.2\ninclination = 0.9 #"},
            "",
            "inclination is given both ways",
        ),
        (
            {Q0: "inclination = 55 #"},
            "",
            r"inclination = 55 must be in radians.*looks like degrees: write 0.9599",
        ),
        (
            {Q0: 'inclination = {distribution = "Uniform", lower = 0.1, upper = 80} #'},
            "",
            r"the prior has upper = 80, beyond edge-on.*radians \(80 deg = 1.3963\)",
        ),
        ({Q0: "#"}, "", r"needs inclination = <radians or prior> or q0"),
        ({'dispersion = "SIGMA"': 'dispersion = "SIGMA_IVAR"'}, "", "has neither"),
        (
            {'velocity = "V"': 'velocity = "VEL"'},
            "",
            r"no extension 'VEL'.*its extensions are V, V_ERR, SIGMA, SIGMA_IVAR",
        ),
        ({'file = "kinematics.fits"': 'file = "lost.fits"'}, "", "lost.fits' does not exist"),
        ({DISC_PA: "pha = 50.0 #"}, "", r"unknown key 'pha' in \[kinematics.disc\]"),
        (
            {"[kinematics.dispersion_profile]": "[kinematics.unused]"},
            "",
            r"unknown key 'unused' in \[kinematics\]",
        ),
        ({}, '[data]\nfile = "kinematics.fits"\n', r"remove \[data\]"),
        (
            {'convolve_at = "pixel"': 'convolve_at = "pixel"\ntracer_scale = "log"'},
            "",
            r"\[model\] tracer_scale does not apply to a kinematic fit \(velocities",
        ),
        (
            {'r_t = {distribution = "LogNormal"': 'r_t = {distribution = "LogNormall"'},
            "",
            r"\[kinematics.rotation\] r_t.*not a valid prior",
        ),
        (
            {'profile = "ArctanCurve"': 'profile = "ExponentialDiscCurve"'},
            "",
            r"unknown parameter 'r_t' of ExponentialDiscCurve.*its parameters are v_max, r_d",
        ),
    ],
)
def test_bad_kinematic_config_is_one_clear_line(example, tmp_path, edit, extra, pattern):
    path = _copy(example, tmp_path, edit, extra)
    with pytest.raises(cfg.ConfigError, match=pattern) as error:
        cfg.load_config(path)
    assert "\n" not in str(error.value)


@EXAMPLE_GROUP
def test_missing_errors_and_wrong_units_are_named(example, tmp_path, capsys):
    """A velocity map without V_ERR / V_IVAR, and one whose BUNIT is not a velocity, are
    refused through the command line (exit 2, one line); m/s maps are converted to km/s."""
    path = _copy(example, tmp_path)
    fits_path = tmp_path / "kinematics.fits"
    with fits.open(fits_path, mode="update") as hdus:
        hdus["V"].header["BUNIT"] = "m/s"
        hdus["V"].data = hdus["V"].data * 1e3
        hdus["V_ERR"].data = hdus["V_ERR"].data * 1e3
        hdus["V_ERR"].header["BUNIT"] = "m/s"
    data = cfg.read_kinematic_data(cfg.load_config(path).kinematics)
    with fits.open(example / "kinematics.fits") as hdus:
        np.testing.assert_allclose(data.maps.velocity, hdus["V"].data, rtol=1e-12)
    with fits.open(fits_path, mode="update") as hdus:
        hdus["V"].header["BUNIT"] = "erg/s"
    assert main(["fit", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "BUNIT = 'erg/s', not a velocity" in err[0]
    with fits.open(fits_path, mode="update") as hdus:
        hdus["V"].header["BUNIT"] = "km/s"
        hdus["V_ERR"].name = "V_NOISE"
    assert main(["fit", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has neither 'V_ERR' (1-sigma errors) nor 'V_IVAR'" in err and "error_suffix" in err


def test_rotation_curves_and_dispersions_come_from_the_classes():
    """The radial profiles a config can name are the RadialFunction classes of
    pmt.kinematics (and RadialProfile's class methods without their sky geometry)."""
    import inspect

    from pymc_tracers import kinematics

    expected = {
        name
        for name in kinematics.__all__
        if inspect.isclass(getattr(kinematics, name))
        and issubclass(getattr(kinematics, name), kinematics.RadialFunction)
        and getattr(kinematics, name)
        not in (kinematics.RadialFunction, kinematics.RadialExpression)
    }
    radial = set(cfg.RADIAL_PROFILES)
    assert expected <= radial and "RadialProfile.spline" in radial
    assert cfg.RADIAL_PROFILES["ArctanCurve"] == {"v_max": "T", "r_t": "arcsec"}
    assert cfg.RADIAL_PROFILES["RadialProfile.spline"] == {"radii": "arcsec", "values": "T"}
    assert set(cfg.DISC_PARAMETERS) == {"x0", "y0", "phi", "inclination", "v_sys"}


@EXAMPLE_GROUP
def test_free_geometry_takes_the_full_path_and_ties_the_inclination(example, tmp_path):
    """A free kinematic PA and centre, a free light q with the inclination tied to it, a
    spline rotation curve and an exponential dispersion: the model builds on the full path
    with the free parameters and units the docs name."""
    text = {
        DISC_PA: 'phi = {distribution = "Normal", mu = 0.0, sigma = 1.0}\n#',
        'x0 = "light.x0"': 'x0 = {distribution = "Normal", mu = 0.0, sigma = 0.5}',
        "q = 0.6": 'q = {distribution = "Uniform", lower = 0.25, upper = 1.0}',
        'profile = "ArctanCurve"': 'profile = "RadialProfile.spline"\nradii = [0.0, 0.5, 1.0, 2.0]'
        '\nvalues = {distribution = "Normal", mu = 150, sigma = 50, shape = 4}\n#',
        'profile = "RadialConstant"': 'profile = "ExponentialDispersion"\nsigma0 = 10\nr_sigma = 1'
        '\nfloor = {distribution = "HalfNormal", sigma = 100}\n#',
    }
    path = _copy(example, tmp_path, text)
    text = path.read_text()
    for key in ("v_max = {", "r_t = {", "value = {"):
        text = text.replace(key, f"# {key}")
    path.write_text(text)
    run = cfg.prepare_galaxy(path)
    obs = run.info["observation"]
    assert obs.path == "pixel" and "free parameters" in obs.reason
    names = {rv.name for rv in run.model.free_RVs}
    assert names == {"light_q", "phi", "x0", "v_sys", "rotation_values", "dispersion_floor"}
    assert run.info["units"]["rotation_values"] == "km / s"
    assert run.info["units"]["phi"] == "rad"


@pytest.mark.slow
def test_example_through_the_command_line_with_nuts(tmp_path, capsys):
    """``init-example --kinematics`` then ``fit``: NUTS intervals cover the truth."""
    folder = tmp_path / "ex"
    assert main(["init-example", "--kinematics", str(folder)]) == 0
    assert main(["fit", str(folder / "config.toml"), "--quiet"]) == 0
    result = pmt.Result.load(folder / "results" / "posterior.nc")
    for name, truth in FREE_TRUTH.items():
        low, high = result.percentiles(name, (0.5, 99.5))
        assert low <= truth <= high, (name, low, truth, high)


def _sample_of_two(folder: Path):
    """Two discs (v_max 150 and 220 km/s) with 3 km/s noise and a catalogue of them."""
    rows = ["name,config,log_mass"]
    for i, v_max in enumerate((150.0, 220.0)):
        truth = {**SMALL, "v_max": v_max, "velocity_error": 3.0, "dispersion_error": 3.0}
        config = cfg.write_kinematic_example(folder / f"k{i}", truth=truth, seed=i)
        text = config.read_text()
        for old, new in (("draws = 500", "draws = 200"), ("tune = 500", "tune = 200")):
            text = text.replace(old, new)
        config.write_text(text.replace("chains = 2", "chains = 1"))
        rows.append(f"k{i},k{i}/config.toml,{10 + i}")
    (folder / "catalogue.csv").write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize(
    "runner",
    [
        ["--scheduler", "serial"],
        pytest.param(
            ["--no-processes", "--workers", "1", "--threads-per-worker", "2"],
            marks=pytest.mark.slow,
            id="dask",
        ),
    ],
    ids=["serial", "dask"],
)
def test_fit_sample_fits_two_discs_through_the_single_galaxy_pipeline(tmp_path, runner):
    """``fit-sample`` over two discs (serially in this process; on a Dask LocalCluster as a
    slow test): each galaxy's folder holds the kinematic outputs, the second galaxy reuses
    the first's compiled sampler with its own maps, and each posterior covers its own v_max."""
    if "--scheduler" not in runner:
        pytest.importorskip("distributed")
    _sample_of_two(tmp_path)
    out = tmp_path / "out"
    argv = ["fit-sample", str(tmp_path / "catalogue.csv"), "--output", str(out)]
    assert main([*argv, *runner, "--population", "none", "--quiet"]) in (0, 3)
    compiled = []
    for i, v_max in enumerate((150.0, 220.0)):
        folder = out / "galaxies" / f"k{i}"
        assert (folder / "maps_velocity.fits").is_file()
        compiled.append(json.loads((folder / "done.json").read_text())["compiled"])
        result = pmt.Result.load(folder / "posterior.nc")
        low, high = result.percentiles("rotation_v_max", (0.5, 99.5))
        assert low <= v_max <= high, (i, low, v_max, high)
    assert sorted(compiled) == ["compiled", "reused"]


def test_kinematic_keys_and_profiles_are_documented():
    """Every key of ``[kinematics]`` and ``[kinematics.disc]``, every radial profile and its
    parameters, and every key the kinematic example sets is in docs/config.md's section."""
    import re

    from pymc_tracers.config.kinematics import DISC_EXTRA_KEYS, KINEMATICS_KEYS

    page = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    section = page.split("### `[kinematics]`", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\|\s*`([A-Za-z_.0-9]+)`", section, flags=re.MULTILINE))
    rows |= set(re.findall(r"^\|\s*`([a-z_0-9]+)`, `([a-z_0-9]+)`", section, flags=re.MULTILINE)[0])
    documented = rows | {"y0"}
    missing = set(KINEMATICS_KEYS) | set(cfg.DISC_PARAMETERS) | set(DISC_EXTRA_KEYS)
    assert not sorted(missing - documented)
    for profile, parameters in cfg.RADIAL_PROFILES.items():
        row = re.search(rf"^\|\s*`{re.escape(profile)}`\s*\|(.*)$", section, flags=re.MULTILINE)
        assert row, f"radial profile {profile} has no row"
        assert set(parameters) <= set(re.findall(r"`([a-z_0-9]+)`", row.group(1))), profile
    for line in cfg.KINEMATIC_EXAMPLE_CONFIG.splitlines():
        key = re.match(r"^([a-z_0-9]+)\s*=", line.split("#", 1)[0].strip())
        if key:
            assert f"`{key.group(1)}`" in page, f"example key {key.group(1)} undocumented"


@EXAMPLE_GROUP
def test_the_survey_reads_interim_priors_from_kinematic_tables(example):
    """fit-sample's population relation (importance reweighting) finds a kinematic
    parameter's prior in the raw [kinematics] tables, by its variable name."""
    import tomllib

    from pymc_tracers.survey import interim_prior

    raw = tomllib.loads((example / "config.toml").read_text())
    prior = interim_prior(raw, "rotation_v_max")
    assert prior.distribution == "HalfNormal" and prior.parameters == {"sigma": 400}
    assert interim_prior(raw, "dispersion_value").parameters == {"sigma": 100}
    with pytest.raises(ValueError, match="light_q has no prior table"):
        interim_prior(raw, "light_q")
