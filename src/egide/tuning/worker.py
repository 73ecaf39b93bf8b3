"""The training worker: ``python -m egide.tuning.worker <spec.json>``.

Run by the job runner as a process of its own (so training never competes with the
gateway's event loop), or by ``torchrun`` on GPU nodes with the same spec. It appends
JSON lines to ``<output_dir>/progress.jsonl`` (the runner follows them):

- ``{"step", "total_steps", "train_loss", "trained_tokens", "tokens_per_s", ...}`` per step;
- ``{"checkpoint", "step", "validation_loss"}`` when it checkpoints;
- one final ``{"status": "succeeded" | "failed" | "cancelled", "error"?: reason}``.

SIGTERM makes it checkpoint at the next step and stop with ``cancelled``; started again
on the same spec, it resumes from its last checkpoint. Needs the ``tuning`` extra.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from egide.tuning.spec import JobSpec

log = logging.getLogger("egide.tuning.worker")


class Progress:
    """Appends progress lines; only the first process of a distributed run writes."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, **line: Any) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as stream:
            stream.write(json.dumps({"time": round(time.time(), 3), **line}) + "\n")
            stream.flush()


class Stop:
    """Set by SIGTERM/SIGINT; the training loop checks it between steps."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, _signum: int, _frame: object) -> None:
        self.requested = True


def reason(exc: BaseException, spec: JobSpec) -> str:
    """A failure as the job's error: what happened and what to do about it."""
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return (
            f"out of memory with batch_size {spec.batch_size} and seq_len {spec.max_seq_len}: "
            "lower them in the job's hyperparameters and create the job again"
        )
    if isinstance(exc, FileNotFoundError):
        return f"a file the job needs is missing ({exc.filename}); create the job again"
    if isinstance(exc, ImportError):
        return (
            f"{text}: install the 'tuning' extra (pip install 'egide[tuning]') on the "
            "machine that trains"
        )
    return f"{type(exc).__name__}: {text}"


def die_with_parent() -> None:
    """Linux: be sent SIGTERM (checkpoint, stop) when the process that started us dies, so
    that a killed server never leaves a worker training behind its back."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def exclusive(output: Path) -> Any:
    """Hold the job's lock: two workers never train the same job. Waits a minute for a
    previous worker that is still checkpointing."""
    handle = (output / ".lock").open("w")
    deadline = time.monotonic() + 60
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"another worker is still training in {output}; stop it first"
                ) from None
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m egide.tuning.worker SPEC.json", file=sys.stderr)
        return 64
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    spec = JobSpec.load(Path(args[0]))
    spec.output.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    progress = Progress(spec.output / "progress.jsonl", enabled=rank == 0)
    stop = Stop()
    die_with_parent()
    try:
        # Under a launcher the processes of one run share the job: the first holds it.
        lock = exclusive(spec.output) if rank == 0 else None  # noqa: F841 - held to exit
        from egide.tuning.trainer import Trainer

        return Trainer(spec, progress, stop).run()
    except BaseException as exc:
        traceback.print_exc()
        progress.write(status="failed", error=reason(exc, spec))
        return 1


if __name__ == "__main__":
    sys.exit(main())
