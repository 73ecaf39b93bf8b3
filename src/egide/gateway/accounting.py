"""Quotas, usage and the inference record of every request.

A request is admitted against its key's and every ancestor organisation's budget before
the model runs; once the answer is complete its tokens are spent, its usage counted, and
an ``inference`` event (model, label, token counts, sha256 of prompt and answer — never
their text) is appended to the audit log.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from egide.audit.events import Decision, Inference
from egide.audit.log import AuditLog
from egide.errors import QuotaExceeded
from egide.store.quotas import QuotaRepository, spend_tokens_in
from egide.store.usage import UsageRepository, UsageRow, record_in
from egide.tenancy import Caller

log = logging.getLogger("egide.accounting")


def sha256_of(payload: object) -> str:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return hashlib.sha256(data).hexdigest()


class Accounting:
    """Admission is synchronous (a request is refused before the model runs); spending and
    usage are queued and written by one thread, many requests per transaction, so that
    the request path does not wait for them."""

    def __init__(
        self,
        quotas: QuotaRepository,
        usage: UsageRepository,
        audit: AuditLog,
        max_wait: float = 0.005,
    ) -> None:
        self.quotas = quotas
        self.usage = usage
        self.audit = audit
        self.max_wait = max_wait
        self._queue: queue.Queue[_Settled | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._writer = threading.Thread(target=self._write, name="accounting", daemon=True)
        self._writer.start()

    def admit(self, caller: Caller, model: str) -> None:
        exhausted = self.quotas.admit(caller.quota_subjects, time.time())
        if exhausted is not None:
            self.audit.append(
                Decision(
                    actor=caller.principal.user_id,
                    org_path="/".join(caller.principal.org_path),
                    request_id=caller.request_id,
                    action="use-model",
                    resource=f"model:{model}",
                    allowed=False,
                    reason=f"quota: {exhausted.reason}",
                )
            )
            raise QuotaExceeded(exhausted.reason, retry_after=exhausted.retry_after_s)

    def settle(
        self,
        caller: Caller,
        model: str,
        label: str,
        prompt_digest: str,
        answer: str,
        usage: dict[str, int] | None,
    ) -> None:
        prompt_tokens = int((usage or {}).get("prompt_tokens", 0) or 0)
        completion_tokens = int((usage or {}).get("completion_tokens", 0) or 0)
        now = time.time()
        row = UsageRow(
            day=datetime.fromtimestamp(now, UTC).date().isoformat(),
            org_id=caller.org_id or "",
            user_id=caller.principal.user_id,
            key_id=caller.key.id,
            model=model,
            requests=1,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        with self._idle:
            self._pending += 1
        self._queue.put(
            _Settled(caller.quota_subjects, now, prompt_tokens + completion_tokens, row)
        )
        self.audit.append(
            Inference(
                actor=caller.principal.user_id,
                request_id=caller.request_id,
                org_path="/".join(caller.principal.org_path),
                model=model,
                label=label,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                prompt_sha256=prompt_digest,
                response_sha256=sha256_of(answer.encode()),
            )
        )

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything settled so far is written."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=30)

    def _write(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < 500 and (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            stop = None in batch
            items = [item for item in batch if item is not None]
            if items:
                try:
                    with self.quotas.db.transaction() as conn:
                        for item in items:
                            spend_tokens_in(conn, item.subjects, item.now, item.tokens)
                            record_in(conn, item.row)
                except Exception:
                    log.exception("could not write %d usage records", len(items))
                with self._idle:
                    self._pending -= len(items)
                    self._idle.notify_all()


@dataclass(frozen=True)
class _Settled:
    subjects: list[str]
    now: float
    tokens: int
    row: UsageRow
