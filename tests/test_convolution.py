import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import signal

from pymc_tracers import convolution
from pymc_tracers.convolution import (
    FixedKernelConvolution,
    FixedKernelCorrelation,
    HeldKernelConvolution,
    KernelConvolution,
    KernelConvolutionGrad,
    convolve_valid,
)


@pytest.mark.parametrize(
    "image_shape, kernel_size", [((2, 23, 31), 7), ((17, 17), 17), ((3, 40, 12), 5)]
)
def test_fixed_kernel_matches_direct_valid_convolution(rng, image_shape, kernel_size):
    images = rng.normal(size=image_shape)
    kernel = rng.uniform(size=(kernel_size, kernel_size))  # asymmetric: catches flips
    out = FixedKernelConvolution(kernel)(pt.as_tensor(images)).eval()
    flat = images.reshape(-1, *image_shape[-2:])
    expected = np.stack([signal.convolve2d(im, kernel, mode="valid") for im in flat])
    np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=1e-10, atol=1e-12)


def test_correlation_is_the_adjoint(rng):
    kernel = rng.uniform(size=(5, 5))
    x = rng.normal(size=(2, 20, 26))
    y = rng.normal(size=(2, 16, 22))
    ax = FixedKernelConvolution(kernel)(pt.as_tensor(x)).eval()
    aty = FixedKernelCorrelation(kernel)(pt.as_tensor(y)).eval()
    assert aty.shape == x.shape
    assert np.sum(ax * y) == pytest.approx(np.sum(x * aty), rel=1e-12)


def test_gradients_through_the_fft_op(rng):
    kernel = rng.uniform(size=(5, 5))
    weights = rng.normal(size=(8, 9))
    # verify_grad raises if the analytic and finite-difference gradients differ
    verify_grad(
        lambda x: FixedKernelConvolution(kernel)(x) * weights,
        [rng.normal(size=(12, 13))],
        rng=rng,
    )
    # verify_grad raises if the analytic and finite-difference gradients differ
    verify_grad(lambda g: FixedKernelCorrelation(kernel)(g), [rng.normal(size=(6, 7))], rng=rng)


