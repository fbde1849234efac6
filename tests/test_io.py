"""pymc_tracers.io: FITS maps + WCS in, PSF files, bin maps, result files out.

Every FITS file here is written by the test with astropy; expected values come from astropy's
own WCS transforms, spherical offsets on the sky, or from the numbers the test wrote, never from
the module under test.
"""

import logging
import math
import os
import warnings

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import pymc_tracers as pmt
from pymc_tracers import io
from pymc_tracers.grid import elliptical_radius_numpy

RA, DEC = 150.1, 2.2


def make_wcs(shape, scale, *, rotation=0.0, mirrored=False, crpix=None, ra=RA, dec=DEC):
    """A TAN WCS with CD = s R(rotation) diag(-1 or +1, 1), scale in arcsec."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = crpix if crpix is not None else [(nx + 1) / 2, (ny + 1) / 2]
    rho = math.radians(rotation)
    rot = np.array([[math.cos(rho), -math.sin(rho)], [math.sin(rho), math.cos(rho)]])
    w.wcs.cd = scale / 3600.0 * rot @ np.diag([1.0 if mirrored else -1.0, 1.0])
    w.pixel_shape = (nx, ny)
    return w


def hdu(data, wcs=None, name=None, bunit=None, primary=False):
    header = wcs.to_header() if wcs is not None else fits.Header()
    if bunit is not None:
        header["BUNIT"] = bunit
    cls = fits.PrimaryHDU if primary else fits.ImageHDU
    out = cls(np.asarray(data), header=header)
    if name is not None and not primary:
        out.name = name
    return out


def write(path, *hdus):
    hdus = list(hdus)
    if not isinstance(hdus[0], fits.PrimaryHDU):
        hdus.insert(0, fits.PrimaryHDU())
    fits.HDUList(hdus).writeto(path)
    return path


def sky_galaxy(wcs, shape, centre, pa_deg, q, scale_length):
    """Elliptical exponential drawn on the sky: offsets (east, north) from astropy."""
    ny, nx = shape
    jj, ii = np.meshgrid(np.arange(nx), np.arange(ny))
    pixels = wcs.pixel_to_world(jj, ii)
    d_east, d_north = centre.spherical_offsets_to(pixels)
    east, north = d_east.to_value(u.arcsec), d_north.to_value(u.arcsec)
    pa = math.radians(pa_deg)
    major = east * math.sin(pa) + north * math.cos(pa)
    minor = -east * math.cos(pa) + north * math.sin(pa)
    r = np.sqrt(major**2 + (minor / q) ** 2)
    return r, np.exp(-r / scale_length)


@pytest.fixture
def mef(tmp_path):
    """A multi-extension file: metallicity (dex), error, H-alpha image, its error, DQ mask."""
    shape = (21, 25)
    wcs = make_wcs(shape, 0.2, rotation=30.0)
    rng = np.random.default_rng(1)
    oh = 8.5 + 0.01 * rng.normal(size=shape)
    oh_err = 0.05 + 0.01 * rng.random(shape)
    flux = 10.0 + rng.random(shape)
    flux_err = np.full(shape, 1.0)
    flux_err[0, :5] = 20.0  # S/N ~ 0.5 in five pixels
    dq = np.zeros(shape, dtype=np.int16)
    dq[3, 4] = 1
    dq[5, 6] = 4
    oh[7, 8] = np.nan
    path = write(
        tmp_path / "galaxy.fits",
        hdu(oh, wcs, "OH", "dex"),
        hdu(oh_err, wcs, "OH_ERR", "dex"),
        hdu(flux, wcs, "HA", "1e-17 erg/(s cm2)"),
        hdu(flux_err, wcs, "HA_ERR", "1e-17 erg/(s cm2)"),
        hdu(dq, wcs, "DQ"),
    )
    return {
        "path": path,
        "wcs": wcs,
        "shape": shape,
        "oh": oh,
        "oh_err": oh_err,
        "flux": flux,
        "flux_err": flux_err,
        "dq": dq,
    }


# ------------------------------------------------------------------------------ scales and WCS
def test_rotated_cd_matrix_gives_the_true_pixel_scale():
    wcs = make_wcs((11, 11), 0.022, rotation=30.0)
    assert wcs.wcs.cd[0, 0] * -3600 == pytest.approx(0.022 * math.cos(math.radians(30)))
    assert abs(wcs.wcs.cd[0, 0]) * 3600 == pytest.approx(0.01905, abs=1e-5)  # the old reading
    assert io.pixel_scale_from_wcs(wcs) == pytest.approx(0.022, rel=1e-12)


def test_pc_cdelt_and_arcsec_units_are_read():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA, DEC]
    w.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
    c, s = math.cos(0.3), math.sin(0.3)
    w.wcs.pc = [[c, -s], [s, c]]
    assert io.pixel_scale_from_wcs(w) == pytest.approx(0.05, rel=1e-12)
    lin = WCS(naxis=2)
    lin.wcs.cdelt = [0.1, 0.1]
    lin.wcs.cunit = ["arcsec", "arcsec"]
    assert io.pixel_scale_from_wcs(lin) == pytest.approx(0.1)


def test_non_square_and_skewed_pixels_are_refused():
    w = make_wcs((11, 11), 0.2)
    w.wcs.cd = np.diag([-0.2, 0.25]) / 3600
    with pytest.raises(ValueError, match=r"not square \(0\.2 x 0\.25 arcsec"):
        io.pixel_scale_from_wcs(w)
    t = math.radians(6.0)  # equal column lengths, axes meeting at 84 deg
    w.wcs.cd = 0.2 / 3600 * np.array([[-1.0, math.sin(t)], [0.0, math.cos(t)]])
    with pytest.raises(ValueError, match="skewed"):
        io.pixel_scale_from_wcs(w)


@pytest.mark.parametrize("rotation", [0.0, 30.0, -75.0, 140.0])
def test_north_angle_follows_the_cd_rotation(rotation):
    # CD = s R(rho) diag(-1, 1): world (east, north) = R diag(-1,1) pixel, so north (0, 1) is
    # the pixel vector diag(-1,1) R(-rho) (0, 1) = (-sin rho, cos rho): angle pi/2 + rho.
    frame = io.sky_frame(make_wcs((31, 31), 0.1, rotation=rotation), (31, 31))
    expected = math.pi / 2 + math.radians(rotation)
    assert math.remainder(frame.north_angle - expected, 2 * math.pi) == pytest.approx(0, abs=1e-6)
    assert frame.east_sign == 1
    mirrored = io.sky_frame(make_wcs((31, 31), 0.1, rotation=rotation, mirrored=True), (31, 31))
    assert mirrored.east_sign == -1


def test_north_up_east_left_pa_convention():
    frame = io.sky_frame(make_wcs((31, 31), 0.1), (31, 31))
    assert frame.phi_from_pa(0.0) == pytest.approx(math.pi / 2)  # major axis along +y
    assert abs(frame.phi_from_pa(90.0)) == pytest.approx(math.pi)  # along x
    assert frame.phi_from_pa(45 * u.deg) == pytest.approx(3 * math.pi / 4)
    assert frame.phi_from_pa(math.pi / 4 * u.rad) == pytest.approx(3 * math.pi / 4)
    assert frame.pa_from_phi(math.pi / 2).deg == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="must be an angle"):
        frame.phi_from_pa(3 * u.km)


@pytest.mark.parametrize(
    "rotation, mirrored, pa", [(0.0, False, 30.0), (30.0, False, 110.0), (-120.0, True, 65.0)]
)
def test_galaxy_drawn_on_the_sky_is_recovered_in_the_grid(tmp_path, rotation, mirrored, pa):
    shape, scale, q = (41, 45), 0.1, 0.5
    wcs = make_wcs(shape, scale, rotation=rotation, mirrored=mirrored)
    centre = wcs.pixel_to_world(25.3, 17.6)  # off-centre, between pixel centres
    r_sky, light = sky_galaxy(wcs, shape, centre, pa, q, scale_length=0.4)
    path = write(tmp_path / "g.fits", hdu(light, wcs, "FLUX", "MJy/sr"))
    data = io.read_maps(path, image="FLUX", center=centre)

    x0, y0 = data.center_offset
    assert x0 == pytest.approx((25.3 - (shape[1] - 1) / 2) * scale, abs=1e-6)
    assert y0 == pytest.approx((17.6 - (shape[0] - 1) / 2) * scale, abs=1e-6)
    phi = data.phi_from_pa(pa)
    r_grid = elliptical_radius_numpy(data.grid.x, data.grid.y, x0, y0, q, phi)
    np.testing.assert_allclose(r_grid, r_sky, atol=1e-6)  # same ellipse, to micro-arcsec
    assert data.pa_from_phi(phi).deg == pytest.approx(pa % 360, abs=1e-6)

    # and the PA read off second moments of a compact (Gaussian) galaxy drawn on the sky
    w = np.exp(-0.5 * (r_sky / 0.25) ** 2)
    w /= w.sum()
    xm, ym = (w * data.grid.x).sum(), (w * data.grid.y).sum()
    dx, dy = data.grid.x - xm, data.grid.y - ym
    mxx, myy, mxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
    phi_moments = 0.5 * math.atan2(2 * mxy, mxx - myy)
    pa_moments = data.pa_from_phi(phi_moments).deg % 180
    assert pa_moments == pytest.approx(pa % 180, abs=0.5)


def test_to_grid_and_to_sky_invert_each_other():
    frame = io.sky_frame(make_wcs((30, 40), 0.2, rotation=12.0), (30, 40))
    coord = SkyCoord(RA + 1e-4, DEC - 2e-4, unit="deg")
    x, y = frame.to_grid(coord)
    assert frame.to_sky(x, y).separation(coord).arcsec < 1e-8
    crpix_offset = frame.to_grid(SkyCoord(RA, DEC, unit="deg"))
    # CRVAL sits at CRPIX = ((nx+1)/2, (ny+1)/2) 1-based = the field centre
    assert crpix_offset == pytest.approx((0.0, 0.0), abs=1e-9)
    with pytest.raises(TypeError, match="SkyCoord"):
        frame.to_grid((RA, DEC))


# ------------------------------------------------------------------------------ reading maps
def test_read_maps_from_a_multi_extension_file(mef):
    data = io.read_maps(
        mef["path"], tracer="OH", tracer_error="OH_ERR", image=3, image_error="HA_ERR", mask="DQ"
    )
    np.testing.assert_array_equal(
        data.tracer_map[~np.isnan(mef["oh"])], mef["oh"][~np.isnan(mef["oh"])]
    )
    np.testing.assert_array_equal(data.tracer_error, mef["oh_err"])
    np.testing.assert_array_equal(data.image, mef["flux"])
    assert data.grid.shape == mef["shape"]
    assert data.pixel_scale == pytest.approx(0.2, rel=1e-12)
    assert data.units["tracer"] == u.dex
    assert data.units["image"] == u.Unit("1e-17 erg / (s cm2)")
    assert data.tracer_name == "OH"
    expected = (mef["dq"] == 0) & np.isfinite(mef["oh"])
    np.testing.assert_array_equal(data.tracer_mask, expected)
    np.testing.assert_array_equal(data.image_mask, mef["dq"] == 0)
    assert data.report["tracer"]["nan"] == 1 and data.report["tracer"]["flagged"] == 2
    assert data.tracer_data()["mask"] is data.tracer_mask
    assert "OH" in data.summary()


def test_abundance_must_be_dex(tmp_path):
    shape = (9, 9)
    wcs = make_wcs(shape, 0.2)
    path = write(tmp_path / "z.fits", hdu(np.full(shape, 8.5), wcs, "METALLICITY"))
    with pytest.raises(ValueError, match=r"looks like an abundance.*missing \(no BUNIT\)"):
        io.read_maps(path, tracer="METALLICITY")
    path2 = write(tmp_path / "z2.fits", hdu(np.full(shape, 8.5), wcs, "MAP", "km/s"))
    with pytest.raises(ValueError, match=r"'12\+log\(O/H\)'.*must be in dex.*'km / s'"):
        io.read_maps(path2, tracer="MAP", tracer_name="12+log(O/H)")
    assert io.read_maps(path, tracer="METALLICITY", tracer_unit="dex").units["tracer"] == u.dex
    assert io.read_maps(path, tracer="METALLICITY", check_dex=False).units["tracer"] is None
    velocity = io.read_maps(path2, tracer="MAP", tracer_name="velocity")
    assert velocity.units["tracer"] == u.km / u.s


def test_maps_from_several_files_and_error_units_converted(tmp_path):
    shape = (8, 10)
    wcs = make_wcs(shape, 0.3, rotation=-20)
    v = np.linspace(-100, 100, 80).reshape(shape)
    write(tmp_path / "v.fits", hdu(v, wcs, primary=True, bunit="km/s"))
    write(tmp_path / "verr.fits", hdu(np.full(shape, 5000.0), wcs, "ERR", "m/s"))
    data = io.read_maps(
        tracer=str(tmp_path / "v.fits"), tracer_error=(tmp_path / "verr.fits", "ERR")
    )
    np.testing.assert_allclose(data.tracer_error, 5.0)
    np.testing.assert_array_equal(data.tracer_map, v)
    assert data.frame is not None and data.pixel_scale == pytest.approx(0.3)
    write(tmp_path / "bad.fits", hdu(np.full(shape, 1.0), wcs, "ERR", "erg"))
    with pytest.raises(ValueError, match="has BUNIT erg but its map"):
        io.read_maps(tracer=str(tmp_path / "v.fits"), tracer_error=(tmp_path / "bad.fits", "ERR"))


def test_missing_file_extension_and_empty_hdu_messages(mef, tmp_path):
    with pytest.raises(FileNotFoundError, match="tracer map: file .*nope.fits' does not exist"):
        io.read_maps(tracer=str(tmp_path / "nope.fits"))
    with pytest.raises(ValueError, match=r"no extension 'ZZ' for the tracer map; its HDUs: 0 "):
        io.read_maps(mef["path"], tracer="ZZ")
    with pytest.raises(ValueError, match="no extension 9"):
        io.read_maps(mef["path"], tracer=9)
    with pytest.raises(ValueError, match=r"holds no image for the tracer map"):
        io.read_maps(mef["path"], tracer=0)
    with pytest.raises(ValueError, match=r"name the maps to read.*'OH' \(21x25\)"):
        io.read_maps(mef["path"])


def test_no_wcs_needs_a_pixel_scale(tmp_path):
    path = write(tmp_path / "plain.fits", hdu(np.ones((5, 5)), None, "V", "km/s"))
    with pytest.raises(ValueError, match=r"no celestial WCS.*pass pixel_scale=<arcsec per pixel>"):
        io.read_maps(path, tracer="V")
    data = io.read_maps(path, tracer="V", pixel_scale=0.5, supersampling=3)
    assert data.grid == pmt.PixelGrid((5, 5), 0.5, 3)
    assert data.frame is None
    with pytest.raises(ValueError, match="no celestial WCS, so sky positions"):
        data.phi_from_pa(10.0)


def test_non_square_wcs_and_contradicting_pixel_scale(tmp_path):
    wcs = make_wcs((5, 5), 0.2)
    wcs.wcs.cd = np.diag([-0.2, 0.3]) / 3600
    path = write(tmp_path / "ns.fits", hdu(np.ones((5, 5)), wcs, "V", "km/s"))
    with pytest.raises(ValueError, match="pixels are not square"):
        io.read_maps(path, tracer="V")
    path2 = write(tmp_path / "ok.fits", hdu(np.ones((5, 5)), make_wcs((5, 5), 0.2), "V"))
    with pytest.raises(ValueError, match=r"pixel_scale=0.25 arcsec contradicts the WCS \(0.2"):
        io.read_maps(path2, tracer="V", pixel_scale=0.25)


def test_shapes_and_grids_must_agree(tmp_path):
    wcs = make_wcs((6, 6), 0.2)
    shifted = make_wcs((6, 6), 0.2, crpix=[4.5, 3.5])
    path = write(
        tmp_path / "m.fits",
        hdu(np.ones((6, 6)), wcs, "A", "km/s"),
        hdu(np.ones((6, 7)), wcs, "B"),
        hdu(np.ones((6, 6)), shifted, "C"),
    )
    with pytest.raises(ValueError, match="different shapes"):
        io.read_maps(path, tracer="A", tracer_error="B")
    with pytest.raises(ValueError, match=r"different WCSs \(positions differ by up to 1 pixels"):
        io.read_maps(path, tracer="A", tracer_error="C")


def test_inf_is_reported_and_masked(tmp_path):
    shape = (6, 7)
    wcs = make_wcs(shape, 0.2)
    v = np.zeros(shape)
    v[1, 2] = np.inf
    v[4, 4] = -np.inf
    v[0, 0] = np.nan
    path = write(tmp_path / "v.fits", hdu(v, wcs, "VEL", "km/s"), hdu(np.ones(shape), wcs, "E"))
    with pytest.warns(
        io.BadDataWarning, match=r"2 infinite value\(s\) in the tracer map.*\(1, 2\)"
    ):
        data = io.read_maps(path, tracer="VEL", tracer_error="E")
    assert np.isnan(data.tracer_map[1, 2]) and np.isnan(data.tracer_map[4, 4])
    assert not data.tracer_mask[1, 2] and not data.tracer_mask[4, 4] and not data.tracer_mask[0, 0]
    assert data.tracer_mask.sum() == v.size - 3
    assert data.report["tracer"]["inf"] == 2 and data.report["tracer"]["nan"] == 1


@pytest.mark.parametrize("value, words", [(0.0, "1 zero"), (-0.1, "1 negative"), (np.inf, "1 inf")])
def test_bad_error_values_in_used_pixels_raise(tmp_path, value, words):
    shape = (6, 6)
    wcs = make_wcs(shape, 0.2)
    err = np.full(shape, 0.1)
    err[2, 3] = value
    err[5, 5] = value  # under a NaN data pixel: not used, so not an error
    z = np.full(shape, 8.4)
    z[5, 5] = np.nan
    path = write(tmp_path / "z.fits", hdu(z, wcs, "OH", "dex"), hdu(err, wcs, "OH_ERR"))
    with pytest.raises(
        ValueError, match=rf"tracer_error map has {words} value\(s\) in pixels that would be fitted"
    ):
        io.read_maps(path, tracer="OH", tracer_error="OH_ERR")
    with pytest.warns(io.BadDataWarning, match="masked"):
        data = io.read_maps(path, tracer="OH", tracer_error="OH_ERR", bad_errors="mask")
    assert not data.tracer_mask[2, 3] and data.tracer_mask.sum() == z.size - 2


def test_ivar_and_variance_error_maps(tmp_path):
    shape = (4, 4)
    wcs = make_wcs(shape, 0.2)
    ivar = np.full(shape, 25.0)
    ivar[0, 1] = 0.0  # MaNGA: no data
    path = write(
        tmp_path / "v.fits",
        hdu(np.zeros(shape), wcs, "V", "km/s"),
        hdu(ivar, wcs, "IVAR"),
        hdu(np.full(shape, 4.0), wcs, "VAR"),
    )
    data = io.read_maps(path, tracer="V", tracer_error="IVAR", error_type="ivar")
    assert data.tracer_error[1, 1] == pytest.approx(0.2)
    assert np.isnan(data.tracer_error[0, 1]) and not data.tracer_mask[0, 1]
    data = io.read_maps(path, tracer="V", tracer_error="VAR", error_type="variance")
    np.testing.assert_allclose(data.tracer_error, 2.0)


def test_snr_cut_and_mask_conventions(mef):
    data = io.read_maps(
        mef["path"],
        tracer="OH",
        tracer_error="OH_ERR",
        image="HA",
        image_error="HA_ERR",
        snr_min=3.0,
    )
    snr = mef["flux"] / mef["flux_err"]
    expected = (snr >= 3.0) & np.isfinite(mef["oh"])
    np.testing.assert_array_equal(data.tracer_mask, expected)
    assert data.report["tracer"]["below_snr"] == 5
    good = io.read_maps(mef["path"], tracer="OH", mask="DQ", mask_means="good")
    np.testing.assert_array_equal(good.tracer_mask, (mef["dq"] != 0) & np.isfinite(mef["oh"]))
    bits = io.read_maps(mef["path"], tracer="OH", mask="DQ", mask_bits=4)
    assert not bits.tracer_mask[5, 6] and bits.tracer_mask[3, 4]
    with pytest.raises(ValueError, match="S/N of a dex quantity is meaningless"):
        io.read_maps(mef["path"], tracer="OH", tracer_error="OH_ERR", snr_min=3, snr_of="tracer")
    with pytest.raises(ValueError, match="needs both the image map and its error"):
        io.read_maps(mef["path"], tracer="OH", snr_min=3)


def test_cutout_keeps_the_wcs(mef):
    full = io.read_maps(mef["path"], tracer="OH", image="HA")
    centre = mef["wcs"].pixel_to_world(12, 9)
    cut = io.read_maps(mef["path"], tracer="OH", image="HA", center=centre, cutout_size=7)
    assert cut.shape == (7, 7)
    np.testing.assert_array_equal(cut.image, mef["flux"][6:13, 9:16])
    assert cut.center_offset == pytest.approx((0.0, 0.0), abs=1e-9)
    # every cut pixel sits where the full map's pixel does on the sky
    jj, ii = np.meshgrid(np.arange(7), np.arange(7))
    sep = cut.wcs.pixel_to_world(jj, ii).separation(mef["wcs"].pixel_to_world(jj + 9, ii + 6))
    assert sep.max().arcsec < 1e-8
    assert cut.frame.north_angle == pytest.approx(full.frame.north_angle, abs=1e-6)
    # an angular size and a cut-out running off the edge: the outside is NaN and masked
    edge = full.cutout(2.0 * u.arcsec, center=mef["wcs"].pixel_to_world(1, 1))
    assert edge.shape == (10, 10)
    assert np.isnan(edge.image[0, 0]) and not edge.image_mask[0, 0]
    assert edge.image[4, 4] == mef["flux"][0, 0]
    # integer images and bin maps are cut too (outside: NaN, bin -1)
    counts = io.GalaxyData.from_arrays(
        image=np.arange(525).reshape(mef["shape"]),
        bins=np.zeros(mef["shape"], int),
        wcs=mef["wcs"],
        center=mef["wcs"].pixel_to_world(0, 0),
        cutout_size=5,
    )
    assert counts.image[2, 2] == 0 and np.isnan(counts.image[0, 0])
    assert counts.bin_map[0, 0] == -1 and counts.bin_map[2, 2] == 0


# ------------------------------------------------------------------------------ PSF files
def gaussian_image(n, sigma_pix, centre=None):
    c = (n - 1) / 2 if centre is None else centre
    y, x = np.mgrid[:n, :n]
    img = np.exp(-0.5 * ((x - c) ** 2 + (y - c) ** 2) / sigma_pix**2)
    return img / img.sum()


@pytest.fixture
def stpsf_file(tmp_path):
    """Shaped like stpsf output: OVERSAMP, DET_SAMP, OVERDIST, DET_DIST with keywords."""
    det_scale, over = 0.0656, 4
    images = {
        "OVERSAMP": gaussian_image(61, 4.0),
        "DET_SAMP": gaussian_image(15, 1.0),
        "OVERDIST": gaussian_image(61, 4.5),
        "DET_DIST": gaussian_image(15, 1.1),
    }
    hdus = []
    for i, (name, img) in enumerate(images.items()):
        oversampled = name.startswith("OVER")
        h = fits.PrimaryHDU(img) if i == 0 else fits.ImageHDU(img)
        h.header["EXTNAME"] = name
        h.header["OVERSAMP"] = over if oversampled else 1
        h.header["DET_SAMP"] = over
        h.header["PIXELSCL"] = det_scale / over if oversampled else det_scale
        hdus.append(h)
    path = tmp_path / "stpsf.fits"
    fits.HDUList(hdus).writeto(path)
    return path, images, det_scale, over


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({}, "OVERSAMP"),
        ({"oversampled": False}, "DET_SAMP"),
        ({"distorted": True}, "OVERDIST"),
        ({"oversampled": False, "distorted": True}, "DET_DIST"),
        ({"ext": "DET_SAMP"}, "DET_SAMP"),
        ({"ext": 2}, "OVERDIST"),
    ],
)
def test_stpsf_file_extensions(stpsf_file, kwargs, name):
    path, images, det_scale, over = stpsf_file
    psf = io.read_psf(path, **kwargs)
    np.testing.assert_allclose(psf.image, images[name], rtol=1e-12)
    expected = det_scale / over if name.startswith("OVER") else det_scale
    assert psf.pixel_scale == pytest.approx(expected, rel=1e-12)


def test_stpsf_keywords_without_extension_names(tmp_path):
    over = fits.PrimaryHDU(gaussian_image(41, 3.0))
    over.header.update(OVERSAMP=3, DET_SAMP=3, PIXELSCL=0.03)
    det = fits.ImageHDU(gaussian_image(15, 1.0))
    det.header.update(OVERSAMP=1, DET_SAMP=3, PIXELSCL=0.09)
    fits.HDUList([over, det]).writeto(tmp_path / "k.fits")
    assert io.read_psf(tmp_path / "k.fits").pixel_scale == pytest.approx(0.03)
    assert io.read_psf(tmp_path / "k.fits", oversampled=False).pixel_scale == pytest.approx(0.09)
    only_over = fits.PrimaryHDU(gaussian_image(41, 3.0))
    only_over.header.update(OVERSAMP=3, PIXELSCL=0.03)
    only_over.writeto(tmp_path / "o.fits")
    with pytest.raises(ValueError, match=r"only an oversampled PSF \(OVERSAMP = \[3.0\]\)"):
        io.read_psf(tmp_path / "o.fits", oversampled=False)


def test_stpsf_names_missing_the_asked_sampling(tmp_path):
    h = fits.PrimaryHDU(gaussian_image(21, 2.0))
    h.header.update(EXTNAME="OVERSAMP", OVERSAMP=2, PIXELSCL=0.03)
    h.writeto(tmp_path / "s.fits")
    with pytest.raises(ValueError, match=r"stpsf extensions \['OVERSAMP'\] but not 'DET_SAMP'"):
        io.read_psf(tmp_path / "s.fits", oversampled=False)


def test_rotated_cd_psf_header_gives_0p022(tmp_path):
    img = gaussian_image(31, 2.0)
    header = make_wcs((31, 31), 0.022, rotation=30.0).to_header()
    assert "PIXELSCL" not in header
    fits.PrimaryHDU(img, header=header).writeto(tmp_path / "rot.fits")
    psf = io.read_psf(tmp_path / "rot.fits")
    assert psf.pixel_scale == pytest.approx(0.022, rel=1e-9)
    # a bare CD matrix without CTYPE (degrees by default) works as well
    bare = fits.Header()
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    bare.update(
        CD1_1=-0.022 / 3600 * c,
        CD1_2=0.022 / 3600 * s,
        CD2_1=0.022 / 3600 * s,
        CD2_2=0.022 / 3600 * c,
    )
    fits.PrimaryHDU(img, header=bare).writeto(tmp_path / "bare.fits")
    assert io.read_psf(tmp_path / "bare.fits").pixel_scale == pytest.approx(0.022, rel=1e-9)
    skew = bare.copy()
    t = math.radians(6.0)
    skew.update(
        CD1_1=-0.022 / 3600,
        CD2_1=0.0,
        CD1_2=0.022 / 3600 * math.sin(t),
        CD2_2=0.022 / 3600 * math.cos(t),
    )
    fits.PrimaryHDU(img, header=skew).writeto(tmp_path / "skew.fits")
    with pytest.raises(ValueError, match="skewed"):
        io.read_psf(tmp_path / "skew.fits")


def test_empty_primary_and_missing_scale(tmp_path, caplog):
    img = gaussian_image(21, 2.0)
    psf_hdu = fits.ImageHDU(img, name="PSF")
    psf_hdu.header["PIXSCALE"] = 0.05
    fits.HDUList([fits.PrimaryHDU(), psf_hdu]).writeto(tmp_path / "e.fits")
    with caplog.at_level(logging.INFO, logger="pymc_tracers.psf"):
        psf = io.read_psf(tmp_path / "e.fits")
    assert "primary HDU is empty; PSF read from HDU 1" in caplog.text
    np.testing.assert_allclose(psf.image, img, rtol=1e-12)
    with pytest.raises(ValueError, match=r"HDU 0 holds no image .*1 'PSF' \(21x21\).*pass ext=1"):
        io.read_psf(tmp_path / "e.fits", ext=0)
    fits.PrimaryHDU(img).writeto(tmp_path / "noscale.fits")
    with pytest.raises(ValueError, match=r"no pixel scale in the header.*pass pixel_scale="):
        io.read_psf(tmp_path / "noscale.fits")
    assert io.read_psf(tmp_path / "noscale.fits", pixel_scale=0.01).pixel_scale == 0.01
    with pytest.raises(FileNotFoundError, match="PSF file"):
        io.read_psf(tmp_path / "missing.fits")


def test_even_psf_is_recentred_on_an_odd_grid(tmp_path, caplog):
    n, sigma, scale = 64, 3.0, 0.01
    even = gaussian_image(n, sigma)  # centred on the corner between the 4 middle pixels
    h = fits.PrimaryHDU(even)
    h.header["PIXELSCL"] = scale
    h.writeto(tmp_path / "even.fits")
    with caplog.at_level(logging.INFO, logger="pymc_tracers.psf"):
        psf = io.read_psf(tmp_path / "even.fits")
    assert "even-sized PSF (64 x 64) re-centred onto an odd 65 x 65 grid" in caplog.text
    k = psf.image
    assert k.shape == (65, 65) and k.sum() == pytest.approx(1.0, abs=1e-12)
    offsets = np.arange(65) - 32
    assert (k.sum(axis=1) * offsets).sum() == pytest.approx(0.0, abs=1e-12)
    assert (k.sum(axis=0) * offsets).sum() == pytest.approx(0.0, abs=1e-12)
    # the same Gaussian sampled on the odd grid directly (independent reference)
    reference = gaussian_image(65, sigma)
    assert np.abs(k - reference).max() < 2e-3 * reference.max()


def test_moffat_fwhm_of_wavelength():
    fwhm = io.moffat_fwhm_at(6000, fwhm_ref=0.8, wavelength_ref=7000, slope=-3e-5)
    assert fwhm == pytest.approx(0.8 + 0.03)
    same = io.moffat_fwhm_at(
        600 * u.nm,
        fwhm_ref=0.8 * u.arcsec,
        wavelength_ref=0.7 * u.um,
        slope=-3e-5 * u.arcsec / u.AA,
    )
    assert same == pytest.approx(0.83)
    psf = io.moffat_psf_at(
        8000,
        fwhm_ref=0.8,
        wavelength_ref=7000,
        slope=-3e-5,
        curvature=1e-9,
        beta=2.5,
        beta_slope=1e-4,
    )
    assert isinstance(psf, pmt.MoffatPSF)
    assert psf.fwhm == pytest.approx(0.8 - 0.03 + 1e-3)
    assert psf.beta == pytest.approx(2.6)
    with pytest.raises(ValueError, match="FWHM polynomial gives"):
        io.moffat_fwhm_at(40000, fwhm_ref=0.8, wavelength_ref=7000, slope=-3e-5)


# ------------------------------------------------------------------------------ bins
@pytest.fixture(scope="module")
def vorbin_map():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vorbin 3.2 announces its successor (powerbin)
        from vorbin.voronoi_2d_binning import voronoi_2d_binning

    ny, nx = 24, 26
    yy, xx = np.mgrid[:ny, :nx]
    r = np.hypot(xx - 12.3, yy - 11.7)
    signal = 200.0 * np.exp(-r / 4.0)
    noise = np.sqrt(signal + 4.0)
    use = signal / noise > 2.0  # fainter pixels are left out of every bin (-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vorbin 3.2 announces its successor (powerbin)
        number, *_ = voronoi_2d_binning(
            xx[use].astype(float),
            yy[use].astype(float),
            signal[use],
            noise[use],
            15.0,
            plot=False,
            quiet=True,
            pixelsize=1.0,
        )
    bins = np.full((ny, nx), -1, dtype=int)
    bins[use] = number
    return bins, signal


def test_vorbin_bin_map_reads_back(tmp_path, vorbin_map):
    bins, _signal = vorbin_map
    assert bins.max() > 5 and (bins == -1).any()
    shape = bins.shape
    wcs = make_wcs(shape, 0.2)
    ids = np.unique(bins[bins >= 0])
    per_bin = 8.0 + 0.01 * np.arange(ids.size)
    z = np.where(bins >= 0, per_bin[np.searchsorted(ids, np.maximum(bins, 0))], np.nan)
    path = write(
        tmp_path / "binned.fits",
        hdu(z, wcs, "OH", "dex"),
        hdu(np.full(shape, 0.05), wcs, "OH_ERR", "dex"),
        hdu(bins.astype(np.float32), wcs, "BINID"),  # float, as FITS writers often store it
    )
    data = io.read_maps(path, tracer="OH", tracer_error="OH_ERR", bins="BINID")
    np.testing.assert_array_equal(data.bin_map, bins)
    assert data.bin_map.dtype == np.int64
    np.testing.assert_array_equal(data.tracer_mask, bins >= 0)
    assert data.report["bins"] == {"n_bins": ids.size, "empty": 0}
    got_ids, got = io.bin_values(data.tracer_map, data.bin_map, mask=data.tracer_mask)
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_allclose(got, per_bin)


def test_bin_average_matches_brute_force(vorbin_map, rng):
    bins, signal = vorbin_map
    light = signal * (1 + 0.1 * rng.random(signal.shape))
    z = 8.0 - 0.01 * np.hypot(*np.mgrid[: bins.shape[0], : bins.shape[1]])
    weighted = light * z
    got = io.bin_average_numpy(weighted, light, bins)
    ids = io.bin_ids(bins)
    brute = []
    for b in ids:
        num = den = 0.0
        for i in range(bins.shape[0]):
            for j in range(bins.shape[1]):
                if bins[i, j] == b:
                    num += weighted[i, j]
                    den += light[i, j]
        brute.append(num / den)
    np.testing.assert_allclose(got, brute, rtol=1e-13)
    # not the mean of pixel ratios (which would be z averaged without weights)
    unweighted = [z[bins == b].mean() for b in ids]
    assert np.max(np.abs(got - unweighted)) > 1e-4
    batched = io.bin_average_numpy(
        np.stack([weighted, 2 * weighted]), np.stack([light, light]), bins
    )
    np.testing.assert_allclose(batched[1], 2 * got, rtol=1e-13)
    assert batched.shape == (2, ids.size)


def test_bin_map_validation():
    with pytest.raises(ValueError, match="non-integer values"):
        io.validate_bin_map(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="1 NaN/inf values; use -1"):
        io.validate_bin_map(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="indices below -1"):
        io.validate_bin_map(np.array([[-2, 1]]))
    with pytest.raises(ValueError, match="no bins"):
        io.validate_bin_map(np.array([[-1, -1]]))
    with pytest.raises(ValueError, match="hold different values"):
        io.bin_values(np.array([[1.0, 2.0]]), np.array([[0, 0]]))
    with pytest.raises(ValueError, match=r"bins \[1\] hold no light"):
        io.bin_average_numpy(np.ones((1, 2)), np.array([[1.0, 0.0]]), np.array([[0, 1]]))


# ------------------------------------------------------------------------------ writing
def test_write_maps_round_trip(tmp_path, rng):
    shape = (12, 14)
    wcs = make_wcs(shape, 0.1, rotation=25.0)
    model = rng.normal(size=shape)
    data = model + 0.1 * rng.normal(size=shape)
    sigma = np.full(shape, 0.1)
    used = np.ones(shape, dtype=bool)
    used[0, 0] = False
    path = io.write_maps(
        tmp_path / "maps.fits",
        {"model": model, "data": data, "sigma": sigma, "used": used},
        wcs=wcs,
        name="OH",
        unit="dex",
    )
    with fits.open(path) as hdus:
        names = [h.name for h in hdus]
        assert names == ["PRIMARY", "MODEL", "DATA", "SIGMA", "RESIDUAL", "NORM_RESIDUAL", "USED"]
        assert hdus[0].header["TRACER"] == "OH"
        assert hdus["MODEL"].header["BUNIT"] == "dex"
        np.testing.assert_array_equal(hdus["MODEL"].data, model)
        residual = hdus["RESIDUAL"].data
        assert np.isnan(residual[0, 0])
        np.testing.assert_allclose(residual[used], (data - model)[used])
        np.testing.assert_allclose(hdus["NORM_RESIDUAL"].data[used], ((data - model) / 0.1)[used])
        back = WCS(hdus["RESIDUAL"].header)
    jj, ii = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]))
    assert back.pixel_to_world(jj, ii).separation(wcs.pixel_to_world(jj, ii)).max().arcsec < 1e-9
    assert [p.name for p in tmp_path.iterdir()] == ["maps.fits"]  # no temporary left behind
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.write_maps(path, {"model": model}, wcs=wcs)

    class FakeResult:
        def maps(self, name):
            assert name == "OH"
            return {"data": data, "model": model, "sigma": sigma, "used": used, "residual": None}

    io.write_maps(path, FakeResult(), wcs=wcs, name="OH", overwrite=True)
    with fits.open(path) as hdus:
        np.testing.assert_array_equal(hdus["DATA"].data, data)
    with pytest.raises(ValueError, match=r"the WCS is for \(12, 14\) pixels"):
        io.write_maps(tmp_path / "x.fits", {"model": model[:5]}, wcs=wcs)
    with pytest.raises(ValueError, match="one galaxy of a batch at a time"):
        io.write_maps(tmp_path / "x.fits", {"model": np.zeros((2, 3, 3))})


def test_write_summary_ecsv_with_units(tmp_path):
    summary = pd.DataFrame(
        {
            "mean": [8.01, -0.2, 0.5],
            "sd": [0.02, 0.01, 0.1],
            "hdi_3%": [7.97, -0.22, 0.3],
            "ess_bulk": [900.0, 850.0, 700.0],
            "r_hat": [1.0, 1.01, 1.0],
        },
        index=["central", "gradient", "q"],
    )
    units = {"central": "dex", "gradient": u.dex / u.arcsec, "q": ""}
    path = io.write_summary(tmp_path / "s.ecsv", summary, units=units)
    table = Table.read(path)
    assert list(table["parameter"]) == ["central", "gradient", "q"]
    assert u.Unit(table["unit"][1]) == u.dex / u.arcsec
    assert table["mean"][1] == pytest.approx(-0.2)
    wide = io.write_summary(tmp_path / "w.ecsv", summary, units=units, layout="wide")
    table = Table.read(wide)
    assert table["gradient__mean"].unit == u.dex / u.arcsec
    assert table["gradient__r_hat"].unit is None
    assert table["central__hdi_3%"].quantity[0] == 7.97 * u.dex
    with pytest.warns(UserWarning, match=r"no unit given for \['q'\]"):
        io.summary_table(summary, units={"central": "dex", "gradient": "dex/arcsec"})
    with pytest.raises(FileExistsError):
        io.write_summary(path, summary, units=units)
    assert sorted(os.listdir(tmp_path)) == ["s.ecsv", "w.ecsv"]


def test_galaxy_data_feeds_the_likelihood(tmp_path):
    import pymc as pm

    shape = (15, 17)
    wcs = make_wcs(shape, 0.2, rotation=30.0)
    z = np.full(shape, 8.4)
    z[0, 0] = np.nan
    err = np.full(shape, 0.05)
    path = write(tmp_path / "z.fits", hdu(z, wcs, "OH", "dex"), hdu(err, wcs, "OH_ERR", "dex"))
    data = io.read_maps(path, tracer="OH", tracer_error="OH_ERR")
    with pm.Model() as model:
        gradient = pm.Normal("gradient", 0.0, 1.0)
        light = pmt.Exponential(r_eff=1.0, amplitude=1.0, q=0.7, phi=data.phi_from_pa(30.0))
        disc = pmt.Component(light, pmt.LinearGradient(central=8.4, gradient=gradient))
        _, tracer = pmt.observe(disc, data.grid, pmt.GaussianPSF(0.5), tracer_scale="log")
        pmt.tracer_likelihood("OH", tracer, **data.tracer_data())
    np.testing.assert_array_equal(model.coords["OH_pixel"], np.flatnonzero(data.tracer_mask))


def test_plane_of_a_cube_and_a_float_mask(tmp_path):
    shape = (5, 6)
    wcs = make_wcs(shape, 0.5)
    cube = np.stack([np.full(shape, k, dtype=float) for k in range(3)])
    header = wcs.to_header()
    header["BUNIT"] = "km/s"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube, header, name="V")]).writeto(
        tmp_path / "cube.fits"
    )
    data = io.read_maps(tracer=(tmp_path / "cube.fits", "V", 2))
    np.testing.assert_array_equal(data.tracer_map, 2.0)
    assert data.sources["tracer"] == "cube.fits[V][2]"
    with pytest.raises(ValueError, match=r"has shape \(3, 5, 6\); a map must be 2-D"):
        io.read_maps(tracer=(tmp_path / "cube.fits", "V"))
    assert io.moffat_fwhm_at(
        6891 * u.AA, fwhm_ref=0.8, wavelength_ref=700 * u.nm, slope=-3e-5
    ) == pytest.approx(0.8 + 3e-5 * 109)


# ----------------------------------------------------------------------------- user findings
def test_ifu_flux_units_per_spaxel_are_understood(tmp_path):
    """User finding 7: MaNGA's BUNIT reads as flux per pixel, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unit = io.parse_unit("1E-17 erg/s/cm^2/spaxel", "HA")
        assert unit == 1e-17 * u.erg / u.s / u.cm**2 / u.pix
        assert io.parse_unit("1e-20 erg/s/cm2/Angstrom/spx", "HA") == (
            1e-20 * u.erg / u.s / u.cm**2 / u.AA / u.pix
        )
        shape = (6, 7)
        wcs = make_wcs(shape, 0.5)
        flux = np.full(shape, 3.0)
        path = write(
            tmp_path / "manga.fits",
            hdu(np.full(shape, 8.5), wcs, "OH", "dex"),
            hdu(flux, wcs, "HA", "1E-17 erg/s/cm^2/spaxel"),
        )
        data = io.read_maps(path, tracer="OH", image="HA")
    assert data.units["image"] == unit
    # a string that is no unit at all: one warning that names the map and the way out
    with pytest.warns(io.UnitWarning, match=r"HA\[x\]: BUNIT 'furlongs per glorp'.*tracer_unit="):
        io.parse_unit("furlongs per glorp", "HA[x]")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    """User finding 5: results are readable by collaborators (0644 under umask 022), as an
    ordinary open() would make them; a private umask keeps them private."""
    previous = os.umask(umask)
    try:
        model = np.ones((4, 5))
        maps = io.write_maps(tmp_path / "maps.fits", {"model": model, "data": model})
        summary = pd.DataFrame({"mean": [1.0], "sd": [0.1]}, index=["central"])
        table = io.write_summary(tmp_path / "summary.ecsv", summary, units={"central": "dex"})
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("reference")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    assert os.stat(tmp_path / "plain.txt").st_mode & 0o777 == expected
    for path in (maps, table):
        assert os.stat(path).st_mode & 0o777 == expected, path.name
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_map_options_are_one_object(tmp_path):
    """read_maps takes its reading options as keywords or as one MapOptions."""
    shape = (6, 7)
    wcs = make_wcs(shape, 0.5)
    err = np.full(shape, 0.04)  # a variance: sigma 0.2
    path = write(
        tmp_path / "v.fits", hdu(np.full(shape, 8.5), wcs, "OH", "dex"), hdu(err, wcs, "ERR")
    )
    options = io.MapOptions(error_type="variance", supersampling=3)
    a = io.read_maps(path, tracer="OH", tracer_error="ERR", options=options)
    b = io.read_maps(path, tracer="OH", tracer_error="ERR", error_type="variance", supersampling=3)
    np.testing.assert_allclose(a.tracer_error, 0.2)
    np.testing.assert_array_equal(a.tracer_error, b.tracer_error)
    assert a.grid.supersampling == b.grid.supersampling == 3
    # keywords override the object's fields
    c = io.read_maps(path, tracer="OH", tracer_error="ERR", options=options, supersampling=1)
    assert c.grid.supersampling == 1
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['snr_cut'\].*'snr_min'"):
        io.read_maps(path, tracer="OH", snr_cut=3)
    with pytest.raises(ValueError, match="error_type must be 'sigma' or 'variance' or 'ivar'"):
        io.MapOptions(error_type="sd")
