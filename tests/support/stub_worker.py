"""A stand-in for the training worker with the same contract: reads a spec file, appends
progress lines to ``<output_dir>/progress.jsonl``, ends with a status line; SIGTERM makes
it stop with ``cancelled``. ``learning_rate`` 0.5 makes it fail; 0.25 makes it die without
a word on its first run (as a killed process would), then resume."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

stop = False


def _term(_signum: int, _frame: object) -> None:
    global stop
    stop = True


def main() -> int:
    signal.signal(signal.SIGTERM, _term)
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    progress = out / "progress.jsonl"
    marker = out / "started-once"
    first_run = not marker.exists()
    marker.write_text("yes")

    def write(line: dict) -> None:
        with progress.open("a") as stream:
            stream.write(json.dumps({"time": time.time(), **line}) + "\n")

    steps = int(spec["training_steps"])
    done = (
        sum(1 for line in progress.read_text().splitlines() if '"train_loss"' in line)
        if progress.exists()
        else 0
    )
    if spec["learning_rate"] == 0.5:
        write({"status": "failed", "error": "the base model cannot be loaded: fix base_model_path"})
        return 1
    for step in range(done + 1, steps + 1):
        if stop:
            write({"checkpoint": step - 1, "step": step - 1})
            write({"status": "cancelled"})
            return 2
        if spec["learning_rate"] == 0.25 and first_run and step == 3:
            os._exit(9)
        time.sleep(float(os.environ.get("STUB_STEP_S", "0.05")))
        write(
            {
                "step": step,
                "total_steps": steps,
                "train_loss": 2.0 / step,
                "trained_tokens": step * 100,
            }
        )
        if step % 2 == 0:
            write({"checkpoint": step, "step": step, "validation_loss": 1.0 / step})
    (out / "adapter").mkdir(exist_ok=True)
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"stub")
    write({"status": "succeeded"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
