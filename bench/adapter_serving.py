"""Serving speed of a fine-tuned model vs its base alone.

All are served by Égide's embedded engine in one process (requests through the ASGI
app): the packaged Qwen2.5-Coder-0.5B-Instruct; the same weights with a GGUF LoRA of rank
16 on every attention and MLP projection of every block — the shape of adapter a
fine-tuning job produces, written by Égide's converter from random PEFT tensors (speed
does not depend on the values) — applied at every step; and that adapter merged into the
base by Égide's merger, which is how a fine-tuned model is served by default. One request
at a time, temperature 0, 128 tokens, the same prompts; the models alternate within each
round, in a rotating order.

Judged by: fine-tuned (merged) tokens/s ÷ base tokens/s (goal ≥ 0.9); the unmerged
adapter's ratio is printed too.

    .venv/bin/python bench/adapter_serving.py --rounds 5   # about 10 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from egide.config import load_settings
from egide.tuning.gguf_lora import base_info, convert
from egide.tuning.gguf_merge import merge
from inprocess import admin_client, packaged_chat_model

BASE = "qwen2.5-coder-0.5b-instruct"
ADAPTED = "qwen-lora"
MERGED = "qwen-merged"
MODELS = (BASE, ADAPTED, MERGED)
PROMPTS = [
    "Explique en détail le fonctionnement d'un moteur diesel.",
    "Write a long description of how a convoy is organised.",
    "Décris les étapes de maintenance d'un groupe électrogène.",
    "List and explain twenty safety rules for a fuel depot.",
]
NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def synthetic_adapter(base: Path, where: Path, rank: int, targets: set[str]) -> Path:
    from safetensors.numpy import save_file

    _, shapes, _ = base_info(base)
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in shapes.items():
        parts = name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in targets or len(shape) != 2:
            continue
        n_in, n_out = shape
        key = f"base_model.model.model.layers.{parts[1]}.{NAMES[parts[2]]}"
        tensors[f"{key}.lora_A.weight"] = rng.normal(0, 0.01, (rank, n_in)).astype(np.float32)
        tensors[f"{key}.lora_B.weight"] = rng.normal(0, 0.01, (n_out, rank)).astype(np.float32)
    where.mkdir(parents=True, exist_ok=True)
    (where / "adapter_config.json").write_text(json.dumps({"lora_alpha": 2 * rank}))
    save_file(tensors, str(where / "adapter_model.safetensors"))
    return convert(where, base, where / "adapter.gguf")


async def measure(client: httpx.AsyncClient, model: str) -> tuple[int, float]:
    tokens, seconds = 0, 0.0
    for prompt in PROMPTS:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "seed": 1234,
            "max_tokens": 128,
        }
        began = time.perf_counter()
        r = await client.post("/v1/chat/completions", json=body)
        seconds += time.perf_counter() - began
        r.raise_for_status()
        tokens += r.json()["usage"]["completion_tokens"]
    return tokens, seconds


async def run(rounds: int, rank: int, targets: set[str]) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="egide-adapter-bench-"))
    base_path = packaged_chat_model(home)
    adapter = synthetic_adapter(base_path, home / "adapter", rank, targets)
    began = time.perf_counter()
    merged = merge(base_path, adapter, home / "merged.gguf")
    print(f"merged in {time.perf_counter() - began:.1f} s", flush=True)
    config = home / "egide.toml"
    config.write_text(
        "".join(
            "[[models]]\n"
            f'id = "{model}"\n'
            'backend = "embedded"\n'
            'path = "package:qwen2.5-coder-0.5b-instruct-q4_k_m"\n'
            f"{extra}"
            'capabilities = ["chat", "completions", "streaming"]\n'
            for model, extra in (
                (ADAPTED, f'lora = "{adapter}"\n'),
                (MERGED, f'lora = "{adapter}"\nmerged = "{merged}"\n'),
            )
        )
    )
    settings = load_settings(config, env={"EGIDE_HOME": str(home)})
    rates: dict[str, list[float]] = {model: [] for model in MODELS}
    async with admin_client(settings) as client:
        for model in MODELS:  # warm-up
            await measure(client, model)
        for round_ in range(rounds):
            shift = round_ % len(MODELS)
            for model in MODELS[shift:] + MODELS[:shift]:
                tokens, seconds = await measure(client, model)
                rates[model].append(tokens / seconds)
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{m} {rates[m][-1]:.1f}" for m in MODELS)
                + " tokens/s",
                flush=True,
            )
    speed = {model: statistics.median(rates[model]) for model in MODELS}
    return {
        "base_tokens_per_s": speed[BASE],
        "adapter_tokens_per_s": speed[ADAPTED],
        "merged_tokens_per_s": speed[MERGED],
        "adapter_ratio": speed[ADAPTED] / speed[BASE],
        "ratio": speed[MERGED] / speed[BASE],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument(
        "--targets",
        choices=["all", "attention"],
        default="all",
        help="adapted projections: every attention and MLP one (what jobs train), or attention",
    )
    args = parser.parse_args()
    targets = set(NAMES) if args.targets == "all" else {n for n in NAMES if n.startswith("attn")}
    result = asyncio.run(run(args.rounds, args.rank, targets))
    print(
        f"served tokens/s: base {result['base_tokens_per_s']:.1f}, adapter applied at every "
        f"step {result['adapter_tokens_per_s']:.1f} (ratio {result['adapter_ratio']:.3f}), "
        f"adapter merged {result['merged_tokens_per_s']:.1f}; fine-tuned model's ratio "
        f"{result['ratio']:.3f} (goal >= 0.9)"
    )
    return 0 if result["ratio"] >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