def test_symbolic_kernel_path_agrees(rng):
    kernel = rng.uniform(size=(5, 5))
    images = rng.normal(size=(2, 14, 15))
    fixed = convolve_valid(pt.as_tensor(images), kernel).eval()
    k = pt.dmatrix("k")
    symbolic = pytensor.function([k], convolve_valid(pt.as_tensor(images), k))(kernel)
    np.testing.assert_allclose(fixed, symbolic, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32(rng):
    kernel = rng.uniform(size=(3, 3))
    x = pt.tensor("x", dtype="float32", shape=(None, None))
    out = FixedKernelConvolution(kernel)(x)
    assert out.dtype == "float32"
    value = pytensor.function([x], out)(rng.normal(size=(6, 6)).astype("float32"))
    assert value.dtype == np.float32 and value.shape == (4, 4)


def test_ops_with_equal_kernels_are_equal(rng):
    kernel = rng.uniform(size=(3, 3))
    assert FixedKernelConvolution(kernel) == FixedKernelConvolution(kernel.copy())
    assert FixedKernelConvolution(kernel) != FixedKernelConvolution(kernel * 2)


def test_large_batches_are_convolved_in_chunks_with_the_same_result(rng, monkeypatch):
    """Batches whose spectra exceed CONVOLVE_CHUNK_BYTES run a chunk of galaxies at a time:
    per-galaxy kernels, a shared image broadcast to them, and extra leading axes."""
    kernels = rng.random((7, 5, 5))
    kernels /= kernels.sum(axis=(-2, -1), keepdims=True)
    op = FixedKernelConvolution(kernels)
    images = rng.random((3, 7, 16, 18))
    shared = rng.random((16, 18))
    whole = op.convolve(images), op.convolve(np.broadcast_to(shared, (7, 16, 18)))
    monkeypatch.setattr(convolution.fft, "CONVOLVE_CHUNK_BYTES", 4000)
    chunked = op.convolve(images), op.convolve(np.broadcast_to(shared, (7, 16, 18)))
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    for g in range(7):
        expected = signal.convolve2d(images[1, g], kernels[g], mode="valid")
        np.testing.assert_allclose(chunked[0][1, g], expected, rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------ symbolic kernels (fitted PSFs)
def _valid_reference(images, kernels):
    """scipy's valid-mode FFT convolution, image by image, kernels broadcast like numpy."""
    lead = np.broadcast_shapes(images.shape[:-2], kernels.shape[:-2])
    images = np.broadcast_to(images, (*lead, *images.shape[-2:]))
    kernels = np.broadcast_to(kernels, (*lead, *kernels.shape[-2:]))
    pairs = zip(images.reshape(-1, *images.shape[-2:]), kernels.reshape(-1, *kernels.shape[-2:]))
    out = [signal.fftconvolve(im, k, mode="valid") for im, k in pairs]
    return np.reshape(out, (*lead, *out[0].shape))


@pytest.mark.parametrize(
    "image_shape, kernel_shape",
    [
        ((2, 3, 20, 23), (3, 5, 7)),  # light and light x tracer of 3 galaxies, a PSF each
        ((4, 19, 17), (19, 17)),  # one PSF for a batch, kernel as large as the image
        ((3, 30, 28), (3, 9, 9)),
        ((31, 33), (1, 11, 11)),  # a length-1 kernel axis broadcasts
    ],
)
def test_symbolic_kernel_matches_scipy_valid_convolution(rng, image_shape, kernel_shape):
    images = rng.normal(size=image_shape)
    kernels = rng.uniform(size=kernel_shape)  # asymmetric: catches flips
    x, k = pt.tensor(shape=(None,) * len(image_shape)), pt.tensor(shape=(None,) * len(kernel_shape))
    out = pytensor.function([x, k], KernelConvolution()(x, k))(images, kernels)
    np.testing.assert_allclose(out, _valid_reference(images, kernels), rtol=1e-10, atol=1e-12)
    assert convolve_valid(x, k).owner.op == KernelConvolution()


def test_symbolic_kernel_gradients_for_both_inputs(rng):
    images = rng.normal(size=(2, 3, 14, 15))
    kernels = rng.uniform(size=(3, 5, 4))
    weights = rng.normal(size=(2, 3, 10, 12))
    # verify_grad raises if the analytic and finite-difference gradients differ
    verify_grad(lambda x, k: KernelConvolution()(x, k) * weights, [images, kernels], rng=rng)
    # a kernel shared by all images: its gradient sums over the batch
    verify_grad(lambda x, k: KernelConvolution()(x, k) * weights, [images, kernels[0]], rng=rng)
    # an image shared by all kernels
    verify_grad(
        lambda x, k: KernelConvolution()(x, k) * weights[0], [images[0, 0], kernels], rng=rng
    )


def test_symbolic_kernel_second_derivatives(rng):
    x = rng.normal(size=(2, 12, 11))
    k = rng.uniform(size=(2, 4, 3))
    g = rng.normal(size=(2, 9, 9))
    for output in (0, 1):
        verify_grad(lambda *a: KernelConvolutionGrad()(*a)[output], [x, k, g], rng=rng)


def test_repeated_calls_reuse_work_arrays_safely(rng):
    """Spectra live in arrays kept between calls; outputs must not alias them."""
    x, k = pt.tensor4(), pt.tensor3()
    y = KernelConvolution()(x, k)
    f = pytensor.function([x, k], [y, *pytensor.grad(pt.sum(y**2), [x, k])])
    a, b = rng.normal(size=(2, 3, 16, 16)), rng.uniform(size=(3, 5, 5))
    first = [v.copy() for v in f(a, b)]
    kept = f(a, b)
    f(rng.normal(size=(2, 3, 16, 16)), rng.uniform(size=(3, 5, 5)))  # other values, same shapes
    for v, w in zip(first, kept):
        np.testing.assert_array_equal(v, w)


def test_float32_symbolic_kernel(rng):
    x = pt.tensor("x", dtype="float32", shape=(None, None, None))
    k = pt.tensor("k", dtype="float32", shape=(None, None))
    out = KernelConvolution()(x, k)
    assert out.dtype == "float32"
    images, kernel = rng.normal(size=(2, 9, 8)), rng.uniform(size=(3, 3))
    value = pytensor.function([x, k], out)(images.astype("float32"), kernel.astype("float32"))
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, _valid_reference(images, kernel), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["NUMBA", "JAX"])
def test_other_backends_agree_with_c(rng, mode):
    """Values and gradients of every op, with no object-mode fallback in numba."""
    if mode == "JAX":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
    images, kernels = rng.normal(size=(2, 3, 18, 17)), rng.uniform(size=(3, 7, 5))
    weights = rng.normal(size=(2, 3, 12, 13))
    x, k = pt.tensor4("x"), pt.tensor3("k")
    fixed = pt.sum(FixedKernelConvolution(kernels)(x) * weights)
    fitted = pt.sum(KernelConvolution()(x, k) * weights)
    outputs = [fixed, fitted, *pytensor.grad(fixed + fitted**2, [x, k])]
    reference = pytensor.function([x, k], outputs, mode="FAST_RUN")(images, kernels)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*object mode.*")
        other = pytensor.function([x, k], outputs, mode=mode)(images, kernels)
    for a, b in zip(other, reference):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-10)


