"""Serve the adapters that fine-tuning jobs produce, at once and in every process.

When a job's worker succeeds, :meth:`FineTunedModels.register` copies its GGUF LoRA —
and the base with that LoRA merged into its weights, when the worker wrote one
(``tuning_merge``) — into ``$EGIDE_HOME/models/adapters`` (under a temporary name, renamed
once complete and verified), records each with its sha256 in the artefact registry, and
starts an engine for ``ft:<base>:<suffix>:<job>``: on the merged weights, which serve at
the base's speed, or else the adapter on top of the base's shared weights. The model is
labelled with the job's label. Only then does the job become SUCCESS, so a model is
never listed half-written.

:meth:`FineTunedModels.sync` serves every succeeded job's model that this process does
not serve yet — at start, and on every pass of the job runner, so a model registered by
another process sharing the state is served here too. Its adapter is verified against
the recorded digests first: an altered file is refused and logged, never loaded.
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
from egide.registry.artefacts import merged_id
from egide.store.artefacts import ArtefactRecord
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
        model_id = fine_tuned_id(job)
        merged = None
        if (adapter_dir / "merged.gguf").is_file():
            merged = self.directory / f"{job.id}.merged.gguf"
            await self._install(job, merged_id(model_id), adapter_dir / "merged.gguf", merged)
        target = self.directory / f"{job.id}.gguf"
        sha = await self._install(job, model_id, source, target)
        await self._serve(job, model_id, target, sha, merged)
        return model_id

    async def _install(self, job: JobRecord, artefact_id: str, source: Path, target: Path) -> str:
        """Copy a worker's GGUF into place and record it with the digest the worker wrote."""
        digest_file = source.with_name(source.name + ".sha256")
        expected = digest_file.read_text().strip() if digest_file.exists() else None
        await asyncio.to_thread(_install, source, target)
        return await asyncio.to_thread(
            self.registry.adapter, artefact_id, target, expected, f"fine-tune:{job.id}"
        )

    async def sync(self) -> None:
        """Serve every succeeded job's model that is not served here yet."""
        for job in await asyncio.to_thread(self.jobs.with_status, "SUCCESS"):
            model_id = job.fine_tuned_model
            if not model_id or model_id in self.backends or model_id in self._refused:
                continue
            record = await asyncio.to_thread(self.registry.repo.get, model_id)
            merged = await asyncio.to_thread(self.registry.repo.get, merged_id(model_id))
            try:
                if record is None:
                    raise ArtefactRejected(f"no artefact is recorded for {model_id!r}")
                if merged is not None:
                    await asyncio.to_thread(self._verify, merged)
                sha = await asyncio.to_thread(self._verify, record)
                await self._serve(job, model_id, record.path, sha, merged.path if merged else None)
            except EgideError as exc:
                self._refused.add(model_id)
                log.error("fine-tuned model %s is not served: %s", model_id, exc.message)

    def _verify(self, record: ArtefactRecord) -> str:
        return self.registry.adapter(record.id, record.path, record.sha256, record.source)

    async def _serve(
        self, job: JobRecord, model_id: str, adapter: Path, sha: str, merged: Path | None
    ) -> None:
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
                    "merged": str(merged) if merged else None,
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
            how = "merged into" if merged else "on"
            log.info("serving %s (%s %s %s)", model_id, adapter.name, how, job.model)


def _install(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` durably; a partial copy never has the final name.

    The job's directory is usually on the same file system: a hard link then installs a
    merged model (the size of the base) without copying it. Its digest is checked
    whichever way it came, before it is served."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and os.path.samefile(source, target):
        return  # already linked (a rename between two links of one file would do nothing)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
        with partial.open("rb") as stream:
            os.fsync(stream.fileno())
    os.replace(partial, target)
