"""Build the approximate JWST/NIRISS F150W PSF shipped with ``pymc_tracers``.

The PSF is computed with ``poppy`` alone (no ``stpsf``/``webbpsf`` data files are needed), so it is
only an approximation of the real instrument PSF, meant for examples, documentation and tests.
Anyone with ``stpsf`` and its data installed should use
``pymc_tracers.psf.PixelPSF.from_stpsf("NIRISS", "F150W")`` instead.

Model
-----
* Pupil: a JWST-like primary made of 18 hexagonal segments (two rings around an absent central
  segment), 1.32 m flat to flat with 7 mm gaps (about 6.6 m tip to tip), times a circular
  secondary-mirror obscuration of 0.74 m diameter held by three 0.10 m wide struts (one along
  +Y, two 30 deg either side of -Y, parallel to segment edges as in JWST). The struts start at
  the centre rather than at their true attachment points, and the NIRISS CLEARP pupil mask is not
  modelled, so the real JWST pupil is only approximated.
* Band: F150W approximated as a flat (top-hat) spectrum sampled at 9 equally spaced wavelengths
  from 1.33 to 1.67 micron, each with equal weight.
* Optics: diffraction-limited, i.e. no wavefront error, no optical distortion, no detector
  charge diffusion/IPC and no jitter. The real PSF is therefore a little broader, with a lower
  peak and stronger wings.
* Sampling: NIRISS detector pixels of 0.0656 arcsec, oversampled 5 times (0.01312 arcsec per PSF
  pixel), on an odd 175 x 175 grid (35 detector pixels, about 2.3 arcsec) with the optical axis at
  the centre of the middle pixel. Normalised to unit sum and written as float32.

Usage
-----
    python scripts/make_niriss_psf.py [--output PATH]

The computation is deterministic (no random wavefront errors), so re-running it reproduces the
file up to floating-point round-off.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import astropy.units as u
import numpy as np
import poppy
from astropy.io import fits

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1] / "pymc_tracers" / "data" / "niriss_f150w_psf.fits"
)

DETECTOR_SCALE = 0.0656  # arcsec per NIRISS detector pixel
OVERSAMPLE = 5
FOV_DET_PIXELS = 35  # odd, so that the oversampled grid (35 * 5 = 175) is odd too
WAVELENGTHS_UM = np.linspace(1.33, 1.67, 9)  # F150W approximated by a top hat
PUPIL_NPIX = 1024

SEGMENT_FLAT_TO_FLAT = 1.32  # m
SEGMENT_GAP = 0.007  # m
SECONDARY_DIAMETER = 0.74  # m
STRUT_WIDTH = 0.10  # m
# Strut directions, counterclockwise from +Y: one vertical strut and two lower struts parallel
# to segment edges (as in JWST, whose lower-strut diffraction spikes overlap the hexagon spikes).
STRUT_ANGLES_DEG = (0.0, 150.0, 210.0)


def build_optical_system() -> poppy.OpticalSystem:
    """The JWST-like pupil followed by an oversampled NIRISS-like detector plane."""
    osys = poppy.OpticalSystem(name="Approximate JWST/NIRISS", oversample=2, npix=PUPIL_NPIX)
    primary = poppy.MultiHexagonAperture(
        name="JWST-like 18-segment primary",
        flattoflat=SEGMENT_FLAT_TO_FLAT * u.m,
        gap=SEGMENT_GAP * u.m,
        rings=2,
        center=False,
    )
    secondary = poppy.AsymmetricSecondaryObscuration(
        name="Secondary mirror and struts",
        secondary_radius=SECONDARY_DIAMETER / 2 * u.m,
        support_angle=STRUT_ANGLES_DEG,
        support_width=STRUT_WIDTH * u.m,
    )
    osys.add_pupil(
        poppy.CompoundAnalyticOptic(opticslist=[primary, secondary], name="JWST-like pupil")
    )
    osys.add_detector(
        pixelscale=DETECTOR_SCALE * u.arcsec / u.pixel,
        fov_pixels=FOV_DET_PIXELS,
        oversample=OVERSAMPLE,
    )
    return osys


def compute_psf() -> np.ndarray:
    """The band-averaged, unit-sum PSF image on the oversampled grid (float64)."""
    osys = build_optical_system()
    wavelengths = WAVELENGTHS_UM * 1e-6
    weights = np.full(wavelengths.size, 1.0 / wavelengths.size)
    hdul = osys.calc_psf(wavelength=wavelengths, weight=weights, normalize="first")
    image = np.asarray(hdul[0].data, dtype=float)
    image = np.clip(image, 0.0, None)
    # The pupil is symmetric under x -> -x, so average with the mirror image to remove any
    # numerical asymmetry; this keeps the centroid on the middle pixel.
    image = 0.5 * (image + image[:, ::-1])
    return image / image.sum()


def check_psf(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check size, centring and normalisation; return (peak offset, centroid offset) in pixels."""
    ny, nx = image.shape
    if ny != nx or ny % 2 == 0:
        raise RuntimeError(f"PSF grid must be square and odd; got {image.shape}")
    h = ny // 2
    peak = np.array(np.unravel_index(np.argmax(image), image.shape)) - h
    idx = np.arange(ny) - h
    total = image.sum()
    centroid = np.array([(image * idx[:, None]).sum(), (image * idx[None, :]).sum()]) / total
    if np.any(peak != 0):
        raise RuntimeError(f"PSF peak is at offset {tuple(peak)} from the centre pixel")
    if np.max(np.abs(centroid)) > 0.1:
        raise RuntimeError(f"PSF centroid is at offset {tuple(centroid)} pixels (> 0.1)")
    if not np.isclose(total, 1.0, rtol=1e-5):
        raise RuntimeError(f"PSF sum is {total}, expected 1")
    return peak, centroid


