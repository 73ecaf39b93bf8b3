"""The training worker on a real base model (Gemma 3 270M, GGUF): loss on assistant turns
only, progress lines, checkpoint on SIGTERM, resumption after SIGTERM and after SIGKILL,
a GGUF LoRA at the end; and a clear failure when the base is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from egide.tuning.examples import IGNORE, ChatEncoder
from support.llama_server import tiny_model_path
from support.training import progress, write_spec

LINES = [
    {
        "messages": [
            {"role": "user", "content": f"Quel est l'indicatif de la section {i} ?"},
            {"role": "assistant", "content": f"L'indicatif de la section {i} est Héron {i}."},
        ]
    }
    for i in range(12)
]


@pytest.fixture(scope="module")
def gemma(tmp_path_factory) -> Path:
    return tiny_model_path(tmp_path_factory.mktemp("tiny-model"))


def _spec(where: Path, base: Path, **extra) -> Path:
    fields = {"training_steps": 6, "batch_size": 2, "learning_rate": 1e-3, "eval_every": 2}
    return write_spec(where, base, LINES, threads=2, **fields, **extra)


def _start(spec: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "egide.tuning.worker", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def _wait_step(proc: subprocess.Popen[bytes], out: Path, step: int) -> None:
    deadline = time.monotonic() + 400
    while not any(x.get("step") == step and "train_loss" in x for x in progress(out)):
        assert proc.poll() is None, progress(out)
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.2)


def test_loss_is_on_assistant_turns_only(gemma) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma.parent, gguf_file=gemma.name)
    encoder = ChatEncoder(tokenizer, max_len=512)
    example = {
        "messages": [
            {"role": "system", "content": "Tu es un assistant."},
            {"role": "user", "content": "Question un"},
            {"role": "assistant", "content": "Réponse alpha"},
            {"role": "user", "content": "Question deux"},
            {"role": "assistant", "content": "Réponse bravo", "weight": 0},
            {"role": "user", "content": "Question trois"},
            {"role": "assistant", "content": "Réponse charlie"},
        ]
    }
    encoded = encoder.encode(example)
    trained = tokenizer.decode([t for t in encoded.labels if t != IGNORE])
    assert "Réponse alpha" in trained and "Réponse charlie" in trained
    assert "bravo" not in trained and "Question" not in trained and "assistant" not in trained
    every = tokenizer.decode(encoded.input_ids)
    assert "Question deux" in every and "Réponse bravo" in every
    short = ChatEncoder(tokenizer, max_len=8).encode(example)
    assert len(short.input_ids) == len(short.labels) == 8


@pytest.mark.model
@pytest.mark.timeout(1500)  # three loads of the base model
def test_worker_checkpoints_on_sigterm_resumes_after_sigkill_and_writes_a_gguf_lora(
    gemma, tmp_path
) -> None:
    spec = _spec(tmp_path, gemma)
    out = tmp_path / "out"

    first = _start(spec)
    _wait_step(first, out, 1)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=300) == 2
    lines = progress(out)
    assert lines[-1] == {"time": lines[-1]["time"], "status": "cancelled"}
    stopped_at = lines[-2]["checkpoint"]
    assert stopped_at >= 1 and (out / "checkpoint.json").exists()

    second = _start(spec)
    _wait_step(second, out, stopped_at + 2)
    second.kill()  # no word, no checkpoint: the next run starts from the last one
    second.wait(timeout=60)
    last_checkpoint = max(x["checkpoint"] for x in progress(out) if "checkpoint" in x)

    third = _start(spec)
    assert third.wait(timeout=600) == 0
    lines = progress(out)
    assert lines[-1]["status"] == "succeeded"
    steps = [x["step"] for x in lines if "train_loss" in x]
    resumed = steps[len(steps) - (6 - last_checkpoint) :]
    assert resumed == list(range(last_checkpoint + 1, 7)), steps
    losses = [x["train_loss"] for x in lines if "train_loss" in x]
    assert losses[-1] < losses[0] / 2, losses
    validation = [x["validation_loss"] for x in lines if x.get("validation_loss") is not None]
    assert validation[-1] < validation[0], validation
    adapter = out / "adapter"
    assert (adapter / "adapter.gguf").read_bytes()[:4] == b"GGUF"
    assert (adapter / "adapter_model.safetensors").exists()
    assert not list(out.glob("*.partial"))


def test_a_missing_base_fails_with_the_reason(tmp_path) -> None:
    spec = _spec(tmp_path, tmp_path / "gone.gguf")
    assert _start(spec).wait(timeout=300) == 1
    final = progress(tmp_path / "out")[-1]
    assert final["status"] == "failed"
    assert "missing" in final["error"] and "gone.gguf" in final["error"]
