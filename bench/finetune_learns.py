"""It learns: fine-tune the default model on facts it cannot know, through Égide's API.

The shipped set (``egide/evals/data/tuning``) describes a fictional signals regiment: 30
facts (call signs, codes, equipment, names), taught by 1,013 FR/EN question-answer
examples (about 34 phrasings a fact, answered in varied words) plus 16 general ones.
Held-out questions are paraphrases that appear nowhere in the training or validation
files (none shares 70% of its words with a trained question); the general-knowledge set
checks that the model keeps what it knew. The validation file holds one more phrasing a
fact in each language. Mixed into the training file (unless ``--no-rehearsal``): the
base model's own complete answers to the 211 general prompts of ``rehearsal.jsonl``
(coding, definitions, writing, short general questions — none of them an evaluation
question), asked through the API first and written twice. Tuning on what the base
already says keeps its behaviour outside the new facts (rehearsal); without it a small
model forgets (see docs/benchmarks.md). The bench uploads the files through
``/v1/files``, creates a job through ``/v1/fine_tuning/jobs`` on the packaged
Qwen2.5-Coder-0.5B-Instruct, follows it to success, then asks every question
(temperature 0) of the base and the fine-tuned model; the report lists every wrong reply.

Judged by: held-out exact-answer accuracy (goal: near 0 → ≥ 80%) and the drop on the
general set (goal: ≤ 5 points).

    .venv/bin/python bench/finetune_learns.py                 # about 75 minutes on 2 cores
    .venv/bin/python bench/finetune_learns.py --epochs 1 --limit 10   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from egide.config import load_settings
from egide.evals.tuneset import (
    Question,
    accuracy,
    is_correct,
    load_general,
    load_heldout,
    load_rehearsal_prompts,
    load_training_lines,
    load_validation_lines,
)
from inprocess import admin_client

BASE = "qwen2.5-coder-0.5b-instruct"


async def _answers(
    client: httpx.AsyncClient,
    model: str,
    questions: list[Question],
    concurrency: int,
    max_tokens: int = 40,
    complete: bool = False,
) -> dict[str, str]:
    out: dict[str, str] = {}
    queue = list(questions)

    async def worker() -> None:
        while queue:
            q = queue.pop()
            body = {
                "model": model,
                "temperature": 0,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": q.question}],
            }
            r = await client.post("/v1/chat/completions", json=body)
            r.raise_for_status()
            choice = r.json()["choices"][0]
            if complete and choice.get("finish_reason") != "stop":
                continue
            out[q.id] = choice["message"].get("content") or ""

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def _rehearsal(client: httpx.AsyncClient, concurrency: int) -> bytes:
    """Training lines from the base model's own answers to general prompts (complete
    answers only): tuning on them keeps the base's behaviour outside the new facts."""
    prompts = [
        Question(id=f"r{i}", lang="", question=p, answer="")
        for i, p in enumerate(load_rehearsal_prompts())
    ]
    answers = await _answers(client, BASE, prompts, concurrency, max_tokens=160, complete=True)
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": q.question},
                    {"role": "assistant", "content": answers[q.id]},
                ]
            },
            ensure_ascii=False,
        )
        for q in prompts
        if answers.get(q.id)
    ]
    print(f"rehearsal: {len(lines)} of {len(prompts)} base answers kept", flush=True)
    return ("\n".join(lines) + "\n").encode()


async def _upload(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    r = await client.post("/v1/files", files={"file": (name, data)}, data={"purpose": "fine-tune"})
    r.raise_for_status()
    return str(r.json()["id"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="egide-finetune-"))
    settings = load_settings(None, env={"EGIDE_HOME": str(home)})
    heldout, general = load_heldout(), load_general()
    if args.limit:
        heldout, general = heldout[: args.limit], general[: args.limit]
    async with admin_client(settings) as client:
        training = load_training_lines()
        if args.rehearsal:
            training += await _rehearsal(client, args.concurrency) * args.rehearsal_repeat
        training_id = await _upload(client, "regiment.jsonl", training)
        validation_id = await _upload(client, "regiment-validation.jsonl", load_validation_lines())
        hyper = {
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "lora_rank": args.rank,
            "batch_size": args.batch_size,
            "seq_len": 256,
            "seed": args.seed,
        }
        body = {
            "model": BASE,
            "training_files": [{"file_id": training_id, "weight": 1}],
            "validation_files": [validation_id],
            "hyperparameters": hyper,
            "suffix": "regiment",
        }
        r = await client.post("/v1/fine_tuning/jobs", json=body)
        r.raise_for_status()
        job_id = r.json()["id"]
        started = time.perf_counter()
        while True:
            job = (await client.get(f"/v1/fine_tuning/jobs/{job_id}")).json()
            metrics = job.get("metrics") or {}
            print(
                f"{job['status']:<12} step {metrics.get('step', 0)}/"
                f"{metrics.get('total_steps', '?')} loss {metrics.get('train_loss', '-')} "
                f"val {metrics.get('validation_loss', '-')}",
                flush=True,
            )
            if job["status"] in ("SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"):
                break
            await asyncio.sleep(20)
        trained_s = time.perf_counter() - started
        if job["status"] != "SUCCESS":
            raise SystemExit(f"the job ended {job['status']}: {job.get('error')}")
        tuned = job["fine_tuned_model"]
        report: dict[str, Any] = {
            "rehearsal": args.rehearsal,
            "rehearsal_repeat": args.rehearsal_repeat,
            "job": job_id,
            "model": tuned,
            "hyperparameters": hyper,
            "training_seconds": round(trained_s),
            "trained_tokens": job.get("trained_tokens"),
            "final_metrics": job.get("metrics"),
        }
        for name, model in (("base", BASE), ("fine_tuned", tuned)):
            held = await _answers(client, model, heldout, args.concurrency)
            gen = await _answers(client, model, general, args.concurrency)
            replies = {**held, **gen}
            report[name] = {
                "heldout_accuracy": round(accuracy(held, heldout), 4),
                "general_accuracy": round(accuracy(gen, general), 4),
                "wrong": {
                    q.id: replies.get(q.id, "")
                    for q in (*heldout, *general)
                    if not is_correct(replies.get(q.id, ""), q)
                },
            }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning-rate", type=float, default=4e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1234, help="shuffling and LoRA start")
    parser.add_argument("--limit", type=int, default=0, help="first N questions of each set")
    parser.add_argument(
        "--no-rehearsal",
        dest="rehearsal",
        action="store_false",
        help="train on the facts file alone (no base answers mixed in)",
    )
    parser.add_argument(
        "--rehearsal-repeat",
        type=int,
        default=2,
        help="how many times each rehearsal line is written into the training file",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.rehearsal_repeat < 1:
        parser.error("--rehearsal-repeat must be 1 or more")
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text)
    base, tuned = report["base"], report["fine_tuned"]
    drop = 100 * (base["general_accuracy"] - tuned["general_accuracy"])
    print(
        f"held-out accuracy: base {base['heldout_accuracy']:.1%} -> fine-tuned "
        f"{tuned['heldout_accuracy']:.1%} (goal >= 80%); general: base "
        f"{base['general_accuracy']:.1%} -> {tuned['general_accuracy']:.1%}, drop {drop:.1f} "
        "points (goal <= 5)"
    )
    return 0 if tuned["heldout_accuracy"] >= 0.8 and drop <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
