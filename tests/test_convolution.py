import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import signal

from pymc_tracers import convolution
from pymc_tracers.convolution import FixedKernelConvolution, FixedKernelCorrelation, convolve_valid


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
    monkeypatch.setattr(convolution, "CONVOLVE_CHUNK_BYTES", 4000)
    chunked = op.convolve(images), op.convolve(np.broadcast_to(shared, (7, 16, 18)))
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    for g in range(7):
        expected = signal.convolve2d(images[1, g], kernels[g], mode="valid")
        np.testing.assert_allclose(chunked[0][1, g], expected, rtol=1e-10, atol=1e-13)
