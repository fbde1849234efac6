"""Name-first hierarchical priors over a ``galaxy`` dimension (PyMC style).

Each helper takes the variable's name first, then its parameters (floats or PyMC variables),
creates its random variables in the model on the context stack with ``dims="galaxy"`` and
returns the per-galaxy variable. Extra ``**kwargs`` go to the per-galaxy PyMC distribution
(``initval``, ``transform``...). Per-galaxy variables are **non-centred** by default
(``name = mean + scale * name_offset`` with ``name_offset ~ Normal(0, 1)``), which samples well
when each galaxy's data constrain it weakly compared with the population spread, the usual
case for gradients of small, PSF-smeared galaxies; ``centered=True`` gives
``name ~ Normal(mean, scale)`` directly (better when every galaxy is measured precisely).

Relations of a per-galaxy quantity ``y`` (e.g. a metallicity gradient, dex/kpc) with a
covariate ``x`` (e.g. log10 stellar mass, dex), with ``d = x - pivot``:

- :func:`linear_relation`: ``y = intercept + slope d + scatter(x) eps``;
- :func:`quadratic_relation`: ``y = intercept + slope d + curvature d^2 + scatter(x) eps``;
- :func:`broken_linear_relation`: two slopes joined smoothly at a break (a broken power law
  when ``x`` and ``y`` are logarithms).

In all three the intrinsic scatter may depend on the covariate, log-linearly:
``log10 scatter(x) = log10 scatter + scatter_slope d``, so ``scatter`` is the scatter at the
pivot (same units as ``y``) and ``scatter_slope < 0`` makes it grow towards low ``x`` as found
for gradients against stellar mass (Wang et al. 2020). Measured covariates with errors
(``covariate_error=``) become latent true values with a Gaussian population (Kelly 2007).

Example
-------
>>> with pm.Model(coords={"galaxy": ids}):
...     intercept = pm.Normal("intercept", 0.0, 0.1)         # dex/kpc at the pivot mass
...     slope = pm.Normal("slope", 0.0, 0.1)                 # dex/kpc per dex of mass
...     scatter = pm.HalfNormal("scatter", 0.1)              # dex/kpc
...     gradient = pmt.population.linear_relation(
...         "gradient", log_mass, intercept=intercept, slope=slope, scatter=scatter, pivot=10.0)

``pivot`` defaults to the covariates' median (rounded to 0.1), stored as ``<name>_pivot``.

The helpers live in two modules: :mod:`~pymc_tracers.model.population.priors` (per-galaxy
priors and the checks of per-galaxy values) and :mod:`~pymc_tracers.model.population.relations`
(the mean functions and the relations with a covariate).
"""

from pymc_tracers.model.population.priors import hierarchical_lognormal, hierarchical_normal
from pymc_tracers.model.population.relations import (
    broken_linear_mean,
    broken_linear_relation,
    linear_mean,
    linear_relation,
    quadratic_mean,
    quadratic_relation,
    scatter_at,
)

__all__ = [
    "broken_linear_mean",
    "broken_linear_relation",
    "hierarchical_lognormal",
    "hierarchical_normal",
    "linear_mean",
    "linear_relation",
    "quadratic_mean",
    "quadratic_relation",
    "scatter_at",
]
