"""Organisation tree and shared quotas, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from egide.errors import InvalidRequest, NotFound
from egide.store.orgs import OrgRepository
from egide.store.quotas import Quota, QuotaRepository

NOW = 1_800_000_030.0  # 30 s into a minute


def test_org_tree(database) -> None:
    orgs = OrgRepository(database)
    orgs.create("minarm", "Ministère des Armées")
    orgs.create("dga", "Direction générale de l'armement", "minarm")
    unit = orgs.create("unit-1", "Unité 1", "dga")
    orgs.create("shom", "Service hydrographique", "minarm")
    assert unit.path == "/minarm/dga/unit-1"
    assert unit.lineage == ("minarm", "dga", "unit-1")
    assert [o.id for o in orgs.subtree("dga")] == ["dga", "unit-1"]
    assert orgs.get("dga").contains(unit) and not orgs.get("shom").contains(unit)
    with pytest.raises(InvalidRequest, match="already exists"):
        orgs.create("dga", "again", "minarm")
    with pytest.raises(NotFound, match="parent"):
        orgs.create("x", "x", "nowhere")
    with pytest.raises(InvalidRequest, match="lowercase"):
        orgs.create("Bad Id", "x")


def test_request_quota_shared_by_a_subtree(database) -> None:
    quotas = QuotaRepository(database)
    quotas.set(Quota("org:dga", requests_per_min=3))
    unit_a = ["key:a", "org:unit-a", "org:dga"]
    unit_b = ["key:b", "org:unit-b", "org:dga"]
    assert quotas.admit(unit_a, NOW) is None
    assert quotas.admit(unit_b, NOW) is None
    assert quotas.admit(unit_a, NOW) is None
    refused = quotas.admit(unit_b, NOW)
    assert refused is not None and refused.subject == "org:dga"
    assert refused.retry_after_s == 31 and "requests per minute" in refused.reason
    assert quotas.admit(unit_b, NOW + 30) is None  # the next minute


def test_token_quotas(database) -> None:
    quotas = QuotaRepository(database)
    quotas.set(Quota("key:k", tokens_per_min=100, tokens_per_day=150))
    assert quotas.admit(["key:k"], NOW) is None
    quotas.spend_tokens(["key:k"], NOW, 120)
    assert quotas.admit(["key:k"], NOW).limit == "tokens_per_minute"
    assert quotas.admit(["key:k"], NOW + 60) is None
    quotas.spend_tokens(["key:k"], NOW + 60, 40)
    refused = quotas.admit(["key:k"], NOW + 120)
    assert refused.limit == "tokens_per_day" and refused.used == 160


def test_concurrent_admissions_never_exceed_the_budget(database) -> None:
    quotas = QuotaRepository(database)
    quotas.set(Quota("org:root", requests_per_min=25))
    admitted = []

    def worker(key: str) -> None:
        for _ in range(20):
            if quotas.admit([f"key:{key}", "org:root"], NOW) is None:
                admitted.append(key)

    threads = [threading.Thread(target=worker, args=(str(i),)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 25


def test_usage_totals(database) -> None:
    from egide.store.usage import UsageRepository, UsageRow

    usage = UsageRepository(database)
    for day, org, user, model, tokens in (
        ("2026-11-21", "dga", "u1", "m", 10),
        ("2026-11-21", "dga", "u1", "m", 5),
        ("2026-11-22", "dga", "u2", "m", 7),
        ("2026-11-22", "shom", "u3", "e", 3),
    ):
        usage.record(UsageRow(day, org, user, "k", model, 1, tokens, 2 * tokens))
    by_org = usage.query(org_ids=["dga"], group_by=("org_id",))
    assert by_org == [
        {"org_id": "dga", "requests": 3, "prompt_tokens": 22, "completion_tokens": 44}
    ]
    by_day = usage.query(group_by=("day",), since="2026-11-22")
    assert [(r["day"], r["requests"]) for r in by_day] == [("2026-11-22", 2)]
    assert usage.query(org_ids=[]) == []
    assert usage.query(model="e", group_by=("user_id",))[0]["user_id"] == "u3"
