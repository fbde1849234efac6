"""PSF convolution of image batches as PyTensor ops.

Two paths, one result (a "valid"-mode linear convolution: every output pixel sees the whole
kernel, nothing wraps around an edge):

* :class:`FixedKernelConvolution` for a fixed PSF: the kernel's Fourier transform is computed
  once per image shape and cached, so an evaluation costs one forward and one inverse real FFT
  of the rendered field, and so does its gradient (:class:`FixedKernelCorrelation`, the adjoint).
  The kernel may be a stack ``(..., k1, k2)`` (one PSF per galaxy of a population) that
  broadcasts against the leading axes of the images: one batched FFT for the whole sample.
  A circular convolution of period ``L >= M`` (M the rendered size) has wrap-around only in
  its first ``k - 1`` samples, which valid mode discards, so no extra zero-padding is needed.
* ``pytensor.tensor.signal.convolve2d(..., mode="valid", method="fft")`` when the kernel is
  itself a tensor (a fitted PSF width).
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pytensor.tensor as pt
import scipy.fft
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.signal import convolve2d

__all__ = ["FixedKernelConvolution", "FixedKernelCorrelation", "convolve_valid", "fft_shape"]

#: Threads used by scipy's FFTs (batched transforms split across them).
FFT_WORKERS = max(1, min(os.cpu_count() or 1, 4))
#: Numpy convolutions whose spectra would exceed this many bytes run in chunks of galaxies.
CONVOLVE_CHUNK_BYTES = 128 * 2**20


def fft_shape(shape) -> tuple[int, int]:
    """Smallest fast FFT lengths >= ``shape`` (real transforms)."""
    return tuple(scipy.fft.next_fast_len(int(n), real=True) for n in shape)


class _KernelTransformCache:
    """A fixed kernel and its real FFTs at every period it has been used with."""

    def __init__(self, kernel: np.ndarray):
        self.kernel = np.ascontiguousarray(kernel, dtype=np.float64)
        if self.kernel.ndim < 2:
            raise ValueError(f"kernel must have >= 2 dims (..., k1, k2); got {self.kernel.shape}")
        self.key = (self.kernel.shape, hashlib.sha1(self.kernel.tobytes()).hexdigest())
        self._transforms: dict = {}

    def transform(self, period, dtype) -> np.ndarray:
        key = (tuple(period), np.dtype(dtype).str)
        if key not in self._transforms:
            ft = scipy.fft.rfft2(self.kernel, s=period)
            self._transforms[key] = ft.astype(np.result_type(dtype, np.complex64))
        return self._transforms[key]


class _FixedKernelOp(Op):
    __props__ = ("kernel_key",)

    def __init__(self, kernel):
        if not isinstance(kernel, _KernelTransformCache):
            kernel = _KernelTransformCache(kernel)
        self._cache = kernel
        self.kernel_key = kernel.key

    @property
    def kernel(self) -> np.ndarray:
        return self._cache.kernel

    def _output_length(self, axis: int, n):
        raise NotImplementedError

    @property
    def kernel_shape(self) -> tuple[int, int]:
        return self.kernel.shape[-2:]

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.ndim < self.kernel.ndim:
            raise ValueError(
                f"{type(self).__name__}: images with {x.ndim} dims cannot take a kernel stack of "
                f"shape {self.kernel.shape}; give the images the kernel's leading axes"
            )
        if x.dtype not in ("float32", "float64"):
            x = pt.cast(x, "float64")
        lead = x.type.shape[:-2]
        tail = tuple(
            None if n is None else self._output_length(i, n)
            for i, n in enumerate(x.type.shape[-2:])
        )
        out = pt.tensor(dtype=x.dtype, shape=(*lead, *tail))
        return Apply(self, [x], [out])

    def infer_shape(self, fgraph, node, shapes):
        (shape,) = shapes
        return [(*shape[:-2], *(self._output_length(i, n) for i, n in enumerate(shape[-2:])))]


class FixedKernelConvolution(_FixedKernelOp):
    """Valid-mode convolution ``(..., M1, M2) -> (..., M1 - k1 + 1, M2 - k2 + 1)`` by FFT."""

    def _output_length(self, axis, n):
        return n - self.kernel_shape[axis] + 1

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = self.convolve(inputs[0])

    def convolve(self, x: np.ndarray) -> np.ndarray:
        """The numpy computation: valid-mode convolution of ``x`` (..., M1, M2)."""
        k1, k2 = self.kernel_shape
        m1, m2 = x.shape[-2:]
        if m1 < k1 or m2 < k2:
            raise ValueError(f"image {x.shape[-2:]} is smaller than the kernel {self.kernel.shape}")
        period = fft_shape((m1, m2))
        transform = self._cache.transform(period, x.dtype)
        lead = np.broadcast_shapes(x.shape[:-2], transform.shape[:-2])
        spectrum_bytes = 16 * math.prod(lead) * period[0] * (period[1] // 2 + 1)
        if len(lead) == 0 or spectrum_bytes <= CONVOLVE_CHUNK_BYTES:
            return self._convolve_block(x, transform, period)
        # large batches (e.g. the basis maps of 1000 galaxies) in chunks of the first batch
        # axis, so the working memory is a few spectra of one chunk, not of the whole batch
        x = np.broadcast_to(x, (*lead, m1, m2))
        transform = np.broadcast_to(transform, (*lead, *transform.shape[-2:]))
        step = max(1, int(lead[0] * CONVOLVE_CHUNK_BYTES // spectrum_bytes))
        out = np.empty((*lead, m1 - k1 + 1, m2 - k2 + 1), dtype=x.dtype)
        for start in range(0, lead[0], step):
            chunk = slice(start, start + step)
            out[chunk] = self._convolve_block(x[chunk], transform[chunk], period)
        return out

    def _convolve_block(self, x, transform, period):
        k1, k2 = self.kernel_shape
        m1, m2 = x.shape[-2:]
        spectrum = scipy.fft.rfft2(x, s=period, workers=FFT_WORKERS)
        spectrum = spectrum * transform
        full = scipy.fft.irfft2(spectrum, s=period, workers=FFT_WORKERS)
        valid = full[..., k1 - 1 : m1, k2 - 1 : m2]
        _check_batch(valid, x)
        return np.ascontiguousarray(valid, dtype=x.dtype)

    def L_op(self, inputs, outputs, output_grads):
        return [FixedKernelCorrelation(self._cache)(output_grads[0])]


class FixedKernelCorrelation(_FixedKernelOp):
    """The adjoint of :class:`FixedKernelConvolution`: a full-mode correlation.

    ``(..., N1, N2) -> (..., N1 + k1 - 1, N2 + k2 - 1)``.
    """

    def _output_length(self, axis, n):
        return n + self.kernel_shape[axis] - 1

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = self.correlate(inputs[0])

    def correlate(self, g: np.ndarray) -> np.ndarray:
        """The numpy computation: full-mode correlation of ``g`` (..., N1, N2)."""
        k1, k2 = self.kernel_shape
        m1, m2 = g.shape[-2] + k1 - 1, g.shape[-1] + k2 - 1
        period = fft_shape((m1, m2))
        spectrum = scipy.fft.rfft2(g, s=period, workers=FFT_WORKERS)
        spectrum *= np.conj(self._cache.transform(period, g.dtype))
        corr = scipy.fft.irfft2(spectrum, s=period, workers=FFT_WORKERS)
        # corr[j] = sum_i g[i] K[i - j]; the output index m corresponds to j = m - (k - 1)
        out = np.roll(corr, (k1 - 1, k2 - 1), axis=(-2, -1))[..., :m1, :m2]
        _check_batch(out, g)
        return np.ascontiguousarray(out, dtype=g.dtype)

    def L_op(self, inputs, outputs, output_grads):
        return [FixedKernelConvolution(self._cache)(output_grads[0])]


def _check_batch(out, x):
    if out.shape[:-2] != x.shape[:-2]:
        raise ValueError(
            f"a kernel stack with leading shape {out.shape[:-2]} does not match images with "
            f"leading shape {x.shape[:-2]}; broadcast the images to the kernel stack first"
        )


def convolve_valid(images, kernel):
    """Valid-mode 2-D convolution of a batch of images with a PSF kernel (or kernel stack).

    Parameters
    ----------
    images : tensor, shape ``(..., M1, M2)``
    kernel : ndarray or tensor, shape ``(..., k1, k2)``
        A numpy kernel takes the cached-FFT path; a symbolic one uses
        ``pytensor.tensor.signal.convolve2d`` with the FFT method. Leading kernel axes
        broadcast against the images' leading axes.

    Returns
    -------
    tensor, shape ``(..., M1 - k1 + 1, M2 - k2 + 1)``
    """
    if isinstance(kernel, np.ndarray):
        return FixedKernelConvolution(kernel)(images)
    return convolve2d(images, kernel, mode="valid", method="fft")


# ---------------------------------------------------------------------- other backends
def _register_jax():
    """JAX implementations, so numpyro/blackjax and nutpie's JAX backend run our models."""
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(FixedKernelConvolution)
    def _jax_convolution(op, node=None, **kwargs):
        import jax.numpy as jnp

        k1, k2 = op.kernel_shape

        def convolve(x):
            m1, m2 = x.shape[-2:]
            period = fft_shape((m1, m2))
            kernel_ft = jnp.asarray(op._cache.transform(period, x.dtype))
            full = jnp.fft.irfft2(jnp.fft.rfft2(x, s=period) * kernel_ft, s=period)
            return full[..., k1 - 1 : m1, k2 - 1 : m2].astype(x.dtype)

        return convolve

    @jax_funcify.register(FixedKernelCorrelation)
    def _jax_correlation(op, node=None, **kwargs):
        import jax.numpy as jnp

        k1, k2 = op.kernel_shape

        def correlate(g):
            m1, m2 = g.shape[-2] + k1 - 1, g.shape[-1] + k2 - 1
            period = fft_shape((m1, m2))
            kernel_ft = jnp.conj(jnp.asarray(op._cache.transform(period, g.dtype)))
            corr = jnp.fft.irfft2(jnp.fft.rfft2(g, s=period) * kernel_ft, s=period)
            return jnp.roll(corr, (k1 - 1, k2 - 1), axis=(-2, -1))[..., :m1, :m2].astype(g.dtype)

        return correlate

    from pytensor.tensor.basic import get_underlying_scalar_constant_value
    from pytensor.tensor.exceptions import NotScalarConstantError
    from pytensor.tensor.signal.conv import Convolve2d

    @jax_funcify.register(Convolve2d)
    def _jax_convolve2d(op, node, **kwargs):
        """PyTensor's 2-D convolution (used for fitted PSFs) has no JAX implementation.

        Its mode is a graph input; the output shape depends on it, so it must be a constant
        when JAX traces (PyTensor does the same for ``Convolve1d``). Blockwise hands the core
        op its unbatched inputs, so the constant is visible here.
        """
        import jax.scipy.signal as jsignal

        try:
            full_mode = get_underlying_scalar_constant_value(node.inputs[2])
        except NotScalarConstantError:
            raise NotImplementedError(
                "Convolve2d needs a constant mode under JAX; got a mode computed at run time"
            ) from None
        mode = "full" if full_mode else "valid"
        method = jsignal.fftconvolve if op.method in ("fft", "auto") else jsignal.convolve

        def convolve2d(in1, in2, _runtime_full_mode):
            return method(in1, in2, mode=mode)

        return convolve2d

    from pytensor.graph.basic import Constant as GraphConstant
    from pytensor.tensor.blockwise import Blockwise

    generic_blockwise = jax_funcify.dispatch(Blockwise)

    @jax_funcify.register(Blockwise)
    def _jax_blockwise(op, node=None, **kwargs):
        """Batched Convolve2d nodes whose mode is a batched constant (gradients of batched
        convolutions): the core op only sees a placeholder, so read the constant here.

        Every other Blockwise, and Convolve2d nodes the core registration can handle, go to
        PyTensor's own implementation unchanged.
        """
        mode_input = node.inputs[2] if (node is not None and len(node.inputs) == 3) else None
        if not (
            isinstance(op.core_op, Convolve2d)
            and isinstance(mode_input, GraphConstant)
            and mode_input.data.ndim > 0
            and np.unique(np.asarray(mode_input.data)).size == 1
        ):
            return generic_blockwise(op, node=node, **kwargs)
        import jax.numpy as jnp
        import jax.scipy.signal as jsignal

        mode = "full" if bool(np.asarray(mode_input.data).flat[0]) else "valid"
        method = jsignal.fftconvolve if op.core_op.method in ("fft", "auto") else jsignal.convolve
        batched = jnp.vectorize(
            lambda a, b: method(a, b, mode=mode), signature="(i,j),(k,l)->(m,n)"
        )

        def convolve2d(in1, in2, _full_mode):
            return batched(in1, in2)

        return convolve2d


def _register_numba():
    """Numba: run the scipy FFT in object mode explicitly (no per-call fallback warning)."""
    import numba
    from pytensor.link.numba.dispatch import numba_funcify

    for op_class in (FixedKernelConvolution, FixedKernelCorrelation):

        @numba_funcify.register(op_class)
        def _numba_fixed_kernel(op, node=None, **kwargs):
            out_type = node.outputs[0].type
            ndim, dtype = out_type.ndim, out_type.dtype
            compute = op.convolve if isinstance(op, FixedKernelConvolution) else op.correlate
            ret_sig = numba.types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C")

            @numba.njit
            def fixed_kernel(x):
                with numba.objmode(y=ret_sig):
                    y = compute(x)
                return y

            return fixed_kernel


try:
    _register_jax()
except ImportError:  # JAX not installed: the C and numba backends still work
    pass
try:
    _register_numba()
except ImportError:
    pass
