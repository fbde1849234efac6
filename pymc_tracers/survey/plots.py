"""Writing the population relation: ``relation.nc``, ``relation_summary.ecsv`` (with units)
and ``relation.png``, published together as the folder ``population/``."""

from __future__ import annotations

import warnings
from pathlib import Path

from pymc_tracers import io
from pymc_tracers.atomic import partial_folder, publish_folder
from pymc_tracers.plotting import plot_relation

__all__ = ["relation_figure", "relation_units", "write_relation"]


def relation_units(info) -> dict:
    """Units of intercept, slope and scatter (those of ``y``); the slope's is ``y``'s unit per
    unit of the covariate: ``(dex / arcsec) / (dex)`` for a gradient against ``log_mass`` in
    dex, ``y``'s unit for a covariate without one."""
    unit, cov = info["unit"], info["covariate_unit"]
    slope = f"({unit}) / ({cov})" if cov else unit
    return {"intercept": unit, "slope": slope, "scatter": unit}


def write_relation(output, result, *, plot: bool) -> Path:
    """Write ``output/population/`` atomically (replacing an earlier one); return its path."""
    output = Path(output)
    with partial_folder(output, "population") as temporary:
        result.idata.to_netcdf(temporary / "relation.nc")
        meta = {k: v for k, v in result.info.items() if k != "hyperpriors"}
        meta["method"] = result.method
        meta["slope_unit_note"] = (
            f"slope: {result.info['unit']} per {result.info['covariate_unit'] or 'unit'} of "
            f"{result.info['covariate']}"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's notes on composite units
            io.write_summary(
                temporary / "relation_summary.ecsv",
                result.summary(),
                units=relation_units(result.info),
                meta=meta,
            )
        if plot:
            relation_figure(result).savefig(temporary / "relation.png", dpi=90)
        publish_folder(temporary, output / "population", replace=True)
    return output / "population"


def relation_figure(result, *, truth=None):
    """The relation with its credible band over the per-galaxy posteriors, axes with units;
    ``truth`` (``{"intercept": ..., "slope": ...}``) adds the true relation of a simulation."""
    info = result.info
    covariate_unit = f" [{info['covariate_unit']}]" if info["covariate_unit"] else ""
    flag = "" if info.get("convergence", {}).get("converged", True) else " - NOT CONVERGED"
    figure = plot_relation(
        result.idata,
        result.covariate,
        y=result.y_draws,
        params={"intercept": "intercept", "slope": "slope", "pivot": info["pivot"]},
        scatter="scatter",
        truth=truth,
        xlabel=f"{info['covariate']}{covariate_unit}",
        ylabel=f"{info['parameter']} [{info['unit']}]",
    )
    figure.axes[0].set_title(f"{info['n_galaxies']} galaxies, {result.method}{flag}")
    return figure
