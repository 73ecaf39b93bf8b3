"""Quotas, usage and the inference record of every request.

A request is admitted against its key's and every ancestor organisation's budget before
the model runs; once the answer is complete its tokens are spent, its usage counted, and
an ``inference`` event (model, label, token counts, sha256 of prompt and answer — never
their text) is appended to the audit log.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

import orjson

from egide.audit.events import Inference
from egide.audit.log import AuditLog
from egide.errors import QuotaExceeded
from egide.store.quotas import QuotaRepository
from egide.store.usage import UsageRepository, UsageRow
from egide.tenancy import Caller


def sha256_of(payload: object) -> str:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return hashlib.sha256(data).hexdigest()


class Accounting:
    def __init__(self, quotas: QuotaRepository, usage: UsageRepository, audit: AuditLog) -> None:
        self.quotas = quotas
        self.usage = usage
        self.audit = audit

    def admit(self, caller: Caller) -> None:
        exhausted = self.quotas.admit(caller.quota_subjects, time.time())
        if exhausted is not None:
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
        self.quotas.spend_tokens(caller.quota_subjects, now, prompt_tokens + completion_tokens)
        self.usage.record(
            UsageRow(
                day=datetime.fromtimestamp(now, UTC).date().isoformat(),
                org_id=caller.org_id or "",
                user_id=caller.principal.user_id,
                key_id=caller.key.id,
                model=model,
                requests=1,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
        )
        self.audit.append(
            Inference(
                actor=caller.principal.user_id,
                org_path="/".join(caller.principal.org_path),
                model=model,
                label=label,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                prompt_sha256=prompt_digest,
                response_sha256=sha256_of(answer.encode()),
            )
        )
