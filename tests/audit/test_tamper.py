"""The tamper test: every single edit of a stored audit log is detected.

A closed log of 2,000 events with a checkpoint every 100 records is edited at random,
once per trial: a changed byte anywhere, a deleted record, a forged record (chained to its
predecessor only, or with the whole rest of the chain recomputed and the checkpoints and
anchors rewritten, so that only the signatures can catch it), two swapped records, a
truncated tail (also right before a checkpoint), a checkpoint replaced by one signed with
another key. Every edit must be detected.

10,000 edits of the JSON Lines export run across two processes; the verifier's line
parser is memoised there (it is a pure function of the line's bytes: hashes, links,
checkpoints and signatures are all recomputed on every trial). 500 edits of the SQLite
database run through ``verify_database`` unaided.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import BuiltLog, sample_event
from egide.audit.chain import GENESIS_HASH, Record, link
from egide.audit.checkpoints import CHECKPOINT_EVENT, Signer, load_public_key, public_key_pem
from egide.audit.events import canonical
from egide.audit.verify import (
    EXPORT_FORMAT,
    parse_line,
    verify_database,
    verify_export,
    verify_export_lines,
)

EXPORT_EDITS = 10_000
DB_EDITS = 500
SORTED = orjson.OPT_SORT_KEYS

# -- forging helpers ----------------------------------------------------------------------


def record_line(r: Record) -> bytes:
    body = {
        "event": r.event,
        "hash": r.hash,
        "payload": r.payload.decode(),
        "prev_hash": r.prev_hash,
        "seq": r.seq,
    }
    return orjson.dumps(body, option=SORTED)


def header_line(records: list[Record]) -> bytes:
    last_seq, last_hash = (records[-1].seq, records[-1].hash) if records else (0, GENESIS_HASH)
    anchors = [
        {"payload": r.payload.decode(), "seq": r.seq}
        for r in records
        if r.event == CHECKPOINT_EVENT
    ]
    body = {
        "anchors": anchors,
        "format": EXPORT_FORMAT,
        "last_hash": last_hash,
        "last_seq": last_seq,
    }
    return orjson.dumps(body, option=SORTED)


def rechained_lines(lines: list[bytes], records: list[Record], start: int) -> list[bytes]:
    """A new header, the untouched lines before ``start``, the rewritten records after."""
    return [header_line(records), *lines[1 : start + 1], *map(record_line, records[start:])]


def forged(seq: int, prev: str, rng: random.Random) -> Record:
    event = sample_event(rng.randrange(10_000))
    return link(seq, prev, event.name, canonical(event))


def rechain(records: list[Record], start: int, resign: Signer | None) -> list[Record]:
    """Recompute seq, prev_hash and hash from ``start`` on, and make every later checkpoint
    cover its new predecessor: with the old signature, or re-signed by ``resign``."""
    out = records[:start]
    seq, prev = (out[-1].seq, out[-1].hash) if out else (0, GENESIS_HASH)
    for r in records[start:]:
        seq += 1
        payload = r.payload
        if r.event == CHECKPOINT_EVENT:
            if resign is not None:
                payload = resign.payload(seq - 1, prev)
            else:
                body = orjson.loads(payload)
                body["covers_seq"], body["covers_hash"] = seq - 1, prev
                payload = orjson.dumps(body, option=SORTED)
        out.append(link(seq, prev, r.event, payload))
        prev = out[-1].hash
    return out


def attacker_signer(real_key_id: str, claim_real_id: bool) -> Signer:
    signer = Signer(Ed25519PrivateKey.generate())
    if claim_real_id:
        signer.key_id = real_key_id
    return signer


def checkpoint_indexes(records: list[Record]) -> list[int]:
    return [i for i, r in enumerate(records) if r.event == CHECKPOINT_EVENT]


# -- edits of the export --------------------------------------------------------------------


def edit_export(
    lines: list[bytes], records: list[Record], rng: random.Random, real_key_id: str
) -> tuple[str, list[bytes]]:
    n = len(records)
    kind = rng.choice(
        [
            "byte",
            "byte",
            "byte",
            "delete",
            "forge-local",
            "forge-rechained",
            "swap",
            "truncate",
            "truncate-at-checkpoint",
            "replace-checkpoint",
            "replace-checkpoint-rechained",
        ]
    )
    if kind == "byte":
        i = rng.randrange(len(lines))
        line = bytearray(lines[i])
        pos = rng.randrange(len(line))
        line[pos] = (line[pos] + rng.randrange(1, 256)) % 256
        return f"byte line {i} pos {pos}", [*lines[:i], bytes(line), *lines[i + 1 :]]
    if kind == "delete":
        i = rng.randrange(len(lines))  # 0 is the header
        return f"delete line {i}", lines[:i] + lines[i + 1 :]
    if kind == "forge-local":
        i = rng.randrange(n + 1)  # insert before records[i] (n: append)
        prev = records[i - 1] if i else None
        fake = forged(prev.seq + 1 if prev else 1, prev.hash if prev else GENESIS_HASH, rng)
        return f"forge-local at {i}", [*lines[: i + 1], record_line(fake), *lines[i + 1 :]]
    if kind == "forge-rechained":
        i = rng.randrange(n)
        prev = records[i - 1] if i else None
        fake = forged(prev.seq + 1 if prev else 1, prev.hash if prev else GENESIS_HASH, rng)
        out = rechain([*records[:i], fake, *records[i:]], i + 1, None)
        return f"forge-rechained at {i}", rechained_lines(lines, out, i)
    if kind == "swap":
        i, j = sorted(rng.sample(range(1, len(lines)), 2))
        out = list(lines)
        out[i], out[j] = out[j], out[i]
        return f"swap {i} {j}", out
    if kind == "truncate":
        k = rng.randrange(1, n + 1)  # keep the header and k-1 records
        return f"truncate to {k - 1}", lines[:k]
    cps = checkpoint_indexes(records)
    c = rng.choice(cps)
    if kind == "truncate-at-checkpoint":
        return f"truncate-at-checkpoint {c}", lines[: c + 1]
    attacker = attacker_signer(real_key_id, rng.random() < 0.5)
    prev = records[c - 1]
    fake_cp = link(prev.seq + 1, prev.hash, CHECKPOINT_EVENT, attacker.payload(prev.seq, prev.hash))
    if kind == "replace-checkpoint":
        return f"replace-checkpoint {c}", [*lines[: c + 1], record_line(fake_cp), *lines[c + 2 :]]
    out = rechain([*records[:c], fake_cp, *records[c + 1 :]], c + 1, attacker)
    return f"replace-checkpoint-rechained {c}", rechained_lines(lines, out, c)


def run_export_edits(args: tuple[list[bytes], bytes, int, int]) -> tuple[Counter[str], list[str]]:
    lines, pem, seed, count = args
    public_key = load_public_key_bytes(pem)
    from egide.audit.checkpoints import key_id

    real_id = key_id(public_key)
    records = [parse_line(line) for line in lines[1:]]
    parse = functools.lru_cache(maxsize=None)(parse_line)
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    missed = []
    for _ in range(count):
        what, edited = edit_export(lines, records, rng, real_id)
        kinds[what.split(" ")[0]] += 1
        if verify_export_lines(edited, public_key, parse).ok:
            missed.append(what)
    return kinds, missed


def load_public_key_bytes(pem: bytes):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_public_key(pem)


# -- tests ----------------------------------------------------------------------------------


def test_untouched_log_verifies(built_log: BuiltLog) -> None:
    by_export = verify_export_lines(built_log.lines, built_log.public_key)
    by_db = verify_database(built_log.db_path, built_log.public_key)
    assert by_export.ok, by_export.summary()
    assert by_db.ok, by_db.summary()
    assert by_db.records == by_export.records == 2000 + 20
    assert by_db.checkpoints == 20
    assert by_db.unsigned_tail == 0  # close() sealed the log


def test_every_export_edit_is_detected(built_log: BuiltLog) -> None:
    pem = public_key_pem(built_log.public_key)
    workers = 2
    jobs = [(built_log.lines, pem, seed, EXPORT_EDITS // workers) for seed in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(run_export_edits, jobs))
    kinds: Counter[str] = Counter()
    missed: list[str] = []
    for k, m in results:
        kinds += k
        missed += m
    assert sum(kinds.values()) >= EXPORT_EDITS
    assert len(kinds) == 9, kinds  # every kind of edit was tried
    assert missed == [], f"{len(missed)} undetected edits, e.g. {missed[:5]}"


# -- edits of the database ------------------------------------------------------------------

COLUMNS = ("seq", "prev_hash", "event", "payload", "hash")


def flip_char(text: str, rng: random.Random) -> str:
    pos = rng.randrange(len(text))
    choices = [c for c in '0123456789abcdefABCDEF{}":,x ' if c != text[pos]]
    return text[:pos] + rng.choice(choices) + text[pos + 1 :]


def write_records(conn: sqlite3.Connection, records: list[Record], start_seq: int) -> None:
    conn.execute("DELETE FROM audit_records WHERE seq >= ?", (start_seq,))
    conn.execute("DELETE FROM audit_checkpoints WHERE seq >= ?", (start_seq,))
    tail = [r for r in records if r.seq >= start_seq]
    conn.executemany(
        "INSERT INTO audit_records VALUES (?, ?, ?, ?, ?)",
        [(r.seq, r.prev_hash, r.event, r.payload.decode(), r.hash) for r in tail],
    )
    conn.executemany(
        "INSERT INTO audit_checkpoints VALUES (?, ?)",
        [(r.seq, r.payload.decode()) for r in tail if r.event == CHECKPOINT_EVENT],
    )


def edit_db(
    conn: sqlite3.Connection, records: list[Record], rng: random.Random, real_key_id: str
) -> str:
    n = len(records)
    kind = rng.choice(
        [
            "byte",
            "byte",
            "anchor-byte",
            "anchor-delete",
            "delete",
            "forge-local",
            "forge-rechained",
            "swap",
            "truncate",
            "truncate-at-checkpoint",
            "replace-checkpoint",
            "replace-checkpoint-rechained",
        ]
    )
    cps = checkpoint_indexes(records)
    if kind == "byte":
        r = records[rng.randrange(n)]
        column = rng.choice(COLUMNS)
        if column == "seq":
            new_seq = r.seq + rng.choice([n + 1, -(10**6), 10**6])
            conn.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (new_seq, r.seq))
        else:
            old = getattr(r, column if column != "payload" else "payload")
            old = old.decode() if isinstance(old, bytes) else old
            conn.execute(
                f"UPDATE audit_records SET {column} = ? WHERE seq = ?", (flip_char(old, rng), r.seq)
            )
        return f"byte {column} of {r.seq}"
    if kind == "anchor-byte":
        r = records[rng.choice(cps)]
        new = flip_char(r.payload.decode(), rng)
        conn.execute("UPDATE audit_checkpoints SET payload = ? WHERE seq = ?", (new, r.seq))
        return f"anchor-byte {r.seq}"
    if kind == "anchor-delete":
        seq = records[rng.choice(cps)].seq
        conn.execute("DELETE FROM audit_checkpoints WHERE seq = ?", (seq,))
        return f"anchor-delete {seq}"
    if kind == "delete":
        seq = records[rng.randrange(n)].seq
        conn.execute("DELETE FROM audit_records WHERE seq = ?", (seq,))
        return f"delete {seq}"
    if kind == "forge-local":  # replace one record by a forgery chained to its predecessor
        i = rng.randrange(n)
        prev = records[i - 1] if i else None
        fake = forged(prev.seq + 1 if prev else 1, prev.hash if prev else GENESIS_HASH, rng)
        conn.execute(
            "UPDATE audit_records SET prev_hash = ?, event = ?, payload = ?, hash = ? "
            "WHERE seq = ?",
            (fake.prev_hash, fake.event, fake.payload.decode(), fake.hash, fake.seq),
        )
        return f"forge-local {fake.seq}"
    if kind == "forge-rechained":
        i = rng.randrange(n)
        prev = records[i - 1] if i else None
        fake = forged(prev.seq + 1 if prev else 1, prev.hash if prev else GENESIS_HASH, rng)
        out = rechain([*records[:i], fake, *records[i:]], i + 1, None)
        write_records(conn, out, i + 1)
        return f"forge-rechained {i + 1}"
    if kind == "swap":
        a, b = rng.sample(records, 2)
        for x, y in ((a, b), (b, a)):
            conn.execute(
                "UPDATE audit_records SET prev_hash = ?, event = ?, payload = ?, hash = ? "
                "WHERE seq = ?",
                (y.prev_hash, y.event, y.payload.decode(), y.hash, x.seq),
            )
        return f"swap {a.seq} {b.seq}"
    if kind == "truncate":
        keep = rng.randrange(n)
        conn.execute("DELETE FROM audit_records WHERE seq > ?", (keep,))
        return f"truncate {keep}"
    c = rng.choice(cps)
    if kind == "truncate-at-checkpoint":
        conn.execute("DELETE FROM audit_records WHERE seq >= ?", (records[c].seq,))
        return f"truncate-at-checkpoint {records[c].seq}"
    attacker = attacker_signer(real_key_id, rng.random() < 0.5)
    prev = records[c - 1]
    fake_cp = link(prev.seq + 1, prev.hash, CHECKPOINT_EVENT, attacker.payload(prev.seq, prev.hash))
    if kind == "replace-checkpoint":
        conn.execute(
            "UPDATE audit_records SET payload = ?, hash = ? WHERE seq = ?",
            (fake_cp.payload.decode(), fake_cp.hash, fake_cp.seq),
        )
        conn.execute(
            "UPDATE audit_checkpoints SET payload = ? WHERE seq = ?",
            (fake_cp.payload.decode(), fake_cp.seq),
        )
        return f"replace-checkpoint {fake_cp.seq}"
    out = rechain([*records[:c], fake_cp, *records[c + 1 :]], c + 1, attacker)
    write_records(conn, out, fake_cp.seq)
    return f"replace-checkpoint-rechained {fake_cp.seq}"


def test_every_database_edit_is_detected(built_log: BuiltLog, tmp_path: Path) -> None:
    from egide.audit.checkpoints import key_id

    records = [parse_line(line) for line in built_log.lines[1:]]
    real_id = key_id(built_log.public_key)
    rng = random.Random(42)
    copy = tmp_path / "copy.db"
    kinds: Counter[str] = Counter()
    missed = []
    for _ in range(DB_EDITS):
        shutil.copyfile(built_log.db_path, copy)
        conn = sqlite3.connect(copy, isolation_level=None)
        conn.execute("BEGIN")
        what = edit_db(conn, records, rng, real_id)
        conn.execute("COMMIT")
        conn.close()
        kinds[what.split(" ")[0]] += 1
        if verify_database(copy, built_log.public_key).ok:
            missed.append(what)
    assert len(kinds) == 11, kinds
    assert missed == [], f"{len(missed)} undetected edits, e.g. {missed[:5]}"


def test_first_bad_record_is_named(built_log: BuiltLog) -> None:
    lines = list(built_log.lines)
    r = parse_line(lines[500])
    altered = Record(r.seq, r.prev_hash, r.event, r.payload.replace(b"user", b"usex"), r.hash)
    lines[500] = record_line(altered)
    report = verify_export_lines(lines, built_log.public_key)
    assert not report.ok and report.bad_seq == 500
    assert report.summary() == (
        "audit log BROKEN at seq 500: hash does not match its content (the record was altered)"
    )
    truncated = verify_export_lines(built_log.lines[:-1], built_log.public_key)
    assert truncated.bad_seq == 2020
    assert "the tail was truncated" in (truncated.problem or "")


def test_wrong_public_key_fails(built_log: BuiltLog) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    report = verify_export_lines(built_log.lines, other)
    assert not report.ok and "signed by key" in (report.problem or "")


@pytest.fixture()
def export_file(built_log: BuiltLog, tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"\n".join(built_log.lines) + b"\n")
    return path


def test_cli_verifies_offline(built_log: BuiltLog, export_file: Path, tmp_path: Path) -> None:
    pub = tmp_path / "audit.pub"
    pub.write_bytes(public_key_pem(built_log.public_key))
    assert verify_export(export_file, load_public_key(pub)).ok
    harness = (
        "import argparse, sys; from egide.cli import audit; p = argparse.ArgumentParser(); "
        "s = p.add_subparsers(); audit.add_parsers(s); a = p.parse_args(sys.argv[1:]); "
        "sys.exit(a.run(a))"
    )
    env_home = {"EGIDE_HOME": str(built_log.home)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run(
            [sys.executable, "-c", harness, "audit", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env_home},
            timeout=60,
        )

    ok = run("verify", "--public-key", str(pub), "--input", str(export_file))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("audit log intact: 2020 records")
    assert run("verify").returncode == 0  # the state database and the state-dir key
    rng = random.Random(7)
    records = [parse_line(line) for line in built_log.lines[1:]]
    from egide.audit.checkpoints import key_id

    for i in range(4):
        what, edited = edit_export(built_log.lines, records, rng, key_id(built_log.public_key))
        bad = tmp_path / f"bad{i}.jsonl"
        bad.write_bytes(b"\n".join(edited) + b"\n")
        result = run("verify", "--public-key", str(pub), "--input", str(bad))
        assert result.returncode == 1, what
        assert "audit log BROKEN at seq" in result.stdout + result.stderr
