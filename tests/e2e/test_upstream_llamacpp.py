"""Routing through the upstream backend to real llama.cpp servers (another project's
OpenAI-compatible server) on loopback: streaming, then failover when one is killed."""

from __future__ import annotations

import time

import httpx
import pytest
from openai import OpenAI

from support.egide_process import start_egide
from support.llama_server import start_llama_server, tiny_model_path

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory):
    cache = tmp_path_factory.mktemp("tiny-model")
    gguf = tiny_model_path(cache)
    logs = tmp_path_factory.mktemp("llama-logs")
    first = start_llama_server(gguf, log_path=logs / "a.log")
    second = start_llama_server(gguf, log_path=logs / "b.log")
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def gateway(upstreams, tmp_path_factory):
    first, second = upstreams
    config = f"""
default_models = false
health_interval_s = 0.5
connect_retries = 1

[[models]]
id = "tiny-remote"
backend = "openai"
context_length = 1024
capabilities = ["chat", "completions", "streaming"]

[[models.deployments]]
url = "{first.v1}"

[[models.deployments]]
url = "{second.v1}"
"""
    server = start_egide(tmp_path_factory.mktemp("egide-upstream"), config)
    yield server
    server.stop()


def _client(gateway) -> OpenAI:
    return OpenAI(base_url=gateway.api, api_key=gateway.key, max_retries=0, timeout=60)


def _chat(client: OpenAI, stream: bool):
    return client.chat.completions.create(
        model="tiny-remote",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        temperature=0,
        stream=stream,
    )


def test_non_streaming_through_real_llama_server(gateway) -> None:
    reply = _chat(_client(gateway), stream=False)
    assert reply.model == "tiny-remote"
    assert reply.usage.completion_tokens > 0
    assert reply.choices[0].finish_reason in ("length", "stop")


def test_streaming_through_real_llama_server(gateway) -> None:
    chunks = list(_chat(_client(gateway), stream=True))
    assert all(c.model == "tiny-remote" for c in chunks)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2
    assert chunks[-1].choices[0].finish_reason in ("length", "stop") or chunks[-1].usage is None


def test_failover_when_a_deployment_is_killed(gateway, upstreams) -> None:
    first, second = upstreams
    client = _client(gateway)
    first.kill()
    # Right after the kill (health marks still stale): connect fails, then the second answers.
    for stream in (False, True, False, True):
        result = _chat(client, stream)
        if stream:
            assert any(c.choices and c.choices[0].delta.content for c in result)
        else:
            assert result.usage.completion_tokens > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        health = httpx.get(gateway.url + "/health").json()
        deployments = health["models"]["tiny-remote"]["deployments"]
        states = {d["url"]: d["healthy"] for d in deployments}
        if states[first.v1] is False:
            break
        time.sleep(0.2)
    assert states == {first.v1: False, second.v1: True}
    second.kill()
    response = httpx.post(
        gateway.api + "/chat/completions",
        headers=gateway.headers(),
        json={"model": "tiny-remote", "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    assert first.v1 in error["message"] and second.v1 in error["message"]
