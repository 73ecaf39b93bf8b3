"""The administration service: organisations, users and API keys (no HTTP here).

Every method takes the :class:`Caller` first, builds the :class:`Resource` of its target
(kind + the target's org path), has the :class:`Guard` decide and audit, and on success
makes the change and audits an ``admin-change`` event. Listings cover only what the
caller may see. Quotas and usage live in :mod:`egide.tenancy.accounting`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from egide.audit.log import AuditLog
from egide.errors import InvalidRequest, NotFound
from egide.security.actions import Action
from egide.security.labels import Label
from egide.security.levels import LevelScheme
from egide.security.markings import render_portion
from egide.security.policy import Resource, Role
from egide.store.keys import KeyRecord
from egide.store.orgs import Org
from egide.store.quotas import Quota
from egide.store.users import UserRecord
from egide.tenancy import validation as check
from egide.tenancy.accounting import Accounting
from egide.tenancy.auth import Caller
from egide.tenancy.guard import Guard, org_path_text
from egide.tenancy.scope import Repositories, Scope

MAX_KEY_DAYS = 3650
USER_KEY_ROLE = "user"  # the api_keys.role of a user's key: its user's roles decide


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``key`` is shown once and never stored; ``record`` is what is kept."""

    key: str
    record: KeyRecord


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _within_scope(action: Action) -> Callable[[_Method], _Method]:
    """For a caller who administers only a subtree, a target that does not exist answers
    like one outside their scope (403), so that ids elsewhere cannot be probed."""

    def wrap(method: _Method) -> _Method:
        @wraps(method)
        def wrapped(self: Administration, caller: Caller, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, caller, *args, **kwargs)
            except NotFound:
                if caller.principal.roles & {Role.PLATFORM_ADMIN, Role.AUDITOR}:
                    raise
                raise self.guard.refuse(
                    caller,
                    action,
                    "unknown",
                    f"scope: {action.value} refused: the target is not within what you "
                    "administer (or does not exist)",
                ) from None

        return wrapped  # type: ignore[return-value]

    return wrap


