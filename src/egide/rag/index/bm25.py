"""An inverted index in numpy with exact BM25 over the rows a caller may read.

Postings live in immutable segments: each add batch becomes one small segment (terms →
ascending rows and term frequencies, packed in arrays), and segments merge the way a binary
counter carries, so there are O(log n) of them and each posting is rewritten O(log n)
times. A segment is never modified, which lets a search read the list of segments while a
large merge is computed outside the lock and swapped in afterwards. Removed rows are
tombstones (partition -1): they are skipped at query time and dropped by the next merge or
compaction.

Scoring is filtered first: the postings of each query term are reduced to the rows the
caller may read *before* anything is scored, and the corpus statistics (number of rows,
average length, document frequency) are those of the readable rows only. The result is
the exact BM25 top-k of the corpus the caller can see, and no score depends on a chunk the
caller cannot read, so scores cannot reveal that hidden chunks contain a term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from egide.rag.index.allowed import Allowed
from egide.rag.index.rows import DEAD

K1 = 1.2
B = 0.75
INLINE_MERGE_POSTINGS = 400_000  # larger merges run outside the lock


@dataclass(frozen=True, eq=False)
class Segment:
    terms: np.ndarray  # int32, ascending, unique
    starts: np.ndarray  # int64, len(terms) + 1: postings of terms[i] are [starts[i], starts[i+1])
    rows: np.ndarray  # int32, ascending within a term
    tfs: np.ndarray  # float32

    @property
    def size(self) -> int:
        return len(self.rows)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray] | None:
        i = int(np.searchsorted(self.terms, term))
        if i == len(self.terms) or self.terms[i] != term:
            return None
        a, b = self.starts[i], self.starts[i + 1]
        return self.rows[a:b], self.tfs[a:b]


def _pack(terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray) -> Segment:
    """A segment from postings already sorted by (term, row)."""
    if len(terms) == 0:
        empty = np.empty(0, dtype=np.int32)
        return Segment(empty, np.zeros(1, dtype=np.int64), empty, np.empty(0, dtype=np.float32))
    cuts = np.flatnonzero(np.diff(terms)) + 1
    starts = np.concatenate(([0], cuts, [len(terms)])).astype(np.int64)
    return Segment(
        terms[starts[:-1]].astype(np.int32), starts, rows.astype(np.int32), tfs.astype(np.float32)
    )


def build_segment(docs: Sequence[Sequence[int]], first_row: int) -> Segment:
    """A segment for consecutive rows ``first_row, first_row + 1, …`` from their term ids."""
    n = len(docs)
    counts = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n)
    flat = np.fromiter((t for d in docs for t in d), dtype=np.int64, count=int(counts.sum()))
    local = np.repeat(np.arange(n, dtype=np.int64), counts)
    keys, tfs = np.unique(flat * max(n, 1) + local, return_counts=True)
    return _pack(keys // max(n, 1), keys % max(n, 1) + first_row, tfs)


def merge_segments(segments: Sequence[Segment], part: np.ndarray) -> Segment:
    """One segment for consecutive ``segments`` (in row order), without tombstoned rows."""
    terms = np.concatenate([np.repeat(s.terms, np.diff(s.starts)) for s in segments])
    rows = np.concatenate([s.rows for s in segments])
    tfs = np.concatenate([s.tfs for s in segments])
    live = part[rows] != DEAD
    terms, rows, tfs = terms[live], rows[live], tfs[live]
    order = np.argsort(terms, kind="stable")  # runs are already sorted: near-linear
    return _pack(terms[order], rows[order], tfs[order])


def remap_segment(segment: Segment, remap: np.ndarray) -> Segment:
    """The segment with rows renumbered by ``remap`` (old → new, -1 for removed rows)."""
    terms = np.repeat(segment.terms, np.diff(segment.starts))
    rows = remap[segment.rows]
    live = rows >= 0
    return _pack(terms[live], rows[live], segment.tfs[live])


class Postings:
    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.segments: list[Segment] = []

    def term_ids(self, terms: Sequence[str]) -> list[int]:
        """Ids for document terms, assigning new ones (writers are serialised)."""
        vocab = self.vocabulary
        return [vocab.setdefault(t, len(vocab)) for t in terms]

    def query_terms(self, terms: Sequence[str]) -> dict[int, int]:
        """Known query term ids → how many times the query holds them."""
        counts: dict[int, int] = {}
        for t in terms:
            i = self.vocabulary.get(t)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        return counts

    def next_merge(self) -> tuple[int, int] | None:
        """The newest adjacent pair to merge (binary-counter policy), as a slice."""
        sizes = [s.size for s in self.segments]
        for j in range(len(sizes) - 1, 0, -1):
            if sizes[j - 1] <= 2 * sizes[j]:
                return j - 1, j + 1
        return None

    def merge_inline(self, part: np.ndarray) -> tuple[int, int] | None:
        """Do the small merges now; return the next one too large to do under the lock."""
        while (plan := self.next_merge()) is not None:
            a, b = plan
            if sum(s.size for s in self.segments[a:b]) > INLINE_MERGE_POSTINGS:
                return plan
            self.segments[a:b] = [merge_segments(self.segments[a:b], part)]
        return None

    def swap(self, old: Sequence[Segment], new: Segment) -> bool:
        """Replace the consecutive ``old`` segments by ``new`` if they are still there."""
        ids = [id(s) for s in self.segments]
        if not old or id(old[0]) not in ids:
            return False
        a = ids.index(id(old[0]))
        if [id(s) for s in self.segments[a : a + len(old)]] != [id(s) for s in old]:
            return False
        self.segments[a : a + len(old)] = [new]
        return True

    def compact(self, remap: np.ndarray) -> None:
        self.segments = [s for s in (remap_segment(s, remap) for s in self.segments) if s.size]

    def search(
        self, query: dict[int, int], allowed: Allowed, length: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``limit`` best allowed rows by BM25 (rows int64, scores float64), best first."""
        n = allowed.count
        if not query or n == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        avgdl = allowed.total_length / n or 1.0
        hit_rows: list[np.ndarray] = []
        hit_scores: list[np.ndarray] = []
        for term, weight in query.items():
            found = [p for s in self.segments if (p := s.postings(term)) is not None]
            if not found:
                continue
            rows = np.concatenate([r for r, _ in found])
            tfs = np.concatenate([f for _, f in found])
            ok = allowed.contains(rows)
            rows, tfs = rows[ok], tfs[ok]
            df = len(rows)
            if df == 0:
                continue
            idf = np.log1p((n - df + 0.5) / (df + 0.5))
            norm = K1 * (1.0 - B + B * length[rows] / avgdl)
            hit_rows.append(rows)
            hit_scores.append(weight * idf * tfs * (K1 + 1.0) / (tfs + norm))
        if not hit_rows:
            return np.empty(0, dtype=np.int64), np.empty(0)
        rows, scores = _sum_by_row(hit_rows, hit_scores, len(length))
        return top(rows, scores, limit)


def _sum_by_row(
    rows: list[np.ndarray], scores: list[np.ndarray], total: int
) -> tuple[np.ndarray, np.ndarray]:
    if len(rows) == 1:
        return rows[0].astype(np.int64), scores[0].astype(np.float64)
    flat = np.concatenate(rows)
    weights = np.concatenate(scores)
    if len(flat) * 16 > total:  # dense accumulator beats sorting
        sums = np.bincount(flat, weights=weights, minlength=total)
        where = np.flatnonzero(sums)  # every term's contribution is > 0 (idf > 0, tf > 0)
        return where, sums[where]
    unique, inverse = np.unique(flat, return_inverse=True)
    return unique.astype(np.int64), np.bincount(inverse, weights=weights)


def top(rows: np.ndarray, scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``limit`` highest scores, best first; ties broken by ascending row, so the result
    does not depend on the order rows were scored in."""
    if len(rows) > limit:
        kth = -np.partition(-scores, limit - 1)[limit - 1]
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        tied = tied[np.argsort(rows[tied], kind="stable")[: limit - len(above)]]
        keep = np.concatenate((above, tied))
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]
