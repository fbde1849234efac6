"""Writing files and folders so that a reader never sees half of one.

Every result the library writes (FITS maps, ECSV tables, netCDF posteriors, result folders)
goes through these helpers: the content is written to a hidden temporary file or folder next
to the target and renamed into place, so a crash or Ctrl-C leaves either the old target or the
new one, never a partial one.

Temporary files from :func:`tempfile.mkstemp` / :func:`tempfile.mkdtemp` are private (0600 /
0700); the helpers give them the permissions an ordinary ``open()`` / ``mkdir()`` would have
under the process's umask (0644 / 0755 under umask 022), so collaborators on a shared file
system can read the results.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "OLD_SUFFIX",
    "PARTIAL_SUFFIX",
    "atomic_write",
    "clean_leftovers",
    "current_umask",
    "partial_folder",
    "publish_folder",
    "shareable",
]

#: Suffix of a folder being written (a leftover after a crash; removed by the next run).
PARTIAL_SUFFIX = ".partial"
#: Suffix of the folder holding a result while its replacement is moved into place.
OLD_SUFFIX = ".old"


def current_umask() -> int:
    """The process's umask (read without changing it for longer than one call)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def shareable(path, mode: int = 0o666) -> None:
    """Give a private temporary file or folder the permissions of ``mode`` under the umask.

    Parameters
    ----------
    path : path-like
    mode : int
        ``0o666`` for files (0644 under umask 022), ``0o777`` for folders (0755).
    """
    os.chmod(path, mode & ~current_umask())


def atomic_write(path, write, *, overwrite: bool = False) -> Path:
    """Write a file through a temporary file in the same folder, then move it into place.

    Parameters
    ----------
    path : path-like
        The target file; its folder must exist.
    write : callable
        ``write(temporary_path)`` writes the content (it may replace the temporary file).
    overwrite : bool
        Replace an existing target (otherwise ``FileExistsError``).

    Returns
    -------
    Path
        The target, with the permissions a plain ``open(path, "w")`` gives under the umask.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.exists():
        raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(Path(tmp))
        shareable(tmp, 0o666)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


@contextlib.contextmanager
def partial_folder(parent, name: str):
    """A new hidden folder ``parent/.<name>.*.partial`` to write a result into.

    The folder has the permissions of ``mkdir`` under the umask; it is removed when the block
    raises, and left for :func:`publish_folder` otherwise.
    """
    temporary = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=PARTIAL_SUFFIX, dir=parent))
    try:
        shareable(temporary, 0o777)
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def publish_folder(temporary, final, *, replace: bool, is_complete=None) -> str:
    """Move a finished temporary folder into place.

    Parameters
    ----------
    temporary : path-like
        The finished folder (from :func:`partial_folder`).
    final : path-like
        Its destination.
    replace : bool
        Replace an existing ``final``: it is first moved aside (``.<name>.*.old``), so an
        interruption between the two renames leaves it recoverable by :func:`clean_leftovers`.
    is_complete : callable, optional
        ``is_complete(final) -> bool``: whether an existing ``final`` is a finished result of
        another writer (then this one is a duplicate and is discarded).

    Returns
    -------
    str
        ``"written"``, ``"replaced"``, or ``"duplicate"`` (``temporary`` removed).

    Raises
    ------
    FileExistsError
        ``final`` exists, ``replace`` is False and it is not a finished result.
    """
    temporary, final = Path(temporary), Path(final)
    if final.exists() and replace:
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=OLD_SUFFIX, dir=final.parent))
        os.rename(final, old / final.name)
        os.rename(temporary, final)
        shutil.rmtree(old, ignore_errors=True)
        return "replaced"
    try:
        if final.exists():
            raise FileExistsError(f"{str(final)!r} exists")
        os.rename(temporary, final)  # fails on an existing, non-empty folder: first one wins
    except OSError:
        if final.exists() and is_complete is not None and is_complete(final):
            shutil.rmtree(temporary, ignore_errors=True)
            return "duplicate"
        shutil.rmtree(temporary, ignore_errors=True)
        raise FileExistsError(
            f"{str(final)!r} appeared while the result was written; it was left as it is"
        ) from None
    return "written"


def clean_leftovers(folder) -> list[str]:
    """Remove the temporary folders interrupted runs left in ``folder``.

    A result whose replacement was interrupted between its two renames is put back first.

    Returns
    -------
    list of str
        The names removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        if not path.name.startswith(".") or not path.is_dir():
            continue
        if path.name.endswith(OLD_SUFFIX):
            for child in path.iterdir():
                if not (folder / child.name).exists():
                    os.rename(child, folder / child.name)
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        elif path.name.endswith(PARTIAL_SUFFIX):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