class Administration:
    def __init__(
        self,
        repos: Repositories,
        audit: AuditLog,
        *,
        scheme: LevelScheme,
        ceiling: Label,
        models: Iterable[str] | None = None,
    ) -> None:
        self.repos = repos
        self.scheme = scheme
        self.ceiling = ceiling
        self.models = frozenset(models) if models is not None else None
        self.guard = Guard(audit, ceiling)
        self.scope = Scope(repos)
        self.accounting = Accounting(repos, self.guard, self.scope)

    # -- organisations ---------------------------------------------------------------

    @_within_scope(Action.ORG_CREATE)
    def create_org(self, caller: Caller, id: str, name: str, parent: str | None) -> Org:
        if not name.strip():
            raise InvalidRequest("give the organisation a name", param="name")
        path = (*(self.scope.org(parent) if parent else ()), id)
        self.guard.check(caller, Action.ORG_CREATE, Resource("org", path), f"org:{id}")
        org = self.repos.orgs.create(id, name, parent)
        self.guard.changed(caller, "org", org.id, f"created {name!r} at {org.path}")
        return org

    @_within_scope(Action.ORG_LIST)
    def list_orgs(self, caller: Caller, org: str | None = None) -> list[Org]:
        root = self.scope.listing_root(caller, org)
        self.guard.check(caller, Action.ORG_LIST, Resource("org", root), _listing("orgs", root))
        return self.scope.orgs_under(root)

    # -- users -----------------------------------------------------------------------

    @_within_scope(Action.USER_CREATE)
    def create_user(
        self,
        caller: Caller,
        username: str,
        org: str,
        nationality: str,
        clearance_marking: str,
        roles: Iterable[str],
        admin_scope: str | None = None,
    ) -> UserRecord:
        username = check.username(username)
        nationality = check.nationality(nationality)
        granted = check.roles(tuple(roles))
        label = check.clearance(clearance_marking, self.scheme, self.ceiling)
        if Role.ORG_ADMIN in granted and not admin_scope:
            raise InvalidRequest(
                "an org-admin needs admin_scope: the organisation whose subtree they administer",
                param="admin_scope",
            )
        if admin_scope and Role.ORG_ADMIN not in granted:
            raise InvalidRequest(
                "admin_scope is only for org-admins: add the role org-admin or drop admin_scope",
                param="admin_scope",
            )
        path = self.scope.org(org)
        scope_path = self._admin_scope_path(admin_scope)
        target = f"user:{username}"
        self.guard.check(caller, Action.USER_CREATE, Resource("user", path), target)
        self._may_grant(caller, Action.USER_CREATE, target, granted, scope_path)
        self._may_clear(caller, target, label)
        user = self.repos.users.create(
            username,
            org,
            nationality,
            render_portion(label)[1:-1],
            tuple(r.value for r in granted),
            admin_scope,
        )
        summary = (
            f"created user {username!r} in {org_path_text(path)}, roles "
            f"{','.join(user.roles)}, clearance {user.clearance}, nationality {nationality}"
        )
        if admin_scope:
            summary += f", admin scope {org_path_text(scope_path or ())}"
        self.guard.changed(caller, "user", user.id, summary)
        return user

    @_within_scope(Action.USER_LIST)
    def list_users(self, caller: Caller, org: str | None = None) -> list[UserRecord]:
        root = self.scope.listing_root(caller, org)
        self.guard.check(caller, Action.USER_LIST, Resource("user", root), _listing("users", root))
        return self.repos.users.in_orgs([o.id for o in self.scope.orgs_under(root)])

    # -- keys ------------------------------------------------------------------------

    @_within_scope(Action.KEY_CREATE)
    def create_key(
        self,
        caller: Caller,
        user_id: str,
        name: str | None = None,
        models: Iterable[str] | None = None,
        expires_in_days: int | None = None,
        *,
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        allowed_models = self._models(models)
        expiry = _expiry(expires_in_days, expires_at)
        user, path = self.scope.user(user_id)
        target = f"user:{user.id}"
        resource = Resource("key", path, owner=user.id)
        self.guard.check(caller, Action.KEY_CREATE, resource, target)
        roles = tuple(Role(r) for r in user.roles)
        scope_path = self._admin_scope_path(user.admin_scope)
        self._may_grant(caller, Action.KEY_CREATE, target, roles, scope_path)
        if user.disabled:
            raise InvalidRequest(f"user {user.username!r} is disabled; enable them first")
        key, record = self.repos.keys.create(
            USER_KEY_ROLE, user_id=user.id, name=name, models=allowed_models, expires_at=expiry
        )
        limits = ",".join(sorted(allowed_models)) if allowed_models is not None else "all"
        self.guard.changed(
            caller,
            "key",
            record.id,
            f"issued key {record.prefix}… to {user.username!r} (models {limits}, "
            f"expires {record.expires_at or 'never'})",
        )
        return IssuedKey(key, record)

    @_within_scope(Action.KEY_LIST)
    def list_keys(self, caller: Caller, org: str | None = None) -> list[KeyRecord]:
        root = self.scope.listing_root(caller, org)
        self.guard.check(caller, Action.KEY_LIST, Resource("key", root), _listing("keys", root))
        if not root:
            return self.repos.keys.all()
        users = self.repos.users.in_orgs([o.id for o in self.scope.orgs_under(root)])
        return self.repos.keys.for_users([u.id for u in users])

    @_within_scope(Action.KEY_REVOKE)
    def revoke_key(self, caller: Caller, key_id: str) -> KeyRecord:
        record = self.repos.keys.get(key_id)
        resource = Resource("key", self.scope.key(record), owner=record.user_id)
        self.guard.check(caller, Action.KEY_REVOKE, resource, f"key:{key_id}")
        self._may_touch_key(caller, Action.KEY_REVOKE, record)
        self.repos.keys.revoke(key_id)
        self.guard.changed(caller, "key", key_id, f"revoked key {record.prefix}…")
        return self.repos.keys.get(key_id)

    # -- quotas and usage ------------------------------------------------------------

    @_within_scope(Action.QUOTA_SET)
    def set_quota(self, caller: Caller, subject: str, limits: Mapping[str, Any]) -> Quota:
        return self.accounting.set_quota(caller, subject, limits)

    @_within_scope(Action.QUOTA_READ)
    def get_quota(self, caller: Caller, subject: str) -> Quota:
        return self.accounting.get_quota(caller, subject)

    @_within_scope(Action.USAGE_READ)
    def usage(self, caller: Caller, **filters: Any) -> dict[str, Any]:
        return self.accounting.usage(caller, **filters)

    # -- rules on top of the policy --------------------------------------------------

    def _admin_scope_path(self, admin_scope: str | None) -> tuple[str, ...] | None:
        if not admin_scope:
            return None
        try:
            return self.scope.org(admin_scope)
        except NotFound:
            raise NotFound(
                f"admin_scope organisation {admin_scope!r} does not exist; create it first "
                "or list them with GET /v1/admin/orgs"
            ) from None

    def _may_grant(
        self,
        caller: Caller,
        action: Action,
        target: str,
        roles: tuple[Role, ...],
        scope_path: tuple[str, ...] | None,
    ) -> None:
        """No escalation: only a platform-admin grants platform-admin or auditor, and an
        org-admin's scope must lie inside what the caller administers."""
        high = sorted(r.value for r in roles if r in (Role.PLATFORM_ADMIN, Role.AUDITOR))
        if high and Role.PLATFORM_ADMIN not in caller.principal.roles:
            raise self.guard.refuse(
                caller,
                action,
                target,
                f"role: only a platform-admin may grant or issue keys for {', '.join(high)}",
            )
        if scope_path is not None:
            self.guard.check(caller, action, Resource("user", scope_path), target)

    def _may_clear(self, caller: Caller, target: str, label: Label) -> None:
        """No one but a platform-admin grants a clearance above their own."""
        if Role.PLATFORM_ADMIN in caller.principal.roles:
            return
        own = caller.principal.clearance
        if not (own.level >= label.level and own.compartments >= label.compartments):
            raise self.guard.refuse(
                caller,
                Action.USER_CREATE,
                target,
                f"clearance: {render_portion(label)} is above the caller's own clearance; "
                "ask a platform-admin to register it",
            )

    def _may_touch_key(self, caller: Caller, action: Action, record: KeyRecord) -> None:
        """Keys of platform-admins and auditors are managed by platform-admins only."""
        if Role.PLATFORM_ADMIN in caller.principal.roles:
            return
        high = self.scope.protected_roles(record)
        if high:
            raise self.guard.refuse(
                caller,
                action,
                f"key:{record.id}",
                f"role: only a platform-admin may manage the keys of a {', '.join(high)}",
            )

    def _models(self, models: Iterable[str] | None) -> frozenset[str] | None:
        if models is None:
            return None
        chosen = frozenset(models)
        if not chosen:
            raise InvalidRequest("models is empty: omit it to allow every model", param="models")
        unknown = sorted(chosen - self.models) if self.models is not None else []
        if unknown:
            served = ", ".join(sorted(self.models or ())) or "none"
            raise InvalidRequest(
                f"unknown model(s) {', '.join(unknown)}; the served models are {served}",
                param="models",
            )
        return chosen


def _listing(kind: str, root: tuple[str, ...]) -> str:
    return f"{kind}:{org_path_text(root) or '*'}"


def _expiry(days: int | None, at: datetime | None) -> datetime | None:
    if days is not None and at is not None:
        raise InvalidRequest("give expires_in_days or expires_at, not both")
    if at is not None:
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    if days is None:
        return None
    if isinstance(days, bool) or not 0 <= days <= MAX_KEY_DAYS:
        raise InvalidRequest(
            f"expires_in_days must be between 0 and {MAX_KEY_DAYS}", param="expires_in_days"
        )
    return datetime.now(UTC) + timedelta(days=days)
