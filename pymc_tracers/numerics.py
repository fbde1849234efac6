"""Image numerics: where profiles are sampled, and how samples become PSF-convolved pixels.

A numerics object is built once from a :class:`~pymc_tracers.grid.PixelGrid` and one PSF (or
one PSF per galaxy of a population). It knows

* its **sample points** (:attr:`Numerics.point_sets`): one or more sets of ``(x, y)`` positions
  in arcsec on which profiles are rendered, padded so that light just outside the field
  scatters in;
* how to turn fields rendered on those points into data pixels
  (:meth:`Numerics.convolve_and_bin`): PSF convolution (valid mode, nothing wraps) and the sum
  over sub-pixels;
* the unweighted mean of a field over each data pixel (:meth:`Numerics.pixel_mean`), and the
  factor that turns a convolved sum into flux per pixel (:attr:`Numerics.flux_scale`).

Fields may carry any leading axes. **The galaxy axis is the third from last**:
``(..., N, H, W)``; a PSF per galaxy is a kernel stack ``(N, k, k)`` that broadcasts against it.
Every method takes numpy arrays (basis maps, computed once) or PyTensor tensors (the model).

Two numerics:

* :class:`SubpixelNumerics` (exact): render on the ``s x s`` sub-pixel grid, convolve there with
  the PSF integrated over sub-pixels, sum the sub-pixels.
* :class:`PixelNumerics`: integrate profiles over each data pixel on its ``s x s`` sub-pixels,
  sample the padding ring at pixel centres, and convolve the pixel means at the data-pixel scale
  with the PSF *sampled* at pixel offsets (the pixel box is already applied once by the
  averaging). ``s^2`` times smaller FFTs; the error is second order in pixel / PSF width
  (docs/forward_model.md).
"""

from __future__ import annotations

import copy
import math
import os
import warnings

import numpy as np
import pytensor.tensor as pt

from pymc_tracers.convolution import (
    FixedKernelConvolution,
    HeldKernelConvolution,
    convolve_valid,
)
from pymc_tracers.grid import PixelGrid
from pymc_tracers.psf import PSF

__all__ = [
    "Numerics",
    "SubpixelNumerics",
    "PixelNumerics",
    "make_numerics",
    "kernel_for",
    "estimate_render_bytes",
    "MAX_RENDER_BYTES",
    "CONVOLVE_AT",
]

CONVOLVE_AT = ("subpixel", "pixel")

#: Largest estimated working memory of one forward-model evaluation that is built without
#: complaint (bytes); override with the environment variable ``PYMC_TRACERS_MAX_RENDER_GB``.
MAX_RENDER_BYTES = int(float(os.environ.get("PYMC_TRACERS_MAX_RENDER_GB", "4")) * 2**30)

#: float64 copies of the rendered field in one evaluation and its gradient (light, light x
#: tracer, unweighted tracer, FFT buffers, adjoints, compiled-graph temporaries), and of the PSF
#: stamp (kernel, its transforms). Calibrated with tracemalloc on a 41x41 field padded for an
#: 8" PSF (tests/test_cli.py): the estimate bounds the measured peak within a factor 2 (44
#: copies were measured; 48 leaves room for allocations that vary with library versions).
RENDER_FIELD_COPIES = 48
RENDER_KERNEL_COPIES = 8


def estimate_render_bytes(n_samples: int, n_galaxies: int = 1, kernel_pixels: int = 0) -> int:
    """Working memory (bytes) of one evaluation rendering ``n_samples`` points per galaxy."""
    per_galaxy = RENDER_FIELD_COPIES * n_samples + RENDER_KERNEL_COPIES * kernel_pixels
    return int(8 * per_galaxy * max(n_galaxies, 1))


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


