"""Point-spread functions as normalised kernels on a (supersampled) pixel grid.

Every PSF answers one question: "what is your kernel on pixels of side ``scale`` arcsec?"
The kernel is square, odd-sized, centred on its middle pixel and sums to 1.

* :meth:`PSF.kernel` returns a numpy array; it exists only for fixed PSFs
  (``psf.is_fixed``).
* :meth:`PSF.kernel_tensor` returns a PyTensor tensor of static shape for every PSF, fixed or
  with fitted widths.
* :meth:`PSF.half_width` is the kernel's half-size in pixels, known without drawing it.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from scipy import interpolate, special

from pymc_tracers.psf.files import read_psf_image
from pymc_tracers.validation import positive_number as _positive_number

__all__ = [
    "PSF",
    "GaussianPSF",
    "MoffatPSF",
    "PixelPSF",
    "read_psf",
    "resample_kernel",
    "validate_kernel",
]

logger = logging.getLogger(__name__)

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _is_symbolic(value) -> bool:
    return isinstance(value, Variable)


class PSF:
    """Base class: a PSF that can be drawn on pixels of a given scale (arcsec)."""

    #: True when no parameter is symbolic, so :meth:`kernel` can return a numpy array.
    is_fixed: bool = True

    def half_width(self, scale: float) -> int:
        """Half-width in pixels of side ``scale`` (arcsec) of the kernel: size ``2 h + 1``."""
        raise NotImplementedError

    def kernel(self, scale: float) -> np.ndarray:
        """Normalised, centred, odd-sized kernel on pixels of side ``scale`` arcsec (numpy).

        Raises
        ------
        ValueError
            If the PSF has fitted (symbolic) parameters: use :meth:`kernel_tensor`.
        """
        if not self.is_fixed:
            raise ValueError(
                f"{self!r} has fitted parameters, so its kernel is a tensor: use kernel_tensor()"
            )
        return self._draw(_positive_number(scale, "scale"))

    def kernel_tensor(self, scale: float):
        """The kernel as a PyTensor tensor of static shape ``(2 h + 1, 2 h + 1)``."""
        scale = _positive_number(scale, "scale")
        if self.is_fixed:
            return pt.as_tensor_variable(self._draw(scale))
        n = 2 * self.half_width(scale) + 1
        return pt.specify_shape(self._draw(scale), (n, n))

    def _draw(self, scale: float):
        """The kernel: numpy for fixed PSFs, a tensor otherwise."""
        raise NotImplementedError


class _AnalyticPSF(PSF):
    """Shared machinery for PSFs given by a radial profile with a FWHM (arcsec)."""

    default_radius_in_fwhm: float = 2.5

    def __init__(self, fwhm, *, radius=None, max_fwhm=None):
        self.fwhm = fwhm
        self.is_fixed = not _is_symbolic(fwhm)
        if self.is_fixed:
            self.fwhm = _positive_number(fwhm, "fwhm")
            size_fwhm = self.fwhm
        else:
            if max_fwhm is None and radius is None:
                raise ValueError(
                    "fwhm is a random variable, so the kernel size cannot be read from it: pass "
                    "max_fwhm=<largest FWHM the prior allows, arcsec> or radius=<arcsec>"
                )
            size_fwhm = _positive_number(max_fwhm, "max_fwhm") if max_fwhm is not None else None
        self.radius = (
            _positive_number(radius, "radius")
            if radius is not None
            else self.default_radius_in_fwhm * size_fwhm
        )

    def half_width(self, scale: float) -> int:
        return int(math.ceil(self.radius / scale - 0.5))

    def _pixel_edges(self, scale: float) -> np.ndarray:
        h = self.half_width(scale)
        return (np.arange(-h, h + 2) - 0.5) * scale


class GaussianPSF(_AnalyticPSF):
    """Circular Gaussian PSF, integrated exactly over each kernel pixel.

    Parameters
    ----------
    fwhm : float or PyTensor variable
        Full width at half maximum in arcsec. May be a PyMC random variable to fit the PSF.
    radius : float, optional
        Truncation radius of the kernel in arcsec (default 2.5 FWHM, which leaves ~3e-8 of the
        flux outside; the truncated kernel is renormalised).
    max_fwhm : float, optional
        Largest FWHM (arcsec) a fitted ``fwhm`` can take; sets the kernel size when ``fwhm`` is
        symbolic.
    """

    def _draw(self, scale: float):
        edges = self._pixel_edges(scale)
        if self.is_fixed:
            sigma = self.fwhm / FWHM_PER_SIGMA
            cdf = special.ndtr(edges / sigma)
            profile = np.diff(cdf)
            kernel = np.outer(profile, profile)
            return kernel / kernel.sum()
        sigma = pt.as_tensor_variable(self.fwhm) / FWHM_PER_SIGMA
        cdf = 0.5 * (1.0 + pt.erf(pt.as_tensor_variable(edges) / (np.sqrt(2.0) * sigma)))
        profile = cdf[1:] - cdf[:-1]
        kernel = profile[:, None] * profile[None, :]
        return kernel / pt.sum(kernel)

    def __repr__(self):
        return f"GaussianPSF(fwhm={self.fwhm!r})"


class MoffatPSF(_AnalyticPSF):
    """Circular Moffat PSF ``(1 + (r/alpha)^2)^-beta`` with the given FWHM.

    Parameters
    ----------
    fwhm : float or PyTensor variable
        Full width at half maximum in arcsec.
    beta : float or PyTensor variable
        Moffat power index (> 1; ~2.5-4.8 for seeing-limited data). Smaller beta means heavier
        wings.
    radius : float, optional
        Truncation radius in arcsec. By default the radius enclosing all but 1e-3 of the flux
        (capped at 10 FWHM); the truncated kernel is renormalised.
    max_fwhm : float, optional
        Largest FWHM (arcsec) a fitted ``fwhm`` can take; sets the kernel size.
    integration_oversampling : int
        Each kernel pixel is integrated with this many midpoint samples per axis.
    """

    def __init__(
        self, fwhm, beta=3.0, *, radius=None, max_fwhm=None, integration_oversampling: int = 5
    ):
        if not _is_symbolic(beta):
            beta = float(beta)
            if not np.isfinite(beta) or beta <= 1:
                raise ValueError(f"beta must be a finite number > 1; got {beta!r}")
        self.beta = beta
        if radius is None:
            size_fwhm = max_fwhm if (_is_symbolic(fwhm) and max_fwhm is not None) else fwhm
            if not _is_symbolic(size_fwhm) and not _is_symbolic(beta):
                size_fwhm = _positive_number(size_fwhm, "fwhm")
                alpha = size_fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
                # enclosed flux fraction 1 - (1 + (r/alpha)^2)^(1 - beta) = 1 - 1e-3
                r_enclosed = alpha * math.sqrt(1e-3 ** (1.0 / (1.0 - beta)) - 1.0)
                radius = min(r_enclosed, 10.0 * size_fwhm)
            elif not _is_symbolic(size_fwhm):
                radius = 5.0 * _positive_number(size_fwhm, "max_fwhm")
        super().__init__(fwhm, radius=radius, max_fwhm=max_fwhm)
        self.is_fixed = not (_is_symbolic(fwhm) or _is_symbolic(beta))
        self.integration_oversampling = int(integration_oversampling)

    def _draw(self, scale: float):
        h = self.half_width(scale)
        m = self.integration_oversampling
        offsets = (np.arange(m) - (m - 1) / 2.0) / m * scale
        centres = np.arange(-h, h + 1) * scale
        fine = (centres[:, None] + offsets[None, :]).ravel()
        r2 = fine[:, None] ** 2 + fine[None, :] ** 2
        n = 2 * h + 1
        lib = np if self.is_fixed else pt
        beta = self.beta
        alpha2 = (self.fwhm / 2.0) ** 2 / (2.0 ** (1.0 / beta) - 1.0)
        profile = (1.0 + r2 / alpha2) ** (-beta)
        kernel = profile.reshape((n, m, n, m)).sum(axis=(1, 3))
        return kernel / lib.sum(kernel)

    def __repr__(self):
        return f"MoffatPSF(fwhm={self.fwhm!r}, beta={self.beta!r})"


class PixelPSF(PSF):
    """A PSF given as an image (an empirical, modelled or stpsf/webbpsf PSF).

    Parameters
    ----------
    kernel : array_like, shape (n, n) with n odd
        The PSF image, centred on its middle pixel. Normalised to unit sum on use.
    pixel_scale : float
        Side of a kernel pixel in arcsec (e.g. the detector scale divided by the
        oversampling of an stpsf PSF).

    Notes
    -----
    :meth:`kernel` resamples the image to the requested pixel scale conserving flux: the
    cumulative flux, exact at the input pixel edges, is interpolated with a cubic spline to
    the output edges (exact for integer rebinning). When the scales agree (to 1e-9 relative)
    the image is used exactly as given. For best fidelity, provide the PSF oversampled
    at least as finely as the grid's sub-pixels.
    """

    def __init__(self, kernel, pixel_scale):
        self.pixel_scale = _positive_number(pixel_scale, "pixel_scale")
        self.image = validate_kernel(kernel)
        self._resampled: dict[float, np.ndarray] = {}

    def half_width(self, scale: float) -> int:
        scale = _positive_number(scale, "scale")
        if math.isclose(scale, self.pixel_scale, rel_tol=1e-9):
            return self.image.shape[0] // 2
        return _resampled_half_width(self.image.shape[0], self.pixel_scale, scale)

    def _draw(self, scale: float) -> np.ndarray:
        if math.isclose(scale, self.pixel_scale, rel_tol=1e-9):
            return self.image
        if scale not in self._resampled:  # resampling costs O(n^3): do it once per scale
            self._resampled[scale] = resample_kernel(self.image, self.pixel_scale, scale)
        return self._resampled[scale]

    @classmethod
    def from_fits(
        cls, path, pixel_scale=None, *, ext=None, oversampled=True, distorted=False
    ) -> "PixelPSF":
        """Read a PSF image from a FITS file (stpsf/webbpsf output or any PSF image).

        Parameters
        ----------
        path : str or path-like
            The FITS file.
        pixel_scale : float, optional
            Kernel pixel side in arcsec. If omitted it is read from the header: ``PIXELSCL``
            (stpsf/webbpsf, arcsec), ``PIXSCALE`` (arcsec) or the WCS matrix (rotation-safe).
        ext : int or str, optional
            The HDU holding the image. By default the stpsf oversampled extension, else the
            first HDU with data (an empty primary HDU is skipped).
        oversampled : bool
            With stpsf files, pick the oversampled (``OVERSAMP``) or the detector-sampled
            (``DET_SAMP``) extension.
        distorted : bool
            With stpsf files, the versions with distortion (``OVERDIST``/``DET_DIST``).

        Notes
        -----
        The file is read by :func:`pymc_tracers.psf.files.read_psf_image`. An even-sized PSF
        (stpsf writes them centred on the corner between the four middle pixels) is re-centred
        onto an odd grid, flux-conserving, with :func:`resample_kernel`; the log
        (``pymc_tracers.psf``, INFO) says so.
        """
        image, scale, label = read_psf_image(
            path, ext=ext, pixel_scale=pixel_scale, oversampled=oversampled, distorted=distorted
        )
        if image.shape[0] % 2 == 0:
            n = image.shape[0]
            image = resample_kernel(image, scale, scale, allow_even=True)
            logger.info(
                "%s: even-sized PSF (%d x %d) re-centred onto an odd %d x %d grid (flux conserved)",
                label,
                n,
                n,
                image.shape[0],
                image.shape[1],
            )
        return cls(image, scale)

    @classmethod
    def from_stpsf(
        cls, instrument="NIRISS", filter="F150W", *, oversample=5, fov_arcsec=3.0, **calc_kwargs
    ) -> "PixelPSF":
        """Compute a JWST PSF with ``stpsf`` (or its former name ``webbpsf``).

        Requires ``stpsf`` and its data files (environment variable ``STPSF_PATH``). Without
        them, use :func:`pymc_tracers.data.niriss_f150w_psf`, an approximate PSF shipped with
        the package.
        """
        try:
            import stpsf as webb
        except ImportError:
            try:
                import webbpsf as webb
            except ImportError:
                raise ImportError(
                    "PixelPSF.from_stpsf needs the 'stpsf' package and its data files "
                    "(pip install stpsf; then set STPSF_PATH, see the stpsf docs). Offline, use "
                    "pymc_tracers.data.niriss_f150w_psf() instead."
                ) from None
        if not (os.environ.get("STPSF_PATH") or os.environ.get("WEBBPSF_PATH")):
            raise RuntimeError(
                "stpsf is installed but its data files are not: download them and set STPSF_PATH "
                "(or use pymc_tracers.data.niriss_f150w_psf() for an approximate PSF)."
            )
        inst = getattr(webb, instrument.upper())()
        inst.filter = filter
        psf = inst.calc_psf(oversample=oversample, fov_arcsec=fov_arcsec, **calc_kwargs)
        data = np.asarray(psf[0].data, dtype=float)
        scale = float(psf[0].header["PIXELSCL"])
        if data.shape[0] % 2 == 0:
            # an even stpsf grid is centred on a pixel corner: move it onto an odd grid
            data = resample_kernel(data, scale, scale, allow_even=True)
        return cls(data, scale)

    def __repr__(self):
        return f"PixelPSF(shape={self.image.shape}, pixel_scale={self.pixel_scale!r})"


def validate_kernel(kernel) -> np.ndarray:
    """Check a PSF image and return it as a float array normalised to unit sum.

    Raises
    ------
    ValueError
        If the kernel is not a finite, square, odd-sized 2-D array with positive sum whose
        light is centred on the middle pixel (peak or centroid within one pixel of it).
    """
    kernel = np.asarray(kernel, dtype=float)
    if kernel.ndim != 2:
        raise ValueError(f"PSF kernel must be a 2-D image; got shape {kernel.shape}")
    ny, nx = kernel.shape
    if ny != nx:
        raise ValueError(f"PSF kernel must be square; got shape {kernel.shape} (crop or pad it)")
    if ny % 2 == 0:
        raise ValueError(
            f"PSF kernel must have an odd size so that it has a central pixel; got {kernel.shape}. "
            "Pad it by one row and column or resample it onto an odd grid."
        )
    if not np.all(np.isfinite(kernel)):
        raise ValueError(
            f"PSF kernel contains {np.count_nonzero(~np.isfinite(kernel))} NaN/inf values; "
            "replace them (e.g. with 0) first"
        )
    total = kernel.sum()
    if not total > 0:
        raise ValueError(f"PSF kernel must have a positive sum; got {total!r}")
    kernel = kernel / total
    h = ny // 2
    idx = np.arange(ny) - h
    centroid = np.array([np.sum(kernel * idx[:, None]), np.sum(kernel * idx[None, :])])
    peak = np.array(np.unravel_index(np.argmax(kernel), kernel.shape)) - h
    if np.max(np.abs(centroid)) > 1.0 and np.max(np.abs(peak)) > 1:
        raise ValueError(
            "PSF kernel is not centred: its peak is at offset "
            f"{tuple(int(p) for p in peak)} and its centroid at "
            f"({centroid[0]:.2f}, {centroid[1]:.2f}) pixels (row, column) from the middle pixel; "
            "recentre it so the PSF centre falls on the middle pixel"
        )
    return kernel


def _resampling_matrix(n_in: int, scale_in: float, n_out: int, scale_out: float) -> np.ndarray:
    """Linear map from input pixel fluxes to output pixel fluxes (both grids centred).

    The cumulative flux is known exactly at the input pixel edges; a cubic spline through it,
    evaluated at the output edges and differenced, gives each output pixel's flux. This is
    exact where edges coincide (integer rebinning) and conserves the total flux.
    """
    edges_in = (np.arange(n_in + 1) - n_in / 2.0) * scale_in
    edges_out = (np.arange(n_out + 1) - n_out / 2.0) * scale_out
    cumulative = np.tril(np.ones((n_in + 1, n_in)), k=-1)  # flux left of each input edge
    spline = interpolate.CubicSpline(edges_in, np.eye(n_in + 1), axis=0)
    at_out = spline(np.clip(edges_out, edges_in[0], edges_in[-1])) @ cumulative
    return np.diff(at_out, axis=0)


def _resampled_half_width(n_in: int, scale_in: float, scale_out: float) -> int:
    """Half-width of the odd output grid that covers ``n_in`` pixels of ``scale_in``."""
    return int(math.ceil(n_in * scale_in / (2.0 * scale_out) - 0.5))


def resample_kernel(kernel, scale_in: float, scale_out: float, *, allow_even=False) -> np.ndarray:
    """Resample a centred kernel to a new pixel scale, conserving flux exactly.

    Parameters
    ----------
    kernel : ndarray, shape (n, n), n odd
        Kernel whose pixels have side ``scale_in`` arcsec.
    scale_in, scale_out : float
        Input and output pixel sides in arcsec.
    allow_even : bool
        Accept an even-sized kernel centred on the corner between its four middle pixels
        (as some PSF tools write them); the output is odd-sized and centred.

    Returns
    -------
    ndarray
        Odd-sized kernel on pixels of side ``scale_out`` covering the input, normalised.
    """
    kernel = np.asarray(kernel, dtype=float)
    if not allow_even:
        kernel = validate_kernel(kernel)
    n_in = kernel.shape[0]
    n_out = 2 * _resampled_half_width(n_in, scale_in, scale_out) + 1
    w = _resampling_matrix(n_in, scale_in, n_out, scale_out)
    out = w @ kernel @ w.T
    return out / out.sum()


def read_psf(
    path, *, ext=None, pixel_scale=None, oversampled: bool = True, distorted: bool = False
) -> PixelPSF:
    """Read a PSF image from a FITS file: :meth:`PixelPSF.from_fits` (see there).

    Parameters
    ----------
    path : str or path-like
    ext : int or str, optional
        The HDU to read. By default: for stpsf/webbpsf files, the extension named
        ``OVERSAMP`` (oversampled, ``oversampled=True``) or ``DET_SAMP`` (detector-sampled),
        or ``OVERDIST``/``DET_DIST`` with ``distorted=True``; files without these names but
        with ``OVERSAMP`` keywords are matched by keyword; otherwise the only image HDU.
    pixel_scale : float, optional
        Arcsec per PSF pixel (default: from the header).
    oversampled, distorted : bool
        Which stpsf product to read.

    Returns
    -------
    PixelPSF

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; no image where expected (the message lists the HDUs); the asked-for
        sampling is not in the file; no pixel scale; non-square or skewed pixels.
    """
    return PixelPSF.from_fits(
        path, pixel_scale, ext=ext, oversampled=oversampled, distorted=distorted
    )
