"""The configuration's error type and the small checks every part of it shares."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

__all__ = ["ConfigError", "check_keys", "closest", "existing_file", "is_number", "one_line"]


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the key and the fix."""


def closest(word, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_keys(table, allowed, where) -> None:
    """ConfigError for a key of ``table`` not in ``allowed`` (``where`` names the table)."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table of keys; got {type(table).__name__}")
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r} in [{where}]{closest(key, allowed)}; valid keys: "
                + ", ".join(allowed)
            )


def one_line(text) -> str:
    """``text`` with its whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def existing_file(value, folder, where) -> Path:
    """The file ``value`` names (relative to the config's ``folder``); ConfigError naming
    ``where`` when it is not a string or does not exist."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a file name (a string); got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise ConfigError(f"{where}: file {str(path)!r} does not exist")
    return path
