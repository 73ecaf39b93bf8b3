"""Typed events, the hash chain, checkpoints and the group-commit log."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import sample_event
from egide.audit import events as ev
from egide.audit.chain import GENESIS_HASH, Record, extend, link, record_hash, verify_chain
from egide.audit.checkpoints import (
    CHECKPOINT_EVENT,
    Signer,
    check_checkpoint,
    load_or_create_signing_key,
)
from egide.audit.log import AuditLog, AuditUnavailable
from egide.audit.verify import verify_connection, verify_database


def all_subclasses(cls: type[ev.Event]) -> set[type[ev.Event]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


def test_every_event_is_registered_named_and_documented() -> None:
    assert all_subclasses(ev.Event) == set(ev.EVENT_TYPES)
    reference = ev.events_reference()
    for cls in ev.EVENT_TYPES:
        assert ev.KEBAB.match(cls.name), cls
        assert ev.is_documented(cls), f"{cls.__name__} needs a docstring"
        assert f"## `{cls.name}`" in reference
    assert len(ev.REGISTRY) == len(ev.EVENT_TYPES)
    assert CHECKPOINT_EVENT not in ev.REGISTRY


def test_canonical_form_is_sorted_compact_and_round_trips() -> None:
    event = sample_event(3)
    data = ev.canonical(event)
    assert data == orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)
    assert b" " not in data.replace(b"mistral-small", b"")
    assert ev.decode(event.name, data) == event
    assert event.timestamp.endswith("Z") and len(event.timestamp) == 27


def test_content_cannot_enter_the_chain() -> None:
    with pytest.raises(ValueError, match="never pass the text"):
        ev.Inference(
            model="m",
            label="NP",
            prompt_tokens=1,
            completion_tokens=1,
            prompt_sha256="what is the plan?",
            response_sha256="0" * 64,
        )
    with pytest.raises(ValueError, match="never the whole key"):
        ev.AuthFailed(reason="revoked", key_prefix="egk_" + "x" * 40)
    with pytest.raises(ValueError, match="must be one of"):
        ev.AdminChange(kind="weather", target="t", summary="s")  # type: ignore[arg-type]


def test_hash_encoding_is_unambiguous() -> None:
    assert record_hash(1, GENESIS_HASH, "ab", b"c") != record_hash(1, GENESIS_HASH, "a", b"bc")
    assert record_hash(1, GENESIS_HASH, "a", b"b") != record_hash(2, GENESIS_HASH, "a", b"b")
    assert record_hash(1, "A" * 64, "a", b"b") != record_hash(1, "a" * 64, "a", b"b")


def test_chain_links_and_detects_breaks() -> None:
    records, head = extend((0, GENESIS_HASH), [("decision", b"{}")] * 5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH and head == (5, records[-1].hash)
    assert verify_chain(records) is None
    altered = [*records[:2], Record(3, records[2].prev_hash, "decision", b"{ }", records[2].hash)]
    assert verify_chain(altered) is not None and verify_chain(altered).seq == 3  # type: ignore[union-attr]
    gap = verify_chain(records[:2] + records[3:])
    assert gap is not None and gap.seq == 3 and "missing" in gap.problem
    assert verify_chain(records[1:], head=(1, records[0].hash)) is None


def test_checkpoint_signature_and_key(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path)
    assert (tmp_path / "audit-signing.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_signing_key(tmp_path).private_bytes_raw() == key.private_bytes_raw()
    signer = Signer(key)
    first = link(1, GENESIS_HASH, "decision", b"{}")
    cp = link(2, first.hash, CHECKPOINT_EVENT, signer.payload(1, first.hash))
    assert check_checkpoint(cp, first, signer.public_key, signer.key_id) is None
    other = Ed25519PrivateKey.generate().public_key()
    assert check_checkpoint(cp, first, other, signer.key_id) == "checkpoint signature is invalid"


def _verify(database, public_key):
    """Verify the log stored in ``database`` (SQLite or PostgreSQL) over a new connection."""
    if database.dialect == "sqlite":
        return verify_database(database.path, public_key)
    import psycopg

    with psycopg.connect(database.url) as conn:
        return verify_connection(conn, public_key)


def test_group_commit_from_threads_is_one_chain(database, tmp_path: Path) -> None:
    db = database
    signer = Signer(load_or_create_signing_key(tmp_path))
    log = AuditLog(db, signer, checkpoint_every=50)

    def produce(k: int) -> None:
        for i in range(200):
            log.append(sample_event(k * 1000 + i))
            if i % 20 == 0:
                log.flush()

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.flush()
    assert db.query("SELECT COUNT(*) FROM audit_records WHERE event != 'checkpoint'")[0][0] == 1600
    log.close()
    with pytest.raises(AuditUnavailable):
        log.append(sample_event(1))
    # A second log on the same database continues the same chain.
    log2 = AuditLog(db, signer, checkpoint_every=50)
    log2.append(sample_event(2))
    log2.close()
    report = _verify(db, signer.public_key)
    assert report.ok, report.summary()
    assert report.records == 1601 + report.checkpoints
    # every 50 events (the 32nd ends the first log, so its close() adds none), then log2.close()
    assert report.checkpoints == 1600 // 50 + 1
    # One changed byte in the stored log, on either database, is found.
    seq = db.query("SELECT seq FROM audit_records WHERE event = 'inference' LIMIT 1")[0][0]
    with db.transaction() as conn:
        payload = conn.execute("SELECT payload FROM audit_records WHERE seq = ?", (seq,)).fetchone()
        forged = payload[0].replace('"prompt_tokens":', '"prompt_tokens":1', 1)
        conn.execute("UPDATE audit_records SET payload = ? WHERE seq = ?", (forged, seq))
    broken = _verify(db, signer.public_key)
    assert not broken.ok and broken.bad_seq == seq
