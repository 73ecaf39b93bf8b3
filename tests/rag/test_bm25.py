"""BM25: the analyser on French and English text, and filtered scores equal to a reference
BM25 computed over the readable chunks only — after adds, removals, replacements, segment
merges and compaction."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from egide.rag.index import Entry, HybridIndex, Partition
from egide.rag.index import upkeep as upkeep_module
from egide.rag.index.analyse import analyse, fold
from egide.rag.index.bm25 import K1, B, build_segment, merge_segments
from egide.rag.index.rows import DEAD

# -- analyser ----------------------------------------------------------------------------


def test_fold_lowercases_and_strips_accents_and_ligatures() -> None:
    assert fold("Œuvre ÉLYSÉE naïve Façade") == "oeuvre elysee naive facade"


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("L'avion d'Airbus qu'il a vu", ["avion", "airbus", "vu"]),
        ("jusqu'à l’état-major", ["etat", "major"]),
        ("Les chevaux et les bateaux", ["cheval", "bateau"]),
        ("the soldiers' countries", ["soldier", "countri"]),
        ("John's report", ["john", "report"]),
        ("AB-123 et AB123", ["ab123", "ab", "123", "ab123"]),
        ("VBCI, F-35 et A400M en 2024", ["vbci", "f35", "35", "a400m", "2024"]),
        ("le la les the of and, ou et", []),
    ],
)
def test_analyse(text: str, terms: list[str]) -> None:
    assert analyse(text) == terms


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("chevaux", "cheval"),
        ("bateaux", "bateau"),
        ("jeux", "jeu"),
        ("countries", "country"),
        ("batteries", "battery"),
        ("batteries", "batterie"),
        ("recherches", "recherche"),
        ("matches", "match"),
        ("boxes", "box"),
        ("classes", "class"),
        ("véhicules", "vehicule"),
        ("Opérations", "opération"),
    ],
)
def test_plural_and_singular_give_the_same_term(one: str, other: str) -> None:
    assert analyse(one) == analyse(other)


def test_words_that_only_look_plural_are_kept() -> None:
    assert analyse("status virus analysis class") == ["status", "virus", "analysis", "class"]


# -- reference BM25 ----------------------------------------------------------------------

_WORDS = """avion char frégate sous-marin radar missile drone logistique maintenance pièce
moteur carburant munitions convoi base port aircraft tank vessel supply repair engine fuel
convoy report analyse renseignement satellite VBCI AB-123"""
WORDS = _WORDS.split()
PARTS: list[Partition] = [("lib-a", 0), ("lib-a", 1), ("lib-b", 0)]


def corpus(n: int, seed: int, first_id: int = 1) -> list[Entry]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(1, 12)))
        chunk = first_id + i
        out.append(
            Entry(
                chunk_id=chunk,
                document_id=f"doc-{chunk // 4}",
                partition=PARTS[int(rng.integers(0, len(PARTS)))],
                text=" ".join(words),
                vector=rng.standard_normal(8).astype(np.float32),
            )
        )
    return out


def reference(
    entries: dict[int, Entry], query: str, readable: set[Partition], docs: set[str] | None
) -> dict[int, float]:
    """Textbook BM25 over the chunks the caller may read."""
    visible = {
        c: analyse(e.text)
        for c, e in entries.items()
        if e.partition in readable and (docs is None or e.document_id in docs)
    }
    n = len(visible)
    avgdl = sum(len(t) for t in visible.values()) / n or 1.0
    scores: dict[int, float] = {}
    for term, weight in Counter(analyse(query)).items():
        df = sum(1 for t in visible.values() if term in t)
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for c, t in visible.items():
            tf = t.count(term)
            if tf:
                norm = tf + K1 * (1 - B + B * len(t) / avgdl)
                scores[c] = scores.get(c, 0.0) + weight * idf * tf * (K1 + 1) / norm
    return scores


QUERIES = ["avion radar", "fuel convoy convoy", "VBCI AB-123", "frégates et sous-marins", "port"]
READERS: list[tuple[set[Partition], set[str] | None]] = [
    (set(PARTS), None),
    ({PARTS[0]}, None),
    ({PARTS[1], PARTS[2]}, None),
    (set(PARTS), {f"doc-{i}" for i in range(0, 60, 3)}),
    ({PARTS[2]}, {f"doc-{i}" for i in range(0, 60, 2)}),
]


def assert_matches_reference(index: HybridIndex, entries: dict[int, Entry]) -> None:
    for query in QUERIES:
        for readable, docs in READERS:
            hits = index.search(
                vector=None, text=query, partitions=readable, documents=docs, k=10_000
            )
            got = {h.chunk_id: h.score for h in hits}
            want = reference(entries, query, readable, docs)
            assert got.keys() == want.keys(), (query, readable, docs)
            for chunk, score in want.items():
                assert got[chunk] == pytest.approx(score, rel=1e-6)
            assert [h.score for h in hits] == sorted(got.values(), reverse=True)
            assert all(h.partition in readable for h in hits)
            assert all(h.bm25_score == h.score and h.vector_score is None for h in hits)


def test_scores_equal_reference_bm25_through_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    index = HybridIndex(8)
    entries: dict[int, Entry] = {}
    for start, size in [(1, 150), (151, 60), (211, 7), (218, 1), (219, 25), (244, 3)]:
        batch = corpus(size, seed=start, first_id=start)
        index.add(batch)
        entries.update((e.chunk_id, e) for e in batch)
    assert len(index._postings.segments) > 1
    assert_matches_reference(index, entries)

    index.remove_documents(["doc-3", "doc-10", "doc-11"])
    index.remove_chunks([5, 6, 200, 201, 99_999])
    for chunk in [c for c, e in entries.items() if e.document_id in {"doc-3", "doc-10", "doc-11"}]:
        del entries[chunk]
    for chunk in (5, 6, 200, 201):
        entries.pop(chunk, None)
    assert_matches_reference(index, entries)

    replaced = [
        Entry(c, entries[c].document_id, PARTS[0], "avion avion radar", entries[c].vector)
        for c in (20, 21, 150)
    ]
    index.add(replaced)
    entries.update((e.chunk_id, e) for e in replaced)
    assert_matches_reference(index, entries)

    index.settle()  # nothing else touches the segments now
    postings = index._postings
    part = index._rows.part.view()
    postings.segments = [merge_segments(postings.segments, part)]
    assert_matches_reference(index, entries)

    monkeypatch.setattr(upkeep_module, "COMPACT_MIN_DEAD", 1)
    index._upkeep.compact_fraction = 0.01
    index.remove_documents(["doc-20", "doc-21"])
    for chunk in [c for c, e in entries.items() if e.document_id in {"doc-20", "doc-21"}]:
        del entries[chunk]
    assert_matches_reference(index, entries)  # tombstones, or compacted already
    index.settle()
    assert len(index._rows) == len(entries)  # compacted: no tombstone left
    assert_matches_reference(index, entries)
    index.add(corpus(40, seed=99, first_id=1000))
    entries.update((e.chunk_id, e) for e in corpus(40, seed=99, first_id=1000))
    assert_matches_reference(index, entries)


def test_relabel_changes_who_sees_the_scores() -> None:
    index = HybridIndex(8)
    entries = {e.chunk_id: e for e in corpus(120, seed=5)}
    index.add(list(entries.values()))
    moved = [c for c, e in entries.items() if e.document_id in {"doc-4", "doc-7"}]
    changed = index.relabel_documents(["doc-4", "doc-7"], 1)
    assert changed == sum(1 for c in moved if entries[c].partition[1] != 1)
    for c in moved:
        e = entries[c]
        entries[c] = Entry(c, e.document_id, (e.partition[0], 1), e.text, e.vector)
    assert_matches_reference(index, entries)


def test_hidden_chunks_do_not_move_visible_scores() -> None:
    index = HybridIndex(8)
    visible = corpus(50, seed=1)
    index.add(visible)
    before = index.search(vector=None, text="radar drone", partitions=[PARTS[0]], k=50)
    hidden = [
        Entry(500 + i, "secret", PARTS[1], "radar radar drone", np.ones(8, np.float32))
        for i in range(200)
    ]
    index.add(hidden)
    after = index.search(vector=None, text="radar drone", partitions=[PARTS[0]], k=50)
    assert [(h.chunk_id, h.score) for h in after] == [(h.chunk_id, h.score) for h in before]


def test_segments_stay_few_and_merge_drops_tombstones() -> None:
    index = HybridIndex(8)
    for i, entry in enumerate(corpus(300, seed=2)):
        index.add([entry])
        assert len(index._postings.segments) <= 2 + math.log2(i + 1)
    segment = build_segment([[3, 1, 3], [], [1]], first_row=10)
    assert segment.terms.tolist() == [1, 3]
    assert segment.rows.tolist() == [10, 12, 10]
    assert segment.tfs.tolist() == [1.0, 1.0, 2.0]
    part = np.zeros(13, dtype=np.int32)
    part[12] = DEAD
    merged = merge_segments([segment, build_segment([[3]], first_row=11)], part)
    assert merged.postings(1) is not None
    rows, tfs = merged.postings(3)  # type: ignore[misc]
    assert rows.tolist() == [10, 11] and tfs.tolist() == [2.0, 1.0]
    assert merged.postings(1)[0].tolist() == [10]  # type: ignore[index]


def test_text_without_known_terms_finds_nothing() -> None:
    index = HybridIndex(8)
    index.add(corpus(20, seed=3))
    assert index.search(vector=None, text="le la les", partitions=PARTS, mode="bm25") == []
    assert index.search(vector=None, text="inconnu", partitions=PARTS, mode="bm25") == []
