"""Repository of the audit chain: ``audit_records`` and the checkpoint anchors.

Rows are plain tuples ``(seq, prev_hash, event, payload, hash)``; the chain logic lives in
``egide.audit`` (this package must not import it).

Concurrency: every append batch runs inside ONE write transaction that first reads the
chain head. On SQLite the transaction is ``BEGIN IMMEDIATE`` (the database write lock is
taken before the read), on PostgreSQL ``Database.transaction()`` takes a transaction-scoped
advisory lock first (``SELECT ... FOR UPDATE`` on a one-row chain-head table would do as
well). Either way two processes appending to the same database keep one unforked chain.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from egide.store.db import Connection

RecordRow = tuple[int, str, str, str, str]


def chain_head(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) of the last record, read inside the caller's write transaction."""
    row = conn.execute("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def last_checkpoint_seq(conn: Connection) -> int:
    row = conn.execute("SELECT MAX(seq) FROM audit_checkpoints").fetchone()
    return int(row[0] or 0)


def insert_records(conn: Connection, rows: Sequence[RecordRow]) -> None:
    sql = "INSERT INTO audit_records (seq, prev_hash, event, payload, hash) VALUES (?, ?, ?, ?, ?)"
    many = getattr(conn, "executemany", None)
    if many is not None:
        many(sql, rows)
    else:
        for row in rows:
            conn.execute(sql, row)


def insert_anchors(conn: Connection, rows: Sequence[tuple[int, str]]) -> None:
    for row in rows:
        conn.execute("INSERT INTO audit_checkpoints (seq, payload) VALUES (?, ?)", row)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection on a state database (or a copy of one)."""
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}; pass --input with the right path")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def iter_records(conn: Any, batch: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Every record row in seq order (values as stored, unvalidated)."""
    cursor = conn.execute(
        "SELECT seq, prev_hash, event, payload, hash FROM audit_records ORDER BY seq"
    )
    while rows := cursor.fetchmany(batch):
        yield from rows


def read_anchors(conn: Any) -> list[tuple[Any, Any]]:
    return [
        tuple(r) for r in conn.execute("SELECT seq, payload FROM audit_checkpoints ORDER BY seq")
    ]
