"""Training checkpoints as safetensors, switched to atomically.

``checkpoint-<step>/`` holds the adapter's weights (``adapter.safetensors``), the
optimizer's moments (``optimizer.safetensors``) and ``state.json`` (step and tokens: the
learning rate is a function of the step); ``checkpoint.json`` names the current one and
is replaced only once the new directory is complete, so a worker killed while saving
resumes from the previous checkpoint. No pickle is written or read.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def _trainable(model: Any) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def save_checkpoint(out: Path, model: Any, optimizer: Any, step: int, tokens: int) -> None:
    where = out / f"checkpoint-{step}"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    params = _trainable(model)
    save_file({n: p.detach().cpu().contiguous() for n, p in params}, where / "adapter.safetensors")
    moments: dict[str, torch.Tensor] = {}
    for n, p in params:
        for key, value in optimizer.state.get(p, {}).items():
            moments[f"{n}::{key}"] = value.detach().cpu().reshape(value.shape).contiguous()
    save_file(moments, where / "optimizer.safetensors")
    state = {"step": step, "tokens": tokens}
    (where / "state.json").write_text(json.dumps(state))
    pointer = out / "checkpoint.json"
    partial = pointer.with_suffix(".partial")
    partial.write_text(json.dumps({"directory": where.name}))
    os.replace(partial, pointer)
    for old in out.glob("checkpoint-*"):
        if old != where:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out: Path, model: Any, optimizer: Any) -> tuple[int, int]:
    """Restore the last checkpoint into model and optimizer; (step, tokens),
    or (0, 0) when there is none."""
    pointer = out / "checkpoint.json"
    if not pointer.exists():
        return 0, 0
    where = out / json.loads(pointer.read_text())["directory"]
    state = json.loads((where / "state.json").read_text())
    weights = load_file(where / "adapter.safetensors")
    moments = load_file(where / "optimizer.safetensors")
    with torch.no_grad():
        for n, p in _trainable(model):
            p.copy_(weights[n].to(p.device, p.dtype))
            restored = {
                key.split("::", 1)[1]: value.to(p.device)
                for key, value in moments.items()
                if key.split("::", 1)[0] == n
            }
            if restored:
                optimizer.state[p] = restored
    return int(state["step"]), int(state["tokens"])