def _stack_kernels(kernels, half):
    """Zero-pad kernels (numpy or tensors) to ``2 half + 1`` and stack them: ``(N, k, k)``."""
    size = 2 * half + 1
    padded = []
    for kernel in kernels:
        margin = (size - kernel.shape[-1]) // 2
        if _is_numpy(kernel):
            padded.append(np.pad(kernel, margin))
        else:
            zeros = pt.zeros((size, size), dtype=kernel.dtype)
            padded.append(
                pt.set_subtensor(zeros[margin : size - margin, margin : size - margin], kernel)
            )
    if all(_is_numpy(k) for k in padded):
        return np.stack(padded)
    return pt.stack([pt.as_tensor_variable(k) for k in padded])


class Numerics:
    """Base class; see the module docstring.

    Attributes
    ----------
    grid : PixelGrid
    psfs : list of PSF
        One PSF for all galaxies, or one per galaxy.
    n_psfs : int or None
        ``None`` for a single PSF, else the number of galaxies it was built for.
    point_sets : list of (ndarray, ndarray)
        Sample positions (arcsec) on which profiles are rendered.
    flux_scale : float
        Multiplies a convolved, binned light sum to give flux per data pixel.
    is_fixed : bool
        True when every PSF is fixed (the kernels are numpy arrays).
    """

    #: name for messages and :class:`~pymc_tracers.forward.Observation`
    name = ""
    #: the lens mapping the sample points to the source plane (None: unlensed), see
    #: :func:`make_numerics`
    lens = None

    @property
    def image_point_sets(self):
        """The image-plane sample points (arcsec); :attr:`point_sets` are where profiles are
        evaluated, the same points unless a lens maps them to the source plane."""
        return getattr(self, "_image_point_sets", None) or self.point_sets

    def __init__(self, grid: PixelGrid, psfs, *, n_psfs=None):
        self.grid = grid
        self.psfs = list(psfs)
        self.n_psfs = n_psfs
        self.is_fixed = all(psf.is_fixed for psf in self.psfs)

    #: a tensor holding the fixed kernel as model data (see :meth:`hold_kernel`), or None
    held_kernel = None

    def hold_kernel(self, kernel_data):
        """Convolve tensors with ``kernel_data`` (model data of the fixed kernel's shape,
        e.g. a ``pm.Data``) instead of a constant, so the built graph can take another PSF of
        the same stamp size (:func:`kernel_for`); numpy fields still use the constant."""
        if not self.is_fixed:
            raise ValueError("only a fixed PSF can be held as data; this one has free parameters")
        self.held_kernel = pt.specify_shape(kernel_data, self.kernel.shape)

    def for_galaxies(self, chosen: slice) -> Numerics:
        """These numerics for the galaxies ``chosen`` of a batch (their kernels), to convolve
        and bin numpy fields of those galaxies only: a large batch's basis is built in chunks
        of galaxies. Numerics with one PSF for all galaxies are returned as they are."""
        if not self.is_fixed:
            raise ValueError("only numerics with fixed PSFs convolve numpy fields")
        if self.n_psfs is None:
            return self
        part = copy.copy(self)
        part.kernel = self.kernel[chosen]
        part.psfs = self.psfs[chosen]
        part.n_psfs = part.n_galaxies = part.kernel.shape[0]
        part._fixed_op = None  # its cached kernel transforms are those of every galaxy
        return part

    # subclasses set: point_sets, flux_scale, kernel (numpy stack or tensor)
    def convolve_and_bin(self, fields):
        """PSF-convolve fields rendered on :attr:`point_sets` and bin them to data pixels.

        Parameters
        ----------
        fields : list
            One array or tensor per point set, each ``(..., H_i, W_i)``.

        Returns
        -------
        array or tensor, shape ``(..., ny, nx)``
        """
        raise NotImplementedError

    def pixel_mean(self, fields):
        """Unweighted mean of fields over each data pixel's sub-pixels: ``(..., ny, nx)``."""
        raise NotImplementedError

    def _convolve(self, images):
        kernel = self.kernel
        if not _is_numpy(images):
            images = pt.as_tensor_variable(images)
        if kernel.ndim == 3:  # one PSF per galaxy
            images = _with_galaxy_axis(images, self.n_psfs)
        if not _is_numpy(kernel):
            return convolve_valid(images, kernel)
        if self.held_kernel is not None and not _is_numpy(images):
            return HeldKernelConvolution()(images, self.held_kernel)
        if getattr(self, "_fixed_op", None) is None:  # one op: the kernel's FFTs are cached in it
            self._fixed_op = FixedKernelConvolution(kernel)
        if _is_numpy(images):
            return self._fixed_op.convolve(images)
        return self._fixed_op(images)

    def check_render_size(self):
        """Refuse to build a graph that renders and convolves every evaluation (the full path)
        when its estimated working memory exceeds :data:`MAX_RENDER_BYTES`.

        Only the full path is checked: the linear path renders once, in numpy, convolving
        large batches in chunks (:data:`~pymc_tracers.convolution.fft.CONVOLVE_CHUNK_BYTES`).
        """
        n_galaxies = self.n_galaxies
        samples = sum(x.size for x, _ in self.image_point_sets)
        stamp = (2 * round(self.half_width_arcsec / self.grid.subpixel_scale) + 1) ** 2
        needed = estimate_render_bytes(samples, n_galaxies or 1, stamp)
        if needed > MAX_RENDER_BYTES:
            shape = " + ".join(f"{x.shape[0]}x{x.shape[1]}" for x, _ in self.image_point_sets)
            raise ValueError(
                f"this forward model would render {shape} samples per galaxy"
                + (f" for {n_galaxies} galaxies" if n_galaxies else "")
                + f", about {needed / 2**30:.1f} GiB of working memory (limit "
                f"{MAX_RENDER_BYTES / 2**30:.1f} GiB). Lower it with convolve_at='pixel' (s^2 "
                "smaller FFTs), a lower grid supersampling, or a smaller PSF stamp (radius=...); "
                "or raise the limit with PYMC_TRACERS_MAX_RENDER_GB"
            )

    def _check_psf_size(self):
        field = max(self.grid.shape) * self.grid.pixel_scale
        psf_size = 2 * self.half_width_arcsec
        if psf_size > 4 * field:
            warnings.warn(
                f"the PSF stamp ({psf_size:.3g} arcsec across) is more than 4x the field "
                f"({field:.3g} arcsec): nearly all the rendering is padding. Check the PSF "
                "width and pixel scale units (arcsec)",
                UserWarning,
                stacklevel=4,
            )


