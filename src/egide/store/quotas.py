"""Quotas and their counters, checked and spent in one write transaction.

A request spends the budget of its key and of every organisation above its user; it is
admitted only if none of those budgets is exhausted. Requests are counted when admitted;
tokens are added when the answer is complete, so a budget can be overrun by at most the
tokens of the requests in flight when it ran out.
"""

from __future__ import annotations

from dataclasses import dataclass

from egide.errors import InvalidRequest
from egide.store.db import Connection, Database, in_list

MINUTE = 60
DAY = 86_400


@dataclass(frozen=True)
class Quota:
    subject: str  # "org:<id>" or "key:<id>"
    requests_per_min: int | None = None
    tokens_per_min: int | None = None
    tokens_per_day: int | None = None


@dataclass(frozen=True)
class Exhausted:
    """Why a request was refused, and when to retry."""

    subject: str
    limit: str
    used: int
    allowed: int
    retry_after_s: int

    @property
    def reason(self) -> str:
        return (
            f"the {self.limit.replace('_', ' ')} quota of {self.subject} is used up "
            f"({self.used}/{self.allowed}); retry in {self.retry_after_s} s or ask an "
            "administrator to raise it"
        )


class QuotaRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, quota: Quota) -> None:
        for value in (quota.requests_per_min, quota.tokens_per_min, quota.tokens_per_day):
            if value is not None and value < 0:
                raise InvalidRequest("quota limits must be zero or positive (or unset)")
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO quotas (subject, requests_per_min, tokens_per_min, tokens_per_day) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO UPDATE SET "
                "requests_per_min = excluded.requests_per_min, "
                "tokens_per_min = excluded.tokens_per_min, "
                "tokens_per_day = excluded.tokens_per_day",
                (quota.subject, quota.requests_per_min, quota.tokens_per_min, quota.tokens_per_day),
            )

    def get(self, subject: str) -> Quota | None:
        rows = self.db.query("SELECT * FROM quotas WHERE subject = ?", (subject,))
        if not rows:
            return None
        r = rows[0]
        return Quota(r["subject"], r["requests_per_min"], r["tokens_per_min"], r["tokens_per_day"])

    def admit(self, subjects: list[str], now: float) -> Exhausted | None:
        """Count one request against every subject, or none if one budget is used up."""
        minute = int(now) // MINUTE * MINUTE
        day = int(now) // DAY * DAY
        marks = in_list(subjects)
        with self.db.transaction() as conn:
            quotas = conn.execute(
                f"SELECT subject, requests_per_min, tokens_per_min, tokens_per_day FROM quotas "
                f"WHERE subject IN ({marks})",
                subjects,
            ).fetchall()
            for subject, rpm, tpm, tpd in quotas:
                used_min = _counter(conn, subject, "minute", minute)
                used_day = _counter(conn, subject, "day", day)
                checks = (
                    ("requests_per_minute", used_min[0], rpm, minute + MINUTE),
                    ("tokens_per_minute", used_min[1], tpm, minute + MINUTE),
                    ("tokens_per_day", used_day[1], tpd, day + DAY),
                )
                for limit, used, allowed, window_end in checks:
                    if allowed is not None and used >= allowed:
                        wait = max(1, int(window_end - now) + 1)
                        return Exhausted(subject, limit, used, allowed, wait)
            for subject in subjects:
                _add(conn, subject, "minute", minute, requests=1, tokens=0)
        return None

    def spend_tokens(self, subjects: list[str], now: float, tokens: int) -> None:
        with self.db.transaction() as conn:
            spend_tokens_in(conn, subjects, now, tokens)


def spend_tokens_in(conn: Connection, subjects: list[str], now: float, tokens: int) -> None:
    """Add ``tokens`` to every subject's minute and day counters, inside ``conn``'s
    transaction (so that a writer can batch many requests in one)."""
    minute = int(now) // MINUTE * MINUTE
    day = int(now) // DAY * DAY
    for subject in subjects:
        _add(conn, subject, "minute", minute, requests=0, tokens=tokens)
        _add(conn, subject, "day", day, requests=0, tokens=tokens)
    conn.execute("DELETE FROM quota_counters WHERE window_start < ?", (day - 2 * DAY,))


def _counter(conn: Connection, subject: str, span: str, start: int) -> tuple[int, int]:
    row = conn.execute(
        "SELECT requests, tokens FROM quota_counters WHERE subject = ? AND span = ? "
        "AND window_start = ?",
        (subject, span, start),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _add(
    conn: Connection, subject: str, span: str, start: int, *, requests: int, tokens: int
) -> None:
    conn.execute(
        "INSERT INTO quota_counters (subject, span, window_start, requests, tokens) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (subject, span, window_start) DO UPDATE SET "
        "requests = quota_counters.requests + excluded.requests, "
        "tokens = quota_counters.tokens + excluded.tokens",
        (subject, span, start, requests, tokens),
    )
