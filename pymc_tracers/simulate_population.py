"""A simulated galaxy sample with a known gradient-mass relation, and reference models for it.

:func:`population_sample` draws N galaxies whose metallicity gradients follow
``gradient [dex/kpc] = intercept + slope (log M* - pivot) + scatter eps`` and observes each
through its own PSF: exponential discs of varying size on stamps of varying size, Gaussian PSFs
of varying width, varying S/N with an S/N cut on the metallicity map, and masked regions
(foreground stars). Metallicity is log-averaged (``tracer_scale="log"``), noise follows the
paper (``sigma_Z^2 = c1 + c2 / I``). Stamps are padded to the largest one, with the padding
left out of the likelihoods (NaN data), so the sample is one batch.

:func:`population_model` builds the matching PyMC model: the joint hierarchical model
(``pooling="relation"``), or the same galaxies fitted independently (``pooling="none"``), in
batched form (one ``observe`` for all galaxies) or loop form (one per galaxy, on its own
stamp), with the light fixed to the truth or fitted from the images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pymc_tracers.cosmology import arcsec_per_kpc, cosmology_config
from pymc_tracers.forward import Component, evaluate, observe
from pymc_tracers.grid import PixelGrid
from pymc_tracers.memory import release_freed_memory
from pymc_tracers.model.likelihood import paper_noise_coefficients
from pymc_tracers.profiles.light import Exponential
from pymc_tracers.profiles.radial import LinearGradient
from pymc_tracers.psf import GaussianPSF

__all__ = ["PopulationSample", "population_sample", "population_model", "RELATION"]

#: The default gradient-mass relation (dex/kpc at log M* = 10, dex/kpc per dex, dex/kpc).
RELATION = {"intercept": -0.03, "slope": -0.02, "scatter": 0.01, "pivot": 10.0}


@dataclass
class PopulationSample:
    """A simulated sample: data of shape (N, ny, nx) on a common padded stamp, and the truth.

    Attributes
    ----------
    grid : PixelGrid
        The common stamp (the largest galaxy stamp), arcsec.
    psfs : list of GaussianPSF
        One PSF per galaxy.
    stamp_shape : ndarray (N, 2)
        Each galaxy's own stamp (odd sizes, centred in ``grid``).
    log_mass, redshift : ndarray (N,)
        log10 M*/Msun (dex) and redshift.
    arcsec_per_kpc : ndarray (N,)
        Angular scale at each redshift.
    r_eff, amplitude, fwhm : ndarray (N,)
        True light profile (half-light radius, arcsec; central brightness) and PSF FWHM
        (arcsec).
    central, gradient_kpc, gradient : ndarray (N,)
        True central metallicity (12+log(O/H), dex) and gradients (dex/kpc, dex/arcsec).
    light_image, light_error : ndarray (N, ny, nx)
        Noisy light images (NaN on the padding) and their errors.
    tracer_map, tracer_error : ndarray (N, ny, nx)
        Noisy metallicity maps (dex; NaN where cut, masked or padded) and errors (dex).
    true_light_image, true_tracer_map : ndarray (N, ny, nx)
        The noiseless forward model.
    truth : dict
        The relation: intercept, slope, scatter, pivot (dex/kpc units).
    cosmology : dict
        JSON description of the cosmology (:func:`pymc_tracers.cosmology.cosmology_config`).
    """

    grid: PixelGrid
    psfs: list
    stamp_shape: np.ndarray
    log_mass: np.ndarray
    redshift: np.ndarray
    arcsec_per_kpc: np.ndarray
    r_eff: np.ndarray
    amplitude: np.ndarray
    fwhm: np.ndarray
    central: np.ndarray
    gradient_kpc: np.ndarray
    gradient: np.ndarray
    light_image: np.ndarray
    light_error: np.ndarray
    tracer_map: np.ndarray
    tracer_error: np.ndarray
    true_light_image: np.ndarray
    true_tracer_map: np.ndarray
    truth: dict
    cosmology: dict
    tracer_scale: str = "log"
    extra: dict = field(default_factory=dict)

    @property
    def n_galaxies(self) -> int:
        return int(self.log_mass.size)

    @property
    def tracer_mask(self) -> np.ndarray:
        """Pixels of each metallicity map that enter the likelihood (finite data)."""
        return np.isfinite(self.tracer_map)

    def stamp(self, i) -> tuple[slice, slice]:
        """Slices of galaxy ``i``'s own stamp inside the common grid."""
        ny, nx = self.grid.shape
        sy, sx = (int(v) for v in self.stamp_shape[i])
        return slice((ny - sy) // 2, (ny + sy) // 2), slice((nx - sx) // 2, (nx + sx) // 2)

    def stamp_grid(self, i) -> PixelGrid:
        """Galaxy ``i``'s own stamp grid (same pixel scale and centre)."""
        return PixelGrid(
            tuple(int(v) for v in self.stamp_shape[i]),
            self.grid.pixel_scale,
            self.grid.supersampling,
        )

    def subset(self, index) -> "PopulationSample":
        """The galaxies ``index`` (an array of indices or a boolean mask) as a new sample."""
        index = np.arange(self.n_galaxies)[index]
        per_galaxy = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.shape[:1] == (self.n_galaxies,):
                per_galaxy[name] = value[index]
        extra = {
            k: v[index] if isinstance(v, np.ndarray) and v.shape[:1] == (self.n_galaxies,) else v
            for k, v in self.extra.items()
        }
        return PopulationSample(
            **{**self.__dict__, **per_galaxy, "psfs": [self.psfs[i] for i in index], "extra": extra}
        )

    def config(self) -> dict:
        """A JSON-serialisable description (for ``pmt.fit(config=...)``)."""
        return {
            "sample": "pymc_tracers.simulate_population.population_sample",
            "n_galaxies": self.n_galaxies,
            "relation": dict(self.truth),
            "cosmology": self.cosmology,
            "tracer_scale": self.tracer_scale,
            **{k: v for k, v in self.extra.items() if isinstance(v, (int, float, str, list))},
        }


#: Galaxies rendered together when simulating a sample (bounds the working memory).
SIMULATION_CHUNK = 100


def _odd(n):
    n = int(n)
    return n if n % 2 else n + 1


def population_sample(
    n_galaxies=30,
    *,
    seed=0,
    intercept=RELATION["intercept"],
    slope=RELATION["slope"],
    scatter=RELATION["scatter"],
    pivot=RELATION["pivot"],
    log_mass_range=(9.0, 11.0),
    redshift_range=(0.8, 2.0),
    r_eff_range=(0.25, 0.6),
    fwhm_range=(0.12, 0.45),
    stamp_sizes=(33, 41),
    pixel_scale=0.1,
    supersampling=2,
    central_mean=8.5,
    central_sd=0.1,
    sigma_center_range=(0.06, 0.15),
    snr_range=(10.0, 60.0),
    snr_cut=3.0,
    mask_probability=0.5,
    cosmology=None,
) -> PopulationSample:
    """Simulate a sample of galaxies with gradients from a known gradient-mass relation.

    Parameters
    ----------
    n_galaxies : int
    seed : int
    intercept, slope, scatter, pivot : float
        The relation ``gradient = intercept + slope (log M* - pivot) + scatter eps`` in dex/kpc
        (``slope`` in dex/kpc per dex of mass; ``pivot`` in dex).
    log_mass_range, redshift_range : (float, float)
        Uniform ranges of log10 M*/Msun (dex) and redshift.
    r_eff_range, fwhm_range : (float, float)
        Log-uniform ranges of the half-light radius and Gaussian PSF FWHM (arcsec).
    stamp_sizes : (int, int)
        Range of (odd) square stamp sizes in pixels; stamps are padded to the largest.
    pixel_scale : float
        arcsec per pixel.
    supersampling : int
        Sub-pixels per pixel side of the forward model.
    central_mean, central_sd : float
        Normal distribution of the central 12+log(O/H) (dex).
    sigma_center_range : (float, float)
        Range of the metallicity error at each galaxy's centre (dex); it is sqrt(2) times
        larger at one effective radius (the paper's noise model).
    snr_range : (float, float)
        Range of the light image's peak S/N.
    snr_cut : float
        Metallicity pixels whose light S/N is below this are left out (NaN).
    mask_probability : float
        Probability that a galaxy has a masked disc (foreground star, 1.5 to 3 pixels radius)
        within 1.5 effective radii of its centre.
    cosmology : astropy Cosmology, str or None
        For the angular scale at each redshift (default Planck18).

    Returns
    -------
    PopulationSample
    """
    if int(n_galaxies) < 2:
        raise ValueError(f"n_galaxies must be >= 2; got {n_galaxies}")
    n = int(n_galaxies)
    rng = np.random.default_rng(seed)

    def log_uniform(lo_hi, size):
        lo, hi = np.log(lo_hi)
        return np.exp(rng.uniform(lo, hi, size))

    log_mass = rng.uniform(*log_mass_range, n)
    redshift = rng.uniform(*redshift_range, n)
    scale = arcsec_per_kpc(redshift, cosmology=cosmology)
    gradient_kpc = intercept + slope * (log_mass - pivot) + scatter * rng.normal(size=n)
    gradient = gradient_kpc / scale  # dex/kpc x kpc/arcsec
    central = central_mean + central_sd * rng.normal(size=n)
    r_eff = log_uniform(r_eff_range, n)
    fwhm = log_uniform(fwhm_range, n)
    amplitude = np.ones(n)
    lo, hi = _odd(stamp_sizes[0]), _odd(stamp_sizes[1])
    sizes = rng.choice(np.arange(lo, hi + 1, 2), size=n)
    grid = PixelGrid((hi, hi), pixel_scale, supersampling)
    psfs = [GaussianPSF(fwhm=float(f)) for f in fwhm]

    # rendered in chunks of galaxies: a whole large sample at once would need GiBs
    chunks = []
    for start in range(0, n, SIMULATION_CHUNK):
        chunk = slice(start, min(start + SIMULATION_CHUNK, n))
        disc = Component(
            Exponential(r_eff=r_eff[chunk], amplitude=amplitude[chunk]),
            LinearGradient(central=central[chunk], gradient=gradient[chunk]),
        )
        chunks.append(evaluate(observe(disc, grid, psfs[chunk], tracer_scale="log", method="full")))
    image = np.concatenate([c[0] for c in chunks])
    tracer = np.concatenate([c[1] for c in chunks])
    del chunks
    release_freed_memory()

    x, y = grid.coordinates()
    r = np.hypot(x, y)
    light_error = np.empty_like(image)
    tracer_error = np.empty_like(image)
    light_image = np.full_like(image, np.nan)
    tracer_map = np.full_like(image, np.nan)
    snr = rng.uniform(*snr_range, n)
    sigma_center = rng.uniform(*sigma_center_range, n)
    masked = np.zeros(n, dtype=bool)
    for i in range(n):
        peak = image[i].max()
        at_reff = np.interp(r_eff[i], np.sort(r.ravel()), image[i].ravel()[np.argsort(r.ravel())])
        c1, c2 = paper_noise_coefficients(
            peak, at_reff, sigma_center[i] ** 2, 2 * sigma_center[i] ** 2
        )
        light_error[i] = (peak / snr[i]) * np.sqrt(0.5 + 0.5 * image[i] / peak)
        tracer_error[i] = np.sqrt(c1 + c2 / image[i])
        use = np.zeros(grid.shape, dtype=bool)
        sy, sx = (slice((hi - sizes[i]) // 2, (hi + sizes[i]) // 2),) * 2
        use[sy, sx] = True
        noisy_light = image[i] + light_error[i] * rng.normal(size=grid.shape)
        light_image[i][use] = noisy_light[use]
        detected = image[i] / light_error[i] >= snr_cut
        if rng.uniform() < mask_probability:
            masked[i] = True
            angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.5) * r_eff[i]
            radius = rng.uniform(1.5, 3.0) * pixel_scale
            star = np.hypot(x - dist * np.cos(angle), y - dist * np.sin(angle)) < radius
            use &= ~star
            light_image[i][star] = np.nan
        keep = use & detected
        tracer_map[i][keep] = (tracer[i] + tracer_error[i] * rng.normal(size=grid.shape))[keep]
    stamp_shape = np.stack([sizes, sizes], axis=1)
    return PopulationSample(
        grid=grid,
        psfs=psfs,
        stamp_shape=stamp_shape,
        log_mass=log_mass,
        redshift=redshift,
        arcsec_per_kpc=scale,
        r_eff=r_eff,
        amplitude=amplitude,
        fwhm=fwhm,
        central=central,
        gradient_kpc=gradient_kpc,
        gradient=gradient,
        light_image=light_image,
        light_error=light_error,
        tracer_map=tracer_map,
        tracer_error=tracer_error,
        true_light_image=image,
        true_tracer_map=tracer,
        truth={"intercept": intercept, "slope": slope, "scatter": scatter, "pivot": pivot},
        cosmology=cosmology_config(cosmology),
        extra={"seed": int(seed), "snr": snr, "sigma_center": sigma_center, "masked": masked},
    )


def population_model(
    sample: PopulationSample,
    *,
    pooling="relation",
    light="fixed",
    form="batched",
    method="auto",
    priors=None,
    centered=False,
):
    """The PyMC model of a :class:`PopulationSample`'s metallicity maps (and images).

    Parameters
    ----------
    sample : PopulationSample
    pooling : {"relation", "none"}
        ``"relation"``: gradients (dex/kpc) drawn from a linear relation with log M*
        (:func:`pymc_tracers.model.population.linear_relation`, non-centred) with free
        ``intercept``, ``slope`` and ``scatter``. ``"none"``: each galaxy's gradient has its own
        broad prior (the posterior factorises into independent per-galaxy fits).
    light : {"fixed", "free"}
        ``"fixed"``: light profiles at their true values (the paper's setup; the forward
        model then takes the radial transfer path). ``"free"``: each galaxy's
        ``r_eff`` and ``amplitude`` are fitted jointly from its image (full FFT path).
    form : {"batched", "loop"}
        One ``observe`` for the whole sample on the common stamp, or one per galaxy on its
        own stamp (likelihoods ``metallicity_<i>`` and ``light_<i>``).
    method : str
        Passed to ``observe`` (``"auto"``, ``"full"``, ``"radial"``, ...).
    centered : bool
        Parametrisation of the per-galaxy gradients around the relation: non-centred
        (default) suits galaxies whose maps constrain their gradient no better than the
        intrinsic scatter, as here; centred suits precisely measured ones.
    priors : dict, optional
        Widths of the hyperpriors: ``intercept`` (Normal sd), ``slope`` (Normal sd),
        ``scatter`` (HalfNormal sd), ``gradient`` (sd of the independent gradients); dex/kpc.

    Returns
    -------
    pm.Model
        Per-galaxy variables have dims ``"galaxy"``; ``gradient`` is in dex/arcsec and
        ``gradient_kpc`` in dex/kpc. ``model.observations`` lists the ``Observation`` objects.
    """
    import pymc as pm

    from pymc_tracers.model.likelihood import image_likelihood, tracer_likelihood
    from pymc_tracers.model.population import linear_relation

    if pooling not in ("relation", "none"):
        raise ValueError(f"pooling must be 'relation' or 'none'; got {pooling!r}")
    if light not in ("fixed", "free"):
        raise ValueError(f"light must be 'fixed' or 'free'; got {light!r}")
    if form not in ("batched", "loop"):
        raise ValueError(f"form must be 'batched' or 'loop'; got {form!r}")
    widths = {"intercept": 0.1, "slope": 0.1, "scatter": 0.05, "gradient": 0.2, **(priors or {})}
    n = sample.n_galaxies
    with pm.Model(coords={"galaxy": np.arange(n)}) as model:
        if pooling == "relation":
            intercept = pm.Normal("intercept", 0.0, widths["intercept"])
            slope = pm.Normal("slope", 0.0, widths["slope"])
            scatter = pm.HalfNormal("scatter", widths["scatter"])
            gradient_kpc = linear_relation(
                "gradient_kpc",
                sample.log_mass,
                intercept=intercept,
                slope=slope,
                scatter=scatter,
                pivot=sample.truth["pivot"],
                centered=centered,
            )
        else:
            gradient_kpc = pm.Normal("gradient_kpc", 0.0, widths["gradient"], dims="galaxy")
        gradient = pm.Deterministic("gradient", gradient_kpc / sample.arcsec_per_kpc, dims="galaxy")
        # the metallicity at one effective radius is measured almost independently of the
        # gradient (the central value is not: r ~ -0.9), which keeps the posterior round
        z_reff = pm.Normal("z_reff", 8.5, 0.5, dims="galaxy")
        central = pm.Deterministic("central", z_reff - gradient * sample.r_eff, dims="galaxy")
        if light == "free":
            r_eff = pm.LogNormal("r_eff", np.log(sample.r_eff), 0.3, dims="galaxy")
            amplitude = pm.LogNormal("amplitude", 0.0, 0.5, dims="galaxy")
        else:
            r_eff, amplitude = sample.r_eff, sample.amplitude
        model.observations = []
        if form == "batched":
            disc = Component(
                Exponential(r_eff=r_eff, amplitude=amplitude),
                LinearGradient(central=central, gradient=gradient),
            )
            obs = observe(disc, sample.grid, sample.psfs, tracer_scale="log", method=method)
            model.observations.append(obs)
            tracer_likelihood("metallicity", obs, sample.tracer_map, sigma=sample.tracer_error)
            if light == "free":
                image_likelihood("light", obs, sample.light_image, sigma=sample.light_error)
        else:
            for i in range(n):
                sy, sx = sample.stamp(i)
                disc = Component(
                    Exponential(r_eff=r_eff[i], amplitude=amplitude[i]),
                    LinearGradient(central=central[i], gradient=gradient[i]),
                )
                obs = observe(
                    disc, sample.stamp_grid(i), sample.psfs[i], tracer_scale="log", method=method
                )
                model.observations.append(obs)
                tracer_likelihood(
                    f"metallicity_{i}",
                    obs,
                    sample.tracer_map[i][sy, sx],
                    sigma=sample.tracer_error[i][sy, sx],
                )
                if light == "free":
                    image_likelihood(
                        f"light_{i}",
                        obs,
                        sample.light_image[i][sy, sx],
                        sigma=sample.light_error[i][sy, sx],
                    )
    return model