def _with_galaxy_axis(images, n):
    """Give images a galaxy axis of length ``n`` at position -3 (kernel stacks need it)."""
    lib = np if _is_numpy(images) else pt
    if images.ndim < 3:
        images = images[None]
    if images.shape[-3] == n:
        return images
    return lib.broadcast_to(images, (*images.shape[:-3], n, *images.shape[-2:]))


class SubpixelNumerics(Numerics):
    """Exact numerics: render, convolve and bin on the supersampled grid (see module doc)."""

    name = "subpixel"

    def __init__(self, grid, psfs, *, n_psfs=None, n_galaxies=None):
        super().__init__(grid, psfs, n_psfs=n_psfs)
        scale = grid.subpixel_scale
        self.pad = max(psf.half_width(scale) for psf in self.psfs)
        self.half_width_arcsec = self.pad * scale
        render = grid.render_grid(self.pad)
        self.point_sets = [(render.x, render.y)]
        self.flux_scale = scale**2
        self.n_galaxies = n_galaxies or n_psfs
        self._check_psf_size()
        kernels = [
            psf.kernel(scale) if psf.is_fixed else psf.kernel_tensor(scale) for psf in self.psfs
        ]
        self.kernel = kernels[0] if n_psfs is None else _stack_kernels(kernels, self.pad)

    def convolve_and_bin(self, fields):
        (field,) = fields
        return self.grid.bin(self._convolve(field))

    def pixel_mean(self, fields):
        (field,) = fields
        s, pad = self.grid.supersampling, self.pad
        inner = field[..., pad : pad + self.grid.ny * s, pad : pad + self.grid.nx * s]
        return self.grid.bin(inner) / s**2


