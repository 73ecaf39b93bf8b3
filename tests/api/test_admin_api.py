"""The admin API in-process over the fake backend: tree, users, keys that authenticate and
stop at once when revoked or expired, scoped org-admins, error envelopes, usage shape."""

from __future__ import annotations

import pytest

from factories import fake_settings, run_with_client


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="S")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _tree(client) -> dict[str, str]:
    for org, parent in (("minarm", None), ("dga", "minarm"), ("essais", "dga"), ("ema", "minarm")):
        r = await client.post(
            "/v1/admin/orgs", json={"id": org, "name": org.upper(), "parent": parent}
        )
        assert r.status_code == 201, r.text
    users = {}
    for name, org, roles, scope in (
        ("alice", "essais", ["user"], None),
        ("olivier", "dga", ["org-admin"], "dga"),
    ):
        body = {"username": name, "org": org, "nationality": "FRA", "clearance": "DR"}
        r = await client.post(
            "/v1/admin/users", json={**body, "roles": roles, "admin_scope": scope}
        )
        assert r.status_code == 201, r.text
        users[name] = r.json()["id"]
    return users


def test_keys_authenticate_and_revocation_is_immediate(settings) -> None:
    async def check(client):
        users = await _tree(client)
        r = await client.post("/v1/admin/keys", json={"user_id": users["alice"], "name": "laptop"})
        assert r.status_code == 201, r.text
        issued = r.json()
        key, key_id = issued["key"], issued["id"]
        assert key.startswith(issued["prefix"]) and issued["user_id"] == users["alice"]
        r = await client.get("/v1/models", headers=_bearer(key))
        assert r.status_code == 200 and r.json()["object"] == "list"

        listed = (await client.get("/v1/admin/keys", params={"org": "essais"})).json()["data"]
        assert [k["id"] for k in listed] == [key_id] and "key" not in listed[0]
        assert key not in (await client.get("/v1/admin/keys")).text

        r = await client.delete(f"/v1/admin/keys/{key_id}")
        assert r.status_code == 200 and r.json()["revoked_at"]
        r = await client.get("/v1/models", headers=_bearer(key))
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"

        for expiry in ({"expires_in_days": 0}, {"expires_at": "2020-01-01T00:00:00Z"}):
            r = await client.post("/v1/admin/keys", json={"user_id": users["alice"], **expiry})
            assert r.status_code == 201, r.text
            r = await client.get("/v1/models", headers=_bearer(r.json()["key"]))
            assert r.status_code == 401

    run_with_client(settings, check)


def test_org_admin_is_confined_to_their_subtree(settings) -> None:
    async def check(client):
        users = await _tree(client)
        r = await client.post("/v1/admin/keys", json={"user_id": users["olivier"]})
        oa = _bearer(r.json()["key"])
        body = {"username": "bob", "nationality": "FRA", "clearance": "NP"}
        r = await client.post("/v1/admin/users", json={**body, "org": "ema"}, headers=oa)
        assert r.status_code == 403
        error = r.json()["error"]
        assert error["type"] == "permission_error" and error["code"] == "permission_denied"
        assert "org-admin of minarm/dga may user-create only inside" in error["message"]
        r = await client.post("/v1/admin/users", json={**body, "org": "essais"}, headers=oa)
        assert r.status_code == 201
        orgs = (await client.get("/v1/admin/orgs", headers=oa)).json()["data"]
        assert [o["id"] for o in orgs] == ["dga", "essais"]
        r = await client.put(
            "/v1/admin/quotas/org:essais", json={"tokens_per_day": 500}, headers=oa
        )
        assert r.status_code == 200 and r.json()["tokens_per_day"] == 500
        r = await client.get("/v1/admin/quotas/org:essais", headers=oa)
        assert r.json() == {
            "object": "quota",
            "subject": "org:essais",
            "requests_per_min": None,
            "tokens_per_min": None,
            "tokens_per_day": 500,
        }
        r = await client.get("/v1/admin/quotas/org:ema", headers=oa)
        assert r.status_code == 403

    run_with_client(settings, check)


def test_errors_are_envelopes(settings) -> None:
    async def check(client):
        await _tree(client)
        body = {"username": "carol", "org": "dga", "nationality": "FRA", "clearance": "SECRETISH"}
        r = await client.post("/v1/admin/users", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == "clearance"
        assert "could not understand the marking 'SECRETISH'" in r.json()["error"]["message"]
        r = await client.post("/v1/admin/users", json={**body, "clearance": "DR", "org": "nope"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await client.post("/v1/admin/orgs", json={"id": "x", "name": 3})
        assert r.status_code == 400 and "name" in r.json()["error"]["message"]
        r = await client.put("/v1/admin/quotas/org:dga", json={"tokens_per_day": "lots"})
        assert r.status_code == 400
        r = await client.put("/v1/admin/quotas/org:dga", json={"tokens_per_day": -1})
        assert r.status_code == 400 and "zero or a positive" in r.json()["error"]["message"]
        r = await client.delete("/v1/admin/keys/nope")
        assert r.status_code == 404
        r = await client.get("/v1/admin/orgs", headers={"Authorization": "Bearer egk_wrong"})
        assert r.status_code == 401

    run_with_client(settings, check)


def test_usage_shape(settings) -> None:
    async def check(client):
        users = await _tree(client)
        r = await client.get("/v1/admin/usage", params={"org": "dga", "group_by": "day,model"})
        assert r.status_code == 200
        report = r.json()
        assert report["object"] == "usage" and report["group_by"] == ["day", "model"]
        assert report["data"] == [] and report["filters"]["org"] == "dga"
        assert report["totals"] == {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
        r = await client.post("/v1/admin/keys", json={"user_id": users["alice"]})
        alice = _bearer(r.json()["key"])
        r = await client.get("/v1/admin/usage", headers=alice)
        assert r.status_code == 200 and r.json()["filters"]["user"] == users["alice"]
        r = await client.get("/v1/admin/usage", params={"org": "dga"}, headers=alice)
        assert r.status_code == 403
        r = await client.get("/v1/admin/usage", params={"group_by": "colour"})
        assert r.status_code == 400

    run_with_client(settings, check)
