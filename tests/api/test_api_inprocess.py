"""The API over the fake backend, in-process: shapes, Mistral dialect, errors, SSE."""

from __future__ import annotations

import base64

import orjson
import pytest

from factories import fake_settings, run_with_client


@pytest.fixture
def settings(tmp_path):
    return fake_settings(tmp_path, max_body_bytes=4096)


def _chat(**extra):
    return {"model": "echo", "messages": [{"role": "user", "content": "bonjour le monde"}], **extra}


def test_chat_echoes_context(settings) -> None:
    async def check(client):
        r = await client.post("/v1/chat/completions", json=_chat())
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == "user: bonjour le monde"
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 4

    run_with_client(settings, check)


def test_stream_frames_and_done(settings) -> None:
    async def check(client):
        r = await client.post("/v1/chat/completions", json=_chat(stream=True))
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.text.split("\n\n") if line]
        assert events[-1] == "data: [DONE]"
        chunks = [orjson.loads(e.removeprefix("data: ")) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text == "user: bonjour le monde"
        assert all("usage" not in c for c in chunks)  # not asked for

        r = await client.post(
            "/v1/chat/completions",
            json=_chat(stream=True, stream_options={"include_usage": True}),
        )
        last = orjson.loads(r.text.split("\n\n")[-3].removeprefix("data: "))
        assert last["choices"] == [] and last["usage"]["completion_tokens"] == 4

    run_with_client(settings, check)


def test_mistral_dialect(settings) -> None:
    async def check(client):
        tools = [{"type": "function", "function": {"name": "locate", "parameters": {}}}]
        r = await client.post(
            "/v1/chat/completions",
            json=_chat(random_seed=5, safe_prompt=True, tools=tools, tool_choice="any"),
        )
        body = r.json()
        assert body["choices"][0]["finish_reason"] == "tool_calls"
        assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "locate"

        r = await client.post("/v1/chat/completions", json=_chat(safe_prompt=True))
        assert r.json()["choices"][0]["message"]["content"].startswith("system: Always assist")

        r = await client.post("/v1/embeddings", json={"model": "echo", "inputs": ["a", "b"]})
        assert len(r.json()["data"]) == 2 and r.json()["id"].startswith("embd-")

    run_with_client(settings, check)


def test_assistant_tool_call_arguments_as_object_are_accepted(settings) -> None:
    async def check(client):
        messages = [
            {"role": "user", "content": "where"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "locate", "arguments": {"unit": "A"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "north"},
        ]
        r = await client.post("/v1/chat/completions", json={"model": "echo", "messages": messages})
        assert r.status_code == 200, r.text
        assert "tool: north" in r.json()["choices"][0]["message"]["content"]

    run_with_client(settings, check)


def test_embeddings_base64(settings) -> None:
    async def check(client):
        plain = (await client.post("/v1/embeddings", json={"model": "echo", "input": "abc"})).json()
        packed = (
            await client.post(
                "/v1/embeddings",
                json={"model": "echo", "input": "abc", "encoding_format": "base64"},
            )
        ).json()
        import numpy as np

        decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
        assert np.allclose(decoded, plain["data"][0]["embedding"])

    run_with_client(settings, check)


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (
            {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
            404,
            "model_not_found",
            ["echo", "echo-plain"],
        ),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "w " * 300}]},
            400,
            "context_length_exceeded",
            ["200", "shorten"],
        ),
        (
            {"model": "echo", "messages": [{"role": "wizard", "content": "x"}]},
            400,
            None,
            ["messages.0.role"],
        ),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x"}], "top_p": 3},
            400,
            None,
            ["top_p"],
        ),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
            400,
            None,
            ["tools"],
        ),
        (
            {"model": "echo-plain", "messages": [{"role": "user", "content": "x"}], "stream": True},
            400,
            "unsupported",
            ["stream"],
        ),
        (
            {
                "model": "echo-plain",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_object"},
            },
            400,
            "unsupported",
            ["response_format"],
        ),
        (
            {"model": "echo", "messages": [{"role": "tool", "content": "x"}]},
            400,
            None,
            ["tool_call_id"],
        ),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x" * 5000}]},
            413,
            "payload_too_large",
            ["4096"],
        ),
    ],
)
def test_errors_use_the_envelope(settings, body, status, code, words) -> None:
    async def check(client):
        r = await client.post("/v1/chat/completions", json=body)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code
        for word in words:
            assert word in error["message"]

    run_with_client(settings, check)


def test_non_object_and_empty_bodies(settings) -> None:
    async def check(client):
        for raw, code in ((b"[1, 2]", None), (b"", "invalid_json"), (b"nul", "invalid_json")):
            r = await client.post("/v1/chat/completions", content=raw)
            assert r.status_code == 400 and r.json()["error"]["code"] == code

    run_with_client(settings, check)


def test_chunked_body_over_limit(settings) -> None:
    async def check(client):
        async def parts():
            for _ in range(10):
                yield b"x" * 1000

        r = await client.post("/v1/chat/completions", content=parts())
        assert r.status_code == 413

    run_with_client(settings, check)


def test_unknown_route_and_method(settings) -> None:
    async def check(client):
        r = await client.get("/v1/nothing")
        assert r.status_code == 404 and "no endpoint" in r.json()["error"]["message"]
        r = await client.get("/v1/chat/completions")
        assert r.status_code == 405 and "GET" in r.json()["error"]["message"]

    run_with_client(settings, check)


def test_auth(settings) -> None:
    async def check(client):
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
            r = await client.get("/v1/models", headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/health", headers={"Authorization": ""})).status_code == 200

    run_with_client(settings, check)


def test_models_and_metrics(settings) -> None:
    async def check(client):
        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["echo", "echo-plain"]
        one = (await client.get("/v1/models/echo")).json()
        assert one["max_context_length"] == 200 and one["capabilities"]["function_calling"]
        await client.post("/v1/chat/completions", json=_chat())
        await client.post("/v1/chat/completions", json=_chat(model="nope"))
        text = (await client.get("/metrics")).text
        assert 'egide_requests_total{endpoint="chat",model="echo",outcome="ok"} 1.0' in text
        assert 'egide_tokens_total{direction="out",model="echo"} 4.0' in text

    run_with_client(settings, check)


def test_admin_key_created_once_with_mode_600(tmp_path) -> None:
    settings = fake_settings(tmp_path)

    async def noop(client):
        return None

    run_with_client(settings, noop)
    key_file = tmp_path / "admin.key"
    first = key_file.read_text()
    assert key_file.stat().st_mode & 0o777 == 0o600
    run_with_client(settings, noop)
    assert key_file.read_text() == first
