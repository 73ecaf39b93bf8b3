"""Repository of uploaded files (training sets): their metadata here, their bytes in the
state directory (``files/<id>``), written under a temporary name and renamed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egide.errors import NotFound
from egide.store.db import Database

_COLUMNS = (
    "id, filename, purpose, size_bytes, sha256, label, owner_org, uploaded_by, num_lines, "
    "created_at"
)


@dataclass(frozen=True)
class FileRecord:
    id: str
    filename: str
    purpose: str
    size_bytes: int
    sha256: str
    label: str
    owner_org: str | None
    uploaded_by: str
    num_lines: int | None
    created_at: int

    @classmethod
    def from_row(cls, row: Any) -> FileRecord:
        return cls(**{k: row[k] for k in _COLUMNS.split(", ")})


class FileRepository:
    def __init__(self, db: Database, directory: Path) -> None:
        self.db = db
        self.directory = directory

    def path(self, file_id: str) -> Path:
        return self.directory / file_id

    def add(self, record: FileRecord, data: bytes) -> FileRecord:
        """Write the bytes (fsynced, renamed into place), then the row."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(record.id)
        partial = final.with_suffix(".partial")
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(final)
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    tuple(getattr(record, k) for k in _COLUMNS.split(", ")),
                )
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return record

    def get(self, file_id: str) -> FileRecord:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,))
        if not rows:
            raise NotFound(
                f"file {file_id!r} does not exist; list them with GET /v1/files", param="file_id"
            )
        return FileRecord.from_row(rows[0])

    def all(self, purpose: str | None = None) -> list[FileRecord]:
        if purpose is None:
            rows = self.db.query(f"SELECT {_COLUMNS} FROM files ORDER BY created_at, id")
        else:
            rows = self.db.query(
                f"SELECT {_COLUMNS} FROM files WHERE purpose = ? ORDER BY created_at, id",
                (purpose,),
            )
        return [FileRecord.from_row(r) for r in rows]

    def read(self, file_id: str) -> bytes:
        return self.path(file_id).read_bytes()

    def delete(self, file_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.path(file_id).unlink(missing_ok=True)
