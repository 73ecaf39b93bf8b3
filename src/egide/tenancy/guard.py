"""The administration's gate: every decision is taken by the policy engine and audited.

:meth:`Guard.check` asks :func:`~egide.security.policy.decide`, appends a ``decision``
event whatever the outcome (with the decision's reason), and raises
:class:`~egide.errors.PermissionDenied` carrying that same reason when it is a refusal.
:meth:`Guard.refuse` records a refusal decided by a service rule that sits on top of the
policy (e.g. only a platform-admin may grant the platform-admin role).
"""

from __future__ import annotations

from egide.audit.events import AdminChange, AdminKind
from egide.audit.events import Decision as DecisionEvent
from egide.audit.log import AuditLog
from egide.errors import PermissionDenied
from egide.security.actions import Action
from egide.security.labels import Label
from egide.security.policy import Decision, Resource, decide
from egide.tenancy.auth import Caller


def org_path_text(path: tuple[str, ...]) -> str:
    return "/".join(path)


class Guard:
    def __init__(self, audit: AuditLog, ceiling: Label) -> None:
        self.audit = audit
        self.ceiling = ceiling

    def check(self, caller: Caller, action: Action, resource: Resource, target: str) -> Decision:
        """Decide, audit, and raise ``PermissionDenied(reason)`` on a refusal."""
        decision = decide(caller.principal, action, resource, ceiling=self.ceiling)
        self._record(caller, action, target, decision.allowed, decision.reason)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        return decision

    def refuse(self, caller: Caller, action: Action, target: str, reason: str) -> PermissionDenied:
        """Audit a refusal decided by a service rule; return the error to raise."""
        self._record(caller, action, target, False, reason)
        return PermissionDenied(reason)

    def changed(self, caller: Caller, kind: AdminKind, target: str, summary: str) -> None:
        """Audit a change that was made (the summary never holds a key or a secret)."""
        self.audit.append(
            AdminChange(
                actor=caller.principal.user_id,
                request_id=caller.request_id,
                org_path=org_path_text(caller.principal.org_path),
                kind=kind,
                target=target,
                summary=summary,
            )
        )

    def _record(
        self, caller: Caller, action: Action, target: str, allowed: bool, reason: str
    ) -> None:
        self.audit.append(
            DecisionEvent(
                actor=caller.principal.user_id,
                request_id=caller.request_id,
                org_path=org_path_text(caller.principal.org_path),
                action=action.value,
                resource=target,
                allowed=allowed,
                reason=reason,
            )
        )
