"""The training job spec: what a worker needs to train one adapter, as plain JSON.

The serving process writes it (``<job dir>/spec.json``); a worker reads it, on the same
machine (``python -m egide.tuning.worker spec.json``) or on GPU nodes
(``torchrun --nproc-per-node N -m egide.tuning.worker spec.json``). It holds paths and
numbers only, no secret and no database handle, so a spec can be copied to another node
with its data files and run there unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from egide.errors import InvalidRequest

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    base_model_path: str  # a GGUF file, or a directory of safetensors weights
    train_files: list[str]
    validation_files: list[str]
    output_dir: str
    learning_rate: float = 1e-4
    lora_rank: int = 8
    lora_alpha: float | None = None  # default: 2 × rank
    target_modules: list[str] = field(default_factory=lambda: [*ATTENTION, *MLP])
    training_steps: int | None = None
    epochs: float | None = None
    batch_size: int = 4
    max_seq_len: int = 512
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    eval_every: int = 0  # steps between validations and checkpoints; 0: about 5 per job
    seed: int = 1234
    threads: int = 0  # CPU threads for torch; 0: every core
    base_format: str = "gguf"
    merge: bool = True  # also write the base with the adapter merged (served faster)

    @property
    def alpha(self) -> float:
        return self.lora_alpha if self.lora_alpha is not None else 2.0 * self.lora_rank

    @property
    def output(self) -> Path:
        return Path(self.output_dir)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequest(f"unknown job spec field(s): {', '.join(unknown)}")
        values = {k: v for k, v in data.items() if v is not None}
        if not values.get("training_steps") and not values.get("epochs"):
            values["epochs"] = 1.0
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> JobSpec:
        return cls.from_dict(json.loads(path.read_text()))
