"""Append-only numpy storage that grows by doubling, so adds cost amortised O(1) per row."""

from __future__ import annotations

from typing import Any

import numpy as np


class Growable:
    """A numpy array of rows (1-D when ``width`` is None, else ``(rows, width)``) with spare
    capacity. ``view()`` is valid until the next append that grows the buffer; the rows it
    shows are never rewritten in place by an append."""

    def __init__(self, dtype: Any, width: int | None = None, capacity: int = 1024) -> None:
        shape = (capacity,) if width is None else (capacity, width)
        self._buf: np.ndarray = np.empty(shape, dtype=dtype)
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def view(self) -> np.ndarray:
        return self._buf[: self._len]

    def reserve(self, extra: int) -> None:
        need = self._len + extra
        if need > self._buf.shape[0]:
            size = max(need, 2 * self._buf.shape[0])
            grown = np.empty((size, *self._buf.shape[1:]), dtype=self._buf.dtype)
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown

    def append(self, value: Any) -> None:
        self.reserve(1)
        self._buf[self._len] = value
        self._len += 1

    def extend(self, values: np.ndarray) -> None:
        self.reserve(len(values))
        self._buf[self._len : self._len + len(values)] = values
        self._len += len(values)

    def replace(self, values: np.ndarray) -> None:
        """Swap in new contents (compaction, removal); the old buffer is left untouched."""
        self._buf = np.array(values, dtype=self._buf.dtype, copy=True)
        if self._buf.shape[0] == 0:
            self._buf = np.empty((16, *self._buf.shape[1:]), dtype=self._buf.dtype)
        self._len = len(values)

    def set(self, index: Any, value: Any) -> None:
        self._buf[index] = value
