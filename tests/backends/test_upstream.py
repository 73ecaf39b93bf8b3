"""The OpenAI-compatible upstream backend against tiny real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiohttp import web

from egide.backends.upstream import OpenAICompatible
from egide.config import DeploymentConfig, ModelConfig, Settings
from egide.errors import ConfigError, ContextOverflow, InvalidRequest, UpstreamError
from egide.protocol.requests import ChatRequest, CompletionRequest

MODEL = "mistral-small"


class Upstream:
    """An OpenAI-compatible server that records what it receives and misbehaves on demand."""

    def __init__(
        self,
        *,
        status: int = 200,
        error: dict[str, Any] | None = None,
        drop_first: int = 0,
        models_status: int = 200,
        break_stream_after: int | None = None,
    ) -> None:
        self.status = status
        self.error = error or {"message": f"upstream says {status}", "type": "server_error"}
        self.drop_first = drop_first
        self.models_status = models_status
        self.break_stream_after = break_stream_after
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.probes: list[str] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/health", self.health)
        if self.models_status != 404:
            app.router.add_get("/v1/models", self.models)
        return app

    async def models(self, request: web.Request) -> web.Response:
        self.probes.append(request.path)
        self.headers.append(dict(request.headers))
        return web.json_response({"object": "list", "data": []}, status=self.models_status)

    async def health(self, request: web.Request) -> web.Response:
        self.probes.append(request.path)
        return web.json_response({"status": "ok"})

    async def _record(self, request: web.Request) -> dict[str, Any] | None:
        body: dict[str, Any] = orjson.loads(await request.read())
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        if self.drop_first:
            self.drop_first -= 1
            assert request.transport is not None
            request.transport.abort()  # reset before any response byte
            return None
        return body

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if body is None:
            return web.Response()
        if self.status != 200:
            return web.json_response({"error": self.error}, status=self.status)
        if not body.get("stream"):
            return web.json_response(completion(body["model"]))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b": keep-alive\n\n")
        for i, piece in enumerate(["Bon", "jour", " !"]):
            if self.break_stream_after is not None and i == self.break_stream_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            event = b"data: " + orjson.dumps(chunk(body["model"], piece)) + b"\n\n"
            # Split each event across two network writes to exercise line reassembly.
            await resp.write(event[:17])
            await asyncio.sleep(0.005)
            await resp.write(event[17:])
        if body.get("stream_options", {}).get("include_usage"):
            usage = {**chunk(body["model"], ""), "choices": [], "usage": {"total_tokens": 3}}
            await resp.write(b"data: " + orjson.dumps(usage) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        assert body is not None
        rows = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), float(i)]}
            for i, text in enumerate(body["input"])
        ]
        return web.json_response(
            {"object": "list", "data": rows[::-1], "usage": {"prompt_tokens": 7}}
        )


def completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Bonjour !"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }


def chunk(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


@asynccontextmanager
async def serve(upstream: Upstream) -> AsyncIterator[Upstream]:
    runner = web.AppRunner(upstream.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    upstream.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield upstream
    finally:
        await runner.cleanup()


def dead_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@asynccontextmanager
async def backend(
    tmp_path: Path, *deployments: str | DeploymentConfig, **settings: Any
) -> AsyncIterator[OpenAICompatible]:
    settings.setdefault("health_interval_s", 60.0)
    model = ModelConfig(
        id=MODEL,
        backend="openai",
        deployments=tuple(
            d if isinstance(d, DeploymentConfig) else DeploymentConfig(url=d) for d in deployments
        ),
    )
    instance = OpenAICompatible(
        model=model, settings=Settings(home=tmp_path, **settings), artefact=None
    )
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()


def chat_request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": MODEL, "messages": [{"role": "user", "content": "Salut"}], **fields}
    )


def closing(items: AsyncIterator[dict[str, Any]]) -> aclosing[AsyncGenerator[dict[str, Any]]]:
    return aclosing(cast(AsyncGenerator[dict[str, Any]], items))


async def collect(items: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    async with closing(items) as stream:
        return [item async for item in stream]


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_non_stream_rewrites_model(tmp_path: Path) -> None:
    async def go() -> None:
        async with serve(Upstream()) as up:
            served = DeploymentConfig(url=up.url, model="served-name")
            async with backend(tmp_path, served) as b:
                out = await collect(b.chat(chat_request(stream_options={"include_usage": True})))
        assert len(out) == 1
        assert out[0]["object"] == "chat.completion"
        assert out[0]["model"] == MODEL
        assert out[0]["choices"][0]["message"]["content"] == "Bonjour !"
        sent = up.bodies[0]
        assert sent["model"] == "served-name"
        assert sent["messages"] == [{"role": "user", "content": "Salut"}]
        assert "stream_options" not in sent  # only meaningful (and accepted) with stream

    run(go)


def test_stream_passes_chunks_through_in_order(tmp_path: Path) -> None:
    async def go() -> None:
        async with serve(Upstream()) as up, backend(tmp_path, up.url) as b:
            request = chat_request(stream=True, stream_options={"include_usage": True})
            out = await collect(b.chat(request))
        assert [c["choices"][0]["delta"]["content"] for c in out[:3]] == ["Bon", "jour", " !"]
        assert out[3]["choices"] == [] and out[3]["usage"] == {"total_tokens": 3}
        assert len(out) == 4  # [DONE] is not yielded
        assert all(c["model"] == MODEL for c in out)
        assert up.bodies[0]["stream_options"] == {"include_usage": True}

    run(go)


def test_completions_stream(tmp_path: Path) -> None:
    async def go() -> None:
        async with serve(Upstream()) as up, backend(tmp_path, up.url) as b:
            request = CompletionRequest(model=MODEL, prompt="Il était", stream=True)
            out = await collect(b.complete(request))
        assert len(out) == 4  # usage is always asked for, so that tokens are accounted
        assert "usage" in out[-1]
        assert up.bodies[0]["prompt"] == "Il était"

    run(go)


def test_retries_a_reset_connection_on_the_same_deployment(tmp_path: Path) -> None:
    async def go() -> None:
        async with (
            serve(Upstream(drop_first=2)) as first,
            serve(Upstream()) as second,
            backend(tmp_path, first.url, second.url, connect_retries=2) as b,
        ):
            out = await collect(b.chat(chat_request()))
        assert out[0]["model"] == MODEL
        assert len(first.bodies) == 3
        assert second.bodies == []

    run(go)


def test_refused_connection_is_retried_then_fails_over(tmp_path: Path) -> None:
    async def go() -> None:
        dead = dead_url()
        async with serve(Upstream()) as up, backend(tmp_path, dead, up.url) as b:
            started = time.monotonic()
            out = await collect(b.chat(chat_request(stream=True)))
            elapsed = time.monotonic() - started
            deployments = b.health().extra["deployments"]
        assert len(out) == 4  # three chunks and the usage chunk
        assert len(up.bodies) == 1
        assert elapsed >= 0.15  # two retries of the dead deployment: 50 ms + 100 ms backoff
        assert deployments[0]["healthy"] is False
        assert "cannot connect" in deployments[0]["last_error"]

    run(go)


def test_fails_over_on_503(tmp_path: Path) -> None:
    async def go() -> None:
        async with (
            serve(Upstream(status=503, models_status=503)) as busy,
            serve(Upstream()) as up,
            backend(tmp_path, busy.url, up.url) as b,
        ):
            out = await collect(b.chat(chat_request()))
            deployments = b.health().extra["deployments"]
        assert out[0]["choices"][0]["message"]["content"] == "Bonjour !"
        assert len(busy.bodies) == 1  # a 503 is not retried on the same deployment
        assert len(up.bodies) == 1
        assert deployments[0]["healthy"] is False
        assert "HTTP 503" in deployments[0]["last_error"]

    run(go)


def test_upstream_400_is_the_callers_error(tmp_path: Path) -> None:
    async def go() -> None:
        error = {"message": "temperature must be <= 2", "param": "temperature"}
        async with (
            serve(Upstream(status=400, error=error)) as bad,
            serve(Upstream()) as other,
            backend(tmp_path, bad.url, other.url) as b,
        ):
            with pytest.raises(InvalidRequest) as caught:
                await collect(b.chat(chat_request()))
            assert b.health().extra["deployments"][0]["healthy"] is True
        assert caught.value.message == "temperature must be <= 2"
        assert caught.value.param == "temperature"
        assert not isinstance(caught.value, ContextOverflow)
        assert other.bodies == []  # no failover on the caller's mistake

    run(go)


def test_upstream_context_error_is_context_overflow(tmp_path: Path) -> None:
    async def go() -> None:
        error = {  # what llama.cpp's server answers
            "code": 400,
            "message": "request (3024 tokens) exceeds the available context size (1024 tokens)",
            "type": "exceed_context_size_error",
        }
        async with serve(Upstream(status=400, error=error)) as up, backend(tmp_path, up.url) as b:
            with pytest.raises(ContextOverflow, match="3024 tokens"):
                await collect(b.chat(chat_request(stream=True)))

    run(go)


def test_all_deployments_down_names_every_url(tmp_path: Path) -> None:
    async def go() -> None:
        first, second = dead_url(), dead_url()
        async with backend(tmp_path, first, second, connect_retries=0) as b:
            with pytest.raises(UpstreamError) as caught:
                await collect(b.chat(chat_request()))
        message = caught.value.message
        assert MODEL in message
        assert first in message and second in message
        assert "cannot connect" in message
        assert "reachable" in message  # says what to check

    run(go)


def test_broken_stream_is_not_retried(tmp_path: Path) -> None:
    async def go() -> None:
        async with (
            serve(Upstream(break_stream_after=2)) as flaky,
            serve(Upstream()) as other,
            backend(tmp_path, flaky.url, other.url) as b,
        ):
            received: list[dict[str, Any]] = []
            with pytest.raises(UpstreamError, match="incomplete"):
                async with closing(b.chat(chat_request(stream=True))) as stream:
                    async for item in stream:
                        received.append(item)
        assert len(received) == 2
        assert other.bodies == []

    run(go)


def test_health_check_marks_dead_deployment_and_routing_skips_it(tmp_path: Path) -> None:
    async def go() -> None:
        dead = dead_url()
        async with (
            serve(Upstream(models_status=500)) as sick,
            serve(Upstream(models_status=404)) as fallback,
            serve(Upstream()) as up,
            backend(tmp_path, dead, sick.url, fallback.url, up.url, health_interval_s=0.05) as b,
        ):
            await until(
                lambda: (
                    [d["healthy"] for d in b.health().extra["deployments"]][:2] == [False, False]
                )
            )
            await until(lambda: "/health" in fallback.probes)
            out = await collect(b.chat(chat_request()))
            health = b.health()
        assert out[0]["model"] == MODEL
        assert sick.bodies == []  # skipped
        assert len(fallback.bodies) == 1  # /v1/models is 404 but /health answers: healthy
        assert up.bodies == []
        assert health.ok
        assert health.detail == "2/4 deployments healthy"
        assert "cannot connect" in health.extra["deployments"][0]["last_error"]
        assert "HTTP 500" in health.extra["deployments"][1]["last_error"]

    run(go)


def test_all_unhealthy_are_still_tried(tmp_path: Path) -> None:
    async def go() -> None:
        async with (
            serve(Upstream(models_status=500)) as up,
            backend(tmp_path, up.url, health_interval_s=0.05) as b,
        ):
            await until(lambda: not b.health().ok)
            out = await collect(b.chat(chat_request()))
            assert out[0]["model"] == MODEL
            assert b.health().extra["deployments"][0]["healthy"] is True  # success marks it

    run(go)


def test_api_key_is_sent_as_bearer(tmp_path: Path) -> None:
    async def go() -> None:
        async with serve(Upstream()) as keyed, serve(Upstream()) as open_:
            deployments = (
                DeploymentConfig(url=keyed.url, api_key="s3cret"),
                DeploymentConfig(url=open_.url),
            )
            async with backend(tmp_path, *deployments, health_interval_s=0.05) as b:
                await collect(b.chat(chat_request()))
                await until(lambda: bool(keyed.probes) and bool(open_.probes))
        assert all(h["Authorization"] == "Bearer s3cret" for h in keyed.headers)
        assert all("Authorization" not in h for h in open_.headers)

    run(go)


def test_embeddings(tmp_path: Path) -> None:
    async def go() -> None:
        async with serve(Upstream()) as up, backend(tmp_path, up.url) as b:
            result = await b.embed(["a", "bbb"])
        assert result.vectors == [[1.0, 0.0], [3.0, 1.0]]  # reordered by index
        assert result.prompt_tokens == 7
        assert up.bodies[0] == {"model": MODEL, "input": ["a", "bbb"], "encoding_format": "float"}

    run(go)


def test_no_deployments_is_a_config_error(tmp_path: Path) -> None:
    model = ModelConfig(id=MODEL, backend="openai")
    with pytest.raises(ConfigError, match="deployments"):
        OpenAICompatible(model=model, settings=Settings(home=tmp_path), artefact=None)
