"""The administration service on SQLite and PostgreSQL: the permission matrix (every role ×
every admin action × target inside / outside an org-admin's subtree), each decision audited
with its reason, the anti-escalation rules and input validation."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from egide.audit.checkpoints import Signer, load_or_create_signing_key
from egide.audit.log import AuditLog
from egide.errors import InvalidRequest, NotFound, PermissionDenied
from egide.security.levels import FRENCH
from egide.security.markings import parse_marking
from egide.store.usage import UsageRow
from egide.tenancy.admin import Administration
from egide.tenancy.auth import Authenticator, Caller
from egide.tenancy.scope import Repositories

CEILING = parse_marking("S", FRENCH)
ROLES = ("platform-admin", "org-admin", "user", "auditor")
WHERE = {True: "essais", False: "ema"}  # inside / outside the org-admin's subtree (dga)


@dataclass
class World:
    admin: Administration
    audit: AuditLog
    repos: Repositories
    db: Any
    callers: dict[str, Caller]
    bootstrap: Caller
    targets: dict[str, str]  # org id → id of a plain user in it

    def records(self, after: int = 0) -> list[tuple[str, dict[str, Any]]]:
        self.audit.flush()
        rows = self.db.query(
            "SELECT seq, event, payload FROM audit_records WHERE seq > ? ORDER BY seq", (after,)
        )
        return [(r["event"], orjson.loads(r["payload"])) for r in rows]

    def head(self) -> int:
        self.audit.flush()
        rows = self.db.query("SELECT MAX(seq) AS m FROM audit_records")
        return int(rows[0]["m"] or 0)


@pytest.fixture
def world(database, tmp_path) -> Iterator[World]:
    repos = Repositories.on(database)
    audit = AuditLog(database, Signer(load_or_create_signing_key(tmp_path)), max_wait=0)
    admin = Administration(repos, audit, scheme=FRENCH, ceiling=CEILING, models=["echo"])
    auth = Authenticator(repos.keys, repos.users, repos.orgs, FRENCH, CEILING)
    _, boot_record = repos.keys.create("platform-admin", name="bootstrap admin")
    boot = auth.caller(boot_record)
    admin.create_org(boot, "minarm", "Ministère des Armées", None)
    admin.create_org(boot, "dga", "DGA", "minarm")
    admin.create_org(boot, "essais", "DGA Essais", "dga")
    admin.create_org(boot, "ema", "État-major des armées", "minarm")
    people = {
        "platform-admin": ("pa", "minarm", None),
        "org-admin": ("oa", "dga", "dga"),
        "user": ("u", "essais", None),
        "auditor": ("aud", "minarm", None),
    }
    callers = {}
    for role, (name, org, scope) in people.items():
        user = admin.create_user(boot, name, org, "FRA", "S", [role], scope)
        callers[role] = auth.caller(admin.create_key(boot, user.id).record)
    targets = {
        org: admin.create_user(boot, f"target-{org}", org, "FRA", "DR", ["user"]).id
        for org in WHERE.values()
    }
    yield World(admin, audit, repos, database, callers, boot, targets)
    audit.close()


def _actions(w: World) -> dict[str, tuple[bool, Callable[[Caller, str], Any]]]:
    """action → (changes state?, call(caller, org of the target))."""
    counter = itertools.count()
    a = w.admin

    def new_key(org: str) -> str:
        return a.create_key(w.bootstrap, w.targets[org]).record.id

    return {
        "create_org": (True, lambda c, org: a.create_org(c, f"new-{next(counter)}", "N", org)),
        "list_orgs": (False, lambda c, org: a.list_orgs(c, org)),
        "create_user": (
            True,
            lambda c, org: a.create_user(c, f"n{next(counter)}", org, "FRA", "DR", ["user"]),
        ),
        "list_users": (False, lambda c, org: a.list_users(c, org)),
        "create_key": (True, lambda c, org: a.create_key(c, w.targets[org], "k")),
        "list_keys": (False, lambda c, org: a.list_keys(c, org)),
        "revoke_key": (True, lambda c, org: a.revoke_key(c, new_key(org))),
        "set_quota": (True, lambda c, org: a.set_quota(c, f"org:{org}", {"tokens_per_day": 9})),
        "set_key_quota": (
            True,
            lambda c, org: a.set_quota(c, f"key:{new_key(org)}", {"requests_per_min": 5}),
        ),
        "get_quota": (False, lambda c, org: a.get_quota(c, f"org:{org}")),
        "usage": (False, lambda c, org: a.usage(c, org=org)),
        "user_usage": (False, lambda c, org: a.usage(c, user=w.targets[org])),
    }


READS = {"list_orgs", "list_users", "get_quota", "usage", "user_usage"}
AUDITOR_ALLOWED = {"list_orgs", "list_users", "get_quota", "usage", "user_usage"}


def _expected(role: str, action: str, inside: bool) -> bool:
    if role == "platform-admin":
        return True
    if role == "org-admin":
        return inside
    if role == "auditor":
        return action in AUDITOR_ALLOWED
    return False


def test_permission_matrix_is_decided_and_audited(world: World) -> None:
    actions = _actions(world)
    failures: list[str] = []
    cases = list(itertools.product(ROLES, actions, [True, False]))
    assert len(cases) == 4 * 12 * 2
    for role, action, inside in cases:
        changes, call = actions[action]
        label = f"{role} {action} {'inside' if inside else 'outside'}"
        before = world.head()
        try:
            call(world.callers[role], WHERE[inside])
            error: PermissionDenied | None = None
        except PermissionDenied as exc:
            error = exc
        allowed = error is None
        if allowed is not _expected(role, action, inside):
            failures.append(f"{label}: allowed={allowed} ({error})")
            continue
        actor = world.callers[role].principal.user_id
        mine = [(n, p) for n, p in world.records(before) if p["actor"] == actor]
        decisions = [p for n, p in mine if n == "decision"]
        if error is not None:
            refused = [d for d in decisions if d["allowed"] is False]
            if [d["reason"] for d in refused] != [error.message]:
                failures.append(f"{label}: audited refusals {refused} != {error.message!r}")
            if any(n == "admin-change" for n, _ in mine):
                failures.append(f"{label}: a refused action was recorded as a change")
        else:
            if not decisions or not all(d["allowed"] for d in decisions):
                failures.append(f"{label}: no allowed decision audited: {decisions}")
            if changes and not any(n == "admin-change" for n, _ in mine):
                failures.append(f"{label}: no admin-change event")
            if not changes and any(n == "admin-change" for n, _ in mine):
                failures.append(f"{label}: a read was recorded as a change")
    assert not failures, "\n".join(failures)


def test_listings_cover_only_what_the_caller_may_see(world: World) -> None:
    oa, aud = world.callers["org-admin"], world.callers["auditor"]
    assert [o.id for o in world.admin.list_orgs(oa)] == ["dga", "essais"]
    assert {u.org_id for u in world.admin.list_users(oa)} == {"dga", "essais"}
    assert {o.id for o in world.admin.list_orgs(aud)} == {"minarm", "dga", "essais", "ema"}
    assert {u.username for u in world.admin.list_users(aud, "ema")} == {"target-ema"}
    keys = world.admin.list_keys(oa)
    owners = {k.user_id for k in keys}
    assert owners == {oa.principal.user_id, world.callers["user"].principal.user_id}
    everything = world.admin.list_keys(world.callers["platform-admin"])
    assert any(k.user_id is None for k in everything)  # the bootstrap key
    with pytest.raises(PermissionDenied, match="user may not org-list"):
        world.admin.list_orgs(world.callers["user"])


def test_no_escalation_through_roles_keys_or_quotas(world: World) -> None:
    oa, a = world.callers["org-admin"], world.admin
    with pytest.raises(PermissionDenied, match="only a platform-admin may grant"):
        a.create_user(oa, "sneaky", "essais", "FRA", "S", ["platform-admin"])
    with pytest.raises(PermissionDenied, match="not on minarm/ema"):
        a.create_user(oa, "wide", "essais", "FRA", "S", ["org-admin"], "ema")
    pa_in_dga = a.create_user(world.bootstrap, "boss", "essais", "FRA", "S", ["platform-admin"])
    with pytest.raises(PermissionDenied, match="only a platform-admin"):
        a.create_key(oa, pa_in_dga.id)
    with pytest.raises(PermissionDenied, match="own root"):
        a.set_quota(oa, "org:dga", {"tokens_per_day": 10**9})
    a.create_user(oa, "deputy", "essais", "FRA", "S", ["org-admin"], "essais")
    last = [p for n, p in world.records() if n == "decision" and not p["allowed"]][-1]
    assert "own root" in last["reason"]


def test_a_user_reads_their_own_usage_only(world: World) -> None:
    u = world.callers["user"]
    for day, model in (("2025-01-01", "echo"), ("2025-01-02", "echo"), ("2025-01-02", "b")):
        world.repos.usage.record(UsageRow(day, "essais", u.principal.user_id, "k", model, 1, 5, 7))
    world.repos.usage.record(UsageRow("2025-01-02", "essais", "other", "k2", "echo", 1, 5, 7))
    report = world.admin.usage(u)
    assert report["totals"] == {"requests": 3, "prompt_tokens": 15, "completion_tokens": 21}
    assert report["group_by"] == ["day", "model"] and len(report["data"]) == 3
    by_model = world.admin.usage(u, group_by=["model"], since="2025-01-02")
    assert by_model["data"] == [
        {"model": "b", "requests": 1, "prompt_tokens": 5, "completion_tokens": 7},
        {"model": "echo", "requests": 1, "prompt_tokens": 5, "completion_tokens": 7},
    ]
    with pytest.raises(PermissionDenied, match="only their own usage"):
        world.admin.usage(u, user=world.targets["essais"])
    everyone = world.admin.usage(world.callers["auditor"], group_by=["user"])
    assert everyone["totals"]["requests"] == 4


def test_input_is_validated_with_clear_messages(world: World) -> None:
    a, boot = world.admin, world.bootstrap
    with pytest.raises(InvalidRequest, match="could not understand the marking 'SECRETISH'"):
        a.create_user(boot, "x", "dga", "FRA", "SECRETISH", ["user"])
    with pytest.raises(InvalidRequest, match="above the instance ceiling"):
        a.create_user(boot, "x", "dga", "FRA", "TS", ["user"])
    with pytest.raises(InvalidRequest, match="3 letters"):
        a.create_user(boot, "x", "dga", "FRANCE", "S", ["user"])
    with pytest.raises(InvalidRequest, match="unknown role 'king'"):
        a.create_user(boot, "x", "dga", "FRA", "S", ["king"])
    with pytest.raises(NotFound, match="admin_scope organisation 'nowhere'"):
        a.create_user(boot, "x", "dga", "FRA", "S", ["org-admin"], "nowhere")
    with pytest.raises(NotFound, match="organisation 'nowhere' does not exist"):
        a.create_user(boot, "x", "nowhere", "FRA", "S", ["user"])
    with pytest.raises(InvalidRequest, match="unknown model"):
        a.create_key(boot, world.targets["ema"], models=["gpt-9"])
    with pytest.raises(InvalidRequest, match="group usage by 'colour'"):
        a.usage(boot, group_by=["colour"])
    with pytest.raises(InvalidRequest, match="YYYY-MM-DD"):
        a.usage(boot, since="yesterday")
    with pytest.raises(InvalidRequest, match="quota subject"):
        a.set_quota(boot, "team:x", {})
    user = a.create_user(boot, "cleared", "dga", "fra", "secret // alpha", ["user"])
    assert (user.clearance, user.nationality) == ("S//ALPHA", "FRA")
    issued = a.create_key(boot, user.id, "laptop", ["echo"], 30)
    assert issued.key.startswith(issued.record.prefix) and issued.record.models == {"echo"}
    changes = " ".join(p["summary"] for n, p in world.records() if n == "admin-change")
    assert issued.key not in changes and issued.record.prefix in changes


def test_no_one_but_a_platform_admin_grants_a_clearance_above_their_own(world) -> None:
    org_admin = world.callers["org-admin"]  # cleared S
    world.admin.create_user(org_admin, "ok-s", "essais", "FRA", "S", ["user"])
    with pytest.raises(PermissionDenied, match="above the caller's own clearance"):
        world.admin.create_user(org_admin, "too-high", "essais", "FRA", "S//ALPHA", ["user"])
    refusals = [p for e, p in world.records() if e == "decision" and not p["allowed"]]
    assert "above the caller's own clearance" in refusals[-1]["reason"]


def test_an_org_admin_cannot_revoke_a_platform_admins_key_in_their_subtree(world) -> None:
    boot = world.bootstrap
    high = world.admin.create_user(boot, "pa-in-dga", "essais", "FRA", "S", ["platform-admin"])
    record = world.admin.create_key(boot, high.id).record
    with pytest.raises(PermissionDenied, match="only a platform-admin may manage"):
        world.admin.revoke_key(world.callers["org-admin"], record.id)
    assert world.repos.keys.get(record.id).revoked_at is None
    with pytest.raises(PermissionDenied, match="only a platform-admin may set quotas"):
        world.admin.set_quota(
            world.callers["org-admin"], f"key:{record.id}", {"requests_per_min": 0}
        )
    world.admin.revoke_key(world.callers["platform-admin"], record.id)
    assert world.repos.keys.get(record.id).revoked_at is not None


def test_an_org_admin_cannot_probe_which_ids_exist_elsewhere(world) -> None:
    org_admin = world.callers["org-admin"]
    with pytest.raises(PermissionDenied) as unknown:
        world.admin.list_users(org_admin, "no-such-org")
    with pytest.raises(PermissionDenied) as outside:
        world.admin.list_users(org_admin, "ema")
    assert "scope" in str(unknown.value) and "scope" in str(outside.value)
    with pytest.raises(NotFound):  # a platform-admin is told plainly
        world.admin.list_users(world.callers["platform-admin"], "no-such-org")
