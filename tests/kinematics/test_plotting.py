"""Kinematic figures are drawn from the arrays given, and the major-axis cut is geometric."""

import numpy as np

import pymc_tracers as pmt
from pymc_tracers.plotting.kinematics import (
    major_axis_cut,
    plot_kinematic_maps,
    plot_position_velocity,
    plot_rotation_curve,
)

GRID = pmt.PixelGrid((21, 25), pixel_scale=0.2)


def test_major_axis_cut_returns_offsets_along_the_axis():
    x, y = GRID.coordinates()
    phi, x0, y0 = 0.7, 0.1, -0.2
    along = np.cos(phi) * (x - x0) + np.sin(phi) * (y - y0)
    offset, values = major_axis_cut(along, GRID, phi=phi, x0=x0, y0=y0, width=0.15)
    np.testing.assert_allclose(values, offset)  # the map is the offset itself
    assert np.all(np.diff(offset) >= 0) and offset.min() < -1.5 and offset.max() > 1.5
    across = -np.sin(phi) * (x - x0) + np.cos(phi) * (y - y0)
    assert offset.size == int((np.abs(across) <= 0.15).sum())


def test_figures_show_the_given_arrays(rng):
    v = rng.normal(0, 100, GRID.shape)
    s = 40 + rng.normal(0, 5, GRID.shape)
    maps = plot_kinematic_maps(
        dict(data=v, model=v * 0.9, sigma=np.full(GRID.shape, 5.0)),
        dict(data=s, model=s - 1, sigma=np.full(GRID.shape, 5.0)),
        grid=GRID,
    )
    images = [ax.images[0].get_array() for ax in maps.axes if ax.images]
    assert len(images) == 6
    np.testing.assert_allclose(images[2], (v - 0.9 * v) / 5.0)  # normalised residual
    radii = np.linspace(0, 3, 20)
    draws = 200 * np.tanh(radii / 0.5)[None] + rng.normal(0, 5, (100, 1))
    curve = plot_rotation_curve(radii, draws, 40 + rng.normal(0, 2, (100, 20)))
    assert len(curve.axes) == 2
    np.testing.assert_allclose(curve.axes[0].lines[0].get_ydata(), np.median(draws, axis=0))
    pv = plot_position_velocity(v, v * 0.9, GRID, phi=0.3, v_sys=10.0)
    offset, values = major_axis_cut(v, GRID, phi=0.3)
    (model_line,) = [ln for ln in pv.axes[0].lines if ln.get_label().startswith("model")]
    np.testing.assert_allclose(model_line.get_ydata(), 0.9 * values - 10.0)
