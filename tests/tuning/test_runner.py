"""The job runner against a stand-in worker process with the real worker's contract:
validation, progress into metrics and events, success, failure with its reason,
cancellation, and resumption after a worker dies or the runner restarts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from egide.errors import EgideError
from egide.store import open_database
from egide.store.files import FileRecord, FileRepository
from egide.store.jobs import JobRecord, JobRepository
from egide.tuning.runner import JobRunner
from factories import job_record

TESTS = Path(__file__).resolve().parents[1]
LINE = {
    "messages": [
        {"role": "user", "content": "Indicatif ?"},
        {"role": "assistant", "content": "Aigle 6"},
    ]
}


@pytest.fixture
def stores(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    db = open_database(tmp_path)
    files = FileRepository(db, tmp_path / "files")
    yield JobRepository(db), files, tmp_path
    db.close()


def _file(files: FileRepository, name: str, text: str) -> str:
    record = FileRecord(
        name, f"{name}.jsonl", "fine-tune", len(text), "0" * 64, "NP", None, "u1", None, 1
    )
    files.add(record, text.encode())
    return name


def _job(jobs: JobRepository, file_id: str, learning_rate: float = 1e-4, **extra) -> JobRecord:
    job = job_record(
        id=f"ftjob-{learning_rate}-{time.monotonic_ns()}",
        suffix="u",
        training_files=[file_id],
        hyperparameters={"training_steps": 6, "learning_rate": learning_rate},
        **extra,
    )
    return jobs.add(job)


def _runner(jobs, files, where, registered) -> JobRunner:
    async def on_success(job: JobRecord, adapter: Path) -> str:
        if job.suffix == "unservable":
            raise EgideError("the adapter has no tensor for this base")
        assert (adapter / "adapter_model.safetensors").exists()
        registered.append(job.id)
        return f"ft:base:{job.suffix}:{job.id[-6:]}"

    def spec_for(job, train, validation, output):
        return {
            "training_steps": job.hyperparameters["training_steps"],
            "learning_rate": job.hyperparameters["learning_rate"],
            "train_files": [str(p) for p in train],
            "validation_files": [str(p) for p in validation],
            "output_dir": str(output),
        }

    return JobRunner(
        jobs,
        files,
        where / "jobs",
        count_tokens=lambda model, text: len(text.split()),
        context_length=lambda model: 64,
        spec_for=spec_for,
        on_success=on_success,
        changed=lambda job, summary: None,
        worker_module="support.stub_worker",
        requires=(),
        poll_s=0.05,
    )


async def _until(
    jobs: JobRepository, job_id: str, statuses: set[str], runner: JobRunner
) -> JobRecord:
    for _ in range(600):
        await runner.step()
        job = jobs.get(job_id)
        if job.status in statuses:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job_id} stuck in {jobs.get(job_id).status}")


def test_jobs_validate_run_succeed_or_fail_with_reasons(stores) -> None:
    jobs, files, where = stores
    good = _file(files, "good", "\n".join(json.dumps(LINE) for _ in range(20)))
    bad = _file(files, "bad", json.dumps(LINE) + "\n{broken\n")
    registered: list[str] = []

    async def go() -> None:
        runner = _runner(jobs, files, where, registered)
        ok = _job(jobs, good)
        invalid = _job(jobs, bad)
        failing = _job(jobs, good, learning_rate=0.5)
        unservable = jobs.add(
            JobRecord(**{**_job_fields(ok), "id": "ftjob-unservable", "suffix": "unservable"})
        )
        done = await _until(jobs, ok.id, {"SUCCESS", "FAILED"}, runner)
        assert done.status == "SUCCESS" and done.fine_tuned_model.startswith("ft:base:u:")
        assert done.metrics["step"] == 6 and done.trained_tokens == 600
        assert done.metrics["data_tokens"] > 0 and registered == [ok.id]
        events = jobs.events(ok.id)
        statuses = [e.data["status"] for e in events if e.name == "status-change"]
        assert statuses == ["QUEUED", "VALIDATING", "VALIDATED", "RUNNING", "SUCCESS"]
        assert [e.data["step"] for e in events if e.name == "checkpoint"] == [2, 4, 6]
        split = where / "jobs" / ok.id / "data"
        assert (split / "validation.jsonl").read_text().strip()  # a validation set was split off

        failed = await _until(jobs, invalid.id, {"FAILED_VALIDATION"}, runner)
        assert "line 2: not valid JSON" in failed.error
        failed = await _until(jobs, failing.id, {"FAILED"}, runner)
        assert "base_model_path" in failed.error
        failed = await _until(jobs, unservable.id, {"FAILED"}, runner)
        assert "could not be served" in failed.error
        await runner.close()

    asyncio.run(go())


def _job_fields(job: JobRecord) -> dict:
    return {k: getattr(job, k) for k in JobRecord.__dataclass_fields__}


def test_cancel_a_running_job_and_resume_after_death_or_restart(stores, monkeypatch) -> None:
    jobs, files, where = stores
    good = _file(files, "good", "\n".join(json.dumps(LINE) for _ in range(20)))
    monkeypatch.setenv("STUB_STEP_S", "0.2")

    async def go() -> None:
        runner = _runner(jobs, files, where, [])
        victim = _job(jobs, good)
        await _until(jobs, victim.id, {"RUNNING"}, runner)
        while jobs.get(victim.id).metrics.get("step", 0) < 1:
            await runner.step()
            await asyncio.sleep(0.05)
        jobs.transition(victim.id, ("RUNNING",), "CANCELLATION_REQUESTED")
        cancelled = await _until(jobs, victim.id, {"CANCELLED"}, runner)
        assert cancelled.metrics["step"] < 6

        # A worker that dies without a word is resumed from where it was, not restarted.
        dying = _job(jobs, good, learning_rate=0.25)
        done = await _until(jobs, dying.id, {"SUCCESS", "FAILED"}, runner)
        assert done.status == "SUCCESS" and done.metrics["attempts"] == 2
        progress = (where / "jobs" / dying.id / "output" / "progress.jsonl").read_text()
        steps = [json.loads(x)["step"] for x in progress.splitlines() if "train_loss" in x]
        assert steps == [1, 2, 3, 4, 5, 6]

        # A runner that stops mid-job (a server restart) leaves it RUNNING; the next resumes it.
        restarted = _job(jobs, good)
        await _until(jobs, restarted.id, {"RUNNING"}, runner)
        await runner.close()
        assert jobs.get(restarted.id).status == "RUNNING"
        jobs.update(restarted.id, lease_until=0)  # its lease ran out
        second = _runner(jobs, files, where, [])
        done = await _until(jobs, restarted.id, {"SUCCESS", "FAILED"}, second)
        assert done.status == "SUCCESS"
        await second.close()

    asyncio.run(go())
