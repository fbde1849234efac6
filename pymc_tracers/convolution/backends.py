"""JAX and numba implementations of the convolution ops, registered for these ops only
(nothing of PyTensor's own dispatch changes). Imported by the package, so importing
:mod:`pymc_tracers.convolution` registers them."""

from __future__ import annotations

import functools

import numpy as np
from pytensor.graph.basic import Constant
from pytensor.tensor.shape import SpecifyShape

from pymc_tracers.convolution.fft import convolution_gradients_numpy, convolve_numpy, fft_shape
from pymc_tracers.convolution.ops import (
    FixedKernelConvolution,
    FixedKernelCorrelation,
    HeldKernelConvolution,
    HeldKernelCorrelation,
    KernelConvolution,
    KernelConvolutionGrad,
)


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

    def _held_kernel_transform(node, conjugate):
        """The kernel input's transform at a period: computed in numpy at trace time when the
        kernel is a constant (a model whose data nutpie froze), else in the graph from the
        data's current values."""
        kernel = node.inputs[1]
        while kernel.owner is not None and isinstance(kernel.owner.op, SpecifyShape):
            kernel = kernel.owner.inputs[0]  # the held kernel is shape-specified model data
        if isinstance(kernel, Constant):
            cache = FixedKernelConvolution(np.asarray(kernel.data))._cache
            return lambda values, period, dtype: jnp.asarray(
                cache.transform(period, dtype, conjugate)
            )

        def transform(values, period, dtype):
            ft = jnp.fft.rfft2(values, s=period)
            return jnp.conj(ft) if conjugate else ft

        return transform

    @jax_funcify.register(HeldKernelConvolution)
    def _jax_held_convolution(op, node=None, **kwargs):
        transform = _held_kernel_transform(node, conjugate=False)

        def convolve(x, kernel):
            m, k = x.shape[-2:], kernel.shape[-2:]
            period = fft_shape(m)
            spectrum = _jax_spectrum(x, period) * transform(kernel, period, x.dtype)
            valid = slice(k[0] - 1, m[0]), slice(k[1] - 1, m[1])
            return _jax_real(spectrum, period, *valid, x.dtype)

        return convolve

    @jax_funcify.register(HeldKernelCorrelation)
    def _jax_held_correlation(op, node=None, **kwargs):
        transform = _held_kernel_transform(node, conjugate=True)

        def correlate(g, kernel):
            k = kernel.shape[-2:]
            m = (g.shape[-2] + k[0] - 1, g.shape[-1] + k[1] - 1)
            period = fft_shape(m)
            rows = (np.arange(m[0]) - (k[0] - 1)) % period[0]
            cols = (np.arange(m[1]) - (k[1] - 1)) % period[1]
            spectrum = _jax_spectrum(g, period) * transform(kernel, period, g.dtype)
            return _jax_real(spectrum, period, rows, cols, g.dtype)

        return correlate

    @jax_funcify.register(KernelConvolution)
    def _jax_convolution(op, node=None, **kwargs):
        dtype = node.outputs[0].dtype

        def convolve(x, kernel):
            m, k = x.shape[-2:], kernel.shape[-2:]
            period = fft_shape(m)  # valid mode: wrap-around only reaches discarded samples
            spectrum = _jax_spectrum(x, period) * _jax_spectrum(kernel, period)
            return _jax_real(spectrum, period, slice(k[0] - 1, m[0]), slice(k[1] - 1, m[1]), dtype)

        return convolve

    @jax_funcify.register(KernelConvolutionGrad)
    def _jax_convolution_grad(op, node=None, **kwargs):
        dtype = node.outputs[0].dtype

        def gradients(x, kernel, g):
            # at the forward op's fast length, so XLA shares the transforms of x and the kernel
            # with it: dx = g correlated with the kernel (full size), dK = x correlated with g
            # (the first k lags), flipped
            m, k = x.shape[-2:], kernel.shape[-2:]
            period = fft_shape(m)
            x_ft, kernel_ft, g_ft = (_jax_spectrum(v, period) for v in (x, kernel, g))
            rows = (np.arange(m[0]) - (k[0] - 1)) % period[0]
            cols = (np.arange(m[1]) - (k[1] - 1)) % period[1]
            dx = _jax_real(g_ft * jnp.conj(kernel_ft), period, rows, cols, dtype)
            lags = _jax_real(x_ft * jnp.conj(g_ft), period, slice(0, k[0]), slice(0, k[1]), dtype)
            return _jax_sum_to(dx, x.shape), _jax_sum_to(lags[..., ::-1, ::-1], kernel.shape)

        return gradients


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

    for op_class in (HeldKernelConvolution, HeldKernelCorrelation):

        @numba_funcify.register(op_class)
        def _numba_held_kernel(op, node=None, **kwargs):
            ret_sig = array_type(node.outputs[0])

            def compute(x, kernel):
                return op._compute(op.fixed_op(kernel), x)

            @numba.njit
            def held_kernel(x, kernel):
                with numba.objmode(y=ret_sig):
                    y = compute(x, kernel)
                return y

            return held_kernel

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
