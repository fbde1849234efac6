"""The ``[lens]`` configuration section: analytic models with fixed values and priors, and
deflection maps from FITS placed on the data through both WCSs; bad sections are one line."""

from __future__ import annotations

import numpy as np
import pytest

import pymc_tracers as pmt
from pymc_tracers import config as cfg
from pymc_tracers import lensing

SIE = dict(theta_E=0.3, q=0.8, phi=0.4)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lensed")
    cfg.write_example(folder, truth={"shape": (15, 15)})
    return folder


def _with_lens(example, tmp_path, text):
    import shutil

    for name in ("galaxy.fits", "psf.fits"):
        shutil.copy(example / name, tmp_path / name)
    path = tmp_path / "config.toml"
    path.write_text((example / "config.toml").read_text() + "\n" + text)
    return path


def test_analytic_lens_with_a_free_parameter(example, tmp_path):
    path = _with_lens(
        example,
        tmp_path,
        """
[[lens.models]]
profile = "SIE"
theta_E = 0.3
q = 0.8
phi = 0.4

[[lens.models]]
profile = "SHEAR"
gamma1 = {distribution = "Normal", mu = 0.0, sigma = 0.05}
gamma2 = 0.01
""",
    )
    config = cfg.load_config(path)
    data = cfg.read_data(config)
    psf = cfg.make_psf(config)
    model, info = cfg.build_model(config, data, psf)
    obs = info["observation"]
    assert "lens1_gamma1" in [rv.name for rv in model.free_RVs]
    assert obs.path in ("subpixel", "pixel") and "the lens has free parameters" in obs.reason
    values = {"disc_central": 8.4, "disc_gradient": -0.1, "lens1_gamma1": 0.02}
    ours = pmt.evaluate(obs.tracer_map, **values)
    # the same lens written in Python gives the same map
    direct_lens = [lensing.SIE(**SIE), lensing.ExternalShear(gamma1=0.02, gamma2=0.01)]
    direct = pmt.observe(
        obs.renderer.components,
        data.grid,
        psf,
        info["tracer_scale"],
        lens=direct_lens,
        method="full",
    )
    reference = pmt.evaluate(direct.tracer_map, disc_central=8.4, disc_gradient=-0.1)
    np.testing.assert_allclose(ours, reference, rtol=1e-13)


def test_deflection_maps_from_fits_follow_the_data_wcs(example, tmp_path):
    """Maps on a WCS with the data's orientation, 12 pixels wider on each side: the config's
    lens equals a DeflectionMap built on the data grid's own axes."""
    from astropy.io import fits

    base = cfg.load_config(example / "config.toml")
    data = cfg.read_data(base)
    wcs = data.frame.wcs.deepcopy()
    pad = 12
    ny, nx = data.grid.shape[0] + 2 * pad, data.grid.shape[1] + 2 * pad
    wcs.wcs.crpix = [wcs.wcs.crpix[0] + pad, wcs.wcs.crpix[1] + pad]
    grid = data.grid
    xs = (np.arange(nx) - pad - (grid.nx - 1) / 2) * grid.pixel_scale + grid.center[0]
    ys = (np.arange(ny) - pad - (grid.ny - 1) / 2) * grid.pixel_scale + grid.center[1]
    xx, yy = np.meshgrid(xs, ys)
    ax, ay = lensing.SIE(**SIE).deflection_numpy(xx, yy)
    header = wcs.to_header()
    header["BUNIT"] = "arcsec"
    fits.PrimaryHDU(ax, header=header).writeto(tmp_path / "ax.fits")
    fits.PrimaryHDU(ay, header=header).writeto(tmp_path / "ay.fits")
    text = (example / "config.toml").read_text().replace("[model]", "[model]\nredshift = 2.0", 1)
    for name in ("galaxy.fits", "psf.fits"):
        (tmp_path / name).write_bytes((example / name).read_bytes())
    path = tmp_path / "config.toml"
    path.write_text(
        text + '\n[lens]\nz_lens = 0.4\ndeflection_x = "ax.fits"\ndeflection_y = "ay.fits"\n'
    )
    config = cfg.load_config(path)
    psf = cfg.make_psf(config)
    model, info = cfg.build_model(config, data, psf)
    obs = info["observation"]
    assert obs.path == "radial"  # a fixed lens keeps the fast path
    table = obs.numerics.lens
    np.testing.assert_allclose(table.axes[0], xs, atol=1e-7)
    np.testing.assert_allclose(table.axes[1], ys, atol=1e-7)
    ratio = lensing.distance_ratio(0.4, 2.0)
    direct = lensing.DeflectionMap(ax, ay, x=xs, y=ys, scale=ratio)
    values = {"disc_central": 8.4, "disc_gradient": -0.1}
    reference = pmt.observe(
        obs.renderer.components, grid, psf, info["tracer_scale"], lens=direct, method="full"
    )
    ours = pmt.evaluate(obs.tracer_map, **values)
    ref = pmt.evaluate(reference.tracer_map, **values)
    assert np.max(np.abs(ours - ref)) < 1e-7  # radial path tolerance (dex)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ('[[lens.models]]\nprofile = "SIEE"\ntheta_E = 1.0\n', "profile = 'SIEE'.*did you mean"),
        ('[[lens.models]]\nprofile = "SIE"\nq = 0.5\n', "SIE needs theta_E"),
        ('[[lens.models]]\nprofile = "SIE"\ntheta_E = 1.0\nrs = 2\n', "unknown parameter 'rs'"),
        ('[lens]\ndeflection_x = "galaxy.fits"\ndeflection_y = "galaxy.fits"\n', "need z_lens"),
        ('[lens]\ndeflection_x = "galaxy.fits"\n', "give both deflection_x and deflection_y"),
        ("[lens]\n", "needs \\[\\[lens.models\\]\\] tables or deflection"),
    ],
)
def test_bad_lens_section_is_one_clear_line(example, tmp_path, text, pattern):
    path = _with_lens(example, tmp_path, text)
    with pytest.raises(cfg.ConfigError, match=pattern) as error:
        cfg.load_config(path)
    assert "\n" not in str(error.value)
