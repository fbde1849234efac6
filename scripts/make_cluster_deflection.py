"""Build the cluster-like deflection field of ``notebooks/lensed_galaxy.ipynb`` as FITS maps.

A Frontier-Fields-like product: alpha_x and alpha_y (arcsec, along the map's +x and +y pixel
axes) for ``D_ls / D_s = 1``, on a 0.05" grid with a TAN WCS (north up, east left), covering a
12" x 12" patch of the cluster's field. The mass model, in arcsec relative to the patch centre:

* the cluster halo: NFW with ``Rs = 25"`` and ``alpha_Rs = 14"``, centred 16" to the lower
  left of the patch, so its critical curve passes through the patch;
* a bright cluster member: NIE with ``theta_E = 0.6"``, ``core = 0.05"``, ``q = 0.7``, 2.3"
  from the patch centre, which bends the arc;
* a faint member: SIS with ``theta_E = 0.25"``.

Usage
-----
    python scripts/make_cluster_deflection.py [--output-dir notebooks/data]

The maps are deterministic: rerunning reproduces them exactly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from pymc_tracers import lensing

#: Sky position of the patch centre (degrees): an arbitrary, Abell-2744-like field.
CENTRE = (3.5875, -30.3975)
PIXEL = 0.05  # arcsec
SIZE = 241  # pixels: 12" across


def cluster():
    """The mass model (a sum of pmt.lensing models, deflection for D_ls/D_s = 1)."""
    return (
        lensing.NFW(Rs=25.0, alpha_Rs=14.0, x0=-11.3, y0=-11.3)
        + lensing.NIE(theta_E=0.6, core=0.05, q=0.7, phi=0.9, x0=1.9, y0=1.3)
        + lensing.SIS(theta_E=0.25, x0=-1.6, y0=2.2)
    )


def patch_wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(CENTRE)
    wcs.wcs.crpix = [(SIZE + 1) / 2, (SIZE + 1) / 2]
    wcs.wcs.cdelt = [-PIXEL / 3600, PIXEL / 3600]
    return wcs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=Path(__file__).parents[1] / "notebooks" / "data")
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    axis = (np.arange(SIZE) - (SIZE - 1) / 2) * PIXEL
    x, y = np.meshgrid(axis, axis)
    alpha_x, alpha_y = cluster().deflection_numpy(x, y)
    table = lensing.DeflectionMap(alpha_x, alpha_y, x=axis, y=axis)
    table.write_fits(out / "cluster_alpha_x.fits", out / "cluster_alpha_y.fits", patch_wcs(),
                     overwrite=True)  # fmt: skip
    print(f"wrote {out / 'cluster_alpha_x.fits'} and {out / 'cluster_alpha_y.fits'}")


if __name__ == "__main__":
    main()
