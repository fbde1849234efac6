"""Moment maps against KinMS (Davis et al. 2013), an independent cloudlet code: a PSF-smeared,
pixelised line cube of a thin rotating disc, reduced to its moments, as a user would."""

import numpy as np
import pytest

import pymc_tracers as pmt

kinms = pytest.importorskip("kinms")

CELL, N = 0.2, 41  # arcsec, pixels
R_D, V_MAX, R_T, SIGMA, INCLINATION, PA, FWHM = 1.0, 200.0, 0.6, 30.0, 60.0, 30.0, 1.0


def kinms_moments():
    radii = np.arange(0.0, 12.0, 0.01)
    model = kinms.KinMS(
        CELL * N,
        CELL * N,
        1200.0,
        CELL,
        4.0,
        [FWHM, FWHM, 0.0],
        nSamps=int(1e6),
        seed=[1, 2, 3, 4],
        fixSeed=True,
    )
    cube = model.model_cube(
        INCLINATION,
        PA,
        gasSigma=SIGMA,
        sbProf=np.exp(-radii / R_D),
        sbRad=radii,
        velRad=radii,
        velProf=V_MAX * 2 / np.pi * np.arctan(radii / R_T),
        intFlux=1.0,
    )
    velocities = (np.arange(cube.shape[2]) - cube.shape[2] // 2) * 4.0  # channel centres, km/s
    flux = cube.sum(axis=2)
    velocity = (cube * velocities).sum(axis=2) / flux
    dispersion = np.sqrt((cube * (velocities - velocity[..., None]) ** 2).sum(axis=2) / flux)
    # KinMS arrays are (x, y, v); ours are (y, x)
    return flux.T, velocity.T, dispersion.T


def test_moments_match_a_kinms_cube():
    flux, velocity, dispersion = kinms_moments()
    grid = pmt.PixelGrid((N, N), pixel_scale=CELL, supersampling=3)
    # the two codes centre their pixel grids differently: take the centre from the flux map
    x, y = grid.x, grid.y
    x0, y0 = (flux * x).sum() / flux.sum(), (flux * y).sum() / flux.sum()
    # KinMS's position angle puts the receding half along +y at PA 0 and turns it
    # counter-clockwise on our (x, y) axes: our phi (from +x) is pi/2 + PA
    phi = np.pi / 2 + np.deg2rad(PA)
    inclination = np.deg2rad(INCLINATION)
    light = pmt.Exponential(x0=x0, y0=y0, r_eff=1.678347 * R_D, q=np.cos(inclination), phi=phi)
    geometry = pmt.DiscGeometry(x0=x0, y0=y0, phi=phi, inclination=inclination)
    component = pmt.KinematicComponent(
        light,
        pmt.DiscVelocity(geometry, pmt.ArctanCurve(v_max=V_MAX, r_t=R_T), v_sys=0.0),
        pmt.DiscDispersion(geometry, SIGMA),
    )
    ours = pmt.evaluate(tuple(pmt.observe_kinematics(component, grid, pmt.GaussianPSF(FWHM))))
    # KinMS drops cloudlets outside the cube before convolving; we render the field padded by
    # the PSF, so light scatters in from outside: compare away from the edges
    inner = np.zeros(flux.shape, bool)
    inner[6:-6, 6:-6] = True
    bright = inner & (flux > 0.02 * flux.max())
    np.testing.assert_allclose(
        ours[0][bright] / ours[0][inner].sum(), flux[bright] / flux[inner].sum(), rtol=0.05
    )
    assert np.sqrt(np.mean((ours[1] - velocity)[bright] ** 2)) < 0.5  # km/s; |v| up to 155
    assert np.sqrt(np.mean((ours[2] - dispersion)[bright] ** 2)) < 0.5  # km/s
    # beam smearing: the centre's observed dispersion is far above the intrinsic 30 km/s
    centre = np.unravel_index(np.argmax(flux), flux.shape)
    assert dispersion[centre] > 1.5 * SIGMA
    assert ours[2][centre] == pytest.approx(dispersion[centre], abs=1.0)
