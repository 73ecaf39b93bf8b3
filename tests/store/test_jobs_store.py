"""Fine-tuning jobs: guarded status transitions and events, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from egide.errors import Conflict, NotFound
from egide.store.jobs import JobRecord, JobRepository
from factories import job_record


def _job() -> JobRecord:
    return job_record(suffix="unit", label="DR")


def test_transitions_are_checked_and_recorded(database) -> None:
    jobs = JobRepository(database)
    jobs.add(_job())
    assert jobs.get("ftjob-1").hyperparameters["training_steps"] == 10
    jobs.transition("ftjob-1", ("QUEUED",), "VALIDATING")
    running = jobs.transition("ftjob-1", ("VALIDATING",), "RUNNING", lease_until=99)
    assert running.status == "RUNNING" and running.lease_until == 99
    jobs.update("ftjob-1", metrics={"step": 3, "train_loss": 1.5}, trained_tokens=300)
    assert jobs.get("ftjob-1").metrics == {"step": 3, "train_loss": 1.5}
    jobs.add_event("ftjob-1", "checkpoint", {"step": 3})
    with pytest.raises(Conflict, match="RUNNING"):
        jobs.transition("ftjob-1", ("QUEUED",), "CANCELLED")
    jobs.transition("ftjob-1", ("RUNNING",), "SUCCESS", fine_tuned_model="ft:base:unit:1")
    assert [e.name for e in jobs.events("ftjob-1")] == [
        "status-change",
        "status-change",
        "status-change",
        "checkpoint",
        "status-change",
    ]
    assert [j.id for j in jobs.with_status("SUCCESS")] == ["ftjob-1"]
    with pytest.raises(NotFound):
        jobs.get("nope")
