"""Cosine search over the rows a caller may read, planned by how many rows that is.

All vectors sit in one growable float32 matrix, a row per chunk, L2-normalised so that
inner product is cosine. A search first counts the allowed rows (a sum over partitions)
and picks a plan:

- **exact** when the allowed rows are few (``≤ exact_limit``) or there is no graph yet:
  inner products with exactly those rows (gathered by index inside faiss, no copy), then a
  partial sort. Recall 1.0, cost proportional to the rows the caller may read — a 1%
  reader of a million chunks scans 10,000 rows, a few milliseconds.
- **graph** when they are many: HNSW with the allowed rows as a selector bitmap and an
  efSearch that widens as the allowed fraction shrinks (see ``graph.ef_for``), merged
  with an exact scan of the *tail* — rows added since the graph was built and not yet
  inserted into it.

In neither plan can a disallowed row be scored, so a restrictive label filter shrinks the
work instead of emptying a top-k that was computed for someone else.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from egide.rag.index.allowed import Allowed
from egide.rag.index.arrays import Growable
from egide.rag.index.bm25 import top
from egide.rag.index.graph import EF_MAX, Graph, ef_for, one_thread


def normalised(vector: np.ndarray, dim: int) -> np.ndarray:
    """``vector`` as a unit float32 row of ``dim`` values; ValueError if it cannot be one."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape[0] != dim:
        raise ValueError(f"vector has {v.shape[0]} dimensions, the index has {dim}")
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("vector must be finite and non-zero (embed the text again)")
    return v / np.float32(norm)


def normalised_rows(vectors: Sequence[np.ndarray], chunk_ids: Sequence[int]) -> np.ndarray:
    """The vectors (already of the right size) as unit float32 rows; ValueError naming the
    first chunk whose vector cannot be one."""
    matrix = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in vectors])
    norms = np.linalg.norm(matrix, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0.0))
    if len(bad):
        raise ValueError(
            f"vector of chunk {chunk_ids[bad[0]]} must be finite and non-zero (embed it again)"
        )
    unit: np.ndarray = matrix / norms[:, None]
    return unit


def exact(
    matrix: np.ndarray, query: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of ``rows`` by inner product with ``query`` (best first)."""
    if len(rows) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    scores = np.empty(len(rows), dtype=np.float32)
    with one_thread():
        faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]
            faiss.swig_ptr(scores),
            faiss.swig_ptr(query),
            faiss.swig_ptr(matrix),
            faiss.swig_ptr(rows),
            matrix.shape[1],
            1,
            len(rows),
        )
    return top(rows, scores.astype(np.float64), k)


class VectorIndex:
    def __init__(
        self,
        dim: int,
        *,
        exact_limit: int,
        hnsw_min_rows: int,
        m: int,
        ef_construction: int,
        ef_search: int,
    ) -> None:
        self.dim = dim
        self.exact_limit = exact_limit
        self.hnsw_min_rows = hnsw_min_rows
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.matrix = Growable(np.float32, width=dim)
        self.graph: Graph | None = None

    def append(self, vectors: np.ndarray) -> None:
        self.matrix.extend(vectors)

    def compact(self, keep: np.ndarray, remap: np.ndarray) -> None:
        self.matrix.replace(self.matrix.view()[keep])
        if self.graph is not None:
            self.graph.remap(remap)

    @property
    def tail(self) -> int:
        """Rows not in the graph (all rows while there is none)."""
        return len(self.matrix) - (self.graph.covered if self.graph else 0)

    def needs_build(self, live: int) -> bool:
        """Whether a new graph should be built outside the lock: none yet and enough rows,
        or rows renumbered since it was built. (A large tail is not a reason: extending a
        copy inserts only the tail, and HNSW insertion is how a graph is built anyway.)"""
        if self.graph is None:
            return live >= self.hnsw_min_rows
        return self.graph.node_rows is not None

    def build(self, matrix: np.ndarray) -> Graph:
        """A graph over ``matrix`` (rows 0..n-1): slow, done outside the lock."""
        graph = Graph(self.dim, self.m, self.ef_construction)
        for start in range(0, len(matrix), 65_536):
            graph.add(matrix[start : start + 65_536])
        return graph

    def copy_threshold(self) -> int:
        """From this many tail rows on, a copy of the graph is extended outside the lock and
        swapped in (memory for a second graph, no stall); below it, the tail goes into the
        graph in small batches inside the lock (a stall of tens of milliseconds each)."""
        return max(1024, self.graph.nodes // 100) if self.graph else 0

    def extended(self, graph: Graph, matrix: np.ndarray) -> Graph:
        """A copy of ``graph`` with the rows of ``matrix`` it lacks (outside the lock)."""
        bigger = graph.copy()
        for start in range(bigger.covered, len(matrix), 65_536):
            bigger.add(matrix[start : start + 65_536])
        return bigger

    def extend_graph(self, limit: int) -> int:
        """Insert up to ``limit`` tail rows into the graph (inside the lock), on one thread:
        with a few rows, more threads mostly wait on each other; return how many."""
        if self.graph is None:
            return 0
        start = self.graph.covered
        stop = min(len(self.matrix), start + limit)
        if stop > start:
            with one_thread():
                self.graph.add(self.matrix.view()[start:stop])
        return stop - start

    def search(self, query: np.ndarray, allowed: Allowed, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` allowed rows closest to ``query`` (rows, cosines), best first."""
        matrix = self.matrix.view()
        graph = self.graph
        if graph is None or allowed.count <= self.exact_limit:
            return exact(matrix, query, allowed.rows(), k)
        mask = allowed.mask()
        nodes_ok = graph.allowed_nodes(mask)
        in_graph = int(np.count_nonzero(nodes_ok))
        rows, scores = np.empty(0, dtype=np.int64), np.empty(0)
        if in_graph:
            ef = ef_for(k, in_graph / graph.nodes, self.ef_search)
            rows, scores = graph.search(query, k, nodes_ok, ef)
            if len(rows) < min(k, in_graph) and ef < EF_MAX:
                rows, scores = graph.search(query, k, nodes_ok, EF_MAX)
            if len(rows) < min(k, in_graph):  # the walk could not reach them: scan
                covered = np.flatnonzero(mask[: graph.covered])
                rows, scores = exact(matrix, query, covered, k)
        tail = np.flatnonzero(mask[graph.covered :]) + graph.covered
        if len(tail):
            more_rows, more_scores = exact(matrix, query, tail, k)
            rows, scores = top(
                np.concatenate((rows, more_rows)), np.concatenate((scores, more_scores)), k
            )
        return rows, scores
