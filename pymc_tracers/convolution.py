"""PSF convolution of image batches as PyTensor ops.

Every op here computes a "valid"-mode linear convolution (every output pixel sees the whole
kernel, nothing wraps around an edge) by real FFTs of a fast length (:func:`fft_shape`):

* :class:`FixedKernelConvolution` for a fixed PSF: the kernel's Fourier transform is computed
  once per image shape and cached, so an evaluation costs one forward and one inverse real FFT
  of the rendered field, and so does its gradient (:class:`FixedKernelCorrelation`, the adjoint).
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

from __future__ import annotations

import functools
import hashlib
import math
import os
import sys
import threading

import numpy as np
import pytensor.tensor as pt
import scipy.fft
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.scalar import upcast

__all__ = [
    "FixedKernelConvolution",
    "FixedKernelCorrelation",
    "KernelConvolution",
    "KernelConvolutionGrad",
    "convolve_valid",
    "fft_shape",
]

#: Threads used by scipy's FFTs (batched transforms split across them).
FFT_WORKERS = max(1, min(os.cpu_count() or 1, 4))
#: Numpy convolutions whose spectra would exceed this many bytes run in chunks of galaxies.
CONVOLVE_CHUNK_BYTES = 128 * 2**20


def fft_shape(shape) -> tuple[int, int]:
    """Smallest fast FFT lengths >= ``shape`` (real transforms)."""
    return tuple(scipy.fft.next_fast_len(int(n), real=True) for n in shape)


# ------------------------------------------------------------------ numpy building blocks
#: Largest total size (bytes) of the FFT work arrays one op keeps per thread between calls.
WORKSPACE_BYTES = 64 * 2**20


class _Workspace(threading.local):
    """FFT work arrays kept between an op's calls, one set per thread.

    Fresh multi-megabyte arrays are returned to the operating system when freed and cost a
    page fault per 4 KiB when touched again (about 1 ms per MiB on this machine: more than the
    FFT itself), so the spectra are computed in place in arrays kept here. Only the op's
    outputs are new arrays.
    """

    def __init__(self):
        self.arrays = {}

    def __reduce__(self):  # a copy (numba pickles object-mode closures) starts empty
        return (_Workspace, ())

    def output(self, role, shape, dtype):
        """A new array for an op's output, or the previous call's one when nothing else holds
        it any more (the compiled function has released it): no fresh pages to touch."""
        key = ("output", role)
        previous = self.arrays.get(key)
        # references: the dict, `previous`, getrefcount's argument
        if (
            previous is not None
            and previous.shape == tuple(shape)
            and previous.dtype == np.dtype(dtype)
            and sys.getrefcount(previous) <= 3
        ):
            return previous
        del previous
        array = np.empty(shape, dtype)
        if array.nbytes <= WORKSPACE_BYTES // 2:
            self.arrays[key] = array
        return array

    @staticmethod
    def keeps(shape, dtype) -> bool:
        """Whether a work array of this shape is kept between calls."""
        return math.prod(shape) * np.dtype(dtype).itemsize <= WORKSPACE_BYTES // 2

    def get(self, role, shape, dtype):
        key = (role, tuple(shape), np.dtype(dtype).str)
        array = self.arrays.get(key)
        if array is None:
            size = math.prod(shape) * np.dtype(dtype).itemsize
            held = sum(a.nbytes for k, a in self.arrays.items() if k[0] != "output")
            if held + size > WORKSPACE_BYTES:
                self.arrays.clear()
            array = np.empty(shape, dtype)
            if self.keeps(shape, dtype):
                self.arrays[key] = array
        return array


class _UsesWorkspace:
    """Ops holding a :class:`_Workspace` (left out when the op is pickled)."""

    @property
    def work(self) -> _Workspace:
        if getattr(self, "_work", None) is None:
            self._work = _Workspace()
        return self._work

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_work", None)
        return state


def _complex_dtype(*arrays):
    return np.result_type(*arrays, np.complex64)


def _spectrum(x, period, work, role, lead=None):
    """2-D real FFT of ``x`` (..., m1, m2) zero-padded to ``period``: (..., L1, L2 // 2 + 1),
    in the work array ``role`` (a real FFT along rows that hold data, then a complex FFT along
    columns in place). Spectra too large to keep run on :data:`FFT_WORKERS` threads."""
    m1 = x.shape[-2]
    lead = x.shape[:-2] if lead is None else lead
    shape, dtype = (*lead, period[0], period[1] // 2 + 1), _complex_dtype(x)
    x = np.broadcast_to(x, (*lead, *x.shape[-2:]))
    if not work.keeps(shape, dtype):
        rows = scipy.fft.rfft(x, n=period[1], axis=-1, workers=FFT_WORKERS)
        return scipy.fft.fft(rows, n=period[0], axis=-2, overwrite_x=True, workers=FFT_WORKERS)
    spectrum = work.get(role, shape, dtype)
    np.fft.rfft(x, n=period[1], axis=-1, out=spectrum[..., :m1, :])
    spectrum[..., m1:, :] = 0
    return np.fft.fft(spectrum, axis=-2, out=spectrum)


def _real_rows(spectrum, period, rows, work):
    """Rows ``rows`` (a slice) of the period-``period`` real signal whose 2-D real FFT is
    ``spectrum`` (overwritten), in a work array."""
    shape = (*spectrum.shape[:-2], len(range(period[0])[rows]), period[1])
    if not work.keeps(shape, spectrum.real.dtype):
        lines = scipy.fft.ifft(spectrum, axis=-2, overwrite_x=True, workers=FFT_WORKERS)
        return scipy.fft.irfft(lines[..., rows, :], n=period[1], axis=-1, workers=FFT_WORKERS)
    np.fft.ifft(spectrum, axis=-2, out=spectrum)
    real = work.get("real", shape, spectrum.real.dtype)
    return np.fft.irfft(spectrum[..., rows, :], n=period[1], axis=-1, out=real)


def _valid(spectrum, period, m, k, work, dtype):
    """Valid-mode result: samples ``k - 1 .. m - 1`` of the circular convolution (new array)."""
    real = _real_rows(spectrum, period, slice(k[0] - 1, m[0]), work)
    out = work.output("valid", (*real.shape[:-1], m[1] - k[1] + 1), dtype)
    out[...] = real[..., k[1] - 1 : m[1]]
    return out


def _adjoint(spectrum, period, m, k, work, dtype):
    """Full-mode correlation ``(..., m1, m2)`` (new array): the adjoint of :func:`_valid`.

    With ``spectrum = G conj(K)``, ``c[j] = sum_i g[i] K[i - j]`` and the output index p
    corresponds to ``j = p - (k - 1)`` (mod L).
    """
    real = _real_rows(spectrum, period, slice(None), work)
    out = work.output("adjoint", (*real.shape[:-2], *m), dtype)
    _copy_wrapped(real, (1 - k[0], 1 - k[1]), out)
    return out


def _kernel_part(spectrum, period, k, work, dtype):
    """Kernel gradient (new array): with ``spectrum = X conj(G)``, ``c[t] = sum_n g[n]
    x[n + t]`` and ``dK[j] = c[k - 1 - j]``."""
    real = _real_rows(spectrum, period, slice(0, k[0]), work)
    return np.array(real[..., k[0] - 1 :: -1, k[1] - 1 :: -1], dtype=dtype)


def _copy_wrapped(source, start, out):
    """``out[..., i, j] = source[..., (start0 + i) % L1, (start1 + j) % L2]``, in blocks."""
    blocks = []
    for axis in (0, 1):
        period, n = source.shape[axis - 2], out.shape[axis - 2]
        first = start[axis] % period
        length = min(n, period - first)
        blocks.append(
            [(slice(first, first + length), slice(0, length))]
            + ([(slice(0, n - length), slice(length, n))] if n > length else [])
        )
    for rows_from, rows_to in blocks[0]:
        for cols_from, cols_to in blocks[1]:
            out[..., rows_to, cols_to] = source[..., rows_from, cols_from]


def _sum_lead(x, lead):
    """Sum ``x`` (..., a, b) over the leading axes that were broadcast to reach it from an
    array whose leading shape is ``lead``; the last two axes are kept."""
    extra = x.ndim - 2 - len(lead)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(lead) if n == 1 and x.shape[extra + i] != 1
    )
    return np.sum(x, axis=axes, keepdims=True).reshape(*lead, *x.shape[-2:]) if axes else x


def _check_batch(out, x):
    if out.shape[:-2] != x.shape[:-2]:
        raise ValueError(
            f"a kernel stack with leading shape {out.shape[:-2]} does not match images with "
            f"leading shape {x.shape[:-2]}; broadcast the images to the kernel stack first"
        )


def _check_sizes(m, k):
    if m[0] < k[0] or m[1] < k[1]:
        raise ValueError(f"image {tuple(m)} is smaller than the kernel {tuple(k)}")


# ------------------------------------------------------------------------ fixed kernels
class _KernelTransformCache:
    """A fixed kernel and its real FFTs at every period it has been used with."""

    def __init__(self, kernel: np.ndarray):
        self.kernel = np.ascontiguousarray(kernel, dtype=np.float64)
        if self.kernel.ndim < 2:
            raise ValueError(f"kernel must have >= 2 dims (..., k1, k2); got {self.kernel.shape}")
        self.key = (self.kernel.shape, hashlib.sha1(self.kernel.tobytes()).hexdigest())
        self._transforms: dict = {}

    def transform(self, period, dtype, conjugate=False) -> np.ndarray:
        key = (tuple(period), np.dtype(dtype).str, conjugate)
        if key not in self._transforms:
            ft = scipy.fft.rfft2(self.kernel, s=period)
            ft = ft.astype(np.result_type(dtype, np.complex64))
            self._transforms[key] = np.conj(ft) if conjugate else ft
        return self._transforms[key]


class _FixedKernelOp(_UsesWorkspace, Op):
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

    def _chunked(self, x, period, m, k, out_tail, finish, conjugate=False):
        """Multiply the spectrum of ``x`` by the kernel's and ``finish(spectrum, period, m, k,
        work, dtype)``: over the whole batch, or over chunks of its first axis when the spectra
        would exceed :data:`CONVOLVE_CHUNK_BYTES` (e.g. the basis maps of 1000 galaxies), so
        the working memory is a few spectra of one chunk."""
        transform = self._cache.transform(period, x.dtype, conjugate)
        lead = np.broadcast_shapes(x.shape[:-2], transform.shape[:-2])
        work = self.work

        def block(images, transform):
            lead = np.broadcast_shapes(images.shape[:-2], transform.shape[:-2])
            spectrum = _spectrum(images, period, work, "x", lead=lead)
            np.multiply(spectrum, transform, out=spectrum)
            return finish(spectrum, period, m, k, work, x.dtype)

        spectrum_bytes = 16 * math.prod(lead) * period[0] * (period[1] // 2 + 1)
        if len(lead) == 0 or spectrum_bytes <= CONVOLVE_CHUNK_BYTES:
            out = block(x, transform)
            _check_batch(out, x)
            return out
        x = np.broadcast_to(x, (*lead, *x.shape[-2:]))
        transform = np.broadcast_to(transform, (*lead, *transform.shape[-2:]))
        step = max(1, int(lead[0] * CONVOLVE_CHUNK_BYTES // spectrum_bytes))
        out = np.empty((*lead, *out_tail), dtype=x.dtype)
        for start in range(0, lead[0], step):
            chunk = slice(start, start + step)
            out[chunk] = block(x[chunk], transform[chunk])
        return out


class FixedKernelConvolution(_FixedKernelOp):
    """Valid-mode convolution ``(..., M1, M2) -> (..., M1 - k1 + 1, M2 - k2 + 1)`` by FFT."""

    def _output_length(self, axis, n):
        return n - self.kernel_shape[axis] + 1

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = self.convolve(inputs[0])

    def convolve(self, x: np.ndarray) -> np.ndarray:
        """The numpy computation: valid-mode convolution of ``x`` (..., M1, M2)."""
        k, m = self.kernel_shape, x.shape[-2:]
        _check_sizes(m, k)
        tail = (m[0] - k[0] + 1, m[1] - k[1] + 1)
        return self._chunked(x, fft_shape(m), m, k, tail, _valid)

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
        k = self.kernel_shape
        m = (g.shape[-2] + k[0] - 1, g.shape[-1] + k[1] - 1)
        return self._chunked(g, fft_shape(m), m, k, m, _adjoint, conjugate=True)

    def L_op(self, inputs, outputs, output_grads):
        return [FixedKernelConvolution(self._cache)(output_grads[0])]


# --------------------------------------------------------------------- symbolic kernels
def _float_inputs(*tensors):
    tensors = [pt.as_tensor_variable(t) for t in tensors]
    dtype = upcast(*(t.dtype for t in tensors))
    if dtype not in ("float32", "float64"):
        dtype = "float64"
    return [t if t.dtype == dtype else pt.cast(t, dtype) for t in tensors], dtype


def _check_ndims(name, x, k):
    if x.ndim < 2 or k.ndim < 2:
        raise ValueError(f"{name}: images and kernel need >= 2 dims; got {x.ndim} and {k.ndim}")


def _static_lead(*types):
    """Broadcast static leading shapes (None where unknown)."""
    ndim = max(len(t.shape) for t in types) - 2
    lead = []
    for axis in range(ndim):
        sizes = []
        for t in types:
            offset = axis - (ndim - (len(t.shape) - 2))
            sizes.append(t.shape[offset] if offset >= 0 else 1)
        known = [n for n in sizes if n is not None and n != 1]
        if any(n is None for n in sizes):
            lead.append(known[0] if known else None)
        else:
            lead.append(known[0] if known else 1)
    return tuple(lead)


class KernelConvolution(_UsesWorkspace, Op):
    """Valid-mode convolution of images ``(..., M1, M2)`` with a kernel (stack) given as a
    tensor ``(..., k1, k2)``: ``(..., M1 - k1 + 1, M2 - k2 + 1)``.

    Leading axes broadcast. Gradients with respect to both inputs come from
    :class:`KernelConvolutionGrad`.
    """

    __props__ = ()

    def make_node(self, x, kernel):
        (x, kernel), dtype = _float_inputs(x, kernel)
        _check_ndims(type(self).__name__, x, kernel)
        tail = tuple(
            None if (m is None or k is None) else m - k + 1
            for m, k in zip(x.type.shape[-2:], kernel.type.shape[-2:])
        )
        out = pt.tensor(dtype=dtype, shape=(*_static_lead(x.type, kernel.type), *tail))
        return Apply(self, [x, kernel], [out])

    def infer_shape(self, fgraph, node, shapes):
        xs, ks = shapes
        lead = _symbolic_lead(node, xs, ks)
        return [(*lead, xs[-2] - ks[-2] + 1, xs[-1] - ks[-1] + 1)]

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = convolve_numpy(*inputs, work=self.work)

    def L_op(self, inputs, outputs, output_grads):
        return KernelConvolutionGrad()(*inputs, output_grads[0])


class KernelConvolutionGrad(_UsesWorkspace, Op):
    """Gradients of :class:`KernelConvolution`: ``(x, kernel, g) -> (dx, dkernel)``, each of
    its input's shape (summed over the axes the input was broadcast along)."""

    __props__ = ()

    def make_node(self, x, kernel, g):
        (x, kernel, g), dtype = _float_inputs(x, kernel, g)
        _check_ndims(type(self).__name__, x, kernel)
        outs = [pt.tensor(dtype=dtype, shape=v.type.shape) for v in (x, kernel)]
        return Apply(self, [x, kernel, g], outs)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], shapes[1]]

    def perform(self, node, inputs, output_storage):
        dx, dk = convolution_gradients_numpy(*inputs, work=self.work)
        output_storage[0][0] = dx
        output_storage[1][0] = dk

    def L_op(self, inputs, outputs, output_grads):
        # Second derivatives. dx = A_K^T g is linear in K and in g, so <gdx, dx> = <g, A_K gdx>;
        # dK is the kernel gradient of <g, A_K x>, so <gdK, dK> = <g, A_gdK x>.
        x, kernel, g = inputs
        gdx, gdk = output_grads
        grad_op, conv = KernelConvolutionGrad(), KernelConvolution()
        grads = [pt.zeros_like(x), pt.zeros_like(kernel), pt.zeros_like(g)]
        if not isinstance(gdx.type, DisconnectedType):
            grads[1] = grads[1] + grad_op(gdx, kernel, g)[1]
            grads[2] = grads[2] + conv(gdx, kernel)
        if not isinstance(gdk.type, DisconnectedType):
            grads[0] = grads[0] + grad_op(x, gdk, g)[0]
            grads[2] = grads[2] + conv(x, gdk)
        return grads


