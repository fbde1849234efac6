"""pymc-tracers fit-sample: catalogue, fits with resume, failures, population relation.

The module fixture simulates 6 small galaxies (11x11 pixels of 0.1 arcsec) whose gradients
follow a known gradient-mass relation in dex/kpc, writes them as FITS files + TOML configs and a
catalogue with one extra row pointing at a missing config, then runs the real command line
twice in this process (``--scheduler serial``): the first run is stopped after 3 galaxies (as
Ctrl-C would: the driver is monkeypatched to raise KeyboardInterrupt), the second resumes,
reports the missing galaxy and infers the relation by importance reweighting. The same two runs
on a Dask LocalCluster are a slow test.
"""

import contextlib
import io as stdio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
from astropy.io import fits
from astropy.table import Table

from pymc_tracers import atomic, config, survey
from pymc_tracers.cli import build_parser, main
from pymc_tracers.cosmology import arcsec_per_kpc
from pymc_tracers.survey import dask_driver

#: The simulated relation: gradient [dex/kpc] = intercept + slope (log M* - pivot) + scatter eps
TRUTH = {"intercept": -0.02, "slope": -0.015, "scatter": 0.003, "pivot": 10.0}
N_GALAXIES = 6


def _simulate(folder, *, n=N_GALAXIES, seed=3, draws=150, tune=150):
    """Galaxy g0 from ``config.write_example`` (11x11 pixels); the others copy its light, PSF and
    WCS with metallicity maps from the same forward model at their own gradients."""
    import pytensor

    rng = np.random.default_rng(seed)
    log_mass = np.linspace(9.2, 10.8, n) + rng.normal(0, 0.05, n)
    redshift = rng.uniform(0.6, 1.4, n)
    gradient_kpc = (
        TRUTH["intercept"]
        + TRUTH["slope"] * (log_mass - TRUTH["pivot"])
        + TRUTH["scatter"] * rng.normal(size=n)
    )
    gradient = gradient_kpc / arcsec_per_kpc(redshift)  # dex/arcsec
    first = config.write_example(folder / "g0", truth={"shape": (11, 11)}, seed=seed)
    text = first.read_text()
    for old, new in [("draws = 300", f"draws = {draws}"), ("tune = 300", f"tune = {tune}")]:
        text = text.replace(old, new)
    first.write_text(text.replace("chains = 2", "chains = 1"))
    cfg = config.load_config(first)
    model, info = config.build_model(cfg, config.read_data(cfg), config.make_psf(cfg))
    tracer = pytensor.function(
        [model["disc_central"], model["disc_gradient"]], info["observation"].tracer_map
    )
    with fits.open(folder / "g0" / "galaxy.fits") as hdus:
        sigma = np.asarray(hdus["OH_ERR"].data, dtype=float)
    rows = ["name,config,log_mass,redshift"]
    for i in range(n):
        name = f"g{i}"
        if i:
            shutil.copytree(folder / "g0", folder / name)
        truth_map = tracer(8.6, gradient[i])
        noisy = np.where(
            np.isfinite(sigma), truth_map + sigma * rng.normal(size=sigma.shape), np.nan
        )
        with fits.open(folder / name / "galaxy.fits", mode="update") as hdus:
            hdus["OH"].data = noisy
        rows.append(f"{name},{name}/config.toml,{log_mass[i]:.5f},{redshift[i]:.5f}")
    rows.append("lost,nowhere/config.toml,10.0,1.0")
    (folder / "catalogue.csv").write_text("\n".join(rows) + "\n")
    return {"log_mass": log_mass, "redshift": redshift, "gradient_kpc": gradient_kpc}


def _cli(argv, env=None):
    """Run ``pymc-tracers`` in this process; returns (exit code, stdout, stderr)."""
    out, err = stdio.StringIO(), stdio.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def _hidden(galaxies):
    return sorted(p.name for p in galaxies.iterdir() if p.name.startswith("."))


def _interrupt_after(n):
    """A ``dask_driver._record`` that raises KeyboardInterrupt (as Ctrl-C would) once ``n``
    galaxies have been written in this run."""
    record = dask_driver._record

    def interrupting(report, out):
        record(report, out)
        if len(report.fitted) >= n:
            raise KeyboardInterrupt

    return interrupting


