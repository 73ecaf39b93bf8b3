"""Repository of API keys. Only a SHA-256 of each key is stored."""

from __future__ import annotations

import hashlib
import secrets

from egide.store.db import Database

KEY_PREFIX = "egk_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, role: str) -> str:
        """Create a key and return it; it is not recoverable afterwards."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, prefix, sha256, role) VALUES (?, ?, ?, ?)",
                (secrets.token_hex(8), key[:12], digest(key), role),
            )
        return key

    def has_role(self, role: str) -> bool:
        rows = self.db.query(
            "SELECT 1 FROM api_keys WHERE role = ? AND revoked_at IS NULL LIMIT 1", (role,)
        )
        return bool(rows)

    def active_digests(self) -> dict[str, str]:
        """sha256 → role for every key that is not revoked."""
        rows = self.db.query("SELECT sha256, role FROM api_keys WHERE revoked_at IS NULL")
        return {r["sha256"]: r["role"] for r in rows}
