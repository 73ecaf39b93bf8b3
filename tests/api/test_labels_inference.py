"""Labels on every inference, proved with a stub model that echoes its whole context
(and one that echoes it in capitals, turning prose into markings)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from factories import app_client, fake_settings

MODELS = [
    {"id": "echo", "backend": "fake", "capabilities": ["chat", "completions", "streaming"]},
    {"id": "echo-s", "backend": "fake", "label": "S", "capabilities": ["chat", "streaming"]},
    {
        "id": "shout",
        "backend": "fake",
        "options": {"transform": "upper"},
        "capabilities": ["chat", "streaming"],
    },
]


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, ceiling="DR", models=MODELS)


def run(settings, check):
    async def go():
        async with app_client(settings) as (client, _key):
            app_state = client._transport.app.state
            await check(client, app_state.runtime)

    asyncio.run(go())


def chat(model="echo", content="bonjour", **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def audit_payloads(runtime) -> str:
    runtime.audit.flush()
    rows = runtime.audit.db.query("SELECT event, payload FROM audit_records ORDER BY seq")
    return "\n".join(f"{r['event']} {r['payload']}" for r in rows)


def test_every_answer_carries_its_label(settings) -> None:
    async def check(client, runtime):
        r = await client.post("/v1/chat/completions", json=chat())
        assert r.status_code == 200 and r.headers["x-egide-label"] == "NP"
        assert r.json()["label"] == "NP"
        r = await client.post(
            "/v1/chat/completions", json=chat(), headers={"X-Egide-Label": "diffusion restreinte"}
        )
        assert r.headers["x-egide-label"] == "DR" and r.json()["label"] == "DR"
        r = await client.post(
            "/v1/chat/completions", json=chat(stream=True), headers={"X-Egide-Label": "DR"}
        )
        assert r.headers["x-egide-label"] == "DR"

    run(settings, check)


def test_above_the_ceiling_or_the_clearance_is_refused_with_reason(settings) -> None:
    async def check(client, runtime):
        r = await client.post("/v1/chat/completions", json=chat(), headers={"X-Egide-Label": "S"})
        assert r.status_code == 403 and "ceiling" in r.json()["error"]["message"]
        r = await client.post("/v1/chat/completions", json=chat(model="echo-s"))
        assert r.status_code == 403 and "ceiling" in r.json()["error"]["message"]
        r = await client.post(
            "/v1/chat/completions", json=chat(), headers={"X-Egide-Label": "CONFIDENTIAL-ISH"}
        )
        assert r.status_code == 400 and "marking" in r.json()["error"]["message"].lower()
        log = audit_payloads(runtime)
        assert '"allowed":false' in log and "ceiling" in log

    run(settings, check)


@pytest.mark.parametrize(
    "marked",
    [
        "TRÈS SECRET",
        "SECRET DEFENSE",
        "(S)",
        "CONFIDENTIEL DÉFENSE",
        "SECRET SPÉCIAL FRANCE",
        "DIFFUSION RESTREINTE",
    ],
)
def test_input_above_the_working_label_is_refused_without_leaking(settings, marked) -> None:
    canary = "CANARY-7f3a"

    async def check(client, runtime):
        text = f"Résumé du rapport {canary}.\n{marked}\nLe convoi part demain."
        r = await client.post("/v1/chat/completions", json=chat(content=text))
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "spillage_refused" and "messages[0]" in error["message"]
        assert canary not in error["message"]
        assert canary not in audit_payloads(runtime)
        assert "spillage-refused" in audit_payloads(runtime)

    run(settings, check)


def test_output_above_the_clearance_is_withheld(settings) -> None:
    # The bootstrap admin is cleared to the ceiling (DR); "shout" turns prose into a
    # SECRET marking in its answer.
    async def check(client, runtime):
        prose = "le document est très secret défense selon le chef"
        r = await client.post("/v1/chat/completions", json=chat(model="shout", content=prose))
        body = r.json()
        assert r.status_code == 200
        assert body["choices"][0]["finish_reason"] == "content_filter"
        assert "withheld" in body["choices"][0]["message"]["content"]
        assert "SECRET" not in body["choices"][0]["message"]["content"]
        r = await client.post(
            "/v1/chat/completions", json=chat(model="shout", content=prose, stream=True)
        )
        events = [orjson.loads(e[6:]) for e in r.text.split("\n\n") if e.startswith("data: {")]
        streamed = "".join(
            (c["choices"][0]["delta"].get("content") or "") for c in events if c["choices"]
        )
        assert "SECRET" not in streamed and "withheld" in streamed
        assert events[-1]["choices"][0]["finish_reason"] == "content_filter"
        assert audit_payloads(runtime).count("spillage-withheld") == 2

    run(settings, check)


def test_inference_is_recorded_by_digest_and_quota_enforced(settings) -> None:
    async def check(client, runtime):
        from egide.store.quotas import Quota, QuotaRepository

        key_id = runtime.db.query("SELECT id FROM api_keys")[0]["id"]
        QuotaRepository(runtime.db).set(Quota(f"key:{key_id}", requests_per_min=2))
        for _ in range(2):
            r = await client.post("/v1/chat/completions", json=chat(content="mot-secret-42"))
            assert r.status_code == 200
        r = await client.post("/v1/chat/completions", json=chat())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "quota" in r.json()["error"]["message"]
        assert '"reason":"quota: the requests per minute quota' in audit_payloads(runtime)
        log = audit_payloads(runtime)
        assert log.count("inference ") == 2 and "mot-secret-42" not in log
        assert '"prompt_sha256":"' in log
        runtime.gateway.accounting.flush()
        usage = runtime.db.query("SELECT SUM(requests) AS n FROM usage")[0]["n"]
        assert usage == 2

    run(settings, check)


def test_every_authentication_is_audited_without_the_key(settings) -> None:
    async def check(client, runtime):
        wrong = "egk_notavalidkeyatall_0123456789"
        assert (
            await client.get("/v1/models", headers={"Authorization": f"Bearer {wrong}"})
        ).status_code == 401
        assert (await client.get("/v1/models")).status_code == 200
        log = audit_payloads(runtime)
        assert "auth-failed" in log and "auth-succeeded" in log
        assert wrong not in log and wrong[:12] in log
        assert '"kind":"config"' in log and "settings sha256" in log

    run(settings, check)


def test_one_request_id_ties_its_audit_events_together(settings) -> None:
    async def check(client, runtime):
        r = await client.post(
            "/v1/chat/completions", json=chat(), headers={"X-Request-Id": "req-abc-123"}
        )
        assert r.headers["x-request-id"] == "req-abc-123"
        generated = (await client.get("/v1/models")).headers["x-request-id"]
        assert len(generated) == 32
        runtime.audit.flush()
        runtime.gateway.accounting.flush()
        rows = runtime.audit.db.query("SELECT event, payload FROM audit_records")
        tied = {r["event"] for r in rows if '"request_id":"req-abc-123"' in r["payload"]}
        assert tied == {"auth-succeeded", "decision", "inference"}

    run(settings, check)
