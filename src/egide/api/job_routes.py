"""``/v1/fine_tuning/jobs`` in Mistral's shape (OpenAI's single ``training_file`` and
``n_epochs`` are accepted too). Thin handlers around :class:`~egide.tuning.jobs.JobService`."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from egide.api.body import read_json
from egide.api.routes import endpoint, request_id
from egide.errors import InvalidRequest
from egide.gateway import Runtime
from egide.store.jobs import JobRecord
from egide.tenancy import Caller
from egide.tuning.jobs import JobRequest, JobService


class TrainingFileRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    file_id: str
    weight: float = 1.0


class JobBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    training_files: list[TrainingFileRef | str] = Field(default_factory=list)
    training_file: str | None = None
    validation_files: list[str] | None = None
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    suffix: str | None = None
    auto_start: bool = True

    def request(self) -> JobRequest:
        for ref in self.training_files:
            # Refused rather than silently ignored: every example counts once an epoch.
            if not isinstance(ref, str) and ref.weight != 1.0:
                raise InvalidRequest(
                    f"training file {ref.file_id!r} has weight {ref.weight}, but only 1 is "
                    "supported: every file's examples count once an epoch; to weight a "
                    "file up, repeat its lines in the file, then send weight 1",
                    param="training_files",
                )
        training = [f if isinstance(f, str) else f.file_id for f in self.training_files]
        if self.training_file:
            training.append(self.training_file)
        validation = list(self.validation_files or [])
        if self.validation_file:
            validation.append(self.validation_file)
        hyper = dict(self.hyperparameters)
        if "n_epochs" in hyper:  # OpenAI's name
            hyper["epochs"] = hyper.pop("n_epochs")
        for openai_only in ("learning_rate_multiplier",):
            hyper.pop(openai_only, None)
        return JobRequest(
            self.model,
            tuple(training),
            tuple(validation),
            tuple(sorted(hyper.items())),
            self.suffix,
            self.auto_start,
        )


def _jobs(request: Request) -> tuple[JobService, Caller, Runtime]:
    runtime: Runtime = request.app.state.runtime
    caller = runtime.auth.authenticate(request.headers.get("authorization"), request_id(request))
    return runtime.jobs, caller, runtime


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), 200, media_type="application/json")


def job_json(job: JobRecord, service: JobService | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.id,
        "object": "job",
        "job_type": "completion",
        "auto_start": job.auto_start,
        "model": job.model,
        "status": job.status,
        "created_at": job.created_at,
        "modified_at": job.modified_at,
        "training_files": job.training_files,
        "validation_files": job.validation_files,
        "hyperparameters": job.hyperparameters,
        "fine_tuned_model": job.fine_tuned_model,
        "suffix": job.suffix,
        "integrations": [],
        "repositories": [],
        "trained_tokens": job.trained_tokens,
        "metadata": {},
        "label": job.label,
        "error": job.error,
        "metrics": job.metrics,
    }
    if service is not None:
        events = service.jobs.events(job.id)
        body["events"] = [
            {"name": e.name, "created_at": e.created_at, "data": e.data} for e in events
        ]
        body["checkpoints"] = [
            {
                "step_number": e.data.get("step", 0),
                "created_at": e.created_at,
                "metrics": {
                    "train_loss": e.data.get("train_loss"),
                    "valid_loss": e.data.get("validation_loss"),
                },
            }
            for e in events
            if e.name == "checkpoint"
        ]
    return body


@endpoint
async def create_job(request: Request) -> Response:
    jobs, caller, runtime = _jobs(request)
    body = JobBody.model_validate(await read_json(request, runtime.settings.max_body_bytes))
    job = await run_in_threadpool(jobs.create, caller, body.request())
    return _json(job_json(job))


@endpoint
async def list_jobs(request: Request) -> Response:
    jobs, caller, _ = _jobs(request)
    found = await run_in_threadpool(jobs.listing, caller)
    data = [job_json(j) for j in found]
    return _json({"object": "list", "data": data, "total": len(data), "has_more": False})


@endpoint
async def get_job(request: Request) -> Response:
    jobs, caller, _ = _jobs(request)
    job = await run_in_threadpool(jobs.open, caller, request.path_params["job_id"])
    return _json(job_json(job, jobs))


@endpoint
async def start_job(request: Request) -> Response:
    jobs, caller, _ = _jobs(request)
    job = await run_in_threadpool(jobs.start, caller, request.path_params["job_id"])
    return _json(job_json(job, jobs))


@endpoint
async def cancel_job(request: Request) -> Response:
    jobs, caller, _ = _jobs(request)
    job = await run_in_threadpool(jobs.cancel, caller, request.path_params["job_id"])
    return _json(job_json(job, jobs))


_JOB = "/v1/fine_tuning/jobs/{job_id}"
ROUTES = [
    Route("/v1/fine_tuning/jobs", create_job, methods=["POST"]),
    Route("/v1/fine_tuning/jobs", list_jobs, methods=["GET"]),
    Route(_JOB, get_job, methods=["GET"]),
    Route(_JOB + "/start", start_job, methods=["POST"]),
    Route(_JOB + "/cancel", cancel_job, methods=["POST"]),
]
