"""Repository of documents, their chunks and the knowledge change log.

A document is stored with all its chunks in one transaction, vectors empty; the ingestion
worker fills the vectors in batches under a lease (so that another process, or this one
after a restart, resumes a document whose worker died), then marks it done. Only done
documents reach the search index. A failed document keeps its row (status ``error`` and
the reason) but none of its chunks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from egide.errors import NotFound
from egide.store.db import Database, in_list
from egide.store.libraries import record_change

_DOC_COLUMNS = (
    "id, library_id, name, mime_type, extension, size, sha256, label, pages, uploaded_by, "
    "status, error, chunks_total, chunks_done, tokens, attributes, created_at, processed_at"
)
_CHUNK_COLUMNS = "id, document_id, library_id, position, label, page, headings, text, tokens"


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    library_id: str
    name: str
    mime_type: str
    extension: str | None
    size: int
    sha256: str
    label: str
    pages: int | None
    uploaded_by: str
    status: str  # in_progress | done | error
    error: str | None
    chunks_total: int
    chunks_done: int
    tokens: int
    attributes: dict[str, Any]
    created_at: str
    processed_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> DocumentRecord:
        return cls(
            **{k: row[k] for k in _DOC_COLUMNS.split(", ") if k != "attributes"},
            attributes=json.loads(row["attributes"]),
        )


@dataclass(frozen=True)
class NewChunk:
    position: int
    page: int | None
    headings: tuple[str, ...]
    text: str
    tokens: int


@dataclass(frozen=True)
class ChunkRecord:
    id: int
    document_id: str
    library_id: str
    position: int
    label: str
    page: int | None
    headings: tuple[str, ...]
    text: str
    tokens: int
    vector: bytes | None = None

    @classmethod
    def from_row(cls, row: Any, vector: bytes | None = None) -> ChunkRecord:
        return cls(
            id=int(row["id"]),
            document_id=row["document_id"],
            library_id=row["library_id"],
            position=row["position"],
            label=row["label"],
            page=row["page"],
            headings=tuple(json.loads(row["headings"])),
            text=row["text"],
            tokens=row["tokens"],
            vector=vector,
        )


@dataclass(frozen=True)
class Change:
    seq: int
    library_id: str
    document_id: str | None
    kind: str  # document-added | document-removed | document-relabelled | library-removed


class DocumentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- documents ----------------------------------------------------------------------

    def add(self, doc: DocumentRecord, chunks: Sequence[NewChunk], lease_s: float) -> None:
        """Store a document and its chunks (no vectors yet), leased to the caller."""
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO documents ({_DOC_COLUMNS}, lease_until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _doc_values(doc, lease_s),
            )
            for c in chunks:
                conn.execute(
                    "INSERT INTO chunks (document_id, library_id, position, label, page, "
                    "headings, text, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc.id,
                        doc.library_id,
                        c.position,
                        doc.label,
                        c.page,
                        json.dumps(list(c.headings), ensure_ascii=False),
                        c.text,
                        c.tokens,
                    ),
                )

    def get(self, document_id: str, library_id: str | None = None) -> DocumentRecord:
        rows = self.db.query(f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = ?", (document_id,))
        if not rows or (library_id is not None and rows[0]["library_id"] != library_id):
            raise NotFound(
                f"document {document_id!r} does not exist in this library; list them with "
                "GET /v1/libraries/{library_id}/documents",
                param="document_id",
            )
        return DocumentRecord.from_row(rows[0])

    def in_library(self, library_id: str) -> list[DocumentRecord]:
        rows = self.db.query(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE library_id = ? ORDER BY created_at, id",
            (library_id,),
        )
        return [DocumentRecord.from_row(r) for r in rows]

    def by_ids(self, ids: Sequence[str]) -> dict[str, DocumentRecord]:
        if not ids:
            return {}
        rows = self.db.query(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE id IN ({in_list(ids)})", tuple(ids)
        )
        return {r["id"]: DocumentRecord.from_row(r) for r in rows}

    def delete(self, document_id: str) -> None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT library_id FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))
            record_change(conn, row[0], document_id, "document-removed")

    def relabel(self, document_id: str, label: str) -> None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT library_id FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"document {document_id!r} does not exist", param="document_id")
            conn.execute("UPDATE documents SET label = ? WHERE id = ?", (label, document_id))
            conn.execute("UPDATE chunks SET label = ? WHERE document_id = ?", (label, document_id))
            record_change(conn, row[0], document_id, "document-relabelled")

    def rename(self, document_id: str, name: str, attributes: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE documents SET name = ?, attributes = ? WHERE id = ?",
                (name, json.dumps(attributes, sort_keys=True, ensure_ascii=False), document_id),
            )

    # -- the ingestion worker's side ----------------------------------------------------

    def claim(self, lease_s: float, document_id: str | None = None) -> str | None:
        """Take the lease of one unfinished document whose lease ran out (or ``document_id``
        if it is free): the worker that holds it is the only one to fill its vectors."""
        now = int(time.time())
        with self.db.transaction() as conn:
            if document_id is None:
                row = conn.execute(
                    "SELECT id FROM documents WHERE status = 'in_progress' AND lease_until < ? "
                    "ORDER BY created_at LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                document_id = str(row[0])
            conn.execute(
                "UPDATE documents SET lease_until = ? WHERE id = ?",
                (int(now + lease_s), document_id),
            )
        return document_id

    def release(self, document_id: str) -> None:
        """Give up the lease (a clean shutdown): any worker may resume the document now."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE documents SET lease_until = 0 WHERE id = ? AND status = 'in_progress'",
                (document_id,),
            )

    def unembedded(self, document_id: str, limit: int) -> list[ChunkRecord]:
        rows = self.db.query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE document_id = ? AND vector IS NULL "
            "ORDER BY position LIMIT ?",
            (document_id, limit),
        )
        return [ChunkRecord.from_row(r) for r in rows]

    def store_vectors(
        self, document_id: str, vectors: Sequence[tuple[int, bytes]], tokens: int, lease_s: float
    ) -> bool:
        """Write a batch of vectors and extend the lease; False if the document is gone."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT status FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
            if row is None or row[0] != "in_progress":
                return False
            for chunk_id, blob in vectors:
                conn.execute("UPDATE chunks SET vector = ? WHERE id = ?", (blob, chunk_id))
            conn.execute(
                "UPDATE documents SET chunks_done = chunks_done + ?, tokens = tokens + ?, "
                "lease_until = ? WHERE id = ?",
                (len(vectors), tokens, int(time.time() + lease_s), document_id),
            )
        return True

    def finish(self, document_id: str, processed_at: str) -> bool:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT library_id, status FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
            if row is None or row[1] != "in_progress":
                return False
            conn.execute(
                "UPDATE documents SET status = 'done', processed_at = ? WHERE id = ?",
                (processed_at, document_id),
            )
            record_change(conn, row[0], document_id, "document-added")
        return True

    def fail(self, document_id: str, reason: str, processed_at: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            conn.execute(
                "UPDATE documents SET status = 'error', error = ?, processed_at = ?, "
                "chunks_done = 0 WHERE id = ?",
                (reason, processed_at, document_id),
            )

    # -- what the search index loads ----------------------------------------------------

    def searchable_chunks(
        self, document_ids: Sequence[str] | None = None, batch: int = 5000
    ) -> Iterator[ChunkRecord]:
        """Chunks of done documents, with their vectors, in id order (all, or of some)."""
        last = 0
        where = "d.status = 'done'"
        params: tuple[object, ...] = ()
        if document_ids is not None:
            if not document_ids:
                return
            where += f" AND c.document_id IN ({in_list(document_ids)})"
            params = tuple(document_ids)
        while True:
            rows = self.db.query(
                f"SELECT c.id, c.document_id, c.library_id, c.position, c.label, c.page, "
                f"c.headings, c.text, c.tokens, c.vector FROM chunks c "
                f"JOIN documents d ON d.id = c.document_id WHERE {where} AND c.id > ? "
                f"ORDER BY c.id LIMIT ?",
                (*params, last, batch),
            )
            for r in rows:
                yield ChunkRecord.from_row(r, bytes(r["vector"]))
            if len(rows) < batch:
                return
            last = int(rows[-1]["id"])

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """Chunks by id as they are now in the store (the re-check before prompt assembly)."""
        if not chunk_ids:
            return {}
        rows = self.db.query(
            f"SELECT c.id, c.document_id, c.library_id, c.position, c.label, c.page, "
            f"c.headings, c.text, c.tokens FROM chunks c JOIN documents d "
            f"ON d.id = c.document_id WHERE d.status = 'done' AND c.id IN ({in_list(chunk_ids)})",
            tuple(chunk_ids),
        )
        return {int(r["id"]): ChunkRecord.from_row(r) for r in rows}

    def text_of(self, document_id: str) -> list[ChunkRecord]:
        rows = self.db.query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE document_id = ? ORDER BY position",
            (document_id,),
        )
        return [ChunkRecord.from_row(r) for r in rows]

    def changes_since(self, seq: int) -> list[Change]:
        rows = self.db.query(
            "SELECT seq, library_id, document_id, kind FROM knowledge_changes WHERE seq > ? "
            "ORDER BY seq",
            (seq,),
        )
        return [Change(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def last_change(self) -> int:
        return int(self.db.query("SELECT COALESCE(MAX(seq), 0) FROM knowledge_changes")[0][0])


def _doc_values(doc: DocumentRecord, lease_s: float) -> tuple[object, ...]:
    values = [
        getattr(doc, k) if k != "attributes" else json.dumps(doc.attributes, sort_keys=True)
        for k in _DOC_COLUMNS.split(", ")
    ]
    return (*values, int(time.time() + lease_s))
