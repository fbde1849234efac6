"""Corner plots: the pairwise posterior with units on every axis and truth lines."""

from __future__ import annotations

import warnings

import arviz as az
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

__all__ = ["corner_figure"]


def _truth_lines(axes, var_names, truth) -> None:
    """Dashed lines at the true values on the marginals and the pair panels."""
    n = len(var_names)
    style = {"color": "C3", "ls": "--", "lw": 1.0}
    for i, y_name in enumerate(var_names):
        for j, x_name in enumerate(var_names[: i + 1]):
            ax = axes[i, j]
            if i == j:
                if x_name in truth:
                    rotated = n == 2 and i == 1
                    (ax.axhline if rotated else ax.axvline)(truth[x_name], **style)
                continue
            if x_name in truth:
                ax.axvline(truth[x_name], **style)
            if y_name in truth:
                ax.axhline(truth[y_name], **style)


def corner_figure(idata, *, var_names=None, units=None, truth=None, max_variables=8):
    """The pairwise posterior of the fitted parameters, labelled with their units.

    Parameters
    ----------
    idata : az.InferenceData
    var_names : list of str, optional
        Default: the scalar posterior variables (at most ``max_variables``).
    units : dict, optional
        ``{name: unit string}``, shown in the axis labels.
    truth : dict, optional
        ``{name: true value}``: reference lines of a simulated galaxy.

    Returns
    -------
    matplotlib.figure.Figure
    """
    posterior = idata.posterior
    if var_names is None:
        var_names = [
            v for v in posterior.data_vars if not v.endswith("__") and posterior[v].ndim == 2
        ][:max_variables]
    n = len(var_names)
    size = max(2.2 * n, 4.0)
    fig = Figure(figsize=(size, size), layout="constrained")
    axes = fig.subplots(n, n, squeeze=False)
    reference = None
    if truth:
        reference = {k: v for k, v in truth.items() if k in var_names}
    with warnings.catch_warnings():
        # ArviZ checks the reference values against every posterior variable, not var_names
        warnings.filterwarnings("ignore", message="Argument reference_values does not include")
        az.plot_pair(
            idata,
            var_names=var_names,
            marginals=True,
            kind="kde",
            ax=axes,
            reference_values=reference or None,
            textsize=9,
        )
    units = units or {}
    _truth_lines(axes, var_names, truth or {})
    axes[0, 0].set_ylabel("")
    for i, name in enumerate(var_names):
        label = f"{name}\n[{units[name]}]" if units.get(name) else name
        axes[-1, i].set_xlabel(label, fontsize=9)
        if i > 0:
            axes[i, 0].set_ylabel(label, fontsize=9)
    for ax in fig.axes:  # plot_pair removes the upper triangle's axes
        ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.yaxis.set_major_locator(MaxNLocator(3))
        ax.tick_params(labelsize=8)
        ax.tick_params(axis="x", labelrotation=40)
    for i in range(n):  # the marginals' density axes carry no information worth a tick
        rotated = n == 2 and i == 1  # ArviZ draws the last of two marginals sideways
        (axes[i, i].xaxis if rotated else axes[i, i].yaxis).set_major_locator(NullLocator())
    fig.align_labels()
    return fig
