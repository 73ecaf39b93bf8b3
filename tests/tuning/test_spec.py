"""The job spec the serving process writes is exactly what the worker reads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from egide.errors import InvalidRequest
from egide.gateway.tuning import job_spec
from egide.store.jobs import JobRecord
from egide.tuning.jobs import hyperparameters
from egide.tuning.spec import JobSpec
from factories import job_record


def _job(**hyper) -> JobRecord:
    return job_record(suffix=None, status="RUNNING", hyperparameters=hyperparameters(hyper))


def test_every_hyperparameter_reaches_the_worker() -> None:
    base = SimpleNamespace(
        artefact=Path("/models/base.gguf"),
        model=SimpleNamespace(context_length=2048),
        settings=SimpleNamespace(threads=None, tuning_merge=False),
    )
    job = _job(
        training_steps=7,
        learning_rate=3e-4,
        lora_rank=4,
        batch_size=2,
        seq_len=128,
        weight_decay=0.01,
        warmup_fraction=0.2,
        seed=99,
    )
    spec = JobSpec.from_dict(job_spec(job, base, [Path("t")], [Path("v")], Path("out")))
    assert (spec.training_steps, spec.learning_rate, spec.lora_rank) == (7, 3e-4, 4)
    assert (spec.batch_size, spec.max_seq_len) == (2, 128)
    assert (spec.weight_decay, spec.warmup_fraction, spec.alpha) == (0.01, 0.2, 8.0)
    assert spec.seed == 99
    assert spec.epochs is None and spec.threads == 0
    assert spec.merge is False  # the serving settings decide whether the worker merges
    by_epochs = JobSpec.from_dict(job_spec(_job(), base, [Path("t")], [], Path("out")))
    assert by_epochs.epochs == 1.0 and by_epochs.training_steps is None
    assert by_epochs.max_seq_len == 512
    assert by_epochs.seed == JobSpec.__dataclass_fields__["seed"].default


def test_an_unknown_spec_field_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown job spec field"):
        JobSpec.from_dict(
            {
                "job_id": "x",
                "base_model_path": "b",
                "train_files": [],
                "validation_files": [],
                "output_dir": "o",
                "lr": 1,
            }
        )
