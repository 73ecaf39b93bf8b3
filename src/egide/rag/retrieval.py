"""Search under clearance: the in-process hybrid index kept in step with the store.

Each distinct label gets a small integer key; the index partitions chunks by (library,
label key). A search is given exactly the partitions the caller may read — the libraries
they may read × the labels their clearance dominates within the instance ceiling — so the
clearance is a filter *inside* the search and a caller who may read 1% of a library still
gets a full top-k. The chunks found are then read again from the store and checked again
(label, library, still indexed) before anyone sees them.

Several processes may share one store: each applies the store's change log (documents
added, removed, relabelled; libraries removed) before every search.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from egide.rag.access import Library, LibraryAccess
from egide.rag.index import Entry, Hit, HybridIndex, SearchMode
from egide.security.labels import Label
from egide.security.policy import Principal
from egide.store.documents import ChunkRecord, DocumentRepository


@dataclass(frozen=True)
class Found:
    """A chunk the caller may read, as it is in the store now, with its scores."""

    chunk: ChunkRecord
    label: Label
    hit: Hit


class Retriever:
    def __init__(self, docs: DocumentRepository, access: LibraryAccess) -> None:
        self.docs = docs
        self.access = access
        self.index: HybridIndex | None = None
        self._keys: dict[str, int] = {}
        self._labels: list[Label] = []
        self._seq = 0
        self._sync = threading.Lock()

    def load(self) -> int:
        """Index every searchable chunk of the store; return how many."""
        with self._sync:
            self._seq = self.docs.last_change()
            return self._add(self.docs.searchable_chunks())

    def _key(self, text: str) -> int:
        key = self._keys.get(text)
        if key is None:
            key = self._keys[text] = len(self._labels)
            self._labels.append(self.access.label(text))
        return key

    def _add(self, chunks: object) -> int:
        batch: list[Entry] = []
        count = 0
        for chunk in chunks:  # type: ignore[attr-defined]
            assert isinstance(chunk, ChunkRecord) and chunk.vector is not None
            vector = np.frombuffer(chunk.vector, dtype="<f4")
            if self.index is None:
                self.index = HybridIndex(vector.shape[0])
            batch.append(
                Entry(
                    chunk_id=chunk.id,
                    document_id=chunk.document_id,
                    partition=(chunk.library_id, self._key(chunk.label)),
                    text=_indexed_text(chunk),
                    vector=vector,
                )
            )
            if len(batch) >= 2000:
                self.index.add(batch)
                count += len(batch)
                batch = []
        if batch and self.index is not None:
            self.index.add(batch)
            count += len(batch)
        return count

    def sync(self) -> None:
        """Apply the store's changes since the last search (cheap when there are none)."""
        with self._sync:
            changes = self.docs.changes_since(self._seq)
            for change in changes:
                if change.kind == "library-removed":
                    if self.index is not None:
                        self.index.remove_library(change.library_id)
                elif change.document_id is not None:
                    if self.index is not None:
                        self.index.remove_documents([change.document_id])
                    if change.kind in ("document-added", "document-relabelled"):
                        self._add(self.docs.searchable_chunks([change.document_id]))
                self._seq = change.seq

    def readable_keys(self, principal: Principal) -> list[int]:
        return [
            key
            for key, label in enumerate(self._labels)
            if self.access.readable(principal.clearance, label)
        ]

    def search(
        self,
        principal: Principal,
        libraries: Sequence[Library],
        *,
        vector: np.ndarray | None,
        text: str | None,
        k: int,
        mode: SearchMode = "hybrid",
        documents: Sequence[str] | None = None,
    ) -> list[Found]:
        """The caller's top-k over ``libraries`` (each already decided readable)."""
        self.sync()
        if self.index is None or not libraries:
            return []
        keys = self.readable_keys(principal)
        partitions = [(lib.id, key) for lib in libraries for key in keys]
        hits = self.index.search(
            vector=vector,
            text=text,
            partitions=partitions,
            documents=documents,
            k=k,
            mode=mode,
        )
        return self.recheck(principal, {lib.id for lib in libraries}, hits)

    def recheck(self, principal: Principal, libraries: set[str], hits: list[Hit]) -> list[Found]:
        """The hits as they are in the store now, kept only if still readable."""
        current = self.docs.chunks([h.chunk_id for h in hits])
        found = []
        for hit in hits:
            chunk = current.get(hit.chunk_id)
            if chunk is None or chunk.library_id not in libraries:
                continue
            label = self.access.label(chunk.label)
            if self.access.readable(principal.clearance, label):
                found.append(Found(chunk, label, hit))
        return found


def _indexed_text(chunk: ChunkRecord) -> str:
    return "\n".join((*chunk.headings, chunk.text))
