"""Quotas (``org:<id>`` and ``key:<id>`` budgets) and usage reports, decided and audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from egide.errors import InvalidRequest
from egide.security.actions import Action
from egide.security.policy import Resource, Role
from egide.store.quotas import Quota
from egide.tenancy import validation as check
from egide.tenancy.auth import Caller
from egide.tenancy.guard import Guard, org_path_text
from egide.tenancy.scope import EVERYWHERE_ROLES, Repositories, Scope

LIMITS = ("requests_per_min", "tokens_per_min", "tokens_per_day")
TOTALS = ("requests", "prompt_tokens", "completion_tokens")


class Accounting:
    def __init__(self, repos: Repositories, guard: Guard, scope: Scope) -> None:
        self.repos = repos
        self.guard = guard
        self.scope = scope

    def _subject_path(self, subject: str) -> tuple[str, ...]:
        kind, ident = check.subject(subject)
        if kind == "org":
            return self.scope.org(ident)
        return self.scope.key(self.repos.keys.get(ident))

    def set_quota(self, caller: Caller, subject: str, limits: Mapping[str, Any]) -> Quota:
        unknown = sorted(set(limits) - set(LIMITS))
        if unknown:
            raise InvalidRequest(
                f"unknown quota limit(s) {', '.join(unknown)}; use {', '.join(LIMITS)}",
                param=unknown[0],
            )
        values = {name: check.limit(name, limits.get(name)) for name in LIMITS}
        path = self._subject_path(subject)
        self.guard.check(caller, Action.QUOTA_SET, Resource("quota", path), subject)
        p = caller.principal
        if (
            subject.startswith("org:")
            and Role.PLATFORM_ADMIN not in p.roles
            and path == p.admin_scope
        ):
            raise self.guard.refuse(
                caller,
                Action.QUOTA_SET,
                subject,
                f"scope: an org-admin may not change the quota of their own root "
                f"{org_path_text(path)}, only below it; ask a platform-admin",
            )
        if subject.startswith("key:") and Role.PLATFORM_ADMIN not in p.roles:
            high = self.scope.protected_roles(self.repos.keys.get(subject.removeprefix("key:")))
            if high:
                raise self.guard.refuse(
                    caller,
                    Action.QUOTA_SET,
                    subject,
                    f"role: only a platform-admin may set quotas on the keys of a "
                    f"{', '.join(high)}",
                )
        quota = Quota(subject, **values)
        self.repos.quotas.set(quota)
        shown = ", ".join(f"{k}={'unset' if v is None else v}" for k, v in values.items())
        self.guard.changed(caller, "quota", subject, f"set {shown}")
        return quota

    def get_quota(self, caller: Caller, subject: str) -> Quota:
        path = self._subject_path(subject)
        self.guard.check(caller, Action.QUOTA_READ, Resource("quota", path), subject)
        return self.repos.quotas.get(subject) or Quota(subject)

    def usage(
        self,
        caller: Caller,
        *,
        org: str | None = None,
        user: str | None = None,
        model: str | None = None,
        since: str | None = None,
        until: str | None = None,
        group_by: tuple[str, ...] | list[str] = ("day", "model"),
    ) -> dict[str, Any]:
        """Totals of requests and tokens, grouped; a plain user gets their own usage."""
        columns = check.group_by(group_by)
        since, until = check.day(since, "since"), check.day(until, "until")
        p = caller.principal
        if not org and not user and not p.roles & (EVERYWHERE_ROLES | {Role.ORG_ADMIN}):
            user = p.user_id  # a user with no admin role: their own usage
        if user:
            path = self.scope.user(user)[1]
            resource = Resource("usage", path, owner=user)
            target = f"usage:user:{user}"
            within = self.scope.org(org) if org else ()
        else:
            path = within = self.scope.listing_root(caller, org)
            resource = Resource("usage", path)
            target = f"usage:{org_path_text(path) or '*'}"
        self.guard.check(caller, Action.USAGE_READ, resource, target)
        org_ids = [o.id for o in self.scope.orgs_under(within)] if within else None
        rows = self.repos.usage.query(
            org_ids=org_ids,
            user_id=user,
            model=model,
            since=since,
            until=until,
            group_by=columns,
        )
        totals = {name: sum(int(str(r[name])) for r in rows) for name in TOTALS}
        return {
            "object": "usage",
            "filters": {"org": org, "user": user, "model": model, "since": since, "until": until},
            "group_by": list(columns),
            "data": rows,
            "totals": totals,
        }
