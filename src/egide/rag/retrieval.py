"""Search under clearance: the in-process hybrid index kept in step with the store.

Each distinct label gets a small integer key; the index partitions chunks by (library,
label key). A search is given exactly the partitions the caller may read — the libraries
they may read × the labels their clearance dominates within the instance ceiling — so the
clearance is a filter *inside* the search and a caller who may read 1% of a library still
gets a full top-k. The chunks found are then read again from the store and checked again
(label, library, still indexed) before anyone sees them.

Several processes may share one store: each applies the store's change log (documents
added, removed, relabelled; libraries removed) before every search.

A clean stop saves the index (with the change-log position and the label keys) in the
state directory; the next start loads it and applies only the changes made since, instead
of reading and indexing every chunk again. A snapshot that does not fit the store (newer
than its change log, unreadable) is ignored and the index is rebuilt from the store.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egide.rag.access import Library, LibraryAccess
from egide.rag.index import Entry, Hit, HybridIndex, SearchMode
from egide.security.labels import Label
from egide.security.policy import Principal
from egide.store.documents import ChunkRecord, DocumentRepository

log = logging.getLogger("egide.rag")
_META = "egide-retriever.json"


@dataclass(frozen=True)
class Found:
    """A chunk the caller may read, as it is in the store now, with its scores."""

    chunk: ChunkRecord
    label: Label
    hit: Hit


class Retriever:
    def __init__(
        self, docs: DocumentRepository, access: LibraryAccess, snapshot: Path | None = None
    ) -> None:
        self.docs = docs
        self.access = access
        self.snapshot = snapshot
        self.index: HybridIndex | None = None
        self._keys: dict[str, int] = {}
        self._labels: list[Label] = []
        self._seq = 0
        self._sync = threading.Lock()

    def load(self) -> int:
        """Load the saved index and catch up, or index every searchable chunk of the store;
        return how many chunks are indexed."""
        if self._load_snapshot():
            self.sync()
            return len(self.index or ())
        with self._sync:
            self._seq = self.docs.last_change()
            return self._add(self.docs.searchable_chunks())

    def _load_snapshot(self) -> bool:
        if self.snapshot is None or not (self.snapshot / _META).exists():
            return False
        try:
            meta = json.loads((self.snapshot / _META).read_text())
            if meta["seq"] > self.docs.last_change() or meta["mark"] != self._mark(meta["seq"]):
                raise ValueError("it does not match this store's change log")
            index = HybridIndex.load(self.snapshot / "index") if meta["indexed"] else None
        except Exception as exc:  # any unreadable snapshot: rebuild from the store
            log.warning("ignoring the saved search index (%s); rebuilding it", exc)
            return False
        with self._sync:
            self.index = index
            self._seq = int(meta["seq"])
            for text in meta["labels"]:
                self._key(text)
        return True

    def save(self) -> None:
        """Save the index for the next start (a clean stop); written aside, then swapped."""
        if self.snapshot is None:
            return
        with self._sync:
            self.snapshot.parent.mkdir(parents=True, exist_ok=True)
            fresh = Path(tempfile.mkdtemp(prefix=".search-index-", dir=self.snapshot.parent))
            if self.index is not None:
                self.index.save(fresh / "index")
            labels = sorted(self._keys, key=self._keys.__getitem__)
            meta = {
                "seq": self._seq,
                "mark": self._mark(self._seq),
                "labels": labels,
                "indexed": self.index is not None,
            }
            (fresh / _META).write_text(json.dumps(meta))
            shutil.rmtree(self.snapshot, ignore_errors=True)
            try:
                fresh.rename(self.snapshot)
            except OSError:  # another process sharing this directory saved at the same time
                shutil.rmtree(fresh, ignore_errors=True)

    def _mark(self, seq: int) -> str:
        """What the change log holds at ``seq``: ties a snapshot to its store."""
        if seq == 0:
            return ""
        change = self.docs.changes_since(seq - 1)[:1]
        return (
            "" if not change else f"{change[0].library_id}/{change[0].document_id}/{change[0].kind}"
        )

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
