"""Fine-tuning jobs in the shape of Mistral's ``/v1/fine_tuning/jobs``.

A job names a base model, training (and optionally validation) files and
hyperparameters. Its creator must be able to read every file; the job — and the model it
produces — is labelled with the join of the files' labels, and only callers whose
clearance dominates that label see it. Statuses:

    QUEUED → VALIDATING → VALIDATED → RUNNING → SUCCESS
                        ↘ FAILED_VALIDATION        ↘ FAILED
    any unfinished one → CANCELLED (RUNNING → CANCELLATION_REQUESTED → CANCELLED)

Every transition is guarded in the store (see :class:`~egide.store.jobs.JobRepository`) and
written to the audit log.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from egide.audit.events import TuningChange
from egide.errors import InvalidRequest, ModelNotFound
from egide.security.actions import Action
from egide.security.labels import Label, join_all
from egide.security.markings import render_compact
from egide.security.policy import Resource, decide
from egide.store.jobs import JobRecord, JobRepository
from egide.store.orgs import OrgRepository
from egide.tenancy import Caller
from egide.tenancy.guard import Guard
from egide.tuning.files import FileService

UNFINISHED = ("QUEUED", "VALIDATING", "VALIDATED")
FINAL = ("SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED")
_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_HYPER = {
    "training_steps": (int, 1, 100_000),
    "epochs": (float, 0.01, 100.0),
    "learning_rate": (float, 1e-7, 1.0),
    "lora_rank": (int, 1, 256),
    "seq_len": (int, 16, 32_768),
    "batch_size": (int, 1, 1024),
    "weight_decay": (float, 0.0, 1.0),
    "warmup_fraction": (float, 0.0, 1.0),
    "seed": (int, 0, 2**31 - 1),
}


@dataclass(frozen=True)
class JobRequest:
    model: str
    training_files: tuple[str, ...]
    validation_files: tuple[str, ...] = ()
    hyperparameters: tuple[tuple[str, Any], ...] = ()
    suffix: str | None = None
    auto_start: bool = True


def hyperparameters(given: dict[str, Any]) -> dict[str, Any]:
    """Checked hyperparameters with defaults; unknown names are refused, with the list."""
    unknown = sorted(set(given) - set(_HYPER) - {"fim_ratio"})
    if unknown:
        raise InvalidRequest(
            f"unknown hyperparameter(s) {', '.join(unknown)}; accepted: {', '.join(_HYPER)}",
            param="hyperparameters",
        )
    out: dict[str, Any] = {"learning_rate": 1e-4, "lora_rank": 8}
    for name, value in given.items():
        if value is None or name == "fim_ratio":
            continue
        kind, low, high = _HYPER[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"hyperparameters.{name} must be a number", param=name)
        if not low <= value <= high or (kind is int and value != int(value)):
            raise InvalidRequest(
                f"hyperparameters.{name} must be {'an integer' if kind is int else 'a number'} "
                f"between {low} and {high}",
                param=name,
            )
        out[name] = kind(value)
    if "training_steps" not in out and "epochs" not in out:
        out["epochs"] = 1.0
    return out


class JobService:
    def __init__(
        self,
        jobs: JobRepository,
        files: FileService,
        orgs: OrgRepository,
        guard: Guard,
        base_models: Callable[[], Iterable[str]],
    ) -> None:
        self.jobs = jobs
        self.files = files
        self.orgs = orgs
        self.guard = guard
        self.base_models = base_models

    def _label(self, job: JobRecord) -> Label:
        return self.files.label(job.label)

    def _resource(self, job: JobRecord) -> Resource:
        path = self.orgs.get(job.owner_org).lineage if job.owner_org else ()
        return Resource("fine-tuning-job", path, self._label(job), owner=job.created_by)

    def create(self, caller: Caller, request: JobRequest) -> JobRecord:
        if request.model not in set(self.base_models()):
            known = ", ".join(sorted(self.base_models())) or "none"
            raise ModelNotFound(
                f"{request.model!r} cannot be fine-tuned here; base models: {known}",
                param="model",
            )
        if not request.training_files:
            raise InvalidRequest("a job needs at least one training file", param="training_files")
        if request.suffix is not None and not _SUFFIX.match(request.suffix):
            raise InvalidRequest(
                "suffix must be 1-32 lowercase letters, digits or '-'", param="suffix"
            )
        hyper = hyperparameters(dict(request.hyperparameters))
        # Every file must be readable by the creator (each decision audited).
        files = [
            self.files.open(caller, file_id)
            for file_id in (*request.training_files, *request.validation_files)
        ]
        label = join_all(self.files.label(f.label) for f in files)
        now = int(time.time())
        job = JobRecord(
            id=f"ftjob-{secrets.token_hex(12)}",
            model=request.model,
            suffix=request.suffix,
            status="QUEUED",
            auto_start=request.auto_start,
            owner_org=caller.org_id,
            created_by=caller.principal.user_id,
            label=render_compact(label),
            training_files=list(request.training_files),
            validation_files=list(request.validation_files),
            hyperparameters=hyper,
            created_at=now,
            modified_at=now,
        )
        self.guard.check(caller, Action.FILE_READ, self._resource(job), f"job:{job.id}")
        self.jobs.add(job)
        self.changed(caller, "job-created", job, f"QUEUED on {job.model}")
        return job

    def visible(self, caller: Caller, job: JobRecord) -> bool:
        decision = decide(
            caller.principal, Action.FILE_READ, self._resource(job), ceiling=self.guard.ceiling
        )
        return decision.allowed

    def listing(self, caller: Caller) -> list[JobRecord]:
        return [j for j in self.jobs.all() if self.visible(caller, j)]

    def open(self, caller: Caller, job_id: str) -> JobRecord:
        job = self.jobs.get(job_id)
        self.guard.check(caller, Action.FILE_READ, self._resource(job), f"job:{job_id}")
        return job

    def start(self, caller: Caller, job_id: str) -> JobRecord:
        """Start a job created with ``auto_start: false`` once it is validated (or let it
        start on its own when validation ends)."""
        job = self.open(caller, job_id)
        if job.auto_start and job.status != "VALIDATED":
            return job
        if job.status == "VALIDATED":
            moved = self.jobs.transition(job_id, ("VALIDATED",), "RUNNING")
        else:
            self.jobs.update(job_id, auto_start=1)
            moved = self.jobs.get(job_id)
        self.changed(caller, "job-transition", moved, f"start requested ({job.status})")
        return moved

    def cancel(self, caller: Caller, job_id: str) -> JobRecord:
        job = self.open(caller, job_id)
        if job.status == "RUNNING":
            moved = self.jobs.transition(job_id, ("RUNNING",), "CANCELLATION_REQUESTED")
        else:
            moved = self.jobs.transition(job_id, UNFINISHED, "CANCELLED")
        self.changed(caller, "job-transition", moved, f"{job.status} -> {moved.status}")
        return moved

    def changed(self, caller: Caller | None, kind: str, job: JobRecord, summary: str) -> None:
        p = caller.principal if caller else None
        self.guard.audit.append(
            TuningChange(
                actor=p.user_id if p else "egide-tuning",
                org_path="/".join(p.org_path) if p else "",
                request_id=caller.request_id if caller else "",
                kind=kind,  # type: ignore[arg-type]
                target=job.id,
                label=job.label,
                summary=summary,
            )
        )