def _run_sample(folder, runner):
    """The two command-line runs of the fixtures, with ``runner`` options (the scheduler)."""
    truth = _simulate(folder)
    output = folder / "out"
    catalogue = str(folder / "catalogue.csv")
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dask_driver, "_record", _interrupt_after(3))
        first = _cli(
            ["fit-sample", catalogue, "--output", str(output), "--population", "none", *runner]
        )
    first_seconds = time.perf_counter() - started
    after_first = {
        name: (output / "galaxies" / name / survey.DONE_FILE).stat().st_mtime_ns
        for name in survey.finished_galaxies(output)
    }
    # what a run killed while writing leaves behind: a temporary folder that must not count
    stale = output / "galaxies" / f".g5.crashed{atomic.PARTIAL_SUFFIX}"
    stale.mkdir()
    (stale / "posterior.nc").write_text("half written")
    started = time.perf_counter()
    second = _cli(
        [
            "fit-sample",
            catalogue,
            "--output",
            str(output),
            "--per-kpc",
            "--population",
            "reweight",
            "--population-draws",
            "300",
            "--population-chains",
            "2",
            *runner,
        ]
    )
    second_seconds = time.perf_counter() - started
    return {
        "folder": folder,
        "output": output,
        "truth": truth,
        "first": first,
        "second": second,
        "after_first": after_first,
        "seconds": (first_seconds, second_seconds),
    }


#: The tests of the ``sample`` fixture run on one xdist worker (``--dist loadgroup`` in
#: pyproject.toml): a module fixture is built once per worker, and this one takes ~25 s.
SAMPLE_GROUP = pytest.mark.xdist_group("survey_sample")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The two runs in this process, one galaxy after another (no Dask)."""
    return _run_sample(tmp_path_factory.mktemp("survey"), ["--scheduler", "serial", "--quiet"])


@pytest.fixture(scope="module")
def dask_sample(tmp_path_factory):
    """The two runs on a threaded Dask LocalCluster (slow tests only)."""
    pytest.importorskip("distributed")
    cluster = ["--no-processes", "--workers", "1", "--threads-per-worker", "2", "--quiet"]
    return _run_sample(tmp_path_factory.mktemp("dask_survey"), cluster)


@SAMPLE_GROUP
def test_an_interrupted_run_resumes_with_one_result_per_galaxy(sample):
    _check_resumed(sample)
    assert len(sample["after_first"]) == 3  # serial: nothing in flight when it stopped


@pytest.mark.slow
def test_the_dask_runs_resume_report_and_infer_as_the_serial_ones(dask_sample):
    """The fixture's two runs on a Dask LocalCluster: every check of the serial runs."""
    _check_resumed(dask_sample)
    assert 3 <= len(dask_sample["after_first"]) <= 5  # at most the 2 fits in flight on top
    test_a_missing_config_is_reported_and_the_others_fitted(dask_sample)
    test_compiled_models_are_shared_between_galaxies_of_one_structure(dask_sample)
    test_the_population_relation_covers_the_truth(dask_sample)


def _check_resumed(sample):
    output, galaxies = sample["output"], sample["output"] / "galaxies"
    code, _, err = sample["first"]
    assert code == 130, err
    assert "interrupted" in err and "run the same command again" in err
    names = [f"g{i}" for i in range(N_GALAXIES)]
    assert survey.finished_galaxies(output) == names
    for _ in range(100):  # a fit cancelled in the first run may still be finishing in a thread
        if not _hidden(galaxies):
            break
        time.sleep(0.2)
    assert _hidden(galaxies) == []
    assert sorted(p.name for p in galaxies.iterdir()) == names
    for name in names:
        marker = json.loads((galaxies / name / survey.DONE_FILE).read_text())
        assert marker["name"] == name
        assert {"maps.fits", "posterior.nc", "summary.ecsv", "config.toml"} <= {
            p.name for p in (galaxies / name).iterdir()
        }
    # the galaxies of the first run were skipped, not refitted
    for name, mtime in sample["after_first"].items():
        assert (galaxies / name / survey.DONE_FILE).stat().st_mtime_ns == mtime
    table = Table.read(output / "galaxies.ecsv")
    assert list(table["status"]) == ["done"] * N_GALAXIES + ["failed"]
    assert np.allclose(table["log_mass"][:N_GALAXIES], sample["truth"]["log_mass"], atol=1e-4)


