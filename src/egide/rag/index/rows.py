"""Rows: one per indexed chunk, numbered in insertion order, shared by both retrievers.

A row's vector and terms never change: re-adding a chunk appends a new row and tombstones
the old one (its partition becomes -1); a relabel changes only the row's partition. Each
partition keeps the ascending list of its live rows, so resolving what a caller may read
costs O(allowed rows), not O(all rows). Compaction renumbers the live rows 0..n-1 and
returns the old → new map for the other structures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from egide.rag.index.allowed import Allowed
from egide.rag.index.arrays import Growable
from egide.rag.index.records import Partition

DEAD = -1


class RowTable:
    """Per-row columns (chunk id, document, partition, length) and the reverse maps."""

    def __init__(self) -> None:
        self.chunk = Growable(np.int64)
        self.doc = Growable(np.int32)
        self.part = Growable(np.int32)  # partition index, DEAD once removed
        self.length = Growable(np.float32)  # BM25 document length, in terms
        self.row_of_chunk: dict[int, int] = {}
        self.doc_names: list[str] = []
        self.doc_index: dict[str, int] = {}
        self.doc_rows: dict[int, list[int]] = {}  # live rows of each document
        self.partitions: list[Partition] = []
        self.part_index: dict[Partition, int] = {}
        self.part_rows: list[Growable] = []  # live rows, ascending
        self.part_length: list[float] = []
        self.epoch = 0  # bumped whenever rows are renumbered

    def __len__(self) -> int:
        return len(self.chunk)

    @property
    def live(self) -> int:
        return len(self.row_of_chunk)

    def _doc(self, name: str) -> int:
        index = self.doc_index.get(name)
        if index is None:
            index = self.doc_index[name] = len(self.doc_names)
            self.doc_names.append(name)
        return index

    def _partition(self, partition: Partition) -> int:
        index = self.part_index.get(partition)
        if index is None:
            index = self.part_index[partition] = len(self.partitions)
            self.partitions.append(partition)
            self.part_rows.append(Growable(np.int64, capacity=64))
            self.part_length.append(0.0)
        return index

    def append(
        self,
        chunk_ids: Sequence[int],
        documents: Sequence[str],
        partitions: Sequence[Partition],
        lengths: np.ndarray,
    ) -> int:
        """Append new rows (their chunk ids must not be live); return the first row."""
        first, n = len(self), len(chunk_ids)
        doc = np.empty(n, dtype=np.int32)
        part = np.empty(n, dtype=np.int32)
        for i, (chunk_id, name, partition) in enumerate(
            zip(chunk_ids, documents, partitions, strict=True)
        ):
            doc[i] = d = self._doc(name)
            part[i] = self._partition(partition)
            self.row_of_chunk[chunk_id] = first + i
            self.doc_rows.setdefault(d, []).append(first + i)
        self.chunk.extend(np.asarray(chunk_ids, dtype=np.int64))
        self.doc.extend(doc)
        self.part.extend(part)
        self.length.extend(lengths)
        order = np.argsort(part, kind="stable")
        cuts = np.flatnonzero(np.diff(part[order])) + 1
        for group in np.split(order, cuts):
            p = int(part[group[0]])
            self.part_rows[p].extend(group + first)
            self.part_length[p] += float(lengths[group].sum())
        return first

    def rows_of_chunks(self, chunk_ids: Iterable[int]) -> np.ndarray:
        found = [self.row_of_chunk.get(c) for c in chunk_ids]
        return np.array(sorted({r for r in found if r is not None}), dtype=np.int64)

    def rows_of_documents(self, names: Iterable[str]) -> np.ndarray:
        rows: list[int] = []
        for name in set(names):
            d = self.doc_index.get(name)
            if d is not None:
                rows.extend(self.doc_rows.get(d, ()))
        return np.array(sorted(rows), dtype=np.int64)

    def rows_of_library(self, library_id: str) -> np.ndarray:
        parts = [i for i, (lib, _) in enumerate(self.partitions) if lib == library_id]
        rows = [self.part_rows[i].view() for i in parts]
        return np.sort(np.concatenate(rows)) if rows else np.empty(0, dtype=np.int64)

    def _detach(self, rows: np.ndarray) -> None:
        """Take live ``rows`` (ascending) out of their partitions' lists."""
        part = self.part.view()[rows]
        lengths = self.length.view()[rows]
        for p in np.unique(part):
            chosen = part == p
            listed = self.part_rows[p]
            kept = np.setdiff1d(listed.view(), rows[chosen], assume_unique=True)
            listed.replace(kept)
            self.part_length[p] = max(0.0, self.part_length[p] - float(lengths[chosen].sum()))

    def remove(self, rows: np.ndarray) -> None:
        """Tombstone live ``rows`` (ascending, unique)."""
        if len(rows) == 0:
            return
        self._detach(rows)
        chunk, doc = self.chunk.view(), self.doc.view()
        for r in rows.tolist():
            del self.row_of_chunk[int(chunk[r])]
        gone = set(rows.tolist())
        for d in np.unique(doc[rows]).tolist():
            left = [r for r in self.doc_rows[d] if r not in gone]
            if left:
                self.doc_rows[d] = left
            else:
                del self.doc_rows[d]
        self.part.set(rows, DEAD)

    def move(self, rows: np.ndarray, partition: Partition) -> None:
        """Give live ``rows`` (ascending, unique) a new partition."""
        if len(rows) == 0:
            return
        self._detach(rows)
        p = self._partition(partition)
        listed = self.part_rows[p]
        listed.replace(np.union1d(listed.view(), rows))
        self.part_length[p] += float(self.length.view()[rows].sum())
        self.part.set(rows, p)

    def sizes(self) -> dict[Partition, int]:
        return {
            p: len(rows)
            for p, rows in zip(self.partitions, self.part_rows, strict=True)
            if len(rows)
        }

    def compact(self) -> np.ndarray:
        """Renumber the live rows 0..live-1 in order; return old row → new row (-1: gone)."""
        part = self.part.view()
        old = np.flatnonzero(part != DEAD)
        remap = np.full(len(part), -1, dtype=np.int64)
        remap[old] = np.arange(len(old), dtype=np.int64)
        for column in (self.chunk, self.doc, self.part, self.length):
            column.replace(column.view()[old])
        self._reindex()
        self.epoch += 1
        return remap

    @classmethod
    def restore(
        cls, columns: dict[str, np.ndarray], doc_names: list[str], partitions: list[Partition]
    ) -> RowTable:
        """A table from saved columns (``chunk``, ``doc``, ``part``, ``length``)."""
        table = cls()
        for name in ("chunk", "doc", "part", "length"):
            getattr(table, name).replace(columns[name])
        table.doc_names = list(doc_names)
        table.doc_index = {name: i for i, name in enumerate(doc_names)}
        table.partitions = [(lib, int(key)) for lib, key in partitions]
        table.part_index = {p: i for i, p in enumerate(table.partitions)}
        table._reindex()
        return table

    def _reindex(self) -> None:
        """Rebuild the reverse maps and partition lists from the columns."""
        part = self.part.view()
        live = np.flatnonzero(part != DEAD)
        self.row_of_chunk = dict(zip(self.chunk.view()[live].tolist(), live.tolist(), strict=True))
        self.doc_rows = {d: rows.tolist() for d, rows in _groups(self.doc.view(), live)}
        self.part_rows = []
        for _ in self.partitions:
            self.part_rows.append(Growable(np.int64, capacity=64))
        for p, rows in _groups(part, live):
            self.part_rows[p].replace(rows)
        sums = np.bincount(
            part[live], weights=self.length.view()[live], minlength=len(self.partitions)
        )
        self.part_length = [float(x) for x in sums]

    def resolve(self, partitions: Iterable[Partition], documents: Iterable[str] | None) -> Allowed:
        """What one search may read: live rows in ``partitions`` (and of ``documents``)."""
        parts = sorted({self.part_index[p] for p in partitions if p in self.part_index})
        lut = np.zeros(len(self.partitions) + 1, dtype=bool)  # lut[DEAD] is the last: False
        lut[parts] = True
        if documents is None:
            return Allowed(self, lut, parts, None)
        rows = self.rows_of_documents(documents)
        rows = rows[lut[self.part.view()[rows]]]
        return Allowed(self, lut, parts, rows)


def _groups(keys: np.ndarray, rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``rows`` (ascending) grouped by ``keys[rows]``, each group ascending."""
    if len(rows) == 0:
        return []
    order = rows[np.argsort(keys[rows], kind="stable")]
    cuts = np.flatnonzero(np.diff(keys[order])) + 1
    return [(int(keys[g[0]]), g) for g in np.split(order, cuts)]
