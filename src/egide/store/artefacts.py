"""Repository of model artefacts: what was registered, where, with which digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egide.store.db import Database


@dataclass(frozen=True)
class ArtefactRecord:
    id: str
    path: Path
    sha256: str
    format: str
    source: str
    size_bytes: int
    registered_at: str = ""


class ArtefactRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, artefact_id: str) -> ArtefactRecord | None:
        rows = self.db.query("SELECT * FROM artefacts WHERE id = ?", (artefact_id,))
        return _record(rows[0]) if rows else None

    def all(self) -> list[ArtefactRecord]:
        return [_record(r) for r in self.db.query("SELECT * FROM artefacts ORDER BY id")]

    def put(self, record: ArtefactRecord) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO artefacts (id, path, sha256, format, source, size_bytes) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET path=excluded.path, "
                "sha256=excluded.sha256, format=excluded.format, source=excluded.source, "
                "size_bytes=excluded.size_bytes",
                (
                    record.id,
                    str(record.path),
                    record.sha256,
                    record.format,
                    record.source,
                    record.size_bytes,
                ),
            )


def _record(r: Any) -> ArtefactRecord:
    return ArtefactRecord(
        id=r["id"],
        path=Path(r["path"]),
        sha256=r["sha256"],
        format=r["format"],
        source=r["source"],
        size_bytes=r["size_bytes"],
        registered_at=r["registered_at"],
    )
