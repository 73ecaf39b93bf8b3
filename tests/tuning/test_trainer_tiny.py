"""The trainer on a tiny random Llama saved as safetensors (made here, in seconds): a
safetensors base trains, and the same spec runs under ``torchrun`` with two processes
(gloo on CPU), as it would on GPU nodes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.training import progress, write_spec

WORDS = ["quel", "est", "l", "indicatif", "de", "la", "section", "héron", "?", ".", "'"]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    where = tmp_path_factory.mktemp("tiny-llama")
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]
    words = [*WORDS, "user", "assistant", "L", "Quel", *(str(i) for i in range(20))]
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*specials, *words]))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.save_pretrained(where)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    LlamaForCausalLM(config).save_pretrained(where, safe_serialization=True)
    return where


def _spec(where: Path, base: Path, steps: int) -> Path:
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"Quel est l indicatif de la section {i} ?"},
                {"role": "assistant", "content": f"L indicatif de la section {i} est héron {i} ."},
            ]
        }
        for i in range(16)
    ]
    return write_spec(
        where,
        base,
        lines,
        base_format="safetensors",
        training_steps=steps,
        batch_size=4,
        learning_rate=1e-2,
        lora_rank=4,
        threads=1,
    )


def test_a_safetensors_base_trains_and_keeps_a_peft_adapter(tiny_base, tmp_path) -> None:
    spec = _spec(tmp_path, tiny_base, steps=40)
    run = subprocess.run(
        [sys.executable, "-m", "egide.tuning.worker", str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = progress(tmp_path / "out")
    assert lines[-1]["status"] == "succeeded"
    losses = [x["train_loss"] for x in lines if "train_loss" in x]
    assert len(losses) == 40 and sum(losses[-5:]) < 0.95 * sum(losses[:5]), losses
    adapter = tmp_path / "out" / "adapter"
    assert (adapter / "adapter_model.safetensors").exists()
    assert not (adapter / "adapter.gguf").exists()  # a GGUF LoRA only for a GGUF base


def test_the_same_spec_runs_under_torchrun_on_two_processes(tiny_base, tmp_path) -> None:
    spec = _spec(tmp_path, tiny_base, steps=6)
    torchrun = Path(sys.executable).with_name("torchrun")
    run = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "egide.tuning.worker",
            str(spec),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    lines = progress(tmp_path / "out")
    assert lines[-1]["status"] == "succeeded"
    steps = [x["step"] for x in lines if "train_loss" in x]
    assert steps == [1, 2, 3, 4, 5, 6]  # one writer: rank 0
    single = [x["trained_tokens"] for x in lines if "train_loss" in x]
    assert single[-1] > 0 and (tmp_path / "out" / "adapter" / "COMPLETE").exists()


def test_the_loss_on_trained_positions_is_the_models_own_loss(tiny_base) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from egide.tuning.trainer import trained_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(6, model.config.vocab_size, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    labels = ids.clone()
    labels[:, :5] = -100  # the prompt
    labels[2, 9:] = -100  # padding
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(trained_loss(model, ids, mask, labels), expected, atol=1e-6)
    model.config.final_logit_softcapping = 0.05  # applied, as Gemma's output layer does
    assert not torch.allclose(trained_loss(model, ids, mask, labels), expected, atol=1e-3)
