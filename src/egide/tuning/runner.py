"""The job runner: moves fine-tuning jobs through validation and training.

One asyncio task per serving process. Each pass it:

- claims QUEUED jobs (the guarded QUEUED → VALIDATING transition: one process wins),
  validates every file (:mod:`egide.tuning.datasets`), splits off a validation set when
  none was given, writes the job's spec, and marks it VALIDATED or FAILED_VALIDATION;
- starts VALIDATED jobs that may start (``auto_start``, or ``start`` was called) as a
  separate worker process (``python -m <worker> spec.json``), so that training never
  competes with the gateway's event loop;
- follows the worker's ``progress.jsonl`` into the job's metrics and events;
- on the worker's final line: SUCCESS (after ``on_success`` registered the model), FAILED
  with its reason, or CANCELLED when a cancellation was requested;
- stops the worker of a job whose cancellation was requested (SIGTERM: it checkpoints);
- resumes RUNNING jobs nobody runs (a restart, a dead worker): the worker resumes from its
  last checkpoint; a job that keeps dying fails with the reason instead of staying RUNNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egide.errors import Conflict, EgideError
from egide.store.files import FileRepository
from egide.store.jobs import JobRecord, JobRepository
from egide.tuning import datasets

log = logging.getLogger("egide.tuning")
MAX_ATTEMPTS = 3

# (job, adapter directory) → the registered model id; raises EgideError on failure.
OnSuccess = Callable[[JobRecord, Path], Awaitable[str]]
SpecFor = Callable[[JobRecord, list[Path], list[Path], Path], dict[str, Any]]


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    progress: Path
    offset: int = 0
    cancelling: bool = False
    lines: list[dict[str, Any]] = field(default_factory=list)


class JobRunner:
    def __init__(
        self,
        jobs: JobRepository,
        files: FileRepository,
        directory: Path,
        *,
        count_tokens: Callable[[str, str], int],
        context_length: Callable[[str], int],
        spec_for: SpecFor,
        on_success: OnSuccess,
        changed: Callable[[JobRecord, str], None],
        on_pass: Callable[[], Awaitable[None]] | None = None,
        worker_module: str = "egide.tuning.worker",
        requires: tuple[str, ...] = ("torch", "transformers", "peft", "gguf"),
        poll_s: float = 1.0,
    ) -> None:
        self.jobs = jobs
        self.files = files
        self.directory = directory
        self.count_tokens = count_tokens
        self.context_length = context_length
        self.spec_for = spec_for
        self.on_success = on_success
        self.changed = changed
        self.on_pass = on_pass
        self.worker_module = worker_module
        self.requires = requires
        self.poll_s = poll_s
        self._workers: dict[str, _Worker] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="egide-tuning")

    async def close(self) -> None:
        """Stop following jobs; workers are asked to checkpoint and stop, and their jobs
        stay RUNNING: the next start resumes them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        for worker in self._workers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(worker.process.wait, 60)
        self._workers.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the fine-tuning runner failed a pass; retrying")
            await asyncio.sleep(self.poll_s)

    async def step(self) -> None:
        """One pass over every job that needs something."""
        if self.on_pass is not None:
            await self.on_pass()
        for job in await asyncio.to_thread(self.jobs.with_status, "QUEUED"):
            await self._validate(job)
        for job in await asyncio.to_thread(self.jobs.with_status, "VALIDATED"):
            if job.auto_start:
                await self._launch(job, "VALIDATED")
        running = await asyncio.to_thread(
            self.jobs.with_status, "RUNNING", "CANCELLATION_REQUESTED"
        )
        for job in running:
            if job.id in self._workers:
                await self._follow(job)
            elif job.lease_until < time.time():
                await self._launch(job, job.status)

    # -- validation ---------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.directory / job_id

    async def _validate(self, job: JobRecord) -> None:
        try:
            job = await asyncio.to_thread(self.jobs.transition, job.id, ("QUEUED",), "VALIDATING")
        except Conflict:
            return  # another process took it
        self.changed(job, "QUEUED -> VALIDATING")
        problems = await asyncio.to_thread(self._check_files, job)
        if problems:
            failed = await asyncio.to_thread(
                self.jobs.transition,
                job.id,
                ("VALIDATING",),
                "FAILED_VALIDATION",
                error=problems,
            )
            self.changed(failed, f"VALIDATING -> FAILED_VALIDATION: {problems}")
            return
        done = await asyncio.to_thread(self.jobs.transition, job.id, ("VALIDATING",), "VALIDATED")
        self.changed(done, "VALIDATING -> VALIDATED")

    def _check_files(self, job: JobRecord) -> str:
        context = self.context_length(job.model)
        tokens = 0
        problems = []
        for file_id in (*job.training_files, *job.validation_files):
            data = self.files.read(file_id)
            report = datasets.validate(
                data, lambda text: self.count_tokens(job.model, text), context
            )
            if not report.valid:
                problems.append(f"{file_id}: {report.summary()}")
            tokens += report.tokens
        if problems:
            return "; ".join(problems)
        self.jobs.update(job.id, metrics={"data_tokens": tokens})
        return ""

    # -- the worker ---------------------------------------------------------------------

    def _prepare(self, job: JobRecord) -> Path:
        """The job directory with its data (split if needed) and spec; kept on resume."""
        where = self.job_dir(job.id)
        spec_path = where / "spec.json"
        if spec_path.exists():
            return spec_path
        data = where / "data"
        data.mkdir(parents=True, exist_ok=True)
        train = [self.files.path(f) for f in job.training_files]
        validation = [self.files.path(f) for f in job.validation_files]
        if not validation:
            joined = b"\n".join(self.files.read(f).rstrip(b"\n") for f in job.training_files)
            train_bytes, val_bytes = datasets.split(joined, 0.1, job.id)
            (data / "train.jsonl").write_bytes(train_bytes)
            (data / "validation.jsonl").write_bytes(val_bytes)
            train, validation = [data / "train.jsonl"], [data / "validation.jsonl"]
        spec = self.spec_for(job, train, validation, where / "output")
        partial = spec_path.with_suffix(".partial")
        partial.write_text(json.dumps(spec, indent=2))
        partial.replace(spec_path)
        return spec_path

    async def _launch(self, job: JobRecord, status: str) -> None:
        modules = (self.worker_module, *self.requires)
        if any(importlib.util.find_spec(m) is None for m in modules):
            await self._finish(
                job,
                "FAILED",
                "this installation cannot train: install the 'tuning' extra "
                "(pip install 'egide[tuning]') on the serving machine, then create the job again",
            )
            return
        attempts = int(job.metrics.get("attempts", 0))
        if attempts >= MAX_ATTEMPTS:
            await self._finish(job, "FAILED", f"the worker stopped {attempts} times; see its log")
            return
        try:
            if status == "VALIDATED":
                job = await asyncio.to_thread(
                    self.jobs.transition,
                    job.id,
                    ("VALIDATED",),
                    "RUNNING",
                    lease_until=int(time.time() + 60),
                )
                self.changed(job, "VALIDATED -> RUNNING")
            spec_path = await asyncio.to_thread(self._prepare, job)
        except Conflict:
            return
        metrics = {**job.metrics, "attempts": attempts + 1}
        await asyncio.to_thread(
            self.jobs.update, job.id, metrics=metrics, lease_until=int(time.time() + 60)
        )
        progress = spec_path.parent / "output" / "progress.jsonl"
        log_file = (spec_path.parent / "worker.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", self.worker_module, str(spec_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        log_file.close()
        # A resumed worker appends to the same progress file: follow only the new lines.
        offset = progress.stat().st_size if progress.exists() else 0
        self._workers[job.id] = _Worker(process, progress, offset)
        if job.status == "CANCELLATION_REQUESTED":
            self._workers[job.id].cancelling = True
            process.send_signal(signal.SIGTERM)

    async def _follow(self, job: JobRecord) -> None:
        worker = self._workers[job.id]
        if job.status == "CANCELLATION_REQUESTED" and not worker.cancelling:
            worker.cancelling = True
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        final = await asyncio.to_thread(self._read_progress, job, worker)
        exited = worker.process.poll() is not None
        if final is None and not exited:
            await asyncio.to_thread(self.jobs.update, job.id, lease_until=int(time.time() + 60))
            return
        if final is None:
            # Died without a word (killed, out of memory): resume from its checkpoint.
            del self._workers[job.id]
            await asyncio.to_thread(self.jobs.update, job.id, lease_until=0)
            return
        await asyncio.to_thread(worker.process.wait)
        del self._workers[job.id]
        status = final.get("status")
        if status == "succeeded":
            try:
                model = await self.on_success(job, worker.progress.parent / "adapter")
            except EgideError as exc:
                await self._finish(job, "FAILED", f"the adapter could not be served: {exc.message}")
                return
            await self._finish(job, "SUCCESS", None, fine_tuned_model=model)
        elif status == "cancelled" and job.status == "CANCELLATION_REQUESTED":
            await self._finish(job, "CANCELLED", None)
        elif status == "cancelled":
            await asyncio.to_thread(self.jobs.update, job.id, lease_until=0)  # resume it
        else:
            await self._finish(job, "FAILED", str(final.get("error") or "the worker failed"))

    def _read_progress(self, job: JobRecord, worker: _Worker) -> dict[str, Any] | None:
        if not worker.progress.exists():
            return None
        with worker.progress.open("rb") as stream:
            stream.seek(worker.offset)
            chunk = stream.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        worker.offset += len(complete)
        final = None
        metrics = dict(job.metrics)
        for raw in complete.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if "status" in line:
                final = line
                continue
            metrics.update({k: v for k, v in line.items() if k != "time"})
            if "validation_loss" in line or "checkpoint" in line:
                name = "checkpoint" if "checkpoint" in line else "evaluation"
                self.jobs.add_event(job.id, name, {**metrics, **line})
        tokens = metrics.get("trained_tokens")
        self.jobs.update(
            job.id,
            metrics=metrics,
            trained_tokens=int(tokens) if tokens is not None else job.trained_tokens,
        )
        return final

    async def _finish(self, job: JobRecord, to: str, error: str | None, **changes: Any) -> None:
        allowed = ("RUNNING", "CANCELLATION_REQUESTED", "VALIDATED")
        try:
            done = await asyncio.to_thread(
                self.jobs.transition, job.id, allowed, to, error=error, **changes
            )
        except Conflict:
            return
        self.changed(done, f"{job.status} -> {to}" + (f": {error}" if error else ""))
