"""An HNSW graph (faiss) searched with the caller's rows as a selector, never post-filtered.

faiss walks the whole graph but only admits nodes the ``IDSelectorBitmap`` accepts into the
result heap, so every result is allowed by construction. What a restrictive filter costs is
recall: the walk must see about ``k / f`` nodes to meet ``k`` allowed ones when a fraction
``f`` of the graph is allowed. ``ef_for`` widens efSearch as ``f`` shrinks; a search that
still comes back short is retried wider and then answered exactly, so a caller always gets
``k`` results when ``k`` allowed rows exist.

Node ``i`` is row ``i`` (ids = rows) until the rows are compacted; then ``node_rows`` maps
nodes to their new rows until the graph is rebuilt.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

EF_MAX = 4096


@contextmanager
def one_thread() -> Iterator[None]:
    """Run faiss single-threaded in this thread only (OpenMP's thread count is per thread).

    One query gains nothing from a team of threads, and waking one on a busy machine costs
    milliseconds: measured 8 ms instead of 0.3 ms for 600 rows on 2 cores."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def ef_for(k: int, fraction: float, ef_search: int) -> int:
    """efSearch for ``k`` results when ``fraction`` of the graph's nodes are allowed:
    ``(ef_search + 4k) / sqrt(fraction)``, within ``[k, EF_MAX]``. Calibrated on clustered
    384-d data: recall@10 ≥ 0.95 from 100% down to 5% allowed (below that the exact plan
    is cheaper anyway)."""
    wanted = (ef_search + 4 * k) / math.sqrt(max(fraction, 1e-6))
    return int(min(EF_MAX, max(k, math.ceil(wanted))))


class Graph:
    def __init__(self, dim: int, m: int, ef_construction: int) -> None:
        self.index: Any = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.node_rows: np.ndarray | None = None  # None: node i is row i
        self.covered = 0  # rows [0, covered) are in the graph; later rows are the tail

    @property
    def nodes(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Insert the next tail rows (``covered, covered + 1, …``)."""
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        if self.node_rows is not None:
            new = np.arange(self.covered, self.covered + len(vectors), dtype=np.int64)
            self.node_rows = np.concatenate((self.node_rows, new))
        self.covered += len(vectors)

    def copy(self) -> Graph:
        """An independent copy, to be extended while this one keeps serving searches."""
        twin = Graph.__new__(Graph)
        twin.index = faiss.clone_index(self.index)
        twin.node_rows = None if self.node_rows is None else self.node_rows.copy()
        twin.covered = self.covered
        return twin

    def remap(self, remap: np.ndarray) -> None:
        """Follow a compaction of the rows (old → new, -1 for removed)."""
        nodes = np.arange(self.nodes) if self.node_rows is None else self.node_rows
        self.node_rows = np.where(nodes >= 0, remap[np.maximum(nodes, 0)], -1)
        self.covered = int(np.count_nonzero(remap[: self.covered] >= 0))

    def allowed_nodes(self, mask: np.ndarray) -> np.ndarray:
        """The row mask (over all rows) seen from the nodes."""
        if self.node_rows is None:
            nodes_ok: np.ndarray = mask[: self.nodes]
            return nodes_ok
        mapped: np.ndarray = (self.node_rows >= 0) & mask[np.maximum(self.node_rows, 0)]
        return mapped

    def search(
        self, query: np.ndarray, k: int, nodes_ok: np.ndarray, ef: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` (rows, scores) among the nodes ``nodes_ok`` admits, best first."""
        bitmap = np.packbits(nodes_ok, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.nodes, faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef, k))  # type: ignore[attr-defined]
        with one_thread():
            scores, nodes = self.index.search(query.reshape(1, -1), k, params=params)
        found = nodes[0] >= 0
        nodes, best = nodes[0][found], scores[0][found].astype(np.float64)
        rows = nodes if self.node_rows is None else self.node_rows[nodes]
        return rows.astype(np.int64), best
