"""Bearer-key authentication into a :class:`Caller`: who is asking, with what clearance.

Keys are random, shown once, and stored only as a SHA-256 digest. The key's row is read
on every request, so that a revocation or an expiry takes effect at once, in every
gateway process sharing the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from egide.audit.events import AuthFailed, AuthSucceeded
from egide.audit.log import AuditLog
from egide.errors import AuthenticationFailed
from egide.security.labels import Clearance, Label
from egide.security.levels import LevelScheme
from egide.security.markings import parse_marking
from egide.security.policy import Principal, Role
from egide.store.keys import KEY_PREFIX, KeyRecord, KeyRepository, digest
from egide.store.orgs import OrgRepository
from egide.store.users import UserRepository

ADMIN_ROLE = "platform-admin"
BOOTSTRAP_USER = "bootstrap-admin"


@dataclass(frozen=True)
class Caller:
    """An authenticated request's principal, with the key it used."""

    principal: Principal
    key: KeyRecord
    org_id: str | None  # None for the bootstrap admin key
    request_id: str = ""  # ties every audit event of one request together

    @property
    def quota_subjects(self) -> list[str]:
        """The budgets a request spends: its key's and every organisation's above it."""
        return [f"key:{self.key.id}", *(f"org:{o}" for o in self.principal.org_path)]


class Authenticator:
    def __init__(
        self,
        keys: KeyRepository,
        users: UserRepository,
        orgs: OrgRepository,
        scheme: LevelScheme,
        ceiling: Label,
        audit: AuditLog | None = None,
    ) -> None:
        self.audit = audit
        self.keys = keys
        self.users = users
        self.orgs = orgs
        self.scheme = scheme
        self.ceiling = ceiling

    def authenticate(self, authorization: str | None, request_id: str = "") -> Caller:
        """The caller behind an ``Authorization`` header; every attempt is audited."""
        try:
            caller = replace(self._authenticate(authorization), request_id=request_id)
        except AuthenticationFailed as exc:
            if self.audit is not None:
                key = (authorization or "").partition(" ")[2].strip()
                prefix = key[:12] if key.startswith(KEY_PREFIX) else ""
                self.audit.append(
                    AuthFailed(reason=exc.message, key_prefix=prefix, request_id=request_id)
                )
            raise
        if self.audit is not None:
            self.audit.append(
                AuthSucceeded(
                    actor=caller.principal.user_id,
                    org_path="/".join(caller.principal.org_path),
                    request_id=request_id,
                )
            )
        return caller

    def _authenticate(self, authorization: str | None) -> Caller:
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
        record = self.keys.lookup(digest(key.strip()))
        if record is None or not record.usable(datetime.now(UTC)):
            raise AuthenticationFailed(
                "the API key is not valid (unknown, revoked or expired); check for a typo "
                "or ask an administrator for a new key"
            )
        return self.caller(record)

    def caller(self, record: KeyRecord) -> Caller:
        if record.user_id is None:  # the bootstrap key: platform-wide, cleared to the ceiling
            principal = Principal(
                user_id=BOOTSTRAP_USER,
                org_path=(),
                roles=frozenset({Role(record.role)}),
                clearance=Clearance(self.ceiling.level, self.ceiling.compartments, "FRA"),
                key_models=record.models,
            )
            return Caller(principal, record, None)
        user = self.users.get(record.user_id)
        if user.disabled:
            raise AuthenticationFailed("this key's user is disabled; ask an administrator")
        label = parse_marking(user.clearance, self.scheme)
        admin_scope = self.orgs.get(user.admin_scope).lineage if user.admin_scope else None
        principal = Principal(
            user_id=user.id,
            org_path=self.orgs.get(user.org_id).lineage,
            roles=frozenset(Role(r) for r in user.roles),
            clearance=Clearance(label.level, label.compartments, user.nationality),
            admin_scope=admin_scope,
            key_models=record.models,
        )
        return Caller(principal, record, user.org_id)


def local_caller(ceiling: Label) -> Caller:
    """The caller of in-process use (``egide chat --in-process``): the machine's operator."""
    record = KeyRecord("local", "local", ADMIN_ROLE, None, "in-process", None, None, None)
    principal = Principal(
        user_id="local",
        org_path=(),
        roles=frozenset({Role.PLATFORM_ADMIN}),
        clearance=Clearance(ceiling.level, ceiling.compartments, "FRA"),
    )
    return Caller(principal, record, None)


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
