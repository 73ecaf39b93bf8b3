"""Signed checkpoints: Ed25519 signatures over the chain head.

A checkpoint is itself a chained record (event ``checkpoint``) whose payload is::

    {"covers_hash": h, "covers_seq": s, "key_id": k, "signature": b64, "timestamp": t}

where ``s`` is the seq of the record *immediately before* the checkpoint, ``h`` its hash, and
the signature is over ``b"egide-audit-checkpoint/1\\x00" || ascii(f"{s}:{h}")``. Because it is
chained, deleting or replacing a checkpoint breaks the chain; because it is signed, a forger
who re-chains everything after an edit still cannot produce valid checkpoints.

Each checkpoint is also copied to a separate anchor table (``audit_checkpoints``, or the
header of an export): a log that ends before its last anchored checkpoint was truncated.

The signing key lives at ``$EGIDE_HOME/audit-signing.key`` (PKCS#8 PEM, mode 600), created
on first use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from egide.audit.chain import Record
from egide.audit.events import utc_now

CHECKPOINT_EVENT = "checkpoint"
KEY_FILE = "audit-signing.key"
_DOMAIN = b"egide-audit-checkpoint/1\x00"
_FIELDS = frozenset({"covers_hash", "covers_seq", "key_id", "signature", "timestamp"})


def signed_message(seq: int, hash_: str) -> bytes:
    return _DOMAIN + f"{seq}:{hash_}".encode("ascii")


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """Signs checkpoints with the instance's audit key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def payload(self, covers_seq: int, covers_hash: str, timestamp: str | None = None) -> bytes:
        signature = self._key.sign(signed_message(covers_seq, covers_hash))
        body = {
            "covers_hash": covers_hash,
            "covers_seq": covers_seq,
            "key_id": self.key_id,
            "signature": base64.b64encode(signature).decode("ascii"),
            "timestamp": timestamp or utc_now(),
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def load_or_create_signing_key(home: Path) -> Ed25519PrivateKey:
    """The instance's audit key, created (mode 600) on first use."""
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key; move it away to create a new one")
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key file (PEM) or a private key file, whose public half is used."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        if isinstance(private, Ed25519PrivateKey):
            return private.public_key()
    else:
        public = serialization.load_pem_public_key(data)
        if isinstance(public, Ed25519PublicKey):
            return public
    raise ValueError(f"{path} holds no Ed25519 key; export one with `egide audit public-key`")


def check_checkpoint(
    record: Record, previous: Record | None, public_key: Ed25519PublicKey, expected_key_id: str
) -> str | None:
    """What is wrong with a checkpoint record that follows ``previous``, or None."""
    try:
        body = orjson.loads(record.payload)
    except orjson.JSONDecodeError:
        return "checkpoint payload is not JSON"
    if not isinstance(body, dict) or set(body) != _FIELDS:
        return "checkpoint payload has the wrong fields"
    if previous is None:
        return "a checkpoint cannot be the first record"
    if body["covers_seq"] != previous.seq or body["covers_hash"] != previous.hash:
        return f"checkpoint does not cover the record before it (seq {previous.seq})"
    if body["key_id"] != expected_key_id:
        return f"checkpoint signed by key {body['key_id']!r}, not by {expected_key_id!r}"
    try:
        signature = base64.b64decode(body["signature"], validate=True)
        public_key.verify(signature, signed_message(previous.seq, previous.hash))
    except (InvalidSignature, binascii.Error, TypeError, ValueError):
        return "checkpoint signature is invalid"
    return None
