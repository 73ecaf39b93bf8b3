"""Compose the fine-tuning job runner: base models from the served backends, jobs'
directories in the state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from egide.backends import Backend
from egide.config import Settings
from egide.gateway.finetuned import FineTunedModels
from egide.store import Database
from egide.store.files import FileRepository
from egide.store.jobs import JobRecord, JobRepository
from egide.tuning.jobs import JobService
from egide.tuning.runner import JobRunner


def job_spec(
    job: JobRecord, base: Backend, train: list[Path], validation: list[Path], output: Path
) -> dict[str, Any]:
    """The worker's spec (``egide.tuning.spec.JobSpec`` fields) for ``job`` on ``base``."""
    hyper = job.hyperparameters
    return {
        "job_id": job.id,
        "base_model_path": str(base.artefact),
        "base_format": "gguf",
        "train_files": [str(p) for p in train],
        "validation_files": [str(p) for p in validation],
        "output_dir": str(output),
        "training_steps": hyper.get("training_steps"),
        "epochs": None if "training_steps" in hyper else hyper.get("epochs"),
        "learning_rate": hyper["learning_rate"],
        "lora_rank": hyper["lora_rank"],
        # Absent: the worker's defaults (``JobSpec``).
        "batch_size": hyper.get("batch_size"),
        "max_seq_len": hyper.get("seq_len", min(512, base.model.context_length)),
        "weight_decay": hyper.get("weight_decay"),
        "warmup_fraction": hyper.get("warmup_fraction"),
        "seed": hyper.get("seed"),
        "threads": base.settings.threads,
        "merge": base.settings.tuning_merge,
    }


def build_runner(
    settings: Settings,
    db: Database,
    backends: dict[str, Backend],
    jobs: JobService,
    finetuned: FineTunedModels,
) -> JobRunner:
    return JobRunner(
        JobRepository(db),
        FileRepository(db, settings.home / "files"),
        settings.home / "tuning",
        count_tokens=lambda model, text: backends[model].count_tokens(text),
        context_length=lambda model: backends[model].model.context_length,
        spec_for=lambda job, train, val, out: job_spec(job, backends[job.model], train, val, out),
        on_success=finetuned.register,
        on_pass=finetuned.sync,
        changed=lambda job, summary: jobs.changed(None, "job-transition", job, summary),
    )
