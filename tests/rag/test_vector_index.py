"""Vector search under a partition filter, against a brute-force oracle of the filtered
search: exact plan (recall 1.0) and HNSW plan (recall@10 ≥ 0.95), for readers of 0.1% to
100% of the chunks; never a hit outside the readable set, always k hits when k exist."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from egide.rag.index import Entry, HybridIndex, Partition
from egide.rag.index import vectors as vectors_module
from egide.rag.index.allowed import Allowed
from egide.rag.index.graph import EF_MAX, ef_for
from egide.rag.index.rows import RowTable
from egide.rag.index.vectors import VectorIndex

N, DIM, K, PARTS = 20_000, 48, 10, 50


@dataclass
class Corpus:
    vectors: np.ndarray
    part: np.ndarray
    partitions: list[Partition]
    queries: np.ndarray

    def entries(self, rows: range) -> list[Entry]:
        return [
            Entry(r + 1, f"doc-{r // 10}", self.partitions[self.part[r]], "", self.vectors[r])
            for r in rows
        ]

    def reader(self, fraction: float) -> list[Partition]:
        """Partitions adding up to about ``fraction`` of the rows (at least one)."""
        sizes = np.bincount(self.part, minlength=PARTS)
        chosen: list[int] = []
        for p in np.argsort(sizes).tolist():
            if sizes[p] == 0:
                continue
            if sizes[chosen].sum() + sizes[p] <= fraction * N * 1.1 or not chosen:
                chosen.append(p)
        return [self.partitions[p] for p in chosen]

    def oracle(self, query: np.ndarray, rows: np.ndarray, k: int) -> set[int]:
        scores = self.vectors[rows] @ query
        return {int(r) + 1 for r in rows[np.argsort(-scores, kind="stable")[:k]]}


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 200 centres with a low-dimensional spread, like embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, DIM)).astype(np.float32)
    basis = rng.standard_normal((DIM, 8)).astype(np.float32) / np.sqrt(8)
    v = centres[rng.integers(0, 200, n)] / np.sqrt(DIM) * 1.5
    v += rng.standard_normal((n, 8)).astype(np.float32) @ basis.T * 0.5
    v += rng.standard_normal((n, DIM)).astype(np.float32) * 0.02
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    rng = np.random.default_rng(0)
    vectors = clustered(N, 1)
    share = rng.pareto(1.0, PARTS) + 0.02
    part = rng.choice(PARTS, size=N, p=share / share.sum())
    partitions = [(f"lib-{p % 7}", p) for p in range(PARTS)]
    picks = rng.integers(0, N, 40)
    queries = vectors[picks] + rng.standard_normal((40, DIM)).astype(np.float32) * 0.02
    return Corpus(vectors, part, partitions, queries)


@pytest.fixture(scope="module")
def exact_index(corpus: Corpus) -> HybridIndex:
    index = HybridIndex(DIM, exact_limit=10**9, hnsw_min_rows=10**9)
    index.add(corpus.entries(range(N)))
    return index


@pytest.fixture(scope="module")
def graph_index(corpus: Corpus) -> HybridIndex:
    index = HybridIndex(DIM, exact_limit=15, hnsw_min_rows=1_000)
    index.add(corpus.entries(range(N)))
    index.settle()
    assert index._vectors.graph is not None and index._vectors.tail == 0
    return index


def check(
    index: HybridIndex,
    corpus: Corpus,
    readable: list[Partition],
    documents: list[str] | None = None,
) -> float:
    """Search every query; assert the guarantees; return the mean recall@K."""
    allowed = set(readable)
    rows = np.flatnonzero(np.isin(corpus.part, [corpus.partitions.index(p) for p in readable]))
    if documents is not None:
        rows = rows[np.isin(rows // 10, [int(d.split("-")[1]) for d in documents])]
    recalls = []
    for q in corpus.queries:
        hits = index.search(
            vector=q, text=None, partitions=readable, documents=documents, k=K, mode="vector"
        )
        assert all(h.partition in allowed for h in hits)
        assert documents is None or all(h.document_id in documents for h in hits)
        assert len(hits) == min(K, len(rows))
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(h.vector_score == h.score and h.bm25_score is None for h in hits)
        truth = corpus.oracle(q, rows, K)
        recalls.append(len({h.chunk_id for h in hits} & truth) / max(1, len(truth)))
    return float(np.mean(recalls))


FRACTIONS = [0.001, 0.01, 0.1, 1.0]


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_exact_plan_is_exact(exact_index: HybridIndex, corpus: Corpus, fraction: float) -> None:
    assert check(exact_index, corpus, corpus.reader(fraction)) == 1.0


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_graph_plan_recall(graph_index: HybridIndex, corpus: Corpus, fraction: float) -> None:
    readable = corpus.reader(fraction)
    assert sum(graph_index.partition_sizes()[p] for p in readable) > 15  # the graph plan
    assert check(graph_index, corpus, readable) >= 0.95


@pytest.mark.parametrize("name", ["exact_index", "graph_index"])
def test_documents_filter(request: pytest.FixtureRequest, corpus: Corpus, name: str) -> None:
    index = request.getfixturevalue(name)
    few = [f"doc-{d}" for d in range(0, N // 10, 37)]
    assert check(index, corpus, corpus.partitions, few) == 1.0  # few rows: exact either way
    many = [f"doc-{d}" for d in range(0, N // 10, 2)]
    assert check(index, corpus, corpus.reader(0.5), many) >= 0.95


@pytest.mark.parametrize("narrow", [False, True])
def test_readers_far_from_the_query_still_get_k_hits(
    monkeypatch: pytest.MonkeyPatch, narrow: bool
) -> None:
    """A reader whose only partition lies away from the query: the graph walk meets few
    allowed nodes, so the search widens, and if even that comes back short, it scans."""
    if narrow:  # a walk too narrow to find them: the scan must answer
        monkeypatch.setattr(vectors_module, "EF_MAX", K)
        monkeypatch.setattr(vectors_module, "ef_for", lambda k, fraction, ef_search: k)
    rng = np.random.default_rng(5)
    far = clustered(300, 77)
    index = HybridIndex(DIM, exact_limit=15, hnsw_min_rows=1_000)
    base = rng.standard_normal((3_000, DIM)).astype(np.float32)
    index.add([Entry(i + 1, "d", ("lib", 0), "", v) for i, v in enumerate(base)])
    index.add([Entry(10_000 + i, "f", ("lib", 1), "", v) for i, v in enumerate(far[:40])])
    index.settle()
    assert index._vectors.tail == 0
    query = base[0]
    hits = index.search(vector=query, text=None, partitions=[("lib", 1)], k=K, mode="vector")
    assert len(hits) == K and all(h.partition == ("lib", 1) for h in hits)
    truth = far[:40] @ (query / np.linalg.norm(query))
    assert {h.chunk_id - 10_000 for h in hits} == set(np.argsort(-truth)[:K].tolist())


def test_fresh_rows_are_searched_then_join_the_graph(corpus: Corpus) -> None:
    index = HybridIndex(DIM, exact_limit=15, hnsw_min_rows=1_000)
    index.add(corpus.entries(range(2_000)))
    index.settle()
    first = index._vectors.graph
    assert first is not None and first.covered == 2_000
    index.add(corpus.entries(range(2_000, 2_300)))  # few: inserted in place, in batches
    index.settle()
    assert index._vectors.graph is first and first.covered == 2_300
    index.add(corpus.entries(range(2_300, 4_000)))  # many: a copy is extended and swapped
    index.settle()
    graph = index._vectors.graph
    assert graph is not first and graph is not None and graph.covered == 4_000
    for r in (5, 2_100, 3_999):
        hits = index.search(
            vector=corpus.vectors[r], text=None, partitions=corpus.partitions, k=1, mode="vector"
        )
        assert hits[0].chunk_id == r + 1


def test_graph_follows_compaction(corpus: Corpus) -> None:
    """Between a compaction and the rebuild, graph nodes map to the renumbered rows."""
    rows = RowTable()
    vectors = VectorIndex(
        DIM, exact_limit=15, hnsw_min_rows=100, m=16, ef_construction=80, ef_search=128
    )
    n = 3_000
    rows.append(
        list(range(1, n + 1)),
        ["d"] * n,
        [corpus.partitions[p] for p in corpus.part[:n]],
        np.ones(n, dtype=np.float32),
    )
    vectors.append(corpus.vectors[:n])
    vectors.graph = vectors.build(vectors.matrix.view())
    rows.remove(np.arange(0, n, 3, dtype=np.int64))
    keep = np.flatnonzero(rows.part.view() >= 0)
    remap = rows.compact()
    vectors.compact(keep, remap)
    assert vectors.graph.node_rows is not None and vectors.needs_build(rows.live)
    readable = list(set(corpus.partitions))
    allowed = rows.resolve(readable, None)
    assert isinstance(allowed, Allowed) and allowed.count == len(keep)
    for q in corpus.queries[:10]:
        got, _ = vectors.search(q, allowed, K)
        expected = keep[np.argsort(-(corpus.vectors[keep] @ q))[:K]]
        assert set(rows.chunk.view()[got].tolist()) == set((expected + 1).tolist())


def test_ef_widens_as_the_allowed_fraction_shrinks() -> None:
    efs = [ef_for(10, f, 128) for f in (1.0, 0.5, 0.1, 0.01, 1e-5)]
    assert efs == sorted(efs) and efs[0] >= 10 and efs[-1] == EF_MAX
    assert ef_for(50, 1.0, 128) > ef_for(10, 1.0, 128)