def _symbolic_lead(node, xs, ks):
    x, k = node.inputs[:2]
    ndim = max(x.ndim, k.ndim) - 2
    lead = []
    for axis in range(ndim):
        ox, ok = axis - (ndim - (x.ndim - 2)), axis - (ndim - (k.ndim - 2))
        sx = xs[ox] if ox >= 0 else 1
        sk = ks[ok] if ok >= 0 else 1
        if ox >= 0 and x.type.shape[ox] != 1:
            lead.append(sx)
        else:
            lead.append(sk)
    return lead


def _product(a, b, work):
    """``a * b`` in ``a`` when that has the broadcast shape, else in a work array."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    out = a if a.shape == shape else work.get("product", shape, a.dtype)
    return np.multiply(a, b, out=out)


def convolve_numpy(x, kernel, work=None):
    """Valid-mode convolution of ``x`` (..., M1, M2) with ``kernel`` (..., k1, k2) in numpy."""
    work = _Workspace() if work is None else work
    m, k = x.shape[-2:], kernel.shape[-2:]
    _check_sizes(m, k)
    period = fft_shape(m)
    spectrum = _product(
        _spectrum(x, period, work, "x"), _spectrum(kernel, period, work, "kernel"), work
    )
    return _valid(spectrum, period, m, k, work, np.result_type(x, kernel))


def convolution_gradients_numpy(x, kernel, g, work=None):
    """Gradients of ``sum(g * convolve_numpy(x, kernel))`` with respect to ``x`` and ``kernel``."""
    work = _Workspace() if work is None else work
    m, k = x.shape[-2:], kernel.shape[-2:]
    period = fft_shape(m)
    dtype = np.result_type(x, kernel, g)
    spectrum_g = _spectrum(g, period, work, "g")
    # kernel: the cross spectrum X conj(G), summed over the axes the kernel was broadcast along
    cross = work.get("cross", spectrum_g.shape, spectrum_g.dtype)
    np.conjugate(spectrum_g, out=cross)
    cross = _sum_lead(_product(cross, _spectrum(x, period, work, "x"), work), kernel.shape[:-2])
    dk = _kernel_part(cross, period, k, work, dtype)
    # images: the correlation of g with the kernel
    spectrum_k = _spectrum(kernel, period, work, "kernel")
    np.conjugate(spectrum_k, out=spectrum_k)
    dx = _sum_lead(
        _adjoint(_product(spectrum_g, spectrum_k, work), period, m, k, work, dtype), x.shape[:-2]
    )
    return np.ascontiguousarray(dx), dk


def convolve_valid(images, kernel):
    """Valid-mode 2-D convolution of a batch of images with a PSF kernel (or kernel stack).

    Parameters
    ----------
    images : tensor, shape ``(..., M1, M2)``
    kernel : ndarray or tensor, shape ``(..., k1, k2)``
        A numpy kernel takes the cached-FFT path (:class:`FixedKernelConvolution`); a symbolic
        one :class:`KernelConvolution`. Leading kernel axes broadcast against the images'
        leading axes.

    Returns
    -------
    tensor, shape ``(..., M1 - k1 + 1, M2 - k2 + 1)``
    """
    if isinstance(kernel, np.ndarray):
        return FixedKernelConvolution(kernel)(images)
    return KernelConvolution()(images, kernel)


# ---------------------------------------------------------------------- other backends
def _jax_spectrum(x, period):
    import jax.numpy as jnp

    return jnp.fft.rfft2(x, s=period)


def _jax_real(spectrum, period, rows, cols, dtype):
    import jax.numpy as jnp

    return jnp.fft.irfft2(spectrum, s=period)[..., rows, :][..., cols].astype(dtype)


def _register_jax():
    """JAX implementations of our ops (numpyro, blackjax and nutpie's JAX backend)."""
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(FixedKernelConvolution)
    def _jax_fixed_convolution(op, node=None, **kwargs):
        k = op.kernel_shape

        def convolve(x):
            m = x.shape[-2:]
            period = fft_shape(m)
            kernel_ft = jnp.asarray(op._cache.transform(period, x.dtype))
            spectrum = _jax_spectrum(x, period) * kernel_ft
            valid = slice(k[0] - 1, m[0]), slice(k[1] - 1, m[1])
            return _jax_real(spectrum, period, *valid, x.dtype)

        return convolve

    @jax_funcify.register(FixedKernelCorrelation)
    def _jax_fixed_correlation(op, node=None, **kwargs):
        k = op.kernel_shape

        def correlate(g):
            m = (g.shape[-2] + k[0] - 1, g.shape[-1] + k[1] - 1)
            period = fft_shape(m)
            kernel_ft = jnp.conj(jnp.asarray(op._cache.transform(period, g.dtype)))
            rows = (np.arange(m[0]) - (k[0] - 1)) % period[0]
            cols = (np.arange(m[1]) - (k[1] - 1)) % period[1]
            return _jax_real(_jax_spectrum(g, period) * kernel_ft, period, rows, cols, g.dtype)

        return correlate

    @jax_funcify.register(KernelConvolution)
    def _jax_convolution(op, node=None, **kwargs):
        dtype = node.outputs[0].dtype
        valid = _jax_batched("valid")

        def convolve(x, kernel):
            return valid(x, kernel).astype(dtype)

        return convolve

    @jax_funcify.register(KernelConvolutionGrad)
    def _jax_convolution_grad(op, node=None, **kwargs):
        dtype = node.outputs[0].dtype
        full, valid = _jax_batched("full"), _jax_batched("valid")

        def gradients(x, kernel, g):
            # dx = g convolved (full) with the flipped kernel; dK = x convolved (valid) with the
            # flipped g, flipped
            dx = full(g, kernel[..., ::-1, ::-1])
            dk = valid(x, g[..., ::-1, ::-1])[..., ::-1, ::-1]
            return (
                _jax_sum_to(dx, x.shape).astype(dtype),
                _jax_sum_to(dk, kernel.shape).astype(dtype),
            )

        return gradients


def _jax_batched(mode):
    """``jax.scipy.signal.fftconvolve`` over leading axes (XLA fuses it better with the rest
    of a model than a hand-written transform at a fast length; measured)."""
    import jax.numpy as jnp
    import jax.scipy.signal as jsignal

    return jnp.vectorize(
        lambda a, b: jsignal.fftconvolve(a, b, mode=mode), signature="(i,j),(k,l)->(m,n)"
    )


def _jax_sum_to(value, shape):
    extra = value.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape[:-2]) if n == 1 and value.shape[extra + i] != 1
    )
    return value.sum(axis=axes, keepdims=True).reshape(shape) if axes else value


