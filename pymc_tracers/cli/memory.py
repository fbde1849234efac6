"""The command line's memory check before rendering: one estimate, the one of
:func:`pymc_tracers.numerics.estimate_render_bytes`, in GiB (2^30 bytes)."""

from __future__ import annotations

from pymc_tracers.numerics import (
    RENDER_FIELD_COPIES,
    RENDER_KERNEL_COPIES,
)
from pymc_tracers.numerics import (
    estimate_render_bytes as estimate_samples_bytes,
)

__all__ = [
    "DEFAULT_MAX_MEMORY_GIB",
    "GIB",
    "PSF_TO_FIELD_WARNING",
    "RENDER_FIELD_COPIES",
    "RENDER_KERNEL_COPIES",
    "estimate_render_bytes",
    "psf_size_warning",
    "render_memory_problem",
]

#: Bytes per GiB.
GIB = 2**30
#: Default refusal threshold of the demo and of the survey's joint model, GiB.
DEFAULT_MAX_MEMORY_GIB = 4.0
#: Warn when the PSF stamp is this many times wider than the field.
PSF_TO_FIELD_WARNING = 4.0


def estimate_render_bytes(grid, psf, *, convolve_at="subpixel") -> int:
    """Approximate peak memory (bytes) of rendering and convolving one field.

    The profiles are rendered on the supersampled grid padded by the PSF half-width ``h``
    (in sub-pixels) on every side, and convolved there by FFT, so memory grows as
    ``(ny s + 2 h) (nx s + 2 h)``: quadratically in the PSF size. The count of samples and of
    stamp pixels goes to :func:`pymc_tracers.numerics.estimate_render_bytes` (``48`` float64
    copies of the padded field, ``8`` of the stamp); it leaves out the fixed cost of the
    imported libraries (~0.5 GB).

    Parameters
    ----------
    grid : PixelGrid
        Uses ``grid.shape``, ``grid.supersampling`` and ``grid.subpixel_scale``.
    psf : PSF
        Uses ``psf.half_width(grid.subpixel_scale)``.
    convolve_at : {"subpixel", "pixel"}
        As in :func:`pymc_tracers.observe`: ``"pixel"`` pads and convolves at the data-pixel
        scale (the stamp is still drawn on sub-pixels).

    Returns
    -------
    int
        Bytes.
    """
    if convolve_at not in ("subpixel", "pixel"):
        raise ValueError(f"unknown convolve_at {convolve_at!r}; use 'subpixel' or 'pixel'")
    ny, nx = grid.shape
    s = grid.supersampling
    h = int(psf.half_width(grid.subpixel_scale))
    if convolve_at == "subpixel":
        samples = (ny * s + 2 * h) * (nx * s + 2 * h)
    else:
        pad = h // s
        samples = (ny + 2 * pad) * (nx + 2 * pad) + ny * nx * s * s
    return estimate_samples_bytes(samples, 1, (2 * h + 1) ** 2)


def render_memory_problem(grid, psf, max_bytes) -> str | None:
    """A message naming the levers when rendering would need more than ``max_bytes``."""
    needed = estimate_render_bytes(grid, psf)
    if needed <= max_bytes:
        return None
    h = psf.half_width(grid.subpixel_scale)
    return (
        f"rendering this field would need about {needed / GIB:.1f} GiB (limit "
        f"{max_bytes / GIB:.1f} GiB): the {grid.shape[0]}x{grid.shape[1]}-pixel field is "
        f"supersampled {grid.supersampling}x and padded by the PSF half-width, {h} sub-pixels "
        f"({h * grid.subpixel_scale:.1f} arcsec), on every side. Levers: a lower supersampling "
        "(PixelGrid(..., supersampling=1); demo: --supersampling 1), observe(..., "
        'convolve_at="pixel") to convolve at the data-pixel scale, or a smaller PSF stamp '
        "(GaussianPSF(fwhm, radius=<arcsec>), a cropped PixelPSF); or raise the limit "
        "(demo: --max-memory GiB)"
    )


def psf_size_warning(grid, psf) -> str | None:
    """A warning when the PSF stamp is much wider than the field, else None."""
    stamp = 2 * psf.half_width(grid.subpixel_scale) + 1
    field = max(grid.shape) * grid.supersampling
    if stamp <= PSF_TO_FIELD_WARNING * field:
        return None
    scale = grid.subpixel_scale
    return (
        f"the PSF stamp ({stamp * scale:.1f} arcsec across) is {stamp / field:.0f}x wider than "
        f"the field ({field * scale:.1f} arcsec): nearly all the light is smeared over the "
        "field, the maps are almost flat and the gradient is barely constrained"
    )
