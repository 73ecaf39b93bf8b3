"""The hybrid index as callers use it: reciprocal rank fusion, modes and their arguments,
mutations visible to the very next search in every mode, concurrent adds and searches,
and snapshots."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from egide.rag.index import Entry, Hit, HybridIndex, Partition
from egide.rag.index import upkeep as upkeep_module

DIM = 16
A: Partition = ("lib-a", 0)
B: Partition = ("lib-a", 1)
C: Partition = ("lib-b", 0)


def unit(v: list[float]) -> np.ndarray:
    a = np.zeros(DIM, dtype=np.float32)
    a[: len(v)] = v
    return a / np.linalg.norm(a)


# -- fusion ------------------------------------------------------------------------------


def fusion_index(**weights: float) -> HybridIndex:
    index = HybridIndex(DIM, **weights)  # type: ignore[arg-type]
    index.add(
        [
            Entry(1, "d1", A, "rapport logistique", unit([1.0, 0.05])),  # vector rank 1
            Entry(2, "d2", A, "radar de veille", unit([1.0, 0.3])),  # vector 2, bm25 2
            Entry(3, "d3", A, "radar radar radar", unit([1.0, 0.6])),  # vector 3, bm25 1
            Entry(4, "d4", A, "maintenance moteur", unit([0.0, 1.0])),  # vector 4
        ]
    )
    return index


def test_rrf_order_and_scores() -> None:
    hits = fusion_index().search(vector=unit([1.0]), text="radar", partitions=[A], k=4)
    assert [h.chunk_id for h in hits] == [3, 2, 1, 4]
    expected = [1 / 63 + 1 / 61, 1 / 62 + 1 / 62, 1 / 61, 1 / 64]
    assert [h.score for h in hits] == pytest.approx(expected)
    assert hits[2].bm25_score is None and hits[3].bm25_score is None
    assert all(h.vector_score is not None for h in hits)
    assert hits[0].bm25_score is not None and hits[1].bm25_score is not None
    assert hits[0].bm25_score > hits[1].bm25_score
    assert hits[2].vector_score == pytest.approx(float(unit([1.0]) @ unit([1.0, 0.05])))


def test_rrf_weights() -> None:
    index = fusion_index(vector_weight=2.0, rrf_k=10)
    hits = index.search(vector=unit([1.0]), text="radar", partitions=[A], k=4)
    assert [h.chunk_id for h in hits] == [2, 3, 1, 4]
    assert hits[0].score == pytest.approx(2 / 12 + 1 / 12)
    assert hits[1].score == pytest.approx(2 / 13 + 1 / 11)


def test_hybrid_with_one_query_is_that_mode() -> None:
    index = fusion_index()
    q = unit([1.0, 0.2])
    assert index.search(vector=q, text=None, partitions=[A]) == index.search(
        vector=q, text=None, partitions=[A], mode="vector"
    )
    assert index.search(vector=None, text="radar", partitions=[A]) == index.search(
        vector=None, text="radar", partitions=[A], mode="bm25"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "semantic"}, "mode must be one of"),
        ({"k": 0}, "k must be a positive integer"),
        ({"k": True}, "k must be a positive integer"),
        ({"vector": None, "mode": "vector"}, "needs a query vector"),
        ({"text": None, "mode": "bm25"}, "needs a query text"),
        ({"vector": None, "text": None}, "needs a query vector, a query text or both"),
        ({"vector": np.ones(3)}, "3 dimensions"),
        ({"vector": np.zeros(DIM)}, "non-zero"),
        ({"documents": "d1"}, "not a single string"),
        ({"partitions": [("lib-a", 0.0)]}, "label keys are integers"),
        ({"partitions": ["lib-a"]}, "pairs"),
    ],
)
def test_bad_search_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"vector": unit([1.0]), "text": "radar", "partitions": [A]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        fusion_index().search(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (Entry(0, "d", A, "x", unit([1.0])), "chunk_id must be a positive integer"),
        (Entry(5, "d", ("lib", "S"), "x", unit([1.0])), "partition must be"),  # type: ignore[arg-type]
        (Entry(5, "d", A, "x", np.ones(DIM + 1)), "shape"),
        (Entry(5, "d", A, "x", np.full(DIM, np.nan)), "finite"),
    ],
)
def test_bad_entries_are_refused_before_anything_is_added(entry: Entry, message: str) -> None:
    index = HybridIndex(DIM)
    with pytest.raises(ValueError, match=message):
        index.add([Entry(9, "d", A, "ok", unit([1.0])), entry])
    assert len(index) == 0


def test_readable_set_edge_cases() -> None:
    index = fusion_index()
    assert index.search(vector=unit([1.0]), text="radar", partitions=[]) == []
    assert index.search(vector=unit([1.0]), text="radar", partitions=[("lib-z", 0)]) == []
    assert index.search(vector=unit([1.0]), text="radar", partitions=[A], documents=[]) == []
    as_lists = index.search(vector=unit([1.0]), text="radar", partitions=[["lib-a", 0]])  # type: ignore[list-item]
    assert len(as_lists) == 4
    hits = index.search(vector=unit([1.0]), text="radar", partitions=[A], documents=["d2"])
    assert [h.chunk_id for h in hits] == [2]


# -- mutations ---------------------------------------------------------------------------

MODES = ("vector", "bm25", "hybrid")


def entry(chunk: int, partition: Partition, rng: np.random.Generator, doc: str = "") -> Entry:
    vector = rng.standard_normal(DIM).astype(np.float32)
    text = f"commun rapport code{chunk} zone{chunk % 13}"
    return Entry(chunk, doc or f"doc-{chunk // 5}", partition, text, vector)


def finds(index: HybridIndex, e: Entry, partitions: list[Partition], mode: str) -> bool:
    hits = index.search(
        vector=e.vector,
        text=f"code{e.chunk_id}",
        partitions=partitions,
        k=5,
        mode=mode,  # type: ignore[arg-type]
    )
    assert all(h.partition in partitions for h in hits)
    return any(h.chunk_id == e.chunk_id for h in hits)


@pytest.fixture(params=["exact", "graph"])
def populated(request: pytest.FixtureRequest) -> tuple[HybridIndex, dict[int, Entry]]:
    small = {"exact_limit": 10, "hnsw_min_rows": 200} if request.param == "graph" else {}
    index = HybridIndex(DIM, **small)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    entries = {c: entry(c, (A, B, C)[c % 3], rng) for c in range(1, 901)}
    index.add(list(entries.values()))
    index.settle()
    assert (index._vectors.graph is not None) == (request.param == "graph")
    return index, entries


def test_removals_take_effect_for_the_next_search(
    populated: tuple[HybridIndex, dict[int, Entry]],
) -> None:
    index, entries = populated
    everyone = [A, B, C]
    gone_doc = [e for e in entries.values() if e.document_id == "doc-20"]
    chunk = entries[400]
    library = [e for e in entries.values() if e.partition == C][:5]
    for mode in MODES:
        assert all(finds(index, e, everyone, mode) for e in [*gone_doc, chunk, *library])
    assert index.remove_documents(["doc-20", "doc-nope"]) == len(gone_doc)
    assert index.remove_chunks([400, 10**9]) == 1
    assert index.remove_library("lib-b") == 300 - sum(e.partition == C for e in gone_doc)
    for mode in MODES:
        assert not any(finds(index, e, everyone, mode) for e in [*gone_doc, chunk, *library])
    assert not index.contains(400) and index.contains(402)
    assert C not in index.partition_sizes()
    assert len(index) == sum(index.partition_sizes().values()) == 900 - 300 - 1 - 3


def test_relabel_moves_chunks_between_readers(
    populated: tuple[HybridIndex, dict[int, Entry]],
) -> None:
    index, entries = populated
    moved = [e for e in entries.values() if e.document_id in ("doc-30", "doc-31")]
    before = index.partition_sizes()
    assert index.relabel_documents(["doc-30", "doc-31"], 7) == len(moved)
    assert index.relabel_documents(["doc-30", "doc-31"], 7) == 0
    with pytest.raises(ValueError, match="integers"):
        index.relabel_documents(["doc-30"], 7.0)  # type: ignore[arg-type]
    for mode in MODES:
        for e in moved:
            assert not finds(index, e, [e.partition], mode)
            assert finds(index, e, [(e.partition[0], 7)], mode)
    sizes = index.partition_sizes()
    assert sum(sizes.values()) == sum(before.values())
    assert sizes[("lib-a", 7)] + sizes[("lib-b", 7)] == len(moved)


def test_readding_replaces(populated: tuple[HybridIndex, dict[int, Entry]]) -> None:
    index, entries = populated
    old = entries[77]
    rng = np.random.default_rng(8)
    assert old.partition == C
    new = Entry(77, "doc-new", A, "remplacé code77 nouveau", rng.standard_normal(DIM))
    index.add([new])
    assert len(index) == 900
    for mode in MODES:
        assert not finds(index, old, [C], mode)
        assert finds(index, new, [A], mode)
    hits = index.search(vector=new.vector, text=None, partitions=[A], k=1)
    assert hits[0] == Hit(77, "doc-new", A, hits[0].score, hits[0].score, None)


# -- concurrency -------------------------------------------------------------------------


def test_concurrent_adds_and_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingestion thread adds (small and large batches: graph built, extended in place
    and by copy), relabels and removes (with compactions) while readers of one partition
    search: no exception, and never a hit from another partition."""
    monkeypatch.setattr(upkeep_module, "COMPACT_MIN_DEAD", 50)
    index = HybridIndex(
        DIM, exact_limit=20, hnsw_min_rows=300, graph_batch=32, compact_fraction=0.05
    )
    rng = np.random.default_rng(11)
    errors: list[BaseException] = []
    stop = threading.Event()
    searches = [0]

    def ingest() -> None:
        try:
            first = 1
            for batch in range(12):
                size = 1_500 if batch % 4 == 3 else 150
                index.add([entry(c, (A, B, C)[c % 3], rng) for c in range(first, first + size)])
                index.relabel_documents([f"doc-{first // 5}"], 1)
                index.remove_documents([f"doc-{d}" for d in range(first // 5 + 1, first // 5 + 20)])
                first += size
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            stop.set()

    def read(seed: int) -> None:
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                q = local.standard_normal(DIM).astype(np.float32)
                for mode in MODES:
                    hits = index.search(vector=q, text="commun code7", partitions=[A], mode=mode)
                    assert all(h.partition == A for h in hits)
                    searches[0] += 1
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=ingest)] + [
        threading.Thread(target=read, args=(s,)) for s in range(3)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert time.perf_counter() - started < 120 and searches[0] > 10
    assert index.settle(timeout=60)
    assert index._vectors.graph is not None and index._vectors.tail == 0
    assert len(index) == sum(index.partition_sizes().values())


# -- snapshots ---------------------------------------------------------------------------


def test_save_and_load(populated: tuple[HybridIndex, dict[int, Entry]], tmp_path: Path) -> None:
    index, _ = populated
    index.remove_documents(["doc-3"])
    index.relabel_documents(["doc-4"], 9)
    index.save(tmp_path / "snap")
    loaded = HybridIndex.load(tmp_path / "snap")
    assert len(loaded) == len(index) and loaded.partition_sizes() == index.partition_sizes()
    assert (loaded._vectors.graph is None) == (index._vectors.graph is None)
    rng = np.random.default_rng(4)
    for _ in range(10):
        q = rng.standard_normal(DIM)
        for mode in MODES:
            args = {"vector": q, "text": "commun code42 zone3", "k": 7, "mode": mode}
            for readable in ([A], [A, B, C], [("lib-a", 9)]):
                assert loaded.search(partitions=readable, **args) == index.search(  # type: ignore[arg-type]
                    partitions=readable,
                    **args,  # type: ignore[arg-type]
                )
    loaded.add([entry(5000, A, rng)])
    assert loaded.contains(5000) and not index.contains(5000)


def test_load_refuses_an_incomplete_snapshot(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no complete index snapshot"):
        HybridIndex.load(tmp_path)
