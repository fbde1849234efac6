"""read_kinematic_maps on MaNGA-DAP-style and MUSE-style files written with astropy."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pymc_tracers.io.kinematic_maps import read_kinematic_maps


def _wcs_header(shape, arcsec):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-arcsec / 3600, arcsec / 3600]
    wcs.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    wcs.wcs.crval = [150.0, 2.0]
    return wcs.to_header()


def _manga(path, rng, shape=(8, 9)):
    lines = ["OII-3727", "Hb-4862", "Ha-6564"]
    header = _wcs_header(shape, 0.5)
    for i, name in enumerate(lines, start=1):
        header[f"C{i}"] = name
    cube = rng.normal(0, 100, (3, *shape))
    ivar = np.full((3, *shape), 1 / 4.0)
    ivar[2, 0, 0] = 0.0  # unusable
    mask = np.zeros((3, *shape), dtype=np.int32)
    mask[2, 1, 1] = 2**30  # DONOTUSE
    inst = np.full((3, *shape), 30.0)
    inst[2, 2, 2] = np.nan
    binid = np.tile(np.arange(np.prod(shape)).reshape(shape), (5, 1, 1))
    hdus = [fits.PrimaryHDU()]
    for name, data in [
        ("EMLINE_GVEL", cube),
        ("EMLINE_GVEL_IVAR", ivar),
        ("EMLINE_GVEL_MASK", mask),
        ("EMLINE_GSIGMA", np.abs(cube) + 50),
        ("EMLINE_GSIGMA_IVAR", ivar * 4),
        ("EMLINE_GSIGMA_MASK", mask),
        ("EMLINE_INSTSIGMA", inst),
        ("BINID", binid),
    ]:
        hdus.append(fits.ImageHDU(data, header=header, name=name))
    fits.HDUList(hdus).writeto(path)
    return cube


def test_manga_maps(tmp_path, rng):
    path = tmp_path / "manga-maps.fits"
    cube = _manga(path, rng)
    maps = read_kinematic_maps(path)
    assert maps.grid.shape == (8, 9) and maps.grid.pixel_scale == pytest.approx(0.5)
    assert np.isnan(maps.velocity[0, 0]) and np.isnan(maps.velocity_sigma[0, 0])  # ivar 0
    assert np.isnan(maps.velocity[1, 1])  # masked
    np.testing.assert_allclose(maps.velocity[3, 4], cube[2, 3, 4])  # the H-alpha plane
    np.testing.assert_allclose(maps.velocity_sigma[3, 4], 2.0)
    np.testing.assert_allclose(maps.dispersion_sigma[3, 4], 1.0)
    assert maps.lsf_sigma[2, 2] == 30.0 and np.isfinite(maps.lsf_sigma).all()
    assert maps.bin_map.shape == (8, 9) and maps.flux is None
    other = read_kinematic_maps(path, channel="Hb-4862")
    np.testing.assert_allclose(other.velocity[0, 0], cube[1, 0, 0])
    with pytest.raises(ValueError, match="no channel 'NII-6585'"):
        read_kinematic_maps(path, channel="NII-6585")


def test_muse_style_maps(tmp_path):
    shape = (6, 7)
    header = _wcs_header(shape, 0.2)
    v = np.arange(42.0).reshape(shape)
    err = np.full(shape, 3.0)
    err[0, 0] = 0.0
    hdus = [fits.PrimaryHDU()] + [
        fits.ImageHDU(data, header=header, name=name)
        for name, data in [("V", v), ("V_ERR", err), ("SIGMA", v + 40), ("SIGMA_ERR", err)]
    ]
    path = tmp_path / "muse.fits"
    fits.HDUList(hdus).writeto(path)
    maps = read_kinematic_maps(path, velocity="V", dispersion="SIGMA", flux=None)
    assert maps.grid.pixel_scale == pytest.approx(0.2)
    assert np.isnan(maps.velocity[0, 0]) and maps.velocity[1, 1] == 8.0
    assert maps.lsf_sigma is None and maps.bin_map is None
    with pytest.raises(ValueError, match="has no extension 'VEL'"):
        read_kinematic_maps(path, velocity="VEL")
