"""A batch's used pixels, laid out for a likelihood's compact basis.

A likelihood over some pixels of a batch reads a per-pixel basis ``(used, K)``. Held as one
array, every evaluation would gather rows of it (and a compiled graph copies slices of its
inputs); instead the galaxies are sorted by their number of used pixels into a few groups,
each group's rows a block ``(galaxies, width, K)`` padded to its largest galaxy
(:class:`PixelGroups`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

__all__ = ["PIXEL_GROUPS", "PixelGroups", "rows_of"]

#: A batch's used pixels are laid out per galaxy, padded to the largest galaxy of its group;
#: galaxies sorted by pixel count into this many groups waste little on padding.
PIXEL_GROUPS = 8


@dataclass(frozen=True)
class PixelGroups:
    """Galaxies sorted by their number of used pixels into a few groups; each group's pixels
    are a block ``(galaxies, width, columns)`` padded to its largest galaxy, so an evaluation
    is one small matrix product per galaxy (a sum in the gradient, not a scatter).

    ``position`` is each used pixel's row in the stacked, flattened blocks.
    """

    members: list
    widths: list
    position: np.ndarray
    n_rows: int

    @classmethod
    def of(cls, index, shape):
        galaxy = np.asarray(index) // int(np.prod(shape[-2:]))
        counts = np.bincount(galaxy, minlength=shape[0])
        order = np.argsort(galaxy, kind="stable")
        rank = np.empty(galaxy.size, dtype=np.int64)
        rank[order] = np.arange(galaxy.size) - np.repeat(np.cumsum(counts) - counts, counts)
        by_count = np.argsort(counts, kind="stable")
        members = [m for m in np.array_split(by_count, min(PIXEL_GROUPS, shape[0])) if m.size]
        widths = [max(int(counts[m].max()), 1) for m in members]
        block_start = np.zeros(shape[0], dtype=np.int64)
        start = 0
        for m, width in zip(members, widths):
            block_start[m] = start + width * np.arange(m.size)
            start += width * m.size
        return cls(members, widths, block_start[galaxy] + rank, start)

    def blocks(self, rows):
        """Per-pixel ``rows`` ``(used, K)`` (in the order of the index) as one zero-padded
        block ``(galaxies, width, K)`` per group."""
        stacked = np.zeros((self.n_rows, rows.shape[-1]))
        stacked[self.position] = rows
        blocks, start = [], 0
        for members, width in zip(self.members, self.widths):
            stop = start + members.size * width
            blocks.append(stacked[start:stop].reshape((members.size, width, -1)))
            start = stop
        return blocks

    def combine(self, blocks, coefficients):
        """``blocks @ coefficients`` at the used pixels (a tensor ``(used,)`` in the order of
        the index), for coefficients ``(K,)`` shared by every galaxy or ``(N, K)``: one small
        matrix product per galaxy (its gradient a sum, not a scatter)."""
        parts = []
        for members, block in zip(self.members, blocks):
            if coefficients.ndim == 1:
                parts.append(pt.dot(block, coefficients).reshape((-1,)))
            else:
                chosen = coefficients[members][:, :, None]
                parts.append(pt.matmul(block, chosen)[:, :, 0].reshape((-1,)))
        flat = parts[0] if len(parts) == 1 else pt.concatenate(parts)
        return flat[self.position]


def rows_of(arrays, index, shape):
    """The light map and the basis and fallback rows of the pixels (flat) ``index`` into
    ``shape``, from full maps ``(lead, P, K)``."""
    index = np.asarray(index)
    if arrays["light"].ndim == 1:  # maps shared by every galaxy
        index = index % int(np.prod(shape[-2:]))
    n_columns = arrays["basis"].shape[-1]
    return {
        "light": arrays["light"],
        "basis": arrays["basis"].reshape((-1, n_columns))[index],
        "fallback": arrays["fallback"].reshape((-1, n_columns))[index],
    }
