"""Angular to physical units: gradients in dex/kpc from dex/arcsec and redshifts.

The conversion factor (arcsec per proper kpc at each redshift) is computed once in NumPy with
``astropy.cosmology``; multiplying by it works on floats, arrays and PyTensor tensors alike, so
the same call converts a fitted gradient inside a PyMC model or a posterior draw afterwards.
The cosmology is described by a JSON-serialisable dictionary (:func:`cosmology_config`) to
store in a result's configuration and rebuild later (:func:`cosmology_from_config`).

Example
-------
>>> import pymc_tracers as pmt
>>> pmt.cosmology.gradient_per_kpc(-0.1, redshift=1.0)          # dex/arcsec -> dex/kpc
-0.01214...
"""

from __future__ import annotations

import astropy.cosmology as ac
import astropy.units as u
import numpy as np

__all__ = [
    "DEFAULT_COSMOLOGY",
    "arcsec_per_kpc",
    "cosmology_config",
    "cosmology_from_config",
    "get_cosmology",
    "gradient_per_kpc",
]

#: astropy realisation used when no cosmology is given
DEFAULT_COSMOLOGY = "Planck18"


def get_cosmology(cosmology=None):
    """An ``astropy.cosmology.Cosmology`` from an instance, a realisation name or a config dict.

    Parameters
    ----------
    cosmology : Cosmology, str, dict or None
        ``None`` gives Planck18; a string names an astropy realisation (``"Planck18"``,
        ``"WMAP9"``, ...); a dict is the output of :func:`cosmology_config`.
    """
    if cosmology is None:
        cosmology = DEFAULT_COSMOLOGY
    if isinstance(cosmology, ac.Cosmology):
        return cosmology
    if isinstance(cosmology, str):
        if cosmology not in ac.realizations.available:
            raise ValueError(
                f"unknown cosmology {cosmology!r}; use one of astropy's realisations "
                f"{list(ac.realizations.available)} or pass an astropy.cosmology.Cosmology"
            )
        return getattr(ac.realizations, cosmology)
    if isinstance(cosmology, dict):
        return cosmology_from_config(cosmology)
    raise ValueError(
        f"cosmology must be None, a realisation name, an astropy Cosmology or a config dict; "
        f"got {type(cosmology).__name__}"
    )


def arcsec_per_kpc(redshift, *, cosmology=None) -> np.ndarray:
    """Angular scale, arcsec per proper kpc, at each redshift (NumPy, via astropy).

    Parameters
    ----------
    redshift : float or array_like
        Redshifts (> 0; an angular scale at z = 0 is infinite).
    cosmology : Cosmology, str, dict or None
        See :func:`get_cosmology` (default Planck18).

    Returns
    -------
    ndarray of the shape of ``redshift``, arcsec/kpc.
    """
    z = np.asarray(redshift, dtype=float)
    bad = ~(np.isfinite(z) & (z > 0))
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        where = f" (galaxy {i})" if z.ndim else ""
        raise ValueError(
            f"redshifts must be finite and > 0; got {float(z.ravel()[i])}{where}. An angular scale "
            "needs a distance: drop galaxies without a redshift or keep their gradients in "
            "dex/arcsec"
        )
    cosmo = get_cosmology(cosmology)
    return np.asarray(cosmo.arcsec_per_kpc_proper(z).to_value("arcsec / kpc"), dtype=float)


def gradient_per_kpc(gradient, *, redshift, cosmology=None):
    """Convert radial gradients from dex/arcsec (or any unit per arcsec) to dex/kpc.

    ``gradient [dex/kpc] = gradient [dex/arcsec] x arcsec_per_kpc(z)``. The factor is computed
    in NumPy, so ``gradient`` may be a float, an array or a PyTensor tensor (e.g. a PyMC
    variable with ``dims="galaxy"``); the result is of the same kind.

    Parameters
    ----------
    gradient : float, array or tensor
        Gradients in dex/arcsec; the last axis (or the only one) runs over galaxies when
        ``redshift`` is an array.
    redshift : float or array_like
        Redshift of each galaxy.
    cosmology : Cosmology, str, dict or None
        See :func:`get_cosmology` (default Planck18). Store ``cosmology_config(cosmology)``
        with the result, e.g. ``pmt.fit(config={"cosmology": cosmology_config()})``.
    """
    return gradient * arcsec_per_kpc(redshift, cosmology=cosmology)


def _plain(value):
    """A JSON-friendly copy of a cosmology parameter: (value, unit) for quantities."""
    if isinstance(value, u.Quantity):
        v = value.value
        return {"value": v.tolist() if np.ndim(v) else float(v), "unit": value.unit.to_string()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def cosmology_config(cosmology=None) -> dict:
    """A JSON-serialisable description of a cosmology: name, class and parameters.

    Parameters
    ----------
    cosmology : Cosmology, str or None
        See :func:`get_cosmology` (default Planck18).

    Returns
    -------
    dict
        ``{"name": ..., "class": ..., "parameters": {"H0": {"value": 67.66, "unit":
        "km / (Mpc s)"}, "Om0": 0.30966, ...}}``; :func:`cosmology_from_config` inverts it.
    """
    cosmo = get_cosmology(cosmology)
    return {
        "name": cosmo.name,
        "class": type(cosmo).__name__,
        "parameters": {k: _plain(v) for k, v in cosmo.parameters.items()},
    }


def cosmology_from_config(config: dict):
    """Rebuild the cosmology described by :func:`cosmology_config`.

    A named astropy realisation whose parameters match is returned as the realisation itself
    (with its metadata); otherwise the class is instantiated with the stored parameters.
    """
    try:
        cls = getattr(ac, config["class"])
        stored = config["parameters"]
    except (KeyError, AttributeError, TypeError):
        raise ValueError(
            "a cosmology config needs 'class' (an astropy.cosmology class name) and 'parameters'; "
            f"got {config!r}"
        ) from None
    params = {
        k: u.Quantity(v["value"], v["unit"]) if isinstance(v, dict) else v
        for k, v in stored.items()
    }
    name = config.get("name")
    cosmo = cls(name=name, **params)
    if name in ac.realizations.available:
        known = getattr(ac.realizations, name)
        if cosmology_config(known)["parameters"] == cosmology_config(cosmo)["parameters"]:
            return known
    return cosmo
