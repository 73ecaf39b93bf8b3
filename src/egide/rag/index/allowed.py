"""The rows one search may read.

Resolved once per search, under the read lock, from the caller's partitions (and
documents), and the only thing the retrievers consult: ``rows()`` for exact scans,
``contains()`` to filter postings, ``mask()`` for the HNSW selector. A tombstoned row has
partition -1, which no lookup table admits, so removals need no extra check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from egide.rag.index.rows import RowTable


class Allowed:
    """The rows one search may read; valid only under the read lock it was made under."""

    def __init__(
        self, table: RowTable, lut: np.ndarray, parts: list[int], rows: np.ndarray | None
    ) -> None:
        self._table = table
        self._lut = lut
        self._parts = parts
        self._rows = rows
        self._explicit = rows is not None  # a documents filter: rows listed one by one
        self._mask: np.ndarray | None = None
        if rows is None:
            self.count = sum(len(table.part_rows[p]) for p in parts)
            self.total_length = sum(table.part_length[p] for p in parts)
        else:
            self.count = len(rows)
            self.total_length = float(table.length.view()[rows].sum())

    def rows(self) -> np.ndarray:
        """The allowed rows (int64, each once, in no particular order)."""
        if self._rows is None:
            lists = [self._table.part_rows[p].view() for p in self._parts]
            self._rows = np.concatenate(lists) if lists else np.empty(0, dtype=np.int64)
        return self._rows

    def contains(self, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` may be read (boolean array)."""
        if not self._explicit or (self._mask is None and len(rows) < 4 * self.count):
            ok: np.ndarray = self._lut[self._table.part.view()[rows]]
            if self._explicit:
                ok &= np.isin(rows, self.rows())
            return ok
        readable: np.ndarray = self.mask()[rows]
        return readable

    def mask(self) -> np.ndarray:
        """A boolean over every row of the table: True where the row may be read."""
        if self._mask is None:
            total = len(self._table)
            if not self._explicit and self.count * 8 > total:
                self._mask = self._lut[self._table.part.view()]
            else:
                self._mask = np.zeros(total, dtype=bool)
                self._mask[self.rows()] = True
        return self._mask
