"""Figures: data / model / residual maps with a radial profile
(:mod:`~pymc_tracers.plotting.maps`), corner plots (:mod:`~pymc_tracers.plotting.corner`),
population relations and shrinkage (:mod:`~pymc_tracers.plotting.populations`), lensed
galaxies (:mod:`~pymc_tracers.plotting.lensing`), velocity and dispersion maps, rotation
curves and position-velocity diagrams (:mod:`~pymc_tracers.plotting.kinematics`).

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot, so it needs no
backend and leaves no global state behind (``fig.savefig`` works anywhere; notebooks display
it).
"""

from pymc_tracers.plotting.corner import corner_figure
from pymc_tracers.plotting.kinematics import (
    major_axis_cut,
    plot_kinematic_maps,
    plot_position_velocity,
    plot_rotation_curve,
)
from pymc_tracers.plotting.lensing import plot_lensed_maps
from pymc_tracers.plotting.maps import north_east_arrows, plot_maps
from pymc_tracers.plotting.populations import plot_relation, plot_shrinkage

__all__ = [
    "corner_figure",
    "major_axis_cut",
    "north_east_arrows",
    "plot_kinematic_maps",
    "plot_lensed_maps",
    "plot_maps",
    "plot_position_velocity",
    "plot_relation",
    "plot_rotation_curve",
    "plot_shrinkage",
]
