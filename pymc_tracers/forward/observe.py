"""``observe``: what a telescope records of a galaxy's light and light-weighted tracer."""

from __future__ import annotations

from pymc_tracers.forward.components import as_components, batch_size, check_tracer_scale
from pymc_tracers.forward.selection import choose_renderer
from pymc_tracers.forward.transfer import DEFAULT_TOLERANCE
from pymc_tracers.numerics import make_numerics

__all__ = ["Observation", "observe"]


class Observation(tuple):
    """``(image, tracer_map)`` as returned by :func:`observe`, with how they were computed.

    Unpacks like a tuple: ``image, tracer_map = pmt.observe(...)``. Pass the observation
    itself to :func:`~pymc_tracers.tracer_likelihood` to let the likelihood read only the
    pixels it uses (cheaper for large batches on the linear and radial paths).

    Attributes
    ----------
    image, tracer_map : tensor
        Shape ``(ny, nx)``, or ``(N, ny, nx)`` for a batch of galaxies.
    path : str
        The renderer that built the graph: ``"linear"``, ``"radial"``, ``"subpixel"``,
        ``"pixel"`` or ``"fitted_psf"`` (docs/forward_model.md).
    reason : str
        Why that renderer was chosen.
    renderer : Renderer
        The renderer (``at_pixels``, ``psf_updates``, ``describe()``).
    max_error : float
        The tracer map's largest error against the exact full path (tracer units), measured
        at prior draws on the radial path; 0 for the exact paths.
    numerics : Numerics
        Sample points, PSF kernels and binning used.
    n_galaxies : int or None
        Batch size, when known.
    light_sum, weighted_sum : tensor
        The binned, PSF-convolved sums ``bin(K * sum I)`` and ``bin(K * sum I f(Z))`` whose
        ratio is the tracer map (for likelihoods over binned data, e.g. Voronoi bins).
    tracer_scale : str
    """

    def __new__(cls, image, tracer_map, **info):
        self = super().__new__(cls, (image, tracer_map))
        self.__dict__.update(info)
        return self

    @property
    def image(self):
        return self[0]

    @property
    def tracer_map(self):
        return self[1]

    def __repr__(self):
        return f"Observation(path={self.path!r}, reason={self.reason!r})"


def _with_lens_batch(n_galaxies, lens):
    from pymc_tracers.lensing import as_lens
    from pymc_tracers.lensing.base import lens_batch_size

    n_lens = lens_batch_size(as_lens(lens))
    if n_lens is not None and n_galaxies is not None and n_lens != n_galaxies:
        raise ValueError(
            f"the lens has per-galaxy parameters for {n_lens} galaxies but the components and "
            f"PSFs are for {n_galaxies}; give one lens parameter per galaxy or a scalar"
        )
    return n_galaxies if n_lens is None else n_lens


