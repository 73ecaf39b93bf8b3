"""Bearer-key authentication.

Keys are random, shown once, and stored only as a SHA-256 digest. The lookup is a dict
hit on the digest (no timing leak on the key itself: the digest is what is compared).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from egide.errors import AuthenticationFailed
from egide.store.keys import KeyRepository, digest

ADMIN_ROLE = "platform-admin"


@dataclass(frozen=True)
class Principal:
    key_digest: str
    role: str


class Authenticator:
    """Reads the key's row on every request, so that a revocation or an expiry takes
    effect at once, in every gateway process sharing the database."""

    def __init__(self, keys: KeyRepository) -> None:
        self.keys = keys

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthenticationFailed(
                "no API key: send the header 'Authorization: Bearer <key>' "
                "(the admin key is in $EGIDE_HOME/admin.key)"
            )
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationFailed(
                "malformed Authorization header: expected 'Authorization: Bearer <key>'"
            )
        key_digest = digest(key.strip())
        record = self.keys.lookup(key_digest)
        if record is None or not record.usable(datetime.now(UTC)):
            raise AuthenticationFailed(
                "the API key is not valid (unknown, revoked or expired); check for a typo "
                "or ask an administrator for a new key"
            )
        return Principal(key_digest=key_digest, role=record.role)


def ensure_admin_key(home: Path, keys: KeyRepository) -> str | None:
    """Create the admin key on first start: write it to ``home/admin.key`` (mode 600) and
    return it so that it is printed once. Return None when one already exists."""
    if keys.has_role(ADMIN_ROLE):
        return None
    key, _record = keys.create(ADMIN_ROLE, name="bootstrap admin")
    path = home / "admin.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key
