"""Reciprocal rank fusion of the vector and BM25 rankings.

A chunk ranked ``r`` (from 1) by a mode scores ``weight / (rrf_k + r)`` from it; the fused
score is the sum over modes. Ranks, not raw scores, are fused because cosines and BM25
scores live on unrelated scales; each hit keeps both raw scores (None when that mode did
not retrieve it) so that callers can still judge relevance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Fused = tuple[int, float, float | None, float | None]  # row, score, vector, bm25


@dataclass(frozen=True)
class Ranked:
    """One mode's results: rows and their scores, best first."""

    rows: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Ranked:
        return cls(np.empty(0, dtype=np.int64), np.empty(0))

    def alone(self, k: int, *, bm25: bool) -> list[Fused]:
        """These results as the answer of their own mode."""
        out: list[Fused] = []
        for row, score in zip(self.rows[:k].tolist(), self.scores[:k].tolist(), strict=True):
            out.append((row, score, None, score) if bm25 else (row, score, score, None))
        return out


def fuse(
    by_vector: Ranked,
    by_text: Ranked,
    k: int,
    rrf_k: int,
    vector_weight: float,
    bm25_weight: float,
) -> list[Fused]:
    """The ``k`` best rows by weighted RRF; ties go to the lower row."""
    fused: dict[int, float] = {}
    vector: dict[int, float] = {}
    text: dict[int, float] = {}
    for ranked, weight, raw in ((by_vector, vector_weight, vector), (by_text, bm25_weight, text)):
        for rank, (row, score) in enumerate(
            zip(ranked.rows.tolist(), ranked.scores.tolist(), strict=True)
        ):
            fused[row] = fused.get(row, 0.0) + weight / (rrf_k + rank + 1)
            raw[row] = score
    best = sorted(fused, key=lambda row: (-fused[row], row))[:k]
    return [(row, fused[row], vector.get(row), text.get(row)) for row in best]
