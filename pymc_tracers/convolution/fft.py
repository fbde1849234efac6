"""Valid-mode FFT convolution in numpy: fast lengths, per-thread work arrays, the transforms
one axis at a time, and the convolution and its gradients (what every op's ``perform`` and
numba implementation call)."""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np
import scipy.fft

__all__ = ["fft_shape", "convolve_numpy", "convolution_gradients_numpy"]

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
