"""The hybrid index: BM25 and vector search over the same rows, fused by reciprocal rank.

Both retrievers take the caller's readable set (partitions, optionally documents) as an
argument and apply it *inside* the search — postings are reduced to readable rows before
scoring, the vector search scans or walks only readable rows — so a 1% reader gets a full
top-k and no result can come from outside the set. Results are checked once more against
the set before they leave.

Concurrency: searches share a readers-writer lock; mutations are serialised among
themselves and hold the lock exclusively only to publish a prepared batch (text analysis,
vector normalisation and segment packing happen before), at most ``ADD_BATCH`` entries at
a time. Slow work — building the HNSW graph, moving fresh rows into it, large segment
merges, compaction — is left to a background thread (see ``upkeep``). Fresh rows are
searched exactly until they are in the graph and removed rows are tombstones at once, so
every mutation takes effect for the very next search, whatever upkeep is under way.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from egide.rag.index import snapshot
from egide.rag.index.allowed import Allowed
from egide.rag.index.analyse import analyse
from egide.rag.index.bm25 import Postings, build_segment
from egide.rag.index.checks import (
    checked_entry,
    document_list,
    is_key,
    readable_set,
    search_mode,
)
from egide.rag.index.fusion import Fused, Ranked, fuse
from egide.rag.index.locks import ReadWriteLock
from egide.rag.index.records import Entry, Hit, Partition, SearchMode
from egide.rag.index.rows import RowTable
from egide.rag.index.upkeep import Upkeep
from egide.rag.index.vectors import VectorIndex, normalised, normalised_rows

ADD_BATCH = 4096  # entries published per exclusive lock


class HybridIndex:
    """In-process hybrid index with the clearance filter inside the search.

    ``exact_limit``: up to this many readable rows a vector search is exact (recall 1.0);
    above it, once the index holds ``hnsw_min_rows`` live rows, the HNSW graph is used.
    ``hnsw_m``, ``ef_construction`` and ``ef_search`` tune the graph (see
    ``graph.ef_for``); ``graph_batch`` fresh rows are inserted into it per exclusive lock.
    Tombstones are compacted away once they exceed ``compact_fraction`` of the rows.
    """

    def __init__(
        self,
        dim: int,
        *,
        exact_limit: int = 20_000,
        hnsw_min_rows: int = 50_000,
        rrf_k: int = 60,
        vector_weight: float = 1.0,
        bm25_weight: float = 1.0,
        hnsw_m: int = 16,
        ef_construction: int = 80,
        ef_search: int = 128,
        graph_batch: int = 128,
        compact_fraction: float = 0.25,
    ) -> None:
        if dim < 1:
            raise ValueError("dim must be positive: the embedding model's vector size")
        # every argument, as given, for save() and load()
        self._settings: dict[str, Any] = {k: v for k, v in locals().items() if k != "self"}
        self.dim = dim
        self.rrf_k = rrf_k
        self.vector_weight = vector_weight
        self.bm25_weight = bm25_weight
        self._rows = RowTable()
        self._postings = Postings()
        self._vectors = VectorIndex(
            dim,
            exact_limit=exact_limit,
            hnsw_min_rows=hnsw_min_rows,
            m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
        )
        self._lock = ReadWriteLock()
        self._writer = threading.Lock()  # mutations one at a time
        self._upkeep = Upkeep(
            self._rows,
            self._postings,
            self._vectors,
            (self._lock, self._writer),
            batch=graph_batch,
            compact_fraction=compact_fraction,
        )

    # -- mutations ---------------------------------------------------------------------

    def add(self, entries: Sequence[Entry]) -> None:
        """Index ``entries``; re-adding a chunk id replaces that chunk. Every entry is
        validated before any is indexed (ValueError)."""
        latest = {checked_entry(e, self.dim): e for e in entries}
        todo = list(latest.values())
        batches = [todo[start : start + ADD_BATCH] for start in range(0, len(todo), ADD_BATCH)]
        vectors = [normalised_rows([e.vector for e in b], [e.chunk_id for e in b]) for b in batches]
        with self._writer:
            for batch, unit in zip(batches, vectors, strict=True):
                self._publish(batch, unit)
        self._upkeep.request()

    def _publish(self, batch: Sequence[Entry], vectors: np.ndarray) -> None:
        terms = [self._postings.term_ids(analyse(e.text)) for e in batch]
        lengths = np.array([len(t) for t in terms], dtype=np.float32)
        segment = build_segment(terms, len(self._rows))  # only writers append rows
        with self._lock.write():
            self._rows.remove(self._rows.rows_of_chunks(e.chunk_id for e in batch))
            self._rows.append(
                [int(e.chunk_id) for e in batch],
                [e.document_id for e in batch],
                [(e.partition[0], int(e.partition[1])) for e in batch],
                lengths,
            )
            self._vectors.append(vectors)
            if segment.size:
                self._postings.segments.append(segment)
            self._postings.merge_inline(self._rows.part.view())

    def remove_documents(self, document_ids: Collection[str]) -> int:
        """Remove every chunk of these documents; return how many chunks were removed."""
        with self._writer, self._lock.write():
            rows = self._rows.rows_of_documents(document_list(document_ids))
            self._rows.remove(rows)
        self._upkeep.request()
        return len(rows)

    def remove_chunks(self, chunk_ids: Collection[int]) -> int:
        with self._writer, self._lock.write():
            rows = self._rows.rows_of_chunks(chunk_ids)
            self._rows.remove(rows)
        self._upkeep.request()
        return len(rows)

    def remove_library(self, library_id: str) -> int:
        with self._writer, self._lock.write():
            rows = self._rows.rows_of_library(library_id)
            self._rows.remove(rows)
        self._upkeep.request()
        return len(rows)

    def relabel_documents(self, document_ids: Collection[str], label_key: int) -> int:
        """Move the chunks of these documents from (library, old key) to (library,
        ``label_key``); return how many chunks changed partition."""
        if not is_key(label_key):
            raise ValueError(f"label keys are integers, not {label_key!r}")
        moved = 0
        with self._writer, self._lock.write():
            rows = self._rows.rows_of_documents(document_list(document_ids))
            sources, which = np.unique(self._rows.part.view()[rows], return_inverse=True)
            for i, p in enumerate(sources.tolist()):
                library, key = self._rows.partitions[p]
                if key != label_key:
                    self._rows.move(rows[which == i], (library, int(label_key)))
                    moved += int(np.count_nonzero(which == i))
        return moved

    # -- reads -------------------------------------------------------------------------

    def search(
        self,
        *,
        vector: np.ndarray | None,
        text: str | None,
        partitions: Collection[Partition],
        documents: Collection[str] | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        """The ``k`` best chunks among those in ``partitions`` (and ``documents`` when
        given). Vector mode needs ``vector``, bm25 mode ``text``; hybrid uses both and
        degrades to the one it is given."""
        mode = search_mode(mode, k, vector is not None, text is not None)
        query = normalised(vector, self.dim) if vector is not None else None
        terms = analyse(text) if text is not None else []
        readable = readable_set(partitions)
        docs = None if documents is None else document_list(documents)
        wanted = max(4 * k, 50) if mode == "hybrid" else k
        with self._lock.read():
            allowed = self._rows.resolve(readable, docs)
            if allowed.count == 0:
                return []
            by_vector = by_text = Ranked.empty()
            if query is not None and mode != "bm25":
                by_vector = Ranked(*self._vectors.search(query, allowed, wanted))
            if mode != "vector":
                counts = self._postings.query_terms(terms)
                length = self._rows.length.view()
                by_text = Ranked(*self._postings.search(counts, allowed, length, wanted))
            if mode == "hybrid":
                weights = (self.vector_weight, self.bm25_weight)
                return self._hits(fuse(by_vector, by_text, k, self.rrf_k, *weights), allowed)
            ranked = by_text if mode == "bm25" else by_vector
            return self._hits(ranked.alone(k, bm25=mode == "bm25"), allowed)

    def _hits(self, fused: list[Fused], allowed: Allowed) -> list[Hit]:
        """Hits for rows, each checked against the readable set one last time."""
        rows = np.array([f[0] for f in fused], dtype=np.int64)
        readable = allowed.contains(rows).tolist() if len(rows) else []
        table = self._rows
        chunk, doc, part = table.chunk.view(), table.doc.view(), table.part.view()
        return [
            Hit(
                chunk_id=int(chunk[row]),
                document_id=table.doc_names[doc[row]],
                partition=table.partitions[part[row]],
                score=score,
                vector_score=vector_score,
                bm25_score=bm25_score,
            )
            for (row, score, vector_score, bm25_score), ok in zip(fused, readable, strict=True)
            if ok
        ]

    def save(self, directory: str | Path) -> None:
        """Write a snapshot (see ``snapshot``); searches go on, mutations wait."""
        with self._writer, self._lock.read():
            parts = (self._rows, self._postings, self._vectors)
            snapshot.save(Path(directory), self._settings, *parts)

    @classmethod
    def load(cls, directory: str | Path) -> HybridIndex:
        """An index as it was saved in ``directory``."""
        path = Path(directory)
        manifest = snapshot.read_manifest(path)
        settings = dict(manifest["settings"])
        index = cls(settings.pop("dim"), **settings)
        index._rows = snapshot.load(path, manifest, index._postings, index._vectors)
        index._upkeep.rows = index._rows
        index._upkeep.request()
        return index

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until background upkeep (graph building, merges, compaction) is done;
        return False if ``timeout`` seconds ran out first. Searches never need this: they
        are complete and exact about removals at every moment; upkeep only makes them
        faster."""
        return self._upkeep.settle(timeout)

    def __len__(self) -> int:
        with self._lock.read():
            return self._rows.live

    def partition_sizes(self) -> dict[Partition, int]:
        with self._lock.read():
            return self._rows.sizes()

    def contains(self, chunk_id: int) -> bool:
        with self._lock.read():
            return chunk_id in self._rows.row_of_chunk
