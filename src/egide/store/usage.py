"""Usage accounting: requests and tokens per day, organisation, user, key and model."""

from __future__ import annotations

from dataclasses import dataclass

from egide.store.db import Connection, Database, in_list


@dataclass(frozen=True)
class UsageRow:
    day: str
    org_id: str
    user_id: str
    key_id: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


class UsageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, row: UsageRow) -> None:
        with self.db.transaction() as conn:
            record_in(conn, row)

    def query(
        self,
        *,
        org_ids: list[str] | None = None,
        user_id: str | None = None,
        model: str | None = None,
        since: str | None = None,
        until: str | None = None,
        group_by: tuple[str, ...] = ("day", "org_id", "user_id", "model"),
    ) -> list[dict[str, object]]:
        """Totals grouped by the given columns, filtered by organisation (a list, e.g. a
        subtree), user, model and day range (inclusive ISO dates)."""
        allowed = {"day", "org_id", "user_id", "key_id", "model"}
        columns = [c for c in group_by if c in allowed] or ["day"]
        where: list[str] = []
        params: list[object] = []
        if org_ids is not None:
            where.append(f"org_id IN ({in_list(org_ids)})" if org_ids else "1 = 0")
            params += org_ids
        for column, value in (("user_id", user_id), ("model", model)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since:
            where.append("day >= ?")
            params.append(since)
        if until:
            where.append("day <= ?")
            params.append(until)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        cols = ", ".join(columns)
        rows = self.db.query(
            f"SELECT {cols}, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, "
            f"SUM(completion_tokens) AS completion_tokens FROM usage {clause} "
            f"GROUP BY {cols} ORDER BY {cols}",
            params,
        )
        names = [*columns, "requests", "prompt_tokens", "completion_tokens"]
        return [{n: (int(r[n]) if n in names[-3:] else r[n]) for n in names} for r in rows]


def record_in(conn: Connection, row: UsageRow) -> None:
    """Add ``row`` to the totals inside ``conn``'s transaction."""
    conn.execute(
        "INSERT INTO usage (day, org_id, user_id, key_id, model, requests, "
        "prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (day, org_id, user_id, key_id, model) DO UPDATE SET "
        "requests = usage.requests + excluded.requests, "
        "prompt_tokens = usage.prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = usage.completion_tokens + excluded.completion_tokens",
        (
            row.day,
            row.org_id,
            row.user_id,
            row.key_id,
            row.model,
            row.requests,
            row.prompt_tokens,
            row.completion_tokens,
        ),
    )
