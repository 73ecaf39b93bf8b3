"""Over the same real ``egide serve`` process: concurrent streams and every error case."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from openai import AsyncOpenAI

pytestmark = pytest.mark.model

CHAT = "qwen2.5-coder-0.5b-instruct"


def _post(server, body, headers=None, path="/chat/completions", **kwargs) -> httpx.Response:
    return httpx.post(
        server.api + path,
        headers=server.headers() if headers is None else headers,
        timeout=120,
        **({"json": body} if not isinstance(body, bytes) else {"content": body}),
        **kwargs,
    )


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert len(error["message"]) > 20
    return error


def test_eight_concurrent_streams_all_progress_and_complete(default_server) -> None:
    client = AsyncOpenAI(base_url=default_server.api, api_key=default_server.key, max_retries=0)

    async def one(i: int) -> tuple[list[float], str]:
        stamps: list[float] = []
        text = ""
        stream = await client.chat.completions.create(
            model=CHAT,
            messages=[
                {"role": "user", "content": f"Count from {i} to {i + 40}, separated by commas."}
            ],
            max_tokens=48,
            temperature=0.5,
            seed=i,
            stream=True,
        )
        async for chunk in stream:
            # One chunk per generated token (the output filter may hold a word back, so
            # some carry empty content): the stamps show the engine's progress.
            if chunk.choices:
                stamps.append(time.monotonic())
                text += chunk.choices[0].delta.content or ""
        return stamps, text

    async def run() -> list[tuple[list[float], str]]:
        try:
            return await asyncio.gather(*(one(i) for i in range(8)))
        finally:
            await client.close()

    results = asyncio.run(run())
    assert all(len(stamps) >= 10 and text for stamps, text in results)
    # They progress together: every stream has produced output before any has finished.
    first_token_last = max(stamps[0] for stamps, _ in results)
    last_token_first = min(stamps[-1] for stamps, _ in results)
    assert first_token_last < last_token_first


def test_full_queue_is_refused_with_503(default_server) -> None:
    # 8 running + 32 waiting are admitted; the rest is refused at once.
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=300) as client:
            body = {
                "model": CHAT,
                "messages": [{"role": "user", "content": "Count to ten."}],
                "max_tokens": 32,  # long enough that none finishes before all have arrived
            }
            return await asyncio.gather(
                *(
                    client.post(
                        default_server.api + "/chat/completions",
                        json=body,
                        headers=default_server.headers(),
                    )
                    for _ in range(48)
                )
            )

    responses = asyncio.run(run())
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) >= 40
    refused = [r for r in responses if r.status_code == 503]
    assert refused, statuses
    error = _error(refused[0], 503)
    assert error["code"] == "overloaded" and "retry" in error["message"]
    assert refused[0].headers["retry-after"] == "1"


def test_unknown_model_lists_known_ones(default_server) -> None:
    error = _error(
        _post(default_server, {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}),
        404,
    )
    assert error["code"] == "model_not_found"
    assert CHAT in error["message"] and "multilingual-e5-small" in error["message"]


def test_context_overflow(default_server) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "mot " * 6000}]}
    error = _error(_post(default_server, body), 400)
    assert error["code"] == "context_length_exceeded"
    assert "4096" in error["message"] and "shorten" in error["message"]


def test_context_overflow_when_streaming(default_server) -> None:
    body = {"model": CHAT, "stream": True, "messages": [{"role": "user", "content": "mot " * 6000}]}
    assert _error(_post(default_server, body), 400)["code"] == "context_length_exceeded"


def test_malformed_json(default_server) -> None:
    error = _error(_post(default_server, b'{"model": "x", "messages": [}'), 400)
    assert error["code"] == "invalid_json"


def test_wrong_types(default_server) -> None:
    body = {"model": CHAT, "messages": "hello", "temperature": "warm", "max_tokens": -3}
    error = _error(_post(default_server, body), 400)
    assert error["type"] == "invalid_request_error"
    for field in ("messages", "temperature", "max_tokens"):
        assert field in error["message"]


def test_oversized_body(default_server) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    error = _error(_post(default_server, body), 413)
    assert error["code"] == "payload_too_large" and "max_body_bytes" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer egk_wrong"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_missing_or_wrong_key(default_server, headers) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x"}]}
    error = _error(_post(default_server, body, headers=headers), 401)
    assert error["type"] == "authentication_error"
    response = httpx.get(default_server.api + "/models", headers=headers)
    assert response.status_code == 401


def test_health_and_metrics_after_traffic(default_server) -> None:
    assert httpx.get(default_server.url + "/health").json()["status"] == "ok"
    metrics = httpx.get(default_server.url + "/metrics").text
    assert f'egide_requests_total{{endpoint="chat",model="{CHAT}",outcome="ok"}}' in metrics
    assert f'egide_tokens_total{{direction="out",model="{CHAT}"}}' in metrics
    assert "egide_request_duration_seconds_bucket" in metrics
    assert "egide_time_to_first_token_seconds_bucket" in metrics


def test_a_client_that_leaves_stops_the_generation(default_server) -> None:
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "Write a very long essay about logistics."}],
        "max_tokens": 2000,
        "stream": True,
    }

    def in_flight() -> int:
        return httpx.get(default_server.url + "/health").json()["models"][CHAT]["in_flight"]

    with (
        httpx.Client(timeout=60) as client,
        client.stream(
            "POST",
            default_server.api + "/chat/completions",
            json=body,
            headers=default_server.headers(),
        ) as response,
    ):
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in received)
        assert in_flight() == 1
    # 2000 tokens would take about a minute; the engine stops at its next token instead.
    deadline = time.monotonic() + 5
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_flight() == 0
