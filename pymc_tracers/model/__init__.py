"""The PyMC layer: the forward model's maps as PyMC likelihoods and priors.

- :mod:`~pymc_tracers.model.likelihood`: image and tracer likelihoods (observed variables,
  masks, noise models) and the records fits read back from a model;
- :mod:`~pymc_tracers.model.binned`: likelihoods of binned (Voronoi) tracer maps;
- :mod:`~pymc_tracers.model.fields`: PyMC builders of GP residual fields;
- :mod:`~pymc_tracers.model.population`: hierarchical priors and relations over a galaxy
  dimension;
- :mod:`~pymc_tracers.model.kinematic_likelihood`: velocity, dispersion and flux likelihoods;
- :mod:`~pymc_tracers.model.kinematic_population`: characteristic speeds for Tully–Fisher
  relations, V/sigma;
- :mod:`~pymc_tracers.model.comparison`: LOO, WAIC and BIC tables.

The most used names are re-exported by the package (``pmt.tracer_likelihood``...) and the
modules reached as ``pmt.likelihood``, ``pmt.population``...
"""
