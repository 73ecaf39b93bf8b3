"""Repository of users: their organisation, nationality, clearance marking and roles."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from egide.errors import InvalidRequest, NotFound
from egide.store.db import Database, in_list

ROLES = ("platform-admin", "org-admin", "user", "auditor")


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    org_id: str
    nationality: str
    clearance: str  # a marking, parsed by egide.security ("S//ALPHA", "DR", ...)
    roles: tuple[str, ...]
    admin_scope: str | None
    disabled: bool = False


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        username: str,
        org_id: str,
        nationality: str,
        clearance: str,
        roles: tuple[str, ...] = ("user",),
        admin_scope: str | None = None,
    ) -> UserRecord:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise InvalidRequest(f"unknown roles {unknown}; use {', '.join(ROLES)}", param="roles")
        if "org-admin" in roles and admin_scope is None:
            raise InvalidRequest(
                "an org-admin needs an admin_scope: the organisation whose subtree they administer",
                param="admin_scope",
            )
        user = UserRecord(
            secrets.token_hex(8),
            username,
            org_id,
            nationality.upper(),
            clearance,
            roles,
            admin_scope,
        )
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise InvalidRequest(f"user {username!r} already exists", param="username")
            for org in {org_id, admin_scope} - {None}:
                if not conn.execute("SELECT 1 FROM orgs WHERE id = ?", (org,)).fetchone():
                    raise NotFound(f"organisation {org!r} does not exist")
            conn.execute(
                "INSERT INTO users (id, username, org_id, nationality, clearance, roles, "
                "admin_scope) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    username,
                    org_id,
                    user.nationality,
                    clearance,
                    ",".join(roles),
                    admin_scope,
                ),
            )
        return user

    def get(self, user_id: str) -> UserRecord:
        rows = self.db.query("SELECT * FROM users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound(f"user {user_id!r} does not exist")
        return _user(rows[0])

    def in_orgs(self, org_ids: list[str]) -> list[UserRecord]:
        if not org_ids:
            return []
        marks = in_list(org_ids)
        rows = self.db.query(
            f"SELECT * FROM users WHERE org_id IN ({marks}) ORDER BY username", org_ids
        )
        return [_user(r) for r in rows]


def _user(row: Any) -> UserRecord:
    return UserRecord(
        id=row["id"],
        username=row["username"],
        org_id=row["org_id"],
        nationality=row["nationality"],
        clearance=row["clearance"],
        roles=tuple(row["roles"].split(",")),
        admin_scope=row["admin_scope"],
        disabled=row["disabled_at"] is not None,
    )
