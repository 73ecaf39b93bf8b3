"""The hash chain: pure functions, no I/O.

A record is ``(seq, prev_hash, event, payload, hash)``. Its hash is the SHA-256 of an
unambiguous, length-prefixed encoding::

    b"egide-audit-record/1\\x00"
    || u64be(seq)
    || u32be(len(prev_hash)) || prev_hash (ASCII hex)
    || u32be(len(event))     || event     (UTF-8)
    || u64be(len(payload))   || payload   (the canonical JSON bytes)

hex-encoded in lowercase. The first record has ``seq == 1`` and ``prev_hash`` = 64 zeros;
every other record's ``prev_hash`` is exactly (string-equal) the previous record's hash.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS_HASH = "0" * 64
_DOMAIN = b"egide-audit-record/1\x00"
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_SEQ_LEN = struct.Struct(">QI")


@dataclass(frozen=True, slots=True)
class Record:
    """One link of the chain, as stored and exported."""

    seq: int
    prev_hash: str
    event: str
    payload: bytes
    hash: str


@dataclass(frozen=True, slots=True)
class Break:
    """The first record that does not verify, and why."""

    seq: int
    problem: str


def record_hash(seq: int, prev_hash: str, event: str, payload: bytes) -> str:
    prev = prev_hash.encode("utf-8")
    name = event.encode("utf-8")
    return hashlib.sha256(
        _DOMAIN
        + _SEQ_LEN.pack(seq, len(prev))
        + prev
        + _U32.pack(len(name))
        + name
        + _U64.pack(len(payload))
        + payload
    ).hexdigest()


def link(seq: int, prev_hash: str, event: str, payload: bytes) -> Record:
    """The record that follows ``(seq - 1, prev_hash)``."""
    return Record(seq, prev_hash, event, payload, record_hash(seq, prev_hash, event, payload))


def extend(
    head: tuple[int, str], items: Iterable[tuple[str, bytes]]
) -> tuple[list[Record], tuple[int, str]]:
    """Chain ``(event, payload)`` items after ``head`` = (last seq, last hash)."""
    seq, prev = head
    records = []
    for event, payload in items:
        seq += 1
        record = link(seq, prev, event, payload)
        records.append(record)
        prev = record.hash
    return records, (seq, prev)


def check_link(expected_seq: int, expected_prev: str, record: Record) -> str | None:
    """What is wrong with ``record`` at this position, or None."""
    if type(record.seq) is not int:
        return f"seq {record.seq!r} is not an integer"
    if record.seq != expected_seq:
        return (
            f"has seq {record.seq}, expected {expected_seq}: "
            "a record is missing, duplicated or out of order"
        )
    if not (
        type(record.prev_hash) is str
        and type(record.event) is str
        and type(record.hash) is str
        and type(record.payload) is bytes
    ):
        return "a field has the wrong type"
    if record.prev_hash != expected_prev:
        return "previous hash does not match the hash of the record before it"
    if record_hash(record.seq, record.prev_hash, record.event, record.payload) != record.hash:
        return "hash does not match its content (the record was altered)"
    return None


def verify_chain(
    records: Iterable[Record], head: tuple[int, str] = (0, GENESIS_HASH)
) -> Break | None:
    """The first break in a sequence of records that should follow ``head``, or None."""
    seq, prev = head
    for record in records:
        problem = check_link(seq + 1, prev, record)
        if problem is not None:
            return Break(seq + 1, problem)
        seq, prev = record.seq, record.hash
    return None
