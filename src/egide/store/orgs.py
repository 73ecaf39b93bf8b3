"""Repository of the organisation tree (materialised paths: "/minarm/dga/unit-1")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from egide.errors import InvalidRequest, NotFound
from egide.store.db import Database

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Org:
    id: str
    parent_id: str | None
    name: str
    path: str

    @property
    def lineage(self) -> tuple[str, ...]:
        """Ids from the root down to this organisation."""
        return tuple(self.path.strip("/").split("/"))

    def contains(self, other: Org) -> bool:
        """True when ``other`` is this organisation or below it."""
        return other.path == self.path or other.path.startswith(self.path + "/")


class OrgRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, org_id: str, name: str, parent_id: str | None = None) -> Org:
        if not _ID.match(org_id):
            raise InvalidRequest(
                f"organisation id {org_id!r} must be 1-63 lowercase letters, digits or '-', "
                "starting with a letter or digit",
                param="id",
            )
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM orgs WHERE id = ?", (org_id,)).fetchone():
                raise InvalidRequest(f"organisation {org_id!r} already exists", param="id")
            path = f"/{org_id}"
            if parent_id is not None:
                parent = conn.execute("SELECT path FROM orgs WHERE id = ?", (parent_id,)).fetchone()
                if parent is None:
                    raise NotFound(f"parent organisation {parent_id!r} does not exist")
                path = f"{parent[0]}/{org_id}"
            conn.execute(
                "INSERT INTO orgs (id, parent_id, name, path) VALUES (?, ?, ?, ?)",
                (org_id, parent_id, name, path),
            )
        return Org(org_id, parent_id, name, path)

    def get(self, org_id: str) -> Org:
        rows = self.db.query("SELECT id, parent_id, name, path FROM orgs WHERE id = ?", (org_id,))
        if not rows:
            raise NotFound(
                f"organisation {org_id!r} does not exist; list them with GET /v1/admin/orgs"
            )
        return _org(rows[0])

    def subtree(self, org_id: str) -> list[Org]:
        """The organisation and everything below it, parents before children."""
        root = self.get(org_id)
        rows = self.db.query(
            "SELECT id, parent_id, name, path FROM orgs WHERE path = ? OR path LIKE ? "
            "ORDER BY path",
            (root.path, root.path + "/%"),
        )
        return [_org(r) for r in rows]

    def all(self) -> list[Org]:
        rows = self.db.query("SELECT id, parent_id, name, path FROM orgs ORDER BY path")
        return [_org(r) for r in rows]


def _org(r: Any) -> Org:
    return Org(r["id"], r["parent_id"], r["name"], r["path"])