@SAMPLE_GROUP
def test_a_missing_config_is_reported_and_the_others_fitted(sample):
    code, _, err = sample["second"]
    assert code == 1, err
    assert "lost failed: config file" in err and "does not exist" in err
    failures = Table.read(sample["output"] / "failures.ecsv")
    assert list(failures["name"]) == ["lost"]
    assert "nowhere/config.toml" in failures["error"][0]
    assert len(survey.finished_galaxies(sample["output"])) == N_GALAXIES


@SAMPLE_GROUP
def test_compiled_models_are_shared_between_galaxies_of_one_structure(sample):
    galaxies = sample["output"] / "galaxies"
    how = [
        json.loads((galaxies / f"g{i}" / survey.DONE_FILE).read_text())["compiled"]
        for i in range(N_GALAXIES)
    ]
    # one compilation (two when both threads start before either has finished compiling)
    assert how.count("compiled") <= 2 and how.count("reused") >= N_GALAXIES - 2, how


@SAMPLE_GROUP
def test_the_population_relation_covers_the_truth(sample):
    import arviz as az

    population = sample["output"] / "population"
    idata = az.from_netcdf(population / "relation.nc")
    attrs = json.loads(idata.attrs["pymc_tracers_relation"])
    assert attrs["method"] == "reweight" and attrs["unit"] == "dex / kpc"
    assert attrs["pivot"] == TRUTH["pivot"]
    for name in ("intercept", "slope", "scatter"):
        lo, hi = np.quantile(idata.posterior[name].values, [0.025, 0.975])
        assert lo < TRUTH[name] < hi, (name, lo, hi)
    table = Table.read(population / "relation_summary.ecsv")
    assert list(table["parameter"]) == ["intercept", "slope", "scatter"]
    assert table["unit"][0] == "dex / kpc"
    assert (population / "relation.png").stat().st_size > 1000
    assert attrs["importance_ess_min"] > survey.MIN_IMPORTANCE_ESS


@SAMPLE_GROUP
@pytest.mark.slow
def test_the_joint_model_agrees_with_the_reweighting(sample):
    """The joint hierarchical model (all maps refitted together) on the same galaxies."""
    catalogue = survey.read_catalogue(sample["folder"] / "catalogue.csv")
    joint = survey.infer_relation(
        sample["output"],
        catalogue,
        per_kpc=True,
        method="joint",
        draws=400,
        tune=400,
        chains=2,
        write=False,
        say=None,
    )
    reweighted = survey.infer_relation(
        sample["output"],
        catalogue,
        per_kpc=True,
        method="reweight",
        draws=400,
        tune=400,
        chains=2,
        write=False,
        say=None,
    )
    a, b = joint.summary(), reweighted.summary()
    for name in ("intercept", "slope"):
        lo, hi = np.quantile(joint.idata.posterior[name].values, [0.025, 0.975])
        assert lo < TRUTH[name] < hi
        width = np.hypot(a.loc[name, "sd"], b.loc[name, "sd"])
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < width, name


