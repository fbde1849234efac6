"""``pymc-tracers fit CONFIG.toml`` and ``init-example``: end to end through the command line,
written files read back, and one clear line for every bad configuration."""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import pymc_tracers as pmt
from pymc_tracers import config as cfg
from pymc_tracers.cli import main
from pymc_tracers.config import run as run_module

TRUTH = cfg.EXAMPLE_TRUTH


def set_options(path, **replacements):
    """Edit ``key = value`` lines of a config file (first match of each key)."""
    lines = Path(path).read_text().splitlines()
    for key, value in replacements.items():
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        else:
            raise KeyError(key)
    Path(path).write_text("\n".join(lines) + "\n")


def check_outputs(folder, galaxy_fits, *, name="OH"):
    """Recovered parameters inside 95% intervals, WCS and posterior read back identical."""
    out = Path(folder)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "maps.fits",
            "posterior.nc",
            "summary.ecsv",
            "report_maps.png",
            "report_corner.png",
            "config.toml",
        ]
    )
    result = pmt.Result.load(out / "posterior.nc")
    for param, truth in (("disc_central", TRUTH["central"]), ("disc_gradient", TRUTH["gradient"])):
        lo, hi = result.percentiles(param, (2.5, 97.5))
        assert lo <= truth <= hi, (param, lo, hi, truth)
    # the summary table was written from the in-memory posterior: the file has the same numbers
    table = Table.read(out / "summary.ecsv")
    rows = {r["parameter"]: r for r in table}
    for param in ("disc_central", "disc_gradient"):
        draws = result.idata.posterior[param].values
        np.testing.assert_allclose(rows[param]["mean"], draws.mean(), atol=1e-3)
        np.testing.assert_allclose(rows[param]["sd"], draws.std(ddof=1), rtol=1e-2, atol=1e-3)
    assert rows["disc_central"]["unit"] == "dex"
    assert rows["disc_gradient"]["unit"] == "dex / arcsec"
    # maps carry the input WCS
    with fits.open(galaxy_fits) as inp, fits.open(out / "maps.fits") as maps:
        w_in = WCS(inp[name].header)
        for ext in ("MODEL", "DATA", "RESIDUAL", "NORM_RESIDUAL"):
            w_out = WCS(maps[ext].header)
            ny, nx = maps[ext].data.shape
            j, i = np.meshgrid(np.arange(nx), np.arange(ny))
            a = w_in.pixel_to_world(j.ravel(), i.ravel())
            b = w_out.pixel_to_world(j.ravel(), i.ravel())
            assert a.separation(b).max().to_value("arcsec") < 1e-6
        data = np.asarray(inp[name].data, float)
        np.testing.assert_array_equal(np.isfinite(maps["DATA"].data), np.isfinite(data))
        used = np.isfinite(data)
        np.testing.assert_allclose(maps["DATA"].data[used], data[used])
        assert maps["MODEL"].header["BUNIT"] == "dex"
        norm = maps["NORM_RESIDUAL"].data[used]
        assert 0.7 < np.nanstd(norm) < 1.3  # a good fit: normalised residuals ~ N(0, 1)
    return result


def test_init_example_writes_a_config_that_builds(tmp_path, capsys):
    """Fast: the example's files read back (rotated WCS, units), its model builds on the
    radial path, and the galaxy sits where the config says on the sky."""
    folder = tmp_path / "example"
    assert main(["init-example", str(folder), "--rotation", "-120"]) == 0
    assert "next: pymc-tracers fit" in capsys.readouterr().out
    assert main(["init-example", str(folder)]) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    config = cfg.load_config(folder / "config.toml")
    data = cfg.read_data(config)
    assert data.shape == TRUTH["shape"] and str(data.units["tracer"]) == "dex"
    # north is rotated clockwise by -120 deg from +y: at 90 + 120 = 210 deg from +x
    assert abs((np.degrees(data.frame.north_angle) - 210.0 + 180) % 360 - 180) < 0.01
    model, info = cfg.build_model(config, data, cfg.make_psf(config))
    assert info["observation"].path == "radial"
    assert sorted(rv.name for rv in model.free_RVs) == ["disc_central", "disc_gradient"]
    # at the truth the model reproduces the noiseless map: residuals are pure noise
    model_map = pmt.evaluate(
        info["observation"].tracer_map,
        disc_central=TRUTH["central"],
        disc_gradient=TRUTH["gradient"],
    )
    z = (data.tracer_map - model_map) / data.tracer_error
    used = data.tracer_mask
    assert abs(np.mean(z[used])) < 0.2 and 0.8 < np.std(z[used]) < 1.2


