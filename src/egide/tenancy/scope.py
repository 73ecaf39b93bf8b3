"""Where an administration target sits in the organisation tree (its resource's org path)."""

from __future__ import annotations

from dataclasses import dataclass

from egide.security.policy import Role
from egide.store.db import Database
from egide.store.keys import KeyRecord, KeyRepository
from egide.store.orgs import Org, OrgRepository
from egide.store.quotas import QuotaRepository
from egide.store.usage import UsageRepository
from egide.store.users import UserRecord, UserRepository
from egide.tenancy.auth import Caller

EVERYWHERE_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR})


@dataclass(frozen=True)
class Repositories:
    orgs: OrgRepository
    users: UserRepository
    keys: KeyRepository
    quotas: QuotaRepository
    usage: UsageRepository

    @classmethod
    def on(cls, db: Database) -> Repositories:
        return cls(
            OrgRepository(db),
            UserRepository(db),
            KeyRepository(db),
            QuotaRepository(db),
            UsageRepository(db),
        )


class Scope:
    """Org paths of targets, and the part of the tree a listing covers."""

    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    def org(self, org_id: str) -> tuple[str, ...]:
        return self.repos.orgs.get(org_id).lineage

    def user(self, user_id: str) -> tuple[UserRecord, tuple[str, ...]]:
        user = self.repos.users.get(user_id)
        return user, self.org(user.org_id)

    def key(self, key: KeyRecord) -> tuple[str, ...]:
        """The org path of a key's user; ``()`` (platform-wide) for the bootstrap key."""
        return self.user(key.user_id)[1] if key.user_id else ()

    def listing_root(self, caller: Caller, org: str | None) -> tuple[str, ...]:
        """The subtree a listing covers: the named org, else all the caller may see."""
        if org:
            return self.org(org)
        p = caller.principal
        if p.roles & EVERYWHERE_ROLES:
            return ()
        if Role.ORG_ADMIN in p.roles and p.admin_scope is not None:
            return p.admin_scope
        return p.org_path

    def orgs_under(self, path: tuple[str, ...]) -> list[Org]:
        return self.repos.orgs.all() if not path else self.repos.orgs.subtree(path[-1])

    def protected_roles(self, key: KeyRecord) -> list[str]:
        """Roles of a key's holder that only a platform-admin may manage keys for."""
        roles = {key.role}
        if key.user_id is not None:
            roles |= set(self.repos.users.get(key.user_id).roles)
        return sorted(roles & {"platform-admin", "auditor"})