@SAMPLE_GROUP
@pytest.mark.slow
def test_a_killed_run_loses_nothing_and_overwrite_failed_refits(sample):
    """SIGKILL the whole command (no clean-up at all) after two galaxies, resume, then refit the
    galaxies whose stored fits failed the convergence check (one chain: all of them)."""
    import subprocess
    import sys

    output = sample["folder"] / "killed"
    catalogue = str(sample["folder"] / "catalogue.csv")
    cluster = ["--no-processes", "--workers", "1", "--threads-per-worker", "2", "--quiet"]
    argv = ["fit-sample", catalogue, "--output", str(output), "--population", "none", *cluster]
    process = subprocess.Popen(
        [sys.executable, "-m", "pymc_tracers.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while len(survey.finished_galaxies(output)) < 2 and time.time() < deadline:
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
    before = {
        name: (output / "galaxies" / name / survey.DONE_FILE).stat().st_mtime_ns
        for name in survey.finished_galaxies(output)
    }
    assert 2 <= len(before) < N_GALAXIES
    code, _, err = _cli(argv)
    assert code == 1, err
    names = [f"g{i}" for i in range(N_GALAXIES)]
    galaxies = output / "galaxies"
    assert sorted(p.name for p in galaxies.iterdir()) == names
    for name, mtime in before.items():
        assert (galaxies / name / survey.DONE_FILE).stat().st_mtime_ns == mtime
    code, _, err = _cli([*argv, "--overwrite-failed"])
    assert code == 1, err
    assert sorted(p.name for p in galaxies.iterdir()) == names
    for name, mtime in before.items():  # one chain: no R-hat, so not converged, so refitted
        assert (galaxies / name / survey.DONE_FILE).stat().st_mtime_ns != mtime


@SAMPLE_GROUP
@pytest.mark.slow
def test_a_killed_worker_process_loses_nothing(sample):
    """Two worker processes; one is SIGKILLed while the survey runs. Its galaxy goes back to
    the scheduler and is fitted again; every galaxy ends with exactly one result."""
    import signal
    import threading

    from distributed import Client, LocalCluster

    output = sample["folder"] / "worker_killed"
    catalogue = survey.read_catalogue(sample["folder"] / "catalogue.csv")
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            pids = list(client.run(os.getpid).values())

            def kill_one():
                deadline = time.time() + 400
                while len(survey.finished_galaxies(output)) < 1 and time.time() < deadline:
                    time.sleep(0.2)
                os.kill(pids[0], signal.SIGKILL)  # a worker process this test started
                killed.append(len(survey.finished_galaxies(output)))

            killer = threading.Thread(target=kill_one)
            killer.start()
            report = survey.fit_sample(
                catalogue, output, scheduler=client, progressbar=False, say=None
            )
            killer.join()
    assert killed and killed[0] < N_GALAXIES
    assert list(report.failed) == ["lost"]
    names = [f"g{i}" for i in range(N_GALAXIES)]
    assert survey.finished_galaxies(output) == names
    visible = sorted(p.name for p in (output / "galaxies").iterdir() if p.name[0] != ".")
    assert visible == names
    atomic.clean_leftovers(output / "galaxies")  # what the next run does first
    assert sorted(p.name for p in (output / "galaxies").iterdir()) == names


# ------------------------------------------------------------------------------ reweighting
def _gaussian_mock(n=8, k=20000, seed=1):
    """Gaussian per-galaxy likelihoods N(hat_n | g, e_n) under a Gaussian interim prior:
    the posterior draws, their log interim density and everything needed analytically."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    a, b, s = 0.3, -0.5, 0.2
    g = a + b * x + s * rng.normal(size=n)
    e = rng.uniform(0.05, 0.15, n)
    hat = g + e * rng.normal(size=n)
    m0, s0 = 0.0, 3.0
    tau2 = 1 / (1 / e**2 + 1 / s0**2)
    mu = tau2 * (hat / e**2 + m0 / s0**2)
    draws = mu[:, None] + np.sqrt(tau2)[:, None] * rng.normal(size=(n, k))
    log_interim = st.norm.logpdf(draws, m0, s0)
    return {"x": x, "e": e, "hat": hat, "m0": m0, "s0": s0, "draws": draws, "lp0": log_interim}


def _exact_log_likelihood(mock, a, b, s):
    """sum_n log N(hat_n | a + b x_n, sqrt(s^2 + e_n^2)) / N(hat_n | m0, sqrt(s0^2 + e_n^2))."""
    e, hat = mock["e"], mock["hat"]
    return np.sum(
        st.norm.logpdf(hat, a + b * mock["x"], np.hypot(s, e))
        - st.norm.logpdf(hat, mock["m0"], np.hypot(mock["s0"], e))
    )


def test_importance_likelihood_matches_the_analytic_marginal():
    import pytensor.tensor as pt

    mock = _gaussian_mock()
    for a, b, s in [(0.3, -0.5, 0.2), (0.0, 0.0, 0.5), (0.5, -1.0, 0.1), (0.2, -0.3, 0.3)]:
        mean = a + b * mock["x"]
        estimate = survey.importance_log_likelihood(mock["draws"], mock["lp0"], mean, s)
        assert estimate == pytest.approx(_exact_log_likelihood(mock, a, b, s), abs=0.05)
        symbolic = survey.importance_log_likelihood(
            mock["draws"], mock["lp0"], pt.as_tensor_variable(mean), pt.as_tensor_variable(s)
        )
        assert float(symbolic.eval()) == pytest.approx(estimate, rel=1e-8)
    with pytest.raises(ValueError, match="both be \\(N galaxies, K draws\\)"):
        survey.importance_log_likelihood(mock["draws"], mock["lp0"][:, :10], 0.0, 1.0)


def test_reweighted_relation_posterior_matches_a_grid_integration():
    """NUTS on the importance likelihood vs the exact posterior integrated on a grid."""
    mock = _gaussian_mock(k=2000)
    priors = {"intercept": (0.0, 1.0), "slope": (0.0, 2.0), "scatter": 0.5}
    idata, _ = survey.reweighted_relation(
        mock["draws"],
        mock["lp0"],
        mock["x"],
        pivot=0.0,
        interim=(0.0, 1.0),
        priors=priors,
        draws=600,
        tune=300,
        chains=2,
        seed=4,
    )
    a = np.linspace(-0.4, 1.0, 71)[:, None, None]
    b = np.linspace(-1.8, 0.8, 71)[None, :, None]
    s = np.linspace(1e-3, 1.2, 120)[None, None, :]
    x, e, hat = mock["x"], mock["e"], mock["hat"]
    var = s[..., None] ** 2 + e**2
    resid = hat - (a[..., None] + b[..., None] * x)
    log_post = np.sum(-0.5 * resid**2 / var - 0.5 * np.log(var), axis=-1)
    log_post += st.norm.logpdf(a, 0, 1) + st.norm.logpdf(b, 0, 2) + st.halfnorm.logpdf(s, 0, 0.5)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    exact = {"intercept": (w * a).sum(), "slope": (w * b).sum(), "scatter": (w * s).sum()}
    for name, value in exact.items():
        draws = idata.posterior[name].values
        error = draws.std() / np.sqrt(200)  # a conservative Monte-Carlo error (ESS >= 200)
        assert draws.mean() == pytest.approx(value, abs=4 * error + 0.01), name


def test_interim_prior_is_read_from_the_config_and_must_be_fixed():
    raw = {
        "components": [
            {
                "name": "disc",
                "light": {"profile": "Exponential", "r_eff": 1.0},
                "tracer": {
                    "profile": "LinearGradient",
                    "gradient": {"distribution": "Normal", "mu": 0.0, "sigma": 0.2},
                    "central": 8.5,
                },
            }
        ]
    }
    prior = survey.interim_prior(raw, "disc_gradient")
    values = np.array([-0.3, 0.0, 0.1])
    logp = survey.interim.InterimLogDensity()
    assert np.allclose(logp(prior, values), st.norm.logpdf(values, 0.0, 0.2))
    with pytest.raises(ValueError, match="disc_central has no prior table"):
        survey.interim_prior(raw, "disc_central")
    raw["components"][0]["tracer"]["gradient"]["sigma"] = {"distribution": "HalfNormal"}
    with pytest.raises(ValueError, match="hierarchical"):
        survey.interim_prior(raw, "disc_gradient")
    assert survey.resolve_parameter("gradient", ["disc_central", "disc_gradient"]) == (
        "disc_gradient"
    )
    with pytest.raises(ValueError, match="no fitted parameter 'slope'"):
        survey.resolve_parameter("slope", ["disc_central", "disc_gradient"])


# ------------------------------------------------------------------------------ catalogue
def _catalogue(tmp_path, text, name="cat.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("galaxy,config\na,a.toml\n", "has no 'name' column"),
        ("name,cfg\na,a.toml\n", "has no 'config' column"),
        ("name,config\na,a.toml\nb,b.toml\na,c.toml\n", "'a' appears in rows 1 and 3"),
        ("name,config\na,a.toml\nsub/b,b.toml\n", "row 2: name 'sub/b' cannot be a folder"),
        ("name,config\na,a.toml\n.b,b.toml\n", "row 2: name '.b' cannot be a folder"),
        ("name,config,log_mass\na,a.toml,10\nb,b.toml,nan\n", "row 2 \\(b\\): log_mass = nan"),
        ("name,config\na,a.toml\nb,\n", "row 2 \\(b\\): empty config"),
    ],
)
def test_bad_catalogues_name_the_row(tmp_path, text, message):
    with pytest.raises(survey.CatalogueError, match=message):
        survey.read_catalogue(_catalogue(tmp_path, text), covariates=("log_mass",))


def test_catalogue_paths_and_the_command_line_errors(tmp_path):
    path = _catalogue(tmp_path, "name,config,log_mass\na,sub/a.toml,10.5\nb,/abs/b.toml,9\n")
    catalogue = survey.read_catalogue(path, covariates=("log_mass",))
    assert catalogue.configs == [tmp_path / "sub" / "a.toml", Path("/abs/b.toml")]
    assert np.allclose(catalogue.covariate("log_mass"), [10.5, 9.0])
    with pytest.raises(survey.CatalogueError, match="unknown format '.txt'"):
        survey.read_catalogue(_catalogue(tmp_path, "name,config\n", "cat.txt"))
    bad = _catalogue(tmp_path, "name,config\na,a.toml\na,b.toml\n", "dup.csv")
    code, _, err = _cli(["fit-sample", str(bad), "--output", str(tmp_path / "out")])
    assert code == 2 and "'a' appears in rows 1 and 2" in err
    assert not (tmp_path / "out").exists()
    code, _, err = _cli(
        ["fit-sample", str(path), "--output", str(tmp_path / "o3"), "--covariate", "mass"]
    )
    assert code == 2 and "no column 'mass'" in err


# ------------------------------------------------------------------------------ atomic writes
def test_the_first_finished_attempt_wins_and_leftovers_are_cleaned(tmp_path):
    galaxies = tmp_path / "galaxies"
    galaxies.mkdir()
    attempts = []
    for text in ("first", "second"):
        folder = galaxies / f".g.{text}{atomic.PARTIAL_SUFFIX}"
        folder.mkdir()
        (folder / survey.DONE_FILE).write_text(text)
        attempts.append(folder)
    done = survey.worker.is_finished
    assert atomic.publish_folder(attempts[0], galaxies / "g", replace=False, is_complete=done) == (
        "written"
    )
    assert atomic.publish_folder(attempts[1], galaxies / "g", replace=False, is_complete=done) == (
        "duplicate"
    )
    assert (galaxies / "g" / survey.DONE_FILE).read_text() == "first"
    assert sorted(p.name for p in galaxies.iterdir()) == ["g"]
    # a replacement interrupted between its two renames: the old result is put back
    old = galaxies / f".h.x1{atomic.OLD_SUFFIX}"
    old.mkdir()
    (galaxies / "g").rename(old / "h")
    (galaxies / f".k.x2{atomic.PARTIAL_SUFFIX}").mkdir()
    removed = atomic.clean_leftovers(galaxies)
    assert sorted(removed) == [f".h.x1{atomic.OLD_SUFFIX}", f".k.x2{atomic.PARTIAL_SUFFIX}"]
    assert sorted(p.name for p in galaxies.iterdir()) == ["h"]
    assert (galaxies / "h" / survey.DONE_FILE).read_text() == "first"


def test_fingerprint_ignores_data_values_but_not_structure():
    import pymc as pm

    def model(data, sigma=1.0, prior=1.0):
        with pm.Model() as m:
            mu = pm.Normal("mu", 0.0, prior)
            y = pm.Data("y_observed", data)
            pm.Normal("y", mu=mu, sigma=sigma, observed=y)
        return m

    base = survey.model_fingerprint(model(np.zeros(5)), records=[])
    assert survey.model_fingerprint(model(np.arange(5.0)), records=[]) == base
    assert survey.model_fingerprint(model(np.zeros(6)), records=[]) != base
    assert survey.model_fingerprint(model(np.zeros(5), sigma=2.0), records=[]) != base
    assert survey.model_fingerprint(model(np.zeros(5), prior=2.0), records=[]) != base


@SAMPLE_GROUP
def test_a_cached_sampler_takes_another_psf_through_the_basis_maps(sample):
    """Two galaxies differing only in their PSF share a fingerprint, on the linear path and on
    the radial transfer path (log averaging); once the second one's data are swapped in, the
    compiled model computes the second one's maps."""
    from pymc_tracers.inference.fitter import Fitter
    from pymc_tracers.model.likelihood import likelihoods_of

    models = []
    for fwhm in (0.3, 0.5):
        path = sample["folder"] / "g1" / f"psf{fwhm}.toml"
        text = (sample["folder"] / "g1" / "config.toml").read_text()
        text = text.replace('type = "file"', f'type = "gaussian"\nfwhm = {fwhm}', 1)
        path.write_text(text.replace('file = "psf.fits"', "", 1))
        cfg = config.load_config(path)
        models.append(config.build_model(cfg, config.read_data(cfg), config.make_psf(cfg))[0])
        assert 'tracer_scale = "log"' in text
        path = path.with_name(f"psf{fwhm}_linear.toml")
        path.write_text(
            text.replace('file = "psf.fits"', "", 1).replace(
                'tracer_scale = "log"', 'tracer_scale = "linear"', 1
            )
        )
        cfg = config.load_config(path)
        models.append(config.build_model(cfg, config.read_data(cfg), config.make_psf(cfg))[0])
    point = {"disc_central": 8.6, "disc_gradient": -0.2}

    def tracer_map(model):
        record = likelihoods_of(model)[0]
        return model.compile_fn(record.model_map, inputs=model.free_RVs, point_fn=True)(point)

    for first, second in (models[:3:2], models[1::2]):  # log pair, linear pair
        same = survey.model_fingerprint(first) == survey.model_fingerprint(second)
        before, wanted = tracer_map(first), tracer_map(second)
        assert np.nanmax(np.abs(before - wanted)) > 1e-3  # the PSFs make a visible difference
        if not same:  # another structure: never shared, nothing to swap
            continue
        fitter = Fitter(first, backend="jax")
        survey.swap_model_data(fitter, second, likelihoods_of(second))
        assert np.allclose(tracer_map(fitter.model), wanted, rtol=0, atol=1e-12)
    assert survey.model_fingerprint(models[1]) == survey.model_fingerprint(models[3])
    second = models[3]
    # a prior with another width is another structure
    text = path.read_text().replace("sigma = 0.2}", "sigma = 0.3}", 1)
    path.write_text(text)
    cfg = config.load_config(path)
    other = config.build_model(cfg, config.read_data(cfg), config.make_psf(cfg))[0]
    assert survey.model_fingerprint(other) != survey.model_fingerprint(second)


def test_auto_takes_the_joint_model_for_small_samples_only():
    n = survey.JOINT_MAX_GALAXIES
    gib = 2**30
    assert survey.choose_method(n, memory_bytes=3.9 * gib, max_memory_gib=4.0) == "joint"
    assert survey.choose_method(n + 1, memory_bytes=1e6, max_memory_gib=4.0) == "reweight"
    assert survey.choose_method(6, memory_bytes=4.1 * gib, max_memory_gib=4.0) == "reweight"


# ------------------------------------------------------------------------------ user findings
def test_a_relation_without_scatter_samples_cleanly():
    """User finding 1: five galaxies exactly on a line, each measured precisely, gave R-hat 2.2
    and 763 divergences. The reweighted likelihood is smooth down to zero scatter (each
    galaxy's draws stand for their kernel density), so NUTS samples it cleanly."""
    from pymc_tracers.inference.convergence import convergence_report

    rng = np.random.default_rng(7)
    x = np.array([9.2, 9.6, 10.0, 10.4, 10.8])
    y = -0.02 - 0.08 * (x - 10.0)  # no intrinsic scatter
    draws = y[:, None] + 0.004 * rng.normal(size=(5, 1000))
    log_interim = st.norm.logpdf(draws, 0.0, 0.2)
    idata, _ = survey.reweighted_relation(
        draws,
        log_interim,
        x,
        pivot=10.0,
        interim=(0.0, 0.2),
        draws=1000,
        tune=1000,
        chains=2,
        seed=1,
    )
    report = convergence_report(idata, var_names=["intercept", "slope", "scatter"])
    assert report["converged"], report["problems"]
    assert report["divergences"] == 0
    lo, hi = np.quantile(idata.posterior["slope"].values, [0.025, 0.975])
    assert lo < -0.08 < hi and hi - lo < 0.03


@SAMPLE_GROUP
def test_a_small_relation_says_what_it_cannot_constrain_and_its_slope_unit(sample, tmp_path):
    """User findings 1 and 2: three galaxies are too few for an intrinsic scatter (said, and
    recorded); the slope's unit is the parameter's unit per unit of the covariate; the
    relation's convergence check is recorded in its files."""
    rows = Table.read(sample["folder"] / "catalogue.csv")[:3]
    rows["config"] = [str(sample["folder"] / c) for c in rows["config"]]
    rows["log_mass"].unit = "dex"
    catalogue = tmp_path / "three.ecsv"
    rows.write(catalogue, format="ascii.ecsv")
    said = []
    result = survey.infer_relation(
        sample["output"],
        catalogue,
        method="reweight",
        draws=300,
        tune=300,
        say=said.append,
        write=True,
        plot=False,
    )
    assert any("3 galaxies are too few to constrain an intrinsic scatter" in s for s in said)
    assert result.info["scatter_constrained"] is False
    table = Table.read(sample["output"] / "population" / "relation_summary.ecsv")
    units = dict(zip(table["parameter"], table["unit"]))
    assert units["slope"] == "(dex / arcsec) / (dex)" and units["intercept"] == "dex / arcsec"
    assert "per dex of log_mass" in table.meta["slope_unit_note"]
    assert set(table.meta["convergence"]) >= {"converged", "r_hat_max", "divergences"}
    assert table.meta["convergence"]["converged"] == result.converged


def test_fit_sample_without_dask_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    """User finding 3: no traceback, exit 2, the pip command; and the README says so."""
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    path = _catalogue(tmp_path, "name,config,log_mass\na,a.toml,10.5\n")
    code, _, err = _cli(["fit-sample", str(path), "--output", str(tmp_path / "out")])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert 'pip install "pymc_tracers[survey]"' in lines[0]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(li for li in readme.splitlines() if "pymc-tracers fit-sample" in li)
    assert "pymc_tracers[survey]" in line, line


@pytest.mark.slow
def test_ctrl_c_stops_a_cluster_run_quietly(tmp_path):
    """User finding 4: SIGINT during fit-sample on a process LocalCluster exits 130 with the
    resume message and no Dask tracebacks."""
    import signal
    import subprocess

    pytest.importorskip("distributed")
    _simulate(tmp_path, n=4)
    output = tmp_path / "out"
    argv = [
        "fit-sample",
        str(tmp_path / "catalogue.csv"),
        "--output",
        str(output),
        "--population",
        "none",
        "--workers",
        "2",
        "--quiet",
    ]
    environment = {**os.environ, "PYTHONWARNINGS": "ignore:PyTensor could not link to a BLAS"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pymc_tracers.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    deadline = time.time() + 300
    while not survey.finished_galaxies(output) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "run the same command again" in lines[-1]
    assert len(lines) <= 3, err
    assert "Traceback" not in err and "CommClosedError" not in err


@SAMPLE_GROUP
def test_the_relation_takes_gradients_per_effective_radius(sample):
    """User finding 10: the relation in dex/R_e (the light profile's fixed r_eff, 0.6")."""
    names = [f"g{i}" for i in range(N_GALAXIES)]
    plain = survey.relation_samples(sample["output"], names, "gradient", max_draws=50)
    per_re = survey.relation_samples(sample["output"], names, "gradient", per_re=True, max_draws=50)
    r_eff = config.EXAMPLE_TRUTH["r_eff"]
    assert plain["unit"] == "dex / arcsec" and per_re["unit"] == "dex / R_e"
    np.testing.assert_allclose(per_re["scale"], r_eff)
    np.testing.assert_allclose(per_re["samples"], plain["samples"] * r_eff)
    np.testing.assert_allclose(per_re["log_interim"], plain["log_interim"] - np.log(r_eff))
    with pytest.raises(ValueError, match="not both"):
        survey.relation_samples(
            sample["output"], names, "gradient", per_re=True, redshift=np.ones(len(names))
        )
    assert "--per-re" in build_parser().subcommands["fit-sample"].format_help()
