"""The permission matrix and the label checks of the policy engine."""

from __future__ import annotations

import itertools

import pytest

from egide.security.actions import ADMIN_ACTIONS, DESCRIPTIONS, Action, actions_reference
from egide.security.labels import Clearance, Label
from egide.security.levels import FRENCH, NATO
from egide.security.policy import Decision, Principal, Resource, Role, decide

S, DR, TS = FRENCH.level("S"), FRENCH.level("DR"), FRENCH.level("TS")
CEILING = Label(S, frozenset({"ALPHA", "BRAVO"}), frozenset({"FRA"}))
SCOPE = ("ministere", "dga")
INSIDE = ("ministere", "dga", "essais")
OUTSIDE = ("ministere", "ema")
INFERENCE = {Action.CHAT, Action.COMPLETE, Action.EMBED, Action.LIST_MODELS, Action.USE_MODEL}
ADMIN = [a for a in Action if a in ADMIN_ACTIONS]

# The expected matrix, written out by hand: role → actions allowed (in subtree, outside).
TENANCY = {
    "org-create",
    "org-update",
    "org-delete",
    "org-list",
    "user-create",
    "user-update",
    "user-delete",
    "user-list",
    "key-create",
    "key-revoke",
    "key-list",
    "quota-set",
    "quota-read",
    "usage-read",
}
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "platform-admin": ({a.value for a in ADMIN}, {a.value for a in ADMIN}),
    "org-admin": (TENANCY, set()),
    "auditor": (
        {"audit-read", "audit-export", "usage-read", "org-list", "user-list", "quota-read"},
    )
    * 2,
    "user": (set(), set()),
}


def principal(role: Role, **kw: object) -> Principal:
    fields: dict[str, object] = {
        "user_id": "u-42",
        "org_path": SCOPE,
        "roles": frozenset({role}),
        "clearance": Clearance(S, frozenset({"ALPHA"}), "FRA"),
        "admin_scope": SCOPE if role is Role.ORG_ADMIN else None,
        "key_models": None,
    }
    fields.update(kw)
    return Principal(**fields)  # type: ignore[arg-type]


MATRIX = list(itertools.product(Role, ADMIN, [True, False]))


def test_the_matrix_covers_every_role_and_admin_action() -> None:
    assert len(MATRIX) == len(Role) * len(ADMIN) * 2 == 4 * 17 * 2
    assert set(EXPECTED) == {r.value for r in Role}


@pytest.mark.parametrize(("role", "action", "inside"), MATRIX)
def test_permission_matrix(role: Role, action: Action, inside: bool) -> None:
    resource = Resource("org", INSIDE if inside else OUTSIDE, owner="someone-else")
    decision = decide(principal(role), action, resource, ceiling=CEILING)
    allowed = action.value in EXPECTED[role.value][0 if inside else 1]
    assert decision.allowed is allowed, decision.reason
    assert decision.action is action and decision.user_id == "u-42"
    assert decision.reason.strip()
    if allowed:
        assert role.value in decision.reason
    else:
        assert decision.rule in {"role", "scope"}
        assert action.value in decision.reason and role.value in decision.reason
        if role is Role.ORG_ADMIN and action.value in TENANCY:
            assert decision.rule == "scope" and "ministere/ema" in decision.reason


def test_org_admin_cannot_create_or_delete_their_own_root() -> None:
    root = Resource("org", SCOPE)
    for action in (Action.ORG_CREATE, Action.ORG_DELETE):
        decision = decide(principal(Role.ORG_ADMIN), action, root, ceiling=CEILING)
        assert not decision.allowed and "strictly below" in decision.reason
    assert decide(principal(Role.ORG_ADMIN), Action.ORG_UPDATE, root, ceiling=CEILING).allowed


def test_org_admin_without_scope_is_refused() -> None:
    p = principal(Role.ORG_ADMIN, admin_scope=None)
    decision = decide(p, Action.USER_CREATE, Resource("user", INSIDE), ceiling=CEILING)
    assert not decision.allowed and "no admin scope" in decision.reason


def test_a_user_reads_only_their_own_usage() -> None:
    own = decide(
        principal(Role.USER),
        Action.USAGE_READ,
        Resource("usage", SCOPE, owner="u-42"),
        ceiling=CEILING,
    )
    other = decide(
        principal(Role.USER),
        Action.USAGE_READ,
        Resource("usage", SCOPE, owner="u-7"),
        ceiling=CEILING,
    )
    assert own.allowed and "own usage" in own.reason
    assert not other.allowed and "only their own usage" in other.reason


