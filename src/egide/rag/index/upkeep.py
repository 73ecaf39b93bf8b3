"""Upkeep, done by a background thread so that neither searches nor mutations wait for it:
HNSW graph builds, moving fresh rows into the graph, large segment merges, compaction.

A mutation publishes its change (visible to the next search at once: fresh rows are
searched exactly until they are in the graph, removed rows are tombstones) and then
``request()``s upkeep; a worker thread starts if none is running and stops when nothing
is left to do. Builds and large merges are computed from frozen inputs (rows are never
rewritten, segments never modified) while searches go on, then swapped in under a brief
exclusive lock — unless the rows were renumbered meanwhile (``RowTable.epoch``) or the
segments replaced, in which case the result is dropped and the work planned again. Many
fresh rows go into a copy of the graph extended outside the lock; a few go into the graph
itself ``batch`` at a time, each under its own brief exclusive lock. Compaction renumbers
every row, so it holds both the writers' mutex and the exclusive lock (about a second per
million rows, once tombstones pass ``compact_fraction`` of the rows).
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from egide.rag.index.bm25 import Postings, merge_segments
from egide.rag.index.locks import ReadWriteLock
from egide.rag.index.rows import DEAD, RowTable
from egide.rag.index.vectors import VectorIndex

log = logging.getLogger("egide.rag")
COMPACT_MIN_DEAD = 1024


class Upkeep:
    def __init__(
        self,
        rows: RowTable,
        postings: Postings,
        vectors: VectorIndex,
        locks: tuple[ReadWriteLock, threading.Lock],
        *,
        batch: int,
        compact_fraction: float,
    ) -> None:
        self.rows = rows
        self.postings = postings
        self.vectors = vectors
        self.lock, self.writer = locks
        self.batch = batch
        self.compact_fraction = compact_fraction
        self._state = threading.Condition()
        self._pending = False
        self._worker: threading.Thread | None = None

    def request(self) -> None:
        """Note that something changed; make sure a worker will look at it."""
        with self._state:
            self._pending = True
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="egide-index-upkeep", daemon=True
                )
                self._worker.start()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until no upkeep is due or running; False if ``timeout`` ran out first."""
        with self._state:
            return self._state.wait_for(lambda: self._worker is None, timeout)

    def _work(self) -> None:
        while True:
            with self._state:
                if not self._pending:
                    self._worker = None
                    self._state.notify_all()
                    return
                self._pending = False
            try:
                while self._step():
                    pass
            except Exception:  # searches stay correct without upkeep; the next change retries
                log.exception("index upkeep failed; fresh rows stay in the exactly-searched tail")

    def _step(self) -> bool:
        if self._compact_if_worth_it():
            return True
        with self.lock.read():
            plan = self.postings.next_merge()
            segments = self.postings.segments[plan[0] : plan[1]] if plan else []
            part = self.rows.part.view()
            build = self.vectors.needs_build(self.rows.live)
            matrix, epoch = self.vectors.matrix.view(), self.rows.epoch
            graph, tail = self.vectors.graph, self.vectors.tail
            copy = graph is not None and tail >= self.vectors.copy_threshold()
        if segments:
            merged = merge_segments(segments, part)
            with self.lock.write():
                self.postings.swap(segments, merged)
            return True
        if build:
            built = self.vectors.build(matrix)
            with self.lock.write():
                if self.rows.epoch == epoch:
                    self.vectors.graph = built
            return True
        if copy and graph is not None:
            bigger = self.vectors.extended(graph, matrix)
            with self.lock.write():
                if self.rows.epoch == epoch and self.vectors.graph is graph:
                    self.vectors.graph = bigger
            return True
        with self.lock.write():
            return self.vectors.extend_graph(self.batch) > 0

    def _compact_if_worth_it(self) -> bool:
        with self.writer, self.lock.write():
            rows = self.rows
            dead = len(rows) - rows.live
            if dead < COMPACT_MIN_DEAD or dead <= self.compact_fraction * len(rows):
                return False
            keep = np.flatnonzero(rows.part.view() != DEAD)
            remap = rows.compact()
            self.vectors.compact(keep, remap)
            self.postings.compact(remap)
            return True