def _register_numba():
    """Numba: our scipy FFTs in one explicit object-mode block per op (numba has no FFT)."""
    import numba
    from pytensor.link.numba.dispatch import numba_funcify

    def array_type(variable):
        return numba.types.Array(numba.from_dtype(np.dtype(variable.dtype)), variable.ndim, "C")

    for op_class in (FixedKernelConvolution, FixedKernelCorrelation):

        @numba_funcify.register(op_class)
        def _numba_fixed_kernel(op, node=None, **kwargs):
            compute = op.convolve if isinstance(op, FixedKernelConvolution) else op.correlate
            ret_sig = array_type(node.outputs[0])

            @numba.njit
            def fixed_kernel(x):
                with numba.objmode(y=ret_sig):
                    y = compute(x)
                return y

            return fixed_kernel

    @numba_funcify.register(KernelConvolution)
    def _numba_convolution(op, node=None, **kwargs):
        ret_sig = array_type(node.outputs[0])
        # closure variables: object-mode blocks see no module globals
        compute = functools.partial(convolve_numpy, work=op.work)

        @numba.njit
        def convolve(x, kernel):
            with numba.objmode(y=ret_sig):
                y = compute(x, kernel)
            return y

        return convolve

    @numba_funcify.register(KernelConvolutionGrad)
    def _numba_convolution_grad(op, node=None, **kwargs):
        ret_sig = numba.types.Tuple([array_type(out) for out in node.outputs])

        compute = functools.partial(convolution_gradients_numpy, work=op.work)

        @numba.njit
        def gradients(x, kernel, g):
            with numba.objmode(grads=ret_sig):
                grads = compute(x, kernel, g)
            return grads

        return gradients


try:
    _register_jax()
except ImportError:  # JAX not installed: the C and numba backends still work
    pass
try:
    _register_numba()
except ImportError:
    pass
