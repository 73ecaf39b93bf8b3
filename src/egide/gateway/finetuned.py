"""Serve the adapters that fine-tuning jobs produce, at once and in every process.

When a job's worker succeeds, :meth:`FineTunedModels.register` copies its GGUF LoRA into
``$EGIDE_HOME/models/adapters`` (under a temporary name, renamed once complete and
verified), records it with its sha256 in the artefact registry, and starts an engine for
``ft:<base>:<suffix>:<job>`` on top of the base's weights, labelled with the job's label.
Only then does the job become SUCCESS, so a model is never listed half-written.

:meth:`FineTunedModels.sync` serves every succeeded job's model that this process does
not serve yet — at start, and on every pass of the job runner, so a model registered by
another process sharing the state is served here too. Its adapter is verified against
the recorded digest first: an altered file is refused and logged, never loaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

from egide.backends import Backend, backend_class
from egide.config import Settings
from egide.errors import ArtefactRejected, EgideError
from egide.gateway.labels import LabelGuard
from egide.registry import ArtefactRegistry
from egide.store.jobs import JobRecord, JobRepository
from egide.store.orgs import OrgRepository

log = logging.getLogger("egide.tuning")


def fine_tuned_id(job: JobRecord) -> str:
    """Mistral's shape: ``ft:<base>:<suffix>:<job>``."""
    return f"ft:{job.model}:{job.suffix or 'model'}:{job.id.removeprefix('ftjob-')[:8]}"


class FineTunedModels:
    def __init__(
        self,
        settings: Settings,
        jobs: JobRepository,
        registry: ArtefactRegistry,
        backends: dict[str, Backend],
        guard: LabelGuard,
        orgs: OrgRepository,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.orgs = orgs
        self.jobs = jobs
        self.registry = registry
        self.backends = backends
        self.directory = settings.home / "models" / "adapters"
        self._refused: set[str] = set()
        self._lock = asyncio.Lock()

    async def register(self, job: JobRecord, adapter_dir: Path) -> str:
        """Install, record and serve the adapter of a succeeded job; its model id."""
        source = adapter_dir / "adapter.gguf"
        if not source.is_file():
            raise ArtefactRejected(
                f"the worker left no GGUF adapter in {adapter_dir}; the base must be a GGUF "
                "model served by the embedded engine"
            )
        digest_file = adapter_dir / "adapter.gguf.sha256"
        expected = digest_file.read_text().strip() if digest_file.exists() else None
        model_id = fine_tuned_id(job)
        target = self.directory / f"{job.id}.gguf"
        await asyncio.to_thread(_install, source, target)
        sha = await asyncio.to_thread(
            self.registry.adapter, model_id, target, expected, f"fine-tune:{job.id}"
        )
        await self._serve(job, model_id, target, sha)
        return model_id

    async def sync(self) -> None:
        """Serve every succeeded job's model that is not served here yet."""
        for job in await asyncio.to_thread(self.jobs.with_status, "SUCCESS"):
            model_id = job.fine_tuned_model
            if not model_id or model_id in self.backends or model_id in self._refused:
                continue
            record = await asyncio.to_thread(self.registry.repo.get, model_id)
            try:
                if record is None:
                    raise ArtefactRejected(f"no artefact is recorded for {model_id!r}")
                sha = await asyncio.to_thread(
                    self.registry.adapter, model_id, record.path, record.sha256, record.source
                )
                await self._serve(job, model_id, record.path, sha)
            except EgideError as exc:
                self._refused.add(model_id)
                log.error("fine-tuned model %s is not served: %s", model_id, exc.message)

    async def _serve(self, job: JobRecord, model_id: str, adapter: Path, sha: str) -> None:
        async with self._lock:
            if model_id in self.backends:
                return
            base = self.backends.get(job.model)
            if base is None:
                raise ArtefactRejected(
                    f"{model_id!r} adapts {job.model!r}, which this instance does not serve"
                )
            model = base.model.model_copy(
                update={
                    "id": model_id,
                    "lora": str(adapter),
                    "lora_sha256": sha,
                    "label": job.label,
                    "root": job.model,
                    "job": job.id,
                    "parallel": min(base.model.parallel, 2),
                    "queue_size": min(base.model.queue_size, 8),
                }
            )
            backend = backend_class(base.model.backend)(model, self.settings, base.artefact)
            await backend.start()
            owner = job.owner_org
            if owner:  # for the organisation that trained it and its branch
                org = await asyncio.to_thread(self.orgs.get, owner)
                self.guard.model_scopes[model_id] = tuple(org.lineage)
            self.backends[model_id] = backend
            log.info("serving %s (%s on %s)", model_id, adapter.name, job.model)


def _install(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` durably; a partial copy never has the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    with partial.open("rb") as stream:
        os.fsync(stream.fileno())
    os.replace(partial, target)
