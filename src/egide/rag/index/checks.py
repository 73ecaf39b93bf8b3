"""Argument checks shared by the index's public methods: wrong input fails loudly, with
the fix in the message, before anything is touched."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from egide.rag.index.records import SEARCH_MODES, Entry, Partition, SearchMode


def checked_entry(entry: Entry, dim: int) -> int:
    """The entry's chunk id, once its fields have the right types and shapes."""
    chunk_id = entry.chunk_id
    if isinstance(chunk_id, bool) or not isinstance(chunk_id, int | np.integer) or chunk_id < 1:
        raise ValueError(f"chunk_id must be a positive integer, not {chunk_id!r}")
    if not isinstance(entry.document_id, str):
        raise ValueError(f"document_id must be a string, not {entry.document_id!r}")
    partition = entry.partition
    if not (
        isinstance(partition, tuple)
        and len(partition) == 2
        and isinstance(partition[0], str)
        and is_key(partition[1])
    ):
        raise ValueError(f"partition must be (library_id, label_key), not {partition!r}")
    if np.shape(entry.vector) not in ((dim,), (1, dim)):
        shape = np.shape(entry.vector)
        raise ValueError(f"vector of chunk {chunk_id} has shape {shape}; the index has {dim}")
    return int(chunk_id)


def is_key(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def readable_set(partitions: Collection[Partition]) -> set[Partition]:
    """The caller's partitions as a set of ``(str, int)``; anything else is refused rather
    than coerced (a label key of ``1.5`` must not open partition 1)."""
    out: set[Partition] = set()
    for p in partitions:
        if not (isinstance(p, tuple | list) and len(p) == 2 and isinstance(p[0], str)):
            raise ValueError(f"partitions must be (library_id, label_key) pairs, not {p!r}")
        if not is_key(p[1]):
            raise ValueError(f"label keys are integers, not {p[1]!r}")
        out.add((p[0], int(p[1])))
    return out


def document_list(document_ids: Collection[str]) -> list[str]:
    if isinstance(document_ids, str):
        raise ValueError("pass a collection of document ids, not a single string")
    return list(document_ids)


def search_mode(mode: str, k: int, has_vector: bool, has_text: bool) -> SearchMode:
    """The mode a search runs in: hybrid given only one query degrades to that one."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be one of {sorted(SEARCH_MODES)}, not {mode!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    if mode == "hybrid":
        if not has_vector and not has_text:
            raise ValueError("hybrid search needs a query vector, a query text or both")
        return "hybrid" if has_vector and has_text else "vector" if has_vector else "bm25"
    if mode == "vector" and not has_vector:
        raise ValueError("vector search needs a query vector")
    if mode == "bm25" and not has_text:
        raise ValueError("bm25 search needs a query text")
    return "vector" if mode == "vector" else "bm25"
