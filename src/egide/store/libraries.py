"""Repository of knowledge libraries and their documents.

A library's labels and compartments are stored as marking text ("S//TIGRE"), parsed by
the layer above. Deleting a library or a document removes its chunks in the same
transaction and appends to ``knowledge_changes`` so that every process drops them from
its in-memory index before its next search.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from egide.errors import NotFound
from egide.store.db import Connection, Database

_LIBRARY_COLUMNS = (
    "id, name, description, owner_org, created_by, ceiling, read_org, read_compartments, "
    "write_org, write_compartments, chunk_size, created_at, updated_at"
)


def new_id() -> str:
    """A random UUID-shaped id (what Mistral's API returns for libraries and documents)."""
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _names(text: str) -> frozenset[str]:
    return frozenset(n for n in text.split(",") if n)


@dataclass(frozen=True)
class LibraryRecord:
    id: str
    name: str
    description: str | None
    owner_org: str | None
    created_by: str
    ceiling: str
    read_org: str | None
    read_compartments: frozenset[str]
    write_org: str | None
    write_compartments: frozenset[str]
    chunk_size: int | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any) -> LibraryRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            owner_org=row["owner_org"],
            created_by=row["created_by"],
            ceiling=row["ceiling"],
            read_org=row["read_org"],
            read_compartments=_names(row["read_compartments"]),
            write_org=row["write_org"],
            write_compartments=_names(row["write_compartments"]),
            chunk_size=row["chunk_size"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class LibraryStats:
    documents: int
    total_size: int


class LibraryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, record: LibraryRecord) -> LibraryRecord:
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO libraries ({_LIBRARY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _library_values(record),
            )
        return record

    def update(self, record: LibraryRecord) -> LibraryRecord:
        with self.db.transaction() as conn:
            values = _library_values(record)
            conn.execute(
                "UPDATE libraries SET name = ?, description = ?, owner_org = ?, created_by = ?, "
                "ceiling = ?, read_org = ?, read_compartments = ?, write_org = ?, "
                "write_compartments = ?, chunk_size = ?, created_at = ?, updated_at = ? "
                "WHERE id = ?",
                (*values[1:], record.id),
            )
        return record

    def get(self, library_id: str) -> LibraryRecord:
        rows = self.db.query(
            f"SELECT {_LIBRARY_COLUMNS} FROM libraries WHERE id = ?", (library_id,)
        )
        if not rows:
            raise NotFound(
                f"library {library_id!r} does not exist; list them with GET /v1/libraries",
                param="library_id",
            )
        return LibraryRecord.from_row(rows[0])

    def all(self) -> list[LibraryRecord]:
        rows = self.db.query(f"SELECT {_LIBRARY_COLUMNS} FROM libraries ORDER BY created_at, id")
        return [LibraryRecord.from_row(r) for r in rows]

    def stats(self) -> dict[str, LibraryStats]:
        rows = self.db.query(
            "SELECT library_id, COUNT(*), COALESCE(SUM(size), 0) FROM documents GROUP BY library_id"
        )
        return {r[0]: LibraryStats(int(r[1]), int(r[2])) for r in rows}

    def delete(self, library_id: str) -> int:
        """Delete the library, its documents and chunks; return the documents removed."""
        with self.db.transaction() as conn:
            count = conn.execute(
                "SELECT COUNT(*) FROM documents WHERE library_id = ?", (library_id,)
            ).fetchone()[0]
            conn.execute("DELETE FROM chunks WHERE library_id = ?", (library_id,))
            conn.execute("DELETE FROM documents WHERE library_id = ?", (library_id,))
            conn.execute("DELETE FROM libraries WHERE id = ?", (library_id,))
            record_change(conn, library_id, None, "library-removed")
        return int(count)


def _library_values(r: LibraryRecord) -> tuple[object, ...]:
    return (
        r.id,
        r.name,
        r.description,
        r.owner_org,
        r.created_by,
        r.ceiling,
        r.read_org,
        ",".join(sorted(r.read_compartments)),
        r.write_org,
        ",".join(sorted(r.write_compartments)),
        r.chunk_size,
        r.created_at,
        r.updated_at,
    )


def record_change(conn: Connection, library_id: str, document_id: str | None, kind: str) -> None:
    """Append to the change log that keeps every process's index in step with the store."""
    conn.execute(
        "INSERT INTO knowledge_changes (library_id, document_id, kind) VALUES (?, ?, ?)",
        (library_id, document_id, kind),
    )


def encode_attributes(attributes: dict[str, Any]) -> str:
    return json.dumps(attributes, sort_keys=True, ensure_ascii=False)