@pytest.mark.slow
def test_init_example_then_fit_through_the_command_line(tmp_path, capsys):
    folder = tmp_path / "example"
    assert main(["init-example", str(folder)]) == 0
    config = folder / "config.toml"
    assert "Exponential" in config.read_text()
    set_options(config, draws=600, tune=300)  # enough for the convergence check (exit 0)
    assert main(["fit", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "disc_gradient" in printed and "results in" in printed
    check_outputs(folder / "results", folder / "galaxy.fits")
    # WCS really is rotated (north 25 deg from +y)
    with fits.open(folder / "galaxy.fits") as hdus:
        cd = WCS(hdus["OH"].header).pixel_scale_matrix
    assert abs(np.degrees(np.arctan2(cd[1, 0], cd[1, 1])) - 25.0) < 1e-9

    # a rerun refuses the existing folder and leaves it alone
    before = (folder / "results" / "posterior.nc").stat().st_mtime_ns
    assert main(["fit", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists; pass --overwrite" in err[0]
    assert (folder / "results" / "posterior.nc").stat().st_mtime_ns == before


def test_killed_while_writing_leaves_the_old_results_and_no_partial_folder(tmp_path, monkeypatch):
    """--overwrite replaces only once the new folder is complete; an interrupted write leaves
    nothing that looks finished (cheap: the sampler is replaced by a stored result)."""
    folder = tmp_path / "ex"
    config = cfg.write_example(folder, truth={"shape": (15, 15)})
    out = folder / "results"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    stored = pmt.Result(_fake_idata(), {})
    monkeypatch.setattr(run_module, "fit", lambda model, **kw: _result_for(model, stored))

    def interrupted(folder_, *args, **kwargs):
        (folder_ / "maps.fits").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "write_galaxy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cfg.run_fit(config, overwrite=True, progress=None, progressbar=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.toml", "galaxy.fits", "psf.fits", "results"]
    )
    assert (out / "old.txt").read_text() == "previous run"


def _fake_idata():
    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(0)
    post = {
        "disc_central": (("chain", "draw"), 8.6 + 0.01 * rng.normal(size=(2, 20))),
        "disc_gradient": (("chain", "draw"), -0.15 + 0.01 * rng.normal(size=(2, 20))),
    }
    return az.InferenceData(posterior=xr.Dataset(post))


def _result_for(model, stored):
    return pmt.Result.from_model(stored.idata, model, map_draws=5)


# ----------------------------------------------------------------------------- bad inputs
@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    cfg.write_example(folder, truth={"shape": (15, 15)})
    return folder


def _variant(example, tmp_path, edit=None, replace=None):
    import shutil

    for name in ("galaxy.fits", "psf.fits", "config.toml"):
        shutil.copy(example / name, tmp_path / name)
    config = tmp_path / "config.toml"
    text = config.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    if edit:
        edit(tmp_path)
    return config


def _assert_fails_with(config, capsys, pattern):
    assert main(["fit", str(config), "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("pymc-tracers fit: error: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in captured.err
    leftovers = [
        p.name for p in config.parent.iterdir() if p.name.startswith((".results", "results"))
    ]
    assert leftovers == []
    return lines[0]


def _rewrite_fits(folder, change):
    with fits.open(folder / "galaxy.fits") as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    change(hdus)
    hdus.writeto(folder / "galaxy.fits", overwrite=True)


def _no_wcs(hdus):
    for h in hdus[1:]:
        for key in list(h.header):
            if re.match(r"(CTYPE|CRVAL|CRPIX|CUNIT|CDELT)\d|(CD|PC)\d_\d|WCSAXES", key):
                del h.header[key]


def _non_square(hdus):
    for h in hdus[1:]:
        h.header.update(PC1_1=1.0, PC1_2=0.0, PC2_1=0.0, PC2_2=1.0)
        h.header["CDELT1"] = h.header["CDELT1"] * 1.5


def _bad_errors(hdus):
    err = hdus["OH_ERR"].data
    err[7, 7] = 0.0
    err[7, 8] = -1.0
    err[8, 8] = np.inf


def _small_error_map(folder):
    with fits.open(folder / "galaxy.fits") as hdus:
        fits.PrimaryHDU(hdus["OH_ERR"].data[:-2]).writeto(folder / "err.fits")


BAD = [
    (
        {'profile = "Exponential"': 'profile = "Exponentail"'},
        None,
        r"profile = 'Exponentail' \(did you mean 'Exponential'\?\)",
    ),
    ({"r_eff = ": "r_ef = "}, None, r"unknown parameter 'r_ef' .*did you mean 'r_eff'"),
    ({"gradient = {": "gradeint = {"}, None, r"unknown parameter 'gradeint'.*'gradient'"),
    (
        {'distribution = "Normal", mu = 8.5': 'distribution = "Nromal", mu = 8.5'},
        None,
        r"not a valid prior \(did you mean 'Normal'\?\)",
    ),
    (
        {'{distribution = "Normal", mu = 8.5, sigma = 0.5}': "{mu = 8.5, sigma = 0.5}"},
        None,
        r"is not a prior: give distribution",
    ),
    ({"sigma = 0.5}": "sgima = 0.5}"}, None, r"central.*not a valid prior.*sgima"),
    ({"draws = 300": "draw = 300"}, None, r"unknown key 'draw' in \[sampler\].*'draws'"),
    (
        {'file = "galaxy.fits"': 'file = "galaxy_missing.fits"'},
        None,
        r"galaxy_missing.fits' does not exist",
    ),
    ({'file = "psf.fits"': 'file = "nopsf.fits"'}, None, r"\[psf\] file.*does not exist"),
    (
        {'tracer_error = "OH_ERR"': 'tracer_error = ["err.fits", 0]'},
        _small_error_map,
        r"different shapes",
    ),
    ({}, lambda f: _rewrite_fits(f, _no_wcs), r"no celestial WCS.*pixel_scale"),
    ({}, lambda f: _rewrite_fits(f, _non_square), r"pixels are not square"),
    ({}, lambda f: _rewrite_fits(f, _bad_errors), r"OH_ERR.*errors must be finite and > 0"),
    ({'tracer = "OH"': 'tracer = "O_H"'}, None, r"O_H"),
    ({'tracer_scale = "log"': 'tracer_scale = "logg"'}, None, r"did you mean 'log'"),
    ({'type = "file"': 'type = "gausian"'}, None, r"did you mean 'gaussian'"),
    (  # a key the profile does not take is named (outside_range went with the log series)
        {"gradient = {": 'outside_range = "clip"\ngradient = {'},
        None,
        r"outside_range",
    ),
    # user finding 7: the message names the prior and its bad parameter, not gradient_range
    (
        {"mu = 0.0, sigma = 0.2}": "mu = 0.0, sigma = -0.2}"},
        None,
        r"^pymc-tracers fit: error: \[components\[0\]\.tracer\] gradient: the Normal prior "
        r"has sigma = -0\.2; sigma must be > 0$",
    ),
    # ... and a bad value names the component (index and name) and the table
    (
        {"q = 0.7  ": "q = 1.7  "},
        None,
        r"\[components\[0\] \(disc\)\.light\] Exponential: q must be <= 1\.0",
    ),
    (
        {'profile = "LinearGradient"': 'profile = "Radial"'},
        None,
        r"tracer profiles are .*Azimuthal.*GPResidual",
    ),
]


@pytest.mark.parametrize("replace,edit,pattern", BAD)
def test_bad_config_is_one_clear_line(example, tmp_path, capsys, replace, edit, pattern):
    config = _variant(example, tmp_path, edit=edit, replace=replace)
    _assert_fails_with(config, capsys, pattern)


def test_missing_config_and_invalid_toml(tmp_path, capsys):
    _assert_fails_with(tmp_path / "none.toml", capsys, r"none.toml' does not exist")
    (tmp_path / "c.toml").write_text("[data\nfile = 1")
    _assert_fails_with(tmp_path / "c.toml", capsys, r"not valid TOML")


def test_fit_help_lists_options(capsys):
    for command in ("fit", "init-example"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "--overwrite" in out


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_subprocess_fit_with_mirrored_rotated_wcs(tmp_path):
    """The installed entry point, a WCS rotated by -120 deg, and --overwrite."""
    folder = tmp_path / "ex"
    run = [sys.executable, "-m", "pymc_tracers.cli"]
    done = subprocess.run(
        [*run, "init-example", str(folder), "--rotation", "-120", "--seed", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "next: pymc-tracers fit" in done.stdout
    config = folder / "config.toml"
    set_options(config, draws=300, tune=300)
    (folder / "results").mkdir()
    done = subprocess.run(
        [*run, "fit", str(config), "--overwrite"], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for step in ("reading data", "building the model", "compiling and sampling", "writing"):
        assert step in done.stdout
    check_outputs(folder / "results", folder / "galaxy.fits")


@pytest.mark.slow
def test_binned_example_through_the_command_line(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from vorbin.voronoi_2d_binning import voronoi_2d_binning
    shape = TRUTH["shape"]
    y, x = np.indices(shape)
    r = np.hypot(x - 15, y - 15)
    signal = np.exp(-r / 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        number, *_ = voronoi_2d_binning(
            x.ravel() * 1.0,
            y.ravel() * 1.0,
            signal.ravel(),
            0.05 * np.sqrt(signal.ravel()),
            25,
            plot=False,
            quiet=True,
        )
    bins = number.reshape(shape)
    folder = tmp_path / "binned"
    config = cfg.write_example(folder, bin_map=bins, seed=2)
    assert 'bins = "BINID"' in config.read_text()
    set_options(config, draws=300, tune=300)
    assert main(["fit", str(config), "--quiet"]) == 0
    result = check_outputs(folder / "results", folder / "galaxy.fits")
    assert result.config["likelihoods"]["OH"]["n_used"] > 0


def test_auto_priors_from_the_light_image(tmp_path):
    """photutils' estimates land near the simulated light profile (rotated WCS), and "auto"
    light parameters become priors centred on them (printed and stored)."""
    config_path = cfg.write_example(tmp_path, rotation_deg=-70.0)
    text = config_path.read_text()
    for key in ("r_eff", "q"):
        text = re.sub(rf"^{key} = .*$", f'{key} = "auto"', text, count=1, flags=re.M)
    config_path.write_text(text)
    config = cfg.load_config(config_path)
    data = cfg.read_data(config)
    est = cfg.light_estimates(data)
    # truth in the grid frame: position and angle through the WCS
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(*map(float, re.search(r'center = "(\S+) (\S+)"', text).groups()), unit="deg")
    x0, y0 = data.to_grid(centre)
    phi = data.frame.phi_from_pa(TRUTH["pa"], at=centre)
    assert abs(est["x0"] - x0) < 0.05 and abs(est["y0"] - y0) < 0.05
    assert abs(np.sin(est["phi"] - phi)) < 0.1  # an ellipse's angle modulo pi
    assert abs(est["q"] - TRUTH["q"]) < 0.15  # the PSF rounds the image a little
    assert TRUTH["r_eff"] < est["r_eff"] < 1.4 * TRUTH["r_eff"]  # PSF-broadened
    messages = []
    model, info = cfg.build_model(config, data, cfg.make_psf(config))
    assert sorted(info["auto"]) == ["disc_light_q", "disc_light_r_eff"]
    assert info["auto"]["disc_light_r_eff"]["prior"]["dist"] == "LogNormal"
    assert {rv.name for rv in model.free_RVs} >= {"disc_light_q", "disc_light_r_eff"}
    del messages


def test_auto_needs_a_light_image_and_light_parameters(example, tmp_path, capsys):
    config = _variant(example, tmp_path, replace={"central = {": 'central = "auto" #'})
    _assert_fails_with(config, capsys, r"auto priors exist for light parameters")
    config = _variant(
        example,
        tmp_path,
        replace={'image = "HALPHA"': "# no image", "r_eff = ": 'r_eff = "auto" #'},
    )
    _assert_fails_with(config, capsys, r'"auto" priors need a light image')


@pytest.mark.slow
def test_auto_priors_and_image_fit_through_the_command_line(tmp_path, capsys):
    """r_eff and q from "auto" priors, fitted jointly to the light image and the tracer map."""
    config = cfg.write_example(tmp_path / "auto", seed=4)
    text = config.read_text()
    for key in ("r_eff", "q"):
        text = re.sub(rf"^{key} = .*$", f'{key} = "auto"', text, count=1, flags=re.M)
    text = text.replace('name = "OH"', 'name = "OH"\nfit_image = true')
    config.write_text(text)
    set_options(config, draws=300, tune=300)
    assert main(["fit", str(config)]) == 0
    assert "auto prior disc_light_r_eff: estimate" in capsys.readouterr().out
    result = check_outputs(config.parent / "results", config.parent / "galaxy.fits")
    for param, truth in (("disc_light_r_eff", TRUTH["r_eff"]), ("disc_light_q", TRUTH["q"])):
        lo, hi = result.percentiles(param, (2.5, 97.5))
        assert lo <= truth <= hi, (param, lo, hi)
    assert "disc_light_r_eff" in result.config["auto_priors"]


# ----------------------------------------------------------------------------- user findings
def _posterior(draws, chains=2, seed=0, spread=0.01):
    """A posterior of the example's free parameters: independent draws (converged) when
    ``draws`` is large, too few for the ESS threshold when small."""
    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(seed)
    post = {
        "disc_central": (("chain", "draw"), 8.6 + spread * rng.normal(size=(chains, draws))),
        "disc_gradient": (("chain", "draw"), -0.15 + spread * rng.normal(size=(chains, draws))),
    }
    return az.InferenceData(posterior=xr.Dataset(post))


@pytest.fixture
def fake_fit(monkeypatch):
    """Replace the sampler of ``pymc-tracers fit`` by stored draws: ``fake_fit(draws=...)``."""

    def install(draws):
        stored = pmt.Result(_posterior(draws), {})
        monkeypatch.setattr(run_module, "fit", lambda model, **kw: _result_for(model, stored))

    return install


def test_an_unconverged_fit_says_so_records_it_and_exits_3(tmp_path, fake_fit, capsys):
    """User finding 1: the convergence check runs, is recorded in the result files, and the
    exit status tells a script that the numbers are unreliable."""
    config = cfg.write_example(tmp_path / "ex", truth={"shape": (15, 15)})
    fake_fit(draws=20)  # 40 draws: bulk ESS far below 400
    assert main(["fit", str(config), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "warning: the fit did not converge: " in err and "bulk ESS down to" in err
    assert "exit status 3" in err
    out = tmp_path / "ex" / "results"
    meta = Table.read(out / "summary.ecsv").meta["convergence"]
    assert meta["converged"] is False and meta["ess_bulk_min"] < 400
    assert pmt.Result.load(out / "posterior.nc").convergence["converged"] is False
    # converged draws: exit 0, recorded as converged
    fake_fit(draws=1500)
    assert main(["fit", str(config), "--quiet", "--overwrite"]) == 0
    assert Table.read(out / "summary.ecsv").meta["convergence"]["converged"] is True


def test_result_files_are_readable_by_collaborators(tmp_path, fake_fit):
    """User finding 5: under umask 022 every file is 0644 and the folder 0755."""
    config = cfg.write_example(tmp_path / "ex", truth={"shape": (15, 15)})
    fake_fit(draws=30)
    previous = os.umask(0o022)
    try:
        out = cfg.run_fit(config, progress=None, progressbar=False)["output"]
    finally:
        os.umask(previous)
    assert os.stat(out).st_mode & 0o777 == 0o755
    modes = {p.name: os.stat(p).st_mode & 0o777 for p in out.iterdir()}
    assert set(modes) >= {"maps.fits", "posterior.nc", "summary.ecsv", "report_maps.png"}
    assert set(modes.values()) == {0o644}, modes


def test_tracer_scale_defaults_from_the_unit(tmp_path):
    """User finding 6: log for a tracer in dex; any other unit must say which."""
    folder = tmp_path / "ex"
    config = cfg.write_example(folder, truth={"shape": (15, 15)})
    text = config.read_text().replace('tracer_scale = "log"', "", 1)
    config.write_text(text)
    loaded = cfg.load_config(config)
    data = cfg.read_data(loaded)
    _, info = cfg.build_model(loaded, data, cfg.make_psf(loaded))
    assert info["tracer_scale"] == "log"
    with fits.open(folder / "galaxy.fits", mode="update") as hdus:
        hdus["OH"].header["BUNIT"] = "km/s"
        hdus["OH_ERR"].header["BUNIT"] = "km/s"
    config.write_text(text.replace('tracer = "OH"', 'tracer = "OH"\ntracer_name = "velocity"'))
    loaded = cfg.load_config(config)
    data = cfg.read_data(loaded)
    with pytest.raises(cfg.ConfigError, match=r"unit 'km / s', not dex.*tracer_scale = \"linear\""):
        cfg.build_model(loaded, data, cfg.make_psf(loaded))
    loaded.model["tracer_scale"] = "linear"
    assert cfg.build_model(loaded, data, cfg.make_psf(loaded))[1]["tracer_scale"] == "linear"


def test_init_example_writes_its_truth_into_the_files(tmp_path):
    """User finding 13: the truth is in the FITS headers and in the configuration's comments."""
    config = cfg.write_example(tmp_path / "ex", rotation_deg=30.0, seed=4)
    with fits.open(tmp_path / "ex" / "galaxy.fits") as hdus:
        header = hdus[0].header
        assert header["TRUE_Z0"] == TRUTH["central"] and header["TRUE_GRD"] == TRUTH["gradient"]
        assert header["TRUE_REF"] == TRUTH["r_eff"] and header["TRUE_PA"] == TRUTH["pa"]
        assert header["TRUE_ROT"] == 30.0 and header["SEED"] == 4
        assert "dex/arcsec" in header.comments["TRUE_GRD"]
    with fits.open(tmp_path / "ex" / "psf.fits") as hdus:
        assert hdus[0].header["TRUEFWHM"] == TRUTH["psf_fwhm"]
    text = config.read_text()
    assert f"gradient {TRUTH['gradient']} dex/arcsec" in text
    assert f"# dex / arcsec; truth {TRUTH['gradient']}" in text
    assert f"# dex; truth {TRUTH['central']}" in text


def test_every_profile_class_is_available_from_toml():
    """The config's profiles are the profile classes: every one that TOML can express, with
    its constructor's parameters (no second table to keep in step)."""
    import inspect

    from pymc_tracers import profiles

    for kind, table, base in (
        ("light", cfg.LIGHT_PROFILES, profiles.LightProfile),
        ("tracer", cfg.TRACER_PROFILES, profiles.TracerProfile),
    ):
        for name in profiles.__all__:
            cls = getattr(profiles, name)
            if not (inspect.isclass(cls) and issubclass(cls, base)) or cls is base:
                continue
            parameters = list(inspect.signature(cls).parameters)
            if "function" in parameters:  # a Python callable: not expressible in TOML
                assert name not in table
                continue
            assert list(table[name]) == parameters, name
    assert {"Azimuthal", "Azimuthal.from_components", "GPResidual"} <= set(cfg.TRACER_PROFILES)
    if hasattr(profiles, "RadialProfile"):
        assert "RadialProfile.spline" in cfg.TRACER_PROFILES
    assert cfg.TRACER_PROFILES["LinearGradient"]["gradient"] == "T/arcsec"
    assert cfg.LIGHT_PROFILES["Gaussian"]["sigma"] == "arcsec"


def test_azimuthal_and_gp_profiles_build_from_toml(tmp_path):
    """A nested radial profile table, and a vector prior (``shape``) for a GP's coefficients."""
    folder = tmp_path / "ex"
    config = cfg.write_example(folder, truth={"shape": (15, 15)})
    text = config.read_text()
    tracer = text[text.index("[components.tracer]") : text.index("[sampler]")]
    azimuthal = """[components.tracer]
profile = "Azimuthal.from_components"
radial = {profile = "LinearGradient", central = {distribution = "Normal", mu = 8.5, sigma = 0.5}, gradient = {distribution = "Normal", mu = 0, sigma = 0.2}, x0 = "light.x0", y0 = "light.y0", q = "light.q", phi = "light.phi"}
x0 = "light.x0"
y0 = "light.y0"
q = "light.q"
phi = "light.phi"
cos1 = {distribution = "Normal", mu = 0, sigma = 0.05}
sin1 = {distribution = "Normal", mu = 0, sigma = 0.05}

"""  # noqa: E501
    config.write_text(text.replace(tracer, azimuthal))
    loaded = cfg.load_config(config)
    model, info = cfg.build_model(loaded, cfg.read_data(loaded), cfg.make_psf(loaded))
    names = sorted(rv.name for rv in model.free_RVs)
    assert names == ["disc_cos1", "disc_radial_central", "disc_radial_gradient", "disc_sin1"]
    assert info["units"]["disc_radial_gradient"] == "dex / arcsec"
    assert info["units"]["disc_cos1"] == "dex"
    gp = """[components.tracer]
profile = "GPResidual"
coefficients = {distribution = "Normal", mu = 0, sigma = 1, shape = 9}
amplitude = {distribution = "HalfNormal", sigma = 0.1}
length_scale = 0.5
L = [1.5, 1.5]
n_basis = [3, 3]

"""
    config.write_text(text.replace(tracer, gp))
    loaded = cfg.load_config(config)
    model, info = cfg.build_model(loaded, cfg.read_data(loaded), cfg.make_psf(loaded))
    point = model.initial_point()
    assert point["disc_coefficients"].shape == (9,)
    assert list(model.coords["disc_coefficients_index"]) == list(range(9))
    config.write_text(text.replace(tracer, gp.replace("shape = 9", "shape = 0")))
    with pytest.raises(cfg.ConfigError, match=r"coefficients: shape must be an integer >= 1"):
        cfg.load_config(config)


def test_gradients_per_effective_radius_and_per_kpc(tmp_path, fake_fit):
    """User finding 10: dex/R_e and (with a redshift) dex/kpc beside dex/arcsec."""
    from pymc_tracers.cosmology import arcsec_per_kpc

    config = cfg.write_example(tmp_path / "ex", truth={"shape": (15, 15)})
    text = config.read_text().replace('name = "OH" ', 'name = "OH"\nredshift = 0.05 ', 1)
    config.write_text(text)
    assert cfg.load_config(config).model["redshift"] == 0.05
    fake_fit(draws=30)
    out = cfg.run_fit(config, progress=None, progressbar=False)
    post = out["result"].idata.posterior
    gradient = post["disc_gradient"].values
    np.testing.assert_allclose(post["disc_gradient_per_re"].values, gradient * TRUTH["r_eff"])
    np.testing.assert_allclose(
        post["disc_gradient_per_kpc"].values, gradient * float(arcsec_per_kpc(0.05))
    )
    rows = {r["parameter"]: r for r in Table.read(out["output"] / "summary.ecsv")}
    assert rows["disc_gradient_per_re"]["unit"] == "dex"
    assert rows["disc_gradient_per_kpc"]["unit"] == "dex / kpc"
    assert out["parameters"]["disc_gradient_per_kpc"][2] == "dex / kpc"
    config.write_text(text.replace("redshift = 0.05", "redshift = -1"))
    with pytest.raises(cfg.ConfigError, match=r"\[model\] redshift must be a number > 0"):
        cfg.load_config(config)
