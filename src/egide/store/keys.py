"""Repository of API keys. Only a SHA-256 of each key is stored; the key is shown once.

A key has a visible prefix (to recognise it in lists), belongs to a user (or is the
bootstrap admin key), may be limited to some models, may expire, and is revoked with
immediate effect: authentication reads the key's row on every request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from egide.errors import NotFound
from egide.store.db import Database, in_list

KEY_PREFIX = "egk_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    id: str
    prefix: str
    role: str
    user_id: str | None
    name: str | None
    models: frozenset[str] | None
    expires_at: str | None
    revoked_at: str | None

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or datetime.fromisoformat(self.expires_at) > now


class KeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        role: str,
        *,
        user_id: str | None = None,
        name: str | None = None,
        models: frozenset[str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[str, KeyRecord]:
        """Create a key; return it (not recoverable afterwards) and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            id=secrets.token_hex(8),
            prefix=key[:12],
            role=role,
            user_id=user_id,
            name=name,
            models=models,
            expires_at=expires_at.astimezone(UTC).isoformat() if expires_at else None,
            revoked_at=None,
        )
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, prefix, sha256, role, user_id, name, models, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.prefix,
                    digest(key),
                    role,
                    user_id,
                    name,
                    json.dumps(sorted(models)) if models is not None else None,
                    record.expires_at,
                ),
            )
        return key, record

    def lookup(self, key_digest: str) -> KeyRecord | None:
        rows = self.db.query("SELECT * FROM api_keys WHERE sha256 = ?", (key_digest,))
        return _record(rows[0]) if rows else None

    def get(self, key_id: str) -> KeyRecord:
        rows = self.db.query("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        if not rows:
            raise NotFound(f"key {key_id!r} does not exist; list keys with GET /v1/admin/keys")
        return _record(rows[0])

    def all(self) -> list[KeyRecord]:
        rows = self.db.query("SELECT * FROM api_keys ORDER BY created_at, id")
        return [_record(r) for r in rows]

    def revoke(self, key_id: str) -> None:
        now = datetime.now(UTC).isoformat()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT revoked_at FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"key {key_id!r} does not exist")
            if row[0] is None:
                conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, key_id))

    def has_role(self, role: str) -> bool:
        rows = self.db.query(
            "SELECT 1 FROM api_keys WHERE role = ? AND revoked_at IS NULL LIMIT 1", (role,)
        )
        return bool(rows)

    def for_users(self, user_ids: list[str]) -> list[KeyRecord]:
        if not user_ids:
            return []
        marks = in_list(user_ids)
        rows = self.db.query(
            f"SELECT * FROM api_keys WHERE user_id IN ({marks}) ORDER BY created_at, id", user_ids
        )
        return [_record(r) for r in rows]


def _record(r: Any) -> KeyRecord:
    models = r["models"]
    return KeyRecord(
        id=r["id"],
        prefix=r["prefix"],
        role=r["role"],
        user_id=r["user_id"],
        name=r["name"],
        models=frozenset(json.loads(models)) if models else None,
        expires_at=r["expires_at"],
        revoked_at=r["revoked_at"],
    )
