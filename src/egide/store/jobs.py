"""Repository of fine-tuning jobs and their events (status changes, metrics, checkpoints).

A job's status only moves through :meth:`JobRepository.transition`, which checks the move
against the allowed ones inside the write transaction, so two processes (or a cancel
racing a finish) can never both win.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from egide.errors import Conflict, NotFound
from egide.store.db import Database

_COLUMNS = (
    "id, model, suffix, status, auto_start, owner_org, created_by, label, training_files, "
    "validation_files, hyperparameters, created_at, modified_at, fine_tuned_model, "
    "trained_tokens, error, metrics, lease_until"
)
_JSON = ("training_files", "validation_files", "hyperparameters", "metrics")


@dataclass(frozen=True)
class JobRecord:
    id: str
    model: str
    suffix: str | None
    status: str
    auto_start: bool
    owner_org: str | None
    created_by: str
    label: str
    training_files: list[str]
    validation_files: list[str]
    hyperparameters: dict[str, Any]
    created_at: int
    modified_at: int
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    lease_until: int = 0

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        values = {k: row[k] for k in _COLUMNS.split(", ")}
        for key in _JSON:
            values[key] = json.loads(values[key])
        values["auto_start"] = bool(values["auto_start"])
        return cls(**values)

    def values(self) -> tuple[object, ...]:
        out = []
        for key in _COLUMNS.split(", "):
            value = getattr(self, key)
            if key == "auto_start":
                value = int(value)  # INTEGER in both dialects
            out.append(json.dumps(value) if key in _JSON else value)
        return tuple(out)


@dataclass(frozen=True)
class JobEvent:
    seq: int
    created_at: int
    name: str
    data: dict[str, Any]


class JobRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, job: JobRecord) -> JobRecord:
        with self.db.transaction() as conn:
            marks = ", ".join("?" * len(_COLUMNS.split(", ")))
            conn.execute(f"INSERT INTO tuning_jobs ({_COLUMNS}) VALUES ({marks})", job.values())
            _event(conn, job.id, "status-change", {"status": job.status})
        return job

    def get(self, job_id: str) -> JobRecord:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM tuning_jobs WHERE id = ?", (job_id,))
        if not rows:
            raise NotFound(
                f"fine-tuning job {job_id!r} does not exist; list them with "
                "GET /v1/fine_tuning/jobs",
                param="job_id",
            )
        return JobRecord.from_row(rows[0])

    def all(self) -> list[JobRecord]:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM tuning_jobs ORDER BY created_at, id")
        return [JobRecord.from_row(r) for r in rows]

    def with_status(self, *statuses: str) -> list[JobRecord]:
        marks = ",".join("?" * len(statuses))
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM tuning_jobs WHERE status IN ({marks}) ORDER BY created_at",
            statuses,
        )
        return [JobRecord.from_row(r) for r in rows]

    def transition(
        self, job_id: str, allowed_from: tuple[str, ...], to: str, **changes: Any
    ) -> JobRecord:
        """Move the job to ``to`` if it is in one of ``allowed_from`` (else ``Conflict``),
        with other column ``changes``; record a ``status-change`` event."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT status FROM tuning_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"fine-tuning job {job_id!r} does not exist", param="job_id")
            if row[0] not in allowed_from:
                raise Conflict(
                    f"job {job_id} is {row[0]}; it can become {to} only from "
                    f"{' or '.join(allowed_from)}"
                )
            sets = {"status": to, "modified_at": int(time.time()), **changes}
            assignments = ", ".join(f"{k} = ?" for k in sets)
            values = [json.dumps(v) if k in _JSON else v for k, v in sets.items()]
            conn.execute(f"UPDATE tuning_jobs SET {assignments} WHERE id = ?", (*values, job_id))
            _event(conn, job_id, "status-change", {"status": to, "from": row[0]})
        return self.get(job_id)

    def update(self, job_id: str, **changes: Any) -> None:
        """Progress (metrics, tokens, lease) without a status change."""
        sets = {"modified_at": int(time.time()), **changes}
        assignments = ", ".join(f"{k} = ?" for k in sets)
        values = [json.dumps(v) if k in _JSON else v for k, v in sets.items()]
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE tuning_jobs SET {assignments} WHERE id = ?", (*values, job_id))

    def add_event(self, job_id: str, name: str, data: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            _event(conn, job_id, name, data)

    def events(self, job_id: str) -> list[JobEvent]:
        rows = self.db.query(
            "SELECT seq, created_at, name, data FROM tuning_events WHERE job_id = ? ORDER BY seq",
            (job_id,),
        )
        return [JobEvent(int(r[0]), int(r[1]), r[2], json.loads(r[3])) for r in rows]


def _event(conn: Any, job_id: str, name: str, data: dict[str, Any]) -> None:
    last = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM tuning_events WHERE job_id = ?", (job_id,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO tuning_events (job_id, seq, created_at, name, data) VALUES (?, ?, ?, ?, ?)",
        (job_id, int(last) + 1, int(time.time()), name, json.dumps(data)),
    )