@pytest.mark.parametrize("action", sorted(INFERENCE))
@pytest.mark.parametrize("role", list(Role))
def test_inference_needs_a_working_role(role: Role, action: Action) -> None:
    decision = decide(principal(role), action, Resource("model", (), model="m"), ceiling=CEILING)
    assert decision.allowed is (role is not Role.AUDITOR), decision.reason
    if role is Role.AUDITOR:
        assert "auditor" in decision.reason


def test_models_of_another_branch_are_out_of_scope() -> None:
    p = principal(Role.USER)
    ok = decide(p, Action.CHAT, Resource("model", ("ministere",), model="m"), ceiling=CEILING)
    ko = decide(p, Action.CHAT, Resource("model", OUTSIDE, model="m"), ceiling=CEILING)
    assert ok.allowed
    assert not ko.allowed and ko.rule == "scope" and "ministere/ema" in ko.reason


def test_keys_scoped_to_models() -> None:
    p = principal(Role.USER, key_models=frozenset({"mistral-small"}))
    ok = decide(p, Action.CHAT, Resource("model", model="mistral-small"), ceiling=CEILING)
    ko = decide(p, Action.USE_MODEL, Resource("model", model="big"), ceiling=CEILING)
    anon = decide(p, Action.CHAT, Resource("model"), ceiling=CEILING)
    listing = decide(p, Action.LIST_MODELS, Resource("model"), ceiling=CEILING)
    assert ok.allowed and listing.allowed
    assert not ko.allowed and ko.rule == "key-models" and "big" in ko.reason
    assert not anon.allowed and "no model is named" in anon.reason


@pytest.mark.parametrize(
    ("label", "rule", "words"),
    [
        (Label(TS), "ceiling", "ceiling"),
        (Label(S, frozenset({"CHARLIE"})), "ceiling", "compartment"),
        (Label(S), "", ""),
        (Label(S, frozenset({"BRAVO"}), frozenset({"FRA"})), "compartment", "compartment"),
        (Label(S, frozenset(), frozenset({"DEU"})), "releasability", "releasability"),
        (Label(S, frozenset(), frozenset({"FRA", "DEU"})), "", ""),
        (Label(DR, frozenset({"ALPHA"}), frozenset({"FRA"})), "", ""),
        (Label(NATO.level("NS")), "scheme", "scheme"),
    ],
)
def test_label_checks_say_which_part_failed(label: Label, rule: str, words: str) -> None:
    resource = Resource("document", SCOPE, label=label)
    decision = decide(principal(Role.USER), Action.USE_MODEL, resource, ceiling=CEILING)
    assert decision.allowed is (rule == ""), decision.reason
    if rule:
        assert decision.rule == rule and words in decision.reason


def test_the_ceiling_is_about_level_and_compartments_not_releasability() -> None:
    ceiling = Label(TS, frozenset(), frozenset({"FRA", "DEU"}))
    resource = Resource("document", SCOPE, label=Label(DR, frozenset(), frozenset({"FRA"})))
    decision = decide(principal(Role.USER), Action.USE_MODEL, resource, ceiling=ceiling)
    assert decision.allowed, decision.reason
    above = Resource("document", SCOPE, label=Label(TS, frozenset(), frozenset({"FRA"})))
    assert decide(principal(Role.USER), Action.USE_MODEL, above, ceiling=Label(S)).rule == (
        "ceiling"
    )


def test_clearance_parts() -> None:
    ceiling = Label(TS, frozenset({"ALPHA", "BRAVO"}), frozenset({"FRA"}))
    german = principal(Role.USER, clearance=Clearance(TS, frozenset({"ALPHA"}), "DEU"))
    cases = {
        "level": Label(TS),
        "compartment": Label(S, frozenset({"BRAVO"}), frozenset({"FRA", "DEU"})),
        "releasability": Label(S, frozenset(), frozenset({"FRA"})),
    }
    for part, label in cases.items():
        p = principal(Role.USER) if part != "releasability" else german
        decision = decide(
            p, Action.CHAT, Resource("model", label=label, model="m"), ceiling=ceiling
        )
        assert not decision.allowed and decision.rule == part
        assert decision.reason.startswith(part)


def test_decisions_are_deterministic_values() -> None:
    args = (principal(Role.ORG_ADMIN), Action.KEY_CREATE, Resource("key", INSIDE))
    first: Decision = decide(*args, ceiling=CEILING)
    assert all(decide(*args, ceiling=CEILING) == first for _ in range(10))


