"""The catalogue of a survey: one row per galaxy with its name, configuration and covariates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from pymc_tracers.config.errors import one_line

__all__ = ["Catalogue", "CatalogueError", "read_catalogue"]


class CatalogueError(ValueError):
    """A problem with the catalogue; the message names the row and the fix."""


@dataclass
class Catalogue:
    """A catalogue of galaxies: names, config paths (resolved) and covariates.

    Attributes
    ----------
    path : Path
        The catalogue file.
    table : astropy.table.Table
        The table as read (covariate columns keep their units, e.g. ``dex``).
    names : list of str
        Galaxy names, unique, in the catalogue's order.
    configs : list of Path
        Each galaxy's configuration, resolved against the catalogue's folder (not checked:
        a missing file is reported as that galaxy's failure).
    """

    path: Path
    table: object
    names: list
    configs: list

    def __len__(self) -> int:
        return len(self.names)

    def covariate(self, column) -> np.ndarray:
        """The values of ``column`` (float array in the catalogue's order)."""
        if column not in self.table.colnames:
            raise CatalogueError(
                f"catalogue {self.path.name} has no column {column!r}; its columns are "
                f"{', '.join(self.table.colnames)}"
            )
        try:
            values = np.asarray(self.table[column], dtype=float)
        except (TypeError, ValueError):
            raise CatalogueError(
                f"catalogue column {column!r} is not numeric; give one number per galaxy"
            ) from None
        mask = getattr(self.table[column], "mask", None)
        if mask is not None:
            values = np.where(np.asarray(mask), np.nan, values)
        return values

    def unit(self, column) -> str:
        """The unit string of a column ('' without one)."""
        unit = getattr(self.table[column], "unit", None)
        return "" if unit is None else unit.to_string()


def read_catalogue(path, *, covariates=()) -> Catalogue:
    """Read a CSV or ECSV catalogue with one row per galaxy.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` (plain comma-separated, header line first) or ``.ecsv`` (astropy's ECSV,
        which keeps units: a ``log_mass`` column in dex, ``redshift`` dimensionless).
    covariates : sequence of str
        Columns that must exist and hold finite numbers in every row (e.g. ``("log_mass",
        "redshift")``).

    Returns
    -------
    Catalogue

    Raises
    ------
    FileNotFoundError
        If the catalogue does not exist.
    CatalogueError
        For a missing ``name`` or ``config`` column, an empty or duplicate name, a name that
        cannot be a folder name, an empty config, or a missing / non-finite covariate; the
        message names the row (1 = the first galaxy).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"catalogue {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    formats = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}
    if suffix not in formats:
        raise CatalogueError(
            f"catalogue {path.name}: unknown format {suffix!r}; give a .csv or .ecsv table"
        )
    try:
        table = Table.read(path, format=formats[suffix])
    except Exception as error:  # noqa: BLE001  (astropy raises several types)
        raise CatalogueError(f"cannot read catalogue {path.name}: {one_line(error)}") from None
    for column in ("name", "config"):
        if column not in table.colnames:
            raise CatalogueError(
                f"catalogue {path.name} has no {column!r} column (its columns: "
                f"{', '.join(table.colnames)}); give one row per galaxy with name, config (its "
                "TOML file) and covariates"
            )
    if len(table) == 0:
        raise CatalogueError(f"catalogue {path.name} has no rows")
    names, configs, seen = [], [], {}
    for i, row in enumerate(table, start=1):
        name = "" if _is_masked(row["name"]) else str(row["name"]).strip()
        if not name:
            raise CatalogueError(f"catalogue {path.name}, row {i}: empty name")
        if name.startswith(".") or any(c in name for c in '/\\\0:*?"<>|') or name != name.strip():
            raise CatalogueError(
                f"catalogue {path.name}, row {i}: name {name!r} cannot be a folder name (no "
                'leading dot, no / \\ : * ? " < > |)'
            )
        if name in seen:
            raise CatalogueError(
                f"catalogue {path.name}: name {name!r} appears in rows {seen[name]} and {i}; "
                "names must be unique (they name the result folders)"
            )
        seen[name] = i
        config = "" if _is_masked(row["config"]) else str(row["config"]).strip()
        if not config:
            raise CatalogueError(f"catalogue {path.name}, row {i} ({name}): empty config")
        config = Path(config).expanduser()
        names.append(name)
        configs.append(config if config.is_absolute() else (path.parent / config).absolute())
    catalogue = Catalogue(path, table, names, configs)
    for column in covariates:
        values = catalogue.covariate(column)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise CatalogueError(
                f"catalogue {path.name}, row {i + 1} ({names[i]}): {column} = {values[i]} is not "
                "a finite number; give it a value or remove the row"
            )
    return catalogue


def _is_masked(value) -> bool:
    return value is np.ma.masked or (isinstance(value, np.ma.MaskedArray) and value.mask.all())