class PixelNumerics(Numerics):
    """Supersampled rendering, convolution at the data-pixel scale (see module doc)."""

    name = "pixel"

    def __init__(self, grid, psfs, *, n_psfs=None, n_galaxies=None):
        super().__init__(grid, psfs, n_psfs=n_psfs)
        s, scale = grid.supersampling, grid.subpixel_scale
        fine_half = max(psf.half_width(scale) for psf in self.psfs)
        self.pad = fine_half // s
        self.half_width_arcsec = fine_half * scale
        coarse = grid.with_supersampling(1).render_grid(self.pad)
        fine = grid.render_grid(0)
        self.point_sets = [(coarse.x, coarse.y), (fine.x, fine.y)]
        self.flux_scale = grid.pixel_area
        self.n_galaxies = n_galaxies or n_psfs
        self._check_psf_size()
        kernels = [self._pixel_sampled(psf, scale, fine_half) for psf in self.psfs]
        self.kernel = kernels[0] if n_psfs is None else _stack_kernels(kernels, self.pad)

    def _pixel_sampled(self, psf, scale, fine_half):
        """The sub-pixel kernel sampled every ``s`` sub-pixels from its centre, normalised.

        Pixel means are already box-averaged, so a pixel-*integrated* PSF would apply the
        pixel box twice; sampling applies it once, as the exact computation does.
        """
        s = self.grid.supersampling
        own = psf.half_width(scale)
        half = own // s
        index = own + s * np.arange(-half, half + 1)
        if psf.is_fixed:
            kernel = psf.kernel(scale)[np.ix_(index, index)]
            return kernel / kernel.sum()
        fine = psf.kernel_tensor(scale)
        kernel = fine[index][:, index]
        return kernel / pt.sum(kernel)

    def _inner(self):
        pad = self.pad
        return (Ellipsis, slice(pad, pad + self.grid.ny), slice(pad, pad + self.grid.nx))

    def convolve_and_bin(self, fields):
        coarse, fine = fields
        s = self.grid.supersampling
        means = self.grid.bin(fine) / s**2
        if _is_numpy(coarse) and _is_numpy(means):
            shape = np.broadcast_shapes(coarse.shape[:-2], means.shape[:-2])
            combined = np.array(np.broadcast_to(coarse, (*shape, *coarse.shape[-2:])))
            combined[self._inner()] = means
        else:
            coarse, means = pt.as_tensor_variable(coarse), pt.as_tensor_variable(means)
            lead = pt.broadcast_arrays(coarse[..., :1, :1], means[..., :1, :1])[0].shape[:-2]
            coarse = pt.broadcast_to(coarse, (*lead, *coarse.shape[-2:]))
            combined = pt.set_subtensor(coarse[self._inner()], means)
        return self._convolve(combined)

    def pixel_mean(self, fields):
        _, fine = fields
        return self.grid.bin(fine) / self.grid.supersampling**2


