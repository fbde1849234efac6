"""Independent numpy references for the kinematic forward model (tests only).

Fields are rendered on the padded sub-pixel grid with numpy, convolved with
``scipy.signal.fftconvolve(..., mode="valid")`` and summed over sub-pixels: no code of the
package's numerics or convolution ops is used.
"""

import numpy as np
from scipy import signal

from pymc_tracers.kinematics.cube_maps import moment_maps
from pymc_tracers.kinematics.cube_simulation import line_cube


def subpixel_points(grid, psf):
    pad = psf.half_width(grid.subpixel_scale)
    return grid.supersampled_coordinates(pad), psf.kernel(grid.subpixel_scale)


def bin_subpixels(field, grid):
    s = grid.supersampling
    return field.reshape(grid.ny, s, grid.nx, s).sum(axis=(1, 3))


def convolve_bin(field, kernel, grid):
    return bin_subpixels(signal.fftconvolve(field, kernel, mode="valid"), grid)


def moments_numpy(light, velocity, dispersion, kernel, grid):
    """Flux (sum over sub-pixels), velocity and dispersion of each data pixel from the moment
    sums, computed directly (float64)."""
    flux = convolve_bin(light, kernel, grid)
    first = convolve_bin(light * velocity, kernel, grid)
    second = convolve_bin(light * (velocity**2 + dispersion**2), kernel, grid)
    mean = first / flux
    return flux, mean, np.sqrt(second / flux - mean**2)


def cube_moments(light, velocity, dispersion, kernel, grid, channel_width):
    """Moments of a line cube: a Gaussian line of centre ``velocity`` and width ``dispersion``
    per sub-pixel, sampled every ``channel_width`` km/s, each channel PSF-convolved and binned
    (``pmt.kinematics.cube_simulation.line_cube``: scipy's ``fftconvolve`` per channel, no
    code of the moment path), reduced by ``moment_maps``.

    The channel sums of a Gaussian sampled finer than a quarter of its width equal its
    integrals to ~exp(-2 pi^2 sigma^2 / dv^2) relative (Poisson summation): round-off.
    Returns the flux summed over sub-pixels (without the sub-pixel area), the velocity and
    dispersion maps and the number of channels.
    """
    low = (velocity - 12 * dispersion).min()
    high = (velocity + 12 * dispersion).max()
    channels = np.arange(low, high + channel_width, channel_width)
    cube = line_cube(light, velocity, dispersion, kernel=kernel, grid=grid, velocities=channels)
    maps = moment_maps(cube, channels)
    flux = maps.flux / grid.subpixel_scale**2
    return flux, maps.velocity, maps.dispersion, channels.size
