"""Building blocks for tests of the training worker: a spec with its data, and the
progress lines the worker wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_spec(where: Path, base: Path, lines: list[dict[str, Any]], **fields: Any) -> Path:
    """``where/spec.json`` training on ``lines`` (also the validation set), output in
    ``where/out``; ``fields`` add to or override the spec."""
    train = where / "train.jsonl"
    train.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    spec = {
        "job_id": "test",
        "base_model_path": str(base),
        "train_files": [str(train)],
        "validation_files": [str(train)],
        "output_dir": str(where / "out"),
        "max_seq_len": 64,
        **fields,
    }
    path = where / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def progress(out: Path) -> list[dict[str, Any]]:
    """The progress lines in ``out`` (none before the worker wrote any)."""
    path = out / "progress.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
