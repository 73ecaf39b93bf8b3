"""Factories for audit tests: a closed log of mixed events with frequent checkpoints."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egide.audit import events as ev
from egide.audit.checkpoints import Signer, load_or_create_signing_key
from egide.audit.log import AuditLog
from egide.audit.verify import export_records
from egide.store.db import open_database


def sample_event(i: int) -> ev.Event:
    """A deterministic mix of every event type."""
    common = {
        "actor": f"user-{i % 37}",
        "org_path": "ministere/dga/unite-12",
        "request_id": f"r{i}",
    }
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    kind = i % 7
    if kind == 0:
        return ev.AuthSucceeded(**common)
    if kind == 1:
        return ev.AuthFailed(reason="unknown key", key_prefix="egk_abcd1234", **common)
    if kind == 2:
        return ev.Decision(
            action="chat", resource="model:mistral", allowed=i % 2 == 0, reason="DR ≤ S", **common
        )
    if kind == 3:
        return ev.Inference(
            model="mistral-small",
            label="DR",
            prompt_tokens=i,
            completion_tokens=i // 2,
            prompt_sha256=digest,
            response_sha256=digest[::-1],
            **common,
        )
    if kind == 4:
        return ev.AdminChange(kind="quota", target=f"org-{i}", summary="tokens 1e6/day", **common)
    if kind == 5:
        return ev.SpillageRefused(direction="input", level="S", position=i, **common)
    return ev.SpillageWithheld(level="TS", position=i, **common)


@dataclass
class BuiltLog:
    home: Path
    db_path: Path
    lines: list[bytes]
    public_key: Ed25519PublicKey
    signer: Signer


def build_log(home: Path, events: int = 2000, checkpoint_every: int = 100) -> BuiltLog:
    db = open_database(home)
    signer = Signer(load_or_create_signing_key(home))
    log = AuditLog(db, signer, checkpoint_every=checkpoint_every)
    for i in range(events):
        log.append(sample_event(i))
    log.close()
    db.close()
    buf = io.BytesIO()
    export_records(home / "egide.db", buf)
    return BuiltLog(home, home / "egide.db", buf.getvalue().splitlines(), signer.public_key, signer)


@pytest.fixture(scope="session")
def built_log(tmp_path_factory: pytest.TempPathFactory) -> BuiltLog:
    return build_log(tmp_path_factory.mktemp("audit-home"))
