"""The policy engine: (principal, action, resource, ceiling) → Decision(allowed, reason).

Pure and deterministic. Every decision, allow or deny, carries a human-readable ``reason``
and the ``rule`` that decided it, both meant for the audit record. Checks, in order:

1. **Role.** ``platform-admin`` may do every admin action anywhere. ``org-admin`` may do the
   org/user/key/quota/usage actions inside their subtree (the resource's ``org_path`` starts
   with ``admin_scope``; ``org-create`` and ``org-delete`` strictly below it, so an org-admin
   cannot delete or re-create their own root), never ``config-read`` nor audit actions.
   ``auditor`` may ``audit-read``, ``audit-export``, ``usage-read``, ``org-list``,
   ``user-list`` and ``quota-read`` everywhere (reading, never changing), nothing else.
   ``user`` may read their own usage (``resource.owner == user_id``). Inference actions
   (chat, complete, embed, list-models, use-model) are granted by ``user``, ``org-admin`` and
   ``platform-admin`` — not by ``auditor`` alone (separation of duties) — on resources of the
   caller's organisation or an ancestor (``resource.org_path`` a prefix of ``org_path``;
   ``()`` is platform-wide). With several roles, any granting role suffices.
   Knowledge actions are granted by the same three roles. ``library-read`` and
   ``library-write`` follow the inference rule, ``resource.org_path`` being the subtree the
   library is shared with (readers or writers). ``library-create`` and ``library-manage``
   are for the platform-admin anywhere, an org-admin inside their scope, and a user in their
   own organisation (create) or on a library they created (manage).
2. **Key scope.** A key limited to models (``key_models``) may chat/complete/embed/use-model
   only with a named model in that set.
3. **Ceiling.** A labelled resource must be within the instance ceiling: its level at most
   the ceiling's level and, when the ceiling names compartments, only those compartments.
   Releasability is not an accreditation matter and is left to the clearance check (a
   Spécial France document is fine on any instance accredited for its level).
4. **Clearance.** The principal's clearance must dominate the resource's label; the reason
   says which part failed: level, compartment or releasability.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from egide.errors import PolicyError
from egide.security.actions import (
    AUDITOR_ACTIONS,
    INFERENCE_ACTIONS,
    KNOWLEDGE_ACTIONS,
    MODEL_SCOPED_ACTIONS,
    SHARED_ACTIONS,
    TENANCY_ACTIONS,
    Action,
)
from egide.security.labels import Clearance, Label, clearance_gap, label_gap


class Role(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    ORG_ADMIN = "org-admin"
    USER = "user"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Principal:
    """Who is asking: resolved by tenancy from an API key."""

    user_id: str
    org_path: tuple[str, ...]
    roles: frozenset[Role]
    clearance: Clearance
    admin_scope: tuple[str, ...] | None = None
    key_models: frozenset[str] | None = None


@dataclass(frozen=True)
class Resource:
    """What is acted on: ``kind`` ("model", "org", "user", "key", "usage", "audit", ...)."""

    kind: str
    org_path: tuple[str, ...] = ()
    label: Label | None = None
    model: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    action: Action
    user_id: str
    rule: str
    resource: Resource


_AUDITOR_MAY = ", ".join(sorted(AUDITOR_ACTIONS))


def _path(path: tuple[str, ...]) -> str:
    return "/".join(path) if path else "(root)"


def _role_check(p: Principal, action: Action, r: Resource) -> tuple[bool, str, str]:
    """(allowed, rule, reason) for the role part of the decision."""
    if action in KNOWLEDGE_ACTIONS - SHARED_ACTIONS:
        return _owner_check(p, action, r)
    if action in INFERENCE_ACTIONS | SHARED_ACTIONS:
        granting = p.roles & {Role.USER, Role.ORG_ADMIN, Role.PLATFORM_ADMIN}
        if not granting:
            roles = ", ".join(sorted(p.roles)) or "no role"
            return (
                False,
                "role",
                (
                    f"role: {action} needs the role user, org-admin or platform-admin; "
                    f"the caller has {roles}"
                ),
            )
        if p.org_path[: len(r.org_path)] != r.org_path:
            return (
                False,
                "scope",
                (
                    f"scope: the {r.kind} belongs to organisation {_path(r.org_path)}, which is "
                    f"neither the caller's organisation {_path(p.org_path)} nor an ancestor of it"
                ),
            )
        return True, "role", f"role: {sorted(granting)[0]} may {action}"
    if Role.PLATFORM_ADMIN in p.roles:
        return True, "role", f"role: platform-admin may {action} anywhere"
    denials: list[tuple[str, str]] = []
    if Role.AUDITOR in p.roles:
        if action in AUDITOR_ACTIONS:
            return True, "role", f"role: auditor may {action} anywhere"
        denials.append(("role", f"auditor may only {_AUDITOR_MAY}, not {action}"))
    if Role.ORG_ADMIN in p.roles:
        if action not in TENANCY_ACTIONS:
            denials.append(("role", f"org-admin may never {action} (platform-admin only)"))
        elif p.admin_scope is None:
            denials.append(("scope", "org-admin has no admin scope configured"))
        else:
            scope, target = p.admin_scope, r.org_path
            strict = action in (Action.ORG_CREATE, Action.ORG_DELETE)
            inside = target[: len(scope)] == scope and (len(target) > len(scope) or not strict)
            if inside:
                return (
                    True,
                    "role",
                    (f"role: org-admin of {_path(scope)} may {action} on {_path(target)}"),
                )
            where = "strictly below" if strict else "inside"
            denials.append(
                (
                    "scope",
                    f"org-admin of {_path(scope)} may {action} only {where} that subtree, "
                    f"not on {_path(target)}",
                )
            )
    if Role.USER in p.roles:
        if action is Action.USAGE_READ and r.owner == p.user_id:
            return True, "role", "role: a user may read their own usage"
        own = " (only their own usage)" if action is Action.USAGE_READ else ""
        denials.append(("role", f"user may not {action}{own}"))
    if not denials:
        return False, "role", f"role: the caller has no role granting {action}"
    rule = "scope" if any(kind == "scope" for kind, _ in denials) else "role"
    return False, rule, f"{rule}: " + "; ".join(text for _, text in denials)


def _owner_check(p: Principal, action: Action, r: Resource) -> tuple[bool, str, str]:
    """Creating and managing a library: who answers for the organisation that owns it."""
    if Role.PLATFORM_ADMIN in p.roles:
        return True, "role", f"role: platform-admin may {action} anywhere"
    scope = p.admin_scope
    if Role.ORG_ADMIN in p.roles and scope is not None and r.org_path[: len(scope)] == scope:
        return (
            True,
            "role",
            f"role: org-admin of {_path(scope)} may {action} on {_path(r.org_path)}",
        )
    if Role.USER in p.roles or Role.ORG_ADMIN in p.roles:
        if action is Action.LIBRARY_CREATE and r.org_path == p.org_path and r.org_path:
            return True, "role", "role: a user may create a library in their own organisation"
        if action is Action.LIBRARY_MANAGE and r.owner is not None and r.owner == p.user_id:
            return True, "role", "role: the creator of a library may manage it"
        what = (
            "only in their own organisation"
            if action is Action.LIBRARY_CREATE
            else "only on a library they created"
        )
        return (
            False,
            "scope",
            (f"scope: the caller may {action} {what}; the library belongs to {_path(r.org_path)}"),
        )
    roles = ", ".join(sorted(p.roles)) or "no role"
    return (
        False,
        "role",
        f"role: {action} needs the role user, org-admin or platform-admin; the caller has {roles}",
    )


def _key_check(p: Principal, action: Action, r: Resource) -> str | None:
    if action not in MODEL_SCOPED_ACTIONS or p.key_models is None:
        return None
    allowed = ", ".join(sorted(p.key_models)) or "none"
    if r.model is None:
        return f"key-models: this API key is limited to models [{allowed}] and no model is named"
    if r.model not in p.key_models:
        return f"key-models: this API key is limited to models [{allowed}], not {r.model}"
    return None


def decide(principal: Principal, action: Action, resource: Resource, *, ceiling: Label) -> Decision:
    """Decide whether ``principal`` may do ``action`` on ``resource`` (module docstring)."""

    def done(allowed: bool, rule: str, reason: str) -> Decision:
        return Decision(allowed, reason, action, principal.user_id, rule, resource)

    allowed, rule, reason = _role_check(principal, action, resource)
    if not allowed:
        return done(False, rule, reason)
    key_denial = _key_check(principal, action, resource)
    if key_denial is not None:
        return done(False, "key-models", key_denial)
    label = resource.label
    if label is None:
        return done(True, rule, reason)
    try:
        over = over_ceiling(ceiling, label)
        gap = clearance_gap(principal.clearance, label)
    except PolicyError as exc:
        return done(False, "scheme", f"scheme: {exc.message}")
    if over is not None:
        return done(
            False,
            "ceiling",
            f"ceiling: the {resource.kind} is above the instance "
            f"ceiling {ceiling.level.code} ({over[1]})",
        )
    if gap is not None:
        return done(False, gap[0], gap[1])
    return done(True, rule, f"{reason}; the clearance dominates the {label.level.code} label")


def over_ceiling(ceiling: Label, label: Label) -> tuple[str, str] | None:
    """Why ``label`` is above ``ceiling`` (an instance's or a library's), or None: the
    level, and the compartments when the ceiling lists some. Releasability is not an
    accreditation matter: a Spécial France document fits any ceiling of its level."""
    within = Label(ceiling.level, ceiling.compartments or label.compartments, None)
    return label_gap(within, Label(label.level, label.compartments, None))