def make_numerics(
    grid: PixelGrid, psf, convolve_at="subpixel", *, n_galaxies=None, lens=None
) -> Numerics:
    """Build the numerics for a grid and a PSF (or a list of one PSF per galaxy).

    Parameters
    ----------
    grid : PixelGrid
    psf : PSF or sequence of PSF
        A list gives every galaxy of a population its own PSF (stacked into one batched FFT,
        each kernel zero-padded to the largest).
    convolve_at : {"subpixel", "pixel"}
        Exact sub-pixel convolution, or convolution at the data-pixel scale.
    n_galaxies : int, optional
        Number of galaxies in the batch, for the memory estimate.
    lens : LensModel, optional
        A lens (:mod:`pymc_tracers.lensing`): profiles are then evaluated at the source-plane
        positions of the sample points, ``beta = theta - alpha(theta)`` (numpy arrays for a
        fixed lens, tensors for a lens with free parameters); convolution and binning stay in
        the image plane.

    Raises
    ------
    ValueError
        For an unknown ``convolve_at`` or a PSF that is not a :class:`~pymc_tracers.PSF`
        (the working memory is checked when a full path is built:
        :meth:`Numerics.check_render_size`).
    """
    if convolve_at not in CONVOLVE_AT:
        raise ValueError(f"unknown convolve_at {convolve_at!r}; use 'subpixel' or 'pixel'")
    if not isinstance(grid, PixelGrid):
        raise TypeError(f"grid must be a pmt.PixelGrid; got {type(grid).__name__}")
    if isinstance(psf, PSF):
        psfs, n_psfs = [psf], None
    else:
        psfs = list(psf) if isinstance(psf, (list, tuple)) else None
        if not psfs or not all(isinstance(p, PSF) for p in psfs):
            raise TypeError(
                "psf must be a PSF (pmt.GaussianPSF, ...) or a non-empty list of PSFs, one per "
                f"galaxy; got {type(psf).__name__}"
            )
        n_psfs = len(psfs)
    cls = SubpixelNumerics if convolve_at == "subpixel" else PixelNumerics
    numerics = cls(grid, psfs, n_psfs=n_psfs, n_galaxies=n_galaxies)
    if lens is not None:
        from pymc_tracers.lensing import as_lens, trace_point_sets

        lens = as_lens(lens)
        numerics._image_point_sets = numerics.point_sets
        numerics.point_sets = trace_point_sets(lens, numerics.point_sets)
        numerics.lens = lens
    return numerics


def kernel_for(numerics: Numerics, psf) -> np.ndarray:
    """The kernel (stack) ``numerics`` would convolve with under another fixed ``psf`` (one
    PSF, or one per galaxy), zero-padded to the stamp it was built with: the value to swap into
    a kernel held as data (:meth:`Numerics.hold_kernel`). Zero-padding is exact, since the
    render grid is padded for the built stamp.

    Raises
    ------
    ValueError
        When ``psf`` has free parameters, has a different number of PSFs, or needs a larger
        stamp than the one the numerics were built with (its render grid would change).
    """
    new = make_numerics(numerics.grid, psf, numerics.name, n_galaxies=numerics.n_galaxies)
    if not new.is_fixed:
        raise ValueError("the new PSF has free parameters; swap in a fixed PSF")
    if new.n_psfs != numerics.n_psfs:
        raise ValueError(
            f"the model was built for {numerics.n_psfs or 1} PSF(s) "
            f"({'one per galaxy' if numerics.n_psfs else 'one for all galaxies'}); got "
            f"{new.n_psfs or 1}"
        )
    kernel, built = new.kernel, numerics.kernel.shape[-1]
    size = kernel.shape[-1]
    if size > built:
        scale = (
            numerics.grid.subpixel_scale
            if numerics.name == "subpixel"
            else (numerics.grid.pixel_scale)
        )
        raise ValueError(
            f"the new PSF's stamp is {size} samples across ({size * scale:.3g} arcsec); the "
            f"model was built for at most {built} ({built * scale:.3g} arcsec), and its render "
            "grid is padded for that. Build the model with the widest PSF you will swap in, "
            "or a new model for this PSF"
        )
    margin = (built - size) // 2
    pad = [(0, 0)] * (kernel.ndim - 2) + [(margin, margin), (margin, margin)]
    return np.pad(kernel, pad)


def render_samples(numerics: Numerics) -> int:
    """Number of rendered samples per galaxy (for reports)."""
    return int(sum(math.prod(x.shape) for x, _ in numerics.image_point_sets))
