"""PSF convolution of image batches as PyTensor ops.

Every op here computes a "valid"-mode linear convolution (every output pixel sees the whole
kernel, nothing wraps around an edge) by real FFTs of a fast length (:func:`fft_shape`):

* :class:`FixedKernelConvolution` for a fixed PSF: the kernel's Fourier transform is computed
  once per image shape and cached, so an evaluation costs one forward and one inverse real FFT
  of the rendered field, and so does its gradient (:class:`FixedKernelCorrelation`, the adjoint).
* :class:`HeldKernelConvolution` for a fixed PSF held as model data (a built model that can
  take another PSF of the same stamp size): the same arithmetic, the transform recomputed only
  when the kernel's values change; no gradient flows to the kernel.
* :class:`KernelConvolution` when the kernel is itself a tensor (a fitted PSF width): the
  kernel is transformed on every evaluation, and :class:`KernelConvolutionGrad` gives the
  gradients with respect to the images and the kernel (three FFTs).

Kernels may be stacks ``(..., k1, k2)`` (one PSF per galaxy of a population) that broadcast
against the leading axes of the images: one batched FFT for the whole sample. A circular
convolution of period ``L >= M`` (M the rendered size) has wrap-around only in its first
``k - 1`` samples, which valid mode discards, so no extra zero-padding is needed.

The transforms are taken one axis at a time: a real FFT along the last axis of the rows that
hold data, then a complex FFT along the other axis; the inverse keeps only the rows the result
needs. Besides skipping rows that are all zeros or discarded, this avoids a slow path of
``scipy.fft.rfft2(x, s=...)`` / ``irfft2`` on batches (4x slower on this machine for
``(2, 10, 126, 126)`` images, see docs/performance.md).

Each op has a numpy ``perform`` (the C backend), a JAX implementation (for numpyro, blackjax
and nutpie's JAX backend: ``jax.numpy.fft`` with the cached kernel transform for fixed kernels,
``jax.scipy.signal.fftconvolve`` over the leading axes for symbolic ones) and a numba
implementation that calls the same numpy FFTs in one explicit object-mode block (numba has no
FFT of its own), registered for these ops only: nothing of PyTensor's own dispatch is changed.
"""

from pymc_tracers.convolution import backends  # noqa: F401  (registers JAX and numba)
from pymc_tracers.convolution.fft import (
    CONVOLVE_CHUNK_BYTES,
    FFT_WORKERS,
    convolution_gradients_numpy,
    convolve_numpy,
    fft_shape,
)
from pymc_tracers.convolution.ops import (
    FixedKernelConvolution,
    FixedKernelCorrelation,
    HeldKernelConvolution,
    HeldKernelCorrelation,
    KernelConvolution,
    KernelConvolutionGrad,
    convolve_valid,
)

__all__ = [
    "CONVOLVE_CHUNK_BYTES",
    "FFT_WORKERS",
    "FixedKernelConvolution",
    "FixedKernelCorrelation",
    "HeldKernelConvolution",
    "HeldKernelCorrelation",
    "KernelConvolution",
    "KernelConvolutionGrad",
    "convolution_gradients_numpy",
    "convolve_numpy",
    "convolve_valid",
    "fft_shape",
]
