"""What goes into the index and what comes out of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Partition = tuple[str, int]
"""(library_id, label_key): the unit of access. The caller maps each distinct label to an
integer key; the index compares keys for equality and knows nothing else about labels."""

SearchMode = Literal["hybrid", "vector", "bm25"]
SEARCH_MODES: frozenset[str] = frozenset({"hybrid", "vector", "bm25"})


@dataclass(frozen=True)
class Entry:
    """One chunk to index: its ids, its partition, its text for BM25 and its embedding."""

    chunk_id: int
    document_id: str
    partition: Partition
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class Hit:
    """One result. ``score`` orders the results of the mode asked for (fused RRF score in
    hybrid mode, cosine in vector mode, BM25 in bm25 mode); ``vector_score`` and
    ``bm25_score`` are None when that mode did not retrieve the chunk."""

    chunk_id: int
    document_id: str
    partition: Partition
    score: float
    vector_score: float | None
    bm25_score: float | None
