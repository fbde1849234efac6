import numpy as np
import pytest

import pymc_tracers as pmt


def test_pixel_centres_follow_the_documented_convention():
    grid = pmt.PixelGrid((4, 5), pixel_scale=0.1, center=(1.0, -2.0))
    x, y = grid.coordinates()
    assert x.shape == y.shape == (4, 5)
    # x along columns, y along rows, centred on `center`
    np.testing.assert_allclose(x[0], 1.0 + (np.arange(5) - 2.0) * 0.1)
    np.testing.assert_allclose(y[:, 0], -2.0 + (np.arange(4) - 1.5) * 0.1)
    assert np.ptp(x[:, 3]) == 0 and np.ptp(y[2]) == 0


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_subpixels_sit_at_centres_of_an_even_split(s):
    grid = pmt.PixelGrid((3, 2), pixel_scale=0.3, supersampling=s, center=(0.05, 0.0))
    xs, ys = grid.supersampled_coordinates()
    assert xs.shape == (3 * s, 2 * s)
    x_pix, y_pix = grid.coordinates()
    for i in range(3):
        for j in range(2):
            block_x = xs[i * s : (i + 1) * s, j * s : (j + 1) * s]
            block_y = ys[i * s : (i + 1) * s, j * s : (j + 1) * s]
            # sub-pixel centres average to the pixel centre and are spaced pixel/s apart
            np.testing.assert_allclose(block_x.mean(), x_pix[i, j], atol=1e-14)
            np.testing.assert_allclose(block_y.mean(), y_pix[i, j], atol=1e-14)
            expected = x_pix[i, j] - 0.15 + (np.arange(s) + 0.5) * 0.3 / s
            np.testing.assert_allclose(block_x[0], expected, atol=1e-14)


def test_padding_extends_the_supersampled_grid_evenly():
    grid = pmt.PixelGrid((3, 3), pixel_scale=0.2, supersampling=3)
    x0, _ = grid.supersampled_coordinates()
    x2, y2 = grid.supersampled_coordinates(pad=2)
    assert x2.shape == (13, 13)
    np.testing.assert_allclose(x2[2:-2, 2:-2], x0)
    np.testing.assert_allclose(x2[0, :2], x0[0, 0] - np.array([2, 1]) * 0.2 / 3)


def test_binning_sums_subpixels():
    grid = pmt.PixelGrid((2, 3), pixel_scale=1.0, supersampling=2)
    fine = np.arange(24.0).reshape(4, 6)
    binned = grid.bin(fine)
    assert binned.shape == (2, 3)
    assert binned[1, 2] == fine[2:4, 4:6].sum()
    np.testing.assert_allclose(binned.sum(), fine.sum())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape=(10,), pixel_scale=0.1), "shape"),
        (dict(shape=(10, 0), pixel_scale=0.1), "shape"),
        (dict(shape=(10, 2.5), pixel_scale=0.1), "shape"),
        (dict(shape=(10, 10), pixel_scale=0.0), "pixel_scale"),
        (dict(shape=(10, 10), pixel_scale=-0.1), "pixel_scale"),
        (dict(shape=(10, 10), pixel_scale=np.nan), "pixel_scale"),
        (dict(shape=(10, 10), pixel_scale=0.1, supersampling=0), "supersampling"),
        (dict(shape=(10, 10), pixel_scale=0.1, supersampling=1.5), "supersampling"),
        (dict(shape=(10, 10), pixel_scale=0.1, center=(0.0,)), "center"),
    ],
)
def test_bad_grids_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pmt.PixelGrid(**kwargs)