def test_every_action_is_described_and_in_the_reference() -> None:
    reference = actions_reference()
    for action in Action:
        assert DESCRIPTIONS.get(action, "").strip(), f"{action} has no description"
        assert f"`{action.value}`" in reference
        assert action.value == action.value.lower() and " " not in action.value
    assert reference.startswith("# Actions")


# Knowledge and file actions, by hand: (role, action, where) → allowed. "where" is the
# caller's place relative to the resource's organisation: inside its subtree, or outside.
LIB_ORG = ("ministere", "dga")
CALLER_INSIDE = ("ministere", "dga", "essais")
CALLER_OUTSIDE = ("ministere", "ema")
SHARED = [Action.LIBRARY_READ, Action.LIBRARY_WRITE, Action.FILE_READ, Action.FILE_WRITE]
KNOWLEDGE_EXPECTED = {
    # read/write a library, read/write a file: any user-like role inside the subtree.
    **{(role, a, "inside"): role != Role.AUDITOR for role in Role for a in SHARED},
    **{(role, a, "outside"): False for role in Role for a in SHARED},
    # create/manage: platform-admin anywhere; org-admin of the subtree; a user only in
    # their own organisation (create) or on what they created (manage).
    (Role.PLATFORM_ADMIN, Action.LIBRARY_CREATE, "own"): True,
    (Role.PLATFORM_ADMIN, Action.LIBRARY_CREATE, "other"): True,
    (Role.ORG_ADMIN, Action.LIBRARY_CREATE, "own"): True,
    (Role.ORG_ADMIN, Action.LIBRARY_CREATE, "other"): False,
    (Role.USER, Action.LIBRARY_CREATE, "own"): True,
    (Role.USER, Action.LIBRARY_CREATE, "other"): False,
    (Role.AUDITOR, Action.LIBRARY_CREATE, "own"): False,
    (Role.AUDITOR, Action.LIBRARY_CREATE, "other"): False,
    (Role.PLATFORM_ADMIN, Action.LIBRARY_MANAGE, "own"): True,
    (Role.PLATFORM_ADMIN, Action.LIBRARY_MANAGE, "other"): True,
    (Role.ORG_ADMIN, Action.LIBRARY_MANAGE, "own"): True,
    (Role.ORG_ADMIN, Action.LIBRARY_MANAGE, "other"): False,
    (Role.USER, Action.LIBRARY_MANAGE, "own"): True,
    (Role.USER, Action.LIBRARY_MANAGE, "other"): False,
    (Role.AUDITOR, Action.LIBRARY_MANAGE, "own"): False,
    (Role.AUDITOR, Action.LIBRARY_MANAGE, "other"): False,
}


@pytest.mark.parametrize(("role", "action", "where"), sorted(KNOWLEDGE_EXPECTED, key=str))
def test_knowledge_and_file_matrix(role: Role, action: Action, where: str) -> None:
    clearance = Clearance(TS, frozenset({"ALPHA"}))
    if action in SHARED:
        path = CALLER_INSIDE if where == "inside" else CALLER_OUTSIDE
        p = Principal("u1", path, frozenset({role}), clearance, admin_scope=LIB_ORG)
        resource = Resource("library", LIB_ORG, Label(DR), owner="someone")
    else:
        # "own": the caller's organisation (and, for manage, a library they created).
        own = where == "own"
        p = Principal(
            "u1",
            LIB_ORG if own else OUTSIDE,
            frozenset({role}),
            clearance,
            admin_scope=LIB_ORG if own else OUTSIDE,
        )
        owner = "u1" if own else "someone"
        target = LIB_ORG if own else ("ministere", "dga", "essais")
        if role is Role.ORG_ADMIN and not own:
            target = ("ministere", "autre")
        resource = Resource("library", target, Label(DR), owner=owner)
    decision = decide(p, action, resource, ceiling=Label(TS))
    assert decision.allowed is KNOWLEDGE_EXPECTED[(role, action, where)], decision.reason
    assert decision.reason


def test_knowledge_labels_still_bound_by_clearance() -> None:
    p = Principal("u1", CALLER_INSIDE, frozenset({Role.USER}), Clearance(DR))
    resource = Resource("library", LIB_ORG, Label(S))
    decision = decide(p, Action.LIBRARY_WRITE, resource, ceiling=Label(TS))
    assert not decision.allowed and decision.rule == "level"