def observe(
    components,
    grid,
    psf,
    tracer_scale: str = "linear",
    *,
    method: str = "auto",
    convolve_at: str = "subpixel",
    tolerance: float = DEFAULT_TOLERANCE,
    dynamic_range: float | None = None,
    lens=None,
) -> Observation:
    """Forward-model the observed light image and light-weighted tracer map.

    For components ``i`` with surface brightness ``I_i`` and intrinsic tracer ``Z_i``
    (Metha et al. 2024, eqs. 1-3)::

        image      = bin(K * sum_i I_i) * subpixel_area
        tracer_map = f^-1[ bin(K * sum_i I_i f(Z_i)) / bin(K * sum_i I_i) ]

    with ``f(Z) = Z`` (``tracer_scale="linear"``) or ``10**Z`` (``"log"``).

    Parameters
    ----------
    components : Component or list of Component
        The galaxy (or galaxies) in the field. Any parameter may carry a leading galaxy axis
        (an array or variable of shape ``(N,)``, e.g. a PyMC variable with ``dims="galaxy"``):
        the model is then a batch of N galaxies rendered and convolved together.
    grid : PixelGrid
        Data pixels and supersampling, shared by every galaxy of a batch. Profiles are rendered
        at sub-pixel centres on a field padded by the PSF half-width, so light just outside
        the field scatters in.
    psf : PSF or list of PSF
        Resampled to the sub-pixel scale ``grid.pixel_scale / grid.supersampling``. A list
        gives each galaxy of a batch its own PSF (each kernel zero-padded to the largest).
    tracer_scale : {"linear", "log"}
        ``"linear"`` averages the tracer as it is (velocity, linear ratios); ``"log"`` averages
        ``10**Z`` and returns ``log10`` of the light-weighted mean: the physically right choice
        for 12+log(O/H) and other quantities in dex.
    method : {"auto", "full", "subpixel", "pixel", "fitted_psf", "linear", "radial"}
        Which renderer builds the maps (docs/forward_model.md has a table). ``"auto"``
        (default) takes the cheapest that applies: ``"linear"`` (fixed light and PSF, linear
        averaging of tracers linear in their parameters: exact), else ``"radial"`` (fixed
        light and PSF, radial tracers on either scale: within ``tolerance``), else the full
        path. ``"full"`` asks for the full path of this PSF and ``convolve_at``. A method
        that does not apply raises ``ValueError`` saying why.
    convolve_at : {"subpixel", "pixel"}
        ``"subpixel"`` (default, exact) convolves on the supersampled grid. ``"pixel"``
        integrates the profiles over each pixel on the supersampled grid but convolves pixel
        means with the PSF sampled at pixel offsets: ``s^2`` times smaller FFTs, with an error
        second order in pixel / PSF width.
    tolerance : float
        Largest error of the radial path's tracer map (tracer units: dex for log averaging;
        default 1e-7). The number of radial nodes is chosen from it, and the map is checked
        against the full path at prior draws when it is built.
    dynamic_range : float, optional
        How much a log-averaged radial tracer may change across the rendered field (dex). By
        default it is read from prior draws of the model.
    lens : LensModel or list of LensModel, optional
        A gravitational lens in front of the components (see Lensing below).

    Returns
    -------
    Observation
        ``(image, tracer_map)``, each of shape ``grid.shape`` or ``(N, *grid.shape)``.
        ``image`` is flux per data pixel (amplitude units x arcsec^2). ``tracer_map`` is the
        light-weighted, PSF-smeared tracer in the tracer's units; where a galaxy has no light
        (below 1e-13 of its brightest pixel) it tends to the unweighted pixel mean of the
        intrinsic tracer, so empty sky is finite and has finite gradients.

    Lensing
    -------
    ``lens`` (a model of :mod:`pymc_tracers.lensing`, or a list of them summed on one plane)
    puts the components in the **source plane**: every image-plane sample point ``theta`` is
    mapped to ``beta = theta - alpha(theta)`` and the light and tracer profiles are evaluated
    there (their positions and radii are source-plane arcsec); the PSF convolution and the
    binning stay in the image plane. Surface brightness is conserved, so magnification enters
    through where the rays land, and multiple images appear by themselves. A fixed lens keeps
    every renderer (the fast paths use source-plane radii); a lens with free parameters takes
    the full path.
    """
    components = as_components(components)
    tracer_scale = check_tracer_scale(tracer_scale)
    if not (tolerance > 0):
        raise ValueError(f"tolerance must be > 0 (tracer units); got {tolerance!r}")
    if dynamic_range is not None and not (dynamic_range >= 0):
        raise ValueError(f"dynamic_range must be >= 0 (dex); got {dynamic_range!r}")
    n_galaxies = batch_size(components, psf)
    if lens is not None:
        n_galaxies = _with_lens_batch(n_galaxies, lens)
    numerics = make_numerics(grid, psf, convolve_at, n_galaxies=n_galaxies, lens=lens)
    renderer = choose_renderer(
        components,
        numerics,
        tracer_scale,
        n_galaxies,
        method,
        tolerance=tolerance,
        dynamic_range=dynamic_range,
    )
    maps = renderer.render()
    return Observation(
        maps.image,
        maps.tracer_map,
        path=renderer.path,
        reason=renderer.reason,
        renderer=renderer,
        max_error=renderer.max_error,
        numerics=numerics,
        n_galaxies=n_galaxies,
        light_sum=maps.light_sum,
        weighted_sum=maps.weighted_sum,
        tracer_scale=tracer_scale,
    )
