"""The convolution ops: a fixed kernel (its transform cached) and a kernel given as a tensor
(a fitted PSF), with their gradients."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytensor.tensor as pt
import scipy.fft
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.scalar import upcast

import pymc_tracers.convolution.fft as fft
from pymc_tracers.convolution.fft import (
    _adjoint,
    _check_batch,
    _check_sizes,
    _spectrum,
    _UsesWorkspace,
    _valid,
    convolution_gradients_numpy,
    convolve_numpy,
    fft_shape,
)

__all__ = [
    "FixedKernelConvolution",
    "FixedKernelCorrelation",
    "HeldKernelConvolution",
    "HeldKernelCorrelation",
    "KernelConvolution",
    "KernelConvolutionGrad",
    "convolve_valid",
]


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
        would exceed :data:`~pymc_tracers.convolution.fft.CONVOLVE_CHUNK_BYTES` (e.g. the
        basis maps of 1000 galaxies), so the working memory is a few spectra of one chunk."""
        transform = self._cache.transform(period, x.dtype, conjugate)
        lead = np.broadcast_shapes(x.shape[:-2], transform.shape[:-2])
        work = self.work

        def block(images, transform):
            lead = np.broadcast_shapes(images.shape[:-2], transform.shape[:-2])
            spectrum = _spectrum(images, period, work, "x", lead=lead)
            np.multiply(spectrum, transform, out=spectrum)
            return finish(spectrum, period, m, k, work, x.dtype)

        spectrum_bytes = 16 * math.prod(lead) * period[0] * (period[1] // 2 + 1)
        if len(lead) == 0 or spectrum_bytes <= fft.CONVOLVE_CHUNK_BYTES:
            out = block(x, transform)
            _check_batch(out, x)
            return out
        x = np.broadcast_to(x, (*lead, *x.shape[-2:]))
        transform = np.broadcast_to(transform, (*lead, *transform.shape[-2:]))
        step = max(1, int(lead[0] * fft.CONVOLVE_CHUNK_BYTES // spectrum_bytes))
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


# ------------------------------------------------------------- fixed kernels held as data
class _HeldKernelOp(_UsesWorkspace, Op):
    """A fixed kernel given as a second input (model data), so that a built model can take
    another PSF of the same stamp size: the arithmetic of the fixed-kernel op, whose kernel
    transform is recomputed only when the kernel's values change. No gradient flows to the
    kernel (it is data, not a parameter: a fitted PSF takes :class:`KernelConvolution`)."""

    __props__ = ()
    fixed_class: type = None

    def make_node(self, x, kernel):
        x = pt.as_tensor_variable(x)
        if x.dtype not in ("float32", "float64"):
            x = pt.cast(x, "float64")
        kernel = pt.as_tensor_variable(kernel)
        if kernel.dtype != "float64":
            kernel = pt.cast(kernel, "float64")
        if x.ndim < kernel.ndim or kernel.ndim < 2:
            raise ValueError(
                f"{type(self).__name__}: images with {x.ndim} dims cannot take a kernel of "
                f"{kernel.ndim} dims; give the images the kernel's leading axes"
            )
        tail = tuple(
            None if (n is None or k is None) else self._output_length(n, k)
            for n, k in zip(x.type.shape[-2:], kernel.type.shape[-2:])
        )
        return Apply(
            self, [x, kernel], [pt.tensor(dtype=x.dtype, shape=(*x.type.shape[:-2], *tail))]
        )

    def infer_shape(self, fgraph, node, shapes):
        xs, ks = shapes
        return [(*xs[:-2], *(self._output_length(n, k) for n, k in zip(xs[-2:], ks[-2:])))]

    def connection_pattern(self, node):
        return [[True], [False]]

    def fixed_op(self, kernel: np.ndarray):
        """The fixed-kernel op for ``kernel``'s current values (kept while they do not change:
        comparing the kernel costs far less than transforming it)."""
        held = getattr(self, "_held", None)
        if (
            held is None
            or held.kernel.shape != kernel.shape
            or not np.array_equal(held.kernel, kernel)
        ):
            held = self._held = self.fixed_class(kernel)
        return held

    def perform(self, node, inputs, output_storage):
        x, kernel = inputs
        output_storage[0][0] = self._compute(self.fixed_op(kernel), x)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_held", None)
        return state


class HeldKernelConvolution(_HeldKernelOp):
    """:class:`FixedKernelConvolution` with the kernel as model data: ``(x, kernel) -> y``."""

    fixed_class = FixedKernelConvolution

    @staticmethod
    def _output_length(n, k):
        return n - k + 1

    @staticmethod
    def _compute(op, x):
        return op.convolve(x)

    def L_op(self, inputs, outputs, output_grads):
        x, kernel = inputs
        return [HeldKernelCorrelation()(output_grads[0], kernel), DisconnectedType()()]


class HeldKernelCorrelation(_HeldKernelOp):
    """The adjoint of :class:`HeldKernelConvolution` (a full-mode correlation)."""

    fixed_class = FixedKernelCorrelation

    @staticmethod
    def _output_length(n, k):
        return n + k - 1

    @staticmethod
    def _compute(op, g):
        return op.correlate(g)

    def L_op(self, inputs, outputs, output_grads):
        g, kernel = inputs
        return [HeldKernelConvolution()(output_grads[0], kernel), DisconnectedType()()]


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
