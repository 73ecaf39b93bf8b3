"""Offline verification of an audit log: a state database (or a copy) or a JSON Lines export.

Checks, in one pass in seq order, stopping at the first bad record:

- seq starts at 1 and has no gap, duplicate or reordering;
- every ``prev_hash`` equals the previous record's hash (64 zeros for the first);
- every hash is recomputed from (seq, prev_hash, event, payload);
- every checkpoint covers the record just before it and its Ed25519 signature verifies
  with the given public key;
- the checkpoints in the chain and the anchored copies (``audit_checkpoints`` table, or the
  export header) are the same set, byte for byte;
- the log does not end before the last anchored checkpoint (truncation), and an export ends
  exactly at the head its header names.

Export format (``egide-audit-export/1``), every line canonical JSON (sorted keys, no
whitespace), so any edited byte is either a changed value or a non-canonical line::

    {"anchors":[{"payload":"...","seq":N},...],"format":"egide-audit-export/1",
     "last_hash":"...","last_seq":N}
    {"event":"decision","hash":"...","payload":"{...}","prev_hash":"...","seq":1}
    ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egide.audit.chain import GENESIS_HASH, Record, check_link
from egide.audit.checkpoints import CHECKPOINT_EVENT, check_checkpoint, key_id
from egide.store import audit as store

EXPORT_FORMAT = "egide-audit-export/1"
_RECORD_KEYS = frozenset({"event", "hash", "payload", "prev_hash", "seq"})
_HEADER_KEYS = frozenset({"anchors", "format", "last_hash", "last_seq"})
_SORTED = orjson.OPT_SORT_KEYS


@dataclass(frozen=True)
class Report:
    """The outcome of a verification."""

    ok: bool
    records: int
    checkpoints: int
    last_seq: int
    last_hash: str
    bad_seq: int | None = None
    problem: str | None = None
    unsigned_tail: int = 0

    def summary(self) -> str:
        if self.ok:
            tail = (
                f"; the last {self.unsigned_tail} records are not yet covered by a checkpoint"
                if self.unsigned_tail
                else ""
            )
            return (
                f"audit log intact: {self.records} records (seq 1..{self.last_seq}), "
                f"{self.checkpoints} signed checkpoints, head {self.last_hash[:16]}{tail}"
            )
        return f"audit log BROKEN at seq {self.bad_seq}: {self.problem}"


class _Verifier:
    def __init__(self, anchors: dict[int, bytes], public_key: Ed25519PublicKey) -> None:
        self.anchors = anchors
        self.public_key = public_key
        self.key_id = key_id(public_key)
        self.previous: Record | None = None
        self.seq = 0
        self.hash = GENESIS_HASH
        self.records = 0
        self.checkpoints = 0
        self.last_checkpoint = 0

    def fail(self, problem: str, seq: int | None = None) -> Report:
        bad = self.seq + 1 if seq is None else seq
        return Report(False, self.records, self.checkpoints, self.seq, self.hash, bad, problem)

    def feed(self, record: Record) -> Report | None:
        problem = check_link(self.seq + 1, self.hash, record)
        if problem is None and (record.event == CHECKPOINT_EVENT or record.seq in self.anchors):
            problem = self._check_anchor(record)
        if problem is not None:
            return self.fail(problem)
        self.previous = record
        self.seq = record.seq
        self.hash = record.hash
        self.records += 1
        return None

    def _check_anchor(self, record: Record) -> str | None:
        anchored = self.anchors.get(record.seq)
        if record.event != CHECKPOINT_EVENT:
            if anchored is not None:
                return f"anchored as a checkpoint but is a {record.event!r} record"
            return None
        problem = check_checkpoint(record, self.previous, self.public_key, self.key_id)
        if problem is not None:
            return problem
        if anchored is None:
            return "checkpoint missing from the checkpoint anchors (forged or anchor deleted)"
        if anchored != record.payload:
            return "checkpoint differs from its anchored copy"
        self.checkpoints += 1
        self.last_checkpoint = record.seq
        return None

    def finish(self, expected_head: tuple[int, str] | None = None) -> Report:
        last_seq, last_hash = self.seq, self.hash
        beyond = [s for s in self.anchors if s > last_seq]
        if beyond:
            return self.fail(
                f"the log ends at seq {last_seq} but a checkpoint is anchored at seq "
                f"{min(beyond)}: the tail was truncated"
            )
        if expected_head is not None and expected_head != (last_seq, last_hash):
            return self.fail(
                f"the export header names head seq {expected_head[0]} but the records end "
                f"at seq {last_seq}: records were removed or added at the end"
            )
        return Report(
            True,
            self.records,
            self.checkpoints,
            last_seq,
            last_hash,
            unsigned_tail=last_seq - self.last_checkpoint,
        )


def _anchors(rows: Iterable[tuple[Any, Any]]) -> dict[int, bytes] | str:
    anchors: dict[int, bytes] = {}
    for seq, payload in rows:
        if type(seq) is not int or seq < 1 or seq in anchors:
            return f"checkpoint anchor with an invalid seq {seq!r}"
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if not isinstance(payload, bytes):
            return f"checkpoint anchor {seq} has an invalid payload"
        anchors[seq] = payload
    return anchors


def _as_record(row: tuple[Any, ...]) -> Record:
    seq, prev_hash, event, payload, hash_ = row
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return Record(seq, prev_hash, event, payload, hash_)


def verify_records(
    records: Iterable[Record],
    anchors: Iterable[tuple[Any, Any]],
    public_key: Ed25519PublicKey,
    expected_head: tuple[int, str] | None = None,
) -> Report:
    """Verify records (in stored order) against their checkpoint anchors."""
    parsed = _anchors(anchors)
    if isinstance(parsed, str):
        return Report(False, 0, 0, 0, GENESIS_HASH, 0, parsed)
    verifier = _Verifier(parsed, public_key)
    for record in records:
        failure = verifier.feed(record)
        if failure is not None:
            return failure
    return verifier.finish(expected_head)


def verify_database(path: Path, public_key: Ed25519PublicKey) -> Report:
    """Verify a state database (or a copy of one), opened read-only."""
    conn = store.connect_readonly(path)
    try:
        return verify_connection(conn, public_key)
    finally:
        conn.close()


def verify_connection(conn: Any, public_key: Ed25519PublicKey) -> Report:
    """Verify the log through an open DB-API connection (SQLite or PostgreSQL)."""
    anchors = store.read_anchors(conn)
    rows = (_as_record(tuple(row)) for row in store.iter_records(conn))
    return verify_records(rows, anchors, public_key)


def export_records(db_path: Path, out: IO[bytes]) -> int:
    """Write the JSON Lines export of a state database; return the number of records."""
    conn = store.connect_readonly(db_path)
    try:
        conn.execute("BEGIN")  # one snapshot for the header and the records
        return export_connection(conn, out)
    finally:
        conn.close()


def export_connection(conn: Any, out: IO[bytes]) -> int:
    """Write the JSON Lines export through an open connection already in one snapshot
    (SQLite ``BEGIN``; PostgreSQL ``REPEATABLE READ``); return the number of records."""
    anchors = store.read_anchors(conn)
    head = conn.execute("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()
    last_seq, last_hash = head if head is not None else (0, GENESIS_HASH)
    header = {
        "anchors": [{"payload": p, "seq": s} for s, p in anchors],
        "format": EXPORT_FORMAT,
        "last_hash": last_hash,
        "last_seq": last_seq,
    }
    out.write(orjson.dumps(header, option=_SORTED) + b"\n")
    count = 0
    for seq, prev_hash, event, payload, hash_ in store.iter_records(conn):
        line = {
            "event": event,
            "hash": hash_,
            "payload": payload,
            "prev_hash": prev_hash,
            "seq": seq,
        }
        out.write(orjson.dumps(line, option=_SORTED) + b"\n")
        count += 1
    return count


class BadLine(ValueError):
    """A line of an export that is not a well-formed, canonical record."""


def _canonical(line: bytes, keys: frozenset[str]) -> dict[str, Any]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine("line is not valid JSON") from exc
    if not isinstance(obj, dict) or obj.keys() != keys:
        raise BadLine("line does not have the expected fields")
    if orjson.dumps(obj, option=_SORTED) != line:
        raise BadLine("line is not in canonical form (it was edited)")
    return obj


def parse_line(line: bytes) -> Record:
    """One record line of an export (a pure function: it may be memoised)."""
    obj = _canonical(line.rstrip(b"\n"), _RECORD_KEYS)
    payload = obj["payload"]
    if not isinstance(payload, str):
        raise BadLine("payload is not a string")
    return Record(obj["seq"], obj["prev_hash"], obj["event"], payload.encode(), obj["hash"])


def verify_export_lines(
    lines: Iterable[bytes],
    public_key: Ed25519PublicKey,
    parse: Callable[[bytes], Record] = parse_line,
) -> Report:
    """Verify an export given as lines of bytes (with or without their newlines)."""
    it = iter(lines)
    try:
        header = _canonical(next(it).rstrip(b"\n"), _HEADER_KEYS)
        if header["format"] != EXPORT_FORMAT:
            raise BadLine(f"unknown export format {header['format']!r}")
        raw_anchors = header["anchors"]
        if not isinstance(raw_anchors, list) or not all(
            isinstance(a, dict) and a.keys() == {"payload", "seq"} for a in raw_anchors
        ):
            raise BadLine("header anchors are malformed")
        expected_head = (header["last_seq"], header["last_hash"])
    except StopIteration:
        return Report(False, 0, 0, 0, GENESIS_HASH, 0, "empty export: the header is missing")
    except BadLine as exc:
        return Report(False, 0, 0, 0, GENESIS_HASH, 0, f"export header: {exc}")
    parsed = _anchors((a["seq"], a["payload"]) for a in raw_anchors)
    if isinstance(parsed, str):
        return Report(False, 0, 0, 0, GENESIS_HASH, 0, f"export header: {parsed}")
    verifier = _Verifier(parsed, public_key)
    for line in it:
        try:
            record = parse(line)
        except BadLine as exc:
            return verifier.fail(str(exc))
        failure = verifier.feed(record)
        if failure is not None:
            return failure
    return verifier.finish(expected_head)


def verify_export(path: Path, public_key: Ed25519PublicKey) -> Report:
    with path.open("rb") as handle:
        return verify_export_lines(handle, public_key)


def is_export(path: Path) -> bool:
    """True for a JSON Lines export, False for an SQLite database."""
    with path.open("rb") as handle:
        return not handle.read(16).startswith(b"SQLite format 3")
