"""``observe_kinematics``: flux, velocity and dispersion maps of a PSF-smeared line cube."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pymc_tracers.forward.components import batch_size
from pymc_tracers.kinematics.components import as_kinematic_components
from pymc_tracers.kinematics.full import KinematicFullRenderer
from pymc_tracers.kinematics.velocity_field import DiscVelocity
from pymc_tracers.numerics import make_numerics

__all__ = ["KinematicObservation", "observe_kinematics", "KINEMATIC_METHODS"]

KINEMATIC_METHODS = ("auto", "full", "disc_radial")
#: Largest error (km/s) of the disc_radial maps by default: far below any IFU error (>~1 km/s).
DEFAULT_KINEMATIC_TOLERANCE = 1e-2


class KinematicObservation(tuple):
    """``(flux, velocity, dispersion)`` from :func:`observe_kinematics`, with how they were
    computed.

    Unpacks like a tuple: ``flux, velocity, dispersion = pmt.observe_kinematics(...)``.

    Attributes
    ----------
    flux : tensor
        Line flux per data pixel (amplitude units x arcsec^2), ``(ny, nx)`` or
        ``(N, ny, nx)``.
    velocity, dispersion : tensor
        Observed (first-moment) velocity and (second-moment) dispersion in km/s, including
        ``sigma_LSF`` in quadrature when one was given.
    path : str
        The renderer: ``"subpixel"``, ``"pixel"``, ``"fitted_psf"`` (full paths) or
        ``"disc_radial"`` (precomputed angular x radial basis, fixed light, PSF and geometry).
    reason : str
        Why that renderer was chosen.
    renderer : Renderer
    max_error : float
        Largest error of the maps against the full path (km/s), measured when the
        ``disc_radial`` path was built; 0 for the full paths.
    numerics : Numerics
        Sample points, PSF kernels and binning used (``n_galaxies``: the batch size or None).
    light_sum, first_sum, second_sum : tensor
        ``bin(K * I)``, ``bin(K * (I u))``, ``bin(K * (I (u^2 + sigma^2)))`` with
        ``u = v - reference`` (for binned data: sum them over a bin's pixels).
    reference : tensor
        The reference velocity (km/s): the first component's ``v_sys`` for a disc, else 0.
    lsf : tensor or None
        ``sigma_LSF`` (km/s) added in quadrature to the dispersion.
    """

    def __new__(cls, flux, velocity, dispersion, **info):
        self = super().__new__(cls, (flux, velocity, dispersion))
        self.__dict__.update(info)
        return self

    @property
    def flux(self):
        return self[0]

    @property
    def velocity(self):
        return self[1]

    @property
    def dispersion(self):
        return self[2]

    def __repr__(self):
        return f"KinematicObservation(path={self.path!r}, reason={self.reason!r})"


def _check_lsf(lsf_sigma, grid, n_galaxies):
    """``sigma_LSF`` (km/s) as a tensor, or None for no instrumental broadening."""
    if lsf_sigma is None:
        return None
    if isinstance(lsf_sigma, Variable):
        return lsf_sigma
    try:
        lsf = np.asarray(lsf_sigma, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"lsf_sigma must be a number or a map in km/s; got {lsf_sigma!r}"
        ) from None
    if not np.all(np.isfinite(lsf)) or np.any(lsf < 0):
        raise ValueError(
            "lsf_sigma (instrumental dispersion, km/s) must be finite and >= 0 everywhere; "
            "fill NaN pixels of an EMLINE_INSTSIGMA-like map (e.g. with its median)"
        )
    shape = grid.shape if n_galaxies is None else (n_galaxies, *grid.shape)
    if lsf.ndim:
        try:
            np.broadcast_shapes(lsf.shape, shape)
        except ValueError:
            raise ValueError(
                f"lsf_sigma has shape {lsf.shape}; it must be a number or broadcast to the "
                f"maps' shape {shape}"
            ) from None
    if lsf.ndim == 1 and n_galaxies is not None and lsf.shape[0] == n_galaxies:
        lsf = lsf[:, None, None]  # one sigma_LSF per galaxy
    return pt.as_tensor_variable(lsf)


def observe_kinematics(
    components,
    grid,
    psf,
    *,
    lsf_sigma=None,
    method: str = "auto",
    convolve_at: str = "subpixel",
    tolerance: float = DEFAULT_KINEMATIC_TOLERANCE,
) -> KinematicObservation:
    """Forward-model the flux, velocity and dispersion maps of a PSF-smeared line cube.

    For line surface brightness ``I``, line-of-sight velocity ``v`` and intrinsic dispersion
    ``sigma`` on each sub-pixel, the moments of the observed cube are (exact)::

        flux       = bin(K * I) * subpixel_area
        velocity   = bin(K * (I v)) / bin(K * I)
        dispersion = sqrt(bin(K * (I (v^2 + sigma^2))) / bin(K * I) - velocity^2
                          + sigma_LSF^2)

    Parameters
    ----------
    components : KinematicComponent or list of KinematicComponent
        Parameters may carry a leading galaxy axis ``(N,)``: a batch of N galaxies.
    grid : PixelGrid
        Data pixels and supersampling.
    psf : PSF or list of PSF
        One PSF, or one per galaxy.
    lsf_sigma : float, array or variable, optional
        Instrumental line-spread dispersion (km/s) still contained in the data, added in
        quadrature: a number, a map ``(ny, nx)``/``(N, ny, nx)`` (e.g. MaNGA's
        ``EMLINE_INSTSIGMA``) or one value per galaxy ``(N,)``. Leave it None for data from
        which the pipeline has already subtracted it.
    method : {"auto", "full", "disc_radial"}
        ``"auto"`` takes ``"disc_radial"`` when it applies (fixed light, PSF and disc
        geometry; one component with a :class:`~pymc_tracers.DiscVelocity`), else the full
        path. ``"full"`` always renders and convolves every evaluation.
    convolve_at : {"subpixel", "pixel"}
        Exact sub-pixel convolution, or convolution at the data-pixel scale (``s^2`` times
        smaller FFTs, error second order in pixel / PSF width).
    tolerance : float
        Largest error (km/s) of the ``disc_radial`` maps; it sets the number of radial nodes,
        and the maps are compared with the full path when built.

    Returns
    -------
    KinematicObservation
        ``(flux, velocity, dispersion)``, each ``grid.shape`` or ``(N, *grid.shape)``.

    Notes
    -----
    Line widths from Gaussian fits differ from second moments where beam smearing makes the
    line asymmetric or double-peaked (docs/kinematics.md).
    """
    components = as_kinematic_components(components)
    if method not in KINEMATIC_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {KINEMATIC_METHODS}")
    if not (tolerance > 0):
        raise ValueError(f"tolerance must be > 0 (km/s); got {tolerance!r}")
    n_galaxies = batch_size(components, psf)
    numerics = make_numerics(grid, psf, convolve_at, n_galaxies=n_galaxies)
    lsf = _check_lsf(lsf_sigma, grid, n_galaxies)
    first = components[0].velocity
    reference_owner = first if isinstance(first, DiscVelocity) else None

    from pymc_tracers.kinematics.disc_transfer import DiscTransferRenderer, disc_transfer_problem

    problem = disc_transfer_problem(components, numerics)
    if method == "disc_radial" and problem:
        raise ValueError(f"method='disc_radial' does not apply: {problem}")
    if method != "full" and not problem:
        renderer = DiscTransferRenderer(
            components, numerics, n_galaxies, lsf=lsf, tolerance=tolerance
        )
        renderer.reason = (
            "fixed light, PSF and disc geometry: velocity and dispersion are fixed angular "
            "factors x functions of disc radius"
        )
    else:
        path = numerics.name if numerics.is_fixed else "fitted_psf"
        renderer = KinematicFullRenderer(
            components, numerics, n_galaxies, path=path, reference_owner=reference_owner, lsf=lsf
        )
        renderer.reason = "asked for the full path" if method == "full" else problem
    maps = renderer.render()
    return KinematicObservation(
        maps.flux,
        maps.velocity,
        maps.dispersion,
        path=renderer.path,
        reason=renderer.reason,
        renderer=renderer,
        max_error=renderer.max_error,
        numerics=numerics,
        n_galaxies=n_galaxies,
        light_sum=maps.light_sum,
        first_sum=maps.first_sum,
        second_sum=maps.second_sum,
        reference=renderer.reference,
        lsf=lsf,
    )
