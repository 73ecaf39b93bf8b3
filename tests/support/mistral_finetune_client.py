"""Run with the mistralai SDK 1.x (the last major version with ``fine_tuning.jobs``):
upload a training file, create a job, poll it to success, chat with the fine-tuned model.

    python mistral_finetune_client.py URL KEY TRAINING.jsonl QUESTION

Prints one JSON object: the job as the SDK parsed it, and the answer.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mistralai import Mistral


def main() -> int:
    url, key, training, question = sys.argv[1:5]
    label = {"X-Egide-Label": "S"}
    with Mistral(api_key=key, server_url=url) as client:
        uploaded = client.files.upload(
            file={"file_name": "heron.jsonl", "content": Path(training).read_bytes()},
            purpose="fine-tune",
            http_headers=label,
        )
        job = client.fine_tuning.jobs.create(
            model="gemma-base",
            training_files=[{"file_id": uploaded.id, "weight": 1}],
            hyperparameters={"training_steps": 6, "learning_rate": 0.001},
            suffix="heron",
            auto_start=True,
        )
        deadline = time.monotonic() + 900
        statuses = [job.status]
        while job.status not in ("SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"):
            if time.monotonic() > deadline:
                break
            time.sleep(2)
            job = client.fine_tuning.jobs.get(job_id=job.id)
            if job.status != statuses[-1]:
                statuses.append(job.status)
        answer = None
        if job.fine_tuned_model:
            chat = client.chat.complete(
                model=job.fine_tuned_model,
                messages=[{"role": "user", "content": question}],
                temperature=0,
                max_tokens=16,
                http_headers=label,
            )
            answer = chat.choices[0].message.content
        listed = [job.id for job in client.fine_tuning.jobs.list().data]
    result = {
        "file": uploaded.id,
        "job": job.id,
        "status": job.status,
        "statuses": statuses,
        "fine_tuned_model": job.fine_tuned_model,
        "trained_tokens": job.trained_tokens,
        "listed": listed,
        "answer": answer,
        "sdk_type": type(job).__name__,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