def write_fits(image: np.ndarray, path: Path) -> None:
    """Write the PSF as a float32 primary HDU with stpsf-like header keywords."""
    data = image.astype(np.float32)
    data /= data.sum(dtype=np.float64)
    hdu = fits.PrimaryHDU(data)
    hdr = hdu.header
    hdr["PIXELSCL"] = (round(DETECTOR_SCALE / OVERSAMPLE, 12), "[arcsec/pix] PSF pixel scale")
    hdr["OVERSAMP"] = (OVERSAMPLE, "Oversampling relative to detector pixels")
    hdr["DET_SAMP"] = (OVERSAMPLE, "Oversampling relative to detector pixels")
    hdr["DETSCALE"] = (DETECTOR_SCALE, "[arcsec/pix] Detector pixel scale")
    hdr["FOV"] = (round(image.shape[0] * DETECTOR_SCALE / OVERSAMPLE, 12), "[arcsec] Field of view")
    hdr["INSTRUME"] = ("NIRISS", "Instrument (approximated)")
    hdr["FILTER"] = ("F150W", "Filter (approximated by a top hat)")
    hdr["TELESCOP"] = ("JWST", "Telescope (approximated)")
    hdr["NWAVES"] = (WAVELENGTHS_UM.size, "Number of wavelengths, equal weights")
    hdr["WAVEMIN"] = (round(WAVELENGTHS_UM[0] * 1e-6, 12), "[m] Shortest wavelength")
    hdr["WAVEMAX"] = (round(WAVELENGTHS_UM[-1] * 1e-6, 12), "[m] Longest wavelength")
    hdr["WAVELEN"] = (round(WAVELENGTHS_UM.mean() * 1e-6, 12), "[m] Mean wavelength")
    hdr["NSEGS"] = (18, "Hexagonal primary segments")
    hdr["SEGF2F"] = (SEGMENT_FLAT_TO_FLAT, "[m] Segment flat-to-flat size")
    hdr["SEGGAP"] = (SEGMENT_GAP, "[m] Gap between segments")
    hdr["SECDIAM"] = (SECONDARY_DIAMETER, "[m] Secondary obscuration diameter")
    hdr["STRUTW"] = (STRUT_WIDTH, "[m] Strut width")
    hdr["NSTRUTS"] = (len(STRUT_ANGLES_DEG), "Number of struts")
    hdr["NORMALIZ"] = ("sum=1", "PSF normalisation")
    hdr["CREATOR"] = (f"poppy {poppy.__version__}", "Software used")
    hdr["COMMENT"] = "Approximate JWST/NIRISS F150W PSF built with poppy alone by"
    hdr["COMMENT"] = "scripts/make_niriss_psf.py of pymc_tracers, for examples and tests."
    hdr["HISTORY"] = "Approximate poppy-built PSF: 18-segment hexagonal JWST-like"
    hdr["HISTORY"] = "pupil with secondary obscuration and 3 struts, diffraction-limited"
    hdr["HISTORY"] = "(no WFE, distortion, charge diffusion or jitter), flat spectrum"
    hdr["HISTORY"] = "over 1.33-1.67 micron. For examples and tests only; users with"
    hdr["HISTORY"] = "stpsf data should use the real PSF (PixelPSF.from_stpsf)."
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=True, checksum=False)


def fwhm_arcsec(image: np.ndarray, pixel_scale: float) -> tuple[float, float, float]:
    """FWHM in arcsec: (mean, minimum, maximum) over 36 cuts through the centre.

    Each cut (every 5 degrees) is sampled with cubic interpolation at 0.01 pixel steps and its
    half-maximum crossings on both sides of the peak are located.
    """
    from scipy.ndimage import map_coordinates

    h = image.shape[0] // 2
    half = image[h, h] / 2
    t = np.arange(0.0, 10.0, 0.01)
    widths = []
    for angle in np.deg2rad(np.arange(0.0, 180.0, 5.0)):
        sides = []
        for sign in (1.0, -1.0):
            coords = np.array([h + sign * t * np.sin(angle), h + sign * t * np.cos(angle)])
            prof = map_coordinates(image, coords, order=3)
            i = np.argmax(prof < half)
            sides.append(np.interp(half, [prof[i], prof[i - 1]], [t[i], t[i - 1]]))
        widths.append(sum(sides) * pixel_scale)
    widths = np.array(widths)
    return float(widths.mean()), float(widths.min()), float(widths.max())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"FITS file to write (default: {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)
    image = compute_psf()
    peak, centroid = check_psf(image)
    write_fits(image, args.output)
    scale = DETECTOR_SCALE / OVERSAMPLE
    fwhm = fwhm_arcsec(image, scale)
    print(
        f"wrote {args.output}: {image.shape[0]}x{image.shape[1]} px at {scale:.5f} arcsec/px "
        f"({image.shape[0] * scale:.3f} arcsec), peak offset {tuple(int(p) for p in peak)}, "
        f"centroid offset ({centroid[0]:+.4f}, {centroid[1]:+.4f}) px, "
        f"FWHM (mean, min, max over angle) = ({fwhm[0]:.4f}, {fwhm[1]:.4f}, {fwhm[2]:.4f}) arcsec, "
        f"{args.output.stat().st_size / 1024:.0f} kB"
    )


if __name__ == "__main__":
    main()