def test_a_kernel_held_as_data_convolves_like_a_fixed_one_and_follows_its_values(rng):
    """The held-kernel op equals the fixed-kernel op for each kernel value it is given (its
    cached transform must follow a swap), its image gradient passes verify_grad, and it gives
    no gradient to the kernel (data, not a parameter)."""
    images = rng.normal(size=(3, 20, 19))
    first, second = rng.uniform(size=(3, 7, 5)), rng.uniform(size=(3, 7, 5))
    kernel = pytensor.shared(first)
    x = pt.tensor3("x")
    convolve = pytensor.function([x], HeldKernelConvolution()(x, kernel))
    for value in (first, second, first):
        kernel.set_value(value)
        np.testing.assert_allclose(
            convolve(images), _valid_reference(images, value), rtol=1e-10, atol=1e-12
        )
    weights = rng.normal(size=(3, 14, 15))
    # verify_grad raises if the analytic and finite-difference gradients differ
    verify_grad(lambda v: HeldKernelConvolution()(v, second) * weights, [images], rng=rng)
    with pytest.raises(pytensor.gradient.DisconnectedInputError):
        pytensor.grad(pt.sum(HeldKernelConvolution()(x, kernel)), kernel)


@pytest.mark.parametrize("mode", ["NUMBA", "JAX"])
@pytest.mark.parametrize("frozen", [False, True])
def test_held_kernels_agree_across_backends(rng, mode, frozen):
    """Values and image gradients in numba and JAX, with the kernel as data (swappable) or
    frozen into a constant (what nutpie does to a model it need not swap), after a swap."""
    if mode == "JAX":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
    images, weights = rng.normal(size=(2, 3, 18, 17)), rng.normal(size=(2, 3, 12, 13))
    first, second = rng.uniform(size=(3, 7, 5)), rng.uniform(size=(3, 7, 5))
    kernel = pt.constant(second) if frozen else pytensor.shared(first)
    x = pt.tensor4("x")
    value = pt.sum(HeldKernelConvolution()(x, kernel) * weights)
    outputs = [value, pytensor.grad(value**2, x)]
    if not frozen:
        kernel.set_value(second)
    reference = [
        np.sum(_valid_reference(images, second) * weights),
        None,
    ]
    c_outputs = pytensor.function([x], outputs, mode="FAST_RUN")(images)
    reference[1] = c_outputs[1]
    assert c_outputs[0] == pytest.approx(reference[0], rel=1e-10)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*object mode.*")
        other = pytensor.function([x], outputs, mode=mode)(images)
    for a, b in zip(other, reference):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-10)


def test_pytensor_dispatch_is_left_alone():
    """Importing the library registers JAX only for its own ops, not PyTensor's."""
    pytest.importorskip("jax")
    from pytensor.link.jax.dispatch import jax_funcify
    from pytensor.tensor.blockwise import Blockwise
    from pytensor.tensor.signal.conv import Convolve2d

    for op_class in (Blockwise, Convolve2d):
        assert not jax_funcify.dispatch(op_class).__module__.startswith("pymc_tracers")
    for op_class in (FixedKernelConvolution, KernelConvolution, KernelConvolutionGrad):
        assert jax_funcify.dispatch(op_class).__module__ == convolution.backends.__name__


def test_arrays_too_large_to_keep_give_the_same_result(rng, monkeypatch):
    """Spectra too large for the kept work arrays take scipy's threaded FFTs instead."""
    x, k = rng.normal(size=(3, 20, 23)), rng.uniform(size=(3, 5, 7))
    g = rng.normal(size=(3, 16, 17))

    def results():
        ops = FixedKernelConvolution(k), FixedKernelCorrelation(k)
        return [
            ops[0].convolve(x),
            ops[1].correlate(g),
            convolution.convolve_numpy(x, k),
            *convolution.convolution_gradients_numpy(x, k, g),
        ]

    kept = results()
    monkeypatch.setattr(convolution.fft, "WORKSPACE_BYTES", 0)
    for a, b in zip(kept, results()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
