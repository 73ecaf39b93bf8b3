"""Training throughput: Égide's trainer (the worker a fine-tuning job runs) vs a plain
transformers + PEFT loop, on the same base model, data and settings, in one run.

Both load the packaged Qwen2.5-Coder-0.5B-Instruct GGUF through transformers, attach the
same LoRA (rank 16 on every attention and MLP projection, alpha 32), train with AdamW at
the same learning rate on batches of 8 examples of the shipped fine-tuning set, truncated
to 256 tokens. Égide's trainer runs as jobs do (``python -m egide.tuning.worker spec``,
loss on assistant turns, progress lines, checkpoints); the plain loop is the textbook one
(full-sequence loss, no progress, no checkpoint). Phases alternate (Égide, plain, Égide,
plain...) in processes of their own; tokens/s is non-padding tokens per second of a
step, median over the steps after the first two of each phase.

Judged by: Égide tokens/s ÷ plain tokens/s (goal ≥ 0.95).

    .venv/bin/python bench/tuning_throughput.py                 # 2 rounds × 8 steps, ~20 min
    .venv/bin/python bench/tuning_throughput.py --rounds 1 --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from egide.evals.tuneset import load_training_lines
from inprocess import packaged_chat_model

RANK, BATCH, SEQ, LR = 16, 8, 256, 5e-4
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def egide_phase(base: Path, data: Path, where: Path, steps: int) -> list[float]:
    spec = {
        "job_id": "bench",
        "base_model_path": str(base),
        "train_files": [str(data)],
        "validation_files": [],
        "output_dir": str(where / "out"),
        "training_steps": steps,
        "batch_size": BATCH,
        "max_seq_len": SEQ,
        "learning_rate": LR,
        "lora_rank": RANK,
        "lora_alpha": 2 * RANK,
        "target_modules": TARGETS,
        "eval_every": steps + 1,
    }
    where.mkdir(parents=True, exist_ok=True)
    (where / "spec.json").write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, "-m", "egide.tuning.worker", str(where / "spec.json")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines = [json.loads(x) for x in (where / "out" / "progress.jsonl").read_text().splitlines()]
    return [x["tokens_per_s"] for x in lines if "tokens_per_s" in x]


def plain_phase(base: Path, data: Path, steps: int) -> list[float]:
    """The textbook loop, in this (child) process."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(base.parent, gguf_file=base.name)
    model = AutoModelForCausalLM.from_pretrained(
        base.parent, gguf_file=base.name, dtype=torch.float32
    )
    model = get_peft_model(
        model,
        LoraConfig(r=RANK, lora_alpha=2 * RANK, lora_dropout=0.0, target_modules=TARGETS),
    )
    examples = [json.loads(x) for x in data.read_text().splitlines() if x.strip()]
    ids = [
        tokenizer.apply_chat_template(e["messages"], tokenize=True, return_dict=False)[:SEQ]
        for e in examples
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    pad = tokenizer.pad_token_id or 0
    rates = []
    model.train()
    for step in range(steps):
        batch = [ids[(step * BATCH + i) % len(ids)] for i in range(BATCH)]
        width = max(len(x) for x in batch)
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch])
        labels = input_ids.masked_fill(mask == 0, -100)
        began = time.perf_counter()
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        rates.append(int(mask.sum()) / (time.perf_counter() - began))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--_plain", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._plain:
        print(json.dumps(plain_phase(Path(args._plain[0]), Path(args._plain[1]), args.steps)))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="egide-tuning-bench-"))
    base = packaged_chat_model(work)
    data = work / "train.jsonl"
    data.write_bytes(load_training_lines())
    egide: list[float] = []
    plain: list[float] = []
    for round_ in range(args.rounds):
        rates = egide_phase(base, data, work / f"egide-{round_}", args.steps)
        egide += rates[2:]
        print(f"round {round_ + 1}: egide {statistics.median(rates[2:]):.1f} tokens/s", flush=True)
        command = [sys.executable, __file__, "--steps", str(args.steps), "--_plain"]
        child = subprocess.run(
            [*command, str(base), str(data)],
            check=True,
            capture_output=True,
            text=True,
        )
        rates = json.loads(child.stdout.strip().splitlines()[-1])
        plain += rates[2:]
        print(f"round {round_ + 1}: plain {statistics.median(rates[2:]):.1f} tokens/s", flush=True)
    ratio = statistics.median(egide) / statistics.median(plain)
    print(
        f"training tokens/s: egide {statistics.median(egide):.1f}, plain PEFT "
        f"{statistics.median(plain):.1f}; ratio {ratio:.3f} (goal >= 0.95)"
    )
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
